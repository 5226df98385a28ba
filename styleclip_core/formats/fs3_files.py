"""Channel relevance (``fs3``) files: StyleCLIP's official ``fs3.npy`` (read without pickles) and
ours (``.safetensors``: tensor ``fs3`` with JSON metadata saying what it was computed for)."""
from __future__ import annotations

import json

import numpy as np
import torch

from ..errors import CheckpointError
from .files import read_safetensors, save_atomic

FS3_FORMAT = "styleclip-fs3"


def save_fs3(fs3: torch.Tensor, path: str, metadata: dict | None = None, overwrite: bool = False) -> str:
    """fs3 as .safetensors (``metadata`` values JSON-encoded); never overwrites unless asked."""
    meta = {"format": FS3_FORMAT, **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    return save_atomic({"fs3": fs3.float()}, path, meta, overwrite=overwrite)


def load_fs3(path: str) -> torch.Tensor:
    """An official ``fs3.npy`` (read without pickles) or one of ours (.safetensors)."""
    if path.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise CheckpointError(path, "a NumPy fs3 array [channels, clip_dim]", f"an unreadable file ({e})") from None
        return torch.from_numpy(np.asarray(array, dtype=np.float32))
    tensors, _ = read_safetensors(path, "channel relevance (fs3)")
    if "fs3" not in tensors:
        raise CheckpointError(path, "a tensor named 'fs3'", f"tensors {sorted(tensors)[:6]}")
    return tensors["fs3"].float()


def fs3_metadata(path: str) -> dict:
    """The metadata ``save_fs3`` wrote (JSON-decoded); empty for other files (an official .npy)."""
    if path.endswith(".npy"):
        return {}
    _, meta = read_safetensors(path, "channel relevance (fs3)")
    return {k: json.loads(v) for k, v in meta.items() if k != "format"}
