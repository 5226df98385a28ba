"""Pivotal tuning (PTI, Roich et al. 2021: ``training/coaches/single_id_coach.py``, ``multi_id_coach.py``,
``base_coach.py``, ``criteria/localitly_regulizer.py``), SPEC sections 10.3 and 10.4.

A copy of the generator is fine-tuned so that the pivot codes (e4e's or the projector's) render
the photos: Adam (lr 3e-4) over the synthesis weights with ``loss = l2_weight · mean((G(w) - x)²)
+ lpips_weight · LPIPS-alex(G(w), x)`` (+ the optional locality term). The generator's stored noise
maps are used ('const') and stay as they are; the mapping network gets no gradient.

* One face (the single-ID coach): the run stops at the first step whose LPIPS is at most
  ``lpips_threshold`` (0.06), before that step's update, as the reference does.
* Several faces (the multi-ID coach): one generator for all of them; each step updates the
  generator once per face, in order, and there is no early stop (as the reference). One tuned
  generator serves the whole batch downstream, which every edit node expects.

The locality regulariser (off by default, as in PTI) keeps the rest of the latent space
unchanged: per step it draws ``samples`` codes, truncated (psi 0.5) toward the W average, moves
``alpha`` (30) from the pivot toward each, and penalises how the tuned generator's rendering
(without noise) differs from the original's there, by L2 and LPIPS weighted 0.1 each.

Fixed on purpose (the reference crashes): ``l2_weight = 0`` works, the locality draws come from
a seeded generator rather than NumPy's global state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..models.generator import Generator
from ..models.latents import Latents
from ..models.lpips import LPIPS
from ..progress import Progress
from ..values import called, check_count, check_finite


@dataclass
class TuningSettings:
    """PTI's defaults (``configs/hyperparameters.py``)."""

    steps: int = 350
    learning_rate: float = 3e-4
    l2_weight: float = 1.0
    lpips_weight: float = 1.0
    lpips_threshold: float = 0.06  # one face only; 0 never stops early
    locality: bool = False
    locality_samples: int = 1
    locality_alpha: float = 30.0
    locality_l2_weight: float = 0.1
    locality_lpips_weight: float = 0.1
    locality_psi: float = 0.5


@dataclass
class Tuning:
    generator: Generator  # the tuned copy (eval mode, frozen)
    latents: Latents  # the pivots, W+ (what to edit with the tuned generator)
    steps_applied: int  # Adam updates made (per face with several faces)
    stopped_early: bool
    history: list[dict[str, torch.Tensor]] = field(default_factory=list)  # per forward: face, loss, l2, lpips, locality

    def summary(self) -> str:
        """One line: updates made, why it stopped, and each face's LPIPS / L2 at its last forward."""
        last = {}
        for h in self.history:
            last[int(h["face"])] = h
        faces = ", ".join(f"face {i}: LPIPS {h['lpips'].item():.4f}, L2 {h['l2'].item():.4f}" for i, h in sorted(last.items()))
        how = "stopped at the LPIPS threshold" if self.stopped_early else "ran every step"
        return f"pivotal tuning: {self.steps_applied} updates, {how}; at the last step measured: {faces}"


def _pivot_images(g: Generator, latents: Latents, images: torch.Tensor, names) -> tuple[torch.Tensor, torch.Tensor]:
    latents.check(g)
    check_finite(latents, called(names, "latents"))
    if latents.w_plus is None:
        raise ValueError(f"{called(names, 'latents')}: pivotal tuning needs W+ pivots (e4e's or the projector's), found StyleSpace codes")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] != (g.size, g.size):
        raise ValueError(
            f"{called(names, 'images')}: expected images [B, 3, {g.size}, {g.size}] in [-1, 1] (aligned faces at the generator's resolution), "
            f"found shape {list(images.shape)}"
        )
    if latents.batch_size != images.shape[0]:
        raise ValueError(f"{called(names, 'latents')}: {latents.batch_size} pivots for {images.shape[0]} images; expected one per image")
    check_finite(images, called(names, "images"))
    # Copies of tensors a node made under torch.inference_mode (they cannot enter autograd's
    # graph); other images are used as they are: a clip's frames can take gigabytes.
    return g.to_w_plus(latents.w_plus).detach().clone(), images.detach().clone() if images.is_inference() else images.detach()


class LocalityRegularizer:
    """PTI's ``Space_Regulizer`` (SPEC 10.4). ``z_draws``: the codes to use in order (``[n, z_dim]``
    rows, a parity test gives the reference's NumPy draws); otherwise drawn from ``seed``."""

    def __init__(self, original: Generator, lpips: LPIPS, settings: TuningSettings, seed: int = 0, z_draws: torch.Tensor | None = None):
        self.original, self.lpips, self.s = original, lpips, settings
        self.random = np.random.RandomState(seed % 2**32)
        self.z_draws, self.used = z_draws, 0

    def draw(self) -> torch.Tensor:
        n = self.s.locality_samples
        if self.z_draws is not None:
            z = self.z_draws[self.used: self.used + n]
            if z.shape[0] < n:
                raise ValueError(f"z_draws: {self.z_draws.shape[0]} rows, more locality steps asked for")
        else:
            z = torch.from_numpy(self.random.randn(n, self.original.z_dim))
        self.used += n
        return z

    def __call__(self, g: Generator, pivot: torch.Tensor) -> torch.Tensor:
        o, s = self.original, self.s
        with torch.no_grad():
            w = o.mapping(self.draw().to(pivot.device, torch.float32))
            w = o.truncate(o.to_w_plus(w), s.locality_psi, o.truncation_center())
        zero = [torch.zeros_like(n) for n in o.make_noise(1, "const")]  # the reference's noise_mode='none'
        total = 0.0
        for code in w:
            direction = code[None] - pivot
            moved = pivot + s.locality_alpha * direction / direction.norm(p=2)
            new = g.synthesis(g.styles(moved), noise=zero)
            with torch.no_grad():
                old = o.synthesis(o.styles(moved), noise=zero)
            term = 0.0
            if s.locality_l2_weight > 0:
                term = term + (old - new).square().mean() * s.locality_l2_weight
            if s.locality_lpips_weight > 0:
                term = term + self.lpips(old, new).mean() * s.locality_lpips_weight
            total = total + term
        return total / len(w)


