"""Global directions from files: style statistics and channel relevance (fs3) computed once per
generator and CLIP and then reused, official ``fs3.npy`` files, and the CLIP encoder of relevance.

Cache files live in a folder (in ComfyUI: ``models/styleclip_global``) under names made of
content fingerprints, so a result is found again whatever the model files are called, and is
never taken for another model's:

* ``stats-g<generator>-r<recipe>.safetensors``: style statistics of a generator;
* ``fs3-g<generator>-c<CLIP>-j<job>.safetensors``: channel relevance for a generator and CLIP;
* ``<fs3 file>.incomplete``: the finished rows of an interrupted computation (resumed from);
  ``<fs3 file>.incomplete.rank<r>``: those of rank r of a ``torchrun`` computation (any run of
  the same job, with any number of ranks, resumes from all of them);
* ``<file>.lock``: held by the process computing that file, refreshed as it works.

``<generator>`` / ``<CLIP>`` are the first 12 hex digits of a SHA-256 over the weights (the whole
generator with its W average; CLIP's image tower and image preprocessing, the parts fs3 depends
on), ``<recipe>`` / ``<job>`` 8 hex digits of one over the settings. The full fingerprints,
settings and readable model names are in each file's metadata and checked when it is read.
Nothing is overwritten: a file with the expected name but other metadata is an error.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

from .. import distributed
from ..formats.clip_files import clip_fingerprint
from ..formats.files import digest
from ..formats.fs3_files import fs3_metadata, load_fs3, save_fs3
from ..formats.generator_files import generator_fingerprint
from ..models.clip import ClipModel
from ..models.generator import Generator
from ..progress import Progress
from ..values import check_count
from .channel_relevance import STYLECLIP, STYLEGAN3_EDITING, RelevanceJob, channel_relevance, clip_input_for_relevance, partial_files
from .directions import Direction
from .global_directions import StyleStatistics, boundary, channels_kept, check_fs3, covers_every_layer, statistics_recipe, style_statistics

FS3_EXTENSIONS = (".npy", ".safetensors")
INCOMPLETE = ".incomplete"
LOCK_STALE_S = 900  # a lock not refreshed for this long belongs to a process that is gone

def relevance_encoder(clip: ClipModel, g: Generator | None = None):
    """``(prepare_image, encode_image)`` for ``channel_relevance`` of ``g``: CLIP's own
    preprocessing as the reference applies it, then the network. StyleGAN2 (and ``g`` None):
    SingleChannel.py's (uint8 image, bicubic resize, centre crop, mean/std); StyleGAN3:
    create_delta_i_c.py's (bicubic resize with align_corners, [0, 1] clamp, mean/std).
    ``ClipModel`` encodes in its 'styleclip' mode: at CLIP's input size its resize is the
    identity and it adds no normalisation ('normalized' would normalise a second time)."""
    model = clip.with_preprocessing("styleclip")
    recipe = STYLEGAN3_EDITING if g is not None and covers_every_layer(g) else STYLECLIP

    def prepare(images: torch.Tensor) -> torch.Tensor:
        return clip_input_for_relevance(images, clip.image_size, clip.mean, clip.std, recipe)

    return prepare, model.encode_images


# ---------------------------------------------------------------------------------------------


@dataclass
class Relevance:
    """fs3 with what it belongs to: the generator, its style statistics and (when known) the CLIP
    whose image space its columns are."""

    generator: Generator
    fs3: torch.Tensor
    stats: StyleStatistics
    clip_key: str | None  # None: an official file, made with OpenAI's ViT-B/32
    source: str
    info: dict = field(default_factory=dict)

    def text_direction(self, clip: ClipModel, neutral: str, target: str) -> torch.Tensor:
        if self.clip_key is not None and clip_fingerprint(clip) != self.clip_key:
            raise ValueError(
                f"this channel relevance ({os.path.basename(self.source)}) was computed with another CLIP model; "
                "the text direction must come from the CLIP whose image space it measures"
            )
        return clip.text_direction(neutral, target, templates=True).detach().cpu()

    def direction(self, clip: ClipModel, neutral: str, target: str, beta: float) -> Direction:
        """StyleSpace direction for the edit neutral -> target (global_torch ``GetDt`` +
        ``GetBoundary``)."""
        d = boundary(self.fs3, self.text_direction(clip, neutral, target), self.stats, self.generator, beta)
        d.info.update(neutral=neutral, target=target, relevance=os.path.basename(self.source))
        return d

    def channels_kept(self, clip: ClipModel, neutral: str, target: str, betas: Sequence[float]) -> list[int]:
        return channels_kept(self.fs3, self.text_direction(clip, neutral, target), betas)


def statistics_for(g: Generator, folders: Sequence[str], num_samples: int = 100_000, progress: Progress | None = None) -> tuple[StyleStatistics, str]:
    """Style statistics of ``g`` from the cache, else computed (no rendering; seconds to a minute)
    and written to ``folders[0]``, with the reference's recipe for ``g`` (``statistics_recipe``:
    StyleCLIP's for StyleGAN2, stylegan3-editing's for StyleGAN3). Returns (statistics, file)."""
    num_samples = check_count(num_samples, "statistics_samples")
    key = generator_fingerprint(g)
    faces = statistics_recipe(g)
    recipe = {"num_samples": num_samples, **faces, "generator": key}
    name = f"stats-g{key[:12]}-r{digest(recipe)[:8]}.safetensors"

    def read(path):
        stats = StyleStatistics.load(path)
        if {k: stats.recipe.get(k) for k in recipe} != recipe:
            raise ValueError(f"{path} holds other statistics ({stats.recipe}) than its name says; move it away")
        return stats

    found = _find(folders, name)
    if found:
        return read(found), found
    path = os.path.join(folders[0], name)
    with _lock(path) as beat:
        if os.path.exists(path):  # finished by another process meanwhile
            return read(path), path
        stats = style_statistics(g, num_samples, **faces, progress=_beating(beat, progress))
        stats.recipe.update(recipe, generator_source=getattr(g, "source", ""))
        stats.save(path)
    return stats, path


def relevance_for(
    g: Generator,
    clip: ClipModel,
    folders: Sequence[str],
    job: RelevanceJob | None = None,
    batch_size: int = 16,
    statistics_samples: int = 100_000,
    progress: Progress | None = None,
    max_rows: int | None = None,
) -> Relevance | None:
    """fs3 of ``g`` and ``clip`` for ``job`` (None: ``RelevanceJob.for_generator(g)``, the
    reference's for ``g``): read from the cache when there, else computed (hours:
    see the README), resuming from the partial files of an interrupted run, and written to
    ``folders[0]``. ``info`` says which, where and how long. ``max_rows``: stop each process after
    about that many new rows (``RelevanceStopped``; a rerun continues).

    Under ``torchrun`` (``distributed.init`` called, several ranks) every rank calls this with the
    same arguments: rank 0 reads or computes the style statistics and sends them to the others,
    holds the lock, and decides whether the cache has the file; the ranks share the channels
    (``channel_relevance``), and rank 0 writes the same file, with the same rows, that one
    process writes and returns it; the other ranks wait until it is written and return None."""
    job = RelevanceJob.for_generator(g) if job is None else job
    job.layers(g)  # a job that does not fit g is an error before any statistics are computed
    rank, size = distributed.group_world()
    main = rank == 0
    stats, stats_path = statistics_for(g, folders, statistics_samples, progress) if main else (None, None)
    if size > 1:
        stats, stats_path = distributed.broadcast_object((_on_cpu(stats), stats_path) if main else None)
    gk, ck = generator_fingerprint(g), clip_fingerprint(clip)
    identity = {"generator": gk, "clip": ck, "job": job.record(), "statistics": {k: v for k, v in stats.recipe.items() if k != "generator_source"}}
    name = f"fs3-g{gk[:12]}-c{ck[:12]}-j{digest(identity['job'], identity['statistics'])[:8]}.safetensors"

    def read(path):
        meta = fs3_metadata(path)
        if {k: meta.get(k) for k in identity} != json.loads(json.dumps(identity)):
            raise ValueError(f"{path} holds channel relevance of other models or settings than its name says; move it away")
        fs3 = check_fs3(load_fs3(path), g, path)
        return Relevance(g, fs3, stats, ck, path, {"computed": False, "statistics": stats_path})

    found = distributed.broadcast_object(_find(folders, name) if main else None)
    if found:
        return read(found) if main else None
    path = os.path.join(folders[0], name)
    with _lock(path) if main else contextlib.nullcontext(lambda: None) as beat:
        if distributed.broadcast_object(os.path.exists(path) if main else None):  # finished by another process meanwhile
            return read(path) if main else None
        prepare, encode = relevance_encoder(clip, g)
        tally: dict = {}
        start = time.monotonic()
        fs3 = channel_relevance(g, encode, stats, job, batch_size, path + INCOMPLETE, _beating(beat, progress), prepare, tally, max_rows)
        if main:
            save_fs3(fs3, path, {**identity, "generator_source": getattr(g, "source", ""), "clip_name": clip.name})
    distributed.barrier()  # the file is written before any rank removes a partial file
    for partial in partial_files(path + INCOMPLETE):
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
    if not main:
        return None
    info = {"computed": True, "statistics": stats_path, "seconds": time.monotonic() - start, "ranks": size, **tally}
    return Relevance(g, fs3, stats, ck, path, info)


def _on_cpu(stats: StyleStatistics) -> StyleStatistics:
    return StyleStatistics([m.cpu() for m in stats.mean], [s.cpu() for s in stats.std], stats.recipe)


def relevance_from_file(path: str, g: Generator, folders: Sequence[str], statistics_samples: int = 100_000, clip: ClipModel | None = None, progress: Progress | None = None) -> Relevance:
    """An fs3 file (official ``fs3.npy``, all conv rows or fewer; stylegan3-editing's
    ``delta_i_c.npy`` for a StyleGAN3 generator, every row; or one this pack wrote) with the
    generator's statistics. Files this pack wrote are checked against ``g`` and ``clip``."""
    fs3 = check_fs3(load_fs3(path), g, path)
    meta = fs3_metadata(path)
    if meta.get("generator") not in (None, generator_fingerprint(g)):
        raise ValueError(f"{os.path.basename(path)} was computed for another generator ({meta.get('generator_source', '?')})")
    clip_key = meta.get("clip")
    if clip is not None and clip_key is not None and clip_key != clip_fingerprint(clip):
        raise ValueError(f"{os.path.basename(path)} was computed with another CLIP model ({meta.get('clip_name', '?')})")
    stats, stats_path = statistics_for(g, folders, statistics_samples, progress)
    return Relevance(g, fs3, stats, clip_key, path, {"computed": False, "statistics": stats_path})


