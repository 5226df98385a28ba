"""Inversion beyond e4e: LPIPS, the W / W+ projector, pivotal tuning (PTI) and saving a tuned generator."""
from __future__ import annotations

from comfy_api.latest import io

from ..styleclip_core.formats.lpips_files import BACKBONE_FILES, load_lpips
from .common import CATEGORY, TINY_STAND_IN, Lpips, gradient_capable, managed, model_files, model_path


class LoadLPIPS(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadLPIPS",
            display_name="Load LPIPS",
            category=CATEGORY,
            description="Loads the LPIPS perceptual distance (v0.1): a torchvision backbone from models/lpips and the linear heads "
            "that come with the lpips package. AlexNet is what pivotal tuning and Edit Metrics use; VGG16 is the projector's.",
            inputs=[
                io.Combo.Input("net", options=list(BACKBONE_FILES), default="alex", tooltip="alex: pivotal tuning's loss and the usual metric. vgg: the projector's feature distance."),
                io.Combo.Input(
                    "backbone_name", options=model_files("lpips"),
                    tooltip="alexnet-owt-7be5be79.pth (for alex) or vgg16-397923af.pth (for vgg) from torchvision, in ComfyUI/models/lpips.",
                ),
            ],
            outputs=[
                Lpips.Output(display_name="lpips", tooltip="The perceptual distance (images in, one value per pair)."),
                io.String.Output(display_name="info", tooltip="What was loaded."),
            ],
        )

    @classmethod
    def execute(cls, net, backbone_name) -> io.NodeOutput:
        with gradient_capable():
            model = managed(load_lpips(net, model_path("lpips", backbone_name)))
        info = f"LPIPS-{net} v0.1: backbone {backbone_name}, heads of the lpips package"
        if model.is_tiny_stand_in:
            info = TINY_STAND_IN + info
        return io.NodeOutput(model, info, ui={"text": (info,)})


NODES: list[type[io.ComfyNode]] = [LoadLPIPS]
