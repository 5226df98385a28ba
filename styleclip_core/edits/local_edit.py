"""Mask-local edits: render an edit only inside a mask by blending the generator's features.

The original and the edited codes are rendered together; after every resolution from
``start_resolution`` on, the edited pass's feature map and running RGB image are replaced by
``m * edited + (1 - m) * original`` with the mask resized to that resolution. At full resolution
the mask is the user's (feathered) mask, so outside it the result is the original rendering
exactly; inside it, away from the feather band, it is the edit. (None of the reference
repositories has this; it is the pack's own design.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.generator import Generator
from ..models.latents import Latents
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
    """Image [B, 3, size, size] in [-1, 1] with the edit confined to ``mask``."""
    for value, parameter in ((original, "original"), (edited, "edited"), (mask, "mask")):
        check_finite(value, called(names, parameter))
    batch = max(original.batch_size, edited.batch_size)
    orig_styles, edit_styles = original.to_styles(g), edited.to_styles(g)
    styles = []
    for a, b in zip(orig_styles, edit_styles):
        if a.shape[0] != b.shape[0]:
            if min(a.shape[0], b.shape[0]) != 1:
                raise ValueError(f"original ({a.shape[0]}) and edited ({b.shape[0]}) latents: batch sizes must match or one be 1")
            a, b = a.expand(batch, -1), b.expand(batch, -1)
        styles.append(torch.cat([a, b]))
    device = styles[0].device
    full = prepare_mask(mask.to(device), batch, g.size, feather)
    masks = {r: (full if r == g.size else F.interpolate(full, size=(r, r), mode="area")) for r in g.channels}

    def blend(resolution, x, rgb):
        if resolution < start_resolution:
            return x, rgb
        m = masks[resolution].to(x.dtype)
        x = torch.cat([x[:batch], torch.lerp(x[:batch], x[batch:], m)])
        rgb = torch.cat([rgb[:batch], torch.lerp(rgb[:batch], rgb[batch:], m)])
        return x, rgb

    images = g.synthesis(styles, noise=noise, layer_hook=blend)
    return images[batch:]
