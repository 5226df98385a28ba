"""Rendering latents to images in chunks, and the image conventions at the library's edge."""
from __future__ import annotations

import torch

from ..progress import Progress
from ..values import called, check_count, check_finite, generator as seeded
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


def photos_at(images: torch.Tensor, size: int) -> torch.Tensor:
    """ComfyUI images [B, H, W, C] in [0, 1] -> [B, 3, size, size] in [-1, 1], resized (bilinear with
    antialiasing) when they are not already ``size`` px: what the projector and tuning compare
    a generator's renderings with."""
    x = from_unit_range(images)
    if x.shape[2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def per_sample_noise(g: Generator, seed: int, start: int, count: int) -> list[torch.Tensor]:
    """Random noise maps for samples ``start .. start+count-1`` of a batch, sample ``i`` drawn
    from ``seed + i``, so an image does not depend on how a batch is split. Seeds wrap modulo
    2**64 (``values.torch_seed``): past the seed widget's maximum, ``seed + i`` continues at 0."""
    per_sample = [g.make_noise(1, "random", seeded(seed + i)) for i in range(start, start + count)]
    return [torch.cat(maps) for maps in zip(*per_sample)]


@torch.no_grad()
def render(g: Generator, latents: Latents, noise: str = "const", seed: int = 0, chunk: int = 4, progress: Progress | None = None,
           names: dict[str, str] | None = None) -> torch.Tensor:
    """Render every code in ``latents`` -> [B, 3, size, size] in about [-1, 1], ``chunk`` at a time.

    With ``noise='random'`` the noise of sample ``i`` is drawn from ``seed + i`` (modulo 2**64),
    so a sample's image does not depend on the chunk size or its position in a larger batch.
    Non-finite codes and a chunk below 1 are errors naming ``names``' words for the parameters.
    """
    chunk = check_count(chunk, called(names, "chunk"))
    latents.check(g)
    check_finite(latents, called(names, "latents"))
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



def image_grid(images: torch.Tensor, columns: int, names: dict[str, str] | None = None) -> torch.Tensor:
    """ComfyUI images [B, H, W, C] laid out row by row as one image [1, rows * H, columns * W, C]
    (``columns`` at most B); a last row that is not full is padded with black."""
    columns = check_count(columns, called(names, "columns"))
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"{called(names, 'images')}: expected a non-empty batch [B, H, W, C], found {list(images.shape)} (an empty batch)"
                         if images.ndim == 4 else f"{called(names, 'images')}: expected [B, H, W, C], found {list(images.shape)}")
    b, h, w, c = images.shape
    columns = min(columns, b)
    rows = -(-b // columns)
    padded = torch.cat([images, images.new_zeros(rows * columns - b, h, w, c)])
    return padded.reshape(rows, columns, h, w, c).permute(0, 2, 1, 3, 4).reshape(1, rows * h, columns * w, c)
