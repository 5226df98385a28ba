"""StyleCLIP global directions: text-driven edits in StyleSpace with no per-prompt training.

The method (SPEC 3.3; StyleCLIP ``global_torch``):
1. per-channel style statistics over sampled faces (``style_statistics``);
2. the relevance of every StyleSpace conv channel to CLIP's image space, ``fs3``
   (``channel_relevance``: perturb one channel by +-5 std, measure the CLIP image embedding change);
3. a text direction ``dt`` in CLIP space (target minus neutral prompt, 79-template averages;
   ``ClipModel.text_direction``);
4. ``direction = boundary(fs3, dt, beta)``: channels whose relevance |fs3 . dt| reaches beta, scaled
   so the strongest is 1 and multiplied by each channel's std;
5. ``s + alpha * direction`` rendered from StyleSpace (``directions.Direction.apply``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..errors import CheckpointError
from ..formats.files import read_safetensors, save_atomic
from ..models.generator import Generator, conv_layers, num_conv_channels
from ..progress import Progress
from ..values import check_count
from .directions import Direction, as_float64


# ------------------------------------------------------------------------------------------
# 1. style statistics


@dataclass
class StyleStatistics:
    mean: list[torch.Tensor]
    std: list[torch.Tensor]
    recipe: dict = field(default_factory=dict)

    def save(self, path: str):
        tensors = {f"mean.{i}": m.contiguous() for i, m in enumerate(self.mean)}
        tensors.update({f"std.{i}": s.contiguous() for i, s in enumerate(self.std)})
        save_atomic(tensors, path, {"format": "styleclip-style-statistics", "recipe": json.dumps(self.recipe)})

    @staticmethod
    def load(path: str) -> "StyleStatistics":
        tensors, meta = read_safetensors(path, "style statistics")
        n = len([k for k in tensors if k.startswith("mean.")])
        return StyleStatistics([tensors[f"mean.{i}"] for i in range(n)], [tensors[f"std.{i}"] for i in range(n)], json.loads(meta.get("recipe", "{}")))


def sample_z(num: int, dim: int, seed: int = 5) -> torch.Tensor:
    """The reference's faces: legacy NumPy ``RandomState(seed).randn`` (float64), as float32."""
    return torch.from_numpy(np.random.RandomState(seed).randn(num, dim)).float()


def reference_styles(g: Generator, z: torch.Tensor, psi: float = 0.7, cutoff: int | None = 8) -> list[torch.Tensor]:
    """StyleSpace codes of faces as global_torch makes them: NVIDIA truncation (rows < cutoff only)."""
    ws = g.to_w_plus(g.mapping(z.to(g.w_avg.device)))
    ws = g.truncate(ws, psi, g.truncation_center(), cutoff=cutoff)
    return g.styles(ws)


@torch.no_grad()
def style_statistics(g: Generator, num_samples: int = 100_000, seed: int = 5, psi: float = 0.7, cutoff: int | None = 8, batch_size: int = 4096, progress: Progress | None = None) -> StyleStatistics:
    """Per-layer, per-channel mean and population std of the style codes of ``num_samples`` faces
    (global_torch ``GenerateS`` + ``GetCodeMS``), accumulated in float64 without storing them all."""
    num_samples, batch_size = check_count(num_samples, "num_samples"), check_count(batch_size, "batch_size")
    z_all = sample_z(num_samples, g.style_dim, seed)
    sums = sq = None
    for start in range(0, num_samples, batch_size):
        styles = reference_styles(g, z_all[start:start + batch_size], psi, cutoff)
        batch_sum = [as_float64(s).sum(0).cpu() for s in styles]
        batch_sq = [as_float64(s).square().sum(0).cpu() for s in styles]
        sums = batch_sum if sums is None else [a + b for a, b in zip(sums, batch_sum)]
        sq = batch_sq if sq is None else [a + b for a, b in zip(sq, batch_sq)]
        if progress is not None:
            progress(min(start + batch_size, num_samples), num_samples, None)
    mean = [s / num_samples for s in sums]
    std = [(q / num_samples - m.square()).clamp_min(0).sqrt() for q, m in zip(sq, mean)]
    recipe = {"num_samples": num_samples, "seed": seed, "psi": psi, "cutoff": cutoff}
    return StyleStatistics([m.float() for m in mean], [s.float() for s in std], recipe)


# ------------------------------------------------------------------------------------------
# 4. boundary and edit


def split_conv_channels(values: torch.Tensor, g: Generator) -> list[torch.Tensor]:
    """Cut a vector over the conv channels (fs3 row order) into per-layer pieces, zeros for toRGB
    layers and for layers the vector does not reach (an fs3 with fewer rows)."""
    pieces, start = [], 0
    conv = set(conv_layers(g))
    for layer in g.style_layers:
        piece = torch.zeros(layer.channels, dtype=values.dtype)
        if layer.index in conv:
            part = values[start:start + layer.channels]
            piece[: len(part)] = part
            start += layer.channels
        pieces.append(piece)
    return pieces


def boundary(fs3: torch.Tensor, dt: torch.Tensor, stats: StyleStatistics, g: Generator, beta: float) -> Direction:
    """global_torch ``GetBoundary``: relevance r = fs3 @ dt; channels with |r| < beta dropped; r / max|r|;
    per layer times the channel std. Raises when beta drops every channel (the reference divides 0/0)."""
    fs3 = check_fs3(fs3, g)
    if fs3.shape[1] != dt.shape[0]:
        raise ValueError(f"fs3 has {fs3.shape[1]} CLIP dimensions but the text direction has {dt.shape[0]}: they come from different CLIP models")
    r = fs3.double() @ dt.double()
    keep = r.abs() >= beta
    num_c = int(keep.sum())
    if num_c == 0:
        raise ValueError(
            f"beta={beta} keeps no channel (the largest relevance is {r.abs().max().item():.3f}); lower beta below that"
        )
    r = torch.where(keep, r, torch.zeros_like(r))
    r = r / r.abs().max()
    deltas = [piece * std.double() for piece, std in zip(split_conv_channels(r, g), stats.std)]
    for layer, d in zip(g.style_layers, deltas):
        if layer.is_torgb:
            d.zero_()
    return Direction("s", deltas, {"beta": beta, "num_channels": num_c})


def channels_kept(fs3: torch.Tensor, dt: torch.Tensor, betas: Sequence[float]) -> list[int]:
    """How many channels each beta keeps (``num_c`` of ``boundary``), to choose beta before editing."""
    r = (fs3.double() @ dt.double()).abs()
    return [int((r >= beta).sum()) for beta in betas]


def check_fs3(fs3: torch.Tensor, g: Generator, source: str | None = None) -> torch.Tensor:
    """``fs3`` itself if its rows fit ``g``'s conv channels; else a clear error (a
    ``CheckpointError`` naming the file when ``source``, the file it was read from, is given)."""
    total = num_conv_channels(g)
    if fs3.ndim != 2 or fs3.shape[0] > total:
        expected = f"fs3 of [rows <= {total} conv channels, clip_dim] for this generator ({g.size}px)"
        if source is not None:
            raise CheckpointError(source, expected, f"an array of shape {list(fs3.shape)}; it belongs to another generator")
        raise ValueError(f"{expected}, found {list(fs3.shape)}")
    return fs3
