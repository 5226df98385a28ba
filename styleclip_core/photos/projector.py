"""The W / W+ projector of PTI (``training/projectors/w_projector.py``, NVIDIA's ``projector.py``
with its learning rate lowered to 0.01), SPEC section 10.2.

Adam optimises a latent code and every noise map of the generator so that the rendering matches
the photo under the LPIPS-VGG feature distance, plus a regulariser that keeps the noise maps
free of spatial structure:

* W statistics from ``w_avg_samples`` codes ``z = RandomState(123).randn`` through the mapping
  network: the start ``w_avg`` and one scalar spread ``w_std``;
* step ``i`` of ``N`` (``t = i / N``): lr ``0.01 · ramp(t)`` (``schedules.get_lr``: step 0 has lr
  0), the code jittered by ``w_std · 0.05 · max(0, 1 - t / 0.75)² · N(0, 1)``, distance
  ``Σ (f(target) - f(image))²`` with ``f`` the LPIPS-VGG embedding of 256 px images (larger ones
  area-downsampled, as the reference does), loss ``distance + 1e5 · noise regulariser``; after
  each step every noise map is re-standardised.

Differences from the reference, on purpose: the result has the generator's own number of W+
rows (the reference hard-codes 18, which only fits 1024 px generators); a W+ mode optimises one
code per row (the reference projects in W only); a start from other codes (e4e's) is allowed;
a batch is projected at once with per-face losses summed, so each face follows the path it would
follow alone (Adam is elementwise; regulariser and standardisation are per face). The noise maps
found are returned but, as in PTI, not written into the generator.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..models.generator import Generator
from ..models.latents import Latents
from ..models.lpips import LPIPS
from ..progress import Progress
from ..schedules import get_lr
from ..values import called, check_count, check_finite

MODES = ("w", "w+")
FEATURE_SIZE = 256  # the reference compares VGG features of images at most 256 px wide


@dataclass
class ProjectorSettings:
    """The reference's defaults (``project()`` as PTI calls it: 450 steps, 600 W samples)."""

    steps: int = 450
    w_avg_samples: int = 600
    initial_learning_rate: float = 0.01
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5


@dataclass
class Projection:
    latents: Latents  # W+ codes [B, n_latent, style_dim], detached
    noise: list[torch.Tensor]  # the optimised noise maps [B, 1, r, r] (not used by the generator)
    losses: list[torch.Tensor] = field(default_factory=list)  # per step, [B]: the loss before the update
    distances: list[torch.Tensor] = field(default_factory=list)  # per step, [B]: the feature distance part


def w_statistics(g: Generator, samples: int = 600, seed: int = 123) -> tuple[torch.Tensor, float]:
    """(``w_avg`` ``[1, 1, style_dim]``, scalar ``w_std``) of ``samples`` mapped codes, computed as the
    reference does (NumPy's legacy stream for z, float32 NumPy reductions for the statistics)."""
    z = np.random.RandomState(seed).randn(samples, g.z_dim)
    with torch.no_grad():
        w = g.mapping(torch.from_numpy(z).to(g.w_avg.device, torch.float32))
    w = w.cpu().numpy().astype(np.float32)[:, None, :]
    w_avg = np.mean(w, axis=0, keepdims=True)
    w_std = float((np.sum((w - w_avg) ** 2) / samples) ** 0.5)
    return torch.from_numpy(w_avg).to(g.w_avg.device), w_std


def to_feature_range(images: torch.Tensor) -> torch.Tensor:
    """Generator range [-1, 1] -> the [0, 255] images the reference's VGG is given, reduced to
    256 px by area averaging when larger."""
    x = (images + 1) * (255 / 2)
    if x.shape[2] > FEATURE_SIZE:
        x = F.interpolate(x, size=(FEATURE_SIZE, FEATURE_SIZE), mode="area")
    return x


