"""Latent files: our ``.safetensors`` (W+ rows or StyleSpace vectors, never overwritten) and the
``.pt`` W+ tensors StyleCLIP's scripts take."""
from __future__ import annotations

import json
import os

import torch

from ..errors import CheckpointError
from ..models.latents import Latents
from .files import load_torch_file, read_safetensors, save_atomic

LATENTS_FORMAT = "styleclip-latents"


def save_latents(latents: Latents, path: str, metadata: dict | None = None) -> str:
    """Write latents to ``.safetensors``; refuses to overwrite; atomic (temporary name, then rename)."""
    tensors = {"w_plus": latents.w_plus} if latents.w_plus is not None else {f"s.{i}": s for i, s in enumerate(latents.styles)}
    meta = {"format": LATENTS_FORMAT, "space": latents.space, **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    return save_atomic(tensors, path, meta)


def load_latents(path: str) -> Latents:
    """Read latents written by ``save_latents``, or a ``.pt`` W+ tensor as StyleCLIP's scripts take it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected saved latents)")
    if path.endswith((".pt", ".pth")):
        obj = load_torch_file(path, "a W+ latent tensor [B, n_latent, D]")
        if isinstance(obj, torch.Tensor) and obj.ndim in (2, 3):
            return Latents(w_plus=obj.float() if obj.ndim == 3 else obj.float()[None])
        raise CheckpointError(path, "a W+ latent tensor [B, n_latent, D]", f"a {type(obj).__name__}")
    tensors, meta = read_safetensors(path, "latents saved as .safetensors")
    if "w_plus" in tensors:
        if tensors["w_plus"].ndim != 3:
            raise CheckpointError(path, "a W+ tensor 'w_plus' [B, n_latent, D]", f"shape {list(tensors['w_plus'].shape)}")
        return Latents(w_plus=tensors["w_plus"].float())
    if "s.0" in tensors:
        styles = [tensors.get(f"s.{i}") for i in range(len(tensors))]
        if any(s is None or s.ndim != 2 for s in styles):
            raise CheckpointError(path, "StyleSpace tensors 's.0' ... 's.<n>', each [B, channels]", f"tensors {[(k, list(v.shape)) for k, v in sorted(tensors.items())][:6]}")
        return Latents(styles=[s.float() for s in styles])
    raise CheckpointError(path, "a 'w_plus' tensor or StyleSpace 's.<i>' tensors", f"tensors {sorted(tensors)[:6]} (format {meta.get('format')})")


def load_latent_folder(folder: str) -> Latents:
    """Every latent file directly in ``folder`` (``.safetensors`` / ``.pt``, as ``load_latents``
    reads them), in name order, as one batch: e.g. e4e inversions saved one by one."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder (expected a folder of latent files)")
    names = sorted(f for f in os.listdir(folder) if f.endswith((".safetensors", ".pt", ".pth")) and os.path.isfile(os.path.join(folder, f)))
    if not names:
        raise ValueError(f"{folder} holds no latent files (.safetensors or .pt)")
    parts = [load_latents(os.path.join(folder, name)) for name in names]
    first = parts[0]
    for name, part in zip(names, parts):
        shape = [list(t.shape[1:]) for t in ([part.w_plus] if part.w_plus is not None else part.styles)]
        expected = [list(t.shape[1:]) for t in ([first.w_plus] if first.w_plus is not None else first.styles)]
        if part.space != first.space or shape != expected:
            raise ValueError(f"{os.path.join(folder, name)}: {part.space} codes shaped {shape[:2]}, but {names[0]} holds {first.space} codes shaped "
                             f"{expected[:2]}; the files of one folder must come from one generator")
    return Latents.cat(parts)
