"""Read the BiSeNet face parser: face-parsing.PyTorch's ``79999_iter.pth`` (a plain state dict,
``weights_only=True``) or a ``.safetensors`` copy of it."""
from __future__ import annotations

import os

from ..models.face_parser import BiSeNet
from .files import read_state_dict

EXPECTED = "a BiSeNet face parser state dict (79999_iter.pth)"


def load_face_parser(path: str, device="cpu") -> BiSeNet:
    """The parser in eval mode, frozen; its widths and number of classes come from the file."""
    state = read_state_dict(path, EXPECTED, "face parser")
    net = BiSeNet.from_state_dict(state, path)
    net.source = os.path.basename(path)
    return net.requires_grad_(False).to(device)
