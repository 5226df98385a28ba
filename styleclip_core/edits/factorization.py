"""Directions found without labels or text by factorising a matrix: SeFa (Shen & Zhou 2021) from
the generator's weights, GANSpace (Härkönen et al. 2020) from sampled W codes. Both rank their
directions (singular values, explained variance) and give ``Direction``s in W, or in a range of
W+ rows.

**SeFa** (SPEC 11.1, rosinality ``closed_form_factorization.py``): the raw modulation weights
(``*.conv.modulation.weight``, ``[C_layer, D]``) of ``conv1``, ``to_rgb1`` and every ``convs.*``
(not ``to_rgbs.*``), stacked in state-dict order to ``A [sum C, D]``; no EqualLinear scale, no row
normalisation, no centring, no biases. The directions are the right singular vectors of ``A``
(the eigenvectors of ``A^T A``), sorted by descending singular value. The SVD runs in float64
(the reference: float32 ``torch.svd``; the difference is the reference's rounding, within a
Davis-Kahan bound: tests/test_sefa_reference.py).

**GANSpace** (SPEC 12, ``--use_w``): PCA of ``samples`` codes ``w = mapping(z)``,
``z ~ N(0, I)`` drawn from a CPU ``torch.Generator`` seeded with ``seed``, in consecutive blocks of
``SAMPLE_BLOCK`` rows (the block size is fixed, so the samples depend on ``samples`` and ``seed``
only). The samples are centred on their mean; the components are the right singular vectors of
the centred ``[samples, D]`` matrix, found without holding it in float64 at once: each block's
rows are stacked under the running triangular factor ``R`` and factorised again by QR
(``X = Q R`` exactly, so ``X`` and ``R`` share singular values and right singular vectors), then
``torch.linalg.svd(R)``. Each component's standard deviation is ``s / sqrt(samples - 1)``;
the explained-variance fraction is ``s^2 / sum s^2``. GANSpace's own default is 300000 samples
and the first 80 components by sklearn's IncrementalPCA; the same maths, all ``D`` components.

Signs: a singular vector is defined up to sign (LAPACK's choice differs between versions and
machines); every column here is flipped so that its entry of largest magnitude is positive
(sklearn's ``svd_flip`` convention), so a component points the same way on every machine. The
reference's signs are LAPACK's: compare up to sign.

Decompositions are kept in memory per (generator fingerprint, method, samples, seed), so moving
a component or strength slider does not recompute them.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from ..formats.generator_files import generator_fingerprint
from ..models.generator import Generator
from ..values import check_count, generator as seeded
from .directions import Direction

SAMPLE_BLOCK = 10_000  # z rows drawn (and mapped) at a time for GANSpace; fixed: the samples depend on it
GANSPACE_SAMPLES = 300_000  # the paper's and harskish/ganspace's default (-n 300000)
CACHE_SIZE = 8


@dataclass(frozen=True)
class Factors:
    """A ranked basis of W: column ``k`` of ``axes`` ``[D, K]`` is direction ``k`` (unit length),
    ``values[k]`` its singular value (SeFa) or standard deviation (GANSpace), ``share[k]`` its
    fraction of the total (SeFa: of the sum of squared singular values; GANSpace: of the variance)."""

    method: str
    axes: torch.Tensor
    values: torch.Tensor
    share: torch.Tensor
    mean: torch.Tensor | None = None  # GANSpace: the samples' mean W
    samples: int | None = None
    seed: int | None = None

    @property
    def count(self) -> int:
        return self.axes.shape[1]

    def check_index(self, index: int, what: str = "component") -> int:
        index = check_count(index, what, minimum=0)
        if index >= self.count:
            limit = f" ({self.samples} samples give at most {self.samples - 1})" if self.samples is not None and self.samples <= self.axes.shape[0] else ""
            raise ValueError(f"{what} {index} does not exist: there are {self.count} {self.method} components (0 to {self.count - 1}){limit}")
        return index


_cache: "OrderedDict[tuple, Factors]" = OrderedDict()


def _cached(key: tuple, compute) -> Factors:
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    value = _cache[key] = compute()
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return value


def clear_cache():
    _cache.clear()


def fix_signs(axes: torch.Tensor) -> torch.Tensor:
    """Columns flipped so that each one's entry of largest magnitude is positive."""
    biggest = axes.gather(0, axes.abs().argmax(0, keepdim=True))
    return axes * torch.where(biggest < 0, -1.0, 1.0).to(axes.dtype)


# ------------------------------------------------------------------------------------------
# SeFa


def sefa_layers(g: Generator) -> list[str]:
    """Modules whose modulation weights SeFa stacks, in state-dict order: conv1, to_rgb1, convs.*.
    StyleGAN3 (no reference: SeFa's definition carried over): every synthesis layer's affine, ToRGB
    included; not the input's, whose 4 outputs are a rotation and translation, not a modulation."""
    if getattr(g, "architecture", None) == "stylegan3":
        return [layer.module for layer in g.style_layers if layer.name != "input"]
    return [layer.module for layer in g.style_layers if not layer.module.startswith("to_rgbs.")]


def sefa_matrix(g: Generator) -> torch.Tensor:
    """The stacked raw modulation weights ``A [sum C, D]`` (as stored, float32)."""
    def weight(module):
        m = g.get_submodule(module)
        return (m.affine if hasattr(m, "affine") else m.conv.modulation).weight
    with torch.no_grad():
        return torch.cat([weight(m).detach().cpu().float() for m in sefa_layers(g)])


