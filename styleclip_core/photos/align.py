"""FFHQ face alignment (as e4e's ``utils/alignment.py`` does it), face landmarks from MediaPipe,
and pasting an edited aligned face back into the photo it came from.

The alignment reproduces the reference pixel for pixel from the same eye and mouth points; it
also records where the aligned square lies in the photo (``FaceAlignment``), which the reference
throws away and ``paste_back`` needs. Coordinates: landmark points are pixel indices (the centre
of pixel ``k`` is at ``k``, as dlib reports them); ``FaceAlignment.corners`` are continuous image
coordinates (pixel ``k`` spans ``[k, k + 1]``, as PIL's transforms use them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F
from PIL import Image

from ..values import called, check_finite

# Output size -> size of the quad transform before the final downscale: e4e aligns straight to
# 256; the FFHQ recipe transforms at 4096 and downsamples to 1024.
TRANSFORM_SIZE = {256: 256, 1024: 4096}


class FaceNotFoundError(ValueError):
    pass


@dataclass(frozen=True)
class FacePoints:
    """The four points the FFHQ maths uses, in pixels: the centres of the eye on the image's left
    (mean of dlib points 36-41) and on its right (42-47), the mouth corners (dlib 48 and 54)."""

    eye_left: tuple[float, float]
    eye_right: tuple[float, float]
    mouth_left: tuple[float, float]
    mouth_right: tuple[float, float]

    @classmethod
    def from_68(cls, lm) -> "FacePoints":
        lm = np.asarray(lm, dtype=np.float64)
        return cls(tuple(lm[36:42].mean(0)), tuple(lm[42:48].mean(0)), tuple(lm[48]), tuple(lm[54]))

    def array(self) -> np.ndarray:
        return np.array([self.eye_left, self.eye_right, self.mouth_left, self.mouth_right], dtype=np.float64)

    def oriented(self) -> "FacePoints":
        """The same points with left and right swapped if they are mirrored: seen in the image,
        turning from eye_left->eye_right to eyes->mouth is clockwise (y down) at any roll, as for
        dlib's points on any face. Guards against a detector's or a user's opposite convention."""
        el, er, ml, mr = self.array()
        e2e, e2m = er - el, (ml + mr - el - er) / 2
        if e2e[0] * e2m[1] - e2e[1] * e2m[0] >= 0:
            return self
        return FacePoints(self.eye_right, self.eye_left, self.mouth_right, self.mouth_left)


def crop_axes(points: FacePoints, scale: float = 1.0) -> np.ndarray:
    """``[3, 2]``: the centre ``c`` and half-axes ``x``, ``y`` of the oriented crop square from eye and
    mouth points (FFHQ's ``recreate_aligned_images``; STIT's ``compute_transform`` adds ``scale``)."""
    eye_left, eye_right, mouth_left, mouth_right = points.array()
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (mouth_left + mouth_right) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    x *= scale
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c, x, y])


