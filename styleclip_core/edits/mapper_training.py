"""Training StyleCLIP latent mappers (``mapper/training/coach.py``), with resumable checkpoints.

Each step is the coach's: a batch of training codes ``w`` (batch 2, shuffled every epoch, the
last partial batch dropped), ``x = G(w)`` without gradient, ``w_hat = w + 0.1 mapper(w)``,
``x_hat = G(w_hat)`` with the generator's stored noise maps, and the batch mean of the loss
set's per-sample total; only the mapper's weights are optimised (Ranger, lr 0.5, by default).
The coach's loss is CLIP Loss (weight 1) + Latent L2 Loss with reduction 'mean' (weight 0.8) +
Identity Loss (weight 0.1), each term averaged over the batch as the coach averages it.

A checkpoint is one ``.safetensors`` file: the mapper's weights under the reference's key
names (Load Latent Mapper reads it like any mapper) plus, under ``training.*`` keys and in the
metadata, the optimiser state and step that resume the run exactly. Every write goes to a
temporary name first and is then renamed over the file, so the file on disk is always a
complete checkpoint, also when a run is interrupted or crashes.

Differences from the coach: no validation pass (the coach scores up to 201 held-out codes every
2000 steps and keeps a ``best_model.pt``); sampled training codes use the generator's W average for
truncation (the coach's sampling path crashes, SPEC 5.3); the batch order is drawn from the
seed, so a resumed run follows the order of an uninterrupted one.

Under ``torchrun`` (``distributed.init`` called, several ranks) the mapper runs inside
DistributedDataParallel: every rank draws the same global batch of ``batch_size`` codes (the one a
single process draws) and takes its contiguous slice of it (``distributed.split_batch``), its
loss is its slice's sum scaled by ranks / batch_size, so the gradient DDP averages is the
single-process gradient of the batch mean up to float summation order, and every rank applies the
same optimiser step to the same averaged gradient (checked at each save: the ranks' weights must
have the same fingerprint). Rank 0 alone reads and writes checkpoints. A checkpoint holds the
global step, and the batch order is a function of the seed and the step alone (training draws no
other random numbers), so a run resumes with any number of ranks.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from .. import distributed
from ..formats.files import TRAINING_PREFIX, read_safetensors, tensors_fingerprint
from ..formats.generator_files import generator_fingerprint
from ..formats.mapper_files import load_mapper, save_mapper
from ..models.generator import Generator
from ..models.latents import Latents
from ..models.mapper import MAPPER_TYPES, LatentMapper, build_mapper
from ..progress import Progress
from .losses import ClipLoss, DirectionalClipLoss, EditContext, LossSet
from .training_checkpoints import check_free, load_optimizer_state, optimizer_state, run_steps

logger = logging.getLogger("styleclip_core.mapper_training")

OPTIMIZERS = ("ranger", "adam")
# 2: the training codes and generator are identified by the library's one fingerprint
# (formats.files); format 1 checkpoints used another hash, so resuming one cannot check them.
TRAINING_FORMAT = 2
RESUMABLE_FORMATS = (1, 2)


# ---- optimiser --------------------------------------------------------------------------------


def centralize_gradients(params) -> None:
    """Gradient centralisation (Yong et al. 2020, as in Ranger 20.4.11): subtract from the gradient
    of every parameter with two or more dims its mean over all dims but the first."""
    for p in params:
        if p.grad is not None and p.grad.ndim > 1:
            p.grad.sub_(p.grad.mean(dim=tuple(range(1, p.grad.ndim)), keepdim=True))


def ranger(params, lr: float = 0.5, betas=(0.95, 0.999), eps: float = 1e-5, alpha: float = 0.5, k: int = 6) -> torch.optim.Optimizer:
    """StyleCLIP's Ranger (``mapper/training/ranger.py``) from maintained parts: torch's RAdam
    (the same rectified update, switched on when the SMA length exceeds 5, and un-rectified
    momentum steps before) inside timm's Lookahead, with gradient centralisation applied to the
    gradients before every RAdam step. Ranger starts its slow weights at the initial weights;
    timm would start them at the first synchronisation, so the first step sets them here."""
    from timm.optim import Lookahead  # here: importing timm takes seconds, and only training needs it

    params = list(params)
    base = torch.optim.RAdam(params, lr=lr, betas=betas, eps=eps)
    initial: dict[torch.Tensor, torch.Tensor] = {}

    def before(optimizer, args, kwargs):
        centralize_gradients(params)
        for p in params:
            if p.grad is not None and "lookahead_slow_buff" not in optimizer.state[p]:
                initial[p] = p.detach().clone()

    def after(optimizer, args, kwargs):
        for p, value in initial.items():
            optimizer.state[p]["lookahead_slow_buff"] = value
        initial.clear()

    base.register_step_pre_hook(before)
    base.register_step_post_hook(after)
    return Lookahead(base, alpha=alpha, k=k)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The coach's choice: 'ranger' (its default) or 'adam' (torch's defaults)."""
    if name == "ranger":
        return ranger(params, lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, found {name!r}")


# ---- options and sources ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingOptions:
    """What defines a run (a resumed run must match them). Defaults are the coach's."""

    mapper_type: str = "LevelsMapper"
    coarse: bool = True  # LevelsMapper levels (the coach's no_coarse/no_medium/no_fine_mapper)
    medium: bool = True
    fine: bool = True
    batch_size: int = 2
    learning_rate: float = 0.5
    optimizer: str = "ranger"
    seed: int = 0  # mapper initialisation and batch order

    def __post_init__(self):
        if self.mapper_type not in MAPPER_TYPES:
            raise ValueError(f"mapper type must be one of {', '.join(MAPPER_TYPES)}, found {self.mapper_type!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, found {self.optimizer!r}")
        if self.batch_size < 1:
            raise ValueError("the batch size must be at least 1")
        if self.mapper_type == "LevelsMapper" and not (self.coarse or self.medium or self.fine):
            raise ValueError("a LevelsMapper needs at least one of the coarse, medium and fine levels")

    @property
    def works_in_stylespace(self) -> bool:
        return "StyleSpace" in self.mapper_type


def prompt_of(loss: LossSet) -> str:
    """The texts a loss set edits toward: the mapper's ``description``."""
    texts = [t.text if isinstance(t, ClipLoss) else t.target for _, t in loss.active if isinstance(t, (ClipLoss, DirectionalClipLoss))]
    return "; ".join(dict.fromkeys(texts)) or loss.describe()


def codes_fingerprint(codes: Latents) -> str:
    """Identifies a run's training codes (W+ rows or StyleSpace vectors)."""
    parts = [codes.w_plus] if codes.w_plus is not None else codes.styles
    return tensors_fingerprint({str(i): t for i, t in enumerate(parts)})


def _training_codes(latents: Latents, g: Generator, options: TrainingOptions) -> Latents:
    """The training codes on the generator's device (fresh tensors: codes made under
    ComfyUI's inference mode cannot take part in autograd), checked against ``g``."""
    try:
        latents.check(g)
    except ValueError as e:
        raise ValueError(f"training latents: {e}") from None
    if latents.w_plus is None and not options.works_in_stylespace:
        raise ValueError(f"a {options.mapper_type} trains on W+ latents; these are StyleSpace codes (train a StyleSpace mapper, or use W+ latents)")
    if latents.batch_size < options.batch_size:
        raise ValueError(f"{latents.batch_size} training latents are fewer than one batch of {options.batch_size}")
    device = g.w_avg.device
    with torch.no_grad():
        if latents.w_plus is not None:
            return Latents(w_plus=latents.w_plus.to(device, torch.float32).clone())
        return Latents(styles=[s.to(device, torch.float32).clone() for s in latents.styles])


def _take(latents: Latents, index: torch.Tensor) -> Latents:
    if latents.w_plus is not None:
        return Latents(w_plus=latents.w_plus[index])
    return Latents(styles=[s[index] for s in latents.styles])


def preview_grid(original: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """``[1, 3, 2H, B*W]``: the batch's original faces above their edits."""
    top, bottom = torch.cat(list(original), -1), torch.cat(list(edited), -1)
    return torch.cat([top, bottom], -2)[None]


# ---- checkpoint files -------------------------------------------------------------------------


def read_training_state(path: str) -> tuple[LatentMapper, dict, dict[str, torch.Tensor]]:
    """(mapper, training metadata, optimiser tensors) of a checkpoint written by training."""
    mapper, _ = load_mapper(path)
    stored, meta = read_safetensors(path, "a mapper training checkpoint")
    tensors = {k[len(TRAINING_PREFIX):]: v for k, v in stored.items() if k.startswith(TRAINING_PREFIX)}
    if "training" not in meta or not tensors:
        raise ValueError(f"{path} holds a mapper without training state (not written by Train Latent Mapper): it cannot be resumed")
    return mapper, json.loads(meta["training"]), tensors


# ---- training ---------------------------------------------------------------------------------


@dataclass
class TrainResult:
    mapper: LatentMapper  # eval mode, no gradients
    path: str  # the checkpoint file
    step: int  # steps trained in all, resumed runs included
    resumed_from: int | None  # the checkpoint's step when the run was resumed
    history: list[dict[str, float]] = field(default_factory=list)  # per step of this run: 'loss' and each term's batch mean


class MapperTrainer:
    """One training run, a step at a time (``train_mapper`` drives it); ``resume_from`` is a
    checkpoint of the same run (same options, loss, training codes and generator)."""

    def __init__(self, g: Generator, latents: Latents, loss: LossSet, options: TrainingOptions = TrainingOptions(), resume_from: str | None = None):
        if torch.is_inference_mode_enabled():
            raise RuntimeError("mapper training needs autograd; it cannot run under torch.inference_mode")
        if not loss.active:
            raise ValueError("the loss has no term with a non-zero weight; connect a CLIP loss")
        self.g, self.loss, self.options = g, loss, options
        self.rank, self.world_size = distributed.group_world()
        self.part = distributed.split_batch(options.batch_size, self.rank, self.world_size)  # this rank's slice of each batch
        self.codes = _training_codes(latents, g, options)
        self.batches_per_epoch = self.codes.batch_size // options.batch_size
        self.identity = {
            "options": asdict(options),
            "loss": loss.describe(),
            "latents": {"count": self.codes.batch_size, "sha256": codes_fingerprint(self.codes)},
            "generator": {"size": g.size, "sha256": generator_fingerprint(g)},
        }
        if self.world_size > 1:
            for r, other in enumerate(distributed.all_gather_object(self.identity)):
                if other != self.identity:
                    differ = [k for k in self.identity if other[k] != self.identity[k]]
                    raise ValueError(f"rank {r} trains another run than rank {self.rank} ({', '.join(differ)} differ): give every rank the same generator, loss, "
                                     "options and training latents")
        device = g.w_avg.device
        mapper_options = {
            "description": prompt_of(loss), "mapper_type": options.mapper_type, "stylegan_size": g.size, "work_in_stylespace": options.works_in_stylespace,
            "no_coarse_mapper": not options.coarse, "no_medium_mapper": not options.medium, "no_fine_mapper": not options.fine,
        }
        if resume_from is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(options.seed)
                self.mapper = build_mapper(options.mapper_type, latent_dim=g.style_dim, options=mapper_options, g=g)
            tensors, meta = None, None
        else:
            # rank 0 reads the checkpoint (it may exist only on its machine) and sends it to the others
            self.mapper, meta, tensors = distributed.on_main(read_training_state, resume_from)
            self._check_same_run(resume_from, meta)
        self.mapper = self.mapper.to(device).train().requires_grad_(True)
        self.net = self.mapper.net  # what runs the forward pass: the mapper's network, or its DDP wrapper
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.mapper.net, device_ids=[device.index] if device.type == "cuda" else None)
        self.names = [name for name, _ in self.mapper.net.named_parameters()]
        self.optimizer = make_optimizer(options.optimizer, self.mapper.net.parameters(), options.learning_rate)
        self.step_index = 0
        if meta is not None:
            load_optimizer_state(self.optimizer, self.names, tensors, meta["optimizer_groups"])
            self.step_index = meta["step"]
        self.saved_step = self.step_index if resume_from is not None else None
        self.last_images: tuple[torch.Tensor, torch.Tensor] | None = None
        self._order: tuple[int, np.ndarray] | None = None

    def _check_same_run(self, path: str, meta: dict):
        if meta.get("format") not in RESUMABLE_FORMATS:
            raise ValueError(f"{path}: training state format {meta.get('format')} is not one of {RESUMABLE_FORMATS}; it cannot be resumed")
        now = self.identity
        differ = [f"{k} {v!r} (checkpoint) vs {now['options'].get(k)!r} (now)" for k, v in meta["options"].items() if now["options"].get(k) != v]
        if meta["loss"] != now["loss"]:
            differ.append(f"the loss differs ({meta['loss']} vs {now['loss']})")
        if meta["format"] == 1:
            logger.warning("%s was written before the pack's one fingerprint: its training latents and generator cannot be checked; "
                           "resuming it trusts that they are the run's own", os.path.basename(path))
        else:
            differ += [f"the {what} differ" for key, what in (("latents", "training latents"), ("generator", "generator weights")) if meta[key] != now[key]]
        if differ:
            raise ValueError(
                f"cannot resume {os.path.basename(path)}: a resumed run must be the same run, but " + "; ".join(differ)
                + ". Set them back, or start a new run ('number' or 'overwrite')."
            )

    def _batch(self, step: int) -> Latents:
        # Epoch e's order comes from (seed, e) alone, so a resumed run draws the batches an
        # uninterrupted one would; the last partial batch of an epoch is dropped, as in the coach.
        epoch, position = divmod(step, self.batches_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.options.seed, epoch]).permutation(self.codes.batch_size))
        b = self.options.batch_size
        start, stop = self.part  # this rank's slice of the global batch (all of it for one process)
        index = torch.from_numpy(self._order[1][position * b:(position + 1) * b][start:stop]).to(self.g.w_avg.device)
        return _take(self.codes, index)

    def step(self) -> dict[str, float]:
        """One update; returns the batch means of the loss and its terms before it (of the global
        batch under several ranks)."""
        g = self.g
        w = self._batch(self.step_index)
        with torch.no_grad():
            if self.options.works_in_stylespace and w.w_plus is not None:
                w = Latents(styles=w.to_styles(g))
            x = g.synthesis(w.to_styles(g), noise="const")
        context = EditContext.start(x, w)
        loss = self.loss.prepare(context)
        with torch.enable_grad():
            edited = self.mapper.edit(w, g, net=self.net)
            x_hat = g.synthesis(edited.to_styles(g), noise="const")
            value = loss(context.edited(x_hat, edited))
            if self.world_size == 1:
                value.check_finite(self.step_index + 1, "batch sample")  # names the term that diverged
                total = value.total.mean()
                if not math.isfinite(float(total.detach())):
                    raise FloatingPointError(f"the loss became {float(total.detach())} at step {self.step_index + 1}; lower the learning rate")
                report = {"loss": float(total.detach())}
                report.update({label: float(v.detach().mean()) for label, v in value.parts.items()})
            else:
                report = self._global_means(value)
                # DDP averages the ranks' gradients: (ranks / batch) x a slice's sum makes that average
                # the gradient of the global batch's mean
                total = value.total.sum() * (self.world_size / self.options.batch_size)
            self.mapper.zero_grad(set_to_none=True)
            total.backward()
        self.optimizer.step()
        self.step_index += 1
        self.last_images = (x, x_hat.detach())
        return report

    def _global_means(self, value) -> dict[str, float]:
        """The global batch's means of the loss and its terms (one all-reduce of their sums); a
        non-finite one is an error on every rank, naming the term on the rank that holds it."""
        labels = list(value.parts)
        sums = torch.stack([value.total.detach().sum(), *(value.parts[k].detach().sum() for k in labels)]).double()
        means = (distributed.all_reduce_sum(sums) / self.options.batch_size).tolist()
        if not all(math.isfinite(m) for m in means):
            value.check_finite(self.step_index + 1, f"rank {self.rank}'s batch sample")
            raise FloatingPointError(f"the loss became {means[0]} at step {self.step_index + 1} (on another rank); lower the learning rate")
        return {"loss": means[0], **dict(zip(labels, means[1:]))}

    def trained_mapper(self) -> LatentMapper:
        """A copy of the mapper for inference (eval mode, no gradients)."""
        net = build_mapper(self.mapper.mapper_type, {k: v.detach().clone() for k, v in self.mapper.net.state_dict().items()}, options=self.mapper.options)
        return net.to(self.g.w_avg.device)

    def save(self, path: str, overwrite: bool):
        """Write the checkpoint (atomically) unless this step is already on disk; under several
        ranks every rank calls it (the ranks' weights are compared) and rank 0 writes."""
        if self.world_size > 1 and self.saved_step != self.step_index:
            self.check_ranks_agree()
        if self.rank == 0 and not (self.saved_step == self.step_index and os.path.exists(path)):
            tensors, groups = optimizer_state(self.optimizer, self.names)
            # the step is global and the batch order a function of (seed, step): nothing here depends
            # on the number of ranks, which is recorded only for information
            meta = {"format": TRAINING_FORMAT, "step": self.step_index, "optimizer_groups": groups, **self.identity, "ranks": self.world_size}
            save_mapper(self.mapper, path, overwrite=overwrite, training_tensors=tensors, metadata={"training": json.dumps(meta)})
        self.saved_step = self.step_index

    def check_ranks_agree(self):
        """Every rank holds the same mapper weights (the same bits), else a RuntimeError on every rank."""
        mine = tensors_fingerprint({k: v.detach() for k, v in self.mapper.net.state_dict().items()})
        prints = distributed.all_gather_object(mine)
        if len(set(prints)) > 1:
            raise RuntimeError(f"after step {self.step_index} the ranks' mapper weights differ ({[p[:12] for p in prints]}): "
                               "their optimiser steps were not the same")


