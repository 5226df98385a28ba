"""Global-direction nodes: channel relevance (computed once and cached, or an official fs3.npy),
text -> StyleSpace direction, edits with one or several strengths, saving and combining directions."""
from __future__ import annotations

import math
import os
import re

import folder_paths
from comfy_api.latest import io

from ..styleclip_core.edits.channel_relevance import RelevanceJob
from ..styleclip_core.edits.directions import Direction as EditDirection
from ..styleclip_core.edits.relevance_cache import is_fs3_file, relevance_for, relevance_from_file
from ..styleclip_core.edits.global_directions import covers_every_layer, describe_coverage, num_relevance_channels
from ..styleclip_core.models.render import image_grid
from ..styleclip_core.precision import PRECISIONS, canonical
from .common import CATEGORY, Clip, Direction, Generator, Latent, NodeProgress, Relevance, model_files, unique_model_path, use

GLOBAL = CATEGORY + "/global"
COMPUTE = "compute for this generator and CLIP (cached)"
LAYERS = {"all conv layers": None, "up to 128 px (SingleChannel.py as written)": 128}


def parse_numbers(text: str, what: str) -> list[float]:
    """'-4, -2, 0, 2, 4' (commas, spaces or semicolons) -> [-4.0, -2.0, 0.0, 2.0, 4.0]."""
    parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a list of numbers (e.g. '-4, -2, 0, 2, 4')") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what}: give at least one finite number, found {text!r}")
    return values