def quad_from_axes(c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Corners top-left, bottom-left, bottom-right, top-right (``[..., 4, 2]``) of the crop with
    centre ``c`` and half-axes ``x``, ``y`` (each ``[..., 2]``)."""
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y], axis=-2)


def ffhq_quad(points: FacePoints) -> tuple[np.ndarray, float]:
    """The oriented crop square (corners top-left, bottom-left, bottom-right, top-right, in pixel
    indices) and its side length, from eye and mouth points (FFHQ's ``recreate_aligned_images``)."""
    c, x, y = crop_axes(points)
    return quad_from_axes(c, x, y), float(np.hypot(*x) * 2)


@dataclass(frozen=True)
class FaceAlignment:
    """Where an aligned face came from: the photo coordinates of the aligned square's corners
    (top-left, bottom-left, bottom-right, top-right; continuous coordinates) and the photo's size."""

    corners: tuple[tuple[float, float], ...]
    image_size: tuple[int, int]  # (width, height)
    output_size: int

    def aligned_to_image(self) -> np.ndarray:
        """2x3 affine map from the unit square of the aligned image (u right, v down) to photo
        coordinates. The square is a rotated square, so PIL's bilinear QUAD map is affine."""
        tl, bl, _, tr = np.asarray(self.corners, dtype=np.float64)
        return np.stack([tr - tl, bl - tl, tl], axis=1)

    def image_to_aligned(self) -> np.ndarray:
        a = np.vstack([self.aligned_to_image(), [0, 0, 1]])
        return np.linalg.inv(a)[:2]

    def side(self) -> float:
        """Side of the aligned square in photo pixels."""
        c = np.asarray(self.corners)
        return float(np.hypot(*(c[3] - c[0])))


def _pil_rgb(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] < 3:  # grey (or grey + alpha): the grey channel in R, G and B
        arr = np.repeat(arr[..., :1], 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB")


# A face crop smaller than this (in photo pixels) or larger than this many times the photo's
# longer side cannot come from real eye and mouth points.
MIN_FACE_SIDE = 8.0
MAX_FACE_SCALE = 16.0


def points_problem(points: FacePoints, width: int, height: int) -> str | None:
    """What makes ``points`` unusable for a ``width`` x ``height`` photo, or None: numbers that are
    not finite, points that (nearly) coincide, a crop entirely outside the photo or far larger
    than it."""
    p = points.array()
    if not np.isfinite(p).all():
        return f"the points {p.flatten().tolist()} are not all finite numbers"
    quad, side = ffhq_quad(points)
    if not np.isfinite(side) or side < MIN_FACE_SIDE:
        return (f"the eye and mouth points (nearly) coincide ({p.flatten().tolist()}): the face crop would be {side:.1f} px, "
                f"less than {MIN_FACE_SIDE:g}; give the left eye, right eye, left and right mouth corner of the face")
    if side > MAX_FACE_SCALE * max(width, height):
        return f"the points make a face crop of {side:.0f} px, far larger than the {width}x{height} photo; check the points"
    lo, hi = quad.min(0), quad.max(0)
    if hi[0] < 0 or hi[1] < 0 or lo[0] > width or lo[1] > height:
        return (f"the points put the face crop ({lo[0]:.0f}, {lo[1]:.0f}) - ({hi[0]:.0f}, {hi[1]:.0f}) entirely outside the "
                f"{width}x{height} photo; points are pixels of the photo (x from the left, y from the top)")
    return None


def shrink_and_crop(img: Image.Image, quad: np.ndarray, qsize: float, output_size: int):
    """The FFHQ recipe's first two steps (shared by e4e's, FFHQ's and STIT's crops): shrink the
    photo by ``floor(qsize / output_size / 2)`` when that is above 1 (Lanczos), then crop it to the
    quad's bounding box plus ``max(rint(0.1 qsize), 3)``. Returns the image, the quad and qsize in
    its coordinates, the photo pixels per image pixel (``scale``), the image's origin in shrunk photo
    coordinates (``offset``) and the border."""
    width, height = img.size
    quad = np.array(quad, dtype=np.float64)
    scale = np.array([1.0, 1.0])
    offset = np.array([0.0, 0.0])
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(rsize, Image.Resampling.LANCZOS)
        scale = np.array([width / rsize[0], height / rsize[1]])
        quad /= shrink
        qsize /= shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))), int(np.ceil(max(quad[:, 0]))), int(np.ceil(max(quad[:, 1]))))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0), min(crop[2] + border, img.size[0]), min(crop[3] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]
        offset += crop[0:2]
    return img, quad, qsize, scale, offset, border


