"""filtered_lrelu: StyleGAN3's alias-free nonlinearity, and the low-pass filters its layers use.

``filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)`` is, per
channel (NVIDIA ``torch_utils/ops/filtered_lrelu.py``, ``_filtered_lrelu_ref``; SPEC 13.7):

1. add the bias ``b`` (per channel);
2. upsample by ``up`` with zero insertion, pad by ``padding = [x0, x1, y0, y1]`` (negative crops)
   and FIR-filter with ``fu`` at gain ``up**2``: a 1-D ``fu`` runs along x then along y, each
   pass at gain ``up``; a 2-D one runs once;
3. leaky ReLU with ``slope``, times ``gain``, clamped to ``[-clamp, clamp]`` when ``clamp`` is set;
4. FIR-filter with ``fd`` (gain 1, no padding) and keep every ``down``-th sample from index 0.

Filters are true convolutions (``flip_filter=True``: correlations); None is the 1-tap identity.
Output size per axis: ``(in up + pad0 + pad1 - (len fu - 1) - (len fd - 1) + down - 1) // down``.

The reference path composes the StyleGAN2 ops' reference paths (``upfirdn2d_reference``, one
1-D pass per axis for separable filters) and runs on every device. On CUDA tensors, when the plugin
builds and passes its self-check for ``filtered_lrelu`` (``backend.use_cuda``), the forward is one
fused kernel of ``cuda_plugin`` (``csrc/filtered_lrelu.cu``, per-sample math in ``kernels.cuh``):
each block computes the activated intermediate of its output tile once into shared memory and
filters it down from there, so the upsampled tensor never reaches global memory. It is our kernel,
not NVIDIA's, and only the forward is fused: the backward recomputes this
composition (``filtered_lrelu_composition``) on the saved inputs and differentiates it, each stage
on the CUDA ``upfirdn2d`` and bias + leaky ReLU kernels behind their own ``backend.use_cuda``
choice, so the gradients are the composition's and its memory is spent only during the backward.
Filters that require a gradient, a plugin that cannot be used or one that fails its self-check
take the composition, forward and backward (stage by stage on the CUDA kernels where those pass
their own checks).

``design_lowpass_filter`` is StyleGAN3's ``SynthesisLayer.design_lowpass_filter`` (SPEC 13.5): a
Kaiser-windowed sinc (scipy ``firwin``) or, ``radial``, a windowed jinc on a square grid.
"""
from __future__ import annotations

import numpy as np
import torch

from . import backend
from .bias_act import fused_leaky_relu, fused_leaky_relu_reference
from .upfirdn2d import upfirdn2d, upfirdn2d_reference


def filtered_lrelu(
    x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None, b: torch.Tensor | None = None,
    up: int = 1, down: int = 1, padding=(0, 0, 0, 0), gain: float = np.sqrt(2), slope: float = 0.2,
    clamp: float | None = None, flip_filter: bool = False, impl: str = "auto",
) -> torch.Tensor:
    """Bias, upsample, filter, leaky ReLU (gain, clamp), filter, downsample (see the module doc)."""
    padding = _check_args(x, fu, fd, b, padding)
    filters_need_grad = torch.is_grad_enabled() and any(f is not None and f.requires_grad for f in (fu, fd))
    if not filters_need_grad and backend.use_cuda(x, impl, "filtered_lrelu"):
        from . import cuda_plugin

        return cuda_plugin.filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl=impl)
    return filtered_lrelu_composition(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl)


def _check_args(x, fu, fd, b, padding):
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects [N, C, H, W], found {list(x.shape)}")
    for name, f in (("fu", fu), ("fd", fd)):
        if f is not None and f.ndim not in (1, 2):
            raise ValueError(f"filtered_lrelu: {name} must be a 1-D or 2-D filter, found {list(f.shape)}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f"filtered_lrelu: the bias must be [{x.shape[1]}], found {list(b.shape)}")
    padding = tuple(int(p) for p in padding)
    if len(padding) != 4:
        raise ValueError(f"filtered_lrelu: padding is [x0, x1, y0, y1], found {list(padding)}")
    return padding


def filtered_lrelu_composition(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl):
    """The op as a composition of upfirdn2d and bias + leaky ReLU, each stage on the backend ``impl``
    picks for it (``None``: the stages' reference paths, whatever ``STYLECLIP_OPS`` says). The
    reference path, and what the fused CUDA forward's backward recomputes."""
    if b is not None:
        x = x + b.to(x.dtype).view(1, -1, 1, 1)
    x = _fir(x, fu, up=int(up), down=1, padding=padding, gain=float(up) ** 2, flip=flip_filter, impl=impl)
    if slope != 1.0:
        x = fused_leaky_relu_reference(x, None, slope, gain, 1) if impl is None else fused_leaky_relu(x, None, slope, gain, impl=impl)
    elif gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-float(clamp), float(clamp))
    return _fir(x, fd, up=1, down=int(down), padding=(0, 0, 0, 0), gain=1.0, flip=flip_filter, impl=impl)


def filtered_lrelu_reference(x, fu=None, fd=None, b=None, up=1, down=1, padding=(0, 0, 0, 0), gain=np.sqrt(2), slope=0.2, clamp=None, flip_filter=False):
    """The pure PyTorch path of ``filtered_lrelu`` on any device (``STYLECLIP_OPS`` does not change it)."""
    padding = _check_args(x, fu, fd, b, padding)
    return filtered_lrelu_composition(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, None)


def _fir(x, f, up, down, padding, gain, flip, impl):
    """NVIDIA's upfirdn2d convention on the rosinality one: ``f`` 1-D (separable: x then y, each at
    gain sqrt) or 2-D, a true convolution unless ``flip`` (then a correlation). ``impl`` None:
    ``upfirdn2d_reference``."""
    x0, x1, y0, y1 = padding
    if f is None:
        # 1 tap: the identity filter, so only the zero insertion, padding and downsampling remain
        f = torch.ones(1, dtype=x.dtype, device=x.device)
    f = f.to(device=x.device, dtype=x.dtype)
    if flip:
        f = f.flip(list(range(f.ndim)))  # upfirdn2d flips once more: a correlation

    def run(x, k, ux, uy, dx, dy, px0, px1, py0, py1):
        if impl is None:
            return upfirdn2d_reference(x, k, ux, uy, dx, dy, px0, px1, py0, py1)
        return upfirdn2d(x, k, up=(ux, uy), down=(dx, dy), pad=(px0, px1, py0, py1), impl=impl)

    if f.ndim == 2:
        return run(x, f * gain, up, up, down, down, x0, x1, y0, y1)
    g = gain ** 0.5
    x = run(x, (f * g)[None, :], up, 1, down, 1, x0, x1, 0, 0)
    return run(x, (f * g)[:, None], 1, up, 1, down, 0, 0, y0, y1)


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """StyleGAN3's low-pass filter: None for 1 tap; 1-D ``firwin`` taps; or, ``radial``, a 2-D
    windowed jinc normalised to sum 1 (float32)."""
    assert numtaps >= 1
    if numtaps == 1:
        return None
    import scipy.signal
    import scipy.special

    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    w = np.kaiser(numtaps, beta)
    f *= np.outer(w, w)
    f /= np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)
