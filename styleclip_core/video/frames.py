"""The clip's codes, edit and stitched frames (STIT ``train.py`` and ``edit_video_stitching_tuning.py``'s
``main`` at fac087f; SPEC 16):

* ``smooth_latents``: e4e's codes smoothed along time (optional; STIT does not, its alignment
  smoothing is what steadies the codes): a Gaussian of ``sigma`` frames per code entry, the
  same filter as the alignment's;
* ``CLIP_TUNING``: STIT's pivotal tuning over the clip (``train.py``: 300 steps, lr 3e-5, L2
  weight 10, LPIPS weight 1, no locality term; every frame updates the one generator in turn
  each step, PTI's multi-ID coach), for ``photos.pivotal_tuning``;
* ``edit_frames``: one direction added to every frame's code, its strength per frame (keyframes);
* ``stitch_frames``: per frame, the stitching masks of the real crop, the edited rendering, the
  stitching tune, and the paste-back into the frame through the full mask (feathered as STIT's
  ``paste_image_mask`` with ``radius = outer // 2``); frames without a face are copied. One frame
  is in flight at a time, so memory holds the clip's frames twice (in and out) and one crop's work.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from ..edits.directions import Direction
from ..models.generator import Generator
from ..models.latents import Latents
from ..models.render import photos_at, to_unit_range
from ..photos.align import paste_back
from ..photos.pivotal_tuning import TuningSettings
from ..progress import Progress
from ..values import called, check_finite
from .alignment import VideoAlignment
from .masks import DEFAULT_INNER, DEFAULT_OUTER, feathered, scaled_pixels, stitching_masks
from .stitching import StitchingSettings, masked_distance, stitch

CLIP_TUNING = TuningSettings(steps=300, learning_rate=3e-5, l2_weight=10.0, lpips_weight=1.0, lpips_threshold=0.0, locality=False)


def smooth_latents(latents: Latents, sigma: float) -> Latents:
    """Each code entry smoothed over the frames (the batch axis) with a Gaussian of ``sigma`` frames; 0 = unchanged."""
    if sigma < 0 or not np.isfinite(sigma):
        raise ValueError(f"smoothing sigma must be a finite number >= 0 frames (0 = off), found {sigma}")
    if sigma == 0 or latents.batch_size < 2:
        return latents

    def smooth(t: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(gaussian_filter1d(t.detach().cpu().double().numpy(), sigma, axis=0)).to(t.device, t.dtype)

    if latents.w_plus is not None:
        return Latents(w_plus=smooth(latents.w_plus))
    return Latents(styles=[smooth(s) for s in latents.styles])


def edit_frames(g: Generator, latents: Latents, direction: Direction, strengths: np.ndarray, names: dict[str, str] | None = None) -> Latents:
    """``code_i + strengths[i] * direction`` for every frame's code (W+ when both are W/W+, else StyleSpace)."""
    if len(strengths) != latents.batch_size:
        raise ValueError(f"{called(names, 'strengths')}: {len(strengths)} strengths for {latents.batch_size} frames")
    return Latents.cat([direction.apply(g, latents.slice(i, i + 1), [float(a)], names)[0] for i, a in enumerate(strengths)])


@dataclass
class MaskSettings:
    """``edit_video_stitching_tuning.py``'s mask options, in pixels of a 1024 crop."""

    outer_dilation: int = DEFAULT_OUTER
    inner_dilation: int = DEFAULT_INNER
    whole_image_border: bool = False
    feather: bool = True  # the feathered paste (radius outer // 2); False: the full mask as it is


@dataclass
class StitchedClip:
    frames: torch.Tensor  # [T, H, W, 3] in [0, 1]
    masks: torch.Tensor  # [T, H, W]: where each frame's crop was pasted (0 on frames without a face)
    crops: torch.Tensor  # [N, S, S, 3] in [0, 1]: the stitched crops
    seam_before: list[float] = field(default_factory=list)  # per face: mean |edit - crop| on the border mask, 0..1 units
    seam_after: list[float] = field(default_factory=list)  # the same for the stitched crop
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        if not self.seam_before:
            return "no face stitched"
        before, after = float(np.mean(self.seam_before)), float(np.mean(self.seam_after))
        per_frame = self.seconds.get("stitch", 0.0) / len(self.seam_before)
        return (f"stitched {len(self.seam_before)} faces: seam error at the crop border (mean |difference| to the frame's crop, 0..1) "
                f"{before:.4f} before stitching, {after:.4f} after; {per_frame:.2f} s per face")


def seam_error(image: torch.Tensor, crop: torch.Tensor, border: torch.Tensor) -> float:
    """Mean absolute difference (0..1 units, over the 3 channels) between ``image`` and the real
    ``crop`` (both [-1, 1]), weighted by the border mask: how visible the seam is."""
    return float(masked_distance(image, crop, border, l2=False) / 3 / 2)


def stitch_frames(g: Generator, frames: torch.Tensor, alignment: VideoAlignment, crops: torch.Tensor, edited: Latents, parser,
                  settings: StitchingSettings | None = None, masks: MaskSettings | None = None, progress: Progress | None = None,
                  names: dict[str, str] | None = None) -> StitchedClip:
    """Stitch and paste every edited face of the clip: ``frames`` ``[T, H, W, C]`` and ``crops``
    ``[N, S, S, 3]`` in [0, 1] (Align Video Faces'), ``edited`` one code per crop, ``parser`` a
    BiSeNet face parser. Returns the frames with the faces pasted back."""
    settings, masks = (settings or StitchingSettings()).check(), masks or MaskSettings()
    check_finite(frames, called(names, "frames"))
    check_finite(crops, called(names, "crops"))
    alignment.check_frames(frames, names)
    alignment.check_faces(crops.shape[0], called(names, "crops"))
    alignment.check_faces(edited.batch_size, called(names, "latents"))
    edited.check(g)
    device = g.w_avg.device
    size = g.size
    out = frames[..., :3].clone()
    pasted = torch.zeros(frames.shape[:3])
    stitched, before, after = [], [], []
    seconds = {"masks": 0.0, "stitch": 0.0, "paste": 0.0}
    radius = scaled_pixels(masks.outer_dilation // 2, size) if masks.feather else 0
    for k, frame in enumerate(alignment.frames):
        t0 = time.perf_counter()
        crop = photos_at(crops[k: k + 1], size).to(device)
        content, border, full = stitching_masks(crop, parser, masks.outer_dilation, masks.inner_dilation, masks.whole_image_border, size)
        code = edited.slice(k, k + 1).to(device)
        with torch.no_grad():
            edit = g.synthesis(code.to_styles(g))
        t1 = time.perf_counter()
        result = stitch(g, code, crop, edit, border, content, settings)
        t2 = time.perf_counter()
        before.append(seam_error(edit, crop, border))
        after.append(seam_error(result.image, crop, border))
        face = to_unit_range(result.image).cpu()
        paste_mask = feathered(full, radius)[:, 0].cpu()
        image, m = paste_back(frames[frame: frame + 1, ..., :3], face, [alignment.alignments[k]], feather=0.0, mask=paste_mask)
        out[frame], pasted[frame] = image[0], m[0]
        stitched.append(face[0])
        t3 = time.perf_counter()
        seconds["masks"] += t1 - t0
        seconds["stitch"] += t2 - t1
        seconds["paste"] += t3 - t2
        if progress is not None:
            progress(k + 1, len(alignment.frames), result.image)
    return StitchedClip(out, pasted, torch.stack(stitched), before, after, seconds)
