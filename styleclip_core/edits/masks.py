"""Masks as the edits use them: a ComfyUI MASK (``[H, W]`` / ``[B, H, W]``, any resolution,
0..1) resized to a generator resolution, feathered, broadcast over a batch; and masks of face
parts from a parsing map."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..models.face_parser import CLASSES, PARTS


def resize_mask(mask: torch.Tensor, size, batch: int) -> torch.Tensor:
    """A ComfyUI MASK ``[H, W]`` / ``[B, H, W]`` (or ``[B, 1, H, W]``) -> ``[B or 1, 1, h, w]``,
    area-averaged (or bilinearly enlarged) to ``size``."""
    m = mask.float()
    if m.ndim == 2:
        m = m[None]
    if m.ndim == 3:
        m = m[:, None]
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"a mask must be [H, W], [B, H, W] or [B, 1, H, W], found {list(mask.shape)}")
    if m.shape[0] not in (1, batch):
        raise ValueError(f"the mask batch ({m.shape[0]}) must be 1 or the number of faces ({batch})")
    if tuple(m.shape[-2:]) != tuple(size):
        mode = "area" if m.shape[-2] >= size[0] and m.shape[-1] >= size[1] else "bilinear"
        m = F.interpolate(m, size=tuple(size), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    return m.clamp(0, 1)


def prepare_mask(mask: torch.Tensor, batch: int, size: int, feather: float = 0.0) -> torch.Tensor:
    """A ComfyUI MASK ([H, W] or [B, H, W], any resolution, values 0..1) -> [batch, 1, size, size]:
    resized as the optimiser's losses resize it, Gaussian-feathered (sigma = ``feather`` pixels
    at ``size``), batch-broadcast."""
    m = resize_mask(mask, (size, size), batch)
    if feather > 0:
        m = gaussian_blur(m, feather)
    return m.expand(batch, -1, -1, -1).contiguous()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x)
    c = x.shape[1]
    x = F.pad(x, [radius] * 4, mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def part_mask(labels: torch.Tensor, parts: list[str]) -> torch.Tensor:
    """[B, H, W] labels -> float mask of the union of ``parts`` (names of PARTS or CLASSES)."""
    wanted = set()
    for p in parts:
        p = p.strip().lower()
        if p in PARTS:
            wanted.update(CLASSES.index(c) for c in PARTS[p])
        elif p in CLASSES:
            wanted.add(CLASSES.index(p))
        else:
            raise ValueError(f"unknown face part {p!r}; choose from {', '.join(PARTS)} or {', '.join(CLASSES)}")
    if not wanted:
        raise ValueError("choose at least one face part")
    return torch.isin(labels, torch.tensor(sorted(wanted), device=labels.device)).float()


def refine_mask(mask: torch.Tensor, dilate: int = 0, feather: float = 0.0) -> torch.Tensor:
    """Grow (or, negative, shrink) a [B, H, W] mask by ``dilate`` pixels, then Gaussian-feather it."""
    m = mask[:, None]
    if dilate:
        k = 2 * abs(dilate) + 1
        m = F.max_pool2d(m, k, 1, abs(dilate)) if dilate > 0 else -F.max_pool2d(-m, k, 1, abs(dilate))
    if feather > 0:
        m = gaussian_blur(m, feather)
    return m[:, 0].clamp(0, 1)
