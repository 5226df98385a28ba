"""Latent mapper nodes: load an official or trained mapper, apply it with a strength."""
from __future__ import annotations

import folder_paths
from comfy_api.latest import io

from ..styleclip_core.models.generator import Generator as GeneratorModel
from ..styleclip_core.formats.mapper_files import load_mapper
from .common import CATEGORY, TINY_STAND_IN, Generator, Latent, Mapper, gradient_capable, managed, model_files, use


class LoadMapper(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadMapper",
            display_name="Load Latent Mapper",
            category=CATEGORY + "/mapper",
            description="Loads a StyleCLIP latent mapper from models/styleclip_mappers: an official checkpoint (e.g. purple_hair.pt, "
            "read without running code from it) or a .safetensors mapper trained here. Official files also carry the 1024px FFHQ generator they were trained with.",
            inputs=[io.Combo.Input("mapper_name", options=model_files("styleclip_mappers"), tooltip="Mapper file in ComfyUI/models/styleclip_mappers.")],
            outputs=[
                Mapper.Output(display_name="mapper", tooltip="The latent mapper."),
                Generator.Output(display_name="generator", tooltip="The generator bundled in an official mapper file (None for mappers without one)."),
                io.String.Output(display_name="info", tooltip="The mapper's prompt and options."),
            ],
        )

    @classmethod
    def execute(cls, mapper_name) -> io.NodeOutput:
        with gradient_capable():  # the bundled generator may be optimised through later
            mapper, decoder = load_mapper(folder_paths.get_full_path_or_raise("styleclip_mappers", mapper_name))
            g = managed(GeneratorModel.from_state_dict(decoder, source=mapper_name).eval().requires_grad_(False)) if decoder else None
            mapper = managed(mapper)
        info = f"{mapper_name}: {mapper.mapper_type}, text {mapper.options.get('description', '?')!r}" + (f", bundled generator {g.size}px" if g else "")
        if mapper.options.get("tiny_stand_in"):
            info = TINY_STAND_IN + info
        return io.NodeOutput(mapper, g, info, ui={"text": (info,)})


class ApplyMapper(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ApplyMapper",
            display_name="Apply Latent Mapper",
            category=CATEGORY + "/mapper",
            description="Edits latents with a mapper in one step: w + strength x 0.1 x mapper(w). Strength 1 is StyleCLIP's edit; 0 leaves the latents unchanged; negative values push the other way.",
            inputs=[
                Generator.Input("generator", tooltip="The generator the latents belong to (the mapper's training generator)."),
                Mapper.Input("mapper", tooltip="The latent mapper."),
                Latent.Input("latents", tooltip="Codes to edit (W+; StyleSpace for StyleSpace mappers)."),
                io.Float.Input("strength", default=1.0, min=-5.0, max=5.0, step=0.05, tooltip="Edit strength; 1 reproduces the reference."),
            ],
            outputs=[Latent.Output(display_name="latents", tooltip="Edited codes.")],
        )

    @classmethod
    def execute(cls, generator, mapper, latents, strength) -> io.NodeOutput:
        import torch

        use(generator, mapper)
        with torch.no_grad():
            edited = mapper.edit(latents.to(generator.w_avg.device), generator, strength, names={"latents": "latents"})
        return io.NodeOutput(edited.detach())


NODES = [LoadMapper, ApplyMapper]
