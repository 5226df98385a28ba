"""The built-in face detector (the face mesh inside the mediapipe wheel) on a real photo, NASA's
public-domain portrait of Eileen Collins that comes with scikit-image (Example Portrait): the
landmarks sit where they were marked by hand, and the aligned crops put the face where FFHQ's
recipe (align.ffhq_quad) puts it, measured by detecting the face again in the crop's pixels.
Skipped only where mediapipe's face mesh or scikit-image is not installed (the requirements
install both, so CI runs it)."""
import numpy as np
import pytest
import torch

from conftest import photo_deps_missing
from styleclip_core.photos import align

# Eye centres and mouth corners of the 512x512 astronaut.png (pixel indices, as seen in the
# image), marked by hand on an 8x enlargement.
HAND_MARKED = np.array([[204.0, 101.0], [246.0, 103.0], [203.0, 140.0], [243.0, 142.0]])


@pytest.fixture(scope="module")
def photo():
    why = photo_deps_missing()
    if why:
        pytest.skip(why)
    return align.example_portrait()


def detect(rgb) -> list[align.FacePoints]:
    with align.builtin_detector() as detector:
        assert isinstance(detector, align.MediaPipeFaceMesh)
        return detector.detect(rgb)


def ffhq_targets(points: align.FacePoints, size: int) -> dict:
    """Where FFHQ's recipe puts the face in a size x size crop (pixel indices). In ffhq_quad the
    crop is a square of side 2s, s = max(2 |eye_to_eye|, 1.8 |eye_to_mouth|), centred 0.1
    eye_to_mouth below the eye midpoint, its x axis halfway between the eye line and the
    perpendicular of eye->mouth. So in the crop the eyes are level, their midpoint lies on the
    vertical centre line 0.1 d above the centre and the mouth midpoint 0.9 d below it, with
    d = size |eye_to_mouth| / 2s, and the eyes are size |eye_to_eye| / 2s apart."""
    el, er, ml, mr = points.array()
    e2e, e2m = np.hypot(*(er - el)), np.hypot(*((ml + mr) / 2 - (el + er) / 2))
    s = max(2 * e2e, 1.8 * e2m)
    d = size * e2m / (2 * s)
    centre = size / 2 - 0.5
    return {"eye_mid": np.array([centre, centre - 0.1 * d]), "mouth_mid": np.array([centre, centre + 0.9 * d]),
            "eye_to_eye": size * e2e / (2 * s), "eye_to_mouth": d}


def measure(points: align.FacePoints) -> dict:
    el, er, ml, mr = points.array()
    eye_mid, mouth_mid = (el + er) / 2, (ml + mr) / 2
    return {"angle_deg": float(np.degrees(np.arctan2(er[1] - el[1], er[0] - el[0]))), "eye_mid": eye_mid, "mouth_mid": mouth_mid,
            "eye_to_eye": float(np.hypot(*(er - el))), "eye_to_mouth": float(np.hypot(*(mouth_mid - eye_mid)))}


def test_landmarks_on_the_real_photo(photo):
    assert photo.shape == (512, 512, 3) and photo.dtype == np.uint8
    faces = detect(photo)
    assert len(faces) == 1
    found = faces[0].array()
    error = np.hypot(*(found - HAND_MARKED).T)
    print("landmarks", found.round(2).tolist(), "distance to the hand marks (px)", error.round(2).tolist())
    assert error.max() < 3.5, (found, error)  # under 8 % of the 43 px between the eyes
    assert abs(measure(faces[0])["angle_deg"] - 2.7) < 2  # the head is tilted a little (hand marks: 2.7 degrees)


@pytest.mark.parametrize("size", [256, 1024])
def test_aligned_crop_of_the_real_photo(photo, size):
    points = detect(photo)[0]
    crop, alignment = align.align_face(photo, points, size)
    assert crop.shape == (size, size, 3)
    want = ffhq_targets(points, size)
    # the photo's landmarks carried into the crop by the recorded alignment: the recipe itself
    inv = alignment.image_to_aligned()
    mapped = align.FacePoints(*map(tuple, ((points.array() + 0.5) @ inv[:, :2].T + inv[:, 2]) * size - 0.5))
    got = measure(mapped)
    print(f"{size} mapped: eye angle {got['angle_deg']:.3f} deg, eye midpoint {got['eye_mid'].round(2).tolist()}, mouth midpoint {got['mouth_mid'].round(2).tolist()}")
    assert abs(got["angle_deg"]) < 0.5
    np.testing.assert_allclose(got["eye_mid"], want["eye_mid"], atol=0.005 * size)
    np.testing.assert_allclose(got["mouth_mid"], want["mouth_mid"], atol=0.005 * size)
    # the crop's pixels: the face found again in the aligned image is level and centred as FFHQ's
    faces = detect(crop)
    assert len(faces) == 1
    seen = measure(faces[0])
    print(f"{size}: eye angle {seen['angle_deg']:.2f} deg; eye midpoint {seen['eye_mid'].round(2).tolist()} (recipe "
          f"{want['eye_mid'].round(2).tolist()}), mouth midpoint {seen['mouth_mid'].round(2).tolist()} (recipe "
          f"{want['mouth_mid'].round(2).tolist()}), eye to eye {seen['eye_to_eye']:.2f} ({want['eye_to_eye']:.2f}), "
          f"eye to mouth {seen['eye_to_mouth']:.2f} ({want['eye_to_mouth']:.2f})")
    assert abs(seen["angle_deg"]) < 1.0
    np.testing.assert_allclose(seen["eye_mid"], want["eye_mid"], atol=0.01 * size)
    np.testing.assert_allclose(seen["mouth_mid"], want["mouth_mid"], atol=0.015 * size)
    assert seen["eye_to_eye"] == pytest.approx(want["eye_to_eye"], rel=0.03)
    assert seen["eye_to_mouth"] == pytest.approx(want["eye_to_mouth"], rel=0.03)


def test_nodes_on_the_example_portrait(comfy, photo):
    """Example Portrait -> Align Faces with the built-in detector, as workflows 03 and 10 run them."""
    import dataclasses
    import sys

    mod = sys.modules["comfyui_styleclip.nodes.photo_nodes"]
    image = comfy.run("StyleCLIP_ExamplePortrait").args[0]
    assert image.shape == (1, 512, 512, 3) and image.dtype == torch.float32
    assert torch.equal((image[0] * 255).round().to(torch.uint8), torch.from_numpy(photo))
    aligned, alignment = comfy.run("StyleCLIP_AlignFaces", images=image, landmarks=mod.BUILT_IN, output_size="256").args
    expected, want = align.align_face(photo, detect(photo)[0], 256)
    assert aligned.shape == (1, 256, 256, 3) and dataclasses.astuple(alignment[0]) == dataclasses.astuple(want)
    assert torch.equal((aligned[0] * 255).round().to(torch.uint8), torch.from_numpy(np.array(expected)))
