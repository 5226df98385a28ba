"""Real photos: align faces, invert them to W+ with e4e, paste edited faces back into the photos."""
from __future__ import annotations

import folder_paths
import torch
from comfy_api.latest import io

from ..styleclip_core.formats.e4e_files import load_e4e
from ..styleclip_core.models.e4e import invert
from ..styleclip_core.models.latents import Latents
from ..styleclip_core.ops import BACKENDS, describe
from ..styleclip_core.photos import align
from .common import CATEGORY, TINY_STAND_IN, E4E, Alignment, Generator, Latent, NodeProgress, device, gradient_capable, managed, model_files, use

# Entries of the landmark dropdown besides the MediaPipe model files.
BUILT_IN = "built-in (mediapipe package)"
POINTS = "points (from the points input)"
ALREADY_ALIGNED = "none: images are already aligned crops"
DEFAULT_LANDMARKER = "face_landmarker.task"  # the Tasks API model the built-in entry falls back to


class LoadE4E(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadE4E",
            display_name="Load e4e Encoder",
            category=CATEGORY,
            description="Loads an e4e encoder (e4e_ffhq_encode.pt from models/e4e) and the StyleGAN2 generator stored in the same file, "
            "so real photos can be inverted and edited with one download. Read without running code from the file.",
            inputs=[
                io.Combo.Input("e4e_name", options=model_files("e4e"), tooltip="e4e checkpoint in ComfyUI/models/e4e."),
                io.Combo.Input(
                    "ops_backend", options=list(BACKENDS), default="auto",
                    tooltip="StyleGAN2 ops of the generator: 'auto' uses the CUDA kernels on a GPU when they build, 'reference' the pure PyTorch path.",
                ),
            ],
            outputs=[
                E4E.Output(display_name="e4e", tooltip="The encoder: aligned face images -> W+ latents."),
                Generator.Output(display_name="generator", tooltip="The generator the encoder was trained with (the file's decoder)."),
                io.String.Output(display_name="info", tooltip="Encoder and generator shapes."),
            ],
        )

    @classmethod
    def execute(cls, e4e_name, ops_backend) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise("e4e", e4e_name)
        with gradient_capable():  # the generator is differentiated by text edits of inverted photos
            encoder, g = load_e4e(path, "cpu", ops_backend)
            managed(encoder), managed(g)
        info = (
            f"{e4e_name}: {len(encoder.body)} residual units -> W+ [{encoder.style_count}, {encoder.style_dim}]"
            f"{' + average latent' if encoder.start_from_latent_avg else ''}; generator {g.size}px; ops: {describe(ops_backend, device())}"
        )
        if encoder.is_tiny_stand_in:
            info = TINY_STAND_IN + info
        return io.NodeOutput(encoder, g, info, ui={"text": (info,)})


class InvertImages(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_InvertImages",
            display_name="Invert Images (e4e)",
            category=CATEGORY,
            description="Encodes aligned face images into W+ latents with e4e (resized to 256x256 as e4e does). "
            "Align photos with Align Faces first: e4e only understands FFHQ-aligned crops.",
            inputs=[
                E4E.Input("e4e", tooltip="The encoder from Load e4e Encoder."),
                io.Image.Input("images", tooltip="Aligned face crops (Align Faces output)."),
                io.Int.Input("chunk_size", default=4, min=1, max=64, tooltip="Images encoded at once; lower it if memory runs out."),
            ],
            outputs=[Latent.Output(display_name="latents", tooltip="W+ codes, one per image, for the generator of the same file.")],
        )

    @classmethod
    def execute(cls, e4e, images, chunk_size) -> io.NodeOutput:
        use(e4e)
        codes = invert(e4e, images, chunk_size, NodeProgress(images.shape[0]), names={"chunk": "chunk_size"})
        return io.NodeOutput(Latents(w_plus=codes))


def _landmark_options():
    return [BUILT_IN, *model_files("mediapipe"), POINTS, ALREADY_ALIGNED]


def _fallback_task_model() -> str | None:
    """A face landmarker model for the built-in entry where the installed mediapipe has no face
    mesh of its own (0.10.30 and later): face_landmarker.task, else the first .task file."""
    files = model_files("mediapipe")
    name = DEFAULT_LANDMARKER if DEFAULT_LANDMARKER in files else (files[0] if files else None)
    return folder_paths.get_full_path("mediapipe", name) if name else None


def landmark_detector(landmarks: str):
    """The face detector of a landmarks dropdown entry (the built-in face mesh or a .task file), to use in a ``with``."""
    if landmarks == BUILT_IN:
        return align.builtin_detector(_fallback_task_model())
    return align.MediaPipeLandmarker(folder_paths.get_full_path_or_raise("mediapipe", landmarks))