def align_face(image, points: FacePoints, output_size: int = 256) -> tuple[np.ndarray, FaceAlignment]:
    """Aligned crop (uint8 [S, S, 3]) of the face at ``points`` in ``image`` (PIL or uint8 [H, W, 3]),
    exactly as e4e's ``align_face`` (S = 256) or the FFHQ script (S = 1024) crops it."""
    if output_size not in TRANSFORM_SIZE:
        raise ValueError(f"output size must be one of {sorted(TRANSFORM_SIZE)}, got {output_size}")
    transform_size = TRANSFORM_SIZE[output_size]
    img = _pil_rgb(image)
    width, height = img.size
    problem = points_problem(points, width, height)
    if problem:
        raise ValueError(f"points: {problem}")
    quad, qsize = ffhq_quad(points)
    img, quad, qsize, scale, offset, border = shrink_and_crop(img, quad, qsize, output_size)

    # Pad: reflect the photo past its edges, blurred and faded toward its median colour.
    pad = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))), int(np.ceil(max(quad[:, 0]))), int(np.ceil(max(quad[:, 1]))))
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0), max(pad[2] - img.size[0] + border, 0), max(pad[3] - img.size[1] + border, 0))
    if max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        arr = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = arr.shape
        y, x, _ = np.ogrid[:h, :w, :1]
        mask = np.maximum(1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
                          1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]))
        blur = qsize * 0.02
        arr += (scipy.ndimage.gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        quad += pad[:2]
        offset -= pad[:2]

    # Transform.
    img = img.transform((transform_size, transform_size), Image.Transform.QUAD, tuple((quad + 0.5).flatten()), Image.Resampling.BILINEAR)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), Image.Resampling.LANCZOS)
    corners = (quad + 0.5 + offset) * scale
    alignment = FaceAlignment(tuple(map(tuple, corners.tolist())), (width, height), output_size)
    return np.asarray(img), alignment


def already_aligned(image, output_size: int = 256) -> tuple[np.ndarray, FaceAlignment]:
    """A photo that is already an aligned crop: resized to ``output_size`` (bilinear, as e4e's
    Resize does), its alignment is the whole image."""
    img = _pil_rgb(image)
    w, h = img.size
    out = img if img.size == (output_size, output_size) else img.resize((output_size, output_size), Image.Resampling.BILINEAR)
    return np.asarray(out), FaceAlignment(((0.0, 0.0), (0.0, float(h)), (float(w), float(h)), (float(w), 0.0)), (w, h), output_size)


def parse_points(text: str, batch_size: int) -> list[FacePoints]:
    """Face points typed by a user or written by another node: one line per image (or one line for
    every image) of 8 numbers, ``x y`` of the left eye centre, right eye centre, left mouth
    corner, right mouth corner (left/right as seen in the image), in pixels."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("no points given: expected 8 numbers per image (x y of the left eye centre, right eye centre, left mouth corner, right mouth corner)")
    if len(lines) not in (1, batch_size):
        raise ValueError(f"points: {len(lines)} lines for {batch_size} images; give one line per image or one line for all")
    faces = []
    for i, line in enumerate(lines):
        numbers = [float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", line)]
        if len(numbers) != 8:
            raise ValueError(f"points line {i + 1}: expected 8 numbers (x y of left eye, right eye, left mouth corner, right mouth corner), found {len(numbers)}: {line!r}")
        p = np.array(numbers).reshape(4, 2)
        faces.append(FacePoints(*map(tuple, p)).oriented())
    return faces * batch_size if len(faces) == 1 else faces


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """ComfyUI IMAGE [B, H, W, C] in [0, 1] -> uint8 RGB, the pixels of the file it was loaded from
    (a grey image, C = 1 or grey + alpha, in all three channels)."""
    if images.ndim == 3:
        images = images[..., None]
    rgb = images[..., :3] if images.shape[-1] >= 3 else images[..., :1].expand(*images.shape[:-1], 3)
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def align_faces(images: torch.Tensor, points: list[FacePoints] | None, output_size: int = 256,
                names: dict[str, str] | None = None) -> tuple[torch.Tensor, list[FaceAlignment]]:
    """Align a batch [B, H, W, C] in [0, 1] (grey images too); ``points=None`` means the images
    are already aligned crops. Non-finite pixels, and points that cannot be a face in their image
    (``points_problem``), are errors naming the image's batch index."""
    check_finite(images, called(names, "images"))
    if points is not None and len(points) != images.shape[0]:
        raise ValueError(f"{called(names, 'points')}: {len(points)} faces for {images.shape[0]} images")
    height, width = images.shape[1:3]
    for i, pts in enumerate(points or []):
        problem = points_problem(pts, width, height)
        if problem:
            raise ValueError(f"{called(names, 'points')} of image {i} (batch indices count from 0): {problem}")
    pixels = to_uint8(images)
    results = [align_face(p, pts, output_size) if points is not None else already_aligned(p, output_size) for p, pts in zip(pixels, points or [None] * len(pixels))]
    aligned = torch.from_numpy(np.stack([r[0] for r in results])).float() / 255
    return aligned, [r[1] for r in results]


