"""CLIP from a local file: loading (open_clip), text encoding and StyleCLIP's image preprocessing.

Files read (nothing is downloaded and no code from a file runs):
* OpenAI's ``ViT-B-32.pt`` (a TorchScript archive; its tensors are read by ``torchscript``),
* an OpenAI-layout state dict (``torch.save(model.state_dict())``),
* open_clip checkpoints: ``.pt``/``.pth``/``.bin`` state dicts (``weights_only=True``, a
  ``{'state_dict': ...}`` wrapper and DDP ``module.`` prefixes accepted) and ``.safetensors``,
  including Hugging Face ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin``.

The architecture is read from the weights for the OpenAI layout (``architecture='auto'``; built
with QuickGELU, as OpenAI's models were trained); for any other checkpoint the user names an
open_clip architecture (``open_clip.list_models()``).

``ClipModel`` wraps the network with what every StyleCLIP method needs: generator images ->
CLIP input (StyleCLIP's box resize, optionally CLIP-normalised), L2-normalised image and text
embeddings, the 79-template text average and text directions of the global method.
"""
from __future__ import annotations

import math
import os
import zipfile

import torch
import torch.nn.functional as F
from torch import nn

from . import torchscript
from .errors import CheckpointError
from .tiny_models import TINY_MARK

CLIP_EXTENSIONS = (".pt", ".pth", ".bin", ".safetensors")
AUTO = "auto"
OPENAI_METADATA = ("input_resolution", "context_length", "vocab_size")  # integer tensors in OpenAI's archives

# How generator images become CLIP input:
# * 'styleclip': StyleCLIP's CLIPLoss: nearest x7 upsample then AvgPool2d(size // 32), i.e. a box
#   resize to 224; the [-1, 1] image goes in without CLIP's mean/std normalisation;
# * 'normalized': the same resize, then [-1, 1] -> [0, 1] and CLIP's mean/std, as CLIP was trained.
PREPROCESSING = ("styleclip", "normalized")


def imagenet_templates() -> list[str]:
    """The 79 prompt templates of StyleCLIP's global directions: OpenAI's 80 ImageNet templates
    without 'a photo of many {}.', in their order."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    templates = [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    return [t for t in templates if t != "a photo of many {}."]


def box_resize_matrix(src: int, dst: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``[dst, src]`` weights of StyleCLIP's resize along one axis.

    Nearest upsampling by ``up`` then average pooling by ``pool`` (``up/pool = dst/src``; 7 and
    size/32 for 224) is a linear map whose output row ``i`` averages the ``pool`` upsampled
    positions ``i*pool ... i*pool+pool-1``, i.e. source pixels ``p // up``. Applying it as a
    matrix product gives the same numbers without the 7x upsampled image (616 MB per 1024px
    image, plus its gradient).
    """
    g = math.gcd(src, dst)
    up, pool = dst // g, src // g
    rows = torch.arange(dst).repeat_interleave(pool)
    cols = torch.arange(dst * pool) // up
    m = torch.zeros(dst, src, dtype=torch.float64)
    m.index_put_((rows, cols), torch.full((dst * pool,), 1.0 / pool, dtype=torch.float64), accumulate=True)
    return m.to(dtype).to(device)  # cast first: Apple's MPS has no float64


