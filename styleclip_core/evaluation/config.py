"""The edits of an evaluation, read from a YAML or JSON file: a list of edits, each

    method: global | optimize | mapper
    prompt: the target text (what the edit should show; a mapper's own text when left out)
    neutral: what the faces show before the edit (default "a face")
    settings: {the method's settings; each left out takes its default, below}

Settings and defaults (the reference's, see the README's method sections):

* ``global`` (global direction): ``alpha`` 4.1 (strength), ``beta`` 0.15 (disentanglement
  threshold), ``fs3`` (an fs3 file; default: the command's ``--fs3``, else channel relevance is
  computed and cached, hours for a full-size generator), ``statistics_samples`` 100000,
  ``num_images`` 100 and ``batch_size`` 16 (for computing fs3).
* ``optimize`` (latent optimisation, run_optimization.py's edit mode): ``steps`` 300, ``lr`` 0.1,
  ``l2_lambda`` 0.008 (latent L2, summed), ``id_lambda`` (identity loss: 0.005, StyleCLIP's
  notebook value, when an ArcFace model is given, else 0; the script's default is 0), ``space``
  'w+' or 's' (StyleSpace).
* ``mapper``: ``mapper`` (the mapper file, required), ``strength`` 1.0.

Relative file paths in settings are relative to the config file's folder.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

from ..edits.metrics import DEFAULT_NEUTRAL

REQUIRED = object()  # a setting without a default

METHODS: dict[str, dict[str, object]] = {
    "global": {"alpha": 4.1, "beta": 0.15, "fs3": None, "statistics_samples": 100_000, "num_images": 100, "batch_size": 16},
    "optimize": {"steps": 300, "lr": 0.1, "l2_lambda": 0.008, "id_lambda": None, "space": "w+"},
    "mapper": {"mapper": REQUIRED, "strength": 1.0},
}
PATHS = {"fs3", "mapper"}  # settings that name files
COUNTS = {"statistics_samples", "num_images", "batch_size", "steps"}
CHOICES = {"space": ("w+", "s")}
KEYS = ("method", "prompt", "neutral", "settings")


@dataclass(frozen=True)
class EditSpec:
    """One edit of the config, its settings complete (defaults filled in, paths absolute)."""

    method: str
    prompt: str | None  # None: a mapper's own text
    neutral: str = DEFAULT_NEUTRAL
    settings: dict = field(default_factory=dict)

    def settings_text(self) -> str:
        """The settings as one line of JSON (keys sorted; files by their names)."""
        shown = {k: (os.path.basename(v) if k in PATHS and isinstance(v, str) else v) for k, v in self.settings.items()}
        return json.dumps(shown, sort_keys=True)


def _setting(value, key: str, default, where: str, base_dir: str, search: dict[str, list[str]] | None = None):
    if key in PATHS:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: expected settings.{key} to be a file path, found {value!r}")
        value = os.path.expanduser(value)
        tried = [os.path.join(base_dir, value)]
        if not os.path.isabs(value):
            tried += [os.path.join(folder, value) for folder in (search or {}).get(key, [])]
        path = next((p for p in tried if os.path.isfile(p)), None)
        if path is None:
            raise ValueError(f"{where}: settings.{key} names {value!r}, which is not a file (looked for {' and '.join(tried)})")
        return os.path.abspath(path)
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise ValueError(f"{where}: expected settings.{key} to be one of {', '.join(CHOICES[key])}, found {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected settings.{key} to be a finite number, found {value!r}")
    if key in COUNTS:
        if value != int(value) or value < 1:
            raise ValueError(f"{where}: expected settings.{key} to be a whole number of at least 1, found {value!r}")
        return int(value)
    if key.endswith("_lambda") and value < 0:
        raise ValueError(f"{where}: expected settings.{key} to be at least 0, found {value!r}")
    return float(value)


def parse_edit(item, where: str, base_dir: str = ".", search: dict[str, list[str]] | None = None) -> EditSpec:
    """One edit (a mapping ``{method, prompt, neutral, settings}``), its settings completed;
    errors begin with ``where`` and name the key, what was expected and what was found. File
    settings are looked for relative to ``base_dir``, then in ``search[key]``'s folders."""
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a mapping with {', '.join(KEYS)}, found {type(item).__name__} {item!r}")
    unknown = sorted(set(item) - set(KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected only {', '.join(KEYS)}")
    method = item.get("method")
    if method not in METHODS:
        raise ValueError(f"{where}: expected method to be one of {', '.join(METHODS)}, found {method!r}")
    prompt = item.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise ValueError(f"{where}: expected prompt to be a non-empty text, found {prompt!r}")
    if prompt is None and method != "mapper":
        raise ValueError(f"{where}: the {method} method needs a prompt (the target text); found none")
    neutral = item.get("neutral", DEFAULT_NEUTRAL)
    if not isinstance(neutral, str) or not neutral.strip():
        raise ValueError(f"{where}: expected neutral to be a non-empty text, found {neutral!r}")
    given = item.get("settings") or {}
    if not isinstance(given, dict):
        raise ValueError(f"{where}: expected settings to be a mapping, found {type(given).__name__} {given!r}")
    defaults = METHODS[method]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: unknown settings {unknown} for the {method} method; its settings are {', '.join(defaults)}")
    settings = {}
    for key, default in defaults.items():
        if key in given and given[key] is not None:
            settings[key] = _setting(given[key], key, default, where, base_dir, search)
        elif default is REQUIRED:
            raise ValueError(f"{where}: the {method} method needs settings.{key}; found none")
        else:
            settings[key] = default
    return EditSpec(method, prompt.strip() if prompt else None, neutral.strip(), settings)


def parse_edits(items, source: str = "config", base_dir: str = ".") -> list[EditSpec]:
    """The edits of a parsed config (a list of mappings); errors name the edit (counting from 1),
    the key, what was expected and what was found."""
    if not isinstance(items, list) or not items:
        found = "an empty list" if isinstance(items, list) else type(items).__name__
        raise ValueError(f"{source}: expected a list of edits ({{method, prompt, neutral, settings}} each), found {found}")
    return [parse_edit(item, f"{source}: edit {i + 1}", base_dir) for i, item in enumerate(items)]


def read_structured(path: str, what: str = "config"):
    """The parsed content of a ``.yaml`` / ``.yml`` (needs PyYAML, which ComfyUI installs) or
    ``.json`` file; a file that does not parse is a ValueError naming it."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write the {what} as JSON") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); YAML {what}s end in .yaml or .yml") from None


def read_config(path: str) -> list[EditSpec]:
    """The edits of a ``.yaml`` / ``.yml`` or ``.json`` file."""
    return parse_edits(read_structured(path), os.path.basename(path), os.path.dirname(os.path.abspath(path)))
