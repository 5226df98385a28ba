"""Edit every photo of a folder with one recipe: ``python -m styleclip_core edit-folder``.

Each photo goes through the steps of the photo workflows (03, 10 to 12), one photo at a time:

    read -> align (the built-in face mesh, --points or --aligned) -> invert (e4e)
         -> [projector: refine e4e's code] -> [pivotal tuning (PTI): tune a copy of the generator]
         -> edit (global direction, latent optimisation or latent mapper; or none) -> paste back
         -> OUT/<photo name>.png

The recipe is a JSON (or YAML) mapping, checked before any model loads (``parse_recipe``; every
error names the key, what was expected and what was found)::

    {"align": {"size": "auto"},                        # "auto", 256 or 1024
     "projector": null,                                # or {steps, space, learning_rate, w_avg_samples, noise_regularization, seed}
     "pivotal_tuning": {"steps": 350},                 # or null; {steps, learning_rate, lpips_threshold, l2_weight,
                                                       #           lpips_weight, locality, seed}
     "edit": {"method": "global", "prompt": "a smiling face", "settings": {"alpha": 3}},   # an evaluate edit, or null
     "paste_back": {"feather": 0.1}}

The edit is one edit of ``evaluate``'s configs (``config.parse_edit``: global / optimize /
mapper, their settings and defaults) and runs through the same ``runner.prepare_edit``; with
pivotal tuning it runs with each photo's tuned generator (a global direction's channel relevance
and a mapper file are loaded once, from the untuned generator, as workflow 11 wires them).

Resumable, never overwriting: a photo whose output exists is skipped, and outputs are written
atomically (``formats.files.write_atomic``: a ``.partial`` file renamed), so an interrupted run
leaves whole files only and a rerun continues where it stopped. A photo that fails (not a
readable image, no face found, bad points, an error in any step) is appended to
``OUT/failures.log`` (a line per failure and run: time, photo, step, reason; tab-separated) and
the others go on; the command's exit status is 1 when any failed.

Under ``torchrun`` each rank takes every WORLD_SIZE-th photo of the sorted list
(``distributed.shard``, from RANK / WORLD_SIZE; no process group is needed for that) and writes
only its own outputs. When torchrun's rendezvous is there (MASTER_ADDR) the command joins the
process group, and after a barrier rank 0 prints the totals; without a group each rank prints
its own share's summary.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import distributed
from ..formats.files import write_atomic
from .config import EditSpec, parse_edit, read_structured
from .photo_input import Aligner, list_photos, read_photo, read_points

FAILURES = "failures.log"
RECIPE_KEYS = ("note", "align", "projector", "pivotal_tuning", "edit", "paste_back")

# Settings of the recipe's steps: key -> (default, kind). Kinds: "count" (whole number >= 1),
# "seed" (whole number >= 0), "positive", "at_least_0", "fraction" (0 to 0.5), "bool", or a tuple
# of the values allowed. Defaults: the reference's (PTI's projector and coach; the nodes' defaults).
ALIGN = {"size": ("auto", ("auto", 256, 1024))}
PROJECTOR = {"steps": (450, "count"), "space": ("w", ("w", "w+")), "learning_rate": (0.01, "positive"), "w_avg_samples": (600, "count"),
             "noise_regularization": (1e5, "at_least_0"), "seed": (0, "seed")}
PIVOTAL_TUNING = {"steps": (350, "count"), "learning_rate": (3e-4, "positive"), "lpips_threshold": (0.06, "at_least_0"),
                  "l2_weight": (1.0, "at_least_0"), "lpips_weight": (1.0, "at_least_0"), "locality": (False, "bool"), "seed": (0, "seed")}
PASTE_BACK = {"feather": (0.1, "fraction")}
KIND_TEXT = {"count": "a whole number of at least 1", "seed": "a whole number of at least 0", "positive": "a number above 0",
             "at_least_0": "a number of at least 0", "fraction": "a number from 0 to 0.5", "bool": "true or false"}


# ---------------------------------------------------------------------------------------------
# The recipe


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: every step's settings complete (defaults filled in); ``projector`` and
    ``pivotal_tuning`` None when off, ``edit`` None for the reconstruction alone."""

    edit: EditSpec | None
    align: dict = field(default_factory=lambda: {"size": "auto"})
    projector: dict | None = None
    pivotal_tuning: dict | None = None
    paste_back: dict = field(default_factory=lambda: {"feather": 0.1})
    source: str = "recipe"

    def align_size(self, generator_size: int) -> int:
        """The crop size: as set, or 'auto': 1024 (FFHQ's recipe) when the projector or tuning
        compare the photo with renders larger than 256 px, else 256 (e4e's recipe)."""
        size = self.align["size"]
        if size != "auto":
            return size
        return 1024 if (self.projector or self.pivotal_tuning) and generator_size > 256 else 256

    def steps_text(self) -> str:
        steps = ["align", "e4e"]
        if self.projector:
            steps.append(f"projector ({self.projector['steps']} steps, {self.projector['space']})")
        if self.pivotal_tuning:
            steps.append(f"pivotal tuning ({self.pivotal_tuning['steps']} steps)")
        if self.edit is None:
            steps.append("no edit")
        else:
            steps.append(f"{self.edit.method} edit" + (f" {self.edit.prompt!r}" if self.edit.prompt else ""))
        return " -> ".join(steps + ["paste back"])


