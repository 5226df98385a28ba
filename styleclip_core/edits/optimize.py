"""StyleCLIP latent optimisation (``optimization/run_optimization.py``), in W+ or StyleSpace.

The loop is the reference's: Adam with torch's defaults, the learning rate set every step by
``get_lr`` (cosine ramp-down over the last 25 %, linear ramp-up over the first 5 %, so step 0
runs with lr 0 and only moves Adam's moments), the generator's stored noise maps, and
``loss = sum of the weighted terms`` of a ``LossSet``. A batch is optimised at once: its loss is
the sum of per-sample losses, so each sample follows the trajectory it would follow alone.

Unlike the reference, the returned image is rendered from the returned codes (the reference
returns the image of the last forward pass, one Adam update behind its final latent).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from ..models.generator import Generator
from ..models.latents import Latents
from ..models.render import per_sample_noise
from ..progress import Progress
from ..schedules import get_lr
from ..values import called, check_count, check_finite
from .losses import EditContext, LossSet
from .masks import resize_mask

SPACES = ("w+", "s")


@dataclass
class OptimizeResult:
    latents: Latents  # edited codes, detached, in the optimised space
    images: torch.Tensor  # [B, 3, size, size] rendered from ``latents``
    original_images: torch.Tensor
    history: list[dict[str, torch.Tensor]] = field(default_factory=list)  # per step: term label -> unweighted [B], before the update
    lrs: list[float] = field(default_factory=list)


class LatentOptimizer:
    """One optimisation run, advanced a step at a time (``optimize_latents`` drives it).

    ``space='s'`` optimises the StyleSpace vectors of every modulated convolution except the
    toRGB layers (StyleCLIP's ``--work_in_stylespace``); W+ starting codes are converted.
    ``noise`` is 'const' (the stored maps, as the reference) or 'random' (per-sample maps drawn
    from ``seed + i``, as Synthesize Images draws them). ``amp_dtype`` runs the forward passes
    under CUDA/CPU autocast. ``mask`` (a ComfyUI MASK, one per face or one for all) goes to the
    loss terms as ``EditContext.mask`` (see ``losses``).
    """

    def __init__(self, g: Generator, start: Latents, loss: LossSet, steps: int = 300, lr: float = 0.1, space: str = "w+",
                 mask: torch.Tensor | None = None, noise: str = "const", seed: int = 0, amp_dtype: torch.dtype | None = None,
                 names: dict[str, str] | None = None):
        if torch.is_inference_mode_enabled():
            raise RuntimeError("latent optimisation needs autograd; it cannot run under torch.inference_mode")
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, found {space!r}")
        steps = check_count(steps, called(names, "steps"))
        start.check(g)
        check_finite(start, called(names, "start"))
        check_finite(mask, called(names, "mask"))
        if space == "w+" and start.w_plus is None:
            raise ValueError("these latents are StyleSpace codes; they cannot be optimised in W+ (choose space 's')")
        self.g, self.steps, self.lr, self.space, self.amp_dtype = g, steps, lr, space, amp_dtype
        self.device = g.w_avg.device
        start = start.to(self.device).detach()
        batch = start.batch_size
        if mask is not None:  # a wrong mask is reported before the originals are rendered
            mask = resize_mask(mask.to(self.device), (g.size, g.size), batch)
        self.noise = per_sample_noise(g, seed, 0, batch) if noise == "random" else noise
        with torch.no_grad():
            if space == "w+":
                original = Latents(w_plus=start.w_plus.clone())
                self.params = [start.w_plus.clone().requires_grad_(True)]
                self._current = lambda: Latents(w_plus=self.params[0])
            else:
                styles = [s.clone() for s in start.to_styles(g)]
                original = Latents(styles=[s.clone() for s in styles])
                trainable = {i for i, layer in enumerate(g.style_layers) if not layer.is_torgb}
                for i in trainable:
                    styles[i].requires_grad_(True)
                self.params = [styles[i] for i in sorted(trainable)]
                self._current = lambda: Latents(styles=styles)
            original_images = self._render(original)
        self.context = EditContext.start(original_images, original, mask)
        self.loss = loss.prepare(self.context)
        self.optimizer = torch.optim.Adam(self.params, lr=lr)
        self.step_index = 0
        self.history: list[dict[str, torch.Tensor]] = []
        self.lrs: list[float] = []
        self.last_images: torch.Tensor | None = None

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _render(self, latents: Latents) -> torch.Tensor:
        if self.amp_dtype is None:
            return self.g.synthesis(latents.to_styles(self.g), noise=self.noise)
        with self._autocast():
            return self.g.synthesis(latents.to_styles(self.g), noise=self.noise).float()

    def step(self) -> dict[str, torch.Tensor]:
        """One update; returns the terms' unweighted per-sample values before it."""
        lr = get_lr(self.step_index / self.steps, self.lr)
        self.optimizer.param_groups[0]["lr"] = lr
        with torch.enable_grad():
            latents = self._current()
            images = self._render(latents)
            with self._autocast():
                value = self.loss(self.context.edited(images, latents))
            value.check_finite(self.step_index + 1)  # before the update: the codes stay finite
            self.optimizer.zero_grad(set_to_none=True)
            value.total.sum().backward()
        self.optimizer.step()
        parts = {k: v.detach().cpu() for k, v in value.parts.items()}
        self.history.append(parts)
        self.lrs.append(lr)
        self.last_images = images.detach()
        self.step_index += 1
        return parts

    def result(self) -> OptimizeResult:
        latents = self._current().detach().clone()
        with torch.no_grad():
            images = self._render(latents)
        return OptimizeResult(latents, images, self.context.original_image, self.history, self.lrs)


def optimize_latents(g: Generator, start: Latents, loss: LossSet, steps: int = 300, lr: float = 0.1, space: str = "w+",
                     mask: torch.Tensor | None = None, noise: str = "const", seed: int = 0, progress: Progress | None = None,
                     preview_every: int = 10, amp_dtype: torch.dtype | None = None, names: dict[str, str] | None = None) -> OptimizeResult:
    """Edit ``start`` by minimising ``loss`` for ``steps`` Adam steps (see ``LatentOptimizer``).

    ``progress(done, total, preview)`` runs after every step, with the current images every
    ``preview_every`` steps and at the end; if it raises, the run stops there and nothing is
    returned (``start`` is never modified). A loss term that becomes NaN or infinite stops the run
    the same way, with a FloatingPointError naming the step, the term and the face.
    ``names`` maps parameters (``start``, ``mask``, ``steps``, ``preview_every``) to the names
    the caller's errors should use.
    """
    preview_every = check_count(preview_every, called(names, "preview_every"))
    run = LatentOptimizer(g, start, loss, steps, lr, space, mask, noise, seed, amp_dtype, names)
    for i in range(steps):
        run.step()
        if progress is not None and i + 1 < steps:
            progress(i + 1, steps, run.last_images if (i + 1) % preview_every == 0 else None)
    result = run.result()
    if progress is not None:
        progress(steps, steps, result.images)
    return result
