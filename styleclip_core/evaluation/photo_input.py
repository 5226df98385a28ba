"""Photos in, for the commands that take a folder of them (``evaluate --photos``, ``edit-folder``):
the image files of a folder, each read as RGB, and its face aligned the way FFHQ and e4e expect.

* ``list_photos``: the folder's image files (by extension, not its subfolders), sorted by name;
* ``read_photo``: the pixels (uint8 RGB; the EXIF orientation applied, as ComfyUI's Load Image
  does; grey and alpha images become RGB), or ``UnreadablePhotoError`` naming the file;
* ``read_points``: a points file, a line of 8 numbers (x y of the left eye centre, right eye
  centre, left and right mouth corner, as Align Faces takes them) per photo in name order, or
  lines that begin with the photo's file name (then photos may be left out);
* ``Aligner``: one photo's aligned crop and its ``FaceAlignment`` (for pasting back), by the
  built-in MediaPipe face mesh (the largest face; started on first use), at given points, or as
  an already aligned crop.
"""
from __future__ import annotations

import os

import numpy as np

from ..photos import align

PHOTO_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LANDMARKS = ("detect", "points", "aligned")


class UnreadablePhotoError(ValueError):
    pass


def list_photos(folder: str, option: str = "--photos") -> list[str]:
    """The image files of ``folder`` (not its subfolders), sorted by name."""
    if not os.path.isdir(folder):
        raise ValueError(f"{option}: expected a folder of photos, found {folder!r} (not a folder)")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(PHOTO_EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))
    if not paths:
        raise ValueError(f"{option}: expected image files ({', '.join(PHOTO_EXTENSIONS)}) in {folder}, found none")
    return paths


def read_photo(path: str) -> np.ndarray:
    """uint8 RGB [H, W, 3] of the image file at ``path``, turned upright by its EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.array(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        # PIL reports an unknown format as UnidentifiedImageError, a truncated file as OSError
        raise UnreadablePhotoError(f"{os.path.basename(path)} is not a readable image ({type(e).__name__}: {e})") from None


def _is_number(token: str) -> bool:
    try:
        float(token.rstrip(",;"))
    except ValueError:
        return False
    return True


def read_points(text: str, paths: list[str], source: str = "--points") -> dict[str, align.FacePoints | None]:
    """Photo path -> its FacePoints (None: no line names it). Either a line per photo in the
    order of ``paths`` (or one line for all), as ``align.parse_points`` reads them, or lines that
    begin with a photo's file name followed by its 8 numbers."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or all(_is_number(line.split()[0]) for line in lines):
        try:
            found = align.parse_points(text, len(paths))
        except ValueError as e:
            raise ValueError(f"{source}: {e} (photos in name order: {', '.join(os.path.basename(p) for p in paths)})") from None
        return dict(zip(paths, found))
    by_name = {os.path.basename(p): p for p in paths}
    names = sorted(by_name, key=len, reverse=True)  # "a.png.png" before "a.png"
    out: dict[str, align.FacePoints | None] = dict.fromkeys(paths)
    for k, line in enumerate(lines):
        name = next((n for n in names if line.startswith(n) and (len(line) == len(n) or line[len(n)] in " \t:,;")), None)
        if name is None:
            raise ValueError(f"{source} line {k + 1}: expected a photo's file name and 8 numbers, found {line!r}, "
                             f"which names none of the photos ({', '.join(sorted(by_name))})")
        try:
            out[by_name[name]] = align.parse_points(line[len(name):].lstrip(" \t:,;"), 1)[0]
        except ValueError as e:
            raise ValueError(f"{source} line {k + 1} ({name}): {e}") from None
    return out


class Aligner:
    """Aligns one photo at a time: ``landmarks`` 'detect' (the mediapipe package's face mesh, or
    the Tasks API with ``task_model`` where the installed mediapipe has none; started on first use,
    closed by ``close`` / the ``with`` block), 'points' (from ``points``, see ``read_points``) or
    'aligned'; crops of ``size`` px (256: e4e's recipe, 1024: FFHQ's)."""

    def __init__(self, landmarks: str = "detect", points: dict[str, align.FacePoints | None] | None = None, size: int = 256,
                 task_model: str | None = None, source: str = "--points"):
        if landmarks not in LANDMARKS:
            raise ValueError(f"landmarks must be one of {', '.join(LANDMARKS)}, found {landmarks!r}")
        if landmarks == "points" and points is None:
            raise ValueError("landmarks 'points' needs the points (read_points)")
        self.landmarks, self.points, self.size, self.task_model, self.source = landmarks, points, size, task_model, source
        self._detector = None

    def align(self, path: str, pixels: np.ndarray) -> tuple[np.ndarray, align.FaceAlignment]:
        """(uint8 crop [size, size, 3], its alignment in the photo) of the photo at ``path``."""
        name = os.path.basename(path)
        if self.landmarks == "aligned":
            return align.already_aligned(pixels, self.size)
        if self.landmarks == "points":
            pts = self.points.get(path)
            if pts is None:
                raise ValueError(f"{self.source} has no line for {name}")
            problem = align.points_problem(pts, pixels.shape[1], pixels.shape[0])
            if problem:
                raise ValueError(f"{self.source} for {name}: {problem}")
            return align.align_face(pixels, pts, self.size)
        if self._detector is None:
            self._detector = align.builtin_detector(self.task_model).__enter__()
        faces = self._detector.detect(pixels)
        if not faces:
            raise align.FaceNotFoundError(f"no face found in {path}; give --points, or --aligned for aligned crops")
        return align.align_face(pixels, align.largest(faces), self.size)

    def close(self):
        if self._detector is not None:
            self._detector.__exit__(None, None, None)
            self._detector = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
