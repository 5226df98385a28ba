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
    return comfy.run("LoadImage", image=sf.PORTRAIT).args[0]


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


def test_detector_path(comfy, monkeypatch):
    """A landmark model picked in the dropdown runs the detector on every image (here a stand-in
    for MediaPipe, whose model file cannot be had in tests)."""
    folder = os.path.join(comfy.folder_paths.models_dir, "mediapipe")
    os.makedirs(folder, exist_ok=True)
    model = os.path.join(folder, "face_landmarker.task")
    open(model, "wb").close()
    try:
        info = comfy.nodes["StyleCLIP_AlignFaces"].object_info()["input"]["required"]["landmarks"][1]
        assert info["options"][0] == "face_landmarker.task" and info["default"] == "face_landmarker.task"
        photo = torch.cat([portrait(comfy), torch.full((1, 288, 320, 3), 0.5)])
        if importlib.util.find_spec("mediapipe") is None:
            with pytest.raises(ImportError, match="pip install mediapipe"):
                comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks="face_landmarker.task", output_size="256")
        from styleclip_core.photos import align

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
        aligned, alignment = comfy.run("StyleCLIP_AlignFaces", images=photo[:1], landmarks="face_landmarker.task", output_size="256").args
        assert seen == [model]
        expected = comfy.run("StyleCLIP_AlignFaces", images=photo[:1], landmarks=photo_nodes(comfy).POINTS, output_size="256",
                             points=sf.portrait_points_text()).args[0]
        assert (aligned - expected).abs().max() <= 1 / 255 + 1e-6
        with pytest.raises(align.FaceNotFoundError, match="no face found in image 1 of the batch"):
            comfy.run("StyleCLIP_AlignFaces", images=photo, landmarks="face_landmarker.task", output_size="256")
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
