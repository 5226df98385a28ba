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
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .errors import CheckpointError
from .generator import Generator
from .latents import Latents

Progress = Callable[[int, int, "torch.Tensor | None"], None]
SAVE_EVERY_S = 60  # partial relevance results are written at most this often (and after each layer)
PREVIEW_EVERY_S = 2  # a probe image goes to the progress callback at most this often


def conv_layers(g: Generator) -> list[int]:
    """Indices of the StyleSpace layers that fs3 covers: every modulated conv except toRGB."""
    return [l.index for l in g.style_layers if not l.is_torgb]


def num_conv_channels(g: Generator) -> int:
    return sum(g.style_layers[i].channels for i in conv_layers(g))


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
        _save_atomic(tensors, path, {"format": "styleclip-style-statistics", "recipe": json.dumps(self.recipe)})

    @staticmethod
    def load(path: str) -> "StyleStatistics":
        tensors, meta = _load(path, "style statistics")
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
    z_all = sample_z(num_samples, g.style_dim, seed)
    sums = sq = None
    for start in range(0, num_samples, batch_size):
        styles = reference_styles(g, z_all[start:start + batch_size], psi, cutoff)
        batch_sum = [_f64(s).sum(0).cpu() for s in styles]
        batch_sq = [_f64(s).square().sum(0).cpu() for s in styles]
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
        _save_atomic(tensors, path, {"format": "styleclip-global-direction", "info": json.dumps(self.info)})

    @staticmethod
    def load(path: str) -> "GlobalDirection":
        tensors, meta = _load(path, "a global direction")
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
        s64 = _f64(s)
        edited = s64[:, None, :] + alphas[None, :, None].to(s64.device) * d.to(s64.device)[None, None, :]
        out.append(edited.reshape(-1, s.shape[-1]).to(s.device, s.dtype))
    return out


def edit_latents(g: Generator, latents: Latents, direction: GlobalDirection, alphas: Sequence[float]) -> tuple[Latents, Latents]:
    """(edited, originals): StyleSpace codes ``s + alpha * delta`` for every face and alpha,
    image-major (face 0 at every alpha, then face 1, ...), and the input codes repeated in the same
    order, for nodes that compare or blend the two (mask-local edits)."""
    if not alphas:
        raise ValueError("no alpha given: list at least one edit strength")
    direction.check(g)
    edited = Latents(styles=apply_direction(latents.to_styles(g), direction, alphas))
    n = len(alphas)
    if latents.w_plus is not None:
        return edited, Latents(w_plus=latents.w_plus.repeat_interleave(n, 0))
    return edited, Latents(styles=[s.repeat_interleave(n, 0) for s in latents.styles])


# ------------------------------------------------------------------------------------------
# fs3 files


def check_fs3(fs3: torch.Tensor, g: Generator) -> torch.Tensor:
    total = num_conv_channels(g)
    if fs3.ndim != 2 or fs3.shape[0] > total:
        raise ValueError(f"fs3 must be [rows <= {total} conv channels, clip_dim] for this generator, found {list(fs3.shape)}")
    return fs3


def save_fs3(fs3: torch.Tensor, path: str, metadata: dict | None = None):
    """fs3 as .safetensors (tensor 'fs3'; ``metadata`` values JSON-encoded); never overwrites."""
    meta = {"format": "styleclip-fs3", **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    _save_atomic({"fs3": fs3.float().contiguous().cpu()}, path, meta)


def load_fs3(path: str) -> torch.Tensor:
    """An official ``fs3.npy`` (read without pickles) or one of ours (.safetensors)."""
    if path.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise CheckpointError(path, "a NumPy fs3 array [channels, clip_dim]", f"an unreadable file ({e})") from None
        return torch.from_numpy(np.asarray(array, dtype=np.float32))
    tensors, _ = _load(path, "channel relevance (fs3)")
    if "fs3" not in tensors:
        raise CheckpointError(path, "a tensor named 'fs3'", f"tensors {sorted(tensors)[:6]}")
    return tensors["fs3"].float()


def fs3_metadata(path: str) -> dict:
    """The metadata ``save_fs3`` wrote (JSON-decoded); empty for other files (an official .npy)."""
    if path.endswith(".npy"):
        return {}
    _, meta = _load(path, "channel relevance (fs3)")
    return {k: json.loads(v) for k, v in meta.items() if k != "format"}


# ------------------------------------------------------------------------------------------
# 2. channel relevance


def clip_input_for_relevance(images: torch.Tensor, size: int = 224, mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)) -> torch.Tensor:
    """What SingleChannel.py feeds CLIP: the image saved as uint8, then CLIP's own preprocessing
    (bicubic resize of the short side to 224, centre crop, mean/std normalisation)."""
    x = ((images.float() + 1) * 127.5).round().clamp(0, 255) / 255
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    x = F.interpolate(x, size=(max(size, round(h * scale)), max(size, round(w * scale))), mode="bicubic", antialias=True, align_corners=False)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., top:top + size, left:left + size].clamp(0, 1)
    return (x - torch.tensor(mean, device=x.device)[:, None, None]) / torch.tensor(std, device=x.device)[:, None, None]