class PivotalTuner:
    """One tuning run, advanced a step at a time (``pivotal_tuning`` drives it)."""

    def __init__(self, g: Generator, latents: Latents, images: torch.Tensor, lpips: LPIPS, settings: TuningSettings | None = None,
                 seed: int = 0, z_draws: torch.Tensor | None = None, names: dict[str, str] | None = None):
        if torch.is_inference_mode_enabled():
            raise RuntimeError("pivotal tuning needs autograd; it cannot run under torch.inference_mode")
        self.s = s = settings or TuningSettings()
        check_count(s.steps, called(names, "steps"))
        if s.l2_weight < 0 or s.lpips_weight < 0 or not math.isfinite(s.l2_weight + s.lpips_weight):
            raise ValueError(f"loss weights must be finite and >= 0, found l2 {s.l2_weight}, lpips {s.lpips_weight}")
        device = g.w_avg.device
        # the images stay where they are (a clip's frames on the CPU); each face's goes to the device in turn
        pivot, images = _pivot_images(g, latents.to(device), images.to(dtype=torch.float32), names)
        self.pivot, self.images, self.lpips = pivot, images, lpips
        self.original = g
        self.tuned = g.copy().eval()
        self.params = [p for name, p in self.tuned.named_parameters() if not name.startswith("style.")]
        for p in self.params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.params, lr=s.learning_rate)
        self.locality = LocalityRegularizer(g, lpips, s, seed, z_draws) if s.locality else None
        self.step_index, self.applied, self.stopped = 0, 0, False
        self.history: list[dict[str, torch.Tensor]] = []

    @property
    def batch(self) -> int:
        return self.pivot.shape[0]

    def loss(self, face: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s, g = self.s, self.tuned
        pivot, real = self.pivot[face: face + 1], self.images[face: face + 1].to(self.pivot.device)
        generated = g.synthesis(g.styles(pivot))
        l2 = (generated - real).square().mean()
        lp = self.lpips(generated, real)[0]
        loss = l2 * s.l2_weight + lp * s.lpips_weight
        record = {"l2": l2.detach(), "lpips": lp.detach()}
        if self.locality is not None:
            term = self.locality(g, pivot)
            loss = loss + term
            record["locality"] = term.detach() if torch.is_tensor(term) else torch.tensor(float(term))
        record["loss"] = loss.detach()
        return loss, {**record, "face": torch.tensor(face), "image": generated.detach()}

    def step(self) -> torch.Tensor:
        """One step (one update per face); returns the renderings before the update ``[B, 3, size, size]``."""
        shown = []
        for face in range(self.batch):
            loss, record = self.loss(face)
            shown.append(record.pop("image"))
            self.history.append(record)
            self.optimizer.zero_grad(set_to_none=True)
            if self.batch == 1 and record["lpips"] <= self.s.lpips_threshold:
                self.stopped = True  # checked before backward: this step is not applied (as the reference)
                break
            loss.backward()
            self.optimizer.step()
            self.applied += 1
        self.step_index += 1
        return torch.cat(shown)

    @property
    def done(self) -> bool:
        return self.stopped or self.step_index >= self.s.steps

    def result(self) -> Tuning:
        for p in self.params:
            p.grad = None
        tuned = self.tuned.requires_grad_(False)
        tuned.tuned_by = f"pivotal tuning ({self.applied // max(1, self.batch)} steps on {self.batch} face{'s' * (self.batch > 1)})"
        return Tuning(tuned, Latents(w_plus=self.pivot.clone()), self.applied, self.stopped, self.history)


def pivotal_tuning(g: Generator, latents: Latents, images: torch.Tensor, lpips: LPIPS, settings: TuningSettings | None = None,
                   seed: int = 0, progress: Progress | None = None, preview_every: int = 10, names: dict[str, str] | None = None,
                   z_draws: torch.Tensor | None = None) -> Tuning:
    """Tune a copy of ``g`` around the pivots ``latents`` (one per image) toward ``images``
    (``[B, 3, size, size]`` in [-1, 1]); ``g`` is not changed. ``lpips`` is LPIPS-alex in PTI.
    ``progress(step, steps, preview)`` after every step; it may raise to stop (nothing is kept)."""
    run = PivotalTuner(g, latents, images, lpips, settings, seed, z_draws, names)
    while not run.done:
        image = run.step()
        if progress is not None:
            show = run.step_index % max(1, preview_every) == 0 or run.done
            progress(run.step_index, run.s.steps, image if show else None)
    return run.result()
