"""Inversion beyond e4e: LPIPS, the W / W+ projector, pivotal tuning (PTI) and saving a tuned generator."""
from __future__ import annotations

from comfy_api.latest import io

from ..styleclip_core.formats.generator_files import save_generator
from ..styleclip_core.formats.lpips_files import BACKBONE_FILES, load_lpips
from ..styleclip_core.models.render import photos_at, render, to_unit_range
from ..styleclip_core.photos.pivotal_tuning import TuningSettings, pivotal_tuning
from ..styleclip_core.photos.projector import MODES, ProjectorSettings, project
from .common import (CATEGORY, TINY_STAND_IN, Generator, Latent, Lpips, NodeProgress, gradient_capable, managed, model_files, model_path,
                     unique_model_path, use)


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


class ProjectLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ProjectLatents",
            display_name="Project Latents (W / W+)",
            category=CATEGORY,
            description="Finds the latent code whose rendering looks like each aligned photo: PTI's W projector (Adam on the code and the noise "
            "maps under the VGG16 perceptual distance, with noise regularisation). Slower than e4e but closer; start from e4e's codes to get both. "
            "A batch is projected at once, each face as if alone.",
            inputs=[
                Generator.Input("generator", tooltip="The generator to invert into."),
                Lpips.Input("lpips", tooltip="LPIPS-vgg (Load LPIPS with net = vgg): the projector's perceptual distance."),
                io.Image.Input("images", tooltip="Aligned face crops (Align Faces output); resized to the generator's resolution."),
                io.Combo.Input("space", options=list(MODES), default="w", tooltip="w: one code per face for every row (PTI's pivot, most editable). w+: one code per row (closer, less editable)."),
                io.Int.Input("steps", default=450, min=1, max=10000, tooltip="Adam steps (PTI uses 450; NVIDIA's projector 1000)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, tooltip="Seed of the starting noise maps and the code's jitter."),
                io.Int.Input("w_avg_samples", default=600, min=1, max=100000, tooltip="Mapped samples for the average code (the start) and its spread (the jitter's scale). PTI: 600."),
                io.Float.Input("learning_rate", default=0.01, min=0.0, max=1.0, step=0.001, tooltip="Peak learning rate of the ramp (PTI: 0.01, NVIDIA: 0.1)."),
                io.Float.Input("noise_regularization", default=1e5, min=0.0, max=1e7, step=1e3, tooltip="Weight of the noise maps' autocorrelation penalty (1e5 as the reference)."),
                Latent.Input("start", optional=True, tooltip="Codes to start from, one per image (e.g. Invert Images (e4e)); else the average code."),
            ],
            outputs=[
                Latent.Output(display_name="latents", tooltip="W+ codes, one per image (the pivots for Pivotal Tuning)."),
                io.Image.Output(display_name="images", tooltip="The codes rendered with the generator's stored noise."),
            ],
        )

    @classmethod
    def execute(cls, generator, lpips, images, space, steps, seed, w_avg_samples, learning_rate, noise_regularization, start=None) -> io.NodeOutput:
        use(generator, lpips)
        settings = ProjectorSettings(steps=steps, w_avg_samples=w_avg_samples, initial_learning_rate=learning_rate, regularize_noise_weight=noise_regularization)
        with gradient_capable():
            result = project(generator, photos_at(images, generator.size), lpips, settings, space, start, seed, NodeProgress(steps), names={"start": "start"})
            rendered = render(generator, result.latents)
        return io.NodeOutput(result.latents, to_unit_range(rendered))


def tuning_outputs(generator, lpips, latents, images, settings: TuningSettings, seed: int = 0, names: dict[str, str] | None = None) -> io.NodeOutput:
    """Pivotal Tuning's and Tune on Clip's run and outputs: the tuned generator (handed to ComfyUI's
    model management), the pivots, their reconstruction, the summary line."""
    use(generator, lpips)
    with gradient_capable():
        result = pivotal_tuning(generator, latents, photos_at(images, generator.size), lpips, settings, seed, NodeProgress(settings.steps), names=names)
        tuned = managed(result.generator)
        use(tuned)
        rendered = render(tuned, result.latents)
    info = result.summary()
    return io.NodeOutput(tuned, result.latents, to_unit_range(rendered), info, ui={"text": (info,)})