PRECISIONS = ("float32", "bfloat16", "float16")


@dataclass
class RelevanceJob:
    """What ``channel_relevance`` computes and how, recorded with partial results so a resumed
    run continues only the same job."""

    num_images: int = 100
    alpha: float = 5.0
    max_resolution: int | None = 128  # as written in SingleChannel.py; None = every conv layer
    cumulative_mean: bool = True  # the reference's shallow-copy quirk (SPEC 3.3.5)
    seed: int = 5
    psi: float = 0.7
    cutoff: int | None = 8
    # 'bfloat16' / 'float16': rendering and CLIP under torch.autocast, a GPU speed option whose
    # rows differ from float32 ones by rounding (they are a different job, never mixed on resume)
    precision: str = "float32"

    def layers(self, g: Generator) -> list[int]:
        return [i for i in conv_layers(g) if self.max_resolution is None or g.style_layers[i].resolution <= self.max_resolution]


def channel_relevance(
    g: Generator,
    encode_image: Callable[[torch.Tensor], torch.Tensor],
    stats: StyleStatistics,
    job: RelevanceJob = RelevanceJob(),
    batch_size: int = 16,
    partial_path: str | None = None,
    progress: Progress | None = None,
    prepare_image: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tally: dict | None = None,
) -> torch.Tensor:
    """fs3: for each probed conv channel, the mean over ``num_images`` faces of the normalised change
    of the L2-normalised CLIP image embedding between s_c = mean - alpha std and mean + alpha std,
    normalised (SingleChannel.py + GetFs). Rows in conv-layer order, then channel.

    ``encode_image(x) -> [B, E]`` embeds ``prepare_image(images)`` (or the images in [-1, 1]
    themselves without ``prepare_image``). Work per probed layer: the faces are rendered up to the
    layer once; every probe then renders only the layers from the probed one on, in batches of
    ``batch_size`` probes that run across channel boundaries. A face's - and + probes whose encoder
    inputs are identical (the same uint8 image) are not encoded: their difference is zero either way.

    ``progress(finished channels, total, preview)`` follows every batch, so an interruption raised
    there stops within one batch. With ``partial_path`` finished rows are saved (atomically) at most
    ``SAVE_EVERY_S`` apart, after each layer and when interrupted, and a rerun of the same job
    resumes from them. ``tally`` (a dict) receives the numbers of probes rendered and encoded.
    """
    if job.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, found {job.precision!r}")
    layers = job.layers(g)
    if not layers:
        raise ValueError(f"no conv layer at or below {job.max_resolution}px to probe")
    device = g.w_avg.device
    total = sum(g.style_layers[i].channels for i in layers)
    rows = _load_partial(partial_path, job)
    finished = [rows] if rows is not None else []
    done = saved = rows.shape[0] if rows is not None else 0
    batch = max(2, batch_size + batch_size % 2)  # even, so a face's (-, +) pair never straddles two batches
    per_channel = 2 * job.num_images
    dtype = None if job.precision == "float32" else getattr(torch, job.precision)
    tally = {} if tally is None else tally
    tally.setdefault("rendered", 0)
    tally.setdefault("encoded", 0)
    last_save = last_preview = time.monotonic()

    def save():
        nonlocal last_save, saved
        count = sum(r.shape[0] for r in finished)
        if partial_path is not None and count > saved:
            _save_partial(partial_path, torch.cat(finished), job)
            saved = count
        last_save = time.monotonic()

    try:
        with torch.no_grad():
            base = [s.to(device) for s in reference_styles(g, sample_z(job.num_images, g.style_dim, job.seed), job.psi, job.cutoff)]
            mean = [m.to(device) for m in stats.mean]
            std = [s.to(device) for s in stats.std]
            row = 0
            for layer in layers:
                width = g.style_layers[layer].channels
                if row + width > done:
                    completed = max(0, done - row)
                    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                        state = _prefix_state(g, base, layer, batch)
                    pending = []
                    for first in range(completed * per_channel, width * per_channel, batch):
                        probes = torch.arange(first, min(first + batch, width * per_channel), device=device)
                        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                            feats, images = _probe(g, encode_image, prepare_image, base, state, layer, probes, mean[layer], std[layer], job, tally)
                        pending.append(feats)
                        ready = sum(len(f) for f in pending) // per_channel
                        if ready:
                            f = torch.cat(pending)
                            finished.append(_rows(f[: ready * per_channel], job.num_images).cpu())
                            pending = [f[ready * per_channel:]]
                            completed += ready
                        if time.monotonic() - last_save > SAVE_EVERY_S:
                            save()
                        if progress is not None:
                            preview = images[-1:] if time.monotonic() - last_preview > PREVIEW_EVERY_S else None
                            last_preview = time.monotonic() if preview is not None else last_preview
                            progress(row + completed, total, preview)
                    save()
                if job.cumulative_mean:
                    base[layer] = mean[layer].expand_as(base[layer]).clone()
                row += width
    except BaseException:
        save()  # an interrupted run keeps what it finished
        raise
    return torch.cat(finished)


