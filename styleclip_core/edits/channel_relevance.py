"""Channel relevance (``fs3``, SPEC 3.3.2-3.3.5; StyleCLIP ``global_torch/SingleChannel.py`` +
``GetFs``): for every StyleSpace conv channel, how the CLIP image embedding moves when that
channel goes from mean - alpha std to mean + alpha std, over ``num_images`` faces.

StyleGAN3 generators follow stylegan3-editing's ``preprocess/create_delta_i_c.py`` (SPEC 13.9;
its ``delta_i_c`` is this module's fs3) through the same loop: every channel of every StyleSpace
key, the input's 4 values and ToRGB included (``global_directions.relevance_layers``); faces of
``RandomState(0)``, psi 0.5, cutoff 8 (the first faces of its ``s_statistics.py``; ``RelevanceJob.for_generator``);
strength 5 (its FFHQ value); each probe rendered by full synthesis from S (StyleGAN3 has no
partial start); images resized bicubic (align_corners) to CLIP's size, ``[-1, 1] -> [0, 1]``,
clamped and normalised, without the uint8 step of SingleChannel.py (``clip_input_for_relevance``).

Decision on the reference quirks (``RelevanceJob.cumulative_mean``): reproduced, and on by
default for both generators, so that a table computed here with the defaults is the table the
reference script computes for the same generator and CLIP (and so comparable with the tables
the references released: StyleCLIP's ``fs3.npy``, stylegan3-editing's ``delta_i_c.npy`` for
sg3-r-ffhq-1024 and others, which those scripts made); off measures each channel alone:

* StyleGAN2, SingleChannel.py: the per-channel "set to mean" writes through a shallow list copy,
  so every channel probed before, in the layer and in finished layers, stays at its **mean**;
* StyleGAN3, create_delta_i_c.py: the probed value is written into the shared S codes and never
  restored, so every channel probed before, of this key and of every earlier key, stays at the
  **+ probe's value, mean + strength std**. This drifts much further from real faces than
  StyleGAN2's quirk (by the last keys every earlier key sits at mean + 5 std in every face, the
  input's transform codes included), so off is the better measurement for a table of one's own;
  on stays the default for the agreement above, and the choice is part of the job (cache name).

Two parts: ``channel_relevance`` is the batch loop (faces rendered up to the probed layer once,
then probes in batches that run across channel boundaries, computed in units of whole batches
that any process or ``torchrun`` rank can compute alone with the same bits), and
``RelevanceRows`` is the resumable store of finished rows (saved atomically, checked against the
job on resume; one file per rank under ``torchrun``).
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from .. import distributed
from ..formats.files import read_safetensors, save_atomic
from ..models.generator import Generator
from ..precision import autocast_dtype, canonical, torch_name
from ..progress import Progress
from ..values import check_count
from .directions import as_float64
from .global_directions import StyleStatistics, covers_every_layer, reference_styles, relevance_layers, sample_z, statistics_recipe

SAVE_EVERY_S = 60  # finished rows are written at most this often (and after each layer)
PREVIEW_EVERY_S = 2  # a probe image goes to the progress callback at most this often


STYLECLIP, STYLEGAN3_EDITING = "styleclip", "stylegan3-editing"  # the two references' image preprocessing


def clip_input_for_relevance(images: torch.Tensor, size: int = 224, mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711),
                             recipe: str = STYLECLIP) -> torch.Tensor:
    """What the reference feeds CLIP. ``recipe`` 'styleclip' (SingleChannel.py): the image saved
    as uint8, then CLIP's own preprocessing (bicubic resize of the short side to 224, centre
    crop, mean/std normalisation). 'stylegan3-editing' (create_delta_i_c.py ``generate_images``):
    bicubic resize to ``size`` x ``size`` with align_corners and no antialiasing, ``(x + 1) / 2``
    clamped to [0, 1], mean/std normalisation."""
    if recipe == STYLEGAN3_EDITING:
        x = F.interpolate(images.float(), size=(size, size), mode="bicubic", align_corners=True)
        x = ((x + 1) / 2).clamp(0, 1)
        return (x - torch.tensor(mean, device=x.device)[:, None, None]) / torch.tensor(std, device=x.device)[:, None, None]
    if recipe != STYLECLIP:
        raise ValueError(f"image preprocessing recipe must be {STYLECLIP!r} or {STYLEGAN3_EDITING!r}, found {recipe!r}")
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
    alpha: float = 5.0  # the probe's strength in stds (both references: 5; stylegan3-editing 10 off FFHQ)
    max_resolution: int | None = 128  # as written in SingleChannel.py; None = every conv layer (StyleGAN3: None only)
    cumulative_mean: bool = True  # the reference's quirk (SPEC 3.3.5; StyleGAN3: SPEC 13.9), see the module doc
    seed: int = 5  # the faces: StyleCLIP's (StyleGAN3: RelevanceJob.for_generator)
    psi: float = 0.7
    cutoff: int | None = 8
    # 'bf16' / 'fp16': rendering and CLIP under torch.autocast, a GPU speed option whose rows
    # differ from fp32 ones by rounding (they are a different job, never mixed on resume)
    precision: str = "fp32"

    def __post_init__(self):
        self.precision = canonical(self.precision)
        self.num_images = check_count(self.num_images, "num_images")

    @classmethod
    def for_generator(cls, g: Generator, **settings) -> "RelevanceJob":
        """The reference's job for ``g`` with ``settings`` changed: StyleCLIP's defaults for
        StyleGAN2; stylegan3-editing's for StyleGAN3 (every layer, faces of ``RandomState(0)``
        at psi 0.5, cutoff 8, as its ``s_statistics.py`` stores them for create_delta_i_c.py)."""
        if covers_every_layer(g):
            return cls(**{"max_resolution": None, **statistics_recipe(g), **settings})
        return cls(**settings)

    def layers(self, g: Generator) -> list[int]:
        """The StyleSpace layers probed, in fs3 row order (StyleGAN2: the conv layers up to
        ``max_resolution``; StyleGAN3: every layer)."""
        if covers_every_layer(g):
            if self.max_resolution is not None:
                raise ValueError(f"StyleGAN3 channel relevance covers every channel of every StyleSpace key (stylegan3-editing's create_delta_i_c.py): "
                                 f"probing only layers up to {self.max_resolution} px is StyleCLIP's StyleGAN2 recipe; choose every layer (max_resolution None)")
            return relevance_layers(g)
        return [i for i in relevance_layers(g) if self.max_resolution is None or g.style_layers[i].resolution <= self.max_resolution]

    def record(self) -> dict:
        """The job as files record it (and cache names hash it): the precision by its torch
        dtype name, as caches written before the pack's one precision vocabulary named it."""
        return {**asdict(self), "precision": torch_name(self.precision)}