def is_fs3_file(name: str) -> bool:
    """Files of the cache folder that hold fs3 (not statistics, incomplete results or locks)."""
    base = os.path.basename(name)
    return base.endswith(FS3_EXTENSIONS) and not base.startswith("stats-")


# ---------------------------------------------------------------------------------------------


def _find(folders, name):
    return next((os.path.join(f, name) for f in folders if os.path.isfile(os.path.join(f, name))), None)


def _beating(beat, progress):
    def report(done, total, preview=None):
        beat()
        if progress is not None:
            progress(done, total, preview)

    return report


@contextlib.contextmanager
def _lock(path):
    """Only one process computes ``path``; the holder refreshes the lock with ``beat()``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    lock = path + ".lock"
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            if attempt == 0 and _stale(lock):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(lock)
                continue
            raise RuntimeError(
                f"{os.path.basename(path)} is being computed by another process ({_read(lock)}); wait for it to finish, "
                f"or delete {lock} if that process is gone"
            ) from None
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
    try:
        yield lambda: os.utime(lock)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)


def _read(lock):
    try:
        with open(lock) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _stale(lock):
    try:
        if time.time() - os.path.getmtime(lock) > LOCK_STALE_S:
            return True
    except FileNotFoundError:
        return True
    holder = _read(lock)
    if os.name != "posix" or holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False  # without a cheap, harmless liveness test only the age tells
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