# ---------------------------------------------------------------------------------------------
# Landmarks


def largest(faces: list[FacePoints]) -> FacePoints:
    return max(faces, key=lambda f: ffhq_quad(f)[1])


def detect_each(detector, images: torch.Tensor, progress=None) -> list[FacePoints | None]:
    """The largest face of every image (``detector.detect(uint8 [H, W, 3]) -> [FacePoints]``), None
    where there is none; one image converted at a time (a clip's frames can take gigabytes)."""
    found = []
    for i in range(images.shape[0]):
        faces = detector.detect(to_uint8(images[i: i + 1])[0])
        found.append(largest(faces) if faces else None)
        if progress is not None:
            progress(i + 1, images.shape[0], None)
    return found


def detect_points(detector, images: torch.Tensor) -> list[FacePoints]:
    """The largest face of every image; an image without one is an error naming it."""
    found = detect_each(detector, images)
    for i, points in enumerate(found):
        if points is None:
            raise FaceNotFoundError(f"no face found in image {i} of the batch (images count from 0; {len(found)} in the batch)")
    return found


# MediaPipe face mesh indices of dlib's eye contours (36-41, 42-47: corner, upper lid, corner,
# lower lid) and mouth corners (48, 54). Left/right as seen in the image.
MEDIAPIPE_EYE_LEFT = (33, 160, 158, 133, 153, 144)
MEDIAPIPE_EYE_RIGHT = (362, 385, 387, 263, 373, 380)
MEDIAPIPE_MOUTH_LEFT, MEDIAPIPE_MOUTH_RIGHT = 61, 291
# mediapipe releases that carry their face mesh inside the wheel (mediapipe/modules/face_landmark/
# *.tflite, run by the legacy ``mediapipe.solutions`` API), as the PyPI wheels of 0.10.5 to 1.2.3 show:
# 0.10.5 to 0.10.21 (per-Python wheels: cp310/cp311 from 0.10.5, cp312 from 0.10.13; none for
# cp313). 0.10.15 to 0.10.21 require numpy<2; 0.10.14 puts no cap on numpy and runs with numpy
# 2.4. 0.10.30 and later (1.x included) are one py3-none wheel for every Python, the only ones for
# Python 3.13: no mediapipe.solutions and no models, only the Tasks API with a model file
# (face_landmarker.task) of one's own. requirements.txt installs 0.10.14 below Python 3.13.
MEDIAPIPE_BUILTIN_VERSION = "0.10.14"
FACE_LANDMARKER_URL = "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/latest/face_landmarker.task"
MEDIAPIPE_MISSING = (
    "face detection needs MediaPipe: install the StyleCLIP pack's requirements (pip install -r requirements.txt in the Python "
    f"that runs ComfyUI; on Python 3.10 to 3.12 that is mediapipe=={MEDIAPIPE_BUILTIN_VERSION}, whose wheel carries the face "
    "mesh model), or set Align Faces' landmarks to points (see the StyleCLIP pack's README)"
)


class NoBuiltInFaceMeshError(ImportError):
    """The installed mediapipe has no ``mediapipe.solutions`` face mesh (0.10.30 and later)."""


def _import_mediapipe():
    try:
        import mediapipe as mp
    except ImportError as e:
        if isinstance(e, ModuleNotFoundError) and e.name == "mediapipe":
            raise ImportError(MEDIAPIPE_MISSING) from None
        raise ImportError(f"{MEDIAPIPE_MISSING}. The installed mediapipe did not import: {e}") from e
    return mp