class RelevanceStopped(Exception):
    """A run stopped after ``max_rows`` new rows, as asked: its rows are in the partial files, and
    a rerun of the same job (with any number of ranks) continues from them."""


RANK_SUFFIX = ".rank"  # rank r of a multi-rank run keeps its rows in <partial path>.rank<r>
_NUMBERED = "rows"  # marks, in a partial file's job record, rows that are not 0, 1, ... (see RelevanceRows.save)


def probe_batch(batch_size: int) -> int:
    """The probes rendered at once: ``batch_size`` made even, so a face's (-, +) pair never
    straddles two batches."""
    return max(2, batch_size + batch_size % 2)


@dataclass(frozen=True)
class RelevanceUnit:
    """Channels ``start`` to ``stop`` of ``layer`` (fs3 rows ``row`` on): the smallest run of
    channels whose probes fill whole batches of the single-process loop, so computing a unit alone
    renders and encodes exactly the batches an uninterrupted single-process run renders for it,
    and its rows are the same bits whichever process, rank or resume computes them."""

    layer: int
    row: int
    start: int
    stop: int

    @property
    def rows(self) -> range:
        return range(self.row, self.row + self.stop - self.start)


def relevance_units(g: Generator, job: RelevanceJob, batch_size: int) -> list[RelevanceUnit]:
    """The job's channels in units (``RelevanceUnit``), in fs3 row order. A layer's probes are
    numbered channel-major (2 x num_images per channel) and batched from the layer's first probe
    on; ``batch / gcd(2 num_images, batch)`` channels end exactly on a batch boundary (2 channels
    for the reference's 100 faces and batch 16), and a layer's last unit ends with the layer."""
    batch = probe_batch(batch_size)
    per_channel = 2 * job.num_images
    span = batch // math.gcd(per_channel, batch)
    units, row = [], 0
    for layer in job.layers(g):
        width = g.style_layers[layer].channels
        units += [RelevanceUnit(layer, row + start, start, min(start + span, width)) for start in range(0, width, span)]
        row += width
    return units


