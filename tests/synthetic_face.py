"""Synthetic face-like photos with known eye and mouth positions (no real photo is needed)."""
import math

import numpy as np
from PIL import Image, ImageDraw

from styleclip_core.photos.align import FacePoints

# An upright face: eye centres 60 px apart, mouth corners 70 px below the eyes' midpoint.
EYE_TO_EYE, EYE_TO_MOUTH, MOUTH_WIDTH = 60.0, 70.0, 50.0
MARKER_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0))


def face_points(center, angle_deg=0.0, scale=1.0) -> FacePoints:
    """Eye centres and mouth corners of a face centred (between the eyes) at ``center``, rotated by
    ``angle_deg`` (counter-clockwise as seen) and scaled."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # y points down
    canonical = np.array([[-EYE_TO_EYE / 2, 0], [EYE_TO_EYE / 2, 0], [-MOUTH_WIDTH / 2, EYE_TO_MOUTH], [MOUTH_WIDTH / 2, EYE_TO_MOUTH]])
    pts = canonical @ rot.T * scale + np.asarray(center, dtype=np.float64)
    return FacePoints(*map(tuple, pts))


def background(width, height):
    y, x = np.mgrid[:height, :width].astype(np.float32)
    r = 120 + 60 * np.sin(x / 37.0) * np.cos(y / 53.0)
    g = 100 + 0.2 * x + 0.1 * y
    b = 140 + 50 * np.cos((x + y) / 61.0)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def markers(width, height, points: FacePoints, radius=4.0):
    """Background with a coloured disc at each of the four points (drawn with 4x supersampling)."""
    ss = 4
    img = Image.fromarray(background(width, height)).resize((width * ss, height * ss), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    for (x, y), colour in zip(points.array(), MARKER_COLOURS):
        cx, cy = (x + 0.5) * ss, (y + 0.5) * ss
        draw.ellipse([cx - radius * ss, cy - radius * ss, cx + radius * ss, cy + radius * ss], fill=colour)
    return np.asarray(img.resize((width, height), Image.Resampling.BOX))


def face_photo(width=320, height=288, center=(150.0, 130.0), angle_deg=12.0, scale=1.0):
    """A face-like picture (skin ellipse, dark eyes, mouth; tilted with the points) and its FacePoints."""
    pts = face_points(center, angle_deg, scale)
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])

    def place(xy):  # canonical face coordinates (eye midpoint at 0) -> image
        return [tuple(p) for p in np.asarray(xy, dtype=np.float64) @ rot.T * scale + np.asarray(center)]

    t = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    img = Image.fromarray(background(width, height))
    draw = ImageDraw.Draw(img)
    draw.polygon(place(np.stack([70 * np.cos(t), 30 + 95 * np.sin(t)], 1)), fill=(224, 180, 150))
    for ex in (-EYE_TO_EYE / 2, EYE_TO_EYE / 2):
        draw.polygon(place(np.stack([ex + 9 * np.cos(t), 5 * np.sin(t)], 1)), fill=(40, 30, 30))
    mouth = np.stack([np.linspace(-MOUTH_WIDTH / 2, MOUTH_WIDTH / 2, 9), EYE_TO_MOUTH + 6 * np.cos(np.linspace(-np.pi / 2, np.pi / 2, 9))], 1)
    draw.line(place(mouth), fill=(150, 40, 50), width=max(1, int(5 * scale)))
    return np.asarray(img), pts


def write_face_png(path, **kwargs):
    pixels, pts = face_photo(**kwargs)
    Image.fromarray(pixels).save(path)
    return pts


# The input image of the photo workflow in tests (written into ComfyUI's input folder).
PORTRAIT = "portrait.png"
PORTRAIT_ARGS = dict(width=320, height=288, center=(150.0, 130.0), angle_deg=12.0, scale=1.0)


def portrait_points_text() -> str:
    """The portrait's points as the Align Faces node's points input takes them."""
    return " ".join(f"{v:.3f}" for v in face_points(PORTRAIT_ARGS["center"], PORTRAIT_ARGS["angle_deg"], PORTRAIT_ARGS["scale"]).array().flatten())


def write_portrait(input_dir):
    import os

    os.makedirs(input_dir, exist_ok=True)
    return write_face_png(os.path.join(input_dir, PORTRAIT), **PORTRAIT_ARGS)
