"""Channel relevance (``fs3``, SPEC 3.3.2-3.3.5; StyleCLIP ``global_torch/SingleChannel.py`` +
``GetFs``): for every StyleSpace conv channel, how the CLIP image embedding moves when that
channel goes from mean - alpha std to mean + alpha std, over ``num_images`` faces.

Two parts: ``channel_relevance`` is the batch loop (faces rendered up to the probed layer once,
then probes in batches that run across channel boundaries), and ``RelevanceRows`` is the
resumable store of finished rows (saved atomically, checked against the job on resume).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from ..formats.files import read_safetensors, save_atomic
from ..models.generator import Generator, conv_layers
from ..precision import autocast_dtype, canonical, torch_name
from ..progress import Progress
from ..values import check_count
from .global_directions import StyleStatistics, as_float64, reference_styles, sample_z

SAVE_EVERY_S = 60  # finished rows are written at most this often (and after each layer)
PREVIEW_EVERY_S = 2  # a probe image goes to the progress callback at most this often


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
    # 'bf16' / 'fp16': rendering and CLIP under torch.autocast, a GPU speed option whose rows
    # differ from fp32 ones by rounding (they are a different job, never mixed on resume)
    precision: str = "fp32"

    def __post_init__(self):
        self.precision = canonical(self.precision)
        self.num_images = check_count(self.num_images, "num_images")

    def layers(self, g: Generator) -> list[int]:
        return [i for i in conv_layers(g) if self.max_resolution is None or g.style_layers[i].resolution <= self.max_resolution]

    def record(self) -> dict:
        """The job as files record it (and cache names hash it): the precision by its torch
        dtype name, as caches written before the pack's one precision vocabulary named it."""
        return {**asdict(self), "precision": torch_name(self.precision)}


class RelevanceRows:
    """The finished fs3 rows of one job, in order, kept in ``path`` (when given) so an interrupted
    run resumes: ``save`` writes them atomically, ``save_if_due`` at most ``SAVE_EVERY_S`` apart.
    A file of another job is an error, never mixed in."""

    def __init__(self, path: str | None, job: RelevanceJob):
        self.path, self.job = path, job
        self.parts: list[torch.Tensor] = []
        self.saved = 0
        self.last_save = time.monotonic()
        if path is not None and os.path.exists(path):
            tensors, meta = read_safetensors(path, "partial channel relevance")
            if json.loads(meta.get("job", "{}")) != json.loads(json.dumps(job.record())):
                raise ValueError(f"{path} holds results of a different relevance job ({meta.get('job')}); remove it or choose another file")
            self.parts.append(tensors["fs3"])
            self.saved = self.count

    @property
    def count(self) -> int:
        return sum(p.shape[0] for p in self.parts)

    def add(self, rows: torch.Tensor):
        self.parts.append(rows.cpu())

    def save(self):
        if self.path is not None and self.count > self.saved:
            save_atomic({"fs3": self.rows()}, self.path, {"format": "styleclip-fs3", "job": json.dumps(self.job.record())}, overwrite=True)
            self.saved = self.count
        self.last_save = time.monotonic()

    def save_if_due(self):
        if time.monotonic() - self.last_save > SAVE_EVERY_S:
            self.save()

    def rows(self) -> torch.Tensor:
        return torch.cat(self.parts)


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
    layers = job.layers(g)
    if not layers:
        raise ValueError(f"no conv layer at or below {job.max_resolution}px to probe")
    device = g.w_avg.device
    total = sum(g.style_layers[i].channels for i in layers)
    store = RelevanceRows(partial_path, job)
    done = store.count
    batch = max(2, batch_size + batch_size % 2)  # even, so a face's (-, +) pair never straddles two batches
    tally = {} if tally is None else tally
    tally.setdefault("rendered", 0)
    tally.setdefault("encoded", 0)
    last_preview = time.monotonic()
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
                    for rows, images in _layer_batches(g, encode_image, prepare_image, base, mean[layer], std[layer], layer, completed, job, batch, tally):
                        if rows is not None:
                            store.add(rows)
                            completed += rows.shape[0]
                        store.save_if_due()
                        if progress is not None:
                            preview = images[-1:] if time.monotonic() - last_preview > PREVIEW_EVERY_S else None
                            last_preview = time.monotonic() if preview is not None else last_preview
                            progress(row + completed, total, preview)
                    store.save()
                if job.cumulative_mean:
                    base[layer] = mean[layer].expand_as(base[layer]).clone()
                row += width
    except BaseException:
        store.save()  # an interrupted run keeps what it finished
        raise
    return store.rows()


def _layer_batches(g, encode_image, prepare_image, base, mean, std, layer, completed, job, batch, tally) -> Iterator[tuple[torch.Tensor | None, torch.Tensor]]:
    """The probes of ``layer``'s channels from ``completed`` on, a batch at a time: yields (the rows
    of the channels this batch finished, or None; the batch's images)."""
    dtype = autocast_dtype(job.precision)
    per_channel = 2 * job.num_images
    width = g.style_layers[layer].channels
    # autocast around each call, never around a yield: its state is the thread's, and the caller's
    # code between batches (saving, progress) must run outside it
    with torch.autocast(g.w_avg.device.type, dtype=dtype, enabled=dtype is not None):
        state = _prefix_state(g, base, layer, batch)
    pending = []
    for first in range(completed * per_channel, width * per_channel, batch):
        probes = torch.arange(first, min(first + batch, width * per_channel), device=g.w_avg.device)
        with torch.autocast(g.w_avg.device.type, dtype=dtype, enabled=dtype is not None):
            feats, images = _probe(g, encode_image, prepare_image, base, state, layer, probes, mean, std, job, tally)
        pending.append(feats)
        ready = sum(len(f) for f in pending) // per_channel
        rows = None
        if ready:
            f = torch.cat(pending)
            rows = _rows(f[: ready * per_channel], job.num_images)
            pending = [f[ready * per_channel:]]
        yield rows, images


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
    s[torch.arange(len(probes)), channel] = (as_float64(mean[channel]) + as_float64(sign) * job.alpha * as_float64(std[channel])).to(s.device, s.dtype)
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
    f = F.normalize(as_float64(feats).reshape(-1, n, 2, feats.shape[-1]), dim=-1)
    diff = F.normalize(f[:, :, 1] - f[:, :, 0], dim=-1)
    return F.normalize(diff.mean(1), dim=-1).to(feats.device, torch.float32)
