"""Slider presets: named sets of slider values, one small JSON file each, in a folder the caller
chooses (ComfyUI's user folder in the pack). Names are letters, digits, '-', '_', '.' and spaces,
so a name never reaches outside the folder; files are written atomically and replaced only when
asked."""
from __future__ import annotations

import json
import math
import os
import re

from ..errors import CheckpointError
from .files import write_atomic

PRESET_FORMAT = "styleclip-slider-preset"
MAX_VALUES = 64
_NAME = re.compile(r"[\w\-. ]{1,64}")


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.fullmatch(name) or name.startswith("."):
        raise ValueError(f"preset name {name!r}: use 1 to 64 letters, digits, '-', '_', '.' and spaces")
    return name


def check_values(values) -> list[float]:
    if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= MAX_VALUES:
        raise ValueError(f"preset values: expected a list of 1 to {MAX_VALUES} numbers, found {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"preset values: expected finite numbers, found {v!r}")
        out.append(float(v))
    return out


def preset_path(folder: str, name: str) -> str:
    return os.path.join(folder, check_name(name) + ".json")


def list_presets(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".json") and _NAME.fullmatch(f[:-5]))


def save_preset(folder: str, name: str, values, labels=None, overwrite: bool = False) -> str:
    """Write preset ``name`` (``values``, and the sliders' ``labels`` for the user's eye); an existing
    preset of that name is kept unless ``overwrite``."""
    data = {"format": PRESET_FORMAT, "values": check_values(values), "labels": [str(x)[:200] for x in (labels or [])][:MAX_VALUES]}
    os.makedirs(folder, exist_ok=True)
    path = preset_path(folder, name)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)

    return write_atomic(path, write, overwrite=overwrite)


def load_preset(folder: str, name: str) -> dict:
    """``{"values": [...], "labels": [...]}`` of preset ``name``."""
    path = preset_path(folder, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no slider preset {name!r} in {folder}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(path, "a slider preset (JSON)", f"an unreadable file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != PRESET_FORMAT:
        raise CheckpointError(path, f"a slider preset (format {PRESET_FORMAT})", f"{type(data).__name__} with format {data.get('format') if isinstance(data, dict) else None!r}")
    try:
        values = check_values(data.get("values"))
    except ValueError as e:
        raise CheckpointError(path, "a slider preset", str(e)) from None
    return {"values": values, "labels": [str(x) for x in data.get("labels", [])]}
