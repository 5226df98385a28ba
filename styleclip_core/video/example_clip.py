"""A short example clip made from the example portrait: a real face that moves, rolls and turns.

Why: a new user's video workflow has to run out of the box, with no clip of their own, and the
video tests need a clip that gives alignment and stitching real work to do (a face whose crop
moves, rotates and changes shape from frame to frame) while staying a real photo that MediaPipe
finds a face in. ``example_clip`` makes it from ``photos.align.example_portrait()`` (NASA's
public-domain portrait shipped inside scikit-image): nothing is downloaded and no clip file is
committed.

Each frame is the portrait, inside a soft oval vignette, on a soft gradient background, placed by
a known affine map (``example_clip_transforms``): over the clip the face translates a few pixels a
frame along a figure of eight, rolls between -6 and +6 degrees and "turns" (a horizontal squash
about the face centre, down to 88 % of its width, twice a clip, as a head's yaw narrows it). The
motion is one smooth loop (frame ``t`` is at phase ``t / frames``), so the clip repeats without a
jump. The framing is the same at any size: the face's FFHQ crop is half the frame's shorter side
(176 px at the default 384 x 352; about 155 px where the turn narrows the face most, which is
what MediaPipe and alignment need) and stays inside every frame with margin.

Coordinates: the maps take portrait pixel indices to frame pixel indices (the centre of pixel
``k`` is at ``k``, as ``FacePoints`` hold them), so ``affine @ [x, y, 1]`` maps a landmark found in
the portrait to where it is in frame ``t``. Deterministic: no randomness, and the pixels come from
fixed PIL resampling and float64 compositing rounded once.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..photos.align import example_portrait
from ..values import check_count

PORTRAIT_SIZE = 512  # example_portrait() is 512 x 512
# Where the face is in the example portrait: the centre and side of its FFHQ crop
# square (photos.align.ffhq_quad) from the eye and mouth points MediaPipe 0.10.14's built-in face
# mesh finds, in pixel indices. They only frame the clip; nothing depends on them exactly.
PORTRAIT_FACE_CENTRE = (224.6, 105.9)
PORTRAIT_FACE_SIDE = 174.6

FACE_FRACTION = 0.5  # the face crop's side in the frame, as a fraction of the frame's shorter side
FACE_HEIGHT = 0.42  # the face centre's height in the frame, as a fraction of the frame height (a portrait's framing)
SHIFT = (0.08, 0.04)  # translation amplitudes (x, y), as fractions of the face crop's side
ROLL_DEGREES = 6.0
SQUASH = 0.12  # the largest narrowing of the face's width by the turn
MIN_SIZE = 64  # frames at least this wide and high: below it the face would be under 32 px, no use as a clip of a face


def _motion(frames: int, width: int, height: int) -> tuple[np.ndarray, float]:
    """The per-frame maps (float64 [T, 2, 3], portrait pixel index -> frame pixel index) and the
    resize factor the portrait is first resampled by (the maps' scale before roll and turn)."""
    frames = check_count(frames, "frames")
    width = check_count(width, "width", MIN_SIZE)
    height = check_count(height, "height", MIN_SIZE)
    # The portrait is resampled once to the frame's scale (antialiased), so the scale is the one
    # that resize really makes: a whole number of pixels over PORTRAIT_SIZE.
    resized = max(1, int(np.rint(PORTRAIT_SIZE * FACE_FRACTION * min(width, height) / PORTRAIT_FACE_SIDE)))
    scale = resized / PORTRAIT_SIZE
    side = PORTRAIT_FACE_SIDE * scale
    centre = np.array([(width - 1) / 2, height * FACE_HEIGHT])
    face = np.array(PORTRAIT_FACE_CENTRE)

    maps = np.empty((frames, 2, 3))
    for t in range(frames):
        phase = 2 * np.pi * t / frames
        shift = side * np.array([SHIFT[0] * np.sin(phase), SHIFT[1] * np.sin(2 * phase)])
        roll = np.deg2rad(ROLL_DEGREES) * np.cos(phase)
        squash = 1 - SQUASH * np.sin(phase) ** 2
        rotate = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
        # about the face centre: scale, squash along the face's own horizontal axis, roll, place
        linear = rotate @ np.diag([squash, 1.0]) * scale
        maps[t, :, :2] = linear
        maps[t, :, 2] = centre + shift - linear @ face
    return maps, scale


def example_clip_transforms(frames: int = 16, width: int = 384, height: int = 352) -> np.ndarray:
    """The affine map of every frame of ``example_clip(frames, width, height)``: float64 [T, 2, 3],
    ``maps[t] @ [x, y, 1]`` = where portrait pixel (x, y) is in frame ``t`` (pixel indices)."""
    return _motion(frames, width, height)[0]


def _vignette(size: int) -> np.ndarray:
    """Opacity (float64 [size, size], 0..1) of the portrait: a soft oval around the head and
    shoulders, also faded at the photo's own edges (so no hard photo edge moves through the clip)."""
    y, x = (np.mgrid[:size, :size] + 0.5) / size * PORTRAIT_SIZE  # in portrait pixels at any resize
    # centred on the body below the face, wide enough for the shoulders, its top just above the
    # photo (y = -15): opaque over the whole face and hair, fading over its outer 12 %
    r = np.hypot((x - 225) / 215, (y - 250) / 265)
    oval = np.clip((1 - r) / 0.12, 0, 1)
    edge = np.clip(np.minimum(np.minimum(x, PORTRAIT_SIZE - x), np.minimum(y, PORTRAIT_SIZE - y)) / 10, 0, 1)
    a = oval * edge
    return a * a * (3 - 2 * a)  # smoothstep: no visible kink where the fade starts


def _background(width: int, height: int) -> np.ndarray:
    """A soft backdrop (float64 [H, W, 3], 0..255): a cool grey that darkens downwards, lit a
    little behind the face."""
    y, x = np.mgrid[:height, :width]
    v = (y / max(height - 1, 1))[..., None]
    top, bottom = np.array([214.0, 219.0, 226.0]), np.array([148.0, 158.0, 174.0])
    glow = np.exp(-(((x - width / 2) / (0.45 * width)) ** 2 + ((y - FACE_HEIGHT * height) / (0.45 * height)) ** 2))[..., None]
    return top + (bottom - top) * v + 18.0 * glow


def _pil_affine(inverse: np.ndarray) -> tuple[float, ...]:
    """PIL's AFFINE data (output continuous coordinates -> input continuous coordinates, pixel
    ``k`` spanning [k, k + 1]) from a 2x3 map between pixel indices (pixel ``k`` centred at ``k``)."""
    a = inverse[:, :2]
    b = inverse[:, 2] + 0.5 - a @ [0.5, 0.5]
    return (a[0, 0], a[0, 1], b[0], a[1, 0], a[1, 1], b[1])


def example_clip(frames: int = 16, width: int = 384, height: int = 352) -> np.ndarray:
    """The example clip: uint8 [frames, height, width, 3], the portrait moving, rolling and turning
    on a soft background (see the module docstring); frame ``t``'s map from portrait pixels is
    ``example_clip_transforms(frames, width, height)[t]``."""
    maps, scale = _motion(frames, width, height)
    portrait = Image.fromarray(example_portrait())
    resized = round(PORTRAIT_SIZE * scale)
    # Lanczos once to the clip's scale (antialiased, whether it shrinks or enlarges), then each
    # frame's near-unit map (roll, a squash to 88 % at most, translation) resampled bicubic.
    photo = portrait.resize((resized, resized), Image.Resampling.LANCZOS)
    alpha = Image.fromarray(_vignette(resized).astype(np.float32), "F")
    to_resized = np.array([[scale, 0, 0.5 * scale - 0.5], [0, scale, 0.5 * scale - 0.5], [0, 0, 1]])  # portrait index -> resized index
    background = _background(width, height)

    out = np.empty((len(maps), height, width, 3), dtype=np.uint8)
    for t, m in enumerate(maps):
        frame_to_resized = to_resized @ np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        data = _pil_affine(frame_to_resized[:2])
        rgb = np.asarray(photo.transform((width, height), Image.Transform.AFFINE, data, Image.Resampling.BICUBIC), dtype=np.float64)
        # bilinear for the opacity: bicubic would overshoot 0..1 at the fade's ends
        a = np.asarray(alpha.transform((width, height), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR), dtype=np.float64)
        a = np.clip(a, 0, 1)[..., None]
        out[t] = np.clip(np.rint(background + (rgb - background) * a), 0, 255).astype(np.uint8)
    return out
