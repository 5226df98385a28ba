"""Direction files: the pack's own (``.safetensors`` written by ``Direction.save``: one tensor per
delta with the space in the metadata) and single arrays from other tools, such as InterFaceGAN
boundaries (``boundary.npy``, ``[1, 512]``), a SeFa or GANSpace vector, or a per-row W+ direction.

One reader, ``read_direction_file``, for every extension:

* ``.safetensors``: the pack's format (``format`` metadata ``styleclip-direction``, tensors
  ``delta.0 .. delta.N``; a file of the older ``styleclip-global-direction`` format, or one with
  ``delta.*`` tensors and no metadata, is a StyleSpace direction), else a file of exactly one tensor;
* ``.npy``: ``np.load(allow_pickle=False)`` (an object array is refused, never unpickled);
* ``.pt`` / ``.pth``: ``torch.load(weights_only=True)`` of a tensor. A dict is refused, even one of a
  single tensor: rosinality's SeFa factor file ``{'ckpt', 'eigvec'}`` holds a whole basis
  ``[D, D]``, not a direction (the SeFa Direction node computes those components from the
  generator itself).

A single array ``[D]`` or ``[1, D]`` is a W direction, ``[n_latent, D]`` (an even row count from 2 to
22: ``2 log2(size) - 2``, 18 at 1024 px) a W+ one; anything else is an error naming the file and
the shapes expected and found. Whether it fits a generator is checked where it is applied
(``Direction.check``). Values are used as stored (InterFaceGAN boundaries are unit vectors
already): float64 stays float64, other numbers become float32.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from ..errors import CheckpointError
from .files import check_finite, describe_object, library_message, load_torch_file, read_safetensors, save_atomic, sniff

DIRECTION_EXTENSIONS = (".safetensors", ".npy", ".pt", ".pth")
FORMAT = "styleclip-direction"
OLD_FORMAT = "styleclip-global-direction"  # StyleSpace directions saved before directions had a space
SPACES = ("w", "w+", "s")
MAX_W_PLUS_ROWS = 22  # 2 log2(size) - 2 for a 4096 px StyleGAN2

SHAPES = "a W direction [D] or [1, D] (e.g. an InterFaceGAN boundary [1, 512]) or a W+ direction [n_latent, D] (n_latent 2 log2(size) - 2: 18 at 1024 px)"
EXPECTED = "a direction (Save Direction's .safetensors, or one array: W [D] or [1, D], W+ [n_latent, D])"


def write_direction_file(path: str, space: str, deltas: list[torch.Tensor], info: dict) -> str:
    """The pack's format; never overwrites an existing file."""
    tensors = {f"delta.{i}": d.contiguous() for i, d in enumerate(deltas)}
    return save_atomic(tensors, path, {"format": FORMAT, "space": space, "info": json.dumps(info)})


def read_direction_file(path: str) -> tuple[str, list[torch.Tensor], dict]:
    """(space, deltas, info) of any direction file (module doc); errors name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected {EXPECTED})")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        tensors, meta = read_safetensors(path, EXPECTED)
        n = len(tensors)
        ours = bool(n) and all(f"delta.{i}" in tensors for i in range(n))
        fmt = meta.get("format")
        if fmt in (FORMAT, OLD_FORMAT) or (fmt is None and ours):
            if not ours:
                raise CheckpointError(path, "tensors delta.0 .. delta.N", f"tensors {sorted(tensors)[:6]}")
            space = meta.get("space", "s")
            if space not in SPACES:
                raise CheckpointError(path, f"a direction file (format {FORMAT}, space one of {SPACES})", f"format {fmt!r}, space {space!r}")
            deltas = [tensors[f"delta.{i}"] for i in range(n)]
            ranks = [d.ndim for d in deltas]
            expected = {"w": [1], "w+": [2], "s": [1] * n}[space]
            if ranks != expected or not all(d.is_floating_point() for d in deltas):
                shapes = {"w": "one vector delta.0 [D]", "w+": "one matrix delta.0 [n_latent, D]", "s": "one vector per StyleSpace layer"}[space]
                raise CheckpointError(path, f"a {space} direction: {shapes} of floating values", f"shapes {[list(d.shape) for d in deltas][:6]}, {deltas[0].dtype}")
            return space, deltas, json.loads(meta.get("info", "{}"))
        if fmt is not None:
            raise CheckpointError(path, EXPECTED, f"a file of another kind (format {fmt!r})")
        if n != 1:
            raise CheckpointError(path, EXPECTED, f"{n} tensors {sorted(tensors)[:6]} (a direction file of another tool holds one)")
        (name, array), = tensors.items()
        return _single_array(path, array, f"tensor {name!r}")
    if ext == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 -- ValueError (object arrays need pickles), OSError, EOFError, ...
            raise CheckpointError(path, EXPECTED, sniff(path) or f"a file NumPy cannot read with allow_pickle=False, which never unpickles objects ({library_message(e)})") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
            raise CheckpointError(path, EXPECTED, f"an array of {getattr(array, 'dtype', type(array).__name__)} values, not numbers")
        return _single_array(path, torch.from_numpy(np.array(array, dtype=np.float64 if array.dtype == np.float64 else np.float32)), "array")
    if ext in (".pt", ".pth"):
        obj = load_torch_file(path, EXPECTED, finite=False)
        if isinstance(obj, dict) and "eigvec" in obj:
            raise CheckpointError(path, EXPECTED, f"a SeFa factor file (keys {sorted(map(str, obj))[:6]}: 'eigvec' is the whole basis [D, D], "
                                  "not one direction); use the SeFa Direction node, which computes these components from the generator")
        if not isinstance(obj, torch.Tensor):
            raise CheckpointError(path, EXPECTED, f"{describe_object(obj)}, not a tensor (save the direction tensor itself)")
        return _single_array(path, obj, "tensor")
    raise CheckpointError(path, f"a direction file ({', '.join(DIRECTION_EXTENSIONS)})", f"extension {ext or '(none)'}")


def _single_array(path: str, array: torch.Tensor, what: str) -> tuple[str, list[torch.Tensor], dict]:
    if not array.is_floating_point() and array.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        raise CheckpointError(path, EXPECTED, f"a {what} of {array.dtype} values, not real numbers")
    array = array.detach().cpu()
    array = array if array.dtype == torch.float64 else array.float()
    shape = list(array.shape)
    if array.ndim == 2 and shape[0] == 1:
        array = array[0]
    if array.ndim == 1 and array.numel() > 0:
        space = "w"
    elif array.ndim == 2 and shape[0] % 2 == 0 and 2 <= shape[0] <= MAX_W_PLUS_ROWS and shape[1] > 0:
        space = "w+"
    else:
        square = " (a square matrix is a basis of directions, e.g. SeFa's eigvec: save one column)" if array.ndim == 2 and shape[0] == shape[1] else ""
        raise CheckpointError(path, SHAPES, f"{'an' if what[0] in 'aeiou' else 'a'} {what} of shape {shape}{square}")
    check_finite(array, path, EXPECTED)
    made = f"{os.path.basename(path)} {shape}"
    return space, [array.contiguous()], {"made_by": made, "file": os.path.basename(path)}
