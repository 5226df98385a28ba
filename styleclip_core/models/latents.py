"""Batches of StyleGAN codes: sampling and mixing (files: ``formats.latent_files``).

A ``Latents`` holds W+ rows ``[B, n_latent, D]`` or, after an edit in StyleSpace, the per-layer
style vectors ``[B, C_i]``; every consumer asks it for the representation it needs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..values import called, check_count, generator as seeded
from .generator import Generator


def _stylegan3_hint(g) -> str:
    """What a StyleGAN3 generator given another generator's codes needs instead: e4e (Invert Images,
    Invert Frames) encodes into StyleGAN2 only, so its codes never fit a StyleGAN3."""
    if getattr(g, "architecture", None) != "stylegan3":
        return ""
    return (". This is a StyleGAN3 generator: it renders only its own codes (Sample Latents, Project Latents, or edits of those). "
            "e4e's codes (Invert Images, Invert Frames) are codes of the StyleGAN2 generator its file bundles (Load e4e Encoder's "
            "generator output): use that generator for e4e photos, Pivotal Tuning of them and the video nodes")


@dataclass
class Latents:
    w_plus: torch.Tensor | None = None
    styles: list[torch.Tensor] | None = None

    def __post_init__(self):
        if (self.w_plus is None) == (self.styles is None):
            raise ValueError("Latents hold either W+ rows or StyleSpace vectors, exactly one of them")
        if self.w_plus is not None and self.w_plus.ndim != 3:
            raise ValueError(f"W+ latents must be [B, n_latent, D], found {list(self.w_plus.shape)}")

    @property
    def space(self) -> str:
        return "w+" if self.w_plus is not None else "s"

    @property
    def batch_size(self) -> int:
        return self.w_plus.shape[0] if self.w_plus is not None else self.styles[0].shape[0]

    def check(self, g: Generator) -> "Latents":
        """Raise a clear error if these codes do not fit ``g``."""
        if self.w_plus is not None:
            if tuple(self.w_plus.shape[1:]) != (g.n_latent, g.style_dim):
                raise ValueError(
                    f"these latents are W+ [B, {self.w_plus.shape[1]}, {self.w_plus.shape[2]}], but the generator "
                    f"({g.size}px) expects [B, {g.n_latent}, {g.style_dim}]; they come from a different generator" + _stylegan3_hint(g)
                )
        else:
            dims = [s.shape[-1] for s in self.styles]
            expected = [l.channels for l in g.style_layers]
            if dims != expected:
                raise ValueError(f"these StyleSpace latents have layer widths {dims}, but the generator has {expected}" + _stylegan3_hint(g))
        return self

    def to_styles(self, g: Generator) -> list[torch.Tensor]:
        self.check(g)
        return list(self.styles) if self.styles is not None else g.styles(self.w_plus)

    def to(self, device) -> "Latents":
        if self.w_plus is not None:
            return Latents(w_plus=self.w_plus.to(device))
        return Latents(styles=[s.to(device) for s in self.styles])

    def slice(self, start: int, stop: int) -> "Latents":
        if self.w_plus is not None:
            return Latents(w_plus=self.w_plus[start:stop])
        return Latents(styles=[s[start:stop] for s in self.styles])

    def detach(self) -> "Latents":
        if self.w_plus is not None:
            return Latents(w_plus=self.w_plus.detach())
        return Latents(styles=[s.detach() for s in self.styles])

    def clone(self) -> "Latents":
        if self.w_plus is not None:
            return Latents(w_plus=self.w_plus.clone())
        return Latents(styles=[s.clone() for s in self.styles])

    @staticmethod
    def cat(items: list["Latents"]) -> "Latents":
        if len({i.space for i in items}) != 1:
            raise ValueError("cannot join W+ latents with StyleSpace latents")
        if items[0].w_plus is not None:
            return Latents(w_plus=torch.cat([i.w_plus for i in items]))
        return Latents(styles=[torch.cat(parts) for parts in zip(*[i.styles for i in items])])


def sample_latents(g: Generator, batch_size: int, seed: int, truncation_psi: float = 1.0, names: dict[str, str] | None = None) -> Latents:
    """W+ codes of ``batch_size`` (at least 1) faces from seeded Z (the seed modulo 2**64),
    truncated toward the checkpoint's W average (or the mean of 4096 seeded samples when it has
    none), every row as rosinality does."""
    batch_size = check_count(batch_size, called(names, "batch_size"))
    gen = seeded(seed)
    device = g.w_avg.device
    z = torch.randn(batch_size, g.z_dim, generator=gen).to(device)
    with torch.no_grad():
        w = g.mapping(z)
        w = g.truncate(w, truncation_psi, g.truncation_center()) if truncation_psi != 1 else w
    return Latents(w_plus=g.to_w_plus(w))


def broadcast_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Batches of equal size, or one of size 1 repeated to the other's size."""
    if a.shape[0] == b.shape[0]:
        return a, b
    if a.shape[0] == 1:
        return a.expand(b.shape[0], *a.shape[1:]), b
    if b.shape[0] == 1:
        return a, b.expand(a.shape[0], *b.shape[1:])
    raise ValueError(f"{what}: batch sizes {a.shape[0]} and {b.shape[0]} differ; use equal sizes or a batch of 1")


def mix_latents(a: Latents, b: Latents, factor: float = 1.0, row_start: int = 0, row_end: int | None = None) -> Latents:
    """W+ rows in [row_start, row_end) move from ``a`` toward ``b`` by ``factor`` (1 = style mixing:
    those rows taken from ``b``; a factor in (0, 1) over all rows = interpolation)."""
    if a.w_plus is None or b.w_plus is None:
        raise ValueError("mixing works on W+ latents; these are StyleSpace latents")
    wa, wb = broadcast_pair(a.w_plus, b.w_plus, "mix latents")
    if wa.shape[1:] != wb.shape[1:]:
        raise ValueError(f"mix latents: W+ shapes differ ({list(wa.shape[1:])} vs {list(wb.shape[1:])}); they come from different generators")
    n = wa.shape[1]
    row_end = n if row_end is None or row_end > n else row_end
    if not 0 <= row_start < row_end:
        raise ValueError(f"mix latents: the row range [{row_start}, {row_end}) is empty for {n} W+ rows")
    out = wa.clone()
    out[:, row_start:row_end] = torch.lerp(wa[:, row_start:row_end], wb[:, row_start:row_end], factor)
    return Latents(w_plus=out)
