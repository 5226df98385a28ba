"""FFHQ alignment geometry, paste-back, landmark sources (points text, detectors, MediaPipe mapping)."""
import sys
import types

import numpy as np
import pytest
import torch

import synthetic_face as sf
from styleclip_core.photos import align
from styleclip_core.photos.align import FacePoints


def centroid(img, colour):
    """Sub-pixel centre (x, y, pixel indices) of the pixels close to ``colour``."""
    d = np.abs(img.astype(np.float64) - colour).sum(-1)
    w = np.clip(1 - d / 120.0, 0, 1) ** 2
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    assert w.sum() > 3, f"marker {colour} not found"
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def expected_aligned(size):
    """Where the four points land in an aligned crop, from the FFHQ formulas in the face's own frame:
    half side s = max(2 |eye_to_eye|, 1.8 |eye_to_mouth|), centre 0.1 eye_to_mouth below the eyes."""
    e, m = sf.EYE_TO_EYE, sf.EYE_TO_MOUTH
    s = max(2 * e, 1.8 * m)
    canonical = np.array([[-e / 2, 0], [e / 2, 0], [-sf.MOUTH_WIDTH / 2, m], [sf.MOUTH_WIDTH / 2, m]])
    uv = 0.5 + (canonical - [0, 0.1 * m]) / (2 * s)
    return uv * size - 0.5


@pytest.mark.parametrize("width,height,center,angle,scale,size", [
    (320, 300, (160, 130), 0.0, 1.0, 256),   # upright, no padding
    (420, 400, (200, 170), 25.0, 1.3, 256),  # rotated and scaled
    (300, 260, (95, 80), -40.0, 0.9, 256),   # near the corner: reflect padding
    (2400, 2000, (1200, 900), 10.0, 6.0, 256),  # large face: shrink by 2 first
    (420, 400, (210, 170), -15.0, 1.2, 1024),  # FFHQ recipe: transform at 4096, downscale to 1024
], ids=["upright", "rotated", "padded", "shrunk", "ffhq1024"])
def test_markers_land_where_the_maths_says(width, height, center, angle, scale, size):
    pts = sf.face_points(center, angle, scale)
    photo = sf.markers(width, height, pts, radius=4.0 * max(scale, 1.0))
    aligned, al = align.align_face(photo, pts, size)
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    want = expected_aligned(size)
    found = np.stack([centroid(aligned, c) for c in sf.MARKER_COLOURS])
    # resampling geometry, not float rounding (PIL and float64 NumPy, no torch threads): marker
    # centroids land within 0.35 px per 256 px of where the maths puts them; measured <= 0.51 of it
    np.testing.assert_allclose(found, want, atol=0.35 * size / 256)
    # the recorded alignment maps the photo points onto the same places; after a shrink by k the
    # reference scales pixel indices (not pixel centres), which moves the crop (k - 1) / 2 photo pixels
    inv = al.image_to_aligned()
    uv = (pts.array() + 0.5) @ inv[:, :2].T + inv[:, 2]
    shrink = int(np.floor(align.ffhq_quad(pts)[1] / size * 0.5))
    shift = (shrink - 1) / 2 * size / al.side() if shrink > 1 else 0.0
    # float64 geometry: the shrink shift plus float64 rounding (1e-6 px per px, ~10^9 ulp); measured <= 0.77 of it
    np.testing.assert_allclose(uv * size - 0.5, want, atol=shift * 1.5 + 1e-6 * size)
    assert np.abs(uv * size - 0.5 - want).max() >= shift * 0.5
    assert al.image_size == (width, height) and al.output_size == size


def test_alignment_is_rotation_invariant():
    a = align.align_face(*sf.face_photo(angle_deg=0.0), 256)[0]
    b = align.align_face(*sf.face_photo(angle_deg=20.0), 256)[0]
    # the face (drawn turned with its points) comes out the same; the background is not turned
    # uint8 levels: two resamplings of a drawn face differ by interpolation, not rounding (measured 0.92)
    assert np.abs(a.astype(float) - b.astype(float))[80:200, 70:186].mean() < 2


def test_from_68_takes_eye_means_and_mouth_corners():
    lm = np.zeros((68, 2))
    lm[36:42] = [[10, 20], [12, 18], [14, 18], [16, 20], [14, 22], [12, 22]]
    lm[42:48] = lm[36:42] + [40, 2]
    lm[48], lm[54] = [15, 60], [50, 61]
    p = FacePoints.from_68(lm)
    assert p.eye_left == (13.0, 20.0) and p.eye_right == (53.0, 22.0) and p.mouth_left == (15.0, 60.0) and p.mouth_right == (50.0, 61.0)


