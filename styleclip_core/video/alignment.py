"""Face alignment over a clip with temporally smoothed crops (STIT ``utils/alignment.py`` at
fac087f: ``compute_transform``, ``crop_faces``, ``crop_image``, ``calc_alignment_coefficients``),
SPEC section 16.1.

Per frame, the FFHQ crop is an oriented square given by its centre ``c`` and two half-axis
vectors ``x`` and ``y`` (from the eye centres and mouth corners, as ``photos.align.crop_axes``)::

    ee = eye_right - eye_left,  em = mouth_avg - eye_avg
    x  = normalise(ee_x + em_y, ee_y - em_x) * max(2 |ee|, 1.8 |em|) * scale
    y  = (-x_y, x_x),           c = eye_avg + 0.1 em

Over the clip, ``c`` is smoothed along time with a Gaussian of ``center_sigma`` frames and ``x``,
``y`` with one of ``xy_sigma`` (``scipy.ndimage.gaussian_filter1d``: radius ``int(4 sigma + 0.5)``,
"reflect" boundary, which repeats the edge frame; sigma 0 leaves that term alone; STIT's
defaults 1 and 3). The landmarks and the corners are not smoothed; smoothing ``x`` and ``y``
separately makes the crop a parallelogram, ``quad = [c-x-y, c-x+y, c+x+y, c+x-y]`` (top-left,
bottom-left, bottom-right, top-right), so the crop is still an affine map of the frame.

The crop is STIT's ``crop_image`` at 1024: shrink by ``floor(qsize / 1024 / 2)`` when that is
above 1 (antialiased), crop to the quad's bounding box plus ``max(rint(0.1 qsize), 3)``, no
padding (outside the frame is black), then PIL's bilinear QUAD transform to 1024 x 1024; a
smaller generator gets that crop resized (Lanczos), as FFHQ's recipe does. Frames where no face
was found are left out of the smoothing (the frames with a face are smoothed as one sequence)
and pass through unedited.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter1d

from ..photos.align import FaceAlignment, FacePoints, crop_axes, points_problem, quad_from_axes, shrink_and_crop, to_uint8
from ..progress import Progress
from ..values import called, check_finite

CROP_SIZE = 1024  # STIT crops at 1024 (train.py's hard-coded image_size)
DEFAULT_CENTER_SIGMA, DEFAULT_XY_SIGMA = 1.0, 3.0  # train.py's defaults


def smoothed_quads(axes: np.ndarray, center_sigma: float = DEFAULT_CENTER_SIGMA, xy_sigma: float = DEFAULT_XY_SIGMA) -> np.ndarray:
    """``axes`` ``[T, 3, 2]`` (``photos.align.crop_axes`` per frame) -> quads ``[T, 4, 2]`` (float64, pixel indices)."""
    axes = np.asarray(axes, dtype=np.float64)
    c, x, y = axes[:, 0], axes[:, 1], axes[:, 2]
    if center_sigma < 0 or xy_sigma < 0:
        raise ValueError(f"smoothing sigmas must be >= 0 (0 = off), found center {center_sigma}, xy {xy_sigma}")
    if center_sigma != 0:
        c = gaussian_filter1d(c, sigma=center_sigma, axis=0)
    if xy_sigma != 0:
        x = gaussian_filter1d(x, sigma=xy_sigma, axis=0)
        y = gaussian_filter1d(y, sigma=xy_sigma, axis=0)
    return quad_from_axes(c, x, y)


def perspective_coefficients(quad: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The 8 coefficients of PIL's PERSPECTIVE transform that map frame pixels to the crop (STIT's
    ``calc_alignment_coefficients(quad + 0.5, crop corners)``: the 8 x 8 system solved by its
    normal equations in float64). For STIT's parallelogram crops the last two are 0 up to rounding."""
    src = np.asarray(quad, dtype=np.float64) + 0.5
    dst = np.array([[0, 0], [0, size], [size, size], [size, 0]], dtype=np.float64)
    a = []
    for (px, py), (u, v) in zip(src, dst):
        a.append([px, py, 1, 0, 0, 0, -u * px, -u * py])
        a.append([0, 0, 0, px, py, 1, -v * px, -v * py])
    a = np.asarray(a)
    return np.linalg.inv(a.T @ a) @ a.T @ dst.reshape(8)


