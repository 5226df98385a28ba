"""What every reader and writer of the pack shares: safe ``torch.load``, ``.safetensors`` reading
with clear errors, the one atomic writer and the one content fingerprint.

* ``load_torch_file``: ``torch.load(weights_only=True)``; a file holding Python objects beyond
  tensors and containers is refused (never retried with code execution).
* ``read_safetensors``: tensors and metadata, or an error naming the file.
* ``save_atomic``: every file the pack writes goes to ``<path>.partial`` and is renamed into
  place, so an interrupted write never leaves a half-written file under the real name; it never
  replaces an existing file unless asked to.
* ``tensors_fingerprint`` / ``module_fingerprint``: SHA-256 over names, dtypes, shapes and bytes,
  so a result computed for some weights or data is found again, and never taken for another's,
  whatever the files are called.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import weakref
import zipfile

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..errors import CheckpointError

# Top-level key that the tiny random stand-ins (``tiny_models``) carry; loaders read it to say
# "TINY RANDOM STAND-IN" in their report.
TINY_MARK = "tiny_stand_in"
PARTIAL = ".partial"


def load_torch_file(path: str, what: str) -> object:
    """``torch.load`` with ``weights_only=True`` and errors that say what went wrong."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(path, what, f"a pickle with Python objects beyond tensors and containers, which is not loaded for safety ({str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(path, what, f"a file PyTorch cannot read; it may be truncated or not a checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def read_safetensors(path: str, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a ``.safetensors`` file; a missing or unreadable file is an error
    naming the file and ``what`` was expected."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        return load_file(path), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(path, what, f"an unreadable file; it may be truncated ({e})") from None


def describe_object(obj) -> str:
    """A short description of what a file held, for error messages."""
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))
        return f"a dict with keys {keys[:8]}{' ...' if len(keys) > 8 else ''}"
    return f"a {type(obj).__name__}"


def strip_prefix(state: dict, prefix: str) -> dict:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def save_atomic(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None, overwrite: bool = False) -> str:
    """Write ``tensors`` (moved to the CPU, contiguous) and string ``metadata`` as ``.safetensors``
    at ``path``: to ``path + '.partial'`` first, then renamed. Refuses to replace an existing file
    unless ``overwrite``. A failed write removes its partial file."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name")
    tmp = path + PARTIAL
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


def tensors_fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of named tensors: names in sorted order, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for name, t in sorted(tensors.items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


_module_digests: "weakref.WeakKeyDictionary[torch.nn.Module, str]" = weakref.WeakKeyDictionary()


def module_fingerprint(module: torch.nn.Module) -> str:
    """``tensors_fingerprint`` of a module's state dict, remembered per module: the pack's models
    are frozen once loaded (about 0.3 s for CLIP ViT-B/32's image tower)."""
    if module not in _module_digests:
        _module_digests[module] = tensors_fingerprint(module.state_dict())
    return _module_digests[module]


def digest(*parts) -> str:
    """SHA-256 (hex) of JSON-serialisable settings, key order ignored."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