def rank_partial_path(partial_path: str, rank: int, size: int) -> str:
    """The partial file a process writes: ``partial_path`` alone, rank r of several ranks
    ``partial_path.rank<r>``."""
    return partial_path if size <= 1 else f"{partial_path}{RANK_SUFFIX}{rank}"


def partial_files(partial_path: str) -> list[str]:
    """The partial files of a job that exist here: ``partial_path`` (a single-process run's) and
    ``partial_path.rank<r>`` (multi-rank runs', any number of ranks)."""
    folder, base = os.path.split(os.path.abspath(partial_path))
    found = [partial_path] if os.path.isfile(partial_path) else []
    if os.path.isdir(folder):
        pattern = re.compile(re.escape(base + RANK_SUFFIX) + r"\d+")
        found += [os.path.join(os.path.dirname(partial_path), f) for f in sorted(os.listdir(folder)) if pattern.fullmatch(f)]
    return found


def read_rows(path: str, job: RelevanceJob) -> dict[int, torch.Tensor]:
    """The finished rows of a partial file, by fs3 row; a file of another job is an error."""
    tensors, meta = read_safetensors(path, "partial channel relevance")
    recorded = json.loads(meta.get("job", "{}"))
    numbered = recorded.pop(_NUMBERED, None) is not None
    if recorded != json.loads(json.dumps(job.record())):
        raise ValueError(f"{path} holds results of a different relevance job ({meta.get('job')}); remove it or choose another file")
    rows = tensors["fs3"]
    index = tensors["rows"].tolist() if numbered or "rows" in tensors else range(rows.shape[0])
    return {int(i): r for i, r in zip(index, rows)}


class RelevanceRows:
    """The finished fs3 rows of one job by row number, kept in ``path`` (when given) so an
    interrupted run resumes: ``save`` writes them atomically, ``save_if_due`` at most
    ``SAVE_EVERY_S`` apart. A file of another job is an error, never mixed in.

    The file holds ``fs3`` (the rows, in row order) and ``rows`` (their numbers). Rows 0 to n-1
    (what a single process finishes) read as they did before ``rows`` existed; other sets (a rank's
    share) add a mark to the job record, so that a version of this code that knew only leading
    rows refuses the file instead of misplacing them."""

    def __init__(self, path: str | None, job: RelevanceJob):
        self.path, self.job = path, job
        self.by_row: dict[int, torch.Tensor] = {}
        self.unsaved = False
        self.last_save = time.monotonic()
        if path is not None and os.path.exists(path):
            self.by_row = read_rows(path, job)

    @property
    def count(self) -> int:
        return len(self.by_row)

    def add(self, rows: torch.Tensor, first: int | None = None):
        """Rows ``first``, ``first + 1``, ... (default: after the rows held, ``count``)."""
        first = self.count if first is None else first
        self.by_row.update({first + i: r for i, r in enumerate(rows.cpu())})
        self.unsaved = True

    def save(self):
        if self.path is not None and self.unsaved:
            index = sorted(self.by_row)
            record = self.job.record()
            if index != list(range(len(index))):
                record = {**record, _NUMBERED: "numbered"}
            tensors = {"fs3": torch.stack([self.by_row[i] for i in index]), "rows": torch.tensor(index, dtype=torch.int64)}
            save_atomic(tensors, self.path, {"format": "styleclip-fs3", "job": json.dumps(record)}, overwrite=True)
            self.unsaved = False
        self.last_save = time.monotonic()

    def save_if_due(self):
        if time.monotonic() - self.last_save > SAVE_EVERY_S:
            self.save()

    def rows(self) -> torch.Tensor:
        return _in_order(self.by_row, self.count)


