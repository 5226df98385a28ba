"""Generator nodes: load, sample, render, mix, save and load latents, convert checkpoints."""
from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from ..styleclip_core.formats import generator_files
from ..styleclip_core.formats.latent_files import load_latent_folder, load_latents, save_latents
from ..styleclip_core.models.latents import mix_latents, sample_latents
from ..styleclip_core.models.render import render, to_unit_range
from ..styleclip_core.ops import BACKENDS, describe
from ..styleclip_core.precision import PRECISIONS, ops_dtypes
from .common import CATEGORY, TINY_STAND_IN, Generator, Latent, NodeProgress, device, gradient_capable, managed, model_files, unique_output_path, use

LATENT_EXTENSIONS = (".safetensors", ".pt")


def architecture_name(g) -> str:
    """'StyleGAN2', or 'StyleGAN3-T' / 'StyleGAN3-R' (R: 1x1 convolutions and radial filters)."""
    if getattr(g, "architecture", None) != "stylegan3":
        return "StyleGAN2"
    return "StyleGAN3-R" if g.synthesis.specs[0].conv_kernel == 1 else "StyleGAN3-T"


def loader_inputs() -> list:
    """The ops backend and precision inputs of the generator loaders."""
    return [
        io.Combo.Input(
            "ops_backend", options=list(BACKENDS), default="auto",
            tooltip="StyleGAN2 and StyleGAN3 ops: 'auto' uses the CUDA kernels on a GPU when they build (else PyTorch), "
            "'cuda' requires them, 'reference' always uses the pure PyTorch path (same numbers).",
        ),
        io.Combo.Input(
            "precision", options=list(PRECISIONS), default="fp32",
            tooltip="fp32 reproduces the reference numbers. bf16 / fp16 run the convolutions in half precision: "
            "much faster on recent NVIDIA GPUs, differences around 1e-2; no gain on CPU. StyleGAN3: fp32 only.",
        ),
    ]


def load_managed(generator_name: str, ops_backend: str, precision: str):
    """(the generator of ``generator_name`` in models/stylegan, handed to model management; the
    end of its info line: ops and precision)."""
    path = folder_paths.get_full_path_or_raise("stylegan", generator_name)
    with gradient_capable():
        g = managed(generator_files.load_generator(path, "cpu", ops_backend).set_precision(precision))
    return g, f"ops: {describe(ops_backend, device(), ops_dtypes(precision))}, precision {precision}"


def stand_in_marked(g, info: str) -> str:
    return TINY_STAND_IN + info if getattr(g, "is_tiny_stand_in", False) else info


class LoadGenerator(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadGenerator",
            display_name="Load StyleGAN2 Generator",
            category=CATEGORY,
            description="Loads a StyleGAN2 generator from models/stylegan: rosinality .pt (stylegan2-ffhq-config-f.pt), "
            "NVIDIA .pkl (TensorFlow or stylegan2-ada-pytorch; read without running code from the file) or .safetensors; "
            "or a StyleGAN3 one (config T or R): NVIDIA's .pkl (stylegan3-t-ffhq-1024x1024.pkl, ...), stylegan3-editing's .pt or .safetensors. "
            "The architecture is read from the file.",
            inputs=[
                io.Combo.Input("generator_name", options=model_files("stylegan"), tooltip="Generator file in ComfyUI/models/stylegan."),
                *loader_inputs(),
            ],
            outputs=[
                Generator.Output(display_name="generator", tooltip="The StyleGAN2 generator."),
                io.String.Output(display_name="info", tooltip="Resolution, latent shape and which ops backend runs."),
            ],
        )

    @classmethod
    def execute(cls, generator_name, ops_backend, precision) -> io.NodeOutput:
        g, ops = load_managed(generator_name, ops_backend, precision)
        info = stand_in_marked(g, (
            f"{generator_name}: {architecture_name(g)} {g.size}px, W+ [{g.n_latent}, {g.style_dim}], mapping {g.n_mlp} layers, "
            f"{'W average from the file' if g.has_w_avg else 'no W average in the file (truncation uses the mean of 4096 samples)'}; {ops}"
        ))
        return io.NodeOutput(g, info, ui={"text": (info,)})


class SampleLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_SampleLatents",
            display_name="Sample Latents",
            category=CATEGORY,
            description="Draws random faces: seeded Z through the mapping network to W+, truncated toward the average W.",
            inputs=[
                Generator.Input("generator", tooltip="The generator whose latent space to sample."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True, tooltip="Seed of the random Z codes."),
                io.Int.Input("batch_size", default=4, min=1, max=256, tooltip="How many latents to draw."),
                io.Float.Input("truncation_psi", default=0.7, min=0.0, max=1.5, step=0.01, tooltip="1 = no truncation; lower values trade variety for typical, cleaner faces."),
            ],
            outputs=[Latent.Output(display_name="latents", tooltip="W+ codes [batch, n_latent, style_dim].")],
        )

    @classmethod
    def execute(cls, generator, seed, batch_size, truncation_psi) -> io.NodeOutput:
        use(generator)
        return io.NodeOutput(sample_latents(generator, batch_size, seed, truncation_psi))


class Synthesize(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_Synthesize",
            display_name="Synthesize Images",
            category=CATEGORY,
            description="Renders latents (W+ or StyleSpace) to images.",
            inputs=[
                Generator.Input("generator", tooltip="The generator to render with."),
                Latent.Input("latents", tooltip="Codes to render."),
                io.Combo.Input("noise", options=["const", "random"], default="const", tooltip="'const' uses the generator's stored noise maps (as StyleCLIP does); 'random' draws new noise per image from the seed."),
                io.Int.Input("noise_seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, tooltip="Seed of the noise when noise is 'random' (image i uses seed + i)."),
                io.Int.Input("chunk_size", default=4, min=1, max=64, tooltip="Images rendered at once; lower it if memory runs out."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="Rendered images.")],
        )

    @classmethod
    def execute(cls, generator, latents, noise, noise_seed, chunk_size) -> io.NodeOutput:
        use(generator)
        images = render(generator, latents, noise, noise_seed, chunk_size, NodeProgress(latents.batch_size), names={"chunk": "chunk_size"})
        return io.NodeOutput(to_unit_range(images))


class MixLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_MixLatents",
            display_name="Mix Latents",
            category=CATEGORY,
            description="Style mixing and interpolation in W+: the rows in [row_start, row_end) move from A toward B by factor. "
            "factor 1 on rows 0-3 takes B's coarse style (pose, face shape); factor 0.5 on all rows is the midpoint.",
            inputs=[
                Latent.Input("latents_a", tooltip="Base latents."),
                Latent.Input("latents_b", tooltip="Latents to mix in (a batch of 1 is used for every A)."),
                io.Float.Input("factor", default=1.0, min=0.0, max=1.0, step=0.01, tooltip="0 = A, 1 = B on the chosen rows."),
                io.Int.Input("row_start", default=0, min=0, max=63, tooltip="First W+ row to mix (0 = coarsest)."),
                io.Int.Input("row_end", default=64, min=1, max=64, tooltip="End of the row range (exclusive); larger than the row count means all rows."),
            ],
            outputs=[Latent.Output(display_name="latents", tooltip="Mixed W+ codes.")],
        )

    @classmethod
    def execute(cls, latents_a, latents_b, factor, row_start, row_end) -> io.NodeOutput:
        return io.NodeOutput(mix_latents(latents_a, latents_b, factor, row_start, row_end))


class SaveLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_SaveLatents",
            display_name="Save Latents",
            category=CATEGORY,
            description="Writes latents as .safetensors to ComfyUI's output folder (numbered; never overwrites).",
            inputs=[
                Latent.Input("latents", tooltip="Codes to save."),
                io.String.Input("filename_prefix", default="styleclip/latents", tooltip="Prefix under the output folder; a counter is appended."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, latents, filename_prefix) -> io.NodeOutput:
        path, shown = unique_output_path(filename_prefix, ".safetensors")
        save_latents(latents, path)
        return io.NodeOutput(ui={"text": (f"saved {latents.batch_size} latents to {shown}",)})


def _latent_files() -> list[str]:
    """Files in the input folder, and files in the output folder annotated ' [output]'."""
    found = []
    for root_dir, suffix in ((folder_paths.get_input_directory(), ""), (folder_paths.get_output_directory(), " [output]")):
        if not os.path.isdir(root_dir):
            continue
        for root, _, files in os.walk(root_dir):
            for f in files:
                if f.endswith(LATENT_EXTENSIONS):
                    found.append(os.path.relpath(os.path.join(root, f), root_dir).replace(os.sep, "/") + suffix)
    return sorted(found)


class LoadLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadLatents",
            display_name="Load Latents",
            category=CATEGORY,
            description="Reads latents saved by Save Latents (input or output folder), or a W+ tensor .pt as StyleCLIP's scripts take.",
            inputs=[io.Combo.Input("latent_file", options=_latent_files(), tooltip="A .safetensors (or .pt) file in ComfyUI's input folder, or one of the output folder marked [output].")],
            outputs=[Latent.Output(display_name="latents", tooltip="The loaded codes.")],
        )

    @classmethod
    def execute(cls, latent_file) -> io.NodeOutput:
        return io.NodeOutput(load_latents(folder_paths.get_annotated_filepath(latent_file)))


