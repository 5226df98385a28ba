"""StyleCLIP latent mappers: a small network per text prompt that maps a latent to its edit.

``w_hat = w + strength * 0.1 * mapper(w)`` (strength 1 = the reference). Module and key names
follow StyleCLIP's ``mapper/latent_mappers.py`` (including its spelling ``course_mapping``), so
official checkpoints load as they are (files: ``formats.mapper_files``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..values import called, check_finite
from .generator import EqualLinear, Generator, PixelNorm, shape_mismatches
from .latents import Latents

RESIDUAL_SCALE = 0.1
MAPPER_TYPES = ("LevelsMapper", "SingleMapper", "FullStyleSpaceMapper", "WithoutToRGBStyleSpaceMapper")
LEVELS = (("course_mapping", 0, 4), ("medium_mapping", 4, 8), ("fine_mapping", 8, None))


class Mapper(nn.Module):
    """PixelNorm then 4 equalized-lr layers with fused leaky ReLU.

    On W+ rows ``[B, n, D]`` the PixelNorm normalises over dim 1, i.e. across the rows it is given,
    not over the features: that is what the reference computes and its checkpoints were trained with.
    """

    def __init__(self, latent_dim=512, depth=4):
        super().__init__()
        self.mapping = nn.Sequential(PixelNorm(), *[EqualLinear(latent_dim, latent_dim, lr_mul=0.01, activation=True) for _ in range(depth)])

    def forward(self, x):
        return self.mapping(x)


class SingleMapper(nn.Module):
    def __init__(self, latent_dim=512):
        super().__init__()
        self.mapping = Mapper(latent_dim)

    def forward(self, w):
        return self.mapping(w)


class LevelsMapper(nn.Module):
    """Separate mappers for the coarse (rows 0-3), medium (4-7) and fine (8-) W+ rows; a level
    switched off (``no_coarse_mapper`` ...) has no weights and outputs zeros."""

    def __init__(self, latent_dim=512, coarse=True, medium=True, fine=True):
        super().__init__()
        for (name, _, _), on in zip(LEVELS, (coarse, medium, fine)):
            if on:
                setattr(self, name, Mapper(latent_dim))

    def forward(self, w):
        parts = []
        for name, start, stop in LEVELS:
            rows = w[:, start:stop]
            parts.append(getattr(self, name)(rows) if hasattr(self, name) else torch.zeros_like(rows))
        return torch.cat(parts, 1)


class StyleSpaceMapper(nn.Module):
    """One mapper per StyleSpace layer (``mapper_<i>``); layers without one get no edit
    (the reference's WithoutToRGB variant leaves out the toRGB layers)."""

    def __init__(self, widths: dict[int, int]):
        super().__init__()
        for i, width in widths.items():
            setattr(self, f"mapper_{i}", Mapper(width))

    def forward(self, styles):
        return [getattr(self, f"mapper_{i}")(s) if hasattr(self, f"mapper_{i}") else torch.zeros_like(s) for i, s in enumerate(styles)]


class LatentMapper(nn.Module):
    """A mapper with what it edits: W+ rows or StyleSpace layers; ``options`` keeps the prompt and
    training options (``description``, ``mapper_type``, ``no_*_mapper``, ...)."""

    def __init__(self, net: nn.Module, mapper_type: str, options: dict | None = None):
        super().__init__()
        self.net = net
        self.mapper_type = mapper_type
        self.options = dict(options or {})

    @property
    def works_in_stylespace(self) -> bool:
        return isinstance(self.net, StyleSpaceMapper)

    def delta(self, latents: Latents, g: Generator, net: nn.Module | None = None) -> Latents:
        """mapper(w); ``net`` runs in place of ``self.net`` (training's DistributedDataParallel
        wrapper of it)."""
        net = self.net if net is None else net
        if self.works_in_stylespace:
            return Latents(styles=net(latents.to_styles(g)))
        if latents.w_plus is None:
            raise ValueError("this mapper edits W+ latents, but the latents are StyleSpace vectors")
        latents.check(g)
        return Latents(w_plus=net(latents.w_plus))

    def edit(self, latents: Latents, g: Generator, strength: float = 1.0, names: dict[str, str] | None = None, net: nn.Module | None = None) -> Latents:
        """w + strength * 0.1 * mapper(w) (or per StyleSpace layer); non-finite codes are an error."""
        check_finite(latents, called(names, "latents"))
        d = self.delta(latents, g, net)
        k = strength * RESIDUAL_SCALE
        if d.w_plus is not None:
            return Latents(w_plus=latents.w_plus + k * d.w_plus)
        return Latents(styles=[s + k * ds for s, ds in zip(latents.to_styles(g), d.styles)])


def build_mapper(mapper_type: str, state: dict[str, torch.Tensor] | None = None, latent_dim: int = 512, options: dict | None = None, g: Generator | None = None) -> LatentMapper:
    """A mapper of ``mapper_type``: shaped by ``state`` when given (its keys say which levels or
    layers exist and how wide they are), else fresh for training."""
    options = dict(options or {})
    if mapper_type == "LevelsMapper":
        if state is not None:
            flags = [f"{name}.mapping.1.weight" in state for name, _, _ in LEVELS]
            dims = [state[f"{name}.mapping.1.weight"].shape[0] for (name, _, _), on in zip(LEVELS, flags) if on]
            latent_dim = dims[0] if dims else latent_dim
        else:
            flags = [not options.get(f"no_{level}_mapper", False) for level in ("coarse", "medium", "fine")]
        net = LevelsMapper(latent_dim, *flags)
        options.update({f"no_{level}_mapper": not on for level, on in zip(("coarse", "medium", "fine"), flags)})
    elif mapper_type == "SingleMapper":
        if state is not None:
            latent_dim = state["mapping.mapping.1.weight"].shape[0]
        net = SingleMapper(latent_dim)
    elif mapper_type in ("FullStyleSpaceMapper", "WithoutToRGBStyleSpaceMapper"):
        if state is not None:
            widths = {int(k.split(".")[0][len("mapper_"):]): v.shape[0] for k, v in state.items() if k.endswith("mapping.1.weight")}
        elif g is not None:
            widths = {l.index: l.channels for l in g.style_layers if mapper_type == "FullStyleSpaceMapper" or not l.is_torgb}
        else:
            raise ValueError("a new StyleSpace mapper needs the generator to know the layer widths")
        net = StyleSpaceMapper(dict(sorted(widths.items())))
    else:
        raise ValueError(f"mapper type must be one of {', '.join(MAPPER_TYPES)}, found {mapper_type!r}")
    mapper = LatentMapper(net, mapper_type, options)
    if state is not None:
        wrong = shape_mismatches(net.state_dict(), state)
        if wrong:
            raise ValueError(f"{mapper_type} weights of other shapes than their layers: {len(wrong)} tensors ({'; '.join(wrong[:3])})")
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{mapper_type} weights: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return mapper.eval().requires_grad_(False)