def train_mapper(
    g: Generator, latents: Latents, loss: LossSet, path: str, steps: int, options: TrainingOptions = TrainingOptions(),
    resume: bool = False, overwrite: bool = False, save_every: int = 2000, preview_every: int = 100,
    progress: Progress | None = None, report: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train (or, with ``resume``, continue) a mapper until ``steps`` steps in all, checkpointing
    to ``path`` every ``save_every`` steps (0: only at the end), at the end, and when
    ``progress`` raises (ComfyUI's cancel); the exception is then re-raised. An error inside a
    step leaves the last checkpoint as it was. An existing ``path`` is continued with ``resume``,
    replaced at the first save with ``overwrite``, and otherwise an error before any training
    (``checkpoint_path`` picks names).

    ``progress(done, total, preview)`` runs after every step, with a grid of the batch's
    original and edited faces every ``preview_every`` steps; ``report(text)`` gets the step and
    losses at the same moments.
    """
    if steps < 1 or save_every < 0 or preview_every < 1:
        raise ValueError(f"need steps >= 1, save_every >= 0 and preview_every >= 1, found {steps}, {save_every}, {preview_every}")
    distributed.on_main(check_free, path, resume or overwrite)  # rank 0's file (under torchrun, the one that is written)
    trainer = MapperTrainer(g, latents, loss, options, resume_from=path if resume else None)
    resumed_from = trainer.step_index if resume else None
    history = run_steps(trainer, steps, path, overwrite or resume, save_every, preview_every, progress, report,
                        lambda: preview_grid(*trainer.last_images))
    distributed.barrier()  # under torchrun: every rank returns once the last checkpoint is written
    return TrainResult(trainer.trained_mapper(), path, trainer.step_index, resumed_from, history)

