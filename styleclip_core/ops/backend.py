"""Which implementation of the ops runs: the CUDA plugin or the PyTorch reference.

``impl`` arguments and the ``STYLECLIP_OPS`` environment variable take one of
``auto`` (CUDA plugin for CUDA tensors when it builds, else reference),
``cuda`` (CUDA plugin; an error if it cannot be used) or ``reference``.
The environment variable, when set, overrides every ``impl`` argument.
"""
from __future__ import annotations

import os

import torch

BACKENDS = ("auto", "cuda", "reference")
ENV_VAR = "STYLECLIP_OPS"


def _forced() -> str | None:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    if value not in BACKENDS:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(BACKENDS)}; found {value!r}")
    return None if value == "auto" else value


def resolve(impl: str) -> str:
    """The backend a call with this ``impl`` asks for, after the environment override."""
    if impl not in BACKENDS:
        raise ValueError(f"ops backend must be one of {', '.join(BACKENDS)}; found {impl!r}")
    return _forced() or impl


def decide(impl: str, device: torch.device | str) -> tuple[bool, str]:
    """The one place the backend is chosen: (whether the CUDA plugin runs, a human-readable name
    of what runs) for ``impl`` on ``device``. Builds the plugin on first use on a CUDA device; an
    explicit 'cuda' that cannot be honoured is an error saying why."""
    choice = resolve(impl)
    device = torch.device(device)
    if choice == "reference":
        return False, "reference (PyTorch)"
    if device.type != "cuda":
        if choice == "cuda":
            raise RuntimeError(
                f"the CUDA ops backend was requested, but the model runs on {device}; "
                "move the model to a CUDA device or choose the 'auto' or 'reference' backend"
            )
        return False, f"reference (PyTorch; {device.type} device)"
    from . import cuda_plugin

    if cuda_plugin.available():
        return True, "cuda (JIT plugin)"
    if choice == "cuda":
        raise RuntimeError(f"the CUDA ops backend was requested but could not be built: {cuda_plugin.failure_reason()}")
    return False, f"reference (PyTorch; CUDA plugin unavailable: {cuda_plugin.failure_reason()})"


def use_cuda(x: torch.Tensor, impl: str, op: str | None = None) -> bool:
    """Whether ``op`` on ``x`` runs the CUDA plugin: ``decide`` on the tensor's device, and the
    plugin's self-check for that op and dtype (``self_check.passed``, once per process). With
    'auto' a failed check means the reference runs; an explicit 'cuda' (argument or
    ``STYLECLIP_OPS``) keeps the plugin, the failure logged."""
    on = decide(impl, x.device)[0]
    if not on or op is None:
        return on
    from . import self_check

    return self_check.passed(op, x.dtype, x.device) or resolve(impl) == "cuda"


def describe(impl: str, device: torch.device | str, dtypes=(torch.float32,)) -> str:
    """Human-readable name of what runs for ``impl`` on ``device`` (builds the plugin if needed),
    with the self-check's verdict for ``dtypes`` when the plugin runs."""
    on, name = decide(impl, device)
    if not on:
        return name
    from . import self_check

    return f"{name}; {self_check.report(device, dtypes)}"