def smooth_photo(width=360, height=320):
    return sf.background(width, height)


@pytest.mark.parametrize("size", [256, 1024])
def test_paste_back_of_unedited_face_restores_the_photo(size):
    photo = smooth_photo()
    pts = sf.face_points((180, 140), 18.0, 1.1)
    photos = torch.from_numpy(photo)[None].float() / 255
    aligned, als = align.align_faces(photos, [pts], size)
    out, masks = align.paste_back(photos, aligned, als, feather=0.1)
    assert out.shape == photos.shape and masks.shape == (1, 320, 360)
    outside, inside = masks[0] == 0, masks[0] == 1
    band = ~outside & ~inside
    assert outside.sum() > 1000 and inside.sum() > 10000 and band.sum() > 1000
    assert torch.equal(out[0][outside], photos[0][outside])
    diff = (out[0] - photos[0]).abs()
    # a warp there and back, quantised to uint8 levels in between: measured mean 1.3e-3 (bound
    # 5.9e-3), max 7.2e-3 inside and 1.2e-2 in the band (bound 2.4e-2), the same on every set-up
    assert diff[inside].mean() < 1.5 / 255 and diff[inside].max() < 6 / 255
    assert diff[band].max() < 6 / 255
    # the mask is the aligned square: 1 around the face centre, 0 far outside
    assert masks[0, 150, 180] == 1 and masks[0, 2, 2] == 0


def test_paste_back_puts_an_edit_in_the_square_only():
    photo = torch.from_numpy(smooth_photo())[None].float() / 255
    pts = sf.face_points((180, 140), -10.0, 1.0)
    _, als = align.align_faces(photo, [pts], 256)
    red = torch.zeros(2, 256, 256, 3)
    red[..., 0] = 1
    half = torch.zeros(256, 256)
    half[:, :128] = 1  # the aligned image's left half only
    out, masks = align.paste_back(photo, red, als, feather=0.0, mask=half)
    assert out.shape == (2, 320, 360, 3)  # one photo, two edits
    corners = np.asarray(als[0].corners)
    left_mid = ((corners[0] + corners[1]) / 2 * 0.8 + corners.mean(0) * 0.2).astype(int)
    right_mid = ((corners[2] + corners[3]) / 2 * 0.8 + corners.mean(0) * 0.2).astype(int)
    # a float32 blend photo * (1 - m) + edit * m at m ~ 1: within a few ulp of 1 (measured 1.2e-7)
    torch.testing.assert_close(out[0, left_mid[1], left_mid[0]], torch.tensor([1.0, 0, 0]), atol=1e-6, rtol=0)
    assert torch.equal(out[1, right_mid[1], right_mid[0]], photo[0, right_mid[1], right_mid[0]])
    with pytest.raises(ValueError, match="2 faces for 3 photos"):
        align.paste_back(photo.expand(3, -1, -1, -1), red, als * 3)
    with pytest.raises(ValueError, match="aligned from a 360x320 image, but the photo is 100x100"):
        align.paste_back(torch.zeros(1, 100, 100, 3), red[:1], als)


def test_already_aligned_is_the_whole_image():
    photo = torch.rand(2, 300, 300, 3)
    aligned, als = align.align_faces(photo, None, 256)
    assert aligned.shape == (2, 256, 256, 3)
    assert als[0].corners == ((0.0, 0.0), (0.0, 300.0), (300.0, 300.0), (300.0, 0.0))
    out, masks = align.paste_back(photo, torch.zeros(2, 256, 256, 3), als, feather=0.0)
    assert torch.equal(masks, torch.ones(2, 300, 300)) and torch.equal(out, torch.zeros(2, 300, 300, 3))


def test_parse_points():
    with pytest.raises(ValueError, match="expected 8 numbers"):
        align.parse_points("10,20 50,22", 1)
    pts = align.parse_points("10,20 50,22 15,60 48.5,61e0\n\n1 2 3 4 5 6 7 8\n", 2)
    assert pts[0] == FacePoints((10, 20), (50, 22), (15, 60), (48.5, 61)) and pts[1].mouth_right == (7, 8)
    assert align.parse_points("1 2 3 4 5 6 7 8", 3) == [FacePoints((1, 2), (3, 4), (5, 6), (7, 8))] * 3
    upright = FacePoints((10, 20), (50, 20), (15, 60), (45, 60))
    assert align.parse_points("50 20 10 20 45 60 15 60", 1) == [upright]  # left/right typed the other way round
    with pytest.raises(ValueError, match="2 lines for 3 images"):
        align.parse_points("1 2 3 4 5 6 7 8\n1 2 3 4 5 6 7 8", 3)


