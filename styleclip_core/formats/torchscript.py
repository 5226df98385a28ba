"""Read the tensors of a TorchScript archive (e.g. OpenAI's ``ViT-B-32.pt``) without running it.

``torch.jit.load`` would execute the code stored in the archive. Here only the pickled module
tree (``<archive>/data.pkl``) is unpickled, by an unpickler that resolves an allow-list of
tensor-rebuild functions; the archive's own classes (``__torch__.*``) become inert holders of
their attributes, and tensor storages are read straight from the zip entries.
"""
from __future__ import annotations

import collections
import pickle
import zipfile

import torch

from ..errors import CheckpointError
from .files import library_message, sniff

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class ScriptObject:
    """An object of one of the archive's classes: its class name and pickled attributes only."""

    qualname = "?"

    def __setstate__(self, state):
        self.state = state


class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _identity(value, *_):
    return value


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # typed-container markers TorchScript's pickler writes around lists and dicts
    ("torch.jit._pickle", "restore_type_tag"): _identity,
    ("torch.jit._pickle", "build_intlist"): _identity,
    ("torch.jit._pickle", "build_doublelist"): _identity,
    ("torch.jit._pickle", "build_boollist"): _identity,
    ("torch.jit._pickle", "build_tensorlist"): _identity,
}


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix
        self.classes: dict[str, type] = {}
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module.startswith("__torch__"):
            qualname = f"{module}.{name}"
            if qualname not in self.classes:
                self.classes[qualname] = type(name, (ScriptObject,), {"qualname": qualname})
            return self.classes[qualname]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 4 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent record {pid!r:.80}")
        storage_type, key = pid[1], str(pid[2])
        if key not in self.storages:
            raw = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
            self.storages[key] = torch.frombuffer(raw, dtype=storage_type.dtype) if raw else torch.empty(0, dtype=storage_type.dtype)
        return self.storages[key]


def archive_prefix(archive: zipfile.ZipFile) -> str | None:
    """The top folder of a TorchScript archive, or None when the zip is not one."""
    names = set(archive.namelist())
    for name in names:
        parts = name.split("/")
        if len(parts) == 2 and parts[1] == "data.pkl" and f"{parts[0]}/constants.pkl" in names:
            return parts[0]
    return None


def is_torchscript_archive(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return archive_prefix(archive) is not None


def read_tensors(path: str) -> dict[str, torch.Tensor]:
    """Every tensor attribute of the archive's module tree, keyed like ``state_dict()``
    (``visual.conv1.weight``, ...). Besides parameters and buffers this includes any other
    tensor attribute a module kept; the caller drops what it does not need."""
    what = "a TorchScript archive"
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = archive_prefix(archive)
            if prefix is None:
                raise CheckpointError(path, what, "a zip file without data.pkl and constants.pkl")
            with archive.open(f"{prefix}/data.pkl") as f:
                root = _ArchiveUnpickler(f, archive, prefix).load()
    except (CheckpointError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 -- a damaged archive raises almost anything; nothing in it has run
        raise CheckpointError(path, what, sniff(path) or f"a file that cannot be read safely ({library_message(e)}); it may be truncated") from None
    if not isinstance(root, ScriptObject):
        raise CheckpointError(path, "a TorchScript module", f"a pickled {type(root).__name__}")
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: ScriptObject, prefix: str):
        state = getattr(obj, "state", None)
        if not isinstance(state, dict):
            return
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[prefix + name] = value
            elif isinstance(value, ScriptObject):
                walk(value, f"{prefix}{name}.")

    walk(root, "")
    return tensors