def _in_order(by_row: dict[int, torch.Tensor], total: int) -> torch.Tensor:
    missing = [i for i in range(total) if i not in by_row]
    if missing:
        raise RuntimeError(f"channel relevance: rows {missing[:5]} (of {len(missing)} missing) were never computed")
    return torch.stack([by_row[i] for i in range(total)])


def channel_relevance(
    g: Generator,
    encode_image: Callable[[torch.Tensor], torch.Tensor],
    stats: StyleStatistics,
    job: RelevanceJob | None = None,
    batch_size: int = 16,
    partial_path: str | None = None,
    progress: Progress | None = None,
    prepare_image: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tally: dict | None = None,
    max_rows: int | None = None,
) -> torch.Tensor | None:
    """fs3: for each probed conv channel, the mean over ``num_images`` faces of the normalised change
    of the L2-normalised CLIP image embedding between s_c = mean - alpha std and mean + alpha std,
    normalised (SingleChannel.py + GetFs; StyleGAN3: create_delta_i_c.py over every channel of every
    key). Rows in layer order, then channel. ``job`` None: ``RelevanceJob.for_generator(g)``.

    ``encode_image(x) -> [B, E]`` embeds ``prepare_image(images)`` (or the images in [-1, 1]
    themselves without ``prepare_image``). Work per probed layer: StyleGAN2 renders the faces up to
    the layer once and every probe only the layers from the probed one on; StyleGAN3 renders every
    probe from S in full (it has no partial start). Probes go in batches of ``batch_size`` that run
    across channel boundaries. A face's - and + probes whose encoder inputs are identical (the
    same uint8 image) are not encoded: their difference is zero either way.

    The channels are computed in ``relevance_units``: whole batches of the single-process loop, so
    rows are the same bits whichever process computes them (for the same ``batch_size``, device
    type and thread count). Under ``torchrun`` (``distributed.init`` called, several ranks) the
    units not finished yet are dealt round robin to the ranks; rank 0 gathers every row at the end
    and returns fs3, the other ranks return None.

    ``progress(finished, total, preview)`` follows every batch, so an interruption raised there
    stops within one batch (one process: channels of the job; several ranks: channels of this
    rank's share). With ``partial_path`` finished rows are saved (atomically) at most
    ``SAVE_EVERY_S`` apart, after each layer and when interrupted: by one process to
    ``partial_path``, by rank r of several to ``partial_path.rank<r>``; a rerun of the same job with
    any number of ranks reads every partial file it finds and computes only the missing units.
    ``max_rows`` stops each process at the end of the unit that brings its new rows to at least
    that many (``RelevanceStopped``, rows kept). ``tally`` (a dict) receives the numbers of probes
    rendered and encoded (on rank 0: of all ranks).
    """
    job = RelevanceJob.for_generator(g) if job is None else job
    layers = job.layers(g)
    if not layers:
        raise ValueError(f"no conv layer at or below {job.max_resolution}px to probe")
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, found {max_rows}")
    device = g.w_avg.device
    rank, size = distributed.group_world()
    units = relevance_units(g, job, batch_size)
    total = sum(g.style_layers[i].channels for i in layers)
    own = None if partial_path is None else rank_partial_path(partial_path, rank, size)
    store = RelevanceRows(own, job)
    known = dict(store.by_row)  # every finished row this process can read, its own and other files'
    for other in partial_files(partial_path) if partial_path is not None else []:
        if other != own:
            known.update(read_rows(other, job))
    done = set(known)
    if size > 1:
        done = set().union(*map(set, distributed.all_gather_object(sorted(done))))
    mine = distributed.shard([u for u in units if not set(u.rows) <= done], rank, size)
    share = sum(u.stop - u.start for u in mine)
    batch = probe_batch(batch_size)
    tally = {} if tally is None else tally
    tally.setdefault("rendered", 0)
    tally.setdefault("encoded", 0)
    counts = {"rendered": 0, "encoded": 0}
    last_preview = time.monotonic()
    finished = new = 0
    stopped = False
    try:
        with torch.no_grad():
            base = [s.to(device) for s in reference_styles(g, sample_z(job.num_images, g.style_dim, job.seed), job.psi, job.cutoff)]
            mean = [m.to(device) for m in stats.mean]
            std = [s.to(device) for s in stats.std]
            parked = [_parked_value(g, job, m, sd) for m, sd in zip(mean, std)]
            for layer in layers:
                here = [u for u in mine if u.layer == layer]
                if here and not stopped:
                    dtype = autocast_dtype(job.precision)
                    # autocast around each call, never around a yield: its state is the thread's,
                    # and the code between batches (saving, progress) must run outside it
                    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                        state = _prefix_state(g, base, layer, batch)
                    for unit in here:
                        for first, rows, images in _unit_batches(g, encode_image, prepare_image, base, state, mean[layer], std[layer], parked[layer], unit, job, batch, counts):
                            if rows is not None:
                                store.add(rows, first)
                                known.update(zip(range(first, first + rows.shape[0]), rows.cpu()))
                                finished += rows.shape[0]
                                new += rows.shape[0]
                            store.save_if_due()
                            if progress is not None:
                                preview = images[-1:] if time.monotonic() - last_preview > PREVIEW_EVERY_S else None
                                last_preview = time.monotonic() if preview is not None else last_preview
                                progress(*((len(known), total) if size == 1 else (finished, share)), preview)
                        if max_rows is not None and new >= max_rows:
                            stopped = True
                            break
                    store.save()
                if job.cumulative_mean:  # a finished layer stays where the reference leaves it
                    base[layer] = parked[layer].expand_as(base[layer]).clone()
    except BaseException:
        store.save()  # an interrupted run keeps what it finished
        raise
    finally:
        tally["rendered"] += counts["rendered"]
        tally["encoded"] += counts["encoded"]
    store.save()
    if size == 1:
        if stopped:
            raise RelevanceStopped(f"stopped after {new} new rows, as asked: {len(known)} of {total} rows are done; run the same job again to continue")
        return _in_order(known, total)
    return _gather_rows(known, total, stopped, new, counts, tally, rank, size)


