"""The harness's stand-ins of ComfyUI's video nodes (tools/comfy_harness.py: Load Video, Get Video
Components, Create Video, Save Video, as comfy_extras/nodes_video.py has them): the example clip
written as an mp4 (h264, yuv420p) and read back has its frames, size and frame rate, and pixels
close to what went in. Skipped where PyAV (``av``, which ComfyUI itself requires) is not installed."""
import importlib.util
import math
import os
import shutil

import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="PyAV (av) is not installed: pip install av")

FPS = 30.0


@pytest.fixture(scope="module")
def clip():
    if importlib.util.find_spec("skimage") is None:
        pytest.skip("scikit-image is not installed: the example clip is made from its astronaut.png")
    from styleclip_core.video.example_clip import example_clip

    return torch.from_numpy(example_clip(16, 384, 352)).float() / 255


def saved_path(comfy, ui) -> str:
    (saved,) = ui["images"]
    assert saved["type"] == "output" and ui["animated"] == (True,)
    return os.path.join(comfy.folder_paths.get_output_directory(), saved["subfolder"], saved["filename"])


@pytest.fixture(scope="module")
def uploaded(comfy, clip):
    """The clip saved by Create Video -> Save Video, then put in the input folder (as uploading it
    in the browser would) under the name Load Video lists it by."""
    video = comfy.run("CreateVideo", images=clip, fps=FPS).args[0]
    ui = comfy.run("SaveVideo", video=video, filename_prefix="video/test_video_io", format="auto", codec="auto").ui
    assert ui["images"][0]["filename"] == "test_video_io_00001_.mp4" and ui["images"][0]["subfolder"] == "video"
    name = "test_video_io_clip.mp4"
    shutil.copy(saved_path(comfy, ui), os.path.join(comfy.folder_paths.get_input_directory(), name))
    return name


def test_schemas_match_comfyui(comfy):
    """Inputs, defaults and outputs as ComfyUI 0.3.64's nodes_video.py declares them."""
    info = {n: comfy.nodes[n].object_info() for n in ("LoadVideo", "GetVideoComponents", "CreateVideo", "SaveVideo")}
    assert list(info["LoadVideo"]["input"]["required"]) == ["file"] and info["LoadVideo"]["output"] == ["VIDEO"]
    assert info["LoadVideo"]["input"]["required"]["file"][1]["video_upload"] is True
    assert info["GetVideoComponents"]["output"] == ["IMAGE", "AUDIO", "FLOAT"]
    assert info["GetVideoComponents"]["output_name"] == ["images", "audio", "fps"]
    create = info["CreateVideo"]["input"]
    assert list(create["required"]) == ["images", "fps"] and list(create["optional"]) == ["audio"]
    assert create["required"]["fps"][1] == {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0}
    save = info["SaveVideo"]
    assert list(save["input"]["required"]) == ["video", "filename_prefix", "format", "codec"] and save["output"] == [] and save["output_node"]
    assert save["input"]["required"]["filename_prefix"][1]["default"] == "video/ComfyUI"
    assert save["input"]["required"]["format"][1]["options"] == ["auto", "mp4"]
    assert save["input"]["required"]["codec"][1]["options"] == ["auto", "h264"]


def test_round_trip(comfy, clip, uploaded):
    options = comfy.nodes["LoadVideo"].object_info()["input"]["required"]["file"][1]["options"]
    assert uploaded in options and not [f for f in options if not f.endswith((".mp4", ".webm", ".mov", ".mkv", ".avi"))], options
    video = comfy.run("LoadVideo", file=uploaded).args[0]
    assert video.get_dimensions() == (384, 352)
    images, audio, fps = comfy.run("GetVideoComponents", video=video).args
    assert images.shape == clip.shape == (16, 352, 384, 3) and images.dtype == torch.float32
    assert fps == FPS and audio is None
    error = (images - clip).abs().mean(dim=(1, 2, 3)) * 255  # mean abs error of each frame, in 8-bit levels
    print("h264 round trip: mean abs error per frame (levels)", [round(e, 2) for e in error.tolist()])
    # Measured (PyAV 18.1, libx264 defaults): 2.8 to 3.3 levels a frame, 1.56 of them from the
    # yuv420p conversion alone (chroma at half resolution; no codec). 6 allows twice that and is
    # under half the 15 levels by which neighbouring frames of the clip differ, so a frame
    # dropped, repeated or out of order fails.
    assert error.max() < 6, error


