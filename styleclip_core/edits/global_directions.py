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

StyleGAN3 generators (``models.stylegan3``) follow ``yuval-alaluf/stylegan3-editing``
(``editing/styleclip_global_directions``, SPEC 13.9) through the same functions, which branch on
what the generator's StyleSpace covers (``relevance_layers``):

* the layers a global direction covers: StyleGAN2 (StyleCLIP) the conv layers, toRGB excluded
  and left at zero; StyleGAN3 every StyleSpace key, the input's ``(c, s, tx, ty)`` and ToRGB
  included, so an edit also moves the Fourier-feature transform and the ToRGB styles;
* the statistics recipe (``statistics_recipe``): StyleCLIP 100 000 faces of ``RandomState(5)``,
  psi 0.7, cutoff 8; stylegan3-editing ``s_statistics.py`` 100 000 of ``RandomState(0)``, psi 0.5,
  cutoff 8; both the population std;
* the relevance table must cover every StyleGAN3 channel (stylegan3-editing's ``delta_i_c`` has
  one row per channel of every key; StyleGAN2's fs3 may stop early and is zero-filled).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..errors import CheckpointError
from ..formats.files import read_safetensors, save_atomic
from ..models.generator import Generator, conv_layers
from ..progress import Progress
from ..values import check_count
from .directions import Direction, as_float64


# ------------------------------------------------------------------------------------------
# what a generator's global directions cover


def covers_every_layer(g: Generator) -> bool:
    """Whether ``g``'s global directions follow stylegan3-editing (every StyleSpace key, input and
    ToRGB included: StyleGAN3) rather than StyleCLIP (conv layers only: StyleGAN2)."""
    return getattr(g, "architecture", "stylegan2") == "stylegan3"


def relevance_layers(g: Generator) -> list[int]:
    """Indices of the StyleSpace layers global directions cover, in fs3 row order: StyleGAN2 the
    conv layers (``models.generator.conv_layers``, toRGB excluded); StyleGAN3 every style layer,
    the input's 4 values and ToRGB included."""
    return [layer.index for layer in g.style_layers] if covers_every_layer(g) else conv_layers(g)


def num_relevance_channels(g: Generator) -> int:
    """The rows of a complete fs3 / delta_i_c for ``g``: the channels of ``relevance_layers``."""
    return sum(g.style_layers[i].channels for i in relevance_layers(g))


def describe_coverage(g: Generator) -> str:
    """What the rows of ``g``'s fs3 are, for messages: 'conv channels' or 'StyleSpace channels'."""
    return "StyleSpace channels (input and ToRGB included)" if covers_every_layer(g) else "conv channels"


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


REFERENCE = "reference"  # a style_statistics setting left at the reference's for the generator
STYLECLIP_STATISTICS = {"seed": 5, "psi": 0.7, "cutoff": 8}  # global_torch GenerateS (SPEC 3.3.1)
STYLEGAN3_EDITING_STATISTICS = {"seed": 0, "psi": 0.5, "cutoff": 8}  # stylegan3-editing s_statistics.py (SPEC 13.9)


def statistics_recipe(g: Generator) -> dict:
    """The reference's faces for ``g``'s style statistics (and its relevance faces): seed, psi
    and cutoff of StyleCLIP (StyleGAN2) or of stylegan3-editing (StyleGAN3)."""
    return dict(STYLEGAN3_EDITING_STATISTICS if covers_every_layer(g) else STYLECLIP_STATISTICS)


def sample_z(num: int, dim: int, seed: int = 5) -> torch.Tensor:
    """The reference's faces: legacy NumPy ``RandomState(seed).randn`` (float64), as float32."""
    return torch.from_numpy(np.random.RandomState(seed).randn(num, dim)).float()


def reference_styles(g: Generator, z: torch.Tensor, psi: float = 0.7, cutoff: int | None = 8) -> list[torch.Tensor]:
    """StyleSpace codes of faces as global_torch makes them: NVIDIA truncation (rows < cutoff only)."""
    ws = g.to_w_plus(g.mapping(z.to(g.w_avg.device)))
    ws = g.truncate(ws, psi, g.truncation_center(), cutoff=cutoff)
    return g.styles(ws)


@torch.no_grad()
def style_statistics(g: Generator, num_samples: int = 100_000, seed: int | str = REFERENCE, psi: float | str = REFERENCE, cutoff: int | None | str = REFERENCE, batch_size: int = 4096, progress: Progress | None = None) -> StyleStatistics:
    """Per-layer, per-channel mean and population std of the style codes of ``num_samples`` faces
    (global_torch ``GenerateS`` + ``GetCodeMS``; stylegan3-editing ``s_statistics.py``),
    accumulated in float64 without storing them all. ``seed``, ``psi`` and ``cutoff`` left at
    ``REFERENCE`` are the reference's for ``g`` (``statistics_recipe``); ``cutoff=None``
    truncates every W+ row."""
    num_samples, batch_size = check_count(num_samples, "num_samples"), check_count(batch_size, "batch_size")
    defaults = statistics_recipe(g)
    seed, psi, cutoff = (defaults[k] if v == REFERENCE else v for k, v in (("seed", seed), ("psi", psi), ("cutoff", cutoff)))
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
    """Cut a vector over the channels of ``relevance_layers`` (fs3 row order) into per-layer pieces
    (StyleCLIP ``SplitS``, stylegan3-editing ``features_channels_to_s``): zeros for the layers not
    covered (StyleGAN2's toRGB layers) and for layers the vector does not reach (a StyleGAN2 fs3
    with fewer rows)."""
    pieces, start = [], 0
    covered = set(relevance_layers(g))
    for layer in g.style_layers:
        piece = torch.zeros(layer.channels, dtype=values.dtype)
        if layer.index in covered:
            part = values[start:start + layer.channels]
            piece[: len(part)] = part
            start += layer.channels
        pieces.append(piece)
    return pieces


def boundary(fs3: torch.Tensor, dt: torch.Tensor, stats: StyleStatistics, g: Generator, beta: float) -> Direction:
    """global_torch ``GetBoundary`` / stylegan3-editing ``get_delta_s``: relevance r = fs3 @ dt;
    channels with |r| < beta dropped; r / max|r|; split over ``relevance_layers`` in StyleSpace
    order, per layer times the channel std. StyleGAN2: toRGB layers stay zero; StyleGAN3: every key
    moves, the input's transform codes and ToRGB included. Computed in float64 (the references use
    float32 torch / NumPy). Raises when beta drops every channel (global_torch divides 0/0;
    stylegan3-editing returns a zero direction: an edit that does nothing, here an error saying
    the largest usable beta)."""
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
    deltas = [piece * std.double().cpu() for piece, std in zip(split_conv_channels(r, g), stats.std)]
    return Direction("s", deltas, {"beta": beta, "num_channels": num_c})


def channels_kept(fs3: torch.Tensor, dt: torch.Tensor, betas: Sequence[float]) -> list[int]:
    """How many channels each beta keeps (``num_c`` of ``boundary``), to choose beta before editing."""
    r = (fs3.double() @ dt.double()).abs()
    return [int((r >= beta).sum()) for beta in betas]


def check_fs3(fs3: torch.Tensor, g: Generator, source: str | None = None) -> torch.Tensor:
    """``fs3`` itself if its rows fit ``g``; else a clear error (a ``CheckpointError`` naming the
    file when ``source``, the file it was read from, is given). StyleGAN2: at most one row per conv
    channel (the missing layers are zero-filled, as SplitS does); StyleGAN3: exactly one row per
    StyleSpace channel of every key (stylegan3-editing's ``delta_i_c``, which cannot be split
    otherwise)."""
    total = num_relevance_channels(g)
    exact = covers_every_layer(g)
    if fs3.ndim != 2 or (fs3.shape[0] != total if exact else fs3.shape[0] > total):
        rows = f"{total} {describe_coverage(g)}" if exact else f"rows <= {total} {describe_coverage(g)}"
        what = f"StyleGAN3 {g.size}px" if exact else f"{g.size}px"
        expected = f"fs3 of [{rows}, clip_dim] for this generator ({what})"
        if source is not None:
            raise CheckpointError(source, expected, f"an array of shape {list(fs3.shape)}; it belongs to another generator")
        raise ValueError(f"{expected}, found {list(fs3.shape)}")
    return fs3
