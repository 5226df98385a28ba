"""Composable, weighted loss terms for text-driven edits (the ``SCLIP_LOSS`` socket's payload).

A ``LossSet`` is an immutable, ordered collection of ``LossTerm``s; ``add`` returns a new set,
so graph nodes can chain terms without changing what an upstream node produced. Every method
that edits a face (latent optimisation, mapper training, ...) uses a set the same way:

    ctx = EditContext.start(original_image, original_latents, mask)   # once per batch of faces
    loss = loss_set.prepare(ctx)          # text features, the originals' ID features, ...
    value = loss(ctx.edited(image, latents))   # per step: value.total [B], value.parts
    value.total.sum().backward()

A term returns one loss per sample (``[B]``), so a batch's total is a sum of independent
per-sample losses and each sample's gradient is what it would be alone. ``value.total`` is
``sum_k weight_k * term_k``; ``value.parts`` holds each term's unweighted ``[B]`` values by label.
Terms with weight 0 are neither prepared nor evaluated.

New terms subclass ``LossTerm``: ``prepare(ctx)`` returns a callable ``ctx -> [B]``; everything
computed once per batch belongs in ``prepare``.

Masks. ``ctx.mask`` (1 = the region the edit is meant to change) gives the terms a region:

* the CLIP terms score ``ctx.masked_image()``: the edited image inside the mask composited over
  the *original* image outside it. The score is then exactly invariant to, and its gradient
  exactly zero for, pixels where the mask is 0, while CLIP still sees a whole, natural face
  (what Local Edit will show), so a text such as "a person with purple hair" keeps its meaning.
  Painting the outside a neutral grey would also cut it off, but shows CLIP an image unlike any
  it was trained on, whose embedding the grey dominates; cropping the mask's bounding box does
  not cut the outside off (the box holds unmasked pixels), changes CLIP's scale from face to
  face, and for the usual masks (hair, face) the box is nearly the whole image anyway;
* ``RegionPreservationLoss`` keeps the edited image equal to the original outside the mask;
* identity and latent terms ignore the mask (they guard the whole face).

Without a mask every term computes exactly what it computed before masks existed.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from ..models.irse import ArcFaceBackbone, identity_features
from ..models.latents import Latents
from .masks import resize_mask

TermFn = Callable[["EditContext"], torch.Tensor]
L2_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class EditContext:
    """What a loss term sees: the edited faces and the faces they started from.

    * ``image``: edited generator images ``[B, 3, H, W]`` in about [-1, 1] (differentiable);
    * ``latents``: the edited codes (W+ or StyleSpace ``Latents``; tensors may require grad);
    * ``original_image`` / ``original_latents``: the unedited faces (no gradient);
    * ``mask``: ``[B or 1, 1, H, W]`` in [0, 1] at the image's resolution (1 = the region the
      edit is meant to change) or None (see the module doc for what the terms do with it).
    """

    image: torch.Tensor
    latents: Latents
    original_image: torch.Tensor
    original_latents: Latents
    mask: torch.Tensor | None = None

    @staticmethod
    def start(original_image: torch.Tensor, original_latents: Latents, mask: torch.Tensor | None = None) -> "EditContext":
        """The context before any edit (edited == original), as ``prepare`` receives it."""
        original_image = original_image.detach()
        original_latents = original_latents.detach()
        if mask is not None:
            mask = resize_mask(mask, original_image.shape[-2:], original_image.shape[0]).to(original_image)
        return EditContext(original_image, original_latents, original_image, original_latents, mask)

    def edited(self, image: torch.Tensor, latents: Latents) -> "EditContext":
        return replace(self, image=image, latents=latents)

    def masked_image(self) -> torch.Tensor:
        """The edited image inside the mask, the original outside it (soft masks blend); the
        edited image itself without a mask."""
        if self.mask is None:
            return self.image
        return torch.lerp(self.original_image.to(self.image.dtype), self.image, self.mask.to(self.image.dtype))


def latent_sq_distance(a: Latents, b: Latents, reduction: str = "sum") -> torch.Tensor:
    """Per-sample squared differences, ``[B]``: 'sum' over every W+ row, or every StyleSpace layer;
    'mean' over the W+ tensor's elements, or over each StyleSpace layer's elements summed over layers."""
    if a.space != b.space:
        raise ValueError(f"cannot compare {a.space} latents with {b.space} latents")
    if reduction not in L2_REDUCTIONS:
        raise ValueError(f"reduction must be one of {L2_REDUCTIONS}, found {reduction!r}")
    pairs = [(a.w_plus, b.w_plus)] if a.w_plus is not None else zip(a.styles, b.styles)
    per_tensor = (lambda d: d.sum(1)) if reduction == "sum" else (lambda d: d.mean(1))
    return sum(per_tensor((x - y).square().flatten(1)) for x, y in pairs)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    # Under autocast the networks return half precision; a similarity near 1 needs more digits.
    return x.to(torch.promote_types(x.dtype, torch.float32))


class LossTerm:
    """One weighted term. Subclasses set ``kind`` and implement ``prepare`` and ``describe``."""

    kind = "term"

    def __init__(self, weight: float):
        self.weight = float(weight)

    def prepare(self, ctx: EditContext) -> TermFn:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind

    def notes(self) -> list[str]:
        """Sentences for the user about this term (a prompt longer than CLIP's context); none by default."""
        return []

    @property
    def networks(self) -> tuple[torch.nn.Module, ...]:
        """The networks the term runs, for whoever places models on devices."""
        return ()


class ClipLoss(LossTerm):
    """StyleCLIP's CLIPLoss: ``1 - logits/100`` with ``logits = exp(logit_scale) * cos(image, text)``
    (``1 - cos`` for OpenAI's ViT-B/32, whose scale is 100)."""

    kind = "clip"

    def __init__(self, clip, text: str, weight: float = 1.0):
        super().__init__(weight)
        self.clip, self.text = clip, text

    @property
    def networks(self):
        return (self.clip.net,)

    def prepare(self, ctx):
        text = self.clip.text_features(self.text)
        scale = self.clip.logit_scale / 100

        def term(c: EditContext):
            features = self.clip.encode_images(c.masked_image())
            return 1 - scale * (features * text.to(features.dtype)).sum(-1)

        return term

    def describe(self):
        return f"CLIP {self.text!r}"

    def notes(self):
        return [n for n in [self.clip.context_note(self.text, "the CLIP loss text")] if n]


# Floor on the image-embedding change in the directional loss. At the first step the edited
# image equals the original, the change is exactly zero and the cosine's gradient would be
# ~1/eps; that one gradient would dominate Adam's second-moment estimate for hundreds of steps.
# Above this norm (embeddings are unit vectors) the loss is exactly 1 - cos.
DIRECTION_MIN_NORM = 1e-2


class DirectionalClipLoss(LossTerm):
    """``1 - cos(E_img(edit) - E_img(orig), E_txt(target) - E_txt(neutral))`` (StyleGAN-NADA's
    directional loss) on normalised embeddings; the change's norm is floored at
    ``DIRECTION_MIN_NORM``."""

    kind = "directional_clip"

    def __init__(self, clip, neutral: str, target: str, weight: float = 1.0):
        super().__init__(weight)
        self.clip, self.neutral, self.target = clip, neutral, target

    @property
    def networks(self):
        return (self.clip.net,)

    def prepare(self, ctx):
        direction = self.clip.text_direction(self.neutral, self.target, templates=False)
        with torch.no_grad():
            origin = self.clip.encode_images(ctx.original_image)

        def term(c: EditContext):
            change = self.clip.encode_images(c.masked_image()) - origin
            return 1 - (change * direction.to(change.dtype)).sum(-1) / change.norm(dim=-1).clamp_min(DIRECTION_MIN_NORM)

        return term

    def describe(self):
        return f"directional CLIP {self.neutral!r} -> {self.target!r}"

    def notes(self):
        notes = [self.clip.context_note(self.neutral, "the neutral text"), self.clip.context_note(self.target, "the target text")]
        return [n for n in notes if n]


class IdentityLoss(LossTerm):
    """StyleCLIP's IDLoss per sample: ``1 - <f(edit), f(orig)>`` with ArcFace IR-SE50 features."""

    kind = "identity"

    def __init__(self, arcface: ArcFaceBackbone, weight: float = 0.005):
        super().__init__(weight)
        self.arcface = arcface

    @property
    def networks(self):
        return (self.arcface,)

    def prepare(self, ctx):
        with torch.no_grad():
            origin = _at_least_float32(identity_features(self.arcface, ctx.original_image))

        def term(c: EditContext):
            return 1 - (_at_least_float32(identity_features(self.arcface, c.image)) * origin).sum(1)

        return term

    def describe(self):
        return "identity (ArcFace)"


class LatentL2Loss(LossTerm):
    """Squared distance to the original codes, per sample (``latent_sq_distance``).

    ``reduction`` says which reference it reproduces: 'sum' is latent optimisation's term
    (``run_optimization.py``: sum over all W+ rows / StyleSpace layers, ``l2_lambda`` 0.008);
    'mean' is the mapper coach's ``nn.MSELoss`` (mean over the elements, per StyleSpace layer
    summed over layers, ``latent_l2_lambda`` 0.8): with mapper training's batch mean it is the
    coach's number exactly.
    """

    kind = "latent_l2"

    def __init__(self, weight: float = 0.008, reduction: str = "sum"):
        super().__init__(weight)
        if reduction not in L2_REDUCTIONS:
            raise ValueError(f"reduction must be one of {L2_REDUCTIONS}, found {reduction!r}")
        self.reduction = reduction

    def prepare(self, ctx):
        return lambda c: latent_sq_distance(c.latents, c.original_latents, self.reduction)

    def describe(self):
        return "latent L2" if self.reduction == "sum" else "latent L2 (mean)"


class RegionPreservationLoss(LossTerm):
    """Per-sample mean distance between the edited and the original image outside the mask,
    weighted by ``1 - mask`` and divided by that weight's total (so the value does not depend on
    the region's size or the image resolution): mean squared (``'l2'``) or mean absolute
    (``'l1'``) difference of [-1, 1] pixels. L1 charges small changes relatively more and large
    local ones (a strand of hair crossing the boundary) relatively less than L2.

    Default weight 10 (for 'l2'): an estimate, not tuned on the real networks. If moving the
    latents gains the CLIP loss ``a`` per unit step while it changes the outside by RMS ``r``,
    the optimum leaves the outside changed by RMS ``a / (2 w r)``; for an entangled W+ edit
    (a ~ 0.05, r ~ 0.1) that is 0.25 at w = 1, clearly visible, and 0.025 (about 3 of 255 grey
    levels) at w = 10.
    """

    kind = "region_preservation"
    DISTANCES = ("l2", "l1")

    def __init__(self, weight: float = 10.0, distance: str = "l2"):
        super().__init__(weight)
        if distance not in self.DISTANCES:
            raise ValueError(f"distance must be one of {self.DISTANCES}, found {distance!r}")
        self.distance = distance

    def prepare(self, ctx):
        if ctx.mask is None:
            raise ValueError("the region preservation loss needs a mask (connect a MASK to the optimiser): it keeps the image outside the mask")
        keep = 1 - ctx.mask
        # A mask that covers the whole image leaves nothing to preserve: the term is 0 there.
        area = (keep.sum((1, 2, 3)) * ctx.original_image.shape[1]).clamp_min(1e-8)
        squared = self.distance == "l2"

        def term(c: EditContext):
            d = c.image - c.original_image.to(c.image.dtype)
            d = d.square() if squared else d.abs()
            return (d * keep.to(d.dtype)).sum((1, 2, 3)) / area

        return term

    def describe(self):
        return f"region preservation ({self.distance})"


@dataclass(frozen=True)
class LossValue:
    total: torch.Tensor  # [B], weighted sum of the terms
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> unweighted [B]

    def check_finite(self, step: int, sample: str = "face") -> "LossValue":
        """Itself if every term of every sample is finite; else a FloatingPointError naming the
        step (counting from 1), the first term that diverged and the sample (counting from 0)."""
        if bool(torch.isfinite(self.total.detach()).all()):
            return self
        for label, value in self.parts.items():
            bad = ~torch.isfinite(value.detach().reshape(-1))
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                raise FloatingPointError(
                    f"the loss term {label!r} became {float(value.detach().reshape(-1)[i])} for {sample} {i} at step {step}: "
                    "the edit diverged; lower the learning rate or the term's weight (nothing was output)"
                )
        raise FloatingPointError(f"the loss became {self.total.detach().tolist()} at step {step}: the edit diverged; lower the learning rate (nothing was output)")


class PreparedLoss:
    def __init__(self, terms: list[tuple[str, float, TermFn]]):
        self.terms = terms

    def __call__(self, ctx: EditContext) -> LossValue:
        total, parts = 0, {}
        for label, weight, fn in self.terms:
            value = fn(ctx)
            if value.dtype in (torch.float16, torch.bfloat16):  # under autocast
                value = value.float()
            parts[label] = value
            total = total + weight * value
        return LossValue(total, parts)


@dataclass(frozen=True)
class LossSet:
    terms: tuple[LossTerm, ...] = ()

    def add(self, term: LossTerm) -> "LossSet":
        return LossSet(self.terms + (term,))

    @property
    def active(self) -> list[tuple[str, LossTerm]]:
        """(unique label, term) of the terms with a non-zero weight."""
        out, seen = [], {}
        for term in self.terms:
            if term.weight == 0:
                continue
            label = term.describe()
            seen[label] = seen.get(label, 0) + 1
            out.append((label if seen[label] == 1 else f"{label} #{seen[label]}", term))
        return out

    def prepare(self, ctx: EditContext) -> PreparedLoss:
        if not self.active:
            raise ValueError("the loss has no term with a non-zero weight; connect a CLIP loss")
        return PreparedLoss([(label, term.weight, term.prepare(ctx)) for label, term in self.active])

    @property
    def networks(self) -> list[torch.nn.Module]:
        """Every network the active terms run, each once."""
        out = []
        for _, term in self.active:
            out += [n for n in term.networks if all(n is not m for m in out)]
        return out

    def describe(self) -> str:
        return " + ".join(f"{term.weight:g} x {label}" for label, term in self.active) or "(empty)"

    def notes(self) -> list[str]:
        """What the user should know about the active terms (e.g. a prompt CLIP cuts)."""
        return [n for _, term in self.active for n in term.notes()]


def chain(loss: LossSet | None, term: LossTerm) -> LossSet:
    """``loss`` (or an empty set) with ``term`` added: what every loss node does."""
    return (loss or LossSet()).add(term)
