"""Mapper training node: StyleCLIP's mapper training with resumable checkpoints in models/styleclip_mappers."""
from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from ..styleclip_core.edits.mapper_training import OPTIMIZERS, TrainingOptions, train_mapper
from ..styleclip_core.edits.training_checkpoints import checkpoint_path
from ..styleclip_core.models.latents import sample_latents
from ..styleclip_core.models.mapper import MAPPER_TYPES
from .common import CATEGORY, IF_EXISTS_OPTIONS, Generator, Latent, Loss, Mapper, NodeProgress, gradient_capable, managed, show_text, use


class TrainMapper(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_TrainMapper",
            display_name="Train Latent Mapper",
            category=CATEGORY + "/mapper",
            description="Trains a StyleCLIP latent mapper that edits any face toward the connected losses in one step "
            "(StyleCLIP's mapper training: w_hat = w + 0.1 x mapper(w), Ranger, batch 2, lr 0.5). The checkpoint in "
            "models/styleclip_mappers holds the mapper (Load Latent Mapper reads it) and what resuming needs; it is written "
            "every save_every steps, at the end and when the run is cancelled. Training codes: the latents input, or "
            "sample_count faces sampled from the generator.",
            inputs=[
                Generator.Input("generator", tooltip="The generator to train with (its stored noise maps are used, as in StyleCLIP)."),
                Loss.Input("loss", tooltip="What the mapper learns to minimise, averaged over each batch. StyleCLIP's: CLIP Loss (weight 1) "
                           "+ Latent L2 Loss (reduction 'mean', weight 0.8) + Identity Loss (weight 0.1)."),
                io.String.Input("name", default="mapper", tooltip="Checkpoint file name in models/styleclip_mappers (.safetensors is added)."),
                io.Combo.Input(
                    "if_exists", options=list(IF_EXISTS_OPTIONS), default="new numbered file",
                    tooltip="When the file exists: 'new numbered file' writes name_00001.safetensors (the next free number); "
                    "'resume' continues its run up to steps (same settings, loss and training codes required); 'overwrite' starts afresh and replaces it.",
                ),
                io.Int.Input("steps", default=50000, min=1, max=10_000_000, tooltip="Training steps in all, resumed steps included (StyleCLIP: 50000)."),
                io.Combo.Input("mapper_type", options=list(MAPPER_TYPES), default="LevelsMapper",
                               tooltip="LevelsMapper: separate mappers for coarse, medium and fine W+ rows (StyleCLIP's default). SingleMapper: one for all rows. "
                               "StyleSpace mappers: one per StyleSpace layer (all, or all but toRGB); they output StyleSpace latents."),
                io.Boolean.Input("coarse", default=True, tooltip="LevelsMapper: edit W+ rows 0-3 (pose, face shape)."),
                io.Boolean.Input("medium", default=True, tooltip="LevelsMapper: edit W+ rows 4-7 (features, hair style)."),
                io.Boolean.Input("fine", default=True, tooltip="LevelsMapper: edit W+ rows 8 and up (colours, fine detail)."),
                io.Int.Input("batch_size", default=2, min=1, max=64, tooltip="Faces per step (StyleCLIP: 2)."),
                io.Float.Input("learning_rate", default=0.5, min=0.0001, max=10.0, step=0.01, tooltip="StyleCLIP: 0.5."),
                io.Combo.Input("optimizer", options=list(OPTIMIZERS), default="ranger",
                               tooltip="'ranger' (StyleCLIP's default: RAdam + Lookahead + gradient centralisation) or 'adam'."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, tooltip="Seed of the mapper's initial weights, of the batch order and of sampled training faces."),
                io.Int.Input("sample_count", default=5000, min=1, max=1_000_000, tooltip="Faces sampled from the generator for training when no latents are connected (StyleCLIP: 5000)."),
                io.Float.Input("truncation_psi", default=0.7, min=0.0, max=1.5, step=0.01, tooltip="Truncation of the sampled training faces (StyleCLIP: 0.7)."),
                io.Int.Input("save_every", default=2000, min=0, max=10_000_000, tooltip="Write the checkpoint every this many steps (StyleCLIP: 2000); 0 = only at the end or when cancelled."),
                io.Int.Input("preview_every", default=100, min=1, max=100_000, tooltip="Show the batch's original faces above their edits, and the losses, every this many steps."),
                Latent.Input("latents", optional=True, tooltip="Training codes (e.g. Load Latent Folder of e4e inversions, StyleCLIP's train_faces.pt via Load Latents). "
                             "Leave empty to sample sample_count faces from the generator."),
            ],
            outputs=[
                Mapper.Output(display_name="mapper", tooltip="The trained mapper (connect to Apply Latent Mapper)."),
                io.String.Output(display_name="mapper_name", tooltip="The checkpoint's file name in models/styleclip_mappers."),
                io.String.Output(display_name="info", tooltip="File, steps and the last step's losses."),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, generator, loss, name, if_exists, steps, mapper_type, coarse, medium, fine, batch_size, learning_rate, optimizer,
                seed, sample_count, truncation_psi, save_every, preview_every, latents=None) -> io.NodeOutput:
        folder = folder_paths.get_folder_paths("styleclip_mappers")[0]
        os.makedirs(folder, exist_ok=True)
        path, resume = checkpoint_path(folder, name, IF_EXISTS_OPTIONS[if_exists])
        options = TrainingOptions(mapper_type, coarse, medium, fine, batch_size, learning_rate, optimizer, seed)
        use(generator, *loss.networks)
        with gradient_capable():
            codes = latents if latents is not None else sample_latents(generator, sample_count, seed, truncation_psi)
            result = train_mapper(
                generator, codes, loss, path, steps, options, resume=resume, overwrite=if_exists == "overwrite",
                save_every=save_every, preview_every=preview_every, progress=NodeProgress(steps), report=show_text,
            )
        file = os.path.basename(path)
        info = f"{file}: {mapper_type} for {result.mapper.options['description']!r}, step {result.step}/{steps}"
        if result.resumed_from is not None:
            info += f" (resumed at step {result.resumed_from})"
        if result.history:
            info += "; last step: " + ", ".join(f"{k} {v:.4f}" for k, v in result.history[-1].items())
        return io.NodeOutput(managed(result.mapper), file, info, ui={"text": (info,)})


NODES = [TrainMapper]
