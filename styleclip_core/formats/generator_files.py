"""Load StyleGAN2 generators from the official formats; save and convert to ``.safetensors``.

Nothing here executes code from a file: ``.pt`` files are read with ``torch.load(weights_only=True)``,
``.pkl`` files with a restricted unpickler (``nvidia_pickle``), ``.safetensors`` hold tensors only.
"""
from __future__ import annotations

import json
import os

import torch

from ..errors import CheckpointError
from ..models.generator import Generator
from ..models.stylegan3 import StyleGAN3Generator, config_from_init_kwargs, is_stylegan3_state
from . import nvidia_pickle
from .files import TINY_MARK, TRAINING_PREFIX, check_finite, describe_object, digest, load_torch_file, module_fingerprint, read_safetensors, save_atomic, strip_prefix

GENERATOR_EXTENSIONS = (".pt", ".pth", ".pkl", ".safetensors")
SAFETENSORS_FORMAT = "styleclip-generator"
# Metadata of a generator trained to a new domain (edits.domain_adaptation): its texts and settings.
ADAPTATION_KEY = "domain_adaptation"


def generator_state_from_torch(obj, path: str) -> tuple[dict, torch.Tensor | None]:
    """Find the generator inside a ``.pt`` object: rosinality ``{'g_ema', 'latent_avg'}``, a bare
    ``g_ema`` state dict, or the ``decoder.*`` copy inside e4e / StyleCLIP mapper checkpoints."""
    expected = "a StyleGAN2 generator checkpoint ({'g_ema': ..., 'latent_avg': ...} as in stylegan2-ffhq-config-f.pt)"
    if not isinstance(obj, dict):
        raise CheckpointError(path, expected, describe_object(obj))
    if isinstance(obj.get("g_ema"), dict):
        return obj["g_ema"], obj.get("latent_avg")
    if "style.1.weight" in obj or is_stylegan3_state(obj):  # a bare g_ema, or a StyleGAN3 state dict (stylegan3-editing's .pt)
        return obj, None
    inner = obj.get("state_dict")
    if isinstance(inner, dict) and "decoder.style.1.weight" in inner:
        latent_avg = obj.get("latent_avg")
        if isinstance(latent_avg, torch.Tensor) and latent_avg.ndim == 2:
            latent_avg = latent_avg[0]  # e4e stores the W average repeated over the W+ rows
        return strip_prefix(inner, "decoder."), latent_avg
    raise CheckpointError(path, expected, describe_object(obj))