class ChannelRelevance(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ChannelRelevance",
            display_name="Channel Relevance (global directions)",
            category=GLOBAL,
            description="What the global method needs for a generator: per-channel style statistics (100k sampled faces, no rendering; "
            "cached) and fs3, how each StyleSpace channel moves CLIP's image embedding. fs3 is read from models/styleclip_global "
            "(the official fs3.npy for FFHQ 1024 + OpenAI ViT-B/32, or a file computed here) or computed: hours on a GPU, weeks on a "
            "CPU (README). StyleGAN3 generators follow stylegan3-editing: every StyleSpace channel (the input's transform codes and ToRGB "
            "included), its statistics recipe (psi 0.5) and image preprocessing. A computation is cached under a name made of the generator's and CLIP's content hashes, reused whenever "
            "they match, and resumes where an interrupted run stopped.",
            inputs=[
                Generator.Input("generator", tooltip="The generator whose StyleSpace channels are measured."),
                io.Combo.Input(
                    "fs3", options=[COMPUTE, *[f for f in model_files("styleclip_global") if is_fs3_file(f)]], default=COMPUTE,
                    tooltip="An fs3 file from models/styleclip_global (the official fs3.npy matches stylegan2-ffhq-config-f and OpenAI's "
                    "ViT-B-32 only; for StyleGAN3, stylegan3-editing's delta_i_c.npy of that generator), or compute it for the connected generator and CLIP (a cached result is reused).",
                ),
                Clip.Input("clip", optional=True, tooltip="The CLIP model (needed to compute; with a file made here it is checked against the file)."),
                io.Int.Input("num_images", default=100, min=1, max=10000, tooltip="Faces each channel is probed on (reference: 100). Time grows linearly."),
                io.Combo.Input(
                    "layers", options=list(LAYERS), default="all conv layers",
                    tooltip="Conv layers to probe. 'all' gives every channel a relevance (as the released FFHQ file, 6048 rows at 1024 px); "
                    "'up to 128 px' is SingleChannel.py as written (5376 rows at 1024 px; finer layers are never edited). The extra layers cost little. "
                    "StyleGAN3: 'all' only (every StyleSpace channel, input and ToRGB included).",
                ),
                io.Int.Input("batch_size", default=16, min=2, max=1024, tooltip="Probe images rendered and encoded at once (GPU: 32-128; lower it if memory runs out). Results do not depend on it."),
                io.Combo.Input(
                    "precision", options=list(PRECISIONS), default="fp32",
                    tooltip="fp32 as the reference. bf16 / fp16 run generator and CLIP under autocast (a GPU speed option; "
                    "rows differ by rounding, see the README's parity figures) and are cached separately.",
                ),
                io.Int.Input("statistics_samples", default=100000, min=1000, max=1000000, step=1000, tooltip="Faces for the style statistics (reference: 100000)."),
                io.Boolean.Input(
                    "earlier_channels_at_mean", default=True,
                    tooltip="On: as the reference script runs. StyleGAN2 (SingleChannel.py): a shallow copy leaves every channel probed before at "
                    "its mean, and finished layers at their means. StyleGAN3 (create_delta_i_c.py): probed values are never restored, so every "
                    "channel probed before stays at mean + 5 std. Off: only the probed channel is changed.",
                ),
            ],
            outputs=[
                Relevance.Output(display_name="relevance", tooltip="fs3 with the generator and its style statistics, for Global Direction from Text."),
                io.String.Output(display_name="info", tooltip="Which file was used or written, its rows, and the time a computation took."),
            ],
        )

    @classmethod
    def validate_inputs(cls, precision):
        # Workflows saved before the pack had one precision vocabulary say float32 / bfloat16 /
        # float16 here: ComfyUI would refuse them as 'not in list', so this node checks itself.
        try:
            canonical(precision)
        except ValueError as e:
            return str(e)
        return True

    @classmethod
    def execute(cls, generator, fs3, num_images, layers, batch_size, precision, statistics_samples, earlier_channels_at_mean, clip=None) -> io.NodeOutput:
        use(generator, clip.net if clip is not None else None)
        folders = folder_paths.get_folder_paths("styleclip_global")
        progress = NodeProgress(1)
        if fs3 == COMPUTE:
            if clip is None:
                raise ValueError("computing channel relevance needs a CLIP model: connect Load CLIP, or choose an fs3 file")
            if covers_every_layer(generator) and LAYERS[layers] is not None:
                raise ValueError(f"layers {layers!r} is StyleCLIP's StyleGAN2 recipe: a StyleGAN3 generator's relevance covers every channel of "
                                 f"every StyleSpace key, input and ToRGB included (stylegan3-editing); choose {next(iter(LAYERS))!r}")
            job = RelevanceJob.for_generator(generator, num_images=num_images, max_resolution=LAYERS[layers], cumulative_mean=earlier_channels_at_mean, precision=precision)
            rel = relevance_for(generator, clip, folders, job, batch_size, statistics_samples, progress)
        else:
            rel = relevance_from_file(folder_paths.get_full_path_or_raise("styleclip_global", fs3), generator, folders, statistics_samples, clip, progress)
        rows, total = rel.fs3.shape[0], num_relevance_channels(generator)
        info = f"{os.path.basename(rel.source)}: fs3 [{rows}, {rel.fs3.shape[1]}] ({rows} of {total} {describe_coverage(generator)})"
        if rel.info.get("computed"):
            info += f", computed in {rel.info['seconds']:.0f} s ({rel.info['rendered']} probe images, {rel.info['encoded']} CLIP encodings)"
        elif fs3 == COMPUTE:
            info += ", reused from the cache"
        info += f"; statistics {os.path.basename(rel.info['statistics'])}"
        return io.NodeOutput(rel, info, ui={"text": (info,)})


