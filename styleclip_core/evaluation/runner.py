"""Run the edits of a config on a set of faces, score and time them, write the results.

For each edit and face: the face's original image (rendered once from its W+ code, untimed), the
edit (timed from the face's code to the edited image on the CPU: the method's own work and the
render, ``time.perf_counter``, the device synchronised), then ``edits.metrics.edit_metrics`` on
both images as they would be saved (clamped to [0, 1]). Work an edit does once for all faces (the
text direction of a global edit, the CLIP text features of the losses) is timed separately as
its setup; loading models and files (the generator, CLIP, ArcFace, LPIPS, e4e, a mapper file, fs3
and the style statistics) is not timed.

Photos are compared with their e4e reconstruction (the render of the inverted code), not with the
photo: the scores measure the edit, not the inversion.

``write_results`` writes ``results.md`` and ``results.csv`` and never overwrites: when either name
exists it takes the first free ``results_00001.*``, ``results_00002.*``, ... (both files, and
the images folder, under the same number).
"""
from __future__ import annotations

import csv
import datetime
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..edits.losses import ClipLoss, IdentityLoss, LatentL2Loss, LossSet
from ..edits.metrics import METRICS, EditMetrics, edit_metrics, format_value
from ..edits.optimize import optimize_latents
from ..models.latents import Latents, sample_latents
from ..models.render import from_unit_range, render, to_unit_range
from .config import EditSpec
from . import photo_input
from .photo_input import Aligner, read_photo, read_points

NOTHING = lambda *_: None  # noqa: E731
PHOTO_EXTENSIONS, list_photos = photo_input.PHOTO_EXTENSIONS, photo_input.list_photos  # where the evaluate command finds them


@dataclass
class Models:
    """What the edits and metrics run: the generator, CLIP (edits and CLIP metrics), ArcFace and
    LPIPS (optional), the fs3 file global edits use unless their settings name one, and the folder
    that caches style statistics and computed fs3."""

    generator: torch.nn.Module
    clip: object
    arcface: torch.nn.Module | None = None
    lpips: torch.nn.Module | None = None
    fs3: str | None = None
    cache_dir: str | None = None
    _relevance: dict = field(default_factory=dict)
    _mappers: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.generator.w_avg.device


@dataclass
class Faces:
    latents: Latents  # W+ codes, one per face
    names: list[str]  # a name per face (sample index and seed, or photo file)
    description: str  # where they come from, for the report


@dataclass
class EditResult:
    spec: EditSpec  # as run: the prompt filled in (a mapper's own text), id_lambda resolved
    metrics: EditMetrics
    seconds: list[float]  # per face: code -> edited image
    setup_seconds: float  # once for all faces


# ---------------------------------------------------------------------------------------------
# Faces


def sample_faces(g, count: int, seed: int, truncation_psi: float = 0.7) -> Faces:
    """``count`` seeded faces (``models.latents.sample_latents``; StyleCLIP samples at truncation 0.7)."""
    latents = sample_latents(g, count, seed, truncation_psi, names={"batch_size": "--samples"})
    return Faces(latents, [f"sample {i}" for i in range(count)], f"{count} sampled faces (seed {seed}, truncation {truncation_psi:g})")


def photo_faces(encoder, paths: list[str], landmarks: str = "detect", points: str | None = None, device=None) -> Faces:
    """The photos aligned (``landmarks``: 'detect' with the built-in MediaPipe face mesh, the
    largest face of each photo; 'points' from ``points``, a line of 8 numbers per photo as Align
    Faces takes them; 'aligned' for crops that are aligned already) to e4e's 256 px and inverted
    (``models.e4e.invert``). The first photo that cannot be read or aligned is an error naming it."""
    from ..models.e4e import invert

    found = read_points(points or "", paths) if landmarks == "points" else None
    with Aligner(landmarks, found, 256) as aligner:
        crops = [aligner.align(path, read_photo(path))[0] for path in paths]
    images = torch.from_numpy(np.stack(crops)).float() / 255
    codes = invert(encoder, images, names={"images": "photos"})
    how = {"detect": "aligned with the MediaPipe face mesh", "points": "aligned at the given points", "aligned": "already aligned"}[landmarks]
    return Faces(Latents(w_plus=codes.to(device) if device is not None else codes), [os.path.basename(p) for p in paths],
                 f"{len(paths)} photos from {os.path.dirname(paths[0]) or '.'} ({how}, inverted with e4e; compared with their reconstruction)")