def read_generator_state(path: str) -> tuple[dict, torch.Tensor | None, dict | None]:
    """(state dict, W average or None, config or None) from any supported file: a StyleGAN2
    generator in rosinality's names, or a StyleGAN3 one in NVIDIA's (config ``architecture``
    'stylegan3'; its W average is in the state dict)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pt", ".pth"):
        obj = load_torch_file(path, "a StyleGAN2 generator checkpoint")
        state, w_avg = generator_state_from_torch(obj, path)
        config = {TINY_MARK: True} if isinstance(obj, dict) and obj.get(TINY_MARK) else None
        if is_stylegan3_state(state):
            config = {**(config or {}), "architecture": StyleGAN3Generator.architecture}
        return state, w_avg, config
    if ext == ".pkl":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file (expected an NVIDIA StyleGAN2 pickle)")
        data, _ = nvidia_pickle.read_pickle(path)
        if isinstance(data, tuple):
            ada = nvidia_pickle.tf_to_ada(nvidia_pickle.tf_variables(data, path), path)
        else:
            ada, kwargs = nvidia_pickle.ada_state_dict(data, path)
            if is_stylegan3_state(ada):
                check_finite(ada, path, "an NVIDIA StyleGAN3 pickle")
                tiny = {TINY_MARK: True} if data.get(TINY_MARK) else {}
                try:
                    return ada, None, {"architecture": StyleGAN3Generator.architecture, **config_from_init_kwargs(kwargs), **tiny}
                except ValueError as e:
                    raise CheckpointError(path, "an unconditional StyleGAN3 generator", str(e)) from None
        check_finite(ada, path, "an NVIDIA StyleGAN2 pickle")
        state, w_avg = nvidia_pickle.ada_to_rosinality(ada, path)
        return state, w_avg, None
    if ext == ".safetensors":
        tensors, meta = read_safetensors(path, "a .safetensors generator")
        config = json.loads(meta["config"]) if "config" in meta else None
        if config is not None and ADAPTATION_KEY in meta:
            config[ADAPTATION_KEY] = json.loads(meta[ADAPTATION_KEY])
        # a training checkpoint's optimiser state is not part of the generator
        tensors = {k: v for k, v in tensors.items() if not k.startswith(TRAINING_PREFIX)}
        w_avg = tensors.pop("latent_avg", None)
        if "style.1.weight" not in tensors:
            tensors = strip_prefix(tensors, "g_ema.") or tensors
        return tensors, w_avg, config
    raise CheckpointError(path, f"a generator file ({', '.join(GENERATOR_EXTENSIONS)})", f"extension {ext or '(none)'}")


def load_generator(path: str, device: torch.device | str = "cpu", ops_backend: str = "auto") -> Generator | StyleGAN3Generator:
    """Load a generator (eval mode, frozen): StyleGAN2 from a rosinality ``.pt``, an NVIDIA ``.pkl``
    (TensorFlow or stylegan2-ada-pytorch) or our ``.safetensors``; StyleGAN3 (T or R) from an
    NVIDIA ``.pkl`` (its G_ema and init kwargs), a stylegan3-editing ``.pt`` state dict or our
    ``.safetensors``. The architecture comes from the file itself."""
    state, w_avg, config = read_generator_state(path)
    tiny = bool(config and config.pop(TINY_MARK, False))
    adaptation = config.pop(ADAPTATION_KEY, None) if config else None
    if (config or {}).get("architecture") == StyleGAN3Generator.architecture:
        try:
            g = StyleGAN3Generator.from_state_dict(state, config if len(config) > 1 else None, source=path)
        except ValueError as e:
            raise CheckpointError(path, "a StyleGAN3 generator state dict in NVIDIA's names", str(e)) from None
        w_avg = None  # in the state dict (mapping.w_avg)
    else:
        try:
            g = Generator.from_state_dict(state, config or None, source=path)
        except ValueError as e:
            raise CheckpointError(path, "a StyleGAN2 generator state dict in rosinality layout", str(e)) from None
    if w_avg is not None:
        if tuple(w_avg.shape) != (g.style_dim,):
            raise CheckpointError(path, f"latent_avg of shape [{g.style_dim}]", f"shape {list(w_avg.shape)}")
        g.w_avg.copy_(w_avg)
        g.has_w_avg = True
    g.source = os.path.basename(path)
    g.is_tiny_stand_in = tiny
    if adaptation is not None:
        g.adaptation = adaptation
    return g.eval().requires_grad_(False).set_ops_backend(ops_backend).to(device)


def save_generator(g: Generator, path: str, overwrite: bool = False, training_tensors: dict | None = None, metadata: dict | None = None) -> str:
    """Write ``g`` as ``.safetensors`` (rosinality keys, config in metadata, a domain adaptation's
    texts and settings when ``g`` has them); never overwrites an existing file unless ``overwrite``;
    writes to a temporary name, then renames. A trainer's checkpoint adds ``training_tensors``
    (under ``training.*``, which loading skips) and ``metadata``."""
    if not path.endswith(".safetensors"):
        raise ValueError(f"generator files are saved as .safetensors, got {path}")
    tensors = dict(g.state_dict())
    if g.has_w_avg and "mapping.w_avg" not in tensors:  # StyleGAN3 keeps it in its state dict
        tensors["latent_avg"] = g.w_avg
    tensors.update({TRAINING_PREFIX + k: v for k, v in (training_tensors or {}).items()})
    # a tiny stand-in stays marked as one (loaders' info lines say so), also once fine-tuned or adapted
    meta = {"format": SAFETENSORS_FORMAT, "config": json.dumps({**g.config, **({TINY_MARK: True} if getattr(g, "is_tiny_stand_in", False) else {})})}
    if getattr(g, "adaptation", None) is not None:
        meta[ADAPTATION_KEY] = json.dumps(g.adaptation)
    return save_atomic(tensors, path, meta | (metadata or {}), overwrite=overwrite)


def convert_to_safetensors(src: str, dst: str | None = None, overwrite: bool = False) -> str:
    """Convert any supported generator file to ``.safetensors`` next to it (or at ``dst``)."""
    dst = dst or os.path.splitext(src)[0] + ".safetensors"
    if os.path.abspath(dst) == os.path.abspath(src):
        raise ValueError(f"{src} is already a .safetensors file")
    return save_generator(load_generator(src), dst, overwrite=overwrite)


def generator_fingerprint(g: Generator) -> str:
    """Identifies a generator's weights, noise maps and W average: the key of everything
    computed for a generator (relevance caches, mapper training runs)."""
    return digest(module_fingerprint(g), g.w_avg.detach().cpu().tolist() if g.has_w_avg else None)
