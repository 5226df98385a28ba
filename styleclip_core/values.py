"""Checks of the values the library's entry points take (the shared vocabulary of bad values).

Every entry point checks its own arguments, so a script calling the library gets the same clear
error as a ComfyUI node; a caller can pass ``names`` (parameter -> the name its user knows, e.g.
a node's input) so that the error names what the user connected:

* ``check_finite(value, what)``: NaN or infinite numbers in a tensor, a batch of latents (W+ or
  StyleSpace) or a list of tensors are an error naming ``what`` and the first bad batch index;
* ``check_count(value, what)``: counts and sizes (batch sizes, chunk sizes, columns) are whole
  numbers of at least 1 (or ``minimum``);
* ``torch_seed(seed)``: any integer as a seed ``torch.Generator.manual_seed`` accepts, seeds of
  ComfyUI's seed widget (0 .. 2**64 - 1) unchanged, others (``seed + i`` past the widget's
  maximum, negative seeds) wrapped modulo 2**64, so image ``i`` of a batch drawn from
  ``seed + i`` works for every widget value.
"""
from __future__ import annotations

from typing import Mapping

import torch

SEED_MODULUS = 2 ** 64  # torch.Generator.manual_seed takes 0 .. 2**64 - 1 (and negative int64s)


def called(names: Mapping[str, str] | None, parameter: str) -> str:
    """The name the caller gave ``parameter`` (its own name when none)."""
    return (names or {}).get(parameter, parameter)


def _first_bad(t: torch.Tensor, batched: bool) -> tuple[int | None, str] | None:
    """(first batch index, 'NaN' / 'infinite') of a tensor's first non-finite value, or None."""
    if not t.is_floating_point() and not t.is_complex():
        return None
    bad = ~torch.isfinite(t.detach())
    if not bool(bad.any()):
        return None
    flat = t.detach().reshape(-1)
    first = int(bad.reshape(-1).nonzero()[0, 0])
    kind = "NaN" if bool(torch.isnan(flat[first])) else "infinite"
    if not batched or t.ndim == 0:
        return None, kind
    rows = bad.reshape(t.shape[0], -1).any(1)
    return int(rows.nonzero()[0, 0]), kind


def check_finite(value, what: str, batched: bool = True):
    """``value`` itself if every number in it is finite; else a ValueError naming ``what``, the
    first bad batch index (dimension 0; ``batched=False`` for a single item) and what it holds.

    ``value`` is a tensor, a ``Latents`` (anything with ``w_plus`` / ``styles``), a list or tuple
    of tensors with the batch first (StyleSpace layers), or None (nothing to check)."""
    if value is None:
        return value
    if hasattr(value, "w_plus") and hasattr(value, "styles"):
        tensors = [value.w_plus] if value.w_plus is not None else list(value.styles)
        layer = "" if value.w_plus is not None else "StyleSpace layer "
    elif isinstance(value, (list, tuple)):
        tensors, layer = list(value), "layer "
    else:
        tensors, layer = [value], ""
    found = []
    for k, t in enumerate(tensors):
        bad = _first_bad(t, batched) if isinstance(t, torch.Tensor) else None
        if bad is not None:
            found.append((bad[0] if bad[0] is not None else -1, k, bad[1]))
    if not found:
        return value
    index, k, kind = min(found)
    where = f" at batch index {index}" if index >= 0 else ""
    part = f" ({layer}{k})" if len(tensors) > 1 else ""
    raise ValueError(f"{what}: {kind} values{where}{part} (batch indices count from 0); every number must be finite")


def check_count(value, what: str, minimum: int = 1) -> int:
    """``value`` as an int if it is a whole number of at least ``minimum``; else a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) and not (hasattr(value, "__index__")):
        raise ValueError(f"{what} must be a whole number of at least {minimum}, found {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, found {value}")
    return value


def torch_seed(seed: int) -> int:
    """``seed`` reduced modulo 2**64 (unchanged for 0 .. 2**64 - 1): what ``manual_seed`` gets."""
    return int(seed) % SEED_MODULUS


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``torch_seed(seed)``."""
    return torch.Generator().manual_seed(torch_seed(seed))