class GlobalDirectionFromText(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_GlobalDirection",
            display_name="Global Direction from Text",
            category=GLOBAL,
            description="StyleCLIP's global direction: the CLIP text direction from the neutral to the target text (each averaged over 79 "
            "prompt templates) projected on every channel's relevance; channels with relevance below beta are left out, the rest scaled "
            "so the strongest is 1, times each channel's standard deviation. Also lists how many channels other betas would keep.",
            inputs=[
                Relevance.Input("relevance", tooltip="From Channel Relevance."),
                Clip.Input("clip", tooltip="The CLIP model fs3 was made with (OpenAI's ViT-B-32 for the official fs3.npy)."),
                io.String.Input("neutral", default="face", tooltip="What the image shows now, e.g. 'face'."),
                io.String.Input("target", default="face with blonde hair", tooltip="What it should show, e.g. 'face with blonde hair'. Describe the change, not a new image."),
                io.Float.Input("beta", default=0.15, min=0.0, max=1.0, step=0.01, tooltip="Disentanglement threshold (reference UI: 0.08-0.3, default 0.15). Higher: fewer channels, a narrower edit; too high keeps none (an error says the largest usable value)."),
                io.String.Input("beta_report", default="0.08, 0.1, 0.15, 0.2, 0.25, 0.3", tooltip="Betas to report channel counts for (the report output), to choose beta."),
            ],
            outputs=[
                Direction.Output(display_name="direction", tooltip="The StyleSpace direction (unit strength), for Apply Direction, saving and combining."),
                io.String.Output(display_name="report", tooltip="Channels kept at beta and at each beta of beta_report."),
            ],
        )

    @classmethod
    def execute(cls, relevance, clip, neutral, target, beta, beta_report) -> io.NodeOutput:
        use(clip.net)
        betas = parse_numbers(beta_report, "beta_report") if beta_report.strip() else []
        counts = relevance.channels_kept(clip, neutral, target, betas)
        direction = relevance.direction(clip, neutral, target, beta)
        report = f"{neutral!r} -> {target!r}: beta {beta:g} keeps {direction.num_channels} channels"
        if betas:
            report += "; " + ", ".join(f"beta {b:g}: {n}" for b, n in zip(betas, counts))
        notes = [clip.context_note(text, name, templates=True) for text, name in ((neutral, "neutral"), (target, "target"))]
        report += "".join(f"; {n}" for n in notes if n)
        return io.NodeOutput(direction, report, ui={"text": (report,)})


class ApplyGlobalDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ApplyGlobalDirection",
            display_name="Apply Direction",
            category=GLOBAL,
            description="Edits latents along any direction (text / global, SeFa, GANSpace, a loaded file), code + alpha x direction "
            "for each alpha: a W or W+ direction on W+ latents edits the W+ rows; a StyleSpace direction, or StyleSpace latents, edit in "
            "StyleSpace (a W / W+ direction is turned into StyleSpace exactly). Several alphas (e.g. '-4, -2, 0, 2, 4') give every "
            "face at each strength in turn: a strip per face, from the first alpha to the last.",
            inputs=[
                Generator.Input("generator", tooltip="The generator the latents and direction belong to."),
                Latent.Input("latents", tooltip="Codes to edit (W+ or StyleSpace)."),
                Direction.Input("direction", tooltip="From Global Direction from Text, SeFa Direction, GANSpace Direction, Load Direction or Combine Directions."),
                io.String.Input("alphas", default="4.1", tooltip="Edit strength(s), comma-separated; 0 = unedited, negative = the opposite edit. Text directions: "
                                "StyleCLIP's UI uses -10 to 10, default 4.1; SeFa: rosinality's degree (5) times the truncation (0.7); GANSpace: standard deviations (2 in the paper)."),
            ],
            outputs=[
                Latent.Output(display_name="latents", tooltip="Edited codes (W+ for a W / W+ direction on W+ latents, else StyleSpace), face-major: face 0 at every alpha, then face 1, ..."),
                Latent.Output(display_name="originals", tooltip="The input codes repeated in the same order (the 'original' of Local Edit)."),
                io.Int.Output(display_name="alphas_count", tooltip="Number of alphas: the images per face, e.g. the columns of Image Grid."),
            ],
        )

    @classmethod
    def execute(cls, generator, latents, direction, alphas) -> io.NodeOutput:
        values = parse_numbers(alphas, "alphas")
        use(generator)
        edited, originals = direction.apply(generator, latents.to(generator.w_avg.device), values, names={"latents": "latents", "alphas": "alphas"})
        return io.NodeOutput(edited, originals, len(values))


