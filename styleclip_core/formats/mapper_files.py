"""Latent mapper files: StyleCLIP's official ``.pt`` checkpoints (mapper + bundled generator,
``weights_only=True``) and our ``.safetensors`` (mapper weights, options, training state)."""
from __future__ import annotations

import json

from ..errors import CheckpointError
from ..models.mapper import LatentMapper, build_mapper
from .files import TRAINING_PREFIX, load_torch_file, read_safetensors, save_atomic


def save_mapper(mapper: LatentMapper, path: str, overwrite: bool = False, training_tensors: dict | None = None, metadata: dict | None = None) -> str:
    """Our format: mapper weights (reference key names, no generator copy) + options as metadata,
    written atomically. ``training_tensors`` (what resumes training) go under ``TRAINING_PREFIX``
    keys, which loaders skip."""
    tensors = dict(mapper.net.state_dict())
    tensors.update({TRAINING_PREFIX + k: v for k, v in (training_tensors or {}).items()})
    meta = {"format": "styleclip-mapper", "mapper_type": mapper.mapper_type, "options": json.dumps(mapper.options, default=str), **(metadata or {})}
    return save_atomic(tensors, path, meta, overwrite=overwrite)


def _type_from_keys(state) -> str:
    if any(k.startswith(("course_mapping.", "medium_mapping.", "fine_mapping.")) for k in state):
        return "LevelsMapper"
    if any(k.startswith("mapping.mapping.") for k in state):
        return "SingleMapper"
    if any(k.startswith("mapper_") for k in state):
        return "FullStyleSpaceMapper"
    raise KeyError("no mapper keys")


def load_mapper(path: str) -> tuple[LatentMapper, dict | None]:
    """Load an official StyleCLIP mapper ``.pt`` (``{'state_dict': mapper.* + decoder.*, 'opts'}``,
    read with weights_only=True) or one of ours (``.safetensors``). Returns the mapper and, for
    official files, the bundled generator's state dict (rosinality keys) or None."""
    expected = "a StyleCLIP mapper checkpoint ({'state_dict': {'mapper.*', 'decoder.*'}, 'opts'} or our .safetensors)"
    if path.endswith(".safetensors"):
        tensors, meta = read_safetensors(path, expected)
        state = {k: v for k, v in tensors.items() if not k.startswith(TRAINING_PREFIX)}
        options = json.loads(meta.get("options", "{}"))
        try:
            mapper_type = meta.get("mapper_type") or _type_from_keys(state)
            return build_mapper(mapper_type, state, options=options), None
        except (KeyError, ValueError) as e:
            raise CheckpointError(path, expected, f"{e}") from None
    ckpt = load_torch_file(path, expected)
    sd = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not any(k.startswith("mapper.") for k in sd):
        found = f"a dict with keys {sorted(map(str, ckpt))[:8]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(path, expected, found)
    opts = dict(ckpt.get("opts") or {})
    state = {k[len("mapper."):]: v for k, v in sd.items() if k.startswith("mapper.")}
    try:
        mapper_type = _type_from_keys(state)
    except KeyError:
        raise CheckpointError(path, expected, f"mapper keys {sorted(state)[:6]}") from None
    if opts.get("work_in_stylespace") and mapper_type == "FullStyleSpaceMapper" and opts.get("mapper_type") == "WithoutToRGBStyleSpaceMapper":
        mapper_type = "WithoutToRGBStyleSpaceMapper"
    keep = {k: opts[k] for k in ("description", "mapper_type", "no_coarse_mapper", "no_medium_mapper", "no_fine_mapper", "stylegan_size", "work_in_stylespace", "tiny_stand_in") if k in opts}
    try:
        mapper = build_mapper(mapper_type, state, options=keep)
    except (KeyError, ValueError) as e:
        raise CheckpointError(path, expected, str(e)) from None
    decoder = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")} or None
    return mapper, decoder
