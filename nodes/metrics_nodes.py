"""Edit Metrics node: scores edited images against their originals (CLIP, directional CLIP,
identity, LPIPS, PSNR; outside a mask too)."""
from __future__ import annotations

from comfy_api.latest import io

from ..styleclip_core.edits.metrics import DEFAULT_NEUTRAL, METRICS, edit_metrics
from ..styleclip_core.models.render import from_unit_range
from .common import CATEGORY, ArcFace, Clip, Lpips, use

# Float list outputs, one per metric: metric key -> when the list is empty.
OUTPUTS = {
    "clip": " (empty without CLIP)", "clip_direction": " (empty without CLIP)", "identity": " (empty without ArcFace)",
    "lpips": " (empty without LPIPS)", "psnr": "", "lpips_outside": " (empty without a mask or LPIPS)", "psnr_outside": " (empty without a mask)",
}


class EditMetrics(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_EditMetrics",
            display_name="Edit Metrics",
            category=CATEGORY,
            description="Scores edited images against their originals as papers do, per face and as a mean: CLIP similarity to the "
            "target text, directional CLIP similarity (image change vs text change neutral -> target), ArcFace identity similarity, "
            "LPIPS and PSNR; with a mask also LPIPS and PSNR outside it. Metrics whose model is not connected are left out.",
            inputs=[
                io.Image.Input("originals", tooltip="The unedited images: one per edited image, or one for all (e.g. an alpha sweep of one face)."),
                io.Image.Input("edited", tooltip="The edited images. Originals of the same shape at another resolution (a 1024 px photo, a 256 px render) are resized to these."),
                Clip.Input("clip", optional=True, tooltip="CLIP for the CLIP and directional CLIP similarities (left out without it)."),
                ArcFace.Input("arcface", optional=True, tooltip="ArcFace for the identity similarity (left out without it)."),
                Lpips.Input("lpips", optional=True, tooltip="LPIPS (Load LPIPS; AlexNet is the usual metric) for the perceptual distance (left out without it)."),
                io.String.Input("target", default="a person with purple hair", multiline=True, tooltip="What the edit should show (the CLIP similarity's text and the target of the direction)."),
                io.String.Input("neutral", default=DEFAULT_NEUTRAL, tooltip="What the originals show, the start of the text direction (directional CLIP)."),
                io.Mask.Input(
                    "mask", optional=True,
                    tooltip="The edited region (1 = edit), one per image or one for all, at the images' size: adds PSNR over the pixels "
                    "outside it and LPIPS with the inside replaced by the original, so only changes outside count.",
                ),
            ],
            outputs=[
                io.String.Output(display_name="table", tooltip="The scores as a markdown table: one row per image and the means."),
                *[io.Float.Output(display_name=key, tooltip=f"Per image: {METRICS[key][1]}{empty}.", is_output_list=True) for key, empty in OUTPUTS.items()],
            ],
            is_output_node=True,  # runs for its table even when nothing is connected to its outputs
        )

    @classmethod
    def execute(cls, originals, edited, target, neutral, clip=None, arcface=None, lpips=None, mask=None) -> io.NodeOutput:
        use(clip.net if clip is not None else None, arcface, lpips)
        scores = edit_metrics(from_unit_range(originals), from_unit_range(edited), clip, target, neutral, arcface, lpips, mask,
                              names={"original": "originals", "edited": "edited", "mask": "mask", "target": "target"})
        table = scores.table()
        return io.NodeOutput(table, *[scores.per_face.get(key, []) for key in OUTPUTS], ui={"text": (table,)})


NODES = [EditMetrics]