def points_from_mediapipe(landmarks: np.ndarray, width: int, height: int) -> FacePoints:
    """FacePoints from a MediaPipe face mesh (478 or 468 normalised [x, y] rows)."""
    # normalised coordinates span the image's edges; subtract half a pixel for pixel indices
    px = np.asarray(landmarks, dtype=np.float64)[:, :2] * [width, height] - 0.5
    return FacePoints(
        tuple(px[list(MEDIAPIPE_EYE_LEFT)].mean(0)), tuple(px[list(MEDIAPIPE_EYE_RIGHT)].mean(0)),
        tuple(px[MEDIAPIPE_MOUTH_LEFT]), tuple(px[MEDIAPIPE_MOUTH_RIGHT]),
    ).oriented()


class MediaPipeLandmarker:
    """MediaPipe's Face Landmarker (``face_landmarker.task``) behind ``detect(uint8 [H, W, 3])``."""

    def __init__(self, model_path: str, max_faces: int = 8):
        mp = _import_mediapipe()
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError:
            raise ImportError(MEDIAPIPE_MISSING) from None
        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=model_path), running_mode=vision.RunningMode.IMAGE, num_faces=max_faces
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"{model_path}: expected a MediaPipe face landmarker model (face_landmarker.task), MediaPipe says: {e}") from None

    def detect(self, rgb: np.ndarray) -> list[FacePoints]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb[..., :3]))
        result = self._landmarker.detect(image)
        h, w = rgb.shape[:2]
        return [points_from_mediapipe(np.array([[p.x, p.y] for p in face]), w, h) for face in result.face_landmarks]

    def close(self):
        self._landmarker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MediaPipeFaceMesh:
    """The face mesh that comes inside the mediapipe wheel (no model file: the legacy
    ``mediapipe.solutions.face_mesh`` with refined landmarks, 478 points) behind
    ``detect(uint8 [H, W, 3])``. Raises NoBuiltInFaceMeshError where the installed mediapipe has
    no solutions API (0.10.30 and later; see MEDIAPIPE_BUILTIN_VERSION)."""

    def __init__(self, max_faces: int = 8, min_confidence: float = 0.5):
        mp = _import_mediapipe()
        face_mesh = getattr(getattr(mp, "solutions", None), "face_mesh", None)
        if face_mesh is None:
            version = getattr(mp, "__version__", "?")
            raise NoBuiltInFaceMeshError(
                f"the installed mediapipe {version} has no built-in face mesh (mediapipe.solutions, and the models inside the wheel, "
                f"ended with 0.10.21): on Python 3.10 to 3.12 pip install mediapipe=={MEDIAPIPE_BUILTIN_VERSION} (the pack's "
                f"requirements); on Python 3.13 put face_landmarker.task ({FACE_LANDMARKER_URL}) in ComfyUI/models/mediapipe; "
                "or set Align Faces' landmarks to points"
            )
        self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True,
                                        min_detection_confidence=min_confidence)

    def detect(self, rgb: np.ndarray) -> list[FacePoints]:
        result = self._mesh.process(np.ascontiguousarray(rgb[..., :3]))
        h, w = rgb.shape[:2]
        return [points_from_mediapipe(np.array([[p.x, p.y] for p in face.landmark]), w, h) for face in result.multi_face_landmarks or []]

    def close(self):
        self._mesh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def builtin_detector(task_model: str | None = None, max_faces: int = 8):
    """The mediapipe package's own face mesh; where the installed mediapipe has none, the Tasks
    API's landmarker with ``task_model`` (a face_landmarker.task path) when one is given."""
    try:
        return MediaPipeFaceMesh(max_faces)
    except NoBuiltInFaceMeshError:
        if task_model is None:
            raise
        return MediaPipeLandmarker(task_model, max_faces)


# ---------------------------------------------------------------------------------------------
# Example photo

EXAMPLE_PORTRAIT_MISSING = (
    "the example portrait is NASA's astronaut.png that comes with scikit-image: pip install scikit-image (the StyleCLIP "
    "pack's requirements) in the Python that runs ComfyUI, or use Load Image with a photo of your own"
)