# ---------------------------------------------------------------------------------------------
# Edits: load (untimed) -> setup (timed once) -> edit one face (timed)


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _relevance(models: Models, settings: dict):
    from ..edits.channel_relevance import RelevanceJob
    from ..edits.relevance_cache import relevance_for, relevance_from_file

    fs3 = settings["fs3"]
    key = (fs3, settings["statistics_samples"], settings.get("num_images"), settings.get("batch_size"))
    if key not in models._relevance:
        if models.cache_dir is None:
            raise ValueError("global edits need a cache folder for the style statistics (--cache-dir)")
        folders = [models.cache_dir]
        if fs3:
            models._relevance[key] = relevance_from_file(fs3, models.generator, folders, settings["statistics_samples"], models.clip)
        else:
            job = RelevanceJob.for_generator(models.generator, num_images=settings["num_images"])
            models._relevance[key] = relevance_for(models.generator, models.clip, folders, job, settings["batch_size"], settings["statistics_samples"])
    return models._relevance[key]


def _mapper(models: Models, path: str):
    from ..formats.mapper_files import load_mapper

    if path not in models._mappers:
        mapper, _bundled_generator = load_mapper(path)
        models._mappers[path] = mapper.to(models.device).eval().requires_grad_(False)
    return models._mappers[path]


def prepare_edit(spec: EditSpec, models: Models) -> tuple[EditSpec, Callable[[], Callable[[Latents], torch.Tensor]]]:
    """(the spec as it will run, setup): loads what the edit needs (untimed); ``setup()`` (timed)
    returns the per-face edit, ``edit(code [1, n, D]) -> image [1, 3, H, W]``."""
    g, s = models.generator, dict(spec.settings)
    if spec.method == "global":
        s["fs3"] = s["fs3"] or models.fs3
        if s["fs3"]:  # read, not computed: the settings of a computation do not apply
            del s["num_images"], s["batch_size"]
        spec = EditSpec(spec.method, spec.prompt, spec.neutral, s)
        relevance = _relevance(models, s)

        def setup():
            direction = relevance.direction(models.clip, spec.neutral, spec.prompt, s["beta"])
            return lambda code: render(g, direction.apply(g, code, [s["alpha"]])[0])

        return spec, setup
    if spec.method == "optimize":
        if s["id_lambda"] is None:
            s["id_lambda"] = 0.005 if models.arcface is not None else 0.0
        if s["id_lambda"] > 0 and models.arcface is None:
            raise ValueError(f"optimize {spec.prompt!r}: settings.id_lambda {s['id_lambda']:g} needs an ArcFace model (--arcface)")
        spec = EditSpec(spec.method, spec.prompt, spec.neutral, s)

        def setup():
            loss = LossSet().add(ClipLoss(models.clip, spec.prompt)).add(LatentL2Loss(s["l2_lambda"]))
            if s["id_lambda"] > 0:
                loss = loss.add(IdentityLoss(models.arcface, s["id_lambda"]))
            models.clip.text_features(spec.prompt)  # encoded once, as the losses' prepare would
            return lambda code: optimize_latents(g, code, loss, s["steps"], s["lr"], s["space"]).images

        return spec, setup
    if spec.method == "mapper":
        mapper = _mapper(models, s["mapper"])
        prompt = spec.prompt or mapper.options.get("description")
        if not prompt:
            raise ValueError(f"mapper {os.path.basename(s['mapper'])}: the file names no text; give the edit a prompt")
        spec = EditSpec(spec.method, prompt, spec.neutral, s)

        def setup():
            def edit(code):
                with torch.no_grad():
                    return render(g, mapper.edit(code, g, s["strength"]))

            return edit

        return spec, setup
    raise ValueError(f"unknown method {spec.method!r}")


def as_saved(images: torch.Tensor) -> torch.Tensor:
    """Generator images as a saved image holds them: clamped to [0, 1] (and back to [-1, 1])."""
    return from_unit_range(to_unit_range(images.cpu()))


def run_evaluation(models: Models, faces: Faces, edits: list[EditSpec], log: Callable[[str], None] = NOTHING,
                   images_dir: str | None = None) -> list[EditResult]:
    """Every edit on every face, scored and timed (see the module doc); PNGs of the originals and
    edits go to ``images_dir`` when given."""
    g, device = models.generator, models.device
    originals = as_saved(render(g, faces.latents))
    if images_dir:
        for i, name in enumerate(faces.names):
            _save_png(originals[i], os.path.join(images_dir, f"face{i:03}_original.png"))
    results = []
    for k, spec in enumerate(edits):
        spec, setup = prepare_edit(spec, models)
        _sync(device)
        start = time.perf_counter()
        edit = setup()
        _sync(device)
        setup_seconds = time.perf_counter() - start
        edited, seconds = [], []
        for i in range(faces.latents.batch_size):
            code = faces.latents.slice(i, i + 1).to(device)
            _sync(device)
            start = time.perf_counter()
            image = edit(code).cpu()
            seconds.append(time.perf_counter() - start)
            edited.append(as_saved(image))
            log(f"edit {k + 1}/{len(edits)} {spec.method} {spec.prompt!r}: face {i + 1}/{faces.latents.batch_size} in {seconds[-1]:.2f} s")
            if images_dir:
                _save_png(edited[-1][0], os.path.join(images_dir, f"edit{k + 1:02}_{spec.method}_face{i:03}.png"))
        scores = edit_metrics(originals, torch.cat(edited), models.clip, spec.prompt, spec.neutral, models.arcface, models.lpips)
        results.append(EditResult(spec, scores, seconds, setup_seconds))
    return results


