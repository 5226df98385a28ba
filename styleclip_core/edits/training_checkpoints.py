"""What every resumable trainer of the library shares (mapper training, domain adaptation): the
checkpoint's file name when one exists, the optimiser state as named tensors, and the loop that
steps, checkpoints, reports and previews.

A trainer's checkpoint is one ``.safetensors`` file holding what it trained (readable by that
model's loader) plus, under ``training.*`` keys and in its metadata, what resumes the run. The
file is written atomically (``formats.files.save_atomic``), so the file on disk is always a
complete checkpoint, also when a run is interrupted or crashes.
"""
from __future__ import annotations

import os

import torch

IF_EXISTS = ("number", "resume", "overwrite")
_OPT = "optimizer."  # under TRAINING_PREFIX


def checkpoint_path(folder: str, name: str, if_exists: str = "number") -> tuple[str, bool]:
    """(path, resume) for a checkpoint called ``name`` in ``folder``. When ``name.safetensors``
    exists: 'number' picks the first free ``name_00001.safetensors``, ..., 'resume' continues it,
    'overwrite' starts afresh and replaces it at the first save."""
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {IF_EXISTS}, found {if_exists!r}")
    stem = name[: -len(".safetensors")] if name.endswith(".safetensors") else name
    if not stem or stem != os.path.basename(stem) or stem in (".", "..") or "/" in stem or "\\" in stem:
        raise ValueError(f"checkpoint name {name!r}: give a file name without folders")
    path = os.path.join(folder, stem + ".safetensors")
    if not os.path.exists(path):
        return path, False
    if if_exists == "resume":
        return path, True
    if if_exists == "overwrite":
        return path, False
    n = 1
    while os.path.exists(numbered := os.path.join(folder, f"{stem}_{n:05}.safetensors")):
        n += 1
    return numbered, False


def check_free(path: str, replace: bool):
    """An existing ``path`` is an error unless the run resumes or replaces it."""
    if os.path.exists(path) and not replace:
        raise FileExistsError(f"{path} already exists; resume it, overwrite it or choose another name")


def optimizer_state(optimizer: torch.optim.Optimizer, names: list[str]) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """(tensors named ``optimizer.<parameter>.<state>``, parameter groups without their tensors) of
    ``optimizer``, whose parameters in order are called ``names``. Parameters without state (never
    stepped) have no tensors."""
    sd = optimizer.state_dict()
    tensors = {}
    for index, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{_OPT}{names[index]}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = [{k: v for k, v in group.items() if k != "params"} | {"params": len(group["params"])} for group in sd["param_groups"]]
    return tensors, groups


def load_optimizer_state(optimizer: torch.optim.Optimizer, names: list[str], tensors: dict[str, torch.Tensor], groups: list[dict]):
    """The inverse of ``optimizer_state``."""
    state = {}
    for index, name in enumerate(names):
        prefix = f"{_OPT}{name}."
        entries = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if entries:
            state[index] = entries
    start, param_groups = 0, []
    for group in groups:
        count = group["params"]
        param_groups.append(group | {"params": list(range(start, start + count))})
        start += count
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def run_steps(trainer, steps: int, path: str, overwrite: bool, save_every: int, preview_every: int, progress=None, report=None, preview=None) -> list:
    """Step ``trainer`` (``step()``, ``step_index``, ``save(path, overwrite)``) until ``steps`` steps
    in all; checkpoint every ``save_every`` steps (0: only at the end), at the end, and when
    ``progress`` raises (ComfyUI's cancel; re-raised). ``progress(done, total, preview())`` runs
    after every step, with ``preview()`` every ``preview_every`` steps and at the end, when
    ``report(text)`` also gets the step's values. Returns what each step returned."""
    history = []
    while trainer.step_index < steps:
        values = trainer.step()
        history.append(values)
        done = trainer.step_index
        show = done % preview_every == 0 or done == steps
        if save_every and done % save_every == 0 and done < steps:
            trainer.save(path, overwrite)
            overwrite = True
        if report is not None and show:
            shown = values.as_dict() if hasattr(values, "as_dict") else values
            report(f"step {done}/{steps}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
        if progress is not None:
            try:
                progress(done, steps, preview() if show and preview is not None else None)
            except BaseException:
                trainer.save(path, overwrite)
                raise
    trainer.save(path, overwrite)
    return history
