"""Fused bias + leaky ReLU + gain, the activation of every StyleGAN2 layer."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import backend

SQRT2 = math.sqrt(2.0)


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    negative_slope: float = 0.2,
    scale: float = SQRT2,
    bias_dim: int = 1,
    impl: str = "auto",
    inplace: bool = False,
) -> torch.Tensor:
    """``leaky_relu(x + bias, negative_slope) * scale``.

    ``bias`` is broadcast along ``bias_dim`` (1 = channels, as in rosinality). StyleCLIP's
    latent mapper applies it to ``[B, rows, D]`` W+ tensors with the bias on the last dim
    (``bias_dim=-1``). ``inplace`` lets the reference path overwrite ``x`` (outside autograd,
    for a tensor nobody else holds); the CUDA kernel always writes a new tensor.
    """
    if backend.use_cuda(x, impl, "fused_leaky_relu"):
        from . import cuda_plugin

        return cuda_plugin.fused_leaky_relu(x, bias, negative_slope, scale, bias_dim)
    return fused_leaky_relu_reference(x, bias, negative_slope, scale, bias_dim, inplace)


def fused_leaky_relu_reference(x, bias, negative_slope, scale, bias_dim, inplace=False):
    if bias is not None:
        dim = bias_dim % x.ndim
        shape = [1] * x.ndim
        shape[dim] = bias.shape[0]
        x = x.add_(bias.view(shape).to(x.dtype)) if inplace else x + bias.view(shape).to(x.dtype)
    out = F.leaky_relu(x, negative_slope, inplace=inplace)
    # leaky_relu saves its input, not its output, so scaling in place is autograd-safe
    # and saves one full-size temporary.
    return out.mul_(scale)
