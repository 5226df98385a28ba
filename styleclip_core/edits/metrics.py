"""Edit metrics: how edited faces score against their originals, per face and as a mean, the way
papers on text-driven StyleGAN editing report them.

``edit_metrics(original, edited, clip=..., target=..., arcface=..., lpips=..., mask=...)`` takes
generator images ``[B, 3, H, W]`` in [-1, 1] (any resolution; the originals one per edit or one
for all) and returns an ``EditMetrics`` with, for every metric whose model was given:

* ``clip``: CLIP similarity of the edited image to the target text, the cosine of the normalised
  image and text embeddings (``ClipModel.similarity``: the CLIP losses' resize and preprocessing,
  the prompt as written, no templates). Higher = closer to the text; compare edits of the same
  face and CLIP model, not absolute values.
* ``clip_direction``: directional CLIP similarity (StyleGAN-NADA, Gal et al. 2022; the
  directional CLIP loss is ``1 -`` this): the cosine between the change of the image embedding,
  ``E_img(edited) - E_img(original)``, and the change of the text embedding, ``E_txt(target) -
  E_txt(neutral)``, both from normalised embeddings, the prompts as written. It says whether the
  image moved the way the text moved, independent of how far. Undefined (NaN) when the image
  embedding moved by less than ``UNCHANGED`` (nothing was edited: the direction of a change
  that small is float rounding, not the edit).
* ``identity``: ArcFace (IR-SE50) identity similarity to the original, the cosine of the two
  L2-normalised embeddings with StyleCLIP's IDLoss preprocessing (``models.irse.identity_features``:
  pool to 256, crop the face [35:223, 32:220], pool to 112), i.e. ``1 - IdentityLoss``. 1 = the
  same identity to the network.
* ``lpips``: LPIPS distance (Zhang et al. 2018; AlexNet unless another LPIPS model is given) to the
  original. 0 = identical.
* ``psnr``: peak signal-to-noise ratio to the original in dB, ``10 log10(1 / MSE)`` with the images
  in [0, 1] units (``(x + 1) / 2``, data range 1), the MSE over every pixel and channel; infinite
  for identical images.

With a ``mask`` (``[H, W]`` or ``[B, H, W]`` at the images' resolution, 1 = the region the edit
is meant to change, soft values allowed) two more say how much changed *outside* it:

* ``psnr_outside``: PSNR of the pixels outside the mask, the MSE weighted by ``1 - mask``:
  ``Σ (1 - m) (x - y)² / (3 Σ (1 - m))``. Pixels inside do not count at all, and the value does
  not depend on the region's size.
* ``lpips_outside``: LPIPS between the original and the edited image *with the inside of the mask
  replaced by the original* (``edited + m (original - edited)``; in the original that replacement
  changes nothing). LPIPS compares deep features over the whole image and cannot be restricted to
  an arbitrary region: its networks need the whole rectangle, their receptive fields straddle
  the mask's edge, and the features have other resolutions than the mask. Pasting the original
  inside makes every difference inside exactly zero, so changes inside never count (pixels just
  outside the edge still see some of the pasted inside through their receptive fields, as they
  would in a Local Edit composite). The value is LPIPS's spatial mean over the whole image, so
  it shrinks as the mask grows: compare edits scored with the same mask.

Both are NaN for a face whose mask covers the whole image (nothing outside to score). The CLIP
and identity metrics ignore the mask (they score the whole face). Means are over the faces
whose value is defined (NaN values left out; an infinite PSNR makes the mean infinite).

Everything runs without gradients, in chunks of ``chunk`` faces, each model on its own device;
PSNR is computed in float64 on the CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..models.clip import ClipModel
from ..models.irse import ArcFaceBackbone, identity_features
from ..models.lpips import LAYOUTS, LPIPS
from ..values import called, check_count, check_finite

DEFAULT_NEUTRAL = "a face"

# Below this norm of the image-embedding change (embeddings are unit vectors) the directional CLIP
# similarity is undefined. The same image encoded in batches of other sizes moves by float32
# rounding, 1.7e-7 for the tiny stand-in CLIP (measured); a visible edit moves it by 0.05 or more.
UNCHANGED = 1e-4

# Metric key -> (column header, what it is). Keys are the CSV columns and the dict keys of results.
METRICS: dict[str, tuple[str, str]] = {
    "clip": ("CLIP ↑", "cosine similarity of the edited image to the target text (CLIP)"),
    "clip_direction": ("dir. CLIP ↑", "cosine of the image-embedding change and the text change target - neutral (CLIP)"),
    "identity": ("ID ↑", "ArcFace identity cosine similarity to the original"),
    "lpips": ("LPIPS ↓", "LPIPS distance to the original"),
    "psnr": ("PSNR ↑", "PSNR to the original, dB (images in [0, 1])"),
    "lpips_outside": ("LPIPS out ↓", "LPIPS to the original outside the mask (inside replaced by the original)"),
    "psnr_outside": ("PSNR out ↑", "PSNR to the original over the pixels outside the mask, dB"),
}


def mean_of(values: list[float]) -> float:
    """Mean of the defined values (NaN left out; NaN when none is defined)."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def format_value(key: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.2f}" if key.startswith("psnr") else f"{value:.4f}"


