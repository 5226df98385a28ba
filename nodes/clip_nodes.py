"""CLIP and ArcFace nodes: load the models that text edits need, score images against text."""
from __future__ import annotations

import torch
from comfy_api.latest import io

from ..styleclip_core.formats.arcface_files import load_arcface
from ..styleclip_core.formats.clip_files import AUTO, buildable_architectures, load_clip
from ..styleclip_core.models.clip import PREPROCESSING
from ..styleclip_core.models.render import from_unit_range
from .common import CATEGORY, TINY_STAND_IN, ArcFace, Clip, gradient_capable, managed, model_files, model_path, use


class LoadCLIP(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadCLIP",
            display_name="Load CLIP (StyleCLIP)",
            category=CATEGORY,
            description="Loads CLIP from models/openclip with open_clip, from the local file only: OpenAI's ViT-B-32.pt "
            "(read without running code from it), OpenAI-layout or open_clip state dicts (.pt/.pth/.bin) and .safetensors "
            "(e.g. Hugging Face open_clip_model.safetensors).",
            inputs=[
                io.Combo.Input("clip_name", options=model_files("openclip"), tooltip="CLIP weights in ComfyUI/models/openclip (StyleCLIP uses OpenAI's ViT-B-32.pt)."),
                io.Combo.Input(
                    "architecture", options=[AUTO, *buildable_architectures()], default=AUTO,
                    tooltip="'auto' reads the architecture from OpenAI-layout weights (OpenAI's files; built with QuickGELU as OpenAI trained them). "
                    "For other checkpoints pick their open_clip architecture (e.g. ViT-B-32 for LAION weights).",
                ),
                io.Combo.Input(
                    "image_preprocessing", options=list(PREPROCESSING), default=PREPROCESSING[0],
                    tooltip="'styleclip': as the StyleCLIP reference (box resize to CLIP's input size, the [-1, 1] image without CLIP's "
                    "mean/std normalisation). 'normalized': the same resize, then mapped to [0, 1] and normalised with CLIP's mean/std, as CLIP was trained. "
                    "'nada': StyleGAN-NADA's (bicubic resize and centre crop, CLIP's mean/std); Train Domain always uses it.",
                ),
            ],
            outputs=[
                Clip.Output(display_name="clip", tooltip="The CLIP model, for CLIP losses and CLIP Score."),
                io.String.Output(display_name="info", tooltip="What was loaded: file, layout, input size."),
            ],
        )

    @classmethod
    def execute(cls, clip_name, architecture, image_preprocessing) -> io.NodeOutput:
        with gradient_capable():
            clip = load_clip(model_path("openclip", clip_name), architecture, "cpu", image_preprocessing)
            managed(clip.net)
        info = f"{clip.name}: {clip.image_size}px input, preprocessing '{clip.preprocessing}'"
        if clip.is_tiny_stand_in:
            info = TINY_STAND_IN + info
        return io.NodeOutput(clip, info, ui={"text": (info,)})


class LoadArcFace(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadArcFace",
            display_name="Load ArcFace (identity)",
            category=CATEGORY,
            description="Loads the ArcFace IR-SE50 face recognition network (model_ir_se50.pth) from models/arcface for the identity loss.",
            inputs=[io.Combo.Input("arcface_name", options=model_files("arcface"), tooltip="model_ir_se50.pth (pSp / e4e release) in ComfyUI/models/arcface.")],
            outputs=[
                ArcFace.Output(display_name="arcface", tooltip="The identity network, for Identity Loss."),
                io.String.Output(display_name="info", tooltip="What was loaded."),
            ],
        )

    @classmethod
    def execute(cls, arcface_name) -> io.NodeOutput:
        with gradient_capable():
            net = managed(load_arcface(model_path("arcface", arcface_name), "cpu"))
        info = f"{arcface_name}: ArcFace IR-SE with {len(net.body)} residual units"
        if net.is_tiny_stand_in:
            info = TINY_STAND_IN + info
        return io.NodeOutput(net, info, ui={"text": (info,)})


class CLIPScore(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_CLIPScore",
            display_name="CLIP Score",
            category=CATEGORY,
            description="Cosine similarity between each image and a text, as the CLIP losses see the images (same resize and preprocessing). "
            "Higher = closer to the text; compare edits of the same face, not absolute values.",
            inputs=[
                Clip.Input("clip", tooltip="The CLIP model."),
                io.Image.Input("images", tooltip="Images to score (any size; resized to CLIP's input)."),
                io.String.Input("text", default="a person with purple hair", multiline=True, tooltip="The text to compare with."),
            ],
            outputs=[
                io.Float.Output(display_name="similarity", tooltip="Cosine similarity per image, in batch order.", is_output_list=True),
                io.String.Output(display_name="report", tooltip="The similarities as text, one line per image."),
            ],
        )

    @classmethod
    def execute(cls, clip, images, text) -> io.NodeOutput:
        use(clip.net)
        with torch.no_grad():
            scores = clip.similarity(from_unit_range(images).to(clip.device), text, names={"images": "images"}).cpu().tolist()
        report = "\n".join(f"image {i}: {s:.4f}  ({text!r})" for i, s in enumerate(scores))
        if note := clip.context_note(text, "text"):
            report += "\n" + note
        return io.NodeOutput(scores, report, ui={"text": (report,)})


NODES = [LoadCLIP, LoadArcFace, CLIPScore]
