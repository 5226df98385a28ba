"""Channel relevance (``fs3``) files: StyleCLIP's official ``fs3.npy`` (read without pickles) and
ours (``.safetensors``: tensor ``fs3`` with JSON metadata saying what it was computed for)."""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from ..errors import CheckpointError
from .files import check_finite, library_message, read_safetensors, save_atomic, sniff

FS3_FORMAT = "styleclip-fs3"


def save_fs3(fs3: torch.Tensor, path: str, metadata: dict | None = None, overwrite: bool = False) -> str:
    """fs3 as .safetensors (``metadata`` values JSON-encoded); never overwrites unless asked."""
    meta = {"format": FS3_FORMAT, **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    return save_atomic({"fs3": fs3.float()}, path, meta, overwrite=overwrite)


EXPECTED = "channel relevance fs3, a 2-D array of numbers [channels, clip_dim]"


def load_fs3(path: str) -> torch.Tensor:
    """An official ``fs3.npy`` (read without pickles) or one of ours (.safetensors): a 2-D float
    tensor of finite numbers, else a ``CheckpointError`` naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {EXPECTED})")
    if path.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 -- ValueError (pickled objects), OSError, EOFError, ...
            raise CheckpointError(path, EXPECTED, sniff(path) or f"an unreadable file ({library_message(e)})") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
            raise CheckpointError(path, EXPECTED, f"an array of {getattr(array, 'dtype', type(array).__name__)} values, not numbers")
        fs3 = torch.from_numpy(np.asarray(array, dtype=np.float32))
    else:
        tensors, _ = read_safetensors(path, "channel relevance (fs3)")
        if "fs3" not in tensors:
            raise CheckpointError(path, "a tensor named 'fs3'", f"tensors {sorted(tensors)[:6]}")
        fs3 = tensors["fs3"].float()
    if fs3.ndim != 2:
        raise CheckpointError(path, EXPECTED, f"an array of shape {list(fs3.shape)}")
    check_finite(fs3, path, EXPECTED)
    return fs3


def fs3_metadata(path: str) -> dict:
    """The metadata ``save_fs3`` wrote (JSON-decoded); empty for other files (an official .npy)."""
    if path.endswith(".npy"):
        return {}
    _, meta = read_safetensors(path, "channel relevance (fs3)")
    return {k: json.loads(v) for k, v in meta.items() if k != "format"}