def features(vgg: LPIPS, images255: torch.Tensor) -> torch.Tensor:
    """The reference's ``vgg16(x, resize_images=False, return_lpips=True)`` on [0, 255] images: the
    LPIPS-VGG embedding of ``x / 127.5 - 1`` (SPEC 10.2, step 3)."""
    return vgg.embed(images255 / 127.5 - 1)


def noise_regularizer(noise: list[torch.Tensor]) -> torch.Tensor:
    """``Σ_maps Σ_levels mean(n · roll(n, 1, W))² + mean(n · roll(n, 1, H))²`` per face ``[B]``, over an
    average-pool pyramid down to 8 px (SPEC 10.2, step 6)."""
    total = 0
    for n in noise:
        while True:
            total = total + (n * torch.roll(n, shifts=1, dims=3)).mean([1, 2, 3]).square()
            total = total + (n * torch.roll(n, shifts=1, dims=2)).mean([1, 2, 3]).square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return total


def _target(images: torch.Tensor, g: Generator, what: str) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{what}: expected images [B, 3, H, W] in [-1, 1], found shape {list(images.shape)}")
    if images.shape[2:] != (g.size, g.size):
        raise ValueError(
            f"{what}: expected {g.size}x{g.size} images (the generator's resolution; align and resize the photos first), "
            f"found {images.shape[3]}x{images.shape[2]}"
        )
    return check_finite(images, what)