def _value(value, kind, key: str, where: str):
    if isinstance(kind, tuple):
        if isinstance(value, bool) or value not in kind:
            raise ValueError(f"{where}: expected {key} to be one of {', '.join(map(str, kind))}, found {value!r}")
        return int(value) if isinstance(value, (int, float)) else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected {key} to be {KIND_TEXT[kind]}, found {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected {key} to be {KIND_TEXT[kind]}, found {value!r}")
    ok = {"count": value == int(value) and value >= 1, "seed": value == int(value) and value >= 0, "positive": value > 0,
          "at_least_0": value >= 0, "fraction": 0 <= value <= 0.5}[kind]
    if not ok:
        raise ValueError(f"{where}: expected {key} to be {KIND_TEXT[kind]}, found {value!r}")
    return int(value) if kind in ("count", "seed") else float(value)


def _section(value, name: str, schema: dict, where: str, optional: bool) -> dict | None:
    """A step's settings: a mapping (its keys checked, defaults filled in); for an optional step
    also null / false (off) or true (on, every default)."""
    if optional and (value is None or value is False):
        return None
    if value is None or value is True:
        value = {}
    if not isinstance(value, dict):
        off = " (or true for the defaults, null or false for none)" if optional else ""
        raise ValueError(f"{where}: expected {name} to be a mapping of its settings ({', '.join(schema)}){off}, "
                         f"found {type(value).__name__} {value!r}")
    unknown = sorted(set(value) - set(schema))
    if unknown:
        raise ValueError(f"{where}: unknown {name} settings {unknown}; its settings are {', '.join(schema)}")
    return {key: _value(value[key], kind, f"{name}.{key}", where) if value.get(key) is not None else default
            for key, (default, kind) in schema.items()}


def parse_recipe(obj, source: str = "recipe", base_dir: str = ".", search: dict[str, list[str]] | None = None) -> Recipe:
    """The recipe of a parsed JSON / YAML document. Errors name ``source``, the key, what was
    expected and what was found. Relative files of the edit's settings (a mapper, fs3) are looked
    for in ``base_dir`` (the recipe's folder), then in ``search[setting]``'s folders."""
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a mapping with the keys {', '.join(RECIPE_KEYS)}, found {type(obj).__name__} {obj!r}")
    unknown = sorted(set(obj) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown}; a recipe has only {', '.join(RECIPE_KEYS)}")
    if "note" in obj and not isinstance(obj["note"], str):
        raise ValueError(f"{source}: expected note to be a text (a comment, not used), found {obj['note']!r}")
    if "edit" not in obj:
        raise ValueError(f"{source}: expected edit (a mapping {{method, prompt, neutral, settings}}, or null for the reconstruction "
                         "alone); found no edit key")
    edit = None if obj["edit"] is None else parse_edit(obj["edit"], f"{source}: edit", base_dir, search)
    return Recipe(
        edit=edit,
        align=_section(obj.get("align"), "align", ALIGN, source, optional=False),
        projector=_section(obj.get("projector"), "projector", PROJECTOR, source, optional=True),
        pivotal_tuning=_section(obj.get("pivotal_tuning"), "pivotal_tuning", PIVOTAL_TUNING, source, optional=True),
        paste_back=_section(obj.get("paste_back"), "paste_back", PASTE_BACK, source, optional=False),
        source=source,
    )


def read_recipe(path: str, search: dict[str, list[str]] | None = None) -> Recipe:
    """The recipe in a ``.json`` (or ``.yaml`` / ``.yml``) file."""
    if not os.path.isfile(path):
        raise ValueError(f"--recipe: expected a recipe file (JSON), found {path!r} (not a file)")
    return parse_recipe(read_structured(path, "recipe"), os.path.basename(path), os.path.dirname(os.path.abspath(path)), search)


# ---------------------------------------------------------------------------------------------
# The models


@dataclass
class FolderModels:
    """What the steps run: ``models`` (the edit's: the e4e file's generator, or --generator;
    CLIP, ArcFace, fs3 and the cache; its ``lpips`` is LPIPS-alex, pivotal tuning's loss), the e4e
    encoder, LPIPS-vgg (the projector's) and the face landmarker file (mediapipe 0.10.30+)."""

    models: object  # runner.Models
    encoder: torch.nn.Module
    vgg: torch.nn.Module | None = None
    task_model: str | None = None


# command-line option -> the model catalog's kind (its official file under --models-dir)
MODEL_OPTIONS = {"e4e": "e4e", "clip": "clip", "arcface": "arcface", "lpips": "lpips_alex", "lpips_vgg": "lpips_vgg", "fs3": "fs3",
                 "face_landmarker": "landmarks"}


def model_paths(options: dict[str, str | None], models_dir: str | None) -> dict[str, str | None]:
    """Option -> file: the one given, else the official file in ``models_dir`` when it is there
    (``formats.model_catalog``: ``e4e/e4e_ffhq_encode.pt``, ``openclip/ViT-B-32.pt``, ...)."""
    from ..formats.model_catalog import CATALOG

    entries = {e.kind: e for e in CATALOG}
    if models_dir is not None and not os.path.isdir(models_dir):
        raise ValueError(f"--models-dir: expected a folder (ComfyUI/models), found {models_dir!r} (not a folder)")
    paths = {}
    for option, kind in MODEL_OPTIONS.items():
        given = options.get(option)
        if given:
            if not os.path.isfile(given):
                raise ValueError(f"--{option.replace('_', '-')}: expected a model file, found {given!r} (not a file)")
            paths[option] = given
            continue
        entry = entries[kind]
        candidate = os.path.join(models_dir, entry.folder, entry.filename) if models_dir else None
        paths[option] = candidate if candidate and os.path.isfile(candidate) else None
    return paths


def _missing(option: str, why: str, models_dir: str | None) -> ValueError:
    from ..formats.model_catalog import CATALOG

    entry = next(e for e in CATALOG if e.kind == MODEL_OPTIONS[option])
    where = f"; {os.path.join(models_dir, entry.folder, entry.filename)} is not there" if models_dir else ""
    return ValueError(f"{why}: give --{option.replace('_', '-')} {entry.filename} or --models-dir with {entry.folder}/{entry.filename}{where}")


def load_models(recipe: Recipe, paths: dict[str, str | None], device, generator: str | None = None, architecture: str = "auto",
                cache_dir: str | None = None, models_dir: str | None = None) -> FolderModels:
    """Load what ``recipe`` needs (and only that); a model it needs and cannot find is an error
    saying which option or file gives it."""
    from ..formats.arcface_files import load_arcface
    from ..formats.clip_files import load_clip
    from ..formats.e4e_files import check_pair, load_e4e
    from ..formats.generator_files import load_generator
    from ..formats.lpips_files import load_lpips
    from . import runner

    method = recipe.edit.method if recipe.edit else None
    if not paths["e4e"]:
        raise _missing("e4e", "edit-folder inverts the photos with e4e", models_dir)
    if method in ("global", "optimize") and not paths["clip"]:
        raise _missing("clip", f"the recipe's {method} edit needs CLIP", models_dir)
    if recipe.pivotal_tuning and not paths["lpips"]:
        raise _missing("lpips", "the recipe's pivotal_tuning needs LPIPS-alex (torchvision's AlexNet)", models_dir)
    if recipe.projector and not paths["lpips_vgg"]:
        raise _missing("lpips_vgg", "the recipe's projector needs LPIPS-vgg (torchvision's VGG16)", models_dir)
    encoder, g = load_e4e(paths["e4e"], device)
    if generator:
        g = load_generator(generator, device)
        check_pair(encoder, g, generator)
    clip = load_clip(paths["clip"], architecture, device) if method in ("global", "optimize") else None
    arcface = load_arcface(paths["arcface"], device) if method == "optimize" and paths["arcface"] else None
    alex = load_lpips("alex", paths["lpips"], device=device) if recipe.pivotal_tuning else None
    vgg = load_lpips("vgg", paths["lpips_vgg"], device=device) if recipe.projector else None
    models = runner.Models(g, clip, arcface, alex, paths["fs3"], cache_dir)
    return FolderModels(models, encoder, vgg, paths["face_landmarker"])


# ---------------------------------------------------------------------------------------------
# One photo


class PhotoEditor:
    """The recipe's steps for one photo at a time; ``step`` names the step running (for the
    failures log). The edit is prepared once (its files loaded, its settings completed: errors
    there stop the run before any photo); with pivotal tuning its setup runs per photo, with that
    photo's tuned generator."""

    def __init__(self, recipe: Recipe, kit: FolderModels, aligner: Aligner):
        from . import runner

        self.recipe, self.kit, self.aligner = recipe, kit, aligner
        self.step = ""
        self.spec, self._edit = None, None
        if recipe.edit is not None:
            self.spec, setup = runner.prepare_edit(recipe.edit, kit.models)
            if recipe.pivotal_tuning is None:
                self._edit = setup()

    def edit(self, path: str) -> np.ndarray:
        """The edited photo (uint8 RGB, the photo's size) of the photo at ``path``."""
        from ..models.e4e import invert
        from ..models.latents import Latents
        from ..models.render import photos_at, render, to_unit_range
        from ..photos.align import paste_back
        from . import runner

        r, kit = self.recipe, self.kit
        g = kit.models.generator
        device = kit.models.device
        self.step = "read"
        pixels = read_photo(path)
        self.step = "align"
        crop, alignment = self.aligner.align(path, pixels)
        face = torch.from_numpy(np.array(crop))[None].float() / 255  # [1, S, S, 3] in [0, 1]
        self.step = "invert"
        latents = Latents(w_plus=invert(kit.encoder, face).to(device))
        if r.projector:
            from ..photos.projector import ProjectorSettings, project

            self.step = "projector"
            p = r.projector
            settings = ProjectorSettings(steps=p["steps"], w_avg_samples=p["w_avg_samples"], initial_learning_rate=p["learning_rate"],
                                         regularize_noise_weight=p["noise_regularization"])
            latents = project(g, photos_at(face, g.size), kit.vgg, settings, p["space"], latents, p["seed"]).latents
        if r.pivotal_tuning:
            from ..photos.pivotal_tuning import TuningSettings, pivotal_tuning

            self.step = "pivotal tuning"
            t = r.pivotal_tuning
            settings = TuningSettings(steps=t["steps"], learning_rate=t["learning_rate"], lpips_threshold=t["lpips_threshold"],
                                      l2_weight=t["l2_weight"], lpips_weight=t["lpips_weight"], locality=t["locality"])
            tuning = pivotal_tuning(g, latents, photos_at(face, g.size), kit.models.lpips, settings, t["seed"])
            g, latents = tuning.generator, tuning.latents
        self.step = "edit"
        if r.edit is None:
            image = render(g, latents)
        elif self._edit is not None:
            image = self._edit(latents)
        else:
            _, setup = runner.prepare_edit(r.edit, dataclasses.replace(kit.models, generator=g))
            image = setup()(latents)
        self.step = "paste back"
        photo = torch.from_numpy(pixels)[None].float() / 255
        pasted, _ = paste_back(photo, to_unit_range(image.detach().cpu()), [alignment], r.paste_back["feather"])
        return (pasted[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _save_png(pixels: np.ndarray, path: str):
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PNG")


# ---------------------------------------------------------------------------------------------
# The folder


def output_names(paths: list[str]) -> dict[str, str]:
    """Photo -> its output's file name: ``<name without extension>.png``, or ``<name>.png`` when
    two photos share a name without extension (``a.jpg`` and ``a.png``: ``a.jpg.png``, ``a.png.png``;
    compared ignoring case, as some file systems do)."""
    stems = Counter(os.path.splitext(os.path.basename(p))[0].lower() for p in paths)
    out = {}
    for p in paths:
        name = os.path.basename(p)
        stem = os.path.splitext(name)[0]
        out[p] = (stem if stems[stem.lower()] == 1 else name) + ".png"
    return out


def log_failure(out_dir: str, photo: str, step: str, reason: str) -> str:
    """Append a line ``time<TAB>photo<TAB>step<TAB>reason`` to ``out_dir/failures.log`` (one write
    of an O_APPEND file, so ranks appending at once do not mix their lines)."""
    path = os.path.join(out_dir, FAILURES)
    clean = lambda text: " ".join(str(text).split())  # noqa: E731 (no tabs or newlines inside a field)
    line = "\t".join([datetime.datetime.now().isoformat(timespec="seconds"), clean(photo), clean(step), clean(reason)]) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return path


@dataclass
class Summary:
    photos: int  # in the folder
    share: int  # this rank's (all of them in one process)
    written: int = 0
    skipped: int = 0  # their output existed
    failed: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (photo, step, reason), this rank's

    def line(self, out_dir: str, rank: int = 0, size: int = 1) -> str:
        who = f"edit-folder rank {rank}/{size}: {self.share} of {self.photos} photos" if self.share != self.photos else f"edit-folder: {self.photos} photos"
        failed = f"{self.failed} failed (see {os.path.join(out_dir, FAILURES)})" if self.failed else "0 failed"
        return f"{who}: {self.written} written, {self.skipped} already done (skipped), {failed}; {self.seconds:.1f} s"


class _PrintedProgress:
    """tqdm's few methods used here, as printed lines (where tqdm is not installed)."""

    def __init__(self, items, desc, disable):
        self.items, self.desc, self.disable, self.postfix = list(items), desc, disable, ""

    def __iter__(self):
        for k, item in enumerate(self.items):
            yield item
            if not self.disable:
                print(f"{self.desc}: {k + 1}/{len(self.items)} {self.postfix}", file=sys.stderr, flush=True)

    def set_postfix_str(self, text):
        self.postfix = text

    def write(self, text):
        print(text, file=sys.stderr, flush=True)


def _progress(items, desc: str, disable: bool):
    try:
        from tqdm import tqdm
    except ImportError:
        return _PrintedProgress(items, desc, disable)
    return tqdm(items, desc=desc, unit="photo", disable=disable, file=sys.stderr, dynamic_ncols=True)


def edit_folder(recipe: Recipe, kit: FolderModels, photos: list[str], out_dir: str, landmarks: str = "detect",
                points: str | None = None, points_source: str = "--points", rank: int | None = None, size: int | None = None,
                show_progress: bool = True) -> Summary:
    """Edit this rank's share of ``photos`` (``distributed.shard`` of the list as given: sort it)
    with ``recipe`` into ``out_dir``; photos whose output exists are skipped, failures go to
    ``out_dir/failures.log``. ``landmarks``: 'detect', 'points' (``points``: the points file's
    text, ``photo_input.read_points``) or 'aligned'. Returns this rank's summary."""
    if rank is None or size is None:
        rank, size = distributed.world()
    os.makedirs(out_dir, exist_ok=True)
    names = output_names(photos)
    found = read_points(points or "", photos, points_source) if landmarks == "points" else None
    mine = distributed.shard(photos, rank, size)
    summary = Summary(len(photos), len(mine))
    start = time.perf_counter()
    with Aligner(landmarks, found, recipe.align_size(kit.models.generator.size), kit.task_model, points_source) as aligner:
        editor = PhotoEditor(recipe, kit, aligner)
        desc = "edit-folder" + (f" rank {rank}/{size}" if size > 1 else "")
        bar = _progress(mine, desc, disable=not show_progress or rank != 0)
        for path in bar:
            out = os.path.join(out_dir, names[path])
            if os.path.exists(out):
                summary.skipped += 1
            else:
                _edit_one(editor, path, out, out_dir, summary, bar)
            bar.set_postfix_str(f"{summary.written} written, {summary.skipped} skipped, {summary.failed} failed")
    summary.seconds = time.perf_counter() - start
    return summary


def _edit_one(editor: PhotoEditor, path: str, out: str, out_dir: str, summary: Summary, bar):
    """Edit and save one photo, counting it in ``summary``; a failure is logged, not raised."""
    name = os.path.basename(path)
    try:
        pixels = editor.edit(path)
        editor.step = "save"
        try:
            write_atomic(out, lambda tmp: _save_png(pixels, tmp))
        except FileExistsError:  # written meanwhile by another run: kept as it is
            summary.skipped += 1
            return
        summary.written += 1
    except Exception as e:  # noqa: BLE001 (any failure of one photo is logged; the others go on)
        reason = str(e) if isinstance(e, ValueError) and str(e) else f"{type(e).__name__}: {e}"
        summary.failed += 1
        summary.failures.append((name, editor.step, reason))
        log_failure(out_dir, name, editor.step, reason)
        bar.write(f"edit-folder: {name} failed at {editor.step}: {reason}")


def gather(summary: Summary, device) -> Summary:
    """The totals over the ranks when a process group exists (after a barrier), else ``summary``."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return summary
    distributed.barrier()
    on = torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
    counts = torch.tensor([summary.share, summary.written, summary.skipped, summary.failed], dtype=torch.int64, device=on)
    seconds = torch.tensor([summary.seconds], dtype=torch.float64, device=on)
    torch.distributed.all_reduce(counts)
    torch.distributed.all_reduce(seconds, op=torch.distributed.ReduceOp.MAX)
    share, written, skipped, failed = counts.tolist()
    return Summary(summary.photos, share, written, skipped, failed, seconds.item(), summary.failures)


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser):
    parser.add_argument("--recipe", required=True, help="the recipe: a JSON file (or YAML) of the steps and their settings (see the README)")
    parser.add_argument("--photos", required=True, help="folder of photos (its image files, not its subfolders; one face each)")
    parser.add_argument("--out", required=True, help="folder for the edited photos (OUT/<name>.png; existing ones are kept and skipped) "
                        "and failures.log")
    parser.add_argument("--models-dir", help="ComfyUI's models folder: each model the recipe needs is its official file there "
                        "(e4e/e4e_ffhq_encode.pt, openclip/ViT-B-32.pt, lpips/alexnet-owt-7be5be79.pth, ...), unless given below")
    files = parser.add_argument_group("model files (each instead of --models-dir's)")
    files.add_argument("--e4e", help="e4e checkpoint (e4e_ffhq_encode.pt; holds the generator too)")
    files.add_argument("--generator", help="generator file to edit with instead of the e4e file's (it must fit the encoder)")
    files.add_argument("--clip", help="CLIP weights (ViT-B-32.pt): global and optimize edits")
    files.add_argument("--architecture", default="auto", help="open_clip architecture of --clip ('auto' for OpenAI-layout files)")
    files.add_argument("--arcface", help="ArcFace IR-SE50 (model_ir_se50.pth): the identity loss of optimize edits (id_lambda 0.005 by default with it)")
    files.add_argument("--lpips", help="torchvision's alexnet-owt-7be5be79.pth: pivotal tuning's LPIPS-alex")
    files.add_argument("--lpips-vgg", help="torchvision's vgg16-397923af.pth: the projector's LPIPS-vgg")
    files.add_argument("--fs3", help="fs3 file for a global edit whose settings name none (fs3.npy)")
    files.add_argument("--face-landmarker", help="face_landmarker.task, for the face detector with mediapipe 0.10.30 or later")
    files.add_argument("--cache-dir", help="style statistics and computed fs3 of global edits (default MODELS/styleclip_global with "
                       "--models-dir, else OUT/styleclip_global)")
    faces = parser.add_argument_group("faces (default: found by the MediaPipe face mesh, the largest of each photo)")
    faces.add_argument("--points", help="text file of face points: a line per photo in name order of 8 numbers (x y of the left eye centre, "
                       "right eye centre, left and right mouth corners), or lines 'NAME x y ...' naming the photo")
    faces.add_argument("--aligned", action="store_true", help="the photos are aligned crops already (no face detection)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (the failures and the summary are still printed)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda (under torchrun: each rank's GPU), cpu, mps")


def command(args, parser) -> int:
    """Check the recipe (before any model loads), load the models, edit this rank's photos, print
    the summary. Returns 1 when a photo failed or the recipe, a file or an argument is wrong."""
    if args.points and args.aligned:
        parser.error("--points and --aligned exclude each other")
    if os.path.isdir(args.photos) and os.path.isdir(args.out) and os.path.samefile(args.photos, args.out):
        parser.error("--out must be another folder than --photos (its PNGs would be taken for photos on the next run)")
    rank, size = distributed.world()
    try:
        search = {}
        if args.models_dir:  # a recipe's bare file names are found in the models folder too
            search = {"mapper": [os.path.join(args.models_dir, "styleclip_mappers")], "fs3": [os.path.join(args.models_dir, "styleclip_global")]}
        recipe = read_recipe(args.recipe, search)
        photos = list_photos(args.photos)
        points = None
        if args.points:
            with open(args.points, encoding="utf-8") as f:
                points = f.read()
        paths = model_paths({k: getattr(args, k) for k in MODEL_OPTIONS}, args.models_dir)
        if size > 1 and "MASTER_ADDR" in os.environ:
            distributed.init(args.device)
        device = distributed.device_for_rank(args.device)
        cache_dir = args.cache_dir or os.path.join(args.models_dir or args.out, "styleclip_global")
        kit = load_models(recipe, paths, device, args.generator, args.architecture, cache_dir, args.models_dir)
        if recipe.edit and recipe.edit.method == "global" and not (recipe.edit.settings["fs3"] or kit.models.fs3) and rank == 0:
            print(f"edit-folder: no fs3 file (settings.fs3, --fs3 or --models-dir): channel relevance is computed first "
                  f"(hours for a full-size generator; cached in {cache_dir})", flush=True)
        if rank == 0:
            print(f"edit-folder: {recipe.steps_text()}; {len(photos)} photos in {args.photos}"
                  + (f", {size} ranks" if size > 1 else ""), flush=True)
        landmarks = "aligned" if args.aligned else "points" if args.points else "detect"
        summary = edit_folder(recipe, kit, photos, args.out, landmarks, points, "--points", rank, size, show_progress=not args.no_progress)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"edit-folder: error: {e}", file=sys.stderr)
        return 1
    total = gather(summary, device)  # the totals after a barrier where a process group exists
    if total is summary or distributed.is_main():
        print(total.line(args.out, rank, size), flush=True)
    return 1 if total.failed else 0
