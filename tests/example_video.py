"""The clip the video workflows' tests give core Load Video (workflow 18's file): the Example Clip's
16 frames as an h264 mp4 at 16 fps, written as core Save Video writes one (the harness's PyAV
stand-in). Needs PyAV (``av``: in the test install; ComfyUI ships it)."""
import os

EXAMPLE_CLIP_FILE = "styleclip_example_clip.mp4"


def can_write() -> bool:
    import importlib.util

    return bool(importlib.util.find_spec("av") and importlib.util.find_spec("skimage"))


def write_example_clip(input_dir: str) -> str:
    from fractions import Fraction

    import torch

    import comfy_harness
    from styleclip_core.video.example_clip import example_clip

    os.makedirs(input_dir, exist_ok=True)
    path = os.path.join(input_dir, EXAMPLE_CLIP_FILE)
    frames = torch.from_numpy(example_clip(16)).float() / 255
    comfy_harness.VideoStandIn(components=comfy_harness.VideoComponents(frames, Fraction(16))).save_to(path)
    return path