class CombineDirections(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_CombineDirections",
            display_name="Combine Directions",
            category=GLOBAL,
            description="weight_a x direction_a + weight_b x direction_b (chain the node for more). With only direction_a it rescales it. "
            "Directions of different spaces meet in the wider one (W < W+ < StyleSpace); turning W into StyleSpace needs the generator.",
            inputs=[
                Direction.Input("direction_a", tooltip="A direction (any space: text, SeFa, GANSpace, a file)."),
                io.Float.Input("weight_a", default=1.0, min=-10.0, max=10.0, step=0.05, tooltip="Its weight."),
                Direction.Input("direction_b", optional=True, tooltip="Another direction of the same generator."),
                io.Float.Input("weight_b", default=1.0, min=-10.0, max=10.0, step=0.05, tooltip="Its weight."),
                Generator.Input("generator", optional=True, tooltip="Needed only to combine a W / W+ direction with a StyleSpace one (W is turned into StyleSpace exactly)."),
            ],
            outputs=[Direction.Output(display_name="direction", tooltip="The weighted sum.")],
        )

    @classmethod
    def execute(cls, direction_a, weight_a, weight_b, direction_b=None, generator=None) -> io.NodeOutput:
        if direction_b is None:
            return io.NodeOutput(direction_a.scaled(weight_a))
        return io.NodeOutput(EditDirection.combine([direction_a, direction_b], [weight_a, weight_b], generator))


def _describe(direction: EditDirection) -> str:
    info = direction.info
    if direction.space != "s" or not ("combined" in info or "target" in info):
        return direction.describe()
    if "combined" in info:
        return " + ".join(f"{p.get('weight', 1):g} x ({p.get('target', '?')})" for p in info["combined"]) + f": {direction.num_channels} channels"
    return f"{info.get('neutral', '?')!r} -> {info.get('target', '?')!r}, beta {info.get('beta', '?')}: {direction.num_channels} channels"


class SaveDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_SaveDirection",
            display_name="Save Direction",
            category=GLOBAL,
            description="Writes a direction to models/styleclip_directions as .safetensors (numbered if the name exists; never overwrites), "
            "for Load Direction.",
            inputs=[
                Direction.Input("direction", tooltip="The direction to save."),
                io.String.Input("name", default="direction", tooltip="File name without extension (letters, digits, '-', '_', '.', spaces)."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, direction, name) -> io.NodeOutput:
        path = unique_model_path("styleclip_directions", name, ".safetensors", "direction")
        direction.save(path)
        return io.NodeOutput(ui={"text": (f"saved {_describe(direction)} to {path}",)})


class LoadDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadDirection",
            display_name="Load Direction",
            category=GLOBAL,
            description="Reads a direction from models/styleclip_directions: one saved by Save Direction (.safetensors, any space), or "
            "a single array from another tool (.npy, .pt, .pth or .safetensors): [D] or [1, D] is a W direction (e.g. an InterFaceGAN "
            "boundary), [n_latent, D] a W+ one. Arrays are used as stored (no normalisation). Files are read without running code "
            "(no pickled objects).",
            inputs=[io.Combo.Input("direction_name", options=model_files("styleclip_directions"), tooltip="A direction file in ComfyUI/models/styleclip_directions (.safetensors, .npy, .pt, .pth).")],
            outputs=[
                Direction.Output(display_name="direction", tooltip="The direction."),
                io.String.Output(display_name="info", tooltip="What it was made with (texts, beta and channel count; the component; or the file's shape)."),
            ],
        )

    @classmethod
    def execute(cls, direction_name) -> io.NodeOutput:
        direction = EditDirection.load(folder_paths.get_full_path_or_raise("styleclip_directions", direction_name))
        info = f"{direction_name}: {_describe(direction)}"
        return io.NodeOutput(direction, info, ui={"text": (info,)})


class ImageGrid(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ImageGrid",
            display_name="Image Grid",
            category=CATEGORY,
            description="Lays an image batch out as one image, row by row (e.g. one row per face, one column per alpha). "
            "A last row that is not full is padded with black.",
            inputs=[
                io.Image.Input("images", tooltip="Images of one size."),
                io.Int.Input("columns", default=5, min=1, max=256, tooltip="Images per row (connect Apply Direction's alphas_count)."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The grid, a batch of one image.")],
        )

    @classmethod
    def execute(cls, images, columns) -> io.NodeOutput:
        return io.NodeOutput(image_grid(images, columns))


NODES = [ChannelRelevance, GlobalDirectionFromText, ApplyGlobalDirection, CombineDirections, SaveDirection, LoadDirection, ImageGrid]