def crop_quad(image: Image.Image, quad: np.ndarray, output_size: int) -> np.ndarray:
    """STIT's ``crop_image`` (no padding) at ``CROP_SIZE``, resized to ``output_size`` when smaller: uint8 ``[S, S, 3]``."""
    quad = np.array(quad, dtype=np.float64)
    qsize = np.hypot(*(quad[3] - quad[1]) / 2) * 2
    img, quad, qsize, *_ = shrink_and_crop(image, quad, qsize, CROP_SIZE)  # no padding: STIT's enable_padding is False
    img = img.transform((CROP_SIZE, CROP_SIZE), Image.Transform.QUAD, tuple((quad + 0.5).flatten()), Image.Resampling.BILINEAR)
    if output_size < CROP_SIZE:
        img = img.resize((output_size, output_size), Image.Resampling.LANCZOS)
    return np.asarray(img)


@dataclass(frozen=True)
class VideoAlignment:
    """Where the face of each frame was cropped. ``frames``: the indices (in the clip) of the
    frames with a face, in order, one per crop; ``alignments``: their crops' places (for
    ``photos.align.paste_back``); ``quads``: the smoothed quads ``[N, 4, 2]``; ``missing``: the
    frames without a face (passed through unedited)."""

    frame_count: int
    frame_size: tuple[int, int]  # (width, height)
    output_size: int
    frames: tuple[int, ...]
    alignments: tuple[FaceAlignment, ...]
    quads: np.ndarray
    missing: tuple[int, ...]
    settings: dict

    def summary(self) -> str:
        s = self.settings
        text = (f"{len(self.frames)} of {self.frame_count} frames aligned at {self.output_size} px "
                f"(smoothing sigma: centre {s['center_sigma']:g}, axes {s['xy_sigma']:g} frames; scale {s['scale']:g})")
        if self.missing:
            text += f"; no face in frames {list(self.missing)} (frames count from 0): passed through unedited"
        return text

    def check_frames(self, frames: torch.Tensor, names: dict[str, str] | None = None) -> None:
        t, h, w = frames.shape[:3]
        if (t, (w, h)) != (self.frame_count, self.frame_size):
            raise ValueError(f"{called(names, 'frames')}: the alignment is of {self.frame_count} frames of {self.frame_size[0]}x{self.frame_size[1]}, "
                             f"found {t} frames of {w}x{h}; give the frames that were aligned")

    def check_faces(self, count: int, what: str) -> None:
        if count != len(self.frames):
            raise ValueError(f"{what}: {count} faces, but {len(self.frames)} frames of the clip have a face; give one per aligned frame")


def align_video(frames: torch.Tensor, points: list[FacePoints | None], output_size: int = 256, scale: float = 1.0,
                center_sigma: float = DEFAULT_CENTER_SIGMA, xy_sigma: float = DEFAULT_XY_SIGMA, progress: Progress | None = None,
                names: dict[str, str] | None = None) -> tuple[torch.Tensor, VideoAlignment]:
    """Crops ``[N, S, S, 3]`` in [0, 1] of the frames ``[T, H, W, C]`` whose ``points`` are not None,
    with quads smoothed over those frames, and where they lie."""
    check_finite(frames, called(names, "frames"))
    if frames.ndim != 4:
        raise ValueError(f"{called(names, 'frames')}: expected an IMAGE batch [frames, height, width, channels], found shape {list(frames.shape)}")
    if len(points) != frames.shape[0]:
        raise ValueError(f"{called(names, 'points')}: {len(points)} entries for {frames.shape[0]} frames")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"{called(names, 'scale')}: must be a positive number, found {scale}")
    height, width = frames.shape[1:3]
    found = [i for i, p in enumerate(points) if p is not None]
    for i in found:
        problem = points_problem(points[i], width, height)
        if problem:
            raise ValueError(f"{called(names, 'points')} of frame {i} (frames count from 0): {problem}")
    if not found:
        raise ValueError(f"{called(names, 'frames')}: no face in any of the {frames.shape[0]} frames")
    quads = smoothed_quads(np.stack([crop_axes(points[i], scale) for i in found]), center_sigma, xy_sigma)
    crops = torch.empty(len(found), output_size, output_size, 3)
    for k, (i, quad) in enumerate(zip(found, quads)):
        pixels = Image.fromarray(to_uint8(frames[i: i + 1])[0])
        crops[k] = torch.from_numpy(crop_quad(pixels, quad, output_size).copy()).float() / 255
        if progress is not None:
            progress(k + 1, len(found), None)
    alignments = tuple(FaceAlignment(tuple(map(tuple, (q + 0.5).tolist())), (width, height), output_size) for q in quads)
    settings = {"center_sigma": center_sigma, "xy_sigma": xy_sigma, "scale": scale}
    missing = tuple(i for i in range(frames.shape[0]) if points[i] is None)
    return crops, VideoAlignment(frames.shape[0], (width, height), output_size, tuple(found), alignments, quads, missing, settings)