def example_portrait() -> np.ndarray:
    """NASA's public-domain portrait of astronaut Eileen Collins (uint8 [512, 512, 3]), read from
    the file inside the installed scikit-image (``skimage.data.astronaut()``'s file, without its
    download machinery: nothing is fetched or written)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("skimage")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = next((p for p in (os.path.join(f, "data", "astronaut.png") for f in folders) if os.path.isfile(p)), None)
    if path is None:
        raise FileNotFoundError(EXAMPLE_PORTRAIT_MISSING if spec is None else f"this scikit-image has no data/astronaut.png; {EXAMPLE_PORTRAIT_MISSING}")
    with Image.open(path) as img:
        return np.array(img.convert("RGB"))


# ---------------------------------------------------------------------------------------------
# Paste back


def feather_mask(u: torch.Tensor, v: torch.Tensor, feather: float) -> torch.Tensor:
    """1 inside the aligned square, easing to 0 at its edges over ``feather`` (a fraction of its side)."""
    d = torch.minimum(torch.minimum(u, 1 - u), torch.minimum(v, 1 - v))
    if feather <= 0:
        return (d >= 0).float()
    t = (d / feather).clamp(0, 1)
    return t * t * (3 - 2 * t)


def paste_back(photos: torch.Tensor, faces: torch.Tensor, alignments: list[FaceAlignment], feather: float = 0.1, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp each aligned face [N, h, w, C] back into its photo [B, H, W, C] (N == B, or one photo
    for N edits) through its alignment, blended with a feathered square mask (times ``mask``
    [N or 1, h, w] in aligned coordinates when given). Returns the photos and the masks used [N, H, W]."""
    for value, parameter in ((photos, "photos"), (faces, "faces"), (mask, "mask")):
        check_finite(value, parameter)
    n, b = faces.shape[0], photos.shape[0]
    if len(alignments) != b:
        raise ValueError(f"paste back: {len(alignments)} alignments for {b} photos; use the photos that were aligned")
    if n != b and b != 1:
        raise ValueError(f"paste back: {n} faces for {b} photos; give one face per photo, or one photo for all faces")
    if mask is not None and mask.ndim == 2:
        mask = mask[None]
    if mask is not None and mask.shape[0] not in (1, n):
        raise ValueError(f"paste back: the mask batch ({mask.shape[0]}) must be 1 or the number of faces ({n})")
    height, width = photos.shape[1:3]
    out, masks = [], []
    for i in range(n):
        photo, al = photos[i if b > 1 else 0], alignments[i if b > 1 else 0]
        if al.image_size != (width, height):
            raise ValueError(f"paste back: face {i} was aligned from a {al.image_size[0]}x{al.image_size[1]} image, but the photo is {width}x{height}")
        inv = torch.from_numpy(al.image_to_aligned()).float()
        # only the pixels the square covers: outside it the mask is 0 (the photo stays)
        corners = np.asarray(al.corners)
        x0, y0 = (max(0, int(np.floor(v)) - 1) for v in corners.min(0))
        x1, y1 = min(width, int(np.ceil(corners[:, 0].max())) + 1), min(height, int(np.ceil(corners[:, 1].max())) + 1)
        result, m_full = photo[..., :3].clone(), torch.zeros(height, width)
        if x1 <= x0 or y1 <= y0:
            out.append(result)
            masks.append(m_full)
            continue
        ys, xs = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float32) + 0.5, torch.arange(x0, x1, dtype=torch.float32) + 0.5, indexing="ij")
        u = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        v = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        grid = torch.stack([2 * u - 1, 2 * v - 1], -1)[None]
        face = faces[i, ..., :3].permute(2, 0, 1)[None].float()
        side = max(1, int(round(al.side())))
        if side < face.shape[-1]:
            # where the face is smaller in the photo, shrink it first so the warp does not alias
            face = F.interpolate(face, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        warped = F.grid_sample(face, grid, mode="bilinear", padding_mode="border", align_corners=False)[0].permute(1, 2, 0)
        m = feather_mask(u, v, feather)
        if mask is not None:
            user = mask[i if mask.shape[0] > 1 else 0][None, None].float()
            m = m * F.grid_sample(user, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]
        m = m.clamp(0, 1)
        region = result[y0:y1, x0:x1]
        result[y0:y1, x0:x1] = region + (warped - region) * m[..., None]
        m_full[y0:y1, x0:x1] = m
        out.append(result)
        masks.append(m_full)
    return torch.stack(out), torch.stack(masks)
