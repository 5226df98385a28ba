"""Read the BiSeNet face parser: face-parsing.PyTorch's ``79999_iter.pth`` (a plain state dict,
``weights_only=True``) or a ``.safetensors`` copy of it."""
from __future__ import annotations

import os

from ..errors import CheckpointError
from ..models.face_parser import BiSeNet
from .files import describe_object, load_torch_file, read_safetensors

FACE_PARSER_EXTENSIONS = (".pth", ".pt", ".safetensors")
EXPECTED = "a BiSeNet face parser state dict (79999_iter.pth)"


def load_face_parser(path: str, device="cpu") -> BiSeNet:
    """The parser in eval mode, frozen; its widths and number of classes come from the file."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        state = read_safetensors(path, EXPECTED)[0]
    elif ext in (".pth", ".pt"):
        state = load_torch_file(path, EXPECTED)
    else:
        raise CheckpointError(path, f"face parser weights ({', '.join(FACE_PARSER_EXTENSIONS)})", f"extension {ext or '(none)'}")
    if not isinstance(state, dict):
        raise CheckpointError(path, EXPECTED, describe_object(state))
    net = BiSeNet.from_state_dict(state, path)
    net.source = os.path.basename(path)
    return net.requires_grad_(False).to(device)