class LoadLatentFolder(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadLatentFolder",
            display_name="Load Latent Folder",
            category=CATEGORY,
            description="Reads every latent file in a folder (.safetensors from Save Latents, or .pt W+ tensors) as one batch, in name order: "
            "e.g. e4e inversions saved one by one, as training codes for Train Latent Mapper.",
            inputs=[io.String.Input("folder", default="styleclip/latents", tooltip="A folder under ComfyUI's input folder, or an absolute path.")],
            outputs=[Latent.Output(display_name="latents", tooltip="All the folder's codes, joined.")],
        )

    @classmethod
    def execute(cls, folder) -> io.NodeOutput:
        path = folder if os.path.isabs(folder) else os.path.join(folder_paths.get_input_directory(), folder)
        return io.NodeOutput(load_latent_folder(path))


class ConvertGenerator(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ConvertGenerator",
            display_name="Convert Generator to safetensors",
            category=CATEGORY,
            description="Converts any generator in models/stylegan (.pt, .pkl) to .safetensors beside it. An existing file is never overwritten.",
            inputs=[io.Combo.Input("generator_name", options=model_files("stylegan"), tooltip="File to convert.")],
            outputs=[io.String.Output(display_name="path", tooltip="The written file.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, generator_name) -> io.NodeOutput:
        src = folder_paths.get_full_path_or_raise("stylegan", generator_name)
        dst = generator_files.convert_to_safetensors(src)
        return io.NodeOutput(dst, ui={"text": (f"wrote {dst}",)})


class TransformStyleGAN3(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_TransformStyleGAN3",
            display_name="Rotate / Translate (StyleGAN3)",
            category=CATEGORY,
            description="A StyleGAN3 generator whose output is rotated and translated, as NVIDIA's gen_images.py --rotate --translate: "
            "the Fourier-feature input is transformed, so the content moves continuously (no texture sticking) and the styles stay "
            "the same. StyleGAN2 has no such input.",
            inputs=[
                Generator.Input("generator", tooltip="A StyleGAN3 generator (config T or R); it is not changed (the output is a copy)."),
                io.Float.Input("rotate", default=0.0, min=-360.0, max=360.0, step=0.5, tooltip="Rotation in degrees (gen_images.py --rotate)."),
                io.Float.Input("translate_x", default=0.0, min=-2.0, max=2.0, step=0.01, tooltip="Horizontal shift in image widths (gen_images.py --translate X,Y)."),
                io.Float.Input("translate_y", default=0.0, min=-2.0, max=2.0, step=0.01, tooltip="Vertical shift in image heights."),
            ],
            outputs=[Generator.Output(display_name="generator", tooltip="The transformed generator (connect it where the generator was).")],
        )

    @classmethod
    def execute(cls, generator, rotate, translate_x, translate_y) -> io.NodeOutput:
        if not hasattr(generator, "with_transform"):
            raise ValueError(f"Rotate / Translate needs a StyleGAN3 generator (its Fourier-feature input); this one is {architecture_name(generator)}")
        with gradient_capable():
            return io.NodeOutput(managed(generator.with_transform(rotate, (translate_x, translate_y))))


NODES = [LoadGenerator, SampleLatents, Synthesize, MixLatents, SaveLatents, LoadLatents, LoadLatentFolder, ConvertGenerator, TransformStyleGAN3]
