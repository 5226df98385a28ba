"""Domain adaptation nodes: StyleGAN-NADA training with resumable checkpoints in models/stylegan, and loading the result."""
from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from ..styleclip_core.edits.domain_adaptation import PHASES, DomainAdaptationSettings, adapt_domain
from ..styleclip_core.edits.training_checkpoints import checkpoint_path
from ..styleclip_core.formats import generator_files
from .common import CATEGORY, IF_EXISTS_OPTIONS, Clip, Generator, NodeProgress, gradient_capable, managed, model_files, show_text, use
from .generator_nodes import load_managed, loader_inputs, stand_in_marked

PREVIEW_COUNT = 4  # fixed faces in the progress preview (frozen generator above the trained one)


class TrainDomain(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_TrainDomain",
            display_name="Train Domain (NADA)",
            category=CATEGORY + "/domain",
            description="Moves the whole generator to a new domain named by text (StyleGAN-NADA): a copy of the generator is fine-tuned "
            "so that, for the same codes, the CLIP-space change from the frozen generator's image to the copy's follows the change from "
            "source_text to target_text (directional CLIP loss over the 79 ImageNet templates; Adam; each step trains the layers chosen "
            "by the adaptive selection). Every face it renders, sampled or inverted, is then in the new domain. The checkpoint in "
            "models/stylegan is an ordinary generator file (Load StyleGAN2 Generator and Load Adapted Generator read it) that also "
            "holds what resuming needs; it is written every save_every steps, at the end and when the run is cancelled. "
            "Defaults: the StyleGAN-NADA README command (photo -> sketch, batch 2, lr 0.002, 301 iterations, auto_layer_k 18).",
            inputs=[
                Generator.Input("generator", tooltip="The generator to adapt (it stays as it is: the frozen one; a trained copy comes out)."),
                Clip.Input("clip", tooltip="CLIP that judges the change (the reference: OpenAI's ViT-B/32). Train Domain always uses StyleGAN-NADA's "
                           "image preprocessing (bicubic resize to 224, centre crop, CLIP's mean/std), whatever Load CLIP's image_preprocessing."),
                io.String.Input("source_text", default="photo", tooltip="The domain the generator renders now, a class name put into the 79 ImageNet "
                                "templates ('a photo of a {}.', ...). The reference's command: 'photo'."),
                io.String.Input("target_text", default="sketch", tooltip="The domain to move to, in the same templates. The reference's command: 'sketch'."),
                io.String.Input("name", default="nada_photo_to_sketch", tooltip="Checkpoint file name in models/stylegan (.safetensors is added), "
                                "where Load StyleGAN2 Generator and Load Adapted Generator list it after a refresh."),
                io.Combo.Input(
                    "if_exists", options=list(IF_EXISTS_OPTIONS), default="new numbered file",
                    tooltip="When the file exists: 'new numbered file' writes name_00001.safetensors (the next free number); 'resume' continues "
                    "its run up to steps (the same generator, CLIP models and settings required; a run already at steps just loads); "
                    "'overwrite' starts afresh and replaces it.",
                ),
                io.Int.Input("steps", default=300, min=1, max=1_000_000, tooltip="Training steps in all, resumed steps included "
                             "(the README command: --iter 301, i.e. 301 updates; at 1024 px a GPU job of minutes)."),
                io.Int.Input("batch_size", default=2, min=1, max=64, tooltip="Faces per step (the README command: 2; the argparse default is 16)."),
                io.Float.Input("learning_rate", default=0.002, min=0.0001, max=1.0, step=0.0001,
                               tooltip="The reference's --lr (0.002); Adam runs at 0.8 x this with betas (0, 0.99^0.8), as train.py sets it."),
                io.Int.Input("auto_layer_k", default=18, min=1, max=64,
                             tooltip="Adaptive layer selection: train the k layers whose W+ rows move most in the selection pass (the README command: 18). "
                             "Capped at the generator's W+ rows (18 at 1024 px); at or above them every row is trained and the selection pass is skipped."),
                io.Int.Input("auto_layer_iters", default=1, min=0, max=100,
                             tooltip="SGD steps of the selection pass (the README command: 1). 0 = no selection: train the layers of phase every step."),
                io.Int.Input("auto_layer_batch", default=8, min=1, max=64, tooltip="Codes of the selection pass (the README command: 8)."),
                io.Combo.Input("phase", options=list(PHASES), default="default",
                               tooltip="The layers trained when auto_layer_iters is 0 (the reference's get_training_layers): 'default' the 4x4 input, "
                               "conv1 and every conv; 'texture' input, conv1, convs 2-9; 'shape' input, conv1, convs 0-1; 'shape_expanded' input, "
                               "conv1, convs 0-2; 'no_fine' input, conv1, convs 0-9; 'all' every module, mapping and ToRGB included. Unused with selection."),
                io.Float.Input("lambda_direction", default=1.0, min=0.0, max=100.0, step=0.01,
                               tooltip="Weight of the directional CLIP loss, 1 - cos(image change, text direction) (the reference: 1)."),
                io.Float.Input("lambda_global", default=0.0, min=0.0, max=100.0, step=0.01,
                               tooltip="Weight of the global CLIP loss toward 'a <target_text>' (the reference: 0)."),
                io.Float.Input("lambda_manifold", default=0.0, min=0.0, max=100.0, step=0.01,
                               tooltip="Weight of the angle ('manifold') loss: the frozen-trained image cosine kept at the source-target text cosine (the reference: 0)."),
                io.Float.Input("clip_weight", default=1.0, min=0.0, max=100.0, step=0.01, tooltip="Weight of clip's terms (the README command: 1 for ViT-B/32)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF,
                             tooltip="Seed of every random draw (codes, noise maps, the selection pass, the preview faces), per step: a resumed run draws "
                             "what an uninterrupted one would."),
                io.Int.Input("save_every", default=50, min=0, max=1_000_000,
                             tooltip="Write the checkpoint every this many steps; 0 = only at the end or when cancelled (the reference saves only with --save_interval)."),
                io.Int.Input("preview_every", default=25, min=1, max=100_000,
                             tooltip=f"Show {PREVIEW_COUNT} fixed faces, the frozen generator's above the trained one's, and the losses, every this many steps."),
                Clip.Input("clip_2", optional=True, tooltip="A second CLIP whose terms are added (the README command: ViT-B/16 beside ViT-B/32, weights 1 and 1). "
                           "Leave empty for one CLIP."),
                io.Float.Input("clip_2_weight", default=1.0, min=0.0, max=100.0, step=0.01, optional=True,
                               tooltip="Weight of clip_2's terms (the README command: 1 for ViT-B/16). Unused without clip_2."),
            ],
            outputs=[
                Generator.Output(display_name="generator", tooltip="The adapted generator: connect it to Synthesize Images or any edit node, with any latents of the original."),
                io.String.Output(display_name="generator_name", tooltip="The checkpoint's file name in models/stylegan."),
                io.String.Output(display_name="info", tooltip="File, texts, steps and the last step's losses."),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, generator, clip, source_text, target_text, name, if_exists, steps, batch_size, learning_rate, auto_layer_k, auto_layer_iters,
                auto_layer_batch, phase, lambda_direction, lambda_global, lambda_manifold, clip_weight, seed, save_every, preview_every,
                clip_2=None, clip_2_weight=1.0) -> io.NodeOutput:
        folder = folder_paths.get_folder_paths("stylegan")[0]
        os.makedirs(folder, exist_ok=True)
        path, resume = checkpoint_path(folder, name, IF_EXISTS_OPTIONS[if_exists])
        clips = [clip] if clip_2 is None else [clip, clip_2]
        settings = DomainAdaptationSettings(
            source=source_text, target=target_text, batch_size=batch_size, learning_rate=learning_rate, lambda_direction=lambda_direction,
            lambda_global=lambda_global, lambda_manifold=lambda_manifold, auto_layer_k=auto_layer_k, auto_layer_iters=auto_layer_iters,
            auto_layer_batch=auto_layer_batch, phase=phase, clip_weights=(clip_weight, clip_2_weight)[:len(clips)], seed=seed,
        )
        use(generator, *(c.net for c in clips))
        with gradient_capable():
            result = adapt_domain(
                generator, clips, settings, path, steps, resume=resume, overwrite=if_exists == "overwrite", save_every=save_every,
                preview_every=preview_every, preview_count=PREVIEW_COUNT, progress=NodeProgress(steps), report=show_text,
            )
        file = os.path.basename(path)
        info = f"{file}: {settings.source!r} -> {settings.target!r}, step {result.step}/{steps}"
        if result.resumed_from is not None:
            info += f" (resumed at step {result.resumed_from})"
        if result.history:
            info += "; last step: " + ", ".join(f"{k} {v:.4f}" for k, v in result.history[-1].as_dict().items())
        return io.NodeOutput(managed(result.generator), file, info, ui={"text": (info,)})


def adapted_generator_files() -> list[str]:
    """The .safetensors files of models/stylegan that hold a domain adaptation (their metadata
    names its texts); only the safetensors header is read, and a file that cannot be read is left out."""
    from safetensors import safe_open

    found = []
    for name in model_files("stylegan"):
        if not name.lower().endswith(".safetensors"):
            continue
        try:
            with safe_open(folder_paths.get_full_path("stylegan", name), "pt") as f:
                meta = f.metadata() or {}
        except Exception:  # unreadable, truncated or not safetensors: not listed
            continue
        if generator_files.ADAPTATION_KEY in meta:
            found.append(name)
    return found


class LoadAdaptedGenerator(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LoadAdaptedGenerator",
            display_name="Load Adapted Generator (NADA)",
            category=CATEGORY + "/domain",
            description="Loads a generator that Train Domain (NADA) moved to a new domain: the files of models/stylegan whose metadata holds "
            "a domain adaptation (its texts, steps and settings), e.g. a Train Domain checkpoint. It is an ordinary generator: render it "
            "with any latents of the generator it started from.",
            inputs=[
                io.Combo.Input("generator_name", options=adapted_generator_files(),
                               tooltip="An adapted generator in ComfyUI/models/stylegan (Train Domain writes them there; refresh after training)."),
                *loader_inputs(),
            ],
            outputs=[
                Generator.Output(display_name="generator", tooltip="The adapted generator."),
                io.String.Output(display_name="info", tooltip="Source -> target text, steps trained and the generator it started from."),
            ],
        )

    @classmethod
    def execute(cls, generator_name, ops_backend, precision) -> io.NodeOutput:
        g, ops = load_managed(generator_name, ops_backend, precision)
        a = getattr(g, "adaptation", None)
        if a is None:
            raise ValueError(f"{generator_name} holds no domain adaptation (not written by Train Domain): load it with Load StyleGAN2 Generator")
        info = stand_in_marked(g, (
            f"{generator_name}: {a.get('source_text')!r} -> {a.get('target_text')!r}, {a.get('steps')} steps of StyleGAN-NADA "
            f"from {a.get('from_generator') or 'an unnamed generator'}; {g.size}px, W+ [{g.n_latent}, {g.style_dim}]; {ops}"
        ))
        return io.NodeOutput(g, info, ui={"text": (info,)})


NODES: list[type[io.ComfyNode]] = [TrainDomain, LoadAdaptedGenerator]
