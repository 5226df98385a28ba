"""Photo nodes: load e4e with its generator, align (points, detectors, already aligned), invert, paste back."""
import os

import pytest
import torch

import synthetic_face as sf
from conftest import ROOT


def photo_nodes(comfy):
    import sys

    return sys.modules["comfyui_styleclip.nodes.photo_nodes"]


def portrait(comfy):
    return comfy.run("LoadImage", image=sf.PORTRAIT).args[0]


def test_dropdowns(comfy):
    import json

    info = comfy.harness.object_info(comfy.nodes)
    assert "e4e_ffhq_encode.pt" in info["StyleCLIP_LoadE4E"]["input"]["required"]["e4e_name"][1]["options"]
    landmarks = info["StyleCLIP_AlignFaces"]["input"]["required"]["landmarks"][1]
    mod = photo_nodes(comfy)
    # no .task file in the models folder (the tiny stand-ins write none): built-in first and default
    assert landmarks["options"] == [mod.BUILT_IN, mod.POINTS, mod.ALREADY_ALIGNED] and landmarks["default"] == mod.BUILT_IN
    # the photo workflows find faces with the built-in detector, which needs no model file
    for name in ("03_invert_photo.json", "10_edit_photo_by_text.json"):
        with open(os.path.join(ROOT, "workflows", name)) as f:
            align_node = next(n for n in json.load(f)["nodes"] if n["type"] == "StyleCLIP_AlignFaces")
        assert align_node["widgets_values"][0] == mod.BUILT_IN, name


def test_load_invert_render_paste(comfy):
    from comfy.utils import PROGRESS_LOG

    encoder, g, info = comfy.run("StyleCLIP_LoadE4E", e4e_name="e4e_ffhq_encode.pt", ops_backend="reference").args
    assert info.startswith("TINY RANDOM STAND-IN") and "W+ [10, 64]" in info and "64px" in info
    photo = portrait(comfy).expand(3, -1, -1, -1)
    aligned, alignment = comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks=photo_nodes(comfy).POINTS, output_size="256",
                                   points=sf.portrait_points_text()).args
    assert aligned.shape == (3, 256, 256, 3) and len(alignment) == 3
    PROGRESS_LOG.clear()
    latents = comfy.run("StyleCLIP_InvertImages", e4e=encoder, images=aligned, chunk_size=2).args[0]
    assert latents.w_plus.shape == (3, 10, 64) and [p[:2] for p in PROGRESS_LOG] == [(2, 3), (3, 3)]
    faces = comfy.run("StyleCLIP_Synthesize", generator=g, latents=latents, noise="const", noise_seed=0, chunk_size=4).args[0]
    out, mask = comfy.run("StyleCLIP_PasteFaceBack", photos=photo, faces=faces, alignment=alignment, feather=0.1).args
    assert out.shape == photo.shape and mask.shape == photo.shape[:3]
    assert torch.equal(out[mask == 0], photo[mask == 0]) and (mask == 1).sum() > 1000
    assert (out - photo).abs()[mask == 1].mean() > 0.05  # the (random) reconstruction replaced the face


def test_already_aligned_and_1024(comfy):
    photo = portrait(comfy)
    aligned, alignment = comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks=photo_nodes(comfy).ALREADY_ALIGNED, output_size="1024").args
    assert aligned.shape == (1, 1024, 1024, 3) and alignment[0].image_size == (320, 288)