class ClipModel:
    """A CLIP network with StyleCLIP's conventions. Embeddings are L2-normalised."""

    def __init__(self, net: nn.Module, tokenizer, image_size: int, mean=None, std=None, preprocessing: str = "styleclip", name: str = "CLIP"):
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"image preprocessing must be one of {PREPROCESSING}, found {preprocessing!r}")
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        self.net = net.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.mean = tuple(mean or OPENAI_DATASET_MEAN)
        self.std = tuple(std or OPENAI_DATASET_STD)
        self.preprocessing = preprocessing
        self.name = name
        self.is_tiny_stand_in = False
        self._text_cache: dict[tuple, torch.Tensor] = {}
        self._resize_cache: dict[tuple, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def logit_scale(self) -> float:
        """exp(logit_scale): 100 for OpenAI's ViT-B/32, so StyleCLIP's ``1 - logits/100`` is ``1 - cos``."""
        return float(self.net.logit_scale.detach().exp())

    def with_preprocessing(self, preprocessing: str) -> "ClipModel":
        """The same network (shared, not copied) with another image preprocessing."""
        other = ClipModel(self.net, self.tokenizer, self.image_size, self.mean, self.std, preprocessing, self.name)
        other.is_tiny_stand_in = self.is_tiny_stand_in
        return other

    def to(self, device) -> "ClipModel":
        self.net.to(device)
        self._text_cache.clear()
        self._resize_cache.clear()
        return self

    # ---- images ----------------------------------------------------------------------------

    def _resize(self, size: int, like: torch.Tensor) -> torch.Tensor:
        key = (size, like.device, like.dtype)
        if key not in self._resize_cache:
            self._resize_cache[key] = box_resize_matrix(size, self.image_size, like.device, like.dtype)
        return self._resize_cache[key]

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """Generator images ``[B, 3, H, W]`` in about [-1, 1] -> CLIP input ``[B, 3, r, r]``.

        Non-square images are resized per axis (squashed), as the reference never sees them.
        """
        x = images
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):  # at CLIP's size the resize is the identity
            x = self._resize(images.shape[-2], images) @ images @ self._resize(images.shape[-1], images).t()
        if self.preprocessing == "normalized":
            mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            x = ((x + 1) / 2 - mean) / std
        return x

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Generator images -> normalised embeddings ``[B, D]`` (differentiable; at least float32,
        also under autocast, so that similarities near 0 or 1 keep their digits)."""
        features = self.net.encode_image(self.prepare_images(images))
        return F.normalize(features.to(torch.promote_types(features.dtype, torch.float32)), dim=-1)

    # ---- text ------------------------------------------------------------------------------

    @torch.no_grad()
    def encode_texts(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> normalised embeddings ``[N, D]`` (no gradient)."""
        tokens = self.tokenizer(list(prompts)).to(self.device)
        return F.normalize(self.net.encode_text(tokens).float(), dim=-1)

    def text_features(self, text: str, templates: bool = False) -> torch.Tensor:
        """Normalised embedding ``[D]`` of ``text`` (cached): the prompt itself, or with
        ``templates`` the 79-template average of the global method (each template embedding
        normalised, averaged, normalised again)."""
        key = (text, templates, self.device)  # the network may have moved since (model management)
        if key not in self._text_cache:
            if templates:
                feats = self.encode_texts([t.format(text) for t in imagenet_templates()])
                self._text_cache[key] = F.normalize(feats.mean(0), dim=-1)
            else:
                self._text_cache[key] = self.encode_texts([text])[0]
        return self._text_cache[key]

    def text_direction(self, neutral: str, target: str, templates: bool = True) -> torch.Tensor:
        """Unit direction ``[D]`` from the neutral to the target text (StyleCLIP's ``GetDt``
        with ``templates=True``)."""
        change = self.text_features(target, templates) - self.text_features(neutral, templates)
        if change.norm() < 1e-6:
            raise ValueError(f"the texts {neutral!r} and {target!r} have the same CLIP embedding: there is no direction between them")
        return change / change.norm()

    # ---- scores ----------------------------------------------------------------------------

    def similarity(self, images: torch.Tensor, text: str) -> torch.Tensor:
        """Cosine similarity ``[B]`` of generator images to a prompt."""
        features = self.encode_images(images)
        return (features * self.text_features(text).to(features.dtype)).sum(-1)


# --------------------------------------------------------------------------------------------
# Loading


def read_clip_state(path: str) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict, format description) of any supported CLIP file."""
    from .checkpoints import load_torch_file

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected CLIP weights)")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path), "safetensors"
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, "CLIP weights in .safetensors", f"an unreadable file; it may be truncated ({e})") from None
    if ext not in CLIP_EXTENSIONS:
        raise CheckpointError(path, f"CLIP weights ({', '.join(CLIP_EXTENSIONS)})", f"extension {ext or '(none)'}")
    if zipfile.is_zipfile(path) and torchscript.is_torchscript_archive(path):
        # Module attributes that are not weights: the text tower's causal mask.
        tensors = {k: v for k, v in torchscript.read_tensors(path).items() if not k.endswith("attn_mask")}
        return tensors, "TorchScript archive (OpenAI release)"
    obj = load_torch_file(path, "CLIP weights (a state dict)")
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
