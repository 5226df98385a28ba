"""The reference implementations' maths on their CPU code path, for side-by-side benchmarks.

rosinality/stylegan2-pytorch (and the copies inside StyleCLIP and e4e) run, on the CPU:
* the modulated convolution as one grouped convolution over per-sample weights,
* ``upfirdn2d`` "native": zero insertion and padding on a channels-last view, then a
  single-channel convolution over all N*C planes, then a strided slice for ``down``,
* the fused activation as ``leaky_relu(x + bias) * sqrt(2)`` in three passes.
This module re-creates that path (written from SPEC.md, not copied) on our ``Generator``'s
modules, so both sides of a benchmark load the same weights and compute the same numbers.
"""
from __future__ import annotations

import math
import types

import torch
import torch.nn.functional as F

from styleclip_core.models import generator as G


def upfirdn2d_native(x, kernel, up=1, down=1, pad=(0, 0)):
    px0, px1 = pad
    py0, py1 = pad
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(-1, h, w, 1)
    out = out.view(-1, h, 1, w, 1, 1)
    out = F.pad(out, [0, 0, 0, up - 1, 0, 0, 0, up - 1])
    out = out.view(-1, h * up, w * up, 1)
    out = F.pad(out, [0, 0, max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    out = out[:, max(-py0, 0): out.shape[1] - max(-py1, 0), max(-px0, 0): out.shape[2] - max(-px1, 0), :]
    out = out.permute(0, 3, 1, 2).reshape(-1, 1, h * up + py0 + py1, w * up + px0 + px1)
    out = F.conv2d(out, torch.flip(kernel, [0, 1]).view(1, 1, kh, kw))
    out = out.reshape(-1, 1, out.shape[2], out.shape[3]).permute(0, 2, 3, 1)
    out = out[:, ::down, ::down, :]
    out_h = (h * up + py0 + py1 - kh + down) // down
    out_w = (w * up + px0 + px1 - kw + down) // down
    return out.reshape(-1, c, out_h, out_w)


def fused_leaky_relu_native(x, bias, scale=math.sqrt(2)):
    shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope=0.2) * scale


def _modconv_forward(self, x, s):
    batch, in_channel, height, width = x.shape
    weight = self.scale * self.weight * s.view(batch, 1, in_channel, 1, 1)
    if self.demodulate:
        demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
        weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
    weight = weight.view(batch * self.out_channel, in_channel, self.kernel_size, self.kernel_size)
    x = x.view(1, batch * in_channel, height, width)
    if self.upsample:
        weight = weight.view(batch, self.out_channel, in_channel, self.kernel_size, self.kernel_size)
        weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, self.kernel_size, self.kernel_size)
        out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
        out = out.view(batch, self.out_channel, out.shape[2], out.shape[3])
        return upfirdn2d_native(out, self.blur.kernel, pad=self.blur.pad)
    out = F.conv2d(x, weight, padding=self.padding, groups=batch)
    return out.view(batch, self.out_channel, out.shape[2], out.shape[3])


def _upsample_forward(self, x):
    return upfirdn2d_native(x, self.kernel, up=self.factor, pad=self.pad)


def _activate_forward(self, x):
    return fused_leaky_relu_native(x, self.bias)


def _linear_forward(self, x):
    if self.activation:
        out = F.linear(x, self.weight * self.scale)
        return fused_leaky_relu_native(out, self.bias * self.lr_mul)
    return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


def to_reference_path(g: G.Generator) -> G.Generator:
    """Rebind ``g``'s layers to the reference CPU code path (in place); returns ``g``."""
    g.memory_format = torch.contiguous_format
    for m in g.modules():
        if isinstance(m, G.ModulatedConv2d):
            m.forward = types.MethodType(_modconv_forward, m)
        elif isinstance(m, G.Upsample):
            m.forward = types.MethodType(_upsample_forward, m)
        elif isinstance(m, G.FusedLeakyReLU):
            m.forward = types.MethodType(_activate_forward, m)
        elif isinstance(m, G.EqualLinear):
            m.forward = types.MethodType(_linear_forward, m)
    return g