class FakeDetector:
    def __init__(self, faces_per_image):
        self.faces = list(faces_per_image)
        self.seen = []

    def detect(self, rgb):
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        self.seen.append(rgb.shape)
        return self.faces[len(self.seen) - 1]


def test_detect_points_takes_the_largest_face_and_names_missing_ones():
    small, big = sf.face_points((50, 50), 0, 0.5), sf.face_points((150, 150), 5, 1.2)
    images = torch.rand(2, 40, 30, 4)
    assert align.detect_points(FakeDetector([[small, big], [big]]), images) == [big, big]
    with pytest.raises(align.FaceNotFoundError, match="no face found in image 1 of the batch"):
        align.detect_points(FakeDetector([[small], []]), images)


def mesh_with(points: FacePoints, width, height, n=478):
    mesh = np.random.default_rng(0).random((n, 2))
    for idx, p in ((align.MEDIAPIPE_EYE_LEFT, points.eye_left), (align.MEDIAPIPE_EYE_RIGHT, points.eye_right)):
        ring = np.array(p) + 4 * np.stack([np.cos(np.arange(6)), np.sin(np.arange(6))], 1)
        ring -= ring.mean(0) - p
        mesh[list(idx)] = (ring + 0.5) / [width, height]
    mesh[align.MEDIAPIPE_MOUTH_LEFT] = (np.array(points.mouth_left) + 0.5) / [width, height]
    mesh[align.MEDIAPIPE_MOUTH_RIGHT] = (np.array(points.mouth_right) + 0.5) / [width, height]
    return mesh


def test_points_from_mediapipe_mesh():
    want = sf.face_points((120, 90), 8, 0.9)
    got = align.points_from_mediapipe(mesh_with(want, 200, 160), 200, 160)
    # float64 (x + 0.5) / w and back for coordinates ~160: a few ulp (measured 1.4e-14); 1e-9 is ample
    np.testing.assert_allclose(got.array(), want.array(), atol=1e-9)
    # a mesh labelled the other way round (left/right swapped) gives the same points
    mirrored = FacePoints(want.eye_right, want.eye_left, want.mouth_right, want.mouth_left)
    np.testing.assert_allclose(align.points_from_mediapipe(mesh_with(mirrored, 200, 160), 200, 160).array(), want.array(), atol=1e-9)


@pytest.mark.parametrize("angle", [0, 75, 160, -120])
def test_oriented_keeps_correct_points_at_any_roll(angle):
    p = sf.face_points((100, 100), angle, 1.0)
    assert p.oriented() == p
    assert FacePoints(p.eye_right, p.eye_left, p.mouth_right, p.mouth_left).oriented() == p