class PivotalTuning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_PivotalTuning",
            display_name="Pivotal Tuning (PTI)",
            category=CATEGORY,
            description="Fine-tunes a copy of the generator so that the pivot codes render the photos (PTI: L2 + LPIPS-alex, Adam lr 3e-4). "
            "The tuned generator keeps identity and detail that codes alone lose, and edits the same way: connect it to any edit node, "
            "with the pivots as latents. One face stops early once LPIPS reaches the threshold; a batch is tuned jointly into one generator.",
            inputs=[
                Generator.Input("generator", tooltip="The generator to tune (it is not changed; a tuned copy comes out)."),
                Lpips.Input("lpips", tooltip="LPIPS-alex (Load LPIPS with net = alex), PTI's tuning loss."),
                Latent.Input("latents", tooltip="The pivots, one W+ code per image: Invert Images (e4e) or Project Latents."),
                io.Image.Input("images", tooltip="The aligned photos the pivots were found for; resized to the generator's resolution."),
                io.Int.Input("steps", default=350, min=1, max=10000, tooltip="Tuning steps (PTI: 350; with several faces, one update per face per step)."),
                io.Float.Input("learning_rate", default=3e-4, min=0.0, max=0.1, step=1e-5, tooltip="Adam learning rate of the generator's weights (PTI: 3e-4)."),
                io.Float.Input("lpips_threshold", default=0.06, min=0.0, max=1.0, step=0.005, tooltip="One face: stop once LPIPS is at most this (PTI: 0.06; 0 never stops early)."),
                io.Float.Input("l2_weight", default=1.0, min=0.0, max=100.0, step=0.1, tooltip="Weight of the pixel L2 term (PTI: 1)."),
                io.Float.Input("lpips_weight", default=1.0, min=0.0, max=100.0, step=0.1, tooltip="Weight of the LPIPS term (PTI: 1)."),
                io.Boolean.Input("locality_regularization", default=False, tooltip="PTI's locality regulariser: keep renderings of nearby random codes unchanged (slower; off in PTI by default)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, tooltip="Seed of the locality regulariser's random codes."),
            ],
            outputs=[
                Generator.Output(display_name="generator", tooltip="The tuned generator: use it with the pivots in any edit node."),
                Latent.Output(display_name="latents", tooltip="The pivots (unchanged), to edit with the tuned generator."),
                io.Image.Output(display_name="images", tooltip="The pivots rendered by the tuned generator (the reconstruction)."),
                io.String.Output(display_name="info", tooltip="Steps run and the last LPIPS / L2 per face."),
            ],
        )

    @classmethod
    def execute(cls, generator, lpips, latents, images, steps, learning_rate, lpips_threshold, l2_weight, lpips_weight, locality_regularization,
                seed) -> io.NodeOutput:
        settings = TuningSettings(steps=steps, learning_rate=learning_rate, lpips_threshold=lpips_threshold, l2_weight=l2_weight,
                                  lpips_weight=lpips_weight, locality=locality_regularization)
        return tuning_outputs(generator, lpips, latents, images, settings, seed)


class SaveGenerator(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_SaveGenerator",
            display_name="Save Generator",
            category=CATEGORY,
            description="Writes a generator (e.g. the output of Pivotal Tuning) as .safetensors to models/stylegan, where Load StyleGAN2 "
            "Generator finds it after a refresh. An existing file is never overwritten: a number is appended.",
            inputs=[
                Generator.Input("generator", tooltip="The generator to save."),
                io.String.Input("name", default="pti_tuned", tooltip="File name without extension (letters, digits, '-', '_', '.', spaces)."),
            ],
            outputs=[io.String.Output(display_name="path", tooltip="The written file.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, generator, name) -> io.NodeOutput:
        path = save_generator(generator, unique_model_path("stylegan", name, ".safetensors", "generator"))
        return io.NodeOutput(path, ui={"text": (f"saved {getattr(generator, 'tuned_by', 'generator')} to {path}",)})


NODES: list[type[io.ComfyNode]] = [LoadLPIPS, ProjectLatents, PivotalTuning, SaveGenerator]
