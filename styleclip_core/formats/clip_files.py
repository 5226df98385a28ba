"""Read CLIP from a local file and build it with open_clip (nothing is downloaded and no code from
a file runs). Files read:
* OpenAI's ``ViT-B-32.pt`` (a TorchScript archive; its tensors are read by ``torchscript``),
* an OpenAI-layout state dict (``torch.save(model.state_dict())``),
* open_clip checkpoints: ``.pt``/``.pth``/``.bin`` state dicts (``weights_only=True``, a
  ``{'state_dict': ...}`` wrapper and DDP ``module.`` prefixes accepted) and ``.safetensors``,
  including Hugging Face ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin``.

The architecture is read from the weights for the OpenAI layout (``architecture='auto'``; built
with QuickGELU, as OpenAI's models were trained); for any other checkpoint the user names an
open_clip architecture (``open_clip.list_models()``).
"""
from __future__ import annotations

import os
import zipfile

import torch

from ..errors import CheckpointError
from ..models.clip import ClipModel
from . import torchscript
from .files import TINY_MARK, check_finite, digest, load_torch_file, module_fingerprint, read_safetensors

CLIP_EXTENSIONS = (".pt", ".pth", ".bin", ".safetensors")
AUTO = "auto"
OPENAI_METADATA = ("input_resolution", "context_length", "vocab_size")  # integer tensors in OpenAI's archives


def read_clip_state(path: str) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict, format description) of any supported CLIP file; NaN or inf weights are refused
    (the text tower's causal mask, ``-inf`` above the diagonal, is the one non-finite tensor)."""
    state, fmt = _read_clip_state(path)
    check_finite({k: v for k, v in state.items() if not k.endswith("attn_mask")}, path, "CLIP weights")
    return state, fmt


def _read_clip_state(path: str) -> tuple[dict[str, torch.Tensor], str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected CLIP weights)")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        return read_safetensors(path, "CLIP weights in .safetensors", finite=False)[0], "safetensors"
    if ext not in CLIP_EXTENSIONS:
        raise CheckpointError(path, f"CLIP weights ({', '.join(CLIP_EXTENSIONS)})", f"extension {ext or '(none)'}")
    if zipfile.is_zipfile(path) and torchscript.is_torchscript_archive(path):
        # Module attributes that are not weights: the text tower's causal mask.
        tensors = {k: v for k, v in torchscript.read_tensors(path).items() if not k.endswith("attn_mask")}
        return tensors, "TorchScript archive (OpenAI release)"
    obj = load_torch_file(path, "CLIP weights (a state dict)", finite=False)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(path, "CLIP weights (a state dict of tensors)", f"a {type(obj).__name__}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj, "state dict"


def is_openai_layout(state: dict) -> bool:
    """OpenAI's (and open_clip's plain CLIP's) key layout, from which open_clip infers the architecture."""
    return {"token_embedding.weight", "positional_embedding", "text_projection", "ln_final.weight"} <= set(state) and (
        "visual.proj" in state or "visual.attnpool.positional_embedding" in state
    )


def buildable_architectures() -> list[str]:
    """open_clip architectures that build offline (no Hugging Face text tower or tokenizer).

    Read from open_clip's bundled config files, which is what ``open_clip.list_models()``
    lists, without importing open_clip (seconds: it pulls in transformers and torchvision)."""
    import glob
    import importlib.util
    import json

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return []
    out = []
    for path in glob.glob(os.path.join(spec.submodule_search_locations[0], "model_configs", "*.json")):
        with open(path) as f:
            text_cfg = json.load(f).get("text_cfg", {})
        if "hf_model_name" not in text_cfg and "hf_tokenizer_name" not in text_cfg:
            out.append(os.path.splitext(os.path.basename(path))[0])
    return sorted(out, key=str.lower)


def _image_size(net) -> int:
    size = getattr(net.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def load_clip(path: str, architecture: str = AUTO, device="cpu", preprocessing: str = "styleclip") -> ClipModel:
    """Load CLIP weights from ``path`` (see the module doc for formats) as a frozen float32 model."""
    import open_clip
    from open_clip.model import build_model_from_openai_state_dict

    state, fmt = read_clip_state(path)
    tiny = state.pop(TINY_MARK, None) is not None
    source = os.path.basename(path)
    if architecture == AUTO:
        if not is_openai_layout(state):
            raise CheckpointError(
                path, "OpenAI-layout CLIP weights for architecture 'auto'",
                f"another layout (keys {sorted(state)[:4]}); choose its open_clip architecture (e.g. ViT-B-32) instead of 'auto'",
            )
        try:
            net = build_model_from_openai_state_dict(dict(state), quick_gelu=True, cast_dtype=None).float()
            # The builder loads into half-precision layers; reload so float32 weights stay exact.
            net.load_state_dict({k: v for k, v in state.items() if k not in OPENAI_METADATA})
        except (RuntimeError, KeyError, ValueError, AssertionError) as e:
            raise CheckpointError(path, "OpenAI-layout CLIP weights", f"weights open_clip cannot build a model from ({type(e).__name__}: {str(e)[:300]})") from None
        tokenizer = lambda texts: open_clip.tokenize(texts, context_length=net.context_length)  # noqa: E731
        mean = std = None
        name = f"{source} (OpenAI layout, {fmt})"
    else:
        config = open_clip.get_model_config(architecture)
        if config is None:
            raise ValueError(f"unknown open_clip architecture {architecture!r}; choose one of open_clip.list_models()")
        if {"hf_model_name", "hf_tokenizer_name"} & set(config.get("text_cfg", {})):
            raise ValueError(f"open_clip architecture {architecture!r} needs a Hugging Face text model or tokenizer download, which this pack never does")
        net = open_clip.create_model(architecture, pretrained=None, device="cpu")
        for key in OPENAI_METADATA:
            state.pop(key, None)
        if "positional_embedding" in state and not hasattr(net, "positional_embedding"):
            from open_clip.model import convert_to_custom_text_state_dict

            state = convert_to_custom_text_state_dict(state)
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise CheckpointError(path, f"weights of open_clip architecture {architecture}", f"tensors of other shapes ({str(e)[:300]}); pick the architecture these weights belong to") from None
        if missing or unexpected:
            raise CheckpointError(
                path, f"weights of open_clip architecture {architecture}",
                f"{len(missing)} missing keys (e.g. {missing[:3]}) and {len(unexpected)} unexpected keys (e.g. {unexpected[:3]}); pick the architecture these weights belong to",
            )
        tokenizer = open_clip.get_tokenizer(architecture)
        cfg = getattr(net.visual, "preprocess_cfg", {}) or {}
        mean, std = cfg.get("mean"), cfg.get("std")
        name = f"{source} ({architecture}, {fmt})"
    model = ClipModel(net.float(), tokenizer, _image_size(net), mean, std, preprocessing, name)
    model.is_tiny_stand_in = tiny
    return model.to(device)


def clip_fingerprint(clip: ClipModel) -> str:
    """Identifies what CLIP contributes to channel relevance: its image tower and image
    preprocessing (the text tower does not enter fs3)."""
    return digest(module_fingerprint(clip.net.visual), clip.image_size, list(clip.mean), list(clip.std))
