"""Edit directions in any latent space: one type for text directions (StyleSpace), closed-form
ones (SeFa, GANSpace: W or W+ rows) and direction files (InterFaceGAN-style boundaries).

A ``Direction`` is the change of a code for strength 1, in the space it was made in:

* ``"w"``: one vector ``[style_dim]``, added to every W+ row;
* ``"w+"``: one vector per W+ row ``[n_latent, style_dim]`` (zero rows leave those layers alone,
  e.g. a GANSpace edit of rows 4 to 8);
* ``"s"``: one vector per StyleSpace layer ``[C_layer]`` (global directions; toRGB layers zero).

Conversions: W -> W+ repeats the vector; W or W+ -> StyleSpace is exact, because every style
vector is an affine map of its W+ row (``s = A w + b``), so a change ``dw`` becomes ``A dw``
(the bias cancels). StyleSpace -> W is not possible in general (many more StyleSpace dimensions
than W ones): it is an error. Applying a direction to codes: W+ codes with a W / W+ direction are
edited in W+; anything with StyleSpace (codes or direction) is edited in StyleSpace, in float64
as StyleCLIP's global directions are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..formats.direction_files import FORMAT, OLD_FORMAT, SPACES, read_direction_file, write_direction_file
from ..models.generator import Generator
from ..models.latents import Latents
from ..values import called, check_finite

SPACE_NAMES = {"w": "W", "w+": "W+", "s": "StyleSpace"}
__all__ = ["Direction", "add_to_styles", "SPACES", "SPACE_NAMES", "FORMAT", "OLD_FORMAT"]


def as_float64(t: torch.Tensor) -> torch.Tensor:
    """float64 for the reference's double-precision steps; on the CPU where the device has none (MPS)."""
    return (t.cpu() if t.device.type == "mps" else t).double()


@dataclass
class Direction:
    space: str
    deltas: list[torch.Tensor]
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"a direction's space is one of {SPACES}, found {self.space!r}")
        if self.space != "s" and len(self.deltas) != 1:
            raise ValueError(f"a {SPACE_NAMES[self.space]} direction is one tensor, found {len(self.deltas)}")

    # ---- what it is ----------------------------------------------------------------------

    @property
    def num_channels(self) -> int:
        """Non-zero coordinates (StyleSpace channels, or W / W+ entries)."""
        return int(sum(int((d != 0).sum()) for d in self.deltas))

    def describe(self) -> str:
        made = self.info.get("made_by") or ", ".join(f"{k} {v}" for k, v in self.info.items() if k in ("neutral", "target", "beta"))
        if self.space == "s":
            shape = f"{self.num_channels} StyleSpace channels"
        elif self.space == "w+":
            rows = [i for i, r in enumerate(self.deltas[0]) if bool((r != 0).any())]
            shape = f"W+ rows {rows[0]}..{rows[-1]}" if rows else "W+ (zero)"
        else:
            shape = "W"
        return f"{shape}" + (f" ({made})" if made else "")

    def check(self, g: Generator) -> "Direction":
        """``self`` if it fits ``g``; else an error saying for what it was made."""
        if self.space == "s":
            widths = [d.shape[-1] for d in self.deltas]
            expected = [layer.channels for layer in g.style_layers]
            if widths != expected:
                raise ValueError(f"this direction has StyleSpace layer widths {widths}, but the generator has {expected}: it was made for another generator")
        else:
            expected = [g.style_dim] if self.space == "w" else [g.n_latent, g.style_dim]
            if list(self.deltas[0].shape) != expected:
                raise ValueError(f"this {SPACE_NAMES[self.space]} direction has shape {list(self.deltas[0].shape)}, but the generator's is {expected}: "
                                 "it was made for another generator")
        return self

    # ---- arithmetic ------------------------------------------------------------------------

    def scaled(self, weight: float) -> "Direction":
        return Direction(self.space, [d * weight for d in self.deltas], dict(self.info, weight=weight))

    def to_space(self, space: str, g: Generator | None = None) -> "Direction":
        """This direction in ``space`` (see the module doc); StyleSpace needs the generator."""
        if space == self.space:
            return self
        if self.space == "s":
            raise ValueError(f"a StyleSpace direction cannot be turned into a {SPACE_NAMES[space]} one "
                             "(StyleSpace has far more dimensions than W); apply it to StyleSpace codes instead")
        if space == "w+":
            if g is None:
                raise ValueError("turning a W direction into W+ rows needs the generator (its number of rows)")
            return Direction("w+", [self.deltas[0].expand(g.n_latent, -1).clone()], dict(self.info))
        if space == "w":
            raise ValueError("a W+ direction cannot be turned into a W one (its rows differ); apply it to W+ or StyleSpace codes")
        if g is None:
            raise ValueError(f"turning a {SPACE_NAMES[self.space]} direction into StyleSpace needs the generator")
        self.check(g)
        rows = self.deltas[0].expand(g.n_latent, -1) if self.space == "w" else self.deltas[0]
        deltas = []
        with torch.no_grad():
            for layer, weight in zip(g.style_layers, g.style_weights()):
                if weight is None:  # a style that is not linear in W (StyleGAN3's input transform): left as it is
                    deltas.append(torch.zeros(1, layer.channels, dtype=torch.float64))
                    continue
                deltas.append((weight @ as_float64(rows[layer.w_index]).to(weight.device)).cpu())
        return Direction("s", deltas, dict(self.info))

    @staticmethod
    def combine(directions: Sequence["Direction"], weights: Sequence[float], g: Generator | None = None) -> "Direction":
        """The weighted sum; directions of different spaces meet in the widest one (W < W+ < StyleSpace)."""
        if not directions:
            raise ValueError("no directions to combine")
        space = max((d.space for d in directions), key=SPACES.index)
        parts = [d.to_space(space, g) for d in directions]
        shapes = {tuple(tuple(x.shape) for x in p.deltas) for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"these {SPACE_NAMES[space]} directions belong to different generators (their shapes differ)")
        deltas = [sum(w * p.deltas[i].double() for p, w in zip(parts, weights)) for i in range(len(parts[0].deltas))]
        return Direction(space, deltas, {"combined": [dict(d.info, weight=w) for d, w in zip(directions, weights)]})

    # ---- editing ---------------------------------------------------------------------------

    def apply(self, g: Generator, latents: Latents, alphas: Sequence[float], names: dict[str, str] | None = None) -> tuple[Latents, Latents]:
        """(edited, originals): ``code + alpha * direction`` for every face and alpha, image-major
        (face 0 at every alpha, then face 1, ...), and the input codes repeated in the same order
        (for nodes that compare or blend the two)."""
        if not alphas:
            raise ValueError(f"{called(names, 'alphas')}: no alpha given: list at least one edit strength")
        check_finite(torch.tensor([float(a) for a in alphas], dtype=torch.float64), called(names, "alphas"), batched=False)
        self.check(g)
        latents.check(g)
        check_finite(latents, called(names, "latents"))
        n = len(alphas)
        if latents.w_plus is not None and self.space != "s":
            w = latents.w_plus
            delta = self.to_space("w+", g).deltas[0].to(w.device, torch.float64)
            a = torch.tensor([float(x) for x in alphas], dtype=torch.float64, device=w.device)
            edited = w.double()[:, None] + a[None, :, None, None] * delta[None, None]
            edited = Latents(w_plus=edited.reshape(-1, *w.shape[1:]).to(w.dtype))
            return edited, Latents(w_plus=w.repeat_interleave(n, 0))
        edited = Latents(styles=add_to_styles(latents.to_styles(g), self.to_space("s", g), alphas))
        if latents.w_plus is not None:
            return edited, Latents(w_plus=latents.w_plus.repeat_interleave(n, 0))
        return edited, Latents(styles=[s.repeat_interleave(n, 0) for s in latents.styles])

    # ---- files -----------------------------------------------------------------------------

    def save(self, path: str):
        write_direction_file(path, self.space, self.deltas, self.info)

    @staticmethod
    def load(path: str) -> "Direction":
        """Any direction file (``formats.direction_files``): one saved by ``save``, a StyleSpace one
        saved before directions had a space, or a single W / W+ array (``.npy``, ``.pt``, ``.pth``,
        ``.safetensors``) such as an InterFaceGAN boundary."""
        space, deltas, info = read_direction_file(path)
        return Direction(space, deltas, info)