@dataclass(frozen=True)
class EditMetrics:
    """Scores of a batch of edits: ``per_face[key]`` one value per edited image (batch order),
    ``means[key]`` their mean (``mean_of``), for the keys of ``METRICS`` that were computed, in
    that order; ``notes``: what the user should know (a text CLIP cuts, undefined values)."""

    per_face: dict[str, list[float]]
    means: dict[str, float]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def count(self) -> int:
        return len(next(iter(self.per_face.values()))) if self.per_face else 0

    def rows(self) -> list[dict[str, float | int]]:
        """One dict per face: ``{"face": i, key: value, ...}``."""
        return [{"face": i, **{k: v[i] for k, v in self.per_face.items()}} for i in range(self.count)]

    def table(self) -> str:
        """A markdown table: one row per face and a last row of the means."""
        keys = list(self.per_face)
        lines = ["| face | " + " | ".join(METRICS[k][0] for k in keys) + " |", "| --- |" + " ---: |" * len(keys)]
        for row in self.rows():
            lines.append(f"| {row['face']} | " + " | ".join(format_value(k, row[k]) for k in keys) + " |")
        lines.append("| **mean** | " + " | ".join(format_value(k, self.means[k]) for k in keys) + " |")
        return "\n".join(lines + [f"\n{n}" for n in self.notes])


def lpips_min_size(net: str) -> int:
    """The smallest image side LPIPS-``net``'s backbone takes (every tap at least 1 pixel)."""
    size = 1
    while True:
        s, ok = size, True
        for spec in LAYOUTS[net]["layers"]:
            if spec[0] == "conv":
                _, _, _, k, stride, pad = spec
                s = (s + 2 * pad - k) // stride + 1
            else:
                s = (s - spec[1]) // spec[2] + 1
            if s < 1:
                ok = False
                break
        if ok:
            return size
        size += 1