@pytest.fixture
def fake_mediapipe(monkeypatch):
    """A stand-in for the ``mediapipe`` package with the Tasks API calls the landmarker makes."""
    calls = {}
    mp = types.ModuleType("mediapipe")
    tasks = types.ModuleType("mediapipe.tasks")
    python = types.ModuleType("mediapipe.tasks.python")
    vision = types.ModuleType("mediapipe.tasks.python.vision")

    class Image:
        def __init__(self, image_format, data):
            calls["image"] = (image_format, data.shape)
            self.data = data

    class BaseOptions:
        def __init__(self, model_asset_path):
            self.model_asset_path = model_asset_path

    class FaceLandmarkerOptions:
        def __init__(self, base_options, running_mode, num_faces):
            calls["options"] = (base_options.model_asset_path, running_mode, num_faces)

    class FaceLandmarker:
        @staticmethod
        def create_from_options(options):
            if calls["options"][0].endswith("bad.task"):
                raise RuntimeError("Unable to open zip archive.")
            return FaceLandmarker()

        def detect(self, image):
            h, w = image.data.shape[:2]
            mesh = mesh_with(sf.face_points((w / 2, h / 2), 0, 0.5), w, h)
            lm = [types.SimpleNamespace(x=x, y=y, z=0.0) for x, y in mesh]
            return types.SimpleNamespace(face_landmarks=[lm, lm[:]])

        def close(self):
            calls["closed"] = True

    mp.Image, mp.ImageFormat = Image, types.SimpleNamespace(SRGB="SRGB")
    vision.FaceLandmarker, vision.FaceLandmarkerOptions = FaceLandmarker, FaceLandmarkerOptions
    vision.RunningMode = types.SimpleNamespace(IMAGE="IMAGE")
    python.BaseOptions, python.vision = BaseOptions, vision
    mp.tasks, tasks.python = tasks, python
    for name, module in {"mediapipe": mp, "mediapipe.tasks": tasks, "mediapipe.tasks.python": python, "mediapipe.tasks.python.vision": vision}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_mediapipe_landmarker_with_stand_in_package(fake_mediapipe):
    with align.MediaPipeLandmarker("/models/face_landmarker.task", max_faces=3) as lm:
        faces = lm.detect(np.zeros((120, 200, 3), np.uint8))
    assert fake_mediapipe["options"] == ("/models/face_landmarker.task", "IMAGE", 3)
    assert fake_mediapipe["image"] == ("SRGB", (120, 200, 3)) and fake_mediapipe["closed"]
    assert len(faces) == 2
    np.testing.assert_allclose(faces[0].array(), sf.face_points((100, 60), 0, 0.5).array(), atol=1e-9)  # float64, as above (measured 1.4e-14)
    with pytest.raises(ValueError, match="bad.task: expected a MediaPipe face landmarker model"):
        align.MediaPipeLandmarker("/models/bad.task")


def test_mediapipe_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if not installed
    for make in (lambda: align.MediaPipeLandmarker("face_landmarker.task"), align.MediaPipeFaceMesh, align.builtin_detector):
        with pytest.raises(ImportError, match="requirements.txt.*mediapipe==0.10.14"):
            make()


def test_mediapipe_without_solutions_falls_back_to_the_tasks_api(fake_mediapipe):
    """A mediapipe of 0.10.30 or later (no ``mediapipe.solutions``, no models in the wheel): the
    built-in face mesh says what to install or where the model file goes; given a .task file the
    built-in detector is the Tasks API landmarker."""
    sys.modules["mediapipe"].__version__ = "1.2.3"
    with pytest.raises(align.NoBuiltInFaceMeshError, match="mediapipe 1.2.3 has no built-in face mesh.*mediapipe==0.10.14.*face_landmarker.task"):
        align.builtin_detector()
    with align.builtin_detector("/models/face_landmarker.task") as detector:
        assert isinstance(detector, align.MediaPipeLandmarker) and len(detector.detect(np.zeros((120, 200, 3), np.uint8))) == 2
    assert fake_mediapipe["options"] == ("/models/face_landmarker.task", "IMAGE", 8)


def test_face_mesh_with_stand_in_solutions(monkeypatch):
    """The built-in detector drives ``mediapipe.solutions.face_mesh`` as a still-image face mesh
    with refined landmarks and maps every face it reports."""
    calls = {}
    mp = types.ModuleType("mediapipe")

    class FaceMesh:
        def __init__(self, **options):
            calls["options"] = options

        def process(self, rgb):
            calls["image"] = (rgb.shape, rgb.flags.c_contiguous)
            h, w = rgb.shape[:2]
            mesh = mesh_with(sf.face_points((w / 2, h / 2), 0, 0.5), w, h)
            face = types.SimpleNamespace(landmark=[types.SimpleNamespace(x=x, y=y, z=0.0) for x, y in mesh])
            return types.SimpleNamespace(multi_face_landmarks=[face] if rgb.any() else None)

        def close(self):
            calls["closed"] = True

    mp.solutions = types.SimpleNamespace(face_mesh=types.SimpleNamespace(FaceMesh=FaceMesh))
    monkeypatch.setitem(sys.modules, "mediapipe", mp)
    with align.builtin_detector(max_faces=3) as detector:
        faces = detector.detect(np.full((120, 200, 4), 9, np.uint8)[:, ::-1])
        assert detector.detect(np.zeros((120, 200, 3), np.uint8)) == []
    assert calls["options"] == dict(static_image_mode=True, max_num_faces=3, refine_landmarks=True, min_detection_confidence=0.5)
    assert calls["image"] == ((120, 200, 3), True) and calls["closed"]
    np.testing.assert_allclose(faces[0].array(), sf.face_points((100, 60), 0, 0.5).array(), atol=1e-9)