class ExamplePortrait(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ExamplePortrait",
            display_name="Example Portrait",
            category=CATEGORY,
            description="A real portrait to try the photo nodes on: NASA's public-domain photo of astronaut Eileen Collins "
            "(512x512), the astronaut.png that comes with scikit-image (nothing is downloaded). "
            "For your own photos use Load Image instead.",
            inputs=[],
            outputs=[io.Image.Output(display_name="image", tooltip="The portrait (1 x 512 x 512 RGB). Replace this node with Load Image for your own photos.")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        pixels = align.example_portrait()
        return io.NodeOutput(torch.from_numpy(pixels).float().div(255)[None])


class AlignFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        options = _landmark_options()
        return io.Schema(
            node_id="StyleCLIP_AlignFaces",
            display_name="Align Faces (FFHQ)",
            category=CATEGORY,
            description="Crops and rotates the face of every photo as FFHQ (and so StyleGAN2 and e4e) expects: from eye and mouth landmarks, "
            "the e4e / FFHQ alignment. Landmarks come from MediaPipe (the largest face per image): by default the face mesh inside the "
            "mediapipe package, no model file needed; or from typed points; or the images are taken as already aligned. "
            "Also outputs where each crop lies, for Paste Face Back.",
            inputs=[
                io.Image.Input("images", tooltip="Photos, one face each (the largest face is used)."),
                io.Combo.Input(
                    "landmarks", options=options, default=BUILT_IN,
                    tooltip="built-in: the face mesh that comes with the mediapipe package (the pack's requirements; mediapipe 0.10.30 and "
                    "later have none and use face_landmarker.task from ComfyUI/models/mediapipe instead). A .task file: that MediaPipe "
                    "face landmarker model (Tasks API). points: the points input. none: images that are already aligned crops (e.g. FFHQ / CelebA-HQ).",
                ),
                io.Combo.Input("output_size", options=["256", "1024"], default="256",
                               tooltip="256: e4e's alignment (what the encoder was trained on). 1024: the FFHQ dataset recipe (transform at 4096, then downscale)."),
                io.String.Input(
                    "points", default="", multiline=True, optional=True,
                    tooltip="With landmarks = points: per image one line of 8 numbers, x y in pixels of the left eye centre, right eye centre, "
                    "left mouth corner, right mouth corner (left/right as seen in the image); one line applies to every image.",
                ),
            ],
            outputs=[
                io.Image.Output(display_name="aligned", tooltip="Aligned face crops, output_size square."),
                Alignment.Output(display_name="alignment", tooltip="Where each crop lies in its photo (for Paste Face Back)."),
            ],
        )

    @classmethod
    def execute(cls, images, landmarks, output_size, points="") -> io.NodeOutput:
        if landmarks == ALREADY_ALIGNED:
            face_points = None
        elif landmarks == POINTS:
            face_points = align.parse_points(points, images.shape[0])
        else:
            with landmark_detector(landmarks) as detector:
                face_points = align.detect_points(detector, images)
        aligned, alignments = align.align_faces(images, face_points, int(output_size), names={"images": "images", "points": "points"})
        return io.NodeOutput(aligned, alignments)


class PasteFaceBack(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_PasteFaceBack",
            display_name="Paste Face Back",
            category=CATEGORY,
            description="Warps edited aligned faces back into the photos they were aligned from, blended with a feathered mask, "
            "and returns the whole photos. Any face size works (e.g. a 1024 px render of a 256 px alignment).",
            inputs=[
                io.Image.Input("photos", tooltip="The photos given to Align Faces."),
                io.Image.Input("faces", tooltip="Edited (or reconstructed) aligned faces: one per photo, or any number for a single photo."),
                Alignment.Input("alignment", tooltip="The alignment output of Align Faces."),
                io.Float.Input("feather", default=0.1, min=0.0, max=0.5, step=0.01,
                               tooltip="Width of the blend at the crop's edges, as a fraction of the crop's side (0 = hard edge)."),
                io.Mask.Input("mask", optional=True, tooltip="Optional mask in the aligned crop's coordinates (e.g. the face only); multiplies the feathered square."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The photos with the faces pasted back."),
                io.Mask.Output(display_name="mask", tooltip="The blend mask in photo coordinates."),
            ],
        )

    @classmethod
    def execute(cls, photos, faces, alignment, feather, mask=None) -> io.NodeOutput:
        images, masks = align.paste_back(photos, faces, alignment, feather, mask)
        return io.NodeOutput(images, masks)


NODES = [ExamplePortrait, LoadE4E, InvertImages, AlignFaces, PasteFaceBack]
