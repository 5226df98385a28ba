"""Photo nodes: load e4e with its generator, align (points, detector, already aligned), invert, paste back."""
import importlib.util
import os

import numpy as np
import pytest
import torch

import synthetic_face as sf
from conftest import detector_free


def photo_nodes(comfy):
    import sys

    return sys.modules["comfyui_styleclip.nodes.photo_nodes"]


def portrait(comfy):
    return comfy.nodes["LoadImage"].execute(sf.PORTRAIT).args[0]


def test_dropdowns(comfy):
    info = comfy.harness.object_info(comfy.nodes)
    assert "e4e_ffhq_encode.pt" in info["StyleCLIP_LoadE4E"]["input"]["required"]["e4e_name"][1]["options"]
    options = info["StyleCLIP_AlignFaces"]["input"]["required"]["landmarks"][1]["options"]
    mod = photo_nodes(comfy)
    assert options[-2:] == [mod.POINTS, mod.ALREADY_ALIGNED]
    # the tests' detector-free stand-in names the same entry
    workflow = {"nodes": [{"id": 1, "type": "StyleCLIP_AlignFaces", "widgets_values": ["face_landmarker.task", "256", ""]}]}
    assert detector_free(workflow, info)["nodes"][0]["widgets_values"][0] == mod.POINTS


def test_load_invert_render_paste(comfy):
    from comfy.utils import PROGRESS_LOG

    n = comfy.nodes
    encoder, g, info = n["StyleCLIP_LoadE4E"].execute("e4e_ffhq_encode.pt", "reference").args
    assert info.startswith("TINY RANDOM STAND-IN") and "W+ [10, 64]" in info and "64px" in info
    photo = portrait(comfy).expand(3, -1, -1, -1)
    aligned, alignment = n["StyleCLIP_AlignFaces"].execute(photo, photo_nodes(comfy).POINTS, "256", sf.portrait_points_text()).args
    assert aligned.shape == (3, 256, 256, 3) and len(alignment) == 3
    PROGRESS_LOG.clear()
    latents = n["StyleCLIP_InvertImages"].execute(encoder, aligned, 2).args[0]
    assert latents.w_plus.shape == (3, 10, 64) and [p[:2] for p in PROGRESS_LOG] == [(2, 3), (3, 3)]
    faces = n["StyleCLIP_Synthesize"].execute(g, latents, "const", 0, 4).args[0]
    out, mask = n["StyleCLIP_PasteFaceBack"].execute(photo, faces, alignment, 0.1).args
    assert out.shape == photo.shape and mask.shape == photo.shape[:3]
    assert torch.equal(out[mask == 0], photo[mask == 0]) and (mask == 1).sum() > 1000
    assert (out - photo).abs()[mask == 1].mean() > 0.05  # the (random) reconstruction replaced the face


def test_already_aligned_and_1024(comfy):
    n = comfy.nodes
    photo = portrait(comfy)
    aligned, alignment = n["StyleCLIP_AlignFaces"].execute(photo, photo_nodes(comfy).ALREADY_ALIGNED, "1024").args
    assert aligned.shape == (1, 1024, 1024, 3) and alignment[0].image_size == (320, 288)


def test_detector_path(comfy, monkeypatch):
    """A landmark model picked in the dropdown runs the detector on every image (here a stand-in
    for MediaPipe, whose model file cannot be had in tests)."""
    n = comfy.nodes
    folder = os.path.join(comfy.folder_paths.models_dir, "mediapipe")
    os.makedirs(folder, exist_ok=True)
    model = os.path.join(folder, "face_landmarker.task")
    open(model, "wb").close()
    try:
        info = comfy.harness.object_info({"x": n["StyleCLIP_AlignFaces"]})["x"]["input"]["required"]["landmarks"][1]
        assert info["options"][0] == "face_landmarker.task" and info["default"] == "face_landmarker.task"
        photo = torch.cat([portrait(comfy), torch.full((1, 288, 320, 3), 0.5)])
        if importlib.util.find_spec("mediapipe") is None:
            with pytest.raises(ImportError, match="pip install mediapipe"):
                n["StyleCLIP_AlignFaces"].execute(photo, "face_landmarker.task", "256")
        from styleclip_core import align

        seen = []

        class Detector:
            def __init__(self, path):
                seen.append(path)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

            def detect(self, rgb):
                return [sf.face_points(**{k: v for k, v in sf.PORTRAIT_ARGS.items() if k in ("center", "angle_deg", "scale")})] if rgb.std() > 1 else []

        monkeypatch.setattr(align, "MediaPipeLandmarker", Detector)
        aligned, alignment = n["StyleCLIP_AlignFaces"].execute(photo[:1], "face_landmarker.task", "256").args
        assert seen == [model]
        expected = n["StyleCLIP_AlignFaces"].execute(photo[:1], photo_nodes(comfy).POINTS, "256", sf.portrait_points_text()).args[0]
        # the detector's points reach the warp through MediaPipe's normalised (x + 0.5) / w, ~1e-13 px
        # away from the typed points: a resampled value may round to the neighbouring uint8 level, never
        # further (measured exactly 1/255)
        assert (aligned - expected).abs().max() <= 1 / 255 + 1e-6
        with pytest.raises(align.FaceNotFoundError, match="no face found in image 1 of the batch"):
            n["StyleCLIP_AlignFaces"].execute(photo, "face_landmarker.task", "256")
    finally:
        os.remove(model)


def test_points_errors(comfy):
    n = comfy.nodes
    with pytest.raises(ValueError, match="no points given: expected 8 numbers per image"):
        n["StyleCLIP_AlignFaces"].execute(portrait(comfy), photo_nodes(comfy).POINTS, "256", "")


def test_e4e_generator_takes_part_in_optimisation(comfy):
    """Loaded as ComfyUI runs nodes (inference mode), the bundled generator can still be
    differentiated: photo text edits optimise inverted latents through it."""
    n = comfy.nodes
    with torch.inference_mode():
        encoder, g, _ = n["StyleCLIP_LoadE4E"].execute("e4e_ffhq_encode.pt", "reference").args
        aligned = n["StyleCLIP_AlignFaces"].execute(portrait(comfy), photo_nodes(comfy).POINTS, "256", sf.portrait_points_text()).args[0]
        latents = n["StyleCLIP_InvertImages"].execute(encoder, aligned, 4).args[0]
        clip = n["StyleCLIP_LoadCLIP"].execute("ViT-B-32.pt", "auto", "styleclip").args[0]
        loss = n["StyleCLIP_CLIPLoss"].execute(clip, "a smiling person", 1.0).args[0]
        edited = n["StyleCLIP_OptimizeLatents"].execute(g, latents, loss, 2, 0.1, "W+", "const", 0, 10).args[0]
    assert not any(p.is_inference() for p in g.parameters())
    assert not torch.equal(edited.w_plus, latents.w_plus)