def sefa_factors(g: Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigvec ``[D, K]``: column ``k`` = direction ``k``, singular values ``[K]``), descending,
    ``K = min(sum C, D)`` (``D`` for any real generator); float64."""
    f = sefa(g)
    return f.axes, f.values


def sefa(g: Generator) -> Factors:
    def compute():
        _, s, vh = torch.linalg.svd(sefa_matrix(g).double(), full_matrices=False)
        return Factors("SeFa", fix_signs(vh.T.contiguous()), s, s.square() / s.square().sum())

    return _cached(("sefa", generator_fingerprint(g)), compute)


def row_range(g: Generator, start_row: int, end_row: int) -> tuple[int, int]:
    """``[start, end)`` of W+ rows, ``end_row`` 0 meaning the last row; checked against ``g``."""
    start = check_count(start_row, "start_row", minimum=0)
    end = g.n_latent if end_row == 0 else check_count(end_row, "end_row", minimum=0)
    if not 0 <= start < end <= g.n_latent:
        raise ValueError(f"W+ rows [{start_row}, {end_row}): this {g.size}px generator has rows 0 to {g.n_latent - 1}; "
                         f"give 0 <= start_row < end_row <= {g.n_latent} (end_row 0 = to the last row)")
    return start, end


def on_rows(vector: torch.Tensor, g: Generator, start_row: int = 0, end_row: int = 0, info: dict | None = None) -> Direction:
    """``vector`` ``[D]`` as a W direction when the rows are all of them, else as W+ rows
    ``[start, end)`` with zero rows elsewhere."""
    start, end = row_range(g, start_row, end_row)
    info = dict(info or {})
    if start == 0 and end == g.n_latent:
        return Direction("w", [vector.clone()], info)
    rows = torch.zeros(g.n_latent, vector.shape[0], dtype=vector.dtype)
    rows[start:end] = vector
    return Direction("w+", [rows], dict(info, rows=[start, end]))


def sefa_direction(g: Generator, index: int, start_row: int = 0, end_row: int = 0) -> Direction:
    """SeFa component ``index`` (unit length: alpha is the reference's ``degree``), on all W+ rows
    (a W direction) or on rows ``[start_row, end_row)``."""
    f = sefa(g)
    index = f.check_index(index)
    info = {"made_by": f"SeFa component {index}", "method": "sefa", "component": index, "singular_value": float(f.values[index])}
    return on_rows(f.axes[:, index], g, start_row, end_row, info)


# ------------------------------------------------------------------------------------------
# GANSpace


@torch.no_grad()
def ganspace_samples(g: Generator, samples: int, seed: int) -> torch.Tensor:
    """``[samples, D]`` float32 W codes on the CPU: ``mapping(z)`` for z drawn in blocks of
    ``SAMPLE_BLOCK`` rows from one seeded CPU generator."""
    samples = check_count(samples, "samples", minimum=2)
    rng = seeded(seed)
    device = g.w_avg.device
    out = torch.empty(samples, g.style_dim)
    for start in range(0, samples, SAMPLE_BLOCK):
        z = torch.randn(min(SAMPLE_BLOCK, samples - start), g.z_dim, generator=rng)
        out[start:start + z.shape[0]] = g.mapping(z.to(device)).float().cpu()
    return out


def pca(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean ``[D]``, axes ``[D, K]`` columns by descending variance, singular values ``[K]``) of
    the centred rows of ``w``, all float64, by a blockwise QR then an SVD of the ``R`` factor
    (memory: ``w`` and one block in float64)."""
    blocks = range(0, w.shape[0], SAMPLE_BLOCK)
    mean = sum(w[start:start + SAMPLE_BLOCK].double().sum(0) for start in blocks) / w.shape[0]
    r = None
    for start in blocks:
        block = w[start:start + SAMPLE_BLOCK].double() - mean
        r = torch.linalg.qr(block if r is None else torch.cat([r, block]), mode="r").R
    _, s, vh = torch.linalg.svd(r, full_matrices=False)
    return mean, fix_signs(vh.T.contiguous()), s


def ganspace(g: Generator, samples: int = GANSPACE_SAMPLES, seed: int = 0) -> Factors:
    samples = check_count(samples, "samples", minimum=2)

    def compute():
        mean, axes, s = pca(ganspace_samples(g, samples, seed))
        variance = s.square() / (samples - 1)
        return Factors("GANSpace", axes, variance.sqrt(), variance / variance.sum(), mean, samples, int(seed))

    return _cached(("ganspace", generator_fingerprint(g), samples, int(seed), SAMPLE_BLOCK), compute)


def ganspace_direction(g: Generator, component: int, start_row: int = 0, end_row: int = 0, samples: int = GANSPACE_SAMPLES, seed: int = 0) -> Direction:
    """GANSpace component ``component`` times its standard deviation (so alpha counts standard
    deviations, GANSpace's sigma), on W+ rows ``[start_row, end_row)`` (``end_row`` 0 = all; all
    rows give a W direction)."""
    f = ganspace(g, samples, seed)
    component = f.check_index(component)
    std = float(f.values[component])
    if not std > 1e-9 * float(f.values[0]):  # centred samples have rank <= samples - 1: the rest is rounding
        raise ValueError(f"GANSpace component {component} has no variance in {samples} samples: use more samples or a lower component")
    info = {"made_by": f"GANSpace component {component}", "method": "ganspace", "component": component, "std": std,
            "explained_variance": float(f.share[component]), "samples": samples, "seed": int(seed)}
    return on_rows(f.axes[:, component] * std, g, start_row, end_row, info)
