"""Load the ArcFace IR-SE50 identity network (``model_ir_se50.pth``) for the identity loss."""
from __future__ import annotations

import os

import torch

from .errors import CheckpointError
from .irse import ArcFaceBackbone
from .tiny_models import TINY_MARK

ARCFACE_EXTENSIONS = (".pth", ".pt", ".safetensors")


def load_arcface(path: str, device="cpu") -> ArcFaceBackbone:
    """The backbone in eval mode, frozen; the number of units and widths come from the file.

    ``model_ir_se50.pth`` (pSp / e4e release) is a plain state dict, read with
    ``weights_only=True``; a ``.safetensors`` copy of it works too.
    """
    from .checkpoints import load_torch_file

    what = "an ArcFace IR-SE50 state dict (model_ir_se50.pth)"
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file (expected {what})")
        try:
            state = load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, what, f"an unreadable file; it may be truncated ({e})") from None
    elif ext in (".pth", ".pt"):
        state = load_torch_file(path, what)
    else:
        raise CheckpointError(path, f"ArcFace weights ({', '.join(ARCFACE_EXTENSIONS)})", f"extension {ext or '(none)'}")
    if not isinstance(state, dict):
        raise CheckpointError(path, what, f"a {type(state).__name__}")
    state = dict(state)
    tiny = state.pop(TINY_MARK, None) is not None
    try:
        net = ArcFaceBackbone.from_state_dict(state, source=path)
    except RuntimeError as e:  # tensors of other shapes than the units read from the file
        raise CheckpointError(path, what, f"inconsistent tensor shapes ({str(e).splitlines()[0][:300]})") from None
    net.is_tiny_stand_in = tiny
    net.source = os.path.basename(path)
    return net.requires_grad_(False).to(device)
