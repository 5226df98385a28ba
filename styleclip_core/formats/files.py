"""What every reader and writer of the pack shares: safe ``torch.load``, ``.safetensors`` reading
with clear errors, the one atomic writer and the one content fingerprint.

* ``load_torch_file``: ``torch.load(weights_only=True)``; a file holding Python objects beyond
  tensors and containers is refused (never retried with code execution), and so is any file
  PyTorch cannot read (empty, text, truncated), always with a ``CheckpointError`` naming the
  file. PyTorch's own advice to retry with ``weights_only=False`` is never passed on: for a file
  from the internet that advice is the attack.
* ``read_safetensors``: tensors and metadata, or an error naming the file.
* ``check_finite``: every reader refuses NaN or infinite floating values (a damaged file or a
  diverged training run, which would render images that are entirely NaN), naming the file, the
  first bad tensor and how many values are bad.
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
import logging
import os
import pickle
import re
import time
import weakref
from typing import Callable

import torch
from safetensors.torch import load_file, safe_open, save_file

from ..errors import CheckpointError

# Top-level key that the tiny random stand-ins (``tiny_models``) carry; loaders read it to say
# "TINY RANDOM STAND-IN" in their report.
TINY_MARK = "tiny_stand_in"
PARTIAL = ".partial"
TRAINING_PREFIX = "training."  # tensors of a trainer's checkpoint that resume training (optimiser state); not part of the model
log = logging.getLogger("styleclip_core.formats")
# When this process started, as far as its files are concerned: no partial file this process
# writes (only save_atomic writes them, below) can be older than the import of this module.
PROCESS_START = time.time()

# Lines of PyTorch's messages that advise retrying with weights_only=False, or to file an issue:
# never shown (for an untrusted file, loading it with code execution is the attack).
_ADVICE = re.compile(r"weights.only|trusted source|file an issue|documentation of torch\.load|arbitrary code", re.IGNORECASE)
_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def library_message(e: BaseException, limit: int = 240) -> str:
    """``Type: message`` of a library's exception, one line, without any advice to load the file
    with ``weights_only=False`` (those lines are dropped, not quoted)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip() and not _ADVICE.search(line)]
    text = " ".join(lines)
    if len(text) > limit:
        text = text[:limit] + " ..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def sniff(path: str) -> str | None:
    """What a file that is plainly no checkpoint holds (empty, text, a Git LFS pointer), or None."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if size == 0:
        return "an empty file (0 bytes; an interrupted download leaves one): download it again"
    if head.startswith(b"version https://git-lfs"):
        return f"a Git LFS pointer ({size} bytes), not the file itself: fetch it with git lfs pull or download it again"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = " ".join(text.split())[:60]
        return f"a text file of {size} bytes starting {first!r} (an error page saved under the model's name?), not a checkpoint: download it again"
    return None


def load_torch_file(path: str, what: str, finite: bool = True) -> object:
    """``torch.load`` with ``weights_only=True`` and errors that say what went wrong: every
    failure to read the file is a ``CheckpointError`` naming it. ``finite``: refuse NaN or inf
    in any floating tensor (``check_finite``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except pickle.UnpicklingError as e:
        unsafe = _UNSAFE_GLOBAL.search(str(e))
        if unsafe:
            found = f"a pickle holding Python objects ({unsafe.group(1)}) beyond tensors and containers, which are not loaded for safety"
        else:
            found = sniff(path) or f"a file PyTorch's safe loader refuses: not a checkpoint of tensors, or one holding objects that are not loaded for safety ({library_message(e)})"
        raise CheckpointError(path, what, found) from None
    except Exception as e:  # noqa: BLE001 -- torch.load raises IndexError, KeyError, EOFError, ... for damaged files
        raise CheckpointError(path, what, sniff(path) or f"a file PyTorch cannot read; it may be truncated or not a checkpoint ({library_message(e)})") from None
    if finite:
        check_finite(obj, path, what)
    return obj


def read_safetensors(path: str, what: str, finite: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a ``.safetensors`` file; a missing or unreadable file is an error
    naming the file and ``what`` was expected. ``finite``: refuse NaN or inf (``check_finite``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(path)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 -- SafetensorError, OSError, ValueError, ...
        raise CheckpointError(path, what, sniff(path) or f"an unreadable file; it may be truncated ({library_message(e)})") from None
    if finite:
        check_finite(tensors, path, what)
    return tensors, meta


def named_tensors(obj, prefix: str = ""):
    """(name, tensor) of every tensor in nested dicts, lists and tuples; names joined with '/'."""
    if isinstance(obj, torch.Tensor):
        yield prefix or "(the tensor)", obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from named_tensors(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from named_tensors(v, f"{prefix}/{i}" if prefix else str(i))


def check_finite(tensors, path: str, what: str) -> None:
    """Refuse NaN or infinite values in any floating tensor of ``tensors`` (a tensor, or nested
    dicts / lists of them) read from ``path``: a ``CheckpointError`` naming the file, the first
    bad tensor and how many values are bad. Meta tensors (shape checks) are skipped."""
    bad_tensors, bad_values, first = 0, 0, None
    for name, t in named_tensors(tensors):
        if not (t.is_floating_point() or t.is_complex()) or t.device.type == "meta" or t.numel() == 0:
            continue
        ok = torch.isfinite(t)
        if bool(ok.all()):
            continue
        n = int(t.numel() - int(ok.sum()))
        bad_tensors, bad_values = bad_tensors + 1, bad_values + n
        if first is None:
            first = f"{name!r} ({n} of its {t.numel()} values)"
    if bad_values:
        raise CheckpointError(
            path, f"{what}, with finite values",
            f"{bad_values} non-finite values (NaN or inf) in {bad_tensors} tensor{'s' if bad_tensors > 1 else ''}, the first in {first}; "
            "the file is damaged or was saved from a diverged run",
        )


def describe_object(obj) -> str:
    """A short description of what a file held, for error messages."""
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))
        return f"a dict with keys {keys[:8]}{' ...' if len(keys) > 8 else ''}"
    return f"a {type(obj).__name__}"


def strip_prefix(state: dict, prefix: str) -> dict:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def write_atomic(path: str, write: Callable[[str], None], overwrite: bool = False) -> str:
    """Write a file through ``write(tmp)``: to ``path + '.partial'`` first, then renamed, so a
    reader never sees half a file. Refuses to replace an existing file unless ``overwrite``. A
    failed write removes its partial file."""
    tmp = path + PARTIAL
    remove_stale_partial(tmp)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


def save_atomic(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None, overwrite: bool = False) -> str:
    """Write ``tensors`` (moved to the CPU, contiguous) and string ``metadata`` as ``.safetensors``
    at ``path`` with ``write_atomic``."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return write_atomic(path, lambda tmp: save_file(cpu, tmp, metadata=metadata), overwrite)


def remove_stale_partial(tmp: str) -> bool:
    """Remove ``tmp`` (a ``.partial`` file) when it is older than this process: left by a write
    that was killed before it could clean up (a failed write removes its own), logged on the
    ``styleclip_core.formats`` logger. A newer one is not counted as stale (it may be a write of
    another process running now). Returns whether one was removed."""
    try:
        mtime = os.path.getmtime(tmp)
    except OSError:
        return False
    if mtime >= PROCESS_START:
        return False
    try:
        os.remove(tmp)
    except OSError as e:
        log.warning("could not remove the stale partial file %s of an interrupted write: %s", tmp, e)
        return False
    log.warning("removed %s: the partial file of an interrupted earlier write (%s), older than this process", tmp, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime)))
    return True


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


def read_state_dict(path: str, what: str, kind: str) -> dict:
    """A plain state dict from a ``.pt`` / ``.pth`` (``weights_only=True``) or ``.safetensors``
    file, as the face parser and ArcFace releases are stored; ``kind`` names the model in the
    error for another extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        return read_safetensors(path, what)[0]
    if ext not in (".pt", ".pth"):
        raise CheckpointError(path, f"{kind} weights (.pth, .pt, .safetensors)", f"extension {ext or '(none)'}")
    state = load_torch_file(path, what)
    if not isinstance(state, dict):
        raise CheckpointError(path, what, describe_object(state))
    return state