def _gather_rows(known, total, stopped, new, counts, tally, rank, size):
    """Rank 0: every rank's rows, each sent once (by the lowest rank that holds it); None elsewhere."""
    views = distributed.all_gather_object((stopped, sorted(known)))
    if any(s for s, _ in views):
        done = len(set().union(*(set(rows) for _, rows in views)))
        raise RelevanceStopped(f"rank {rank} stopped after {new} new rows (ranks stop at max_rows each): {done} of {total} rows are done; "
                               "run the same job again (any number of ranks) to continue")
    sender: dict[int, int] = {}
    for r, (_, rows) in enumerate(views):
        for i in rows:
            sender.setdefault(i, r)
    parts = distributed.gather_object(({i: known[i] for i in known if sender[i] == rank}, counts), 0)
    if rank != 0:
        return None
    by_row: dict[int, torch.Tensor] = {}
    for r, (rows, c) in enumerate(parts):
        by_row.update(rows)
        if r != rank:  # this rank's own counts are in the tally already
            tally["rendered"] += c["rendered"]
            tally["encoded"] += c["encoded"]
    return _in_order(by_row, total)


def _unit_batches(g, encode_image, prepare_image, base, state, mean, std, parked, unit, job, batch, tally) -> Iterator[tuple[int, torch.Tensor | None, torch.Tensor]]:
    """The probes of ``unit``'s channels, a batch at a time: yields (the fs3 row of the first row
    finished, the rows of the channels this batch finished or None, the batch's images)."""
    dtype = autocast_dtype(job.precision)
    per_channel = 2 * job.num_images
    end = unit.stop * per_channel
    row = unit.row
    pending = []
    for first in range(unit.start * per_channel, end, batch):
        probes = torch.arange(first, min(first + batch, end), device=g.w_avg.device)
        with torch.autocast(g.w_avg.device.type, dtype=dtype, enabled=dtype is not None):
            feats, images = _probe(g, encode_image, prepare_image, base, state, unit.layer, probes, mean, std, parked, job, tally)
        pending.append(feats)
        ready = sum(len(f) for f in pending) // per_channel
        rows = None
        if ready:
            f = torch.cat(pending)
            rows = _rows(f[: ready * per_channel], job.num_images)
            pending = [f[ready * per_channel:]]
        yield row, rows, images
        row += 0 if rows is None else rows.shape[0]