def _check_images(x, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        found = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected images [B, 3, H, W] (generator images in [-1, 1]), found {found}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: expected at least one image, found an empty batch {list(x.shape)}")
    return check_finite(x, what)


def _check_mask(mask, batch: int, size: tuple[int, int], what: str) -> torch.Tensor:
    """``[B or 1, 1, H, W]`` float mask in [0, 1] at the images' size."""
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        found = list(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{what}: expected a mask [H, W] or [B, H, W] (1 = edited region), found {found}")
    m = mask.float()[None] if mask.ndim == 2 else mask.float()
    if tuple(m.shape[-2:]) != tuple(size):
        raise ValueError(
            f"{what}: expected a mask of the images' size {size[0]} x {size[1]} (H x W), found {m.shape[-2]} x {m.shape[-1]}; "
            "resize it to the images first (a resampled mask would change which pixels count as outside)"
        )
    if m.shape[0] not in (1, batch):
        raise ValueError(f"{what}: expected 1 mask or one per edited image ({batch}), found a batch of {m.shape[0]}")
    check_finite(m, what)
    if bool((m < 0).any()) or bool((m > 1).any()):
        raise ValueError(f"{what}: expected values in [0, 1], found values from {float(m.min()):g} to {float(m.max()):g}")
    return m[:, None]


def _device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def _psnr(mse: torch.Tensor) -> list[float]:
    """``10 log10(1 / MSE)`` per face (data range 1); infinite where the MSE is 0."""
    return [math.inf if e == 0 else -10 * math.log10(e) for e in mse.tolist()]


def _in_chunks(fn, x: torch.Tensor, chunk: int, device) -> torch.Tensor:
    """``fn`` of ``x`` (moved to ``device``) ``chunk`` images at a time, concatenated."""
    return torch.cat([fn(x[s:s + chunk].to(device)) for s in range(0, x.shape[0], chunk)])


@torch.no_grad()
def edit_metrics(original: torch.Tensor, edited: torch.Tensor, clip: ClipModel | None = None, target: str | None = None,
                 neutral: str = DEFAULT_NEUTRAL, arcface: ArcFaceBackbone | None = None, lpips: LPIPS | None = None,
                 mask: torch.Tensor | None = None, chunk: int = 8, names: dict[str, str] | None = None) -> EditMetrics:
    """Score ``edited`` against ``original`` (see the module doc for every metric).

    ``original`` / ``edited``: generator images ``[B, 3, H, W]`` in [-1, 1] of one size (originals of
    the same aspect ratio at another resolution are resized to the edited images' size, bilinear
    with antialiasing); one original for every edited image or one per edited image. ``clip`` (with ``target`` and
    ``neutral``), ``arcface`` and ``lpips`` switch their metrics on; PSNR needs no model. ``mask``:
    ``[H, W]`` / ``[B, H, W]`` at the images' size, 1 = the edited region, adds the outside-mask
    LPIPS and PSNR. Bad shapes, batches, masks and non-finite pixels are ValueErrors naming the
    parameter (or ``names``' word for it), what was expected and what was found.
    """
    chunk = check_count(chunk, called(names, "chunk"))
    edited = _check_images(edited, called(names, "edited"))
    original = _check_images(original, called(names, "original"))
    batch, size = edited.shape[0], tuple(edited.shape[-2:])
    if tuple(original.shape[-2:]) != size and original.shape[-1] * size[0] == original.shape[-2] * size[1]:
        # Same shape, another resolution (a 1024 px aligned photo against a 256 px rendering):
        # the originals are brought to the edited images' size, which is what is being scored.
        original = torch.nn.functional.interpolate(original, size=size, mode="bilinear", antialias=True, align_corners=False)
    if tuple(original.shape[-2:]) != size:
        raise ValueError(f"{called(names, 'original')}: expected images of the edited images' size {size[0]} x {size[1]} (H x W), "
                         f"found {original.shape[-2]} x {original.shape[-1]}")
    if original.shape[0] not in (1, batch):
        raise ValueError(f"{called(names, 'original')}: expected 1 image or one per edited image ({batch}), found a batch of {original.shape[0]}")
    m = _check_mask(mask, batch, size, called(names, "mask")) if mask is not None else None
    if clip is not None and not (target or "").strip():
        raise ValueError(f"{called(names, 'target')}: the CLIP metrics need a target text (what the edit should show), found {target!r}")
    if lpips is not None and min(size) < lpips_min_size(lpips.net_name):
        raise ValueError(f"{called(names, 'edited')}: LPIPS-{lpips.net_name} needs images of at least {lpips_min_size(lpips.net_name)} px a side, "
                         f"found {size[0]} x {size[1]}")
    spans = [(s, min(s + chunk, batch)) for s in range(0, batch, chunk)]

    def originals(a, b):
        return original.expand(batch, -1, -1, -1)[a:b]

    per_face: dict[str, list[float]] = {}
    notes: list[str] = []
    if clip is not None:
        device = clip.device
        text = clip.text_features(target)
        direction = clip.text_direction(neutral, target, templates=False)
        origin = _in_chunks(clip.encode_images, original, chunk, device).expand(batch, -1)
        sims, dirs = [], []
        for a, b in spans:
            e = clip.encode_images(edited[a:b].to(device))
            sims += (e * text.to(e.dtype)).sum(-1).tolist()
            change = e - origin[a:b]
            norm = change.norm(dim=-1)
            cos = (change * direction.to(change.dtype)).sum(-1) / norm
            dirs += torch.where(norm >= UNCHANGED, cos, torch.full_like(cos, math.nan)).tolist()
        per_face["clip"], per_face["clip_direction"] = sims, dirs
        notes += [n for n in (clip.context_note(target, "the target text"), clip.context_note(neutral, "the neutral text")) if n]
        same = [i for i, v in enumerate(dirs) if math.isnan(v)]
        if same:
            notes.append(f"directional CLIP is undefined (n/a) for face(s) {same}: the edited image's CLIP embedding is the original's (moved by less than {UNCHANGED:g})")
    if arcface is not None:
        device = _device(arcface)
        origin = _in_chunks(lambda x: identity_features(arcface, x).float(), original, chunk, device).expand(batch, -1)
        per_face["identity"] = [v for a, b in spans for v in (identity_features(arcface, edited[a:b].to(device)).float() * origin[a:b]).sum(1).tolist()]
    if lpips is not None:
        device = _device(lpips)
        per_face["lpips"] = [v for a, b in spans for v in lpips(originals(a, b).to(device), edited[a:b].to(device)).float().tolist()]
    x0, x1 = (original.double().cpu() + 1) / 2, (edited.double().cpu() + 1) / 2
    per_face["psnr"] = _psnr((x1 - x0.expand_as(x1)).square().mean((1, 2, 3)))
    if m is not None:
        keep = (1 - m.double().cpu()).expand(batch, -1, -1, -1)
        area = keep.sum((1, 2, 3)) * 3
        nothing_outside = [i for i, v in enumerate(area.tolist()) if v == 0]
        if lpips is not None:
            device = _device(lpips)
            values = []
            for a, b in spans:
                o, e = originals(a, b).to(device), edited[a:b].to(device)
                inside = m.expand(batch, -1, -1, -1)[a:b].to(device, e.dtype)
                values += lpips(o, torch.lerp(e, o.to(e.dtype), inside)).float().tolist()
            per_face["lpips_outside"] = [math.nan if i in nothing_outside else v for i, v in enumerate(values)]
        weighted = ((x1 - x0.expand_as(x1)).square() * keep).sum((1, 2, 3)) / area.clamp_min(1e-300)
        per_face["psnr_outside"] = [math.nan if i in nothing_outside else v for i, v in enumerate(_psnr(weighted))]
        if nothing_outside:
            notes.append(f"outside-mask metrics are undefined (n/a) for face(s) {nothing_outside}: the mask covers the whole image")
    ordered = {k: per_face[k] for k in METRICS if k in per_face}
    return EditMetrics(ordered, {k: mean_of(v) for k, v in ordered.items()}, tuple(notes))
