"""Mask-local edits: render an edit only inside a mask by blending the generator's features.

The original codes are rendered first, exactly as a plain render of them (same batch, same
noise), keeping the feature map and running RGB image after every resolution from
``start_resolution`` on; then the edited codes are rendered, and after each of those resolutions
the edited pass's feature map and RGB image are replaced by ``m * edited + (1 - m) * original``
(``torch.lerp``, which returns the original bit for bit where ``m`` is 0) with the mask resized to
that resolution. StyleGAN3 has no resolution ladder: every synthesis layer has its own grid, the
image in its centre and a margin around it, so the blend follows every layer whose sampling rate
is at least ``start_resolution``, with the mask placed on that layer's grid
(``models.stylegan3.layer_mask``); the last layer is ToRGB at full resolution, where the mask is
the user's. At full resolution the mask is the user's (feathered) mask, so outside it the
result is the original's plain rendering exactly; inside it, away from the feather band, it is the
edit. (None of the reference repositories has this; it is the pack's own design.)

The two passes are rendered separately, not as one batch: a convolution's float32 sums depend on
the batch they run in (the modulated convolution is one grouped convolution over the batch) and
on the thread split, so an original rendered next to the edits would differ from its plain
rendering in the last bits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.generator import Generator
from ..models.latents import Latents
from ..models.stylegan3 import layer_mask
from ..values import called, check_finite
from .masks import prepare_mask


@torch.no_grad()
def render_local_edit(
    g: Generator,
    original: Latents,
    edited: Latents,
    mask: torch.Tensor,
    feather: float = 0.0,
    start_resolution: int = 8,
    noise="const",
    names: dict[str, str] | None = None,
) -> torch.Tensor:
    """Image [B, 3, size, size] in [-1, 1] with the edit confined to ``mask``; where the mask is 0
    it equals ``g.synthesis(original.to_styles(g), noise)`` bit for bit (broadcast over the batch
    when ``original`` is one code)."""
    for value, parameter in ((original, "original"), (edited, "edited"), (mask, "mask")):
        check_finite(value, called(names, parameter))
    batch = max(original.batch_size, edited.batch_size)
    orig_styles, edit_styles = original.to_styles(g), edited.to_styles(g)
    if min(original.batch_size, edited.batch_size) not in (1, batch):
        raise ValueError(f"original ({original.batch_size}) and edited ({edited.batch_size}) latents: batch sizes must match or one be 1")
    noise = g.make_noise(batch, noise)  # one draw: the original and the edit see the same noise
    if edited.batch_size < batch:  # the edit pass carries the blended (full-batch) features
        edit_styles = [s.expand(batch, -1) for s in edit_styles]
    if original.batch_size < batch and any(n.shape[0] > 1 for n in noise):  # per-sample noise
        orig_styles = [s.expand(batch, -1) for s in orig_styles]
    device = edit_styles[0].device
    full = prepare_mask(mask.to(device), batch, g.size, feather)
    if getattr(g, "architecture", None) == "stylegan3":  # hooks after every layer, keyed by its index
        masks = {i: layer_mask(full, spec) for i, spec in enumerate(g.synthesis.specs) if spec.out_sampling_rate >= start_resolution}
    else:  # hooks after every resolution
        masks = {r: (full if r == g.size else F.interpolate(full, size=(r, r), mode="area")) for r in g.channels if r >= start_resolution}

    kept = {}

    def keep(key, x, rgb):
        if key in masks:
            kept[key] = (x, rgb)
        return x, rgb

    g.synthesis(orig_styles, noise=noise, layer_hook=keep)

    def blend(key, x, rgb):
        if key not in masks:
            return x, rgb
        m = masks[key].to(x.dtype)
        x_orig, rgb_orig = kept.pop(key)
        return torch.lerp(x_orig, x, m), (None if rgb is None else torch.lerp(rgb_orig, rgb, m))

    return g.synthesis(edit_styles, noise=noise, layer_hook=blend)