def _prefix_state(g, base, layer, batch):
    """Features and RGB of every face just before ``layer``, rendered ``batch`` faces at a time."""
    parts = [g.synthesis_state([b[k:k + batch] for b in base], layer) for k in range(0, base[0].shape[0], batch)]
    rgb = None if parts[0][2] is None else torch.cat([p[2] for p in parts])
    return layer, torch.cat([p[1] for p in parts]), rgb


def _probe(g, encode_image, prepare_image, base, state, layer, probes, mean, std, job, tally):
    """Encoder features ``[len(probes), E]`` of probes numbered channel-major, then face, then
    (-, +): probe p sets channel p // 2n of face (p % 2n) // 2 to mean -/+ alpha std."""
    n2 = 2 * job.num_images
    channel, face = probes // n2, (probes % n2) // 2
    sign = (probes % 2) * 2 - 1
    s = base[layer][face]
    if job.cumulative_mean:  # channels before c were set to their means and stay there
        s = torch.where(torch.arange(s.shape[1], device=s.device)[None] <= channel[:, None], mean[None], s)
    else:
        s = s.clone()
        s[torch.arange(len(probes)), channel] = mean[channel]
    # mean + alpha * std rounded once from float64, as NumPy adds the float64 boundary to float32 codes
    s[torch.arange(len(probes)), channel] = (_f64(mean[channel]) + _f64(sign) * job.alpha * _f64(std[channel])).to(s.device, s.dtype)
    styles = [b[face] for b in base]
    styles[layer] = s
    rgb = state[2][face] if state[2] is not None else None
    images = g.synthesis(styles, start=(layer, state[1][face], rgb))
    x = prepare_image(images) if prepare_image is not None else images
    keep = torch.ones(len(probes), dtype=torch.bool, device=x.device)
    if prepare_image is not None:
        same = (x[0::2] == x[1::2]).flatten(1).all(1)
        keep = (~same).repeat_interleave(2)
        if not keep.any():
            keep[:2] = True  # one (identical) pair still sets the embedding width
    encoded = encode_image(x[keep]).float()
    feats = encoded.new_zeros(len(probes), encoded.shape[-1])
    feats[keep] = encoded
    tally["rendered"] += len(probes)
    tally["encoded"] += int(keep.sum())
    return feats, images


def _rows(feats, n):
    """GetFs on ``[channels * n * 2, E]`` features: normalise, (+) - (-), normalise, mean over faces, normalise."""
    f = F.normalize(_f64(feats).reshape(-1, n, 2, feats.shape[-1]), dim=-1)
    diff = F.normalize(f[:, :, 1] - f[:, :, 0], dim=-1)
    return F.normalize(diff.mean(1), dim=-1).to(feats.device, torch.float32)


def _f64(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float64 for the reference's double-precision steps; on the CPU where the device
    has no float64 (Apple's MPS)."""
    return (t.cpu() if t.device.type == "mps" else t).double()


def _save_partial(path, rows, job):
    _save_atomic({"fs3": rows.contiguous()}, path, {"format": "styleclip-fs3", "job": json.dumps(job.__dict__)}, overwrite=True)


def _load_partial(path, job):
    if path is None or not os.path.exists(path):
        return None
    tensors, meta = _load(path, "partial channel relevance")
    if json.loads(meta.get("job", "{}")) != json.loads(json.dumps(job.__dict__)):
        raise ValueError(f"{path} holds results of a different relevance job ({meta.get('job')}); remove it or choose another file")
    return tensors["fs3"]


# ------------------------------------------------------------------------------------------


def _save_atomic(tensors, path, meta, overwrite=False):
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name")
    tmp = path + ".partial"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)


def _load(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        return load_file(path), meta
    except (SafetensorError, OSError) as e:
        raise CheckpointError(path, what, f"an unreadable file ({e})") from None
