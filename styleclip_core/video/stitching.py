"""STIT's stitching tuning (``edit_video_stitching_tuning.py`` at fac087f: ``optimize_border``,
``masked_l2``; defaults of its ``main``), SPEC section 16.3.

An edited crop differs from its frame everywhere, also in the ring around the face that is
pasted back, which shows as a seam. Per frame, a copy ``G'`` of the (pivotal-tuned) generator
is tuned for a few steps so that, at the frame's edited code (fixed), its rendering matches

* the real crop on the ``border`` mask (the ring outside the face, and the face's part at the
  crop's edge), and
* the edited rendering of the tuned generator on the ``content`` mask (weight 0.01), so the edit
  stays::

    masked(x, t, m) = sum(crit(x * m, t * m)) / sum(m)      crit: (x - t)^2 (l2) or |x - t| (l1)
    loss = masked(G'(w), crop, border) + 0.01 * masked(G'(w), edited, content)

with the mask ``[B, 1, H, W]`` broadcast over the 3 channels while ``sum(m)`` counts it once, and
the masking before the difference (a soft mask weighs as m^2 under l2), as the reference.
Adam (lr 3e-4, default betas) over every parameter of ``G'`` (the mapping gets no gradient); 100
steps; when the border loss is below ``border_threshold`` (0: never) the run stops before that
step's update. The result is one more rendering after the loop. Each frame starts from the same
tuned generator; nothing carries over between frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..models.generator import Generator
from ..models.latents import Latents
from ..values import check_count


@dataclass
class StitchingSettings:
    """``edit_video_stitching_tuning.py``'s defaults (``--num_steps``, ``stitching_tuning_lr`` of
    ``configs/hyperparameters.py``, ``--content_loss_lambda``, ``--l2/--l1``, ``--border_loss_threshold``)."""

    steps: int = 100
    learning_rate: float = 3e-4
    content_weight: float = 0.01
    loss: str = "l2"  # or "l1"
    border_threshold: float = 0.0

    def check(self) -> "StitchingSettings":
        check_count(self.steps, "steps", minimum=0)
        if self.loss not in ("l2", "l1"):
            raise ValueError(f"loss must be 'l2' or 'l1', found {self.loss!r}")
        for name in ("learning_rate", "content_weight", "border_threshold"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, found {value}")
        return self


def masked_distance(x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, l2: bool = True) -> torch.Tensor:
    """STIT's ``masked_l2``: ``sum(crit(x * m, t * m)) / sum(m)``."""
    d = x * mask - target * mask
    return (d.square() if l2 else d.abs()).sum() / mask.sum()


@dataclass
class Stitched:
    image: torch.Tensor  # [1, 3, S, S] in [-1, 1]: the tuned copy's rendering of the code
    steps_applied: int
    history: list[dict[str, float]] = field(default_factory=list)  # per forward: border, content, total


def stitch(g: Generator, latent: Latents, crop: torch.Tensor, edited: torch.Tensor, border: torch.Tensor, content: torch.Tensor,
           settings: StitchingSettings | None = None) -> Stitched:
    """Tune a copy of ``g`` at the fixed code ``latent`` (one face, W+ or StyleSpace) so that its
    rendering matches ``crop`` on ``border`` and ``edited`` on ``content`` (images ``[1, 3, S, S]``
    in [-1, 1], masks ``[1, 1, S, S]``); ``g`` is not changed."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError("stitching tuning needs autograd; it cannot run under torch.inference_mode")
    s = (settings or StitchingSettings()).check()
    device = g.w_avg.device
    # copies: codes a node made under torch.inference_mode cannot enter autograd's graph
    latent = latent.to(device).detach().clone()
    crop, edited, border, content = (t.detach().clone().to(device, torch.float32) for t in (crop, edited, border, content))
    tuned = g.copy().requires_grad_(True)
    optimizer = torch.optim.Adam(tuned.parameters(), lr=s.learning_rate)
    history, applied = [], 0
    for _ in range(s.steps):
        image = tuned.synthesis(latent.to_styles(tuned))
        border_loss = masked_distance(image, crop, border, s.loss == "l2")
        content_loss = masked_distance(image, edited, content, s.loss == "l2")
        loss = border_loss + s.content_weight * content_loss
        history.append({"border": border_loss.item(), "content": content_loss.item(), "total": loss.item()})
        if border_loss < s.border_threshold:
            break  # before the update, as the reference
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        applied += 1
    with torch.no_grad():
        image = tuned.synthesis(latent.to_styles(tuned))
    return Stitched(image.detach(), applied, history)
