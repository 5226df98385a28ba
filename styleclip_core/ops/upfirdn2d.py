"""upfirdn2d: upsample by zero insertion, pad (or crop), FIR-filter, downsample.

The reference path is pure PyTorch and is what runs on the CPU; the CUDA plugin
computes the same function on CUDA tensors (see ``backend.py``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import backend


def make_kernel(k) -> torch.Tensor:
    """1-D taps -> normalised 2-D FIR kernel (outer product, sums to 1); 2-D input is only normalised."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(pad):
    """(p0, p1) applies to both axes; (x0, x1, y0, y1) is per axis."""
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad
    raise ValueError(f"upfirdn2d: pad must have 2 or 4 entries, got {len(pad)}")


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up=1, down=1, pad=(0, 0), impl: str = "auto") -> torch.Tensor:
    """Apply ``upfirdn2d`` to every [H, W] plane of an [N, C, H, W] tensor.

    ``kernel`` is a 2-D FIR filter used as a true convolution (it is flipped).
    ``up``/``down`` are ints or (x, y) pairs; ``pad`` is (p0, p1) or (x0, x1, y0, y1);
    negative pads crop. Output height is ``(H*up_y + y0 + y1 - kh) // down_y + 1``.
    """
    up_x, up_y = _pair(up)
    down_x, down_y = _pair(down)
    px0, px1, py0, py1 = _pads(pad)
    if backend.use_cuda(x, impl, "upfirdn2d"):
        from . import cuda_plugin

        return cuda_plugin.upfirdn2d(x, kernel, up_x, up_y, down_x, down_y, px0, px1, py0, py1)
    return upfirdn2d_reference(x, kernel, up_x, up_y, down_x, down_y, px0, px1, py0, py1)


def upfirdn2d_reference(x, kernel, up_x, up_y, down_x, down_y, px0, px1, py0, py1):
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    kernel = kernel.to(device=x.device, dtype=x.dtype)

    # A plain 2x upsample whose pads fit a transposed convolution is computed polyphase:
    # conv_transpose2d never multiplies the inserted zeros (4x fewer MACs than zero insertion).
    fits_transposed = (
        up_x == up_y and up_x > 1 and down_x == down_y == 1
        and kh - 1 - py0 == kw - 1 - px0 >= 0
        and 0 <= py1 - py0 + 1 < up_y and py1 - py0 == px1 - px0
    )
    if fits_transposed:
        weight = kernel[None, None].expand(c, 1, kh, kw)
        return F.conv_transpose2d(
            x, weight, stride=up_x, padding=kh - 1 - py0, output_padding=py1 - py0 + 1, groups=c
        )

    if up_x > 1 or up_y > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up_x - 1, 0, 0, 0, up_y - 1])
        x = x.reshape(n, c, h * up_y, w * up_x)
    conv_pad = 0
    if px0 == px1 >= 0 and py0 == py1 >= 0:
        conv_pad = (py0, px0)  # symmetric zero padding: let the convolution do it, no padded copy
    else:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    # A true convolution is a cross-correlation with the flipped kernel; striding the
    # correlation is the same as keeping every down-th output sample.
    weight = kernel.flip([0, 1])[None, None].expand(c, 1, kh, kw)
    return F.conv2d(x, weight, stride=(down_y, down_x), padding=conv_pad, groups=c)
