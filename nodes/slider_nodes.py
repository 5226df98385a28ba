"""Edit Sliders: several directions on sliders with a live preview, and a mapper's edit as a direction."""
from __future__ import annotations

from comfy_api.latest import io

from ..styleclip_core.edits.directions import mapper_direction
from ..styleclip_core.edits.sliders import SliderEdit
from ..styleclip_core.formats import preset_files
from ..styleclip_core.models.render import image_grid, render, to_unit_range
from . import slider_server
from .common import CATEGORY, Direction, Generator, Latent, Mapper, NodeProgress, use

SLIDERS = 4
MODES = ("sliders", "grid")


def running_node_id(cls) -> str | None:
    """The id of the node being run (ComfyUI's hidden UNIQUE_ID), or None outside ComfyUI's executor."""
    hidden = getattr(cls, "hidden", None)
    return getattr(hidden, "unique_id", None) if hidden is not None else None


class EditSliders(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_EditSliders",
            display_name="Edit Sliders (live preview)",
            category=CATEGORY,
            description="Edits faces by up to four directions at once (text, SeFa, GANSpace, a mapper, a file), one slider each. After one run, "
            "dragging a slider updates the preview on the node at once, without queueing; queueing renders the full-size result with "
            "exactly the values shown. Grid mode sweeps one direction as a strip to pick a strength. Presets keep slider values by name.",
            inputs=[
                Generator.Input("generator", tooltip="The generator of the latents."),
                Latent.Input("latents", tooltip="Faces to edit; the preview shows the first."),
                Direction.Input("direction_1", tooltip="The first slider's direction (any space)."),
                *[Direction.Input(f"direction_{k}", optional=True, tooltip=f"Slider {k}'s direction (optional).") for k in range(2, SLIDERS + 1)],
                *[io.Float.Input(f"value_{k}", default=0.0, min=-10.0, max=10.0, step=0.05, display_mode=io.NumberDisplay.slider,
                                 tooltip=f"Strength of direction {k} (0 = unedited; negative = the opposite edit).") for k in range(1, SLIDERS + 1)],
                io.Combo.Input("preview_size", options=["256", "512"], default="256", tooltip="Size of the live preview (the output is always full size)."),
                io.Combo.Input("mode", options=list(MODES), default="sliders", tooltip="sliders: the edit at the slider values. grid: one direction swept as a strip."),
                io.Int.Input("grid_direction", default=1, min=1, max=SLIDERS, tooltip="Grid mode: which direction to sweep (the others stay at their values)."),
                io.Float.Input("grid_range", default=5.0, min=0.0, max=10.0, step=0.5, tooltip="Grid mode: the sweep goes from -range to +range."),
                io.Int.Input("grid_steps", default=5, min=2, max=16, tooltip="Grid mode: images in the strip."),
                io.String.Input("preset", default="", tooltip="A preset's name: its values replace the sliders' (empty: the sliders). The node's buttons save and load presets."),
                io.String.Input("save_preset_as", default="", tooltip="When set, the values used are saved as this preset (an existing preset with other values is kept: an error)."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="Sliders: every face edited, full size. Grid: the first face's strip, one image."),
                Latent.Output(display_name="latents", tooltip="The edited codes (sliders mode; grid mode: the strip's codes)."),
                io.String.Output(display_name="info", tooltip="The directions and the values used."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, generator, latents, direction_1, value_1, value_2, value_3, value_4, preview_size, mode, grid_direction, grid_range,
                grid_steps, preset, save_preset_as, direction_2=None, direction_3=None, direction_4=None) -> io.NodeOutput:
        slots = [(d, v) for d, v in zip((direction_1, direction_2, direction_3, direction_4), (value_1, value_2, value_3, value_4)) if d is not None]
        values = [v for _, v in slots]
        folder = slider_server.presets_folder()
        if preset.strip():
            values = preset_files.load_preset(folder, preset.strip())["values"][: len(slots)]
            values += [0.0] * (len(slots) - len(values))
        use(generator)
        edit = SliderEdit(generator, latents.to(generator.w_avg.device), [d for d, _ in slots], [d.describe() for d, _ in slots])
        node = running_node_id(cls)
        if node is not None:
            slider_server.CACHE.put(str(node), edit)
        if save_preset_as.strip():
            save_preset(folder, save_preset_as.strip(), values, edit.labels)
        if mode == "grid":
            codes = edit.strip(grid_direction - 1, values, -grid_range, grid_range, grid_steps)
            images = to_unit_range(render(generator, codes, progress=NodeProgress(codes.batch_size)))
            images = image_grid(images, grid_steps)
        else:
            codes = edit.edited(values)
            images = to_unit_range(render(generator, codes, progress=NodeProgress(codes.batch_size)))
        info = "; ".join(f"{k + 1}: {label} at {v:g}" for k, (label, v) in enumerate(zip(edit.labels, values)))
        return io.NodeOutput(images, codes, info, ui={"text": (info,), "styleclip_sliders": [{"values": values, "labels": edit.labels,
                                                                                                "preview_size": int(preview_size)}]})


def save_preset(folder: str, name: str, values: list[float], labels: list[str]):
    """Save a preset; the same values under an existing name are fine (a rerun), other values are kept and refused."""
    try:
        preset_files.save_preset(folder, name, values, labels)
    except FileExistsError:
        if preset_files.load_preset(folder, name)["values"] != [float(v) for v in values]:
            raise ValueError(f"a slider preset named {name!r} exists with other values; choose another name (or save over it from the node's buttons)") from None


class MapperDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_MapperDirection",
            display_name="Mapper as Direction",
            category=CATEGORY,
            description="A latent mapper's edit of one face as a direction, for Edit Sliders and Combine Directions: strength 1 is the mapper's own "
            "edit of that face (0.1 x mapper(w)). A mapper's change depends on the face, so use it on that face.",
            inputs=[
                Generator.Input("generator", tooltip="The generator of the latents."),
                Mapper.Input("mapper", tooltip="From Load Latent Mapper or Train Latent Mapper."),
                Latent.Input("latents", tooltip="The face(s); the direction is made for one of them."),
                io.Int.Input("face", default=0, min=0, max=4095, tooltip="Which face of the batch the direction is made for."),
            ],
            outputs=[Direction.Output(display_name="direction", tooltip="The mapper's edit of that face, as a W+ (or StyleSpace) direction.")],
        )

    @classmethod
    def execute(cls, generator, mapper, latents, face) -> io.NodeOutput:
        use(generator, mapper)
        return io.NodeOutput(mapper_direction(mapper, generator, latents, face, names={"face": "face", "latents": "latents"}))


NODES: list[type[io.ComfyNode]] = [EditSliders, MapperDirection]
