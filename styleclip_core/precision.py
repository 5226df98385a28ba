"""The pack's one precision vocabulary: ``fp32``, ``bf16``, ``fp16`` (the words ComfyUI uses).

``fp32`` reproduces the reference numbers. ``bf16`` / ``fp16`` run the heavy work (the
generator's convolutions, CLIP in channel relevance) under ``torch.autocast``: a GPU speed
option whose results differ from ``fp32`` by rounding.

Channel relevance used to say ``float32`` / ``bfloat16`` / ``float16``; those words are still
accepted (saved workflows, scripts) and mean the same.
"""
from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_LEGACY = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def canonical(precision: str) -> str:
    """``precision`` in the pack's vocabulary (old spellings translated); a clear error otherwise."""
    name = _LEGACY.get(precision, precision)
    if name not in _AUTOCAST:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, found {precision!r}")
    return name


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision``; None for fp32 (no autocast context at all)."""
    return _AUTOCAST[canonical(precision)]


def ops_dtypes(precision: str) -> tuple[torch.dtype, ...]:
    """The dtypes the StyleGAN2 ops see at ``precision`` (float32 always: modulation and the
    first layers; the autocast dtype too), e.g. for the CUDA plugin's self-check report."""
    dtype = autocast_dtype(precision)
    return (torch.float32,) if dtype is None else (torch.float32, dtype)


def torch_name(precision: str) -> str:
    """``float32`` / ``bfloat16`` / ``float16``: how files record a precision (relevance caches
    were named with these words, so a cache computed before keeps its name)."""
    dtype = autocast_dtype(precision)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")