class StandInDetector:
    """Detects the synthetic portrait's known points in any image that is not flat."""

    def __init__(self, seen, *args):
        seen.append(args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def detect(self, rgb):
        return [sf.face_points(**{k: v for k, v in sf.PORTRAIT_ARGS.items() if k in ("center", "angle_deg", "scale")})] if rgb.std() > 1 else []


def test_detector_path(comfy, monkeypatch):
    """A landmark model picked in the dropdown runs MediaPipe's Tasks API with it on every image
    (here a stand-in for the landmarker: the model file cannot be had in tests)."""
    n = comfy.nodes
    folder = os.path.join(comfy.folder_paths.models_dir, "mediapipe")
    os.makedirs(folder, exist_ok=True)
    model = os.path.join(folder, "face_landmarker.task")
    open(model, "wb").close()
    try:
        info = comfy.harness.object_info({"x": n["StyleCLIP_AlignFaces"]})["x"]["input"]["required"]["landmarks"][1]
        assert info["options"][:2] == [photo_nodes(comfy).BUILT_IN, "face_landmarker.task"] and info["default"] == photo_nodes(comfy).BUILT_IN
        photo = torch.cat([portrait(comfy), torch.full((1, 288, 320, 3), 0.5)])
        align = comfy.library("photos.align")  # the nodes' copy, which the patch must reach

        seen = []
        monkeypatch.setattr(align, "MediaPipeLandmarker", lambda *args: StandInDetector(seen, *args))
        aligned, alignment = comfy.run("StyleCLIP_AlignFaces", images=photo[:1], landmarks="face_landmarker.task", output_size="256").args
        assert seen == [(model,)]
        expected = comfy.run("StyleCLIP_AlignFaces", images=photo[:1], landmarks=photo_nodes(comfy).POINTS, output_size="256",
                             points=sf.portrait_points_text()).args[0]
        # the detector's points reach the warp through MediaPipe's normalised (x + 0.5) / w, ~1e-13 px
        # away from the typed points: a resampled value may round to the neighbouring uint8 level, never
        # further (measured exactly 1/255)
        assert (aligned - expected).abs().max() <= 1 / 255 + 1e-6
        with pytest.raises(align.FaceNotFoundError, match="no face found in image 1 of the batch"):
            comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks="face_landmarker.task", output_size="256")
    finally:
        os.remove(model)


def test_built_in_detector_falls_back_to_a_task_file(comfy, monkeypatch):
    """The built-in entry uses mediapipe's own face mesh; where the installed mediapipe has none
    (0.10.30 and later) it takes face_landmarker.task from models/mediapipe, and without one it
    says what to install or where the file goes."""
    align = comfy.library("photos.align")  # the nodes' copy, which the patches must reach

    mod = photo_nodes(comfy)
    photo = portrait(comfy)
    expected = comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks=mod.POINTS, output_size="256", points=sf.portrait_points_text()).args[0]
    mesh, tasks = [], []
    monkeypatch.setattr(align, "MediaPipeFaceMesh", lambda *args: StandInDetector(mesh, *args))
    monkeypatch.setattr(align, "MediaPipeLandmarker", lambda *args: StandInDetector(tasks, *args))
    aligned = comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks=mod.BUILT_IN, output_size="256").args[0]
    assert len(mesh) == 1 and not tasks and (aligned - expected).abs().max() <= 1 / 255 + 1e-6

    def no_mesh(*args):
        raise align.NoBuiltInFaceMeshError("the installed mediapipe 1.2.3 has no built-in face mesh")

    monkeypatch.setattr(align, "MediaPipeFaceMesh", no_mesh)
    with pytest.raises(align.NoBuiltInFaceMeshError, match="no built-in face mesh"):
        comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks=mod.BUILT_IN, output_size="256")
    folder = os.path.join(comfy.folder_paths.models_dir, "mediapipe")
    os.makedirs(folder, exist_ok=True)
    model = os.path.join(folder, "face_landmarker.task")
    open(model, "wb").close()
    try:
        aligned = comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks=mod.BUILT_IN, output_size="256").args[0]
        assert tasks == [(model, 8)] and (aligned - expected).abs().max() <= 1 / 255 + 1e-6
    finally:
        os.remove(model)


def test_points_errors(comfy):
    with pytest.raises(ValueError, match="no points given: expected 8 numbers per image"):
        comfy.run("StyleCLIP_AlignFaces", images=portrait(comfy), landmarks=photo_nodes(comfy).POINTS, output_size="256", points="")


def test_e4e_generator_takes_part_in_optimisation(comfy):
    """Loaded as ComfyUI runs nodes (inference mode), the bundled generator can still be
    differentiated: photo text edits optimise inverted latents through it."""
    encoder, g, _ = comfy.run("StyleCLIP_LoadE4E", e4e_name="e4e_ffhq_encode.pt", ops_backend="reference").args
    aligned = comfy.run("StyleCLIP_AlignFaces", images=portrait(comfy), landmarks=photo_nodes(comfy).POINTS, output_size="256",
                        points=sf.portrait_points_text()).args[0]
    latents = comfy.run("StyleCLIP_InvertImages", e4e=encoder, images=aligned, chunk_size=4).args[0]
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    loss = comfy.run("StyleCLIP_CLIPLoss", clip=clip, text="a smiling person", weight=1.0).args[0]
    edited = comfy.run("StyleCLIP_OptimizeLatents", generator=g, latents=latents, loss=loss, steps=2, learning_rate=0.1, space="W+",
                       noise="const", noise_seed=0, preview_every=10).args[0]
    assert not any(p.is_inference() for p in g.parameters())
    assert not torch.equal(edited.w_plus, latents.w_plus)
