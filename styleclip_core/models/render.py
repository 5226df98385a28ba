"""Rendering latents to images in chunks, and the image conventions at the library's edge."""
from __future__ import annotations

import torch

from ..progress import Progress
from .generator import Generator
from .latents import Latents


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Generator output [B, 3, H, W] in about [-1, 1] -> [B, H, W, 3] in [0, 1] (clamped)."""
    return ((images.float() + 1) / 2).clamp_(0, 1).permute(0, 2, 3, 1).contiguous()


def from_unit_range(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, C] in [0, 1] -> [B, 3, H, W] in [-1, 1] (alpha dropped, grey expanded)."""
    if images.ndim == 3:
        images = images[None]
    x = images[..., :3] if images.shape[-1] >= 3 else images[..., :1].expand(*images.shape[:-1], 3)
    return x.permute(0, 3, 1, 2).float() * 2 - 1


def per_sample_noise(g: Generator, seed: int, start: int, count: int) -> list[torch.Tensor]:
    """Random noise maps for samples ``start .. start+count-1`` of a batch, sample ``i`` drawn
    from ``seed + i``, so an image does not depend on how a batch is split."""
    per_sample = [g.make_noise(1, "random", torch.Generator().manual_seed(seed + i)) for i in range(start, start + count)]
    return [torch.cat(maps) for maps in zip(*per_sample)]


@torch.no_grad()
def render(g: Generator, latents: Latents, noise: str = "const", seed: int = 0, chunk: int = 4, progress: Progress | None = None) -> torch.Tensor:
    """Render every code in ``latents`` -> [B, 3, size, size] in about [-1, 1], ``chunk`` at a time.

    With ``noise='random'`` the noise of sample ``i`` is drawn from ``seed + i``, so a sample's
    image does not depend on the chunk size or its position in a larger batch.
    """
    latents.check(g)
    device = g.w_avg.device
    out = []
    total = latents.batch_size
    for start in range(0, total, chunk):
        part = latents.slice(start, min(start + chunk, total)).to(device)
        styles = part.to_styles(g)
        if noise == "random":
            images = g.synthesis(styles, noise=per_sample_noise(g, seed, start, part.batch_size))
        else:
            images = g.synthesis(styles, noise=noise)
        out.append(images.cpu())
        if progress is not None:
            progress(min(start + chunk, total), total, images[:1])
    return torch.cat(out)

