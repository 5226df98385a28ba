"""Read the ArcFace IR-SE50 identity network (``model_ir_se50.pth``) for the identity loss."""
from __future__ import annotations

import os

from ..errors import CheckpointError
from ..models.irse import ArcFaceBackbone
from .files import TINY_MARK, read_state_dict



def load_arcface(path: str, device="cpu") -> ArcFaceBackbone:
    """The backbone in eval mode, frozen; the number of units and widths come from the file.

    ``model_ir_se50.pth`` (pSp / e4e release) is a plain state dict, read with
    ``weights_only=True``; a ``.safetensors`` copy of it works too.
    """
    state = read_state_dict(path, "an ArcFace IR-SE50 state dict (model_ir_se50.pth)", "ArcFace")
    state = dict(state)
    tiny = state.pop(TINY_MARK, None) is not None
    try:
        net = ArcFaceBackbone.from_state_dict(state, source=path)
    except RuntimeError as e:  # tensors of other shapes than the units read from the file
        raise CheckpointError(path, "an ArcFace IR-SE50 state dict (model_ir_se50.pth)", f"inconsistent tensor shapes ({str(e).splitlines()[0][:300]})") from None
    net.is_tiny_stand_in = tiny
    net.source = os.path.basename(path)
    return net.requires_grad_(False).to(device)