def _parked_value(g, job, mean, std):
    """Where the reference leaves a channel it has probed (``cumulative_mean``): StyleGAN2
    (SingleChannel.py) at its mean; StyleGAN3 (create_delta_i_c.py) at the + probe's value,
    mean + alpha std, rounded once from float64 as the probes are."""
    if not covers_every_layer(g):
        return mean
    return (as_float64(mean) + job.alpha * as_float64(std)).to(mean.device, mean.dtype)


def _prefix_state(g, base, layer, batch):
    """Features and RGB of every face just before ``layer``, rendered ``batch`` faces at a time;
    None for a generator without a partial start (StyleGAN3: every probe renders in full)."""
    if not callable(getattr(g, "synthesis_state", None)):
        return None
    parts = [g.synthesis_state([b[k:k + batch] for b in base], layer) for k in range(0, base[0].shape[0], batch)]
    rgb = None if parts[0][2] is None else torch.cat([p[2] for p in parts])
    return layer, torch.cat([p[1] for p in parts]), rgb


def _probe(g, encode_image, prepare_image, base, state, layer, probes, mean, std, parked, job, tally):
    """Encoder features ``[len(probes), E]`` of probes numbered channel-major, then face, then
    (-, +): probe p sets channel p // 2n of face (p % 2n) // 2 to mean -/+ alpha std."""
    n2 = 2 * job.num_images
    channel, face = probes // n2, (probes % n2) // 2
    sign = (probes % 2) * 2 - 1
    s = base[layer][face]
    if job.cumulative_mean:  # channels before c stay where the reference left them (``parked``); c is set below
        s = torch.where(torch.arange(s.shape[1], device=s.device)[None] < channel[:, None], parked[None], s)
    else:
        s = s.clone()
        s[torch.arange(len(probes)), channel] = mean[channel]
    # mean + alpha * std rounded once from float64, as NumPy adds the float64 boundary to float32 codes
    s[torch.arange(len(probes)), channel] = (as_float64(mean[channel]) + as_float64(sign) * job.alpha * as_float64(std[channel])).to(s.device, s.dtype)
    styles = [b[face] for b in base]
    styles[layer] = s
    if state is None:
        images = g.synthesis(styles)
    else:
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
