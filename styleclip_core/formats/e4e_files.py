"""Read e4e's official checkpoint (``e4e_ffhq_encode.pt``): the encoder with its average latent,
and the StyleGAN2 generator it was trained with, from one file (``weights_only=True``)."""
from __future__ import annotations

import torch

from ..errors import CheckpointError
from ..models.e4e import Encoder4Editing
from ..models.generator import Generator
from ..models.stylegan3 import is_stylegan3_state
from .files import describe_object, load_torch_file, strip_prefix
from .generator_files import load_generator

EXPECTED_FILE = "an e4e checkpoint ({'state_dict': encoder.* + decoder.*, 'latent_avg', 'opts'} as in e4e_ffhq_encode.pt)"


def encoder_from_checkpoint(obj, path: str) -> Encoder4Editing:
    """The encoder (with its average latent) inside an e4e checkpoint object."""
    state = obj.get("state_dict") if isinstance(obj, dict) else None
    if isinstance(state, dict) and is_stylegan3_state(strip_prefix(state, "decoder.")):
        opts = obj.get("opts") or {}
        kind = f"a {opts['encoder_type']} encoder" if isinstance(opts, dict) and opts.get("encoder_type") else "an encoder"
        raise CheckpointError(path, EXPECTED_FILE, f"{kind} for a StyleGAN3 generator (its decoder.* is a StyleGAN3, as in stylegan3-editing's "
                              "ReStyle files); inverting photos into a StyleGAN3 is not supported: Load e4e Encoder reads e4e's StyleGAN2 "
                              "encoder (e4e_ffhq_encode.pt, with its StyleGAN2 generator); to fit a photo with a StyleGAN3 generator use "
                              "Project Latents (then Pivotal Tuning)")
    if not isinstance(state, dict) or "encoder.input_layer.0.weight" not in state:
        raise CheckpointError(path, EXPECTED_FILE, describe_object(obj if not isinstance(state, dict) else state))
    opts = obj.get("opts") or {}
    encoder_type = opts.get("encoder_type", "Encoder4Editing")
    if encoder_type != "Encoder4Editing":
        raise CheckpointError(path, EXPECTED_FILE, f"a {encoder_type} checkpoint (opts.encoder_type); only e4e's Encoder4Editing is supported")
    if str(opts.get("dataset_type", "")).startswith("cars"):
        raise CheckpointError(path, "an e4e encoder for square images (faces)", "the cars encoder, whose 192x256 input and cropped output are not supported")
    start = bool(opts.get("start_from_latent_avg", True))
    encoder = Encoder4Editing.from_state_dict(strip_prefix(state, "encoder."), start, source=path)
    latent_avg = obj.get("latent_avg")
    if latent_avg is not None:
        rows = (encoder.style_count, encoder.style_dim)
        if tuple(latent_avg.shape) not in (rows, rows[1:]):
            raise CheckpointError(path, f"latent_avg of shape {list(rows)} or [{rows[1]}]", f"shape {list(latent_avg.shape)}")
        encoder.latent_avg = latent_avg.float().expand(rows).clone()
    encoder.has_latent_avg = latent_avg is not None
    return encoder


def check_pair(encoder: Encoder4Editing, g: Generator, path: str):
    if (encoder.style_count, encoder.style_dim) != (g.n_latent, g.style_dim):
        raise CheckpointError(
            path, f"an encoder for the generator in the same file (W+ [{g.n_latent}, {g.style_dim}] for {g.size}px)",
            f"an encoder producing W+ [{encoder.style_count}, {encoder.style_dim}]",
        )


def load_e4e(path: str, device: torch.device | str = "cpu", ops_backend: str = "auto") -> tuple[Encoder4Editing, Generator]:
    """The encoder and the generator it was trained with, both from one ``e4e_ffhq_encode.pt``."""
    obj = load_torch_file(path, EXPECTED_FILE)
    encoder = encoder_from_checkpoint(obj, path)
    del obj
    # The generator loader reads the file a second time: one loading path for every generator file.
    g = load_generator(path, device, ops_backend)
    check_pair(encoder, g, path)
    if encoder.start_from_latent_avg and not encoder.has_latent_avg:
        # pSp's fallback for checkpoints saved without their average: the mean of 10000 mapped samples.
        encoder.latent_avg = g.mean_latent(10000).cpu().expand(encoder.style_count, -1).clone()
    encoder.source = g.source
    encoder.is_tiny_stand_in = g.is_tiny_stand_in
    return encoder.to(device), g
