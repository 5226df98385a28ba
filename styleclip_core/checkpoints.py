"""Load StyleGAN2 generators from the official formats; save and convert to ``.safetensors``.

Nothing here executes code from a file: ``.pt`` files are read with ``torch.load(weights_only=True)``,
``.pkl`` files with a restricted unpickler (``nvidia_pickle``), ``.safetensors`` hold tensors only.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from . import nvidia_pickle
from .errors import CheckpointError
from .generator import Generator

GENERATOR_EXTENSIONS = (".pt", ".pth", ".pkl", ".safetensors")
SAFETENSORS_FORMAT = "styleclip-generator"


def load_torch_file(path: str, what: str) -> object:
    """``torch.load`` with ``weights_only=True`` and errors that say what went wrong."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(path, what, f"a pickle with Python objects beyond tensors and containers, which is not loaded for safety ({str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(path, what, f"a file PyTorch cannot read; it may be truncated or not a checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def _describe(obj) -> str:
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))
        return f"a dict with keys {keys[:8]}{' ...' if len(keys) > 8 else ''}"
    return f"a {type(obj).__name__}"


def _strip(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def generator_state_from_torch(obj, path: str) -> tuple[dict, torch.Tensor | None]:
    """Find the generator inside a ``.pt`` object: rosinality ``{'g_ema', 'latent_avg'}``, a bare
    ``g_ema`` state dict, or the ``decoder.*`` copy inside e4e / StyleCLIP mapper checkpoints."""
    expected = "a StyleGAN2 generator checkpoint ({'g_ema': ..., 'latent_avg': ...} as in stylegan2-ffhq-config-f.pt)"
    if not isinstance(obj, dict):
        raise CheckpointError(path, expected, _describe(obj))
    if isinstance(obj.get("g_ema"), dict):
        return obj["g_ema"], obj.get("latent_avg")
    if "style.1.weight" in obj:
        return obj, None
    inner = obj.get("state_dict")
    if isinstance(inner, dict) and "decoder.style.1.weight" in inner:
        latent_avg = obj.get("latent_avg")
        if isinstance(latent_avg, torch.Tensor) and latent_avg.ndim == 2:
            latent_avg = latent_avg[0]  # e4e stores the W average repeated over the W+ rows
        return _strip(inner, "decoder."), latent_avg
    raise CheckpointError(path, expected, _describe(obj))


def read_generator_state(path: str) -> tuple[dict, torch.Tensor | None, dict | None]:
    """(rosinality state dict, W average or None, config or None) from any supported file."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pt", ".pth"):
        obj = load_torch_file(path, "a StyleGAN2 generator checkpoint")
        state, w_avg = generator_state_from_torch(obj, path)
        return state, w_avg, {"tiny_stand_in": True} if isinstance(obj, dict) and obj.get("tiny_stand_in") else None
    if ext == ".pkl":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file (expected an NVIDIA StyleGAN2 pickle)")
        data, _ = nvidia_pickle.read_pickle(path)
        if isinstance(data, tuple):
            ada = nvidia_pickle.tf_to_ada(nvidia_pickle.tf_variables(data, path), path)
        else:
            ada, _ = nvidia_pickle.ada_state_dict(data, path)
        state, w_avg = nvidia_pickle.ada_to_rosinality(ada, path)
        return state, w_avg, None
    if ext == ".safetensors":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file (expected a generator .safetensors)")
        try:
            with safe_open(path, "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, "a .safetensors generator", f"an unreadable file; it may be truncated ({e})") from None
        config = json.loads(meta["config"]) if "config" in meta else None
        w_avg = tensors.pop("latent_avg", None)
        if "style.1.weight" not in tensors:
            tensors = _strip(tensors, "g_ema.") or tensors
        return tensors, w_avg, config
    raise CheckpointError(path, f"a generator file ({', '.join(GENERATOR_EXTENSIONS)})", f"extension {ext or '(none)'}")


def load_generator(path: str, device: torch.device | str = "cpu", ops_backend: str = "auto") -> Generator:
    """Load a StyleGAN2 generator (eval mode, frozen) from a rosinality ``.pt``, an NVIDIA ``.pkl``
    (TensorFlow or stylegan2-ada-pytorch) or our ``.safetensors``; the architecture comes from
    the file itself."""
    state, w_avg, config = read_generator_state(path)
    tiny = bool(config and config.pop("tiny_stand_in", False))
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
    return g.eval().requires_grad_(False).set_ops_backend(ops_backend).to(device)


def save_generator(g: Generator, path: str, overwrite: bool = False) -> str:
    """Write ``g`` as ``.safetensors`` (rosinality keys, config in metadata); never overwrites
    an existing file unless ``overwrite``; writes to a temporary name, then renames."""
    if not path.endswith(".safetensors"):
        raise ValueError(f"generator files are saved as .safetensors, got {path}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name")
    tensors = {k: v.detach().cpu().contiguous() for k, v in g.state_dict().items()}
    if g.has_w_avg:
        tensors["latent_avg"] = g.w_avg.detach().cpu().contiguous()
    meta = {"format": SAFETENSORS_FORMAT, "config": json.dumps(g.config)}
    tmp = path + ".partial"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)
    return path


def convert_to_safetensors(src: str, dst: str | None = None, overwrite: bool = False) -> str:
    """Convert any supported generator file to ``.safetensors`` next to it (or at ``dst``)."""
    dst = dst or os.path.splitext(src)[0] + ".safetensors"
    if os.path.abspath(dst) == os.path.abspath(src):
        raise ValueError(f"{src} is already a .safetensors file")
    return save_generator(load_generator(src), dst, overwrite=overwrite)
