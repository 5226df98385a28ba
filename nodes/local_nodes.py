"""Mask-local editing and face parsing nodes."""
from __future__ import annotations

import folder_paths
import torch
from comfy_api.latest import io

from ..styleclip_core.edits.local_edit import render_local_edit
from ..styleclip_core.edits.masks import part_mask, refine_mask
from ..styleclip_core.formats.face_parser_files import load_face_parser
from ..styleclip_core.models.face_parser import PARTS, parse
from ..styleclip_core.models.render import to_unit_range
from .common import CATEGORY, FaceParser, Generator, Latent, managed, model_files, use


class LocalEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LocalEdit",
            display_name="Local Edit (Mask)",
            category=CATEGORY + "/local",
            description="Renders an edit only where the mask is white: the original codes are rendered first, then the edited codes, whose "
            "feature maps are blended with the original's by the mask at every generator resolution. Outside the mask the image is the "
            "original's plain rendering, bit for bit.",
            inputs=[
                Generator.Input("generator", tooltip="The generator of both latents."),
                Latent.Input("original", tooltip="Unedited codes."),
                Latent.Input("edited", tooltip="Edited codes (from any edit node)."),
                io.Mask.Input("mask", tooltip="Where the edit applies ([B,H,W] or one mask for all; any resolution), e.g. from Face Parsing Mask or core mask nodes."),
                io.Float.Input("feather", default=2.0, min=0.0, max=64.0, step=0.5, tooltip="Gaussian softening of the mask edge, in pixels of the output image."),
                io.Combo.Input("blend_from", options=["4", "8", "16", "32", "64"], default="8", tooltip="First generator resolution blended. Lower confines the edit more strictly; higher lets coarse changes (shape, pose) pass. "
                               "Within about 3 pixels of this resolution from the mask's edge (inside) original and edit mix."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="The locally edited images.")],
        )

    @classmethod
    def execute(cls, generator, original, edited, mask, feather, blend_from) -> io.NodeOutput:
        use(generator)
        dev = generator.w_avg.device
        images = render_local_edit(generator, original.to(dev), edited.to(dev), mask, feather, int(blend_from), names={"original": "original", "edited": "edited", "mask": "mask"})
        return io.NodeOutput(to_unit_range(images.cpu()))


class LoadFaceParser(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadFaceParser",
            display_name="Load Face Parser",
            category=CATEGORY + "/local",
            description="Loads the BiSeNet face parser (face-parsing.PyTorch 79999_iter.pth, 19 CelebAMask-HQ classes) from models/face_parsing.",
            inputs=[io.Combo.Input("parser_name", options=model_files("face_parsing"), tooltip="Parser file in ComfyUI/models/face_parsing.")],
            outputs=[FaceParser.Output(display_name="face_parser", tooltip="The face parser.")],
        )

    @classmethod
    def execute(cls, parser_name) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise("face_parsing", parser_name)
        return io.NodeOutput(managed(load_face_parser(path)))


class FaceParsingMask(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_FaceParsingMask",
            display_name="Face Parsing Mask",
            category=CATEGORY + "/local",
            description="Parses faces and returns the mask of the chosen parts. Parts: " + ", ".join(PARTS) + ".",
            inputs=[
                FaceParser.Input("face_parser", tooltip="From Load Face Parser."),
                io.Image.Input("images", tooltip="Face images (aligned faces work best)."),
                io.String.Input("parts", default="hair", tooltip="Comma-separated parts, e.g. 'hair' or 'mouth, nose'."),
                io.Int.Input("dilate", default=0, min=-64, max=64, tooltip="Grow (positive) or shrink (negative) the mask by this many pixels."),
                io.Float.Input("feather", default=0.0, min=0.0, max=64.0, step=0.5, tooltip="Gaussian softening of the mask edge, in pixels."),
            ],
            outputs=[io.Mask.Output(display_name="mask", tooltip="Mask [B,H,W] in 0..1 at the images' size.")],
        )

    @classmethod
    def execute(cls, face_parser, images, parts, dilate, feather) -> io.NodeOutput:
        use(face_parser)
        dev = next(face_parser.parameters()).device
        with torch.no_grad():
            labels = parse(face_parser, images.to(dev))
        mask = refine_mask(part_mask(labels, [p for p in parts.split(",") if p.strip()]), dilate, feather)
        return io.NodeOutput(mask.cpu())


NODES = [LocalEdit, LoadFaceParser, FaceParsingMask]