def test_a_loaded_file_saves_without_encoding_again(comfy, uploaded):
    """Save Video of a loaded mp4 copies its h264 stream (as ComfyUI remuxes it): the same pixels."""
    video = comfy.run("LoadVideo", file=uploaded).args[0]
    ui = comfy.run("SaveVideo", video=video, filename_prefix="video/test_video_io_resave", format="mp4", codec="h264").ui
    again = comfy.harness.VideoStandIn(path=saved_path(comfy, ui))
    assert torch.equal(again.get_components().images, video.get_components().images)


def test_audio_comes_back(comfy, clip):
    rate, fps = 16000, 24.0
    t = torch.arange(rate, dtype=torch.float32) / rate
    waveform = (0.5 * torch.sin(2 * math.pi * 440 * t)).repeat(1, 2, 1)  # [1, 2 channels, 1 s]
    video = comfy.run("CreateVideo", images=clip, fps=fps, audio={"waveform": waveform, "sample_rate": rate}).args[0]
    ui = comfy.run("SaveVideo", video=video, filename_prefix="video/test_video_io_audio", format="auto", codec="auto").ui
    components = comfy.harness.VideoStandIn(path=saved_path(comfy, ui)).get_components()
    assert components.audio["sample_rate"] == rate and components.audio["waveform"].shape[:2] == (1, 2)
    # ComfyUI keeps the audio of the frames' duration (16 / 24 s), which AAC pads to whole
    # 1024-sample frames (measured: 11264 samples for 10667)
    kept = math.ceil(rate / fps * len(clip))
    assert kept <= components.audio["waveform"].shape[2] < kept + 1024
    rms = components.audio["waveform"][..., 2048:kept - 2048].pow(2).mean().sqrt().item()
    print(f"audio: {components.audio['waveform'].shape[2]} samples for {kept}, tone RMS {rms:.4f} (sent {0.5 / math.sqrt(2):.4f})")
    # the tone's loudness away from the ends (measured 0.06 % off; 1 % would still be the tone, not silence or clipping)
    assert abs(rms - 0.5 / math.sqrt(2)) < 0.01 * 0.5 / math.sqrt(2), rms


def test_a_ui_workflow_with_video_nodes(comfy, clip, uploaded):
    """Load Video saved by the frontend (its file and the upload button's value) through Get Video
    Components and Create Video to Save Video, converted and run as a queued prompt."""
    workflow = {"nodes": [
        {"id": 1, "type": "LoadVideo", "inputs": [], "widgets_values": [uploaded, "image"]},
        {"id": 2, "type": "GetVideoComponents", "inputs": [{"name": "video", "type": "VIDEO", "link": 1}], "widgets_values": []},
        {"id": 3, "type": "CreateVideo", "inputs": [{"name": "images", "type": "IMAGE", "link": 2}, {"name": "fps", "type": "FLOAT", "link": 3}],
         "widgets_values": [30]},
        {"id": 4, "type": "SaveVideo", "inputs": [{"name": "video", "type": "VIDEO", "link": 4}],
         "widgets_values": ["video/test_video_io_workflow", "auto", "auto"]},
    ], "links": [[1, 1, 0, 2, 0, "VIDEO"], [2, 2, 0, 3, 0, "IMAGE"], [3, 2, 2, 3, 1, "FLOAT"], [4, 3, 0, 4, 0, "VIDEO"]]}
    info = comfy.harness.object_info(comfy.nodes)
    prompt = comfy.harness.ui_to_prompt(workflow, info)
    assert prompt["1"]["inputs"] == {"file": uploaded}
    assert prompt["4"]["inputs"] == {"filename_prefix": "video/test_video_io_workflow", "format": "auto", "codec": "auto", "video": ["3", 0]}
    results = comfy.harness.execute(prompt, comfy.nodes)
    components = comfy.harness.VideoStandIn(path=saved_path(comfy, results["4"][1])).get_components()
    assert components.images.shape == clip.shape and float(components.frame_rate) == FPS
