"""Batches of StyleGAN codes: sampling, mixing, saving and loading.

A ``Latents`` holds W+ rows ``[B, n_latent, D]`` or, after an edit in StyleSpace, the per-layer
style vectors ``[B, C_i]``; every consumer asks it for the representation it needs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .errors import CheckpointError
from .generator import Generator

LATENTS_FORMAT = "styleclip-latents"


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
                    f"({g.size}px) expects [B, {g.n_latent}, {g.style_dim}]; they come from a different generator"
                )
        else:
            dims = [s.shape[-1] for s in self.styles]
            expected = [l.channels for l in g.style_layers]
            if dims != expected:
                raise ValueError(f"these StyleSpace latents have layer widths {dims}, but the generator has {expected}")
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

    @staticmethod
    def cat(items: list["Latents"]) -> "Latents":
        if len({i.space for i in items}) != 1:
            raise ValueError("cannot join W+ latents with StyleSpace latents")
        if items[0].w_plus is not None:
            return Latents(w_plus=torch.cat([i.w_plus for i in items]))
        return Latents(styles=[torch.cat(parts) for parts in zip(*[i.styles for i in items])])


def sample_latents(g: Generator, batch_size: int, seed: int, truncation_psi: float = 1.0) -> Latents:
    """W+ codes of ``batch_size`` faces from seeded Z, truncated toward the checkpoint's W average
    (or the mean of 4096 seeded samples when it has none), every row as rosinality does."""
    gen = torch.Generator().manual_seed(seed)
    device = g.w_avg.device
    z = torch.randn(batch_size, g.style_dim, generator=gen).to(device)
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


def save_latents(latents: Latents, path: str, metadata: dict | None = None) -> str:
    """Write latents to ``.safetensors``; refuses to overwrite; atomic (temporary name, then rename)."""
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; choose another name")
    tensors = {"w_plus": latents.w_plus.detach().cpu().contiguous()} if latents.w_plus is not None else {
        f"s.{i}": s.detach().cpu().contiguous() for i, s in enumerate(latents.styles)
    }
    meta = {"format": LATENTS_FORMAT, "space": latents.space, **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    tmp = path + ".partial"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)
    return path


def load_latents(path: str) -> Latents:
    """Read latents written by ``save_latents``, or a ``.pt`` W+ tensor as StyleCLIP's scripts take it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected saved latents)")
    if path.endswith((".pt", ".pth")):
        from .checkpoints import load_torch_file

        obj = load_torch_file(path, "a W+ latent tensor [B, n_latent, D]")
        if isinstance(obj, torch.Tensor) and obj.ndim in (2, 3):
            return Latents(w_plus=obj.float() if obj.ndim == 3 else obj.float()[None])
        raise CheckpointError(path, "a W+ latent tensor [B, n_latent, D]", f"a {type(obj).__name__}")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(path)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(path, "latents saved as .safetensors", f"an unreadable file ({e})") from None
    if "w_plus" in tensors:
        return Latents(w_plus=tensors["w_plus"].float())
    if "s.0" in tensors:
        return Latents(styles=[tensors[f"s.{i}"].float() for i in range(len(tensors))])
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