class Projector:
    """One projection, advanced a step at a time (``project`` drives it).

    ``start``: W+ codes to begin from (e4e's), else the W average. In ``mode='w'`` one code per
    face is optimised and broadcast to every row (a W+ start is reduced to the mean of its rows);
    in ``'w+'`` every row is free. ``initial_noise`` / ``jitter`` replace the random draws (the
    noise maps, and the per-step ``[steps, B, rows, style_dim]`` standard normal jitter of the code;
    a parity test gives the reference's); otherwise they are drawn from ``seed``.
    """

    def __init__(self, g: Generator, images: torch.Tensor, vgg: LPIPS, settings: ProjectorSettings | None = None, mode: str = "w",
                 start: Latents | None = None, seed: int = 0, initial_noise: list[torch.Tensor] | None = None,
                 jitter: torch.Tensor | None = None, names: dict[str, str] | None = None):
        if torch.is_inference_mode_enabled():
            raise RuntimeError("the projector needs autograd; it cannot run under torch.inference_mode")
        if mode not in MODES:
            raise ValueError(f"{called(names, 'mode')} must be one of {MODES}, found {mode!r}")
        if vgg.net_name != "vgg":
            raise ValueError(f"the projector's feature distance is LPIPS-vgg (VGG16), found LPIPS-{vgg.net_name}")
        self.settings = s = settings or ProjectorSettings()
        check_count(s.steps, called(names, "steps"))
        check_count(s.w_avg_samples, called(names, "w_avg_samples"))
        self.g, self.vgg, self.mode = g, vgg, mode
        self.device = device = g.w_avg.device
        target = _target(images, g, called(names, "images")).to(device, torch.float32)
        batch = target.shape[0]
        self.w_avg, self.w_std = w_statistics(g, s.w_avg_samples)
        rows = 1 if mode == "w" else g.n_latent
        if start is None:
            w = self.w_avg.expand(batch, rows, -1)
        else:
            start.check(g)
            check_finite(start, called(names, "start"))
            if start.w_plus is None:
                raise ValueError(f"{called(names, 'start')}: the projector starts from W+ codes, found StyleSpace codes")
            if start.batch_size != batch:
                raise ValueError(f"{called(names, 'start')}: {start.batch_size} codes for {batch} images; expected one per image")
            w = g.to_w_plus(start.w_plus.to(device))
            w = w.mean(1, keepdim=True) if mode == "w" else w
        self.w = w.detach().clone().float().requires_grad_(True)
        with torch.no_grad():
            self.target_features = features(vgg, to_feature_range(target))
        generator = torch.Generator().manual_seed(int(seed) % 2**63)
        if initial_noise is None:
            shapes = [b.shape[2:] for b in g.make_noise(1, "const")]
            initial_noise = [torch.randn((batch, 1, *shape), generator=generator) for shape in shapes]
        if len(initial_noise) != g.num_layers:
            raise ValueError(f"initial_noise: expected {g.num_layers} noise maps, found {len(initial_noise)}")
        self.noise = [n.detach().to(device, torch.float32).reshape(batch, 1, *n.shape[-2:]).clone().requires_grad_(True) for n in initial_noise]
        if jitter is None:
            jitter = torch.randn((s.steps, batch, rows, g.style_dim), generator=generator)
        self.jitter = jitter.to(device, torch.float32).reshape(s.steps, batch, rows, g.style_dim).clone()
        self.optimizer = torch.optim.Adam([self.w, *self.noise], betas=(0.9, 0.999), lr=s.initial_learning_rate)
        self.step_index = 0
        self.result = Projection(latents=self._latents(), noise=[n.detach() for n in self.noise])

    def _latents(self) -> Latents:
        return Latents(w_plus=self.w.detach().expand(-1, self.g.n_latent, -1).clone())

    def lr(self, step: int) -> float:
        s = self.settings
        return get_lr(step / s.steps, s.initial_learning_rate, s.lr_rampdown_length, s.lr_rampup_length)

    def noise_scale(self, step: int) -> float:
        s = self.settings
        return self.w_std * s.initial_noise_factor * max(0.0, 1.0 - (step / s.steps) / s.noise_ramp_length) ** 2

    def step(self) -> torch.Tensor:
        """One Adam step; returns the rendering it was computed from (``[B, 3, size, size]``, detached)."""
        i, s = self.step_index, self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(i)
        ws = (self.w + self.jitter[i] * self.noise_scale(i)).expand(-1, self.g.n_latent, -1)
        image = self.g.synthesis(self.g.styles(ws), noise=self.noise)
        distance = (self.target_features - features(self.vgg, to_feature_range(image))).square().sum(1)
        loss = distance + noise_regularizer(self.noise) * s.regularize_noise_weight
        # Gradients of the code and the noise only: the generator's own weights are never touched.
        grads = torch.autograd.grad(loss.sum(), [self.w, *self.noise])
        for param, grad in zip([self.w, *self.noise], grads):
            param.grad = grad
        self.optimizer.step()
        with torch.no_grad():
            for n in self.noise:
                n -= n.mean([1, 2, 3], keepdim=True)
                n *= n.square().mean([1, 2, 3], keepdim=True).rsqrt()
        self.result.losses.append(loss.detach())
        self.result.distances.append(distance.detach())
        self.step_index += 1
        self.result.latents = self._latents()
        self.result.noise = [n.detach().clone() for n in self.noise]
        return image.detach()

    @property
    def done(self) -> bool:
        return self.step_index >= self.settings.steps


def project(g: Generator, images: torch.Tensor, vgg: LPIPS, settings: ProjectorSettings | None = None, mode: str = "w",
            start: Latents | None = None, seed: int = 0, progress: Progress | None = None, preview_every: int = 10,
            names: dict[str, str] | None = None, **draws) -> Projection:
    """Project ``images`` (``[B, 3, size, size]`` in [-1, 1], aligned faces) into W or W+ of ``g``.

    ``progress(step, steps, preview)`` after every step (a preview image every ``preview_every``
    steps); it may raise to stop. ``draws``: ``initial_noise`` / ``jitter`` (see ``Projector``).
    """
    run = Projector(g, images, vgg, settings, mode, start, seed, names=names, **draws)
    while not run.done:
        image = run.step()
        if progress is not None:
            show = run.step_index % max(1, preview_every) == 0 or run.done
            progress(run.step_index, run.settings.steps, image if show else None)
    return run.result
