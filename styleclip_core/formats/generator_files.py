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
    if "style.1.weight" in obj:
        return obj, None
    inner = obj.get("state_dict")
    if isinstance(inner, dict) and "decoder.style.1.weight" in inner:
        latent_avg = obj.get("latent_avg")
        if isinstance(latent_avg, torch.Tensor) and latent_avg.ndim == 2:
            latent_avg = latent_avg[0]  # e4e stores the W average repeated over the W+ rows
        return strip_prefix(inner, "decoder."), latent_avg
    raise CheckpointError(path, expected, describe_object(obj))


def read_generator_state(path: str) -> tuple[dict, torch.Tensor | None, dict | None]:
    """(rosinality state dict, W average or None, config or None) from any supported file."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pt", ".pth"):
        obj = load_torch_file(path, "a StyleGAN2 generator checkpoint")
        state, w_avg = generator_state_from_torch(obj, path)
        return state, w_avg, {TINY_MARK: True} if isinstance(obj, dict) and obj.get(TINY_MARK) else None
    if ext == ".pkl":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file (expected an NVIDIA StyleGAN2 pickle)")
        data, _ = nvidia_pickle.read_pickle(path)
        if isinstance(data, tuple):
            ada = nvidia_pickle.tf_to_ada(nvidia_pickle.tf_variables(data, path), path)
        else:
            ada, _ = nvidia_pickle.ada_state_dict(data, path)
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


def load_generator(path: str, device: torch.device | str = "cpu", ops_backend: str = "auto") -> Generator:
    """Load a StyleGAN2 generator (eval mode, frozen) from a rosinality ``.pt``, an NVIDIA ``.pkl``
    (TensorFlow or stylegan2-ada-pytorch) or our ``.safetensors``; the architecture comes from
    the file itself."""
    state, w_avg, config = read_generator_state(path)
    tiny = bool(config and config.pop(TINY_MARK, False))
    adaptation = config.pop(ADAPTATION_KEY, None) if config else None
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
    if g.has_w_avg:
        tensors["latent_avg"] = g.w_avg
    tensors.update({TRAINING_PREFIX + k: v for k, v in (training_tensors or {}).items()})
    meta = {"format": SAFETENSORS_FORMAT, "config": json.dumps(g.config)}
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
