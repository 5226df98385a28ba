"""Read LPIPS: a torchvision backbone file (the user's) and the v0.1 heads (the ``lpips`` package's).

* Backbones: torchvision's ``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth`` (state dicts; only
  the ``features.*`` convolutions are used, ``classifier.*`` is ignored). They go in ``models/lpips``.
* Heads: ``lpips/weights/v0.1/{vgg,alex}.pth`` inside the installed ``lpips`` wheel (keys
  ``lin{k}.model.1.weight``). The package is found, not imported: nothing of it runs.

Both are read with ``weights_only=True``; nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import os

import torch

from ..errors import CheckpointError
from ..models.lpips import LPIPS, NETS, channels, features
from .files import TINY_MARK, read_state_dict

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
BACKBONE_NAMES = {"vgg": "torchvision's VGG16 weights", "alex": "torchvision's AlexNet weights"}


def heads_path(net: str) -> str:
    """The v0.1 head file of ``net`` in the installed ``lpips`` package."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the LPIPS heads come with the 'lpips' package (weights/v0.1/{net}.pth), which is not installed: "
            "pip install lpips==0.1.4 (it does not reinstall torch)"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "weights", "v0.1", f"{net}.pth")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: the installed 'lpips' package has no v0.1 {net} heads (expected lpips 0.1.4)")
    return path


def read_backbone(net: str, path: str) -> tuple[dict[str, torch.Tensor], bool]:
    """(the ``features.*`` convolution tensors of ``net``, whether the file is a tiny stand-in)."""
    what = f"{BACKBONE_NAMES[net]} ({BACKBONE_FILES[net]}: a state dict with features.* convolutions)"
    state = dict(read_state_dict(path, what, f"LPIPS {net} backbone"))
    tiny = state.pop(TINY_MARK, None) is not None
    with torch.device("meta"):  # shapes only: no 15M-parameter random init
        expected = {f"features.{k}": v.shape for k, v in features(net).state_dict().items()}
    missing = [k for k in expected if k not in state]
    if missing:
        others = [k for k in state if k.startswith("features.")]
        found = f"no {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} ({len(state)} tensors, {len(others)} under features.*)"
        if not others:
            found += "; is this another network's file?"
        raise CheckpointError(path, what, found)
    wrong = [f"{k} {list(state[k].shape)} (expected {list(s)})" for k, s in expected.items() if tuple(state[k].shape) != tuple(s)]
    if wrong:
        raise CheckpointError(path, what, "tensors of other shapes: " + "; ".join(wrong[:3]))
    return {k[len("features."):]: state[k].float() for k in expected}, tiny


def read_heads(net: str, path: str | None = None) -> list[torch.Tensor]:
    path = path or heads_path(net)
    what = f"LPIPS v0.1 {net} heads (lin0..lin4.model.1.weight)"
    state = read_state_dict(path, what, "LPIPS heads")
    heads = []
    for k, c in enumerate(channels(net)):
        key = f"lin{k}.model.1.weight"
        if key not in state:
            raise CheckpointError(path, what, f"no {key} (keys: {', '.join(list(state)[:5])})")
        if tuple(state[key].shape) != (1, c, 1, 1):
            raise CheckpointError(path, what, f"{key} of shape {list(state[key].shape)} (expected [1, {c}, 1, 1])")
        heads.append(state[key].float())
    return heads


def load_lpips(net: str, backbone_path: str, heads: str | None = None, device="cpu") -> LPIPS:
    """LPIPS(``net``) with the backbone from ``backbone_path`` and the v0.1 heads (``heads``, default
    the ``lpips`` package's file), frozen, in eval mode."""
    if net not in NETS:
        raise ValueError(f"LPIPS net must be one of {list(NETS)}, found {net!r}")
    backbone, tiny = read_backbone(net, backbone_path)
    model = LPIPS(net)
    model.net.load_state_dict(backbone)
    with torch.no_grad():
        for param, value in zip(model.heads, read_heads(net, heads)):
            param.copy_(value)
    model.is_tiny_stand_in = tiny
    model.source = os.path.basename(backbone_path)
    return model.to(device)
