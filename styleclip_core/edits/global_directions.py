"""StyleCLIP global directions: text-driven edits in StyleSpace with no per-prompt training.

The method (SPEC 3.3; StyleCLIP ``global_torch``):
1. per-channel style statistics over sampled faces (``style_statistics``);
2. the relevance of every StyleSpace conv channel to CLIP's image space, ``fs3``
   (``channel_relevance``: perturb one channel by +-5 std, measure the CLIP image embedding change);
3. a text direction ``dt`` in CLIP space (target minus neutral prompt, 79-template averages;
   ``ClipModel.text_direction``);
4. ``direction = boundary(fs3, dt, beta)``: channels whose relevance |fs3 . dt| reaches beta, scaled
   so the strongest is 1 and multiplied by each channel's std;
5. ``s + alpha * direction`` rendered from StyleSpace.
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
from ..models.latents import Latents
from ..progress import Progress
from ..values import called, check_count, check_finite


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


def as_float64(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float64 for the reference's double-precision steps; on the CPU where the device
    has no float64 (Apple's MPS)."""
    return (t.cpu() if t.device.type == "mps" else t).double()


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


@dataclass
class GlobalDirection:
    """Per-StyleSpace-layer deltas for strength 1 (float64; toRGB layers zero) and what made them."""

    deltas: list[torch.Tensor]
    info: dict = field(default_factory=dict)

    @property
    def num_channels(self) -> int:
        return int(sum(int((d != 0).sum()) for d in self.deltas))

    def check(self, g: Generator):
        widths = [d.shape[-1] for d in self.deltas]
        expected = [l.channels for l in g.style_layers]
        if widths != expected:
            raise ValueError(f"this direction has StyleSpace layer widths {widths}, but the generator has {expected}: it was made for another generator")

    def scaled(self, weight: float) -> "GlobalDirection":
        return GlobalDirection([d * weight for d in self.deltas], dict(self.info, weight=weight))

    @staticmethod
    def combine(directions: Sequence["GlobalDirection"], weights: Sequence[float]) -> "GlobalDirection":
        if not directions:
            raise ValueError("no directions to combine")
        widths = {tuple(d.shape[-1] for d in x.deltas) for x in directions}
        if len(widths) != 1:
            raise ValueError("these directions belong to different generators (their StyleSpace widths differ)")
        deltas = [sum(w * x.deltas[i] for x, w in zip(directions, weights)) for i in range(len(directions[0].deltas))]
        return GlobalDirection(deltas, {"combined": [dict(x.info, weight=w) for x, w in zip(directions, weights)]})

    def save(self, path: str):
        tensors = {f"delta.{i}": d.contiguous() for i, d in enumerate(self.deltas)}
        save_atomic(tensors, path, {"format": "styleclip-global-direction", "info": json.dumps(self.info)})

    @staticmethod
    def load(path: str) -> "GlobalDirection":
        tensors, meta = read_safetensors(path, "a global direction")
        n = len(tensors)
        if not all(f"delta.{i}" in tensors for i in range(n)):
            raise CheckpointError(path, "tensors delta.0 .. delta.N", f"tensors {sorted(tensors)[:6]}")
        return GlobalDirection([tensors[f"delta.{i}"] for i in range(n)], json.loads(meta.get("info", "{}")))


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


def boundary(fs3: torch.Tensor, dt: torch.Tensor, stats: StyleStatistics, g: Generator, beta: float) -> GlobalDirection:
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
    return GlobalDirection(deltas, {"beta": beta, "num_channels": num_c})


def channels_kept(fs3: torch.Tensor, dt: torch.Tensor, betas: Sequence[float]) -> list[int]:
    """How many channels each beta keeps (``num_c`` of ``boundary``), to choose beta before editing."""
    r = (fs3.double() @ dt.double()).abs()
    return [int((r >= beta).sum()) for beta in betas]


def apply_direction(styles: Sequence[torch.Tensor], direction: GlobalDirection, alphas: Sequence[float]) -> list[torch.Tensor]:
    """``s + alpha * delta`` for every alpha: returns per-layer [B * len(alphas), C], image-major
    (image 0 at every alpha, then image 1, ...), computed in float64 as the reference does."""
    alphas = torch.tensor(list(alphas), dtype=torch.float64)
    out = []
    for s, d in zip(styles, direction.deltas):
        s64 = as_float64(s)
        edited = s64[:, None, :] + alphas[None, :, None].to(s64.device) * d.to(s64.device)[None, None, :]
        out.append(edited.reshape(-1, s.shape[-1]).to(s.device, s.dtype))
    return out


def edit_latents(g: Generator, latents: Latents, direction: GlobalDirection, alphas: Sequence[float],
                 names: dict[str, str] | None = None) -> tuple[Latents, Latents]:
    """(edited, originals): StyleSpace codes ``s + alpha * delta`` for every face and alpha,
    image-major (face 0 at every alpha, then face 1, ...), and the input codes repeated in the same
    order, for nodes that compare or blend the two (mask-local edits)."""
    if not alphas:
        raise ValueError(f"{called(names, 'alphas')}: no alpha given: list at least one edit strength")
    check_finite(torch.tensor([float(a) for a in alphas], dtype=torch.float64), called(names, "alphas"), batched=False)
    direction.check(g)
    check_finite(latents, called(names, "latents"))
    edited = Latents(styles=apply_direction(latents.to_styles(g), direction, alphas))
    n = len(alphas)
    if latents.w_plus is not None:
        return edited, Latents(w_plus=latents.w_plus.repeat_interleave(n, 0))
    return edited, Latents(styles=[s.repeat_interleave(n, 0) for s in latents.styles])


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
