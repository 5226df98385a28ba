"""CLIP as every StyleCLIP method uses it: generator images -> CLIP input (StyleCLIP's box resize,
optionally CLIP-normalised), L2-normalised image and text embeddings, the 79-template text
average and the text directions of the global method.

``ClipModel`` wraps an open_clip network; ``formats.clip_files.load_clip`` builds one from a
local file.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..values import called, check_finite

# How generator images become CLIP input:
# * 'styleclip': StyleCLIP's CLIPLoss: nearest x7 upsample then AvgPool2d(size // 32), i.e. a box
#   resize to 224; the [-1, 1] image goes in without CLIP's mean/std normalisation;
# * 'normalized': the same resize, then [-1, 1] -> [0, 1] and CLIP's mean/std, as CLIP was trained;
# * 'nada': StyleGAN-NADA's CLIPLoss.preprocess: [-1, 1] -> [0, 1], torchvision's tensor
#   Resize(224, bicubic) of the short side, which antialiases since torchvision 0.17 (PIL-style
#   cubic, a = -0.5, weights renormalised at the borders; what fixtures/nada ran), CenterCrop(224),
#   then CLIP's mean/std.
PREPROCESSING = ("styleclip", "normalized", "nada")


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


def _usable(cached: torch.Tensor) -> torch.Tensor:
    """A cached tensor as the caller can use it: one cached by a node that ran under inference
    mode (CLIP Score, Global Direction) cannot take part in autograd, as the losses need; outside
    inference mode it is cloned."""
    return cached.clone() if cached.is_inference() and not torch.is_inference_mode_enabled() else cached


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
        return _usable(self._resize_cache[key])

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """Generator images ``[B, 3, H, W]`` in about [-1, 1] -> CLIP input ``[B, 3, r, r]``.

        Non-square images are resized per axis (squashed), as the reference never sees them.
        """
        if self.preprocessing == "nada":
            return self._normalize(self._nada_resize((images + 1) / 2))
        x = images
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):  # at CLIP's size the resize is the identity
            x = self._resize(images.shape[-2], images) @ images @ self._resize(images.shape[-1], images).t()
        if self.preprocessing == "normalized":
            x = self._normalize((x + 1) / 2)
        return x

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> CLIP's mean/std normalisation."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def _nada_resize(self, x: torch.Tensor) -> torch.Tensor:
        """torchvision ``Resize(r, BICUBIC)`` (antialiased, as torchvision >= 0.17 does for tensors)
        and ``CenterCrop(r)`` of a float batch, no clamp: F.interpolate is what torchvision calls."""
        r = self.image_size
        h, w = x.shape[-2:]
        if (h, w) != (r, r):
            short, long = min(h, w), max(h, w)
            size = (r, int(r * long / short)) if h <= w else (int(r * long / short), r)
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
            top, left = int(round((x.shape[-2] - r) / 2.0)), int(round((x.shape[-1] - r) / 2.0))
            x = x[..., top:top + r, left:left + r]
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
                self._text_cache[key] = F.normalize(self.template_features(text).mean(0), dim=-1)
            else:
                self._text_cache[key] = self.encode_texts([text])[0]
        return _usable(self._text_cache[key])

    def template_features(self, text: str) -> torch.Tensor:
        """``[79, D]``: the normalised embedding of ``text`` in each of the 79 templates (cached)."""
        key = (text, "each template", self.device)
        if key not in self._text_cache:
            self._text_cache[key] = self.encode_texts([t.format(text) for t in imagenet_templates()])
        return _usable(self._text_cache[key])

    def text_direction(self, neutral: str, target: str, templates: bool = True) -> torch.Tensor:
        """Unit direction ``[D]`` from the neutral to the target text (StyleCLIP's ``GetDt``
        with ``templates=True``)."""
        change = self.text_features(target, templates) - self.text_features(neutral, templates)
        if change.norm() < 1e-6:
            raise ValueError(f"the texts {neutral!r} and {target!r} have the same CLIP embedding: there is no direction between them")
        return change / change.norm()

    @property
    def context_length(self) -> int:
        """Tokens of CLIP's text context, start and end tokens included (77 for OpenAI's CLIP)."""
        return int(getattr(self.net, "context_length", 0) or 77)

    def tokens_beyond_context(self, text: str, templates: bool = False) -> int:
        """How many of ``text``'s tokens CLIP drops: the tokenizer keeps the first
        ``context_length - 2`` (then the end token) and cuts the rest without a word. With
        ``templates``, the most any of the 79 templates of the global method drops."""
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:  # OpenAI-layout files tokenize with open_clip's default BPE tokenizer
            from open_clip.tokenizer import _tokenizer

            encode = _tokenizer.encode
        prompts = [t.format(text) for t in imagenet_templates()] if templates else [text]
        return max(0, max(len(encode(p)) for p in prompts) - (self.context_length - 2))

    def context_note(self, text: str, what: str, templates: bool = False) -> str:
        """'' or a sentence saying that CLIP cut ``text`` (named ``what``) and by how much."""
        dropped = self.tokens_beyond_context(text, templates)
        if not dropped:
            return ""
        return (f"{what} is {dropped} tokens longer than CLIP's {self.context_length}-token context"
                f"{' (in its longest template)' if templates else ''}: CLIP drops its last {dropped} tokens; shorten it")

    # ---- scores ----------------------------------------------------------------------------

    def similarity(self, images: torch.Tensor, text: str, names: dict[str, str] | None = None) -> torch.Tensor:
        """Cosine similarity ``[B]`` of generator images to a prompt (non-finite images are an error)."""
        check_finite(images, called(names, "images"))
        features = self.encode_images(images)
        return (features * self.text_features(text).to(features.dtype)).sum(-1)