def add_to_styles(styles: Sequence[torch.Tensor], direction: Direction, alphas: Sequence[float]) -> list[torch.Tensor]:
    """``s + alpha * delta`` for every alpha: returns per-layer [B * len(alphas), C], image-major
    (image 0 at every alpha, then image 1, ...), computed in float64 as the reference does."""
    alphas = torch.tensor(list(alphas), dtype=torch.float64)
    out = []
    for s, d in zip(styles, direction.deltas):
        s64 = as_float64(s)
        edited = s64[:, None, :] + alphas[None, :, None].to(s64.device) * d.to(s64.device, torch.float64)[None, None, :]
        out.append(edited.reshape(-1, s.shape[-1]).to(s.device, s.dtype))
    return out


def mapper_direction(mapper, g: Generator, latents: Latents, face: int = 0, names: dict[str, str] | None = None) -> Direction:
    """A latent mapper's edit of one face as a direction: ``0.1 · mapper(w)`` of face ``face`` (W+ rows,
    or StyleSpace for StyleSpace mappers), so that strength 1 is the mapper's own edit of that face.
    A mapper's change depends on the face, so the direction is that face's (a slider's preview face)."""
    from ..models.mapper import RESIDUAL_SCALE

    if not 0 <= face < latents.batch_size:
        raise ValueError(f"{called(names, 'face')}: face {face} of a batch of {latents.batch_size}")
    check_finite(latents, called(names, "latents"))
    with torch.no_grad():
        d = mapper.delta(latents.slice(face, face + 1).to(g.w_avg.device), g)
    info = {"made_by": f"mapper {mapper.options.get('description', mapper.mapper_type)}, face {face}"}
    if d.w_plus is not None:
        return Direction("w+", [(d.w_plus[0] * RESIDUAL_SCALE).double().cpu()], info)
    return Direction("s", [(s[0] * RESIDUAL_SCALE).double().cpu() for s in d.styles], info)