def _save_png(image: torch.Tensor, path: str):
    from PIL import Image

    pixels = (to_unit_range(image[None])[0].numpy() * 255).round().astype("uint8")
    with open(path, "xb") as f:
        Image.fromarray(pixels).save(f, format="PNG")


# ---------------------------------------------------------------------------------------------
# Result files


def output_names(out_dir: str, images: bool = False) -> dict[str, str]:
    """Free names in ``out_dir`` for one run: ``results.md`` / ``results.csv`` (/ ``images``), or
    the first ``results_NNNNN.*`` (``images_NNNNN``) of which none exists."""
    os.makedirs(out_dir, exist_ok=True)
    for n in range(100_000):
        suffix = "" if n == 0 else f"_{n:05}"
        names = {"md": f"results{suffix}.md", "csv": f"results{suffix}.csv"}
        if images:
            names["images"] = f"images{suffix}"
        paths = {k: os.path.join(out_dir, v) for k, v in names.items()}
        if not any(os.path.exists(p) for p in paths.values()):
            return paths
    raise RuntimeError(f"{out_dir} holds results_00001 to results_99999 already; choose another --out")


def metric_keys(results: list[EditResult]) -> list[str]:
    found = {k for r in results for k in r.metrics.per_face}
    return [k for k in METRICS if k in found]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def results_markdown(results: list[EditResult], faces: Faces, about: list[str]) -> str:
    keys = metric_keys(results)
    lines = ["# Edit evaluation", "", *[f"* {line}" for line in about], f"* faces: {faces.description}",
             f"* written {datetime.datetime.now().isoformat(timespec='seconds')}", ""]
    lines.append("| method | prompt | neutral | settings | " + " | ".join(METRICS[k][0] for k in keys) + " | s / edit | setup s |")
    lines.append("| --- | --- | --- | --- |" + " ---: |" * (len(keys) + 2))
    for r in results:
        means = [format_value(k, r.metrics.means[k]) if k in r.metrics.means else "" for k in keys]
        lines.append(f"| {r.spec.method} | {_cell(r.spec.prompt)} | {_cell(r.spec.neutral)} | `{_cell(r.spec.settings_text())}` | "
                     + " | ".join(means) + f" | {sum(r.seconds) / len(r.seconds):.3f} | {r.setup_seconds:.3f} |")
    lines += ["", f"Means over the {len(faces.names)} faces (one row per face in the CSV). ↑ higher is better, ↓ lower is better:", ""]
    lines += [f"* {METRICS[k][0]}: {METRICS[k][1]}" for k in keys]
    lines += ["* s / edit: seconds per face from its code to the edited image (the edit and the render; model loading excluded), "
              "mean over the faces; setup s: once per edit for all faces (text direction, text features)"]
    notes = [f"{r.spec.method} {r.spec.prompt!r}: {n}" for r in results for n in r.metrics.notes]
    if notes:
        lines += ["", "Notes:", "", *[f"* {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def results_rows(results: list[EditResult], faces: Faces) -> tuple[list[str], list[list]]:
    keys = metric_keys(results)
    header = ["edit", "method", "prompt", "neutral", "settings", "face", "face_name", *keys, "seconds"]
    rows = []
    for k, r in enumerate(results):
        for i, name in enumerate(faces.names):
            values = [r.metrics.per_face[key][i] if key in r.metrics.per_face else "" for key in keys]
            rows.append([k + 1, r.spec.method, r.spec.prompt, r.spec.neutral, r.spec.settings_text(), i, name, *values, r.seconds[i]])
    return header, rows


def write_results(results: list[EditResult], faces: Faces, paths: dict[str, str], about: list[str]) -> tuple[str, str]:
    """Write the markdown table (means per edit) and the CSV (a row per edit and face) to
    ``paths['md']`` / ``paths['csv']`` (from ``output_names``), refusing existing files."""
    header, rows = results_rows(results, faces)
    with open(paths["md"], "x", encoding="utf-8") as f:
        f.write(results_markdown(results, faces, about))
    with open(paths["csv"], "x", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)  # floats in full (repr), inf / nan as such
    return paths["md"], paths["csv"]
