"""StyleGAN-NADA: a generator moved to a new domain named by text, with CLIP alone (Gal et al.,
"StyleGAN-NADA: CLIP-Guided Domain Adaptation of Image Generators", SIGGRAPH 2022).

Reference: rinongal/StyleGAN-nada dc8406a (2022-08-30): ``ZSSGAN/train.py`` (the loop),
``ZSSGAN/model/ZSSGAN.py`` (the two generators, layer selection), ``ZSSGAN/criteria/clip_loss.py``
(the CLIP terms), ``ZSSGAN/options/train_options.py`` (defaults); SPEC 15. ``fixtures/nada``
replays three runs of it step by step (``tests/test_nada_reference.py``).

Networks. ``G_f`` is the generator as loaded, frozen; ``G_t`` a copy of it that is trained. Both
images of a step come from the same codes ``w = M_f(z)``, ``z ~ N(0, I)`` of the *frozen* mapping
(``ZSSGAN.forward``), at truncation 1, and each generator draws its own noise maps
(``randomize_noise=True``), so the two images differ by their noise even at step 0. The mapping
network and the ToRGB layers are never trained (except ``to_rgb1``, see below).

CLIP image embedding (``CLIPLoss.preprocess`` / ``get_image_features``): ``f(x) = E_I(N(C(R((x +
1) / 2)))) / ||.||`` with ``R`` torchvision's tensor ``Resize(224, bicubic)`` (antialiased since
torchvision 0.17), ``C`` ``CenterCrop(224)`` and ``N`` CLIP's mean/std: ``ClipModel`` with the
'nada' preprocessing.

Text (``get_text_features``, ``compute_text_direction``): ``E(c)`` = the 79 ImageNet templates
formatted with class ``c``, each embedded and normalised (``ClipModel.template_features``);
the text direction is ``d = mean_t(E(target)_t - E(source)_t)`` normalised (paired by template,
*not* the difference of the template means).

Loss of one step, per CLIP model ``m`` (weights ``clip_weights``, summed):

* directional (``clip_directional_loss``, lambda_direction, 1): ``e_b = f(G_t(w_b)) - f(G_f(w_b))``
  (re-encoded from ``G_t(w) + 1e-6`` when ``e`` sums to exactly 0), normalised;
  ``L_dir = mean_b (1 - cos(e_b, d))``;
* global (``global_clip_loss``, lambda_global, 0): ``mean_b (1 - exp(s) cos(f(G_t(w_b)),
  t) / 100)`` with ``t`` the embedding of "a <target>" and ``exp(s)`` CLIP's logit scale;
* angle ("manifold", ``clip_angle_loss``, lambda_manifold, 0): ``mean_b |clamp(<f(G_t(w_b)),
  f(G_f(w_b))>, -1, 1) - <T, S>|`` with ``S``, ``T`` the normalised means of the source / target
  template embeddings.

The patch terms (need >= 512 px images) and the texture term (never reached by ``ZSSGAN.forward``)
are not implemented, nor the image-to-image direction (``--style_img_dir``).

Layers trained (``determine_opt_layers``; auto_layer_k, auto_layer_iters, auto_layer_batch): each
step starts from ``w0 = M_f(z)``, ``z`` a fresh ``[auto_layer_batch, D]`` draw, repeated to W+,
takes ``auto_layer_iters`` plain SGD steps (lr 0.01) on an *independent* copy ``w`` of it against
``sum_m weight_m * global(G_t(w), "<target>")`` (the bare class name), and trains this step only
the modules of the ``auto_layer_k`` largest ``mean_{batch, channels} |w - w0|``. Row ``i`` selects
``[conv1, to_rgb1, convs[0], convs[1], ...][i]``, as the reference indexes: shifted by one from
the rows that drive them (row ``i >= 2`` drives ``convs[i - 1]``) and row 1 trains ``to_rgb1``.
Reproduced as it is (SPEC 15.4, fixture run B). With auto_layer_iters 0 the layers of ``phase``
train every step (``SG2Generator.get_training_layers``). Where the reference's layer choice is
the same every step (auto_layer_k >= the W+ rows, so all rows are chosen), the selection pass
changes nothing and is skipped. Only ``w`` takes a gradient in the selection pass: the
reference also fills every weight's gradient there and discards it (``net.zero_grad()``).

Optimiser (``train.py``): ``Adam(G_t.parameters(), lr = 0.8 lr, betas = (0, 0.99^0.8))``; 0.8 =
g_reg_every / (g_reg_every + 1) with g_reg_every 4, rosinality's lazy-regularisation factor
although nothing regularises. As under torch >= 2 (``zero_grad`` sets gradients to None), a
parameter that is not trained in a step has no gradient, and Adam neither moves it nor counts
the step for it: each parameter's bias correction counts its own steps.

StyleGAN3 generators (``SG3Generator`` in ``ZSSGAN/model/ZSSGAN.py``): the reference selects no
layers for them (its selection code needs StyleGAN2's layer list; the README says they do not
support layer freezing), so every step trains ``get_training_layers``: the synthesis children
``[:11] + [12:13] + [14:]`` (input, L0-L9, L11, L13, L14 of a 14-layer net: all but L10 and L12),
their affines frozen, whatever the selection settings. The codes are ``SG3Generator.style``'s,
truncated at 0.7 toward ``w_avg`` on every row (its default, which ``ZSSGAN.forward`` does not
override), and the frozen image gets ``N(0, (5e-4)^2)`` noise "in place of noise injections".

Defaults are the README's command (``--batch 2 --lr 0.002 --iter 301 --auto_layer_k 18
--auto_layer_iters 1 --auto_layer_batch 8``, ViT-B/32 and ViT-B/16 with weights 1 and 1); the
argparse defaults differ (batch 16, auto_layer_k 1), and the docstring of ``train.py`` turns
selection off.

Random draws. The reference draws everything from torch's global generator in one stream; here
each step's draws come from a generator seeded by (seed, step, what), so a resumed run draws what
an uninterrupted one would. ``draws`` may replace them (the fixture tests replay the reference's).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..formats.files import TRAINING_PREFIX, digest, module_fingerprint, read_safetensors
from ..formats.generator_files import ADAPTATION_KEY, generator_fingerprint, load_generator, save_generator
from ..models.clip import ClipModel
from ..models.generator import Generator
from ..progress import Progress
from .mapper_training import preview_grid
from .training_checkpoints import check_free, load_optimizer_state, optimizer_state, run_steps

LR_RATIO = 4 / 5  # train.py: g_reg_ratio = g_reg_every / (g_reg_every + 1), g_reg_every 4
SELECTION_LR = 0.01  # ZSSGAN.determine_opt_layers: SGD([w_codes], lr=0.01)
SG3_TRUNCATION = 0.7  # SG3Generator.style(z_codes, truncation=0.7)
SG3_JITTER = 5e-4  # ZSSGAN.forward: frozen_img + randn_like(frozen_img) * 5e-4 for StyleGAN3
TRAINING_FORMAT = 1
# Trained modules without adaptive selection (SG2Generator.get_training_layers(phase)); None in the
# reference is "default". Each is (children, conv range): 'const' is the learned 4x4 input.
PHASES = ("default", "texture", "shape", "shape_expanded", "no_fine", "all")


@dataclass(frozen=True)
class DomainAdaptationSettings:
    """One NADA run's settings (see the module doc for each one's meaning and source)."""

    source: str = "photo"
    target: str = "sketch"
    batch_size: int = 2
    learning_rate: float = 0.002
    lambda_direction: float = 1.0
    lambda_global: float = 0.0
    lambda_manifold: float = 0.0
    auto_layer_k: int = 18  # capped at the generator's W+ rows
    auto_layer_iters: int = 1  # 0: no selection, train the layers of `phase` every step
    auto_layer_batch: int = 8
    phase: str = "default"
    clip_weights: tuple[float, ...] = (1.0,)
    seed: int = 0

    def __post_init__(self):
        if not self.source.strip() or not self.target.strip():
            raise ValueError(f"domain adaptation needs a source and a target text, found {self.source!r} and {self.target!r}")
        if self.source.strip() == self.target.strip():
            raise ValueError(f"the source and target texts are the same ({self.source!r}): there is no direction between them")
        if self.batch_size < 1 or self.auto_layer_batch < 1 or self.auto_layer_k < 1 or self.auto_layer_iters < 0:
            raise ValueError(f"need batch_size, auto_layer_batch, auto_layer_k >= 1 and auto_layer_iters >= 0, found "
                             f"{self.batch_size}, {self.auto_layer_batch}, {self.auto_layer_k}, {self.auto_layer_iters}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, found {self.learning_rate}")
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, found {self.phase!r}")
        if not self.clip_weights or any(not math.isfinite(w) for w in self.clip_weights):
            raise ValueError(f"clip_weights must be finite numbers, one per CLIP model, found {self.clip_weights}")
        if not (self.lambda_direction or self.lambda_global or self.lambda_manifold):
            raise ValueError("every loss weight is 0 (lambda_direction, lambda_global, lambda_manifold): nothing would train")
        object.__setattr__(self, "clip_weights", tuple(float(w) for w in self.clip_weights))


# ---- CLIP terms (criteria/clip_loss.py) -------------------------------------------------------


def nada_clip(clip: ClipModel) -> ClipModel:
    """``clip`` (the same network) with StyleGAN-NADA's image preprocessing."""
    return clip if clip.preprocessing == "nada" else clip.with_preprocessing("nada")


def text_direction(clip: ClipModel, source: str, target: str) -> torch.Tensor:
    """``[D]``: NADA's direction, the normalised mean of the paired template differences."""
    d = (clip.template_features(target) - clip.template_features(source)).mean(0)
    if d.norm() < 1e-6:
        raise ValueError(f"the texts {source!r} and {target!r} have the same CLIP embedding: there is no direction between them")
    return d / d.norm()


def global_loss(clip: ClipModel, image_features: torch.Tensor, text: str) -> torch.Tensor:
    """``global_clip_loss`` from unit image features: ``mean(1 - exp(s) cos / 100)``."""
    cos = image_features @ clip.text_features(text).to(image_features)
    return (1 - clip.net.logit_scale.exp().to(cos) * cos / 100).mean()


def directional_loss(clip: ClipModel, frozen_features: torch.Tensor, trainable_image: torch.Tensor, direction: torch.Tensor,
                     trainable_features: torch.Tensor | None = None) -> torch.Tensor:
    """``clip_directional_loss`` (cosine): ``mean_b(1 - cos(e_b, d))``."""
    t = clip.encode_images(trainable_image) if trainable_features is None else trainable_features
    e = t - frozen_features
    if e.sum() == 0:  # the reference's guard against a zero change
        e = clip.encode_images(trainable_image + 1e-6) - frozen_features
    e = e / e.clone().norm(dim=-1, keepdim=True)
    return (1 - F.cosine_similarity(e, direction[None].to(e), dim=1, eps=1e-8)).mean()


def angle_loss(clip: ClipModel, frozen_features: torch.Tensor, trainable_features: torch.Tensor, source: str, target: str) -> torch.Tensor:
    """``clip_angle_loss``: ``mean_b |clamp(<f_t, f_f>, -1, 1) - <T, S>|``."""
    text_cos = clip.text_features(target, templates=True) @ clip.text_features(source, templates=True)
    image_cos = (trainable_features * frozen_features).sum(-1).clamp(-1, 1)
    return (image_cos - text_cos.to(image_cos)).abs().mean()


# ---- layers -----------------------------------------------------------------------------------


def selectable_modules(g: Generator) -> list[str]:
    """What W+ row i selects (``idx_to_layer``): conv1, to_rgb1, convs.0, convs.1, ..."""
    return ["conv1", "to_rgb1", *(f"convs.{i}" for i in range(len(g.convs)))]


def phase_modules(g: Generator, phase: str) -> list[str]:
    """The modules ``SG2Generator.get_training_layers(phase)`` trains ('const' = the 4x4 input)."""
    convs = [f"convs.{i}" for i in range(len(g.convs))]
    chosen = {"default": convs, "texture": convs[2:10], "shape": convs[0:2], "shape_expanded": convs[0:3], "no_fine": convs[:10]}
    if phase == "all":
        return [name for name, _ in g.named_children() if name != "noises"]
    return ["input", "conv1", *chosen[phase]]


def stylegan3_modules(g) -> list[str]:
    """What the reference trains in a StyleGAN3 generator (``SG3Generator.get_training_layers``)."""
    children = ["synthesis.input", *(f"synthesis.{n}" for n in g.synthesis.layer_names)]
    return children[:11] + children[12:13] + children[14:]


def is_stylegan3(g) -> bool:
    return getattr(g, "architecture", None) == "stylegan3"


def set_trained(g: Generator, modules: Sequence[str]) -> None:
    """Only the parameters of ``modules`` (whole subtrees) take gradients; of a StyleGAN3 layer,
    not its affine (``SG3Generator.unfreeze_layers``)."""
    g.requires_grad_(False)
    for name in modules:
        module = g.get_submodule(name)
        module.requires_grad_(True)
        if is_stylegan3(g) and hasattr(module, "affine"):
            module.affine.requires_grad_(False)


# ---- random draws -----------------------------------------------------------------------------


class SeededDraws:
    """Every random draw of a run, from a generator seeded by (seed, step, what): a step's draws do
    not depend on the steps before it, so a resumed run draws what an uninterrupted one would."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def _generator(self, step: int, what: str) -> torch.Generator:
        return torch.Generator().manual_seed(int(digest(self.seed, step, what)[:15], 16))

    def latents(self, step: int, what: str, n: int, dim: int) -> torch.Tensor:
        """``[n, dim]`` standard normal z ('sample': the step's batch; 'selection': layer selection)."""
        return self.normal(step, what, (n, dim))

    def normal(self, step: int, what: str, shape) -> torch.Tensor:
        """Standard normal values of ``shape`` (StyleGAN3's frozen-image jitter: 'jitter')."""
        return torch.randn(tuple(shape), generator=self._generator(step, what))

    def noise(self, step: int, what: str, g: Generator, n: int) -> list[torch.Tensor]:
        """Per-layer noise maps for ``n`` images ('frozen', 'trainable', 'selection.<k>')."""
        return g.make_noise(n, "random", self._generator(step, "noise " + what))


# ---- training ---------------------------------------------------------------------------------


@dataclass
class StepReport:
    loss: float
    parts: dict[str, float]  # each term's value summed over CLIP models (weighted by clip_weights), unweighted by its lambda
    trained: list[str]  # the modules trained in this step
    layer_weights: list[float] | None = None  # the selection's mean |w - w0| per W+ row, when selection ran

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, **self.parts}


class DomainAdapter:
    """One NADA run, a step at a time (``adapt_domain`` drives it). ``frozen`` stays as it is;
    ``clips`` are one or more CLIP models (``settings.clip_weights`` weighs them)."""

    def __init__(self, frozen: Generator, clips: Sequence[ClipModel], settings: DomainAdaptationSettings = DomainAdaptationSettings(),
                 draws=None, resume_from: str | None = None):
        if torch.is_inference_mode_enabled():
            raise RuntimeError("domain adaptation needs autograd; it cannot run under torch.inference_mode")
        clips = list(clips)
        if len(clips) != len(settings.clip_weights):
            raise ValueError(f"{len(clips)} CLIP models but {len(settings.clip_weights)} clip_weights: give one weight per model")
        self.frozen = frozen.eval().requires_grad_(False)
        self.clips = [nada_clip(c) for c in clips]
        self.settings = settings
        self.draws = draws or SeededDraws(settings.seed)
        self.device = frozen.w_avg.device
        self.k = min(settings.auto_layer_k, frozen.n_latent)
        self.identity = {
            "format": TRAINING_FORMAT,
            "settings": asdict(settings),
            "frozen_generator": {"size": frozen.size, "sha256": generator_fingerprint(frozen), "source": getattr(frozen, "source", None)},
            "clip": [{"name": c.name, "sha256": digest(module_fingerprint(c.net))} for c in self.clips],
        }
        if resume_from is None:
            self.trainable = frozen.copy()
            meta, tensors = None, None
        else:
            self.trainable, meta, tensors = read_adaptation_checkpoint(resume_from, self.device)
            self._check_same_run(resume_from, meta)
            # run as the frozen one runs (the file does not say how it was loaded)
            self.trainable.set_precision(getattr(frozen, "precision", "fp32")).set_ops_backend(getattr(frozen, "ops_backend", "auto"))
        self.trainable.train()
        self.names = [name for name, _ in self.trainable.named_parameters()]
        s = settings
        self.optimizer = torch.optim.Adam(self.trainable.parameters(), lr=s.learning_rate * LR_RATIO, betas=(0 ** LR_RATIO, 0.99 ** LR_RATIO))
        self.step_index = 0
        if meta is not None:
            load_optimizer_state(self.optimizer, self.names, tensors, meta["optimizer_groups"])
            self.step_index = meta["step"]
        self.saved_step = self.step_index if resume_from is not None else None
        with torch.no_grad():
            self.directions = [text_direction(c, s.source, s.target) for c in self.clips]
        self.last_images: tuple[torch.Tensor, torch.Tensor] | None = None

    def _check_same_run(self, path: str, meta: dict):
        now = self.identity
        if meta.get("format") != TRAINING_FORMAT:
            raise ValueError(f"{path}: domain adaptation state format {meta.get('format')} is not {TRAINING_FORMAT}; it cannot be resumed")
        differ = [f"{k} {v!r} (checkpoint) vs {now['settings'].get(k)!r} (now)" for k, v in meta["settings"].items()
                  if k != "clip_weights" and now["settings"].get(k) != v]
        if list(meta["settings"]["clip_weights"]) != list(now["settings"]["clip_weights"]):
            differ.append(f"clip_weights {meta['settings']['clip_weights']} (checkpoint) vs {list(now['settings']['clip_weights'])} (now)")
        if meta["frozen_generator"]["sha256"] != now["frozen_generator"]["sha256"]:
            differ.append("the generator it started from differs")
        if [c["sha256"] for c in meta["clip"]] != [c["sha256"] for c in now["clip"]]:
            differ.append("the CLIP models differ")
        if differ:
            raise ValueError(f"cannot resume {os.path.basename(path)}: a resumed run must be the same run, but " + "; ".join(differ)
                             + ". Set them back, or start a new run ('number' or 'overwrite').")

    # -- one step --

    def _w(self, z: torch.Tensor) -> torch.Tensor:
        w = self.frozen.to_w_plus(self.frozen.mapping(z.to(self.device)))
        if is_stylegan3(self.frozen):  # SG3Generator.style truncates at 0.7 by default
            w = self.frozen.truncate(w, SG3_TRUNCATION, self.frozen.truncation_center())
        return w

    def select_layers(self) -> tuple[list[str], list[float] | None]:
        """(modules to train this step, the selection's per-row weights or None)."""
        s, g = self.settings, self.trainable
        if is_stylegan3(g):
            return stylegan3_modules(g), None
        if s.auto_layer_iters == 0:
            return phase_modules(g, s.phase), None
        rows = selectable_modules(g)
        if self.k >= g.n_latent:  # every row is chosen, whatever the weights
            return rows, None
        with torch.no_grad():
            w0 = self._w(self.draws.latents(self.step_index, "selection", s.auto_layer_batch, g.z_dim))
        w = w0.clone().requires_grad_(True)  # an independent copy (SPEC 15.4: the reference's CPU aliasing)
        sgd = torch.optim.SGD([w], lr=SELECTION_LR)
        g.requires_grad_(False)
        for k in range(s.auto_layer_iters):
            image = g(w, noise=self.draws.noise(self.step_index, f"selection.{k}", g, s.auto_layer_batch))
            loss = torch.stack([weight * global_loss(c, c.encode_images(image), s.target)
                                for c, weight in zip(self.clips, s.clip_weights)]).sum()
            sgd.zero_grad()
            loss.backward()
            sgd.step()
        layer_weights = (w.detach() - w0).abs().mean(dim=-1).mean(dim=0)
        chosen = torch.topk(layer_weights, self.k)[1].tolist()
        return [rows[i] for i in chosen], layer_weights.tolist()

    def _loss(self, frozen_image: torch.Tensor, trainable_image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.settings
        total, parts = [], {}
        for clip, weight, direction in zip(self.clips, s.clip_weights, self.directions):
            with torch.no_grad():
                frozen_f = clip.encode_images(frozen_image)
            trainable_f = clip.encode_images(trainable_image)
            terms = []
            if s.lambda_global:
                terms.append(("global", s.lambda_global, global_loss(clip, trainable_f, "a " + s.target)))
            if s.lambda_direction:
                terms.append(("directional", s.lambda_direction, directional_loss(clip, frozen_f, trainable_image, direction, trainable_f)))
            if s.lambda_manifold:
                terms.append(("angle", s.lambda_manifold, angle_loss(clip, frozen_f, trainable_f, s.source, s.target)))
            model_loss = sum(lam * value for _, lam, value in terms)
            total.append(weight * model_loss)
            for label, _, value in terms:
                parts[label] = parts.get(label, 0) + weight * value.detach()
        return torch.stack(total).sum(), parts

    def step(self) -> StepReport:
        """One update of the trainable generator; returns the loss before it."""
        s, step = self.settings, self.step_index
        modules, layer_weights = self.select_layers()
        set_trained(self.trainable, modules)
        with torch.no_grad():
            w = self._w(self.draws.latents(step, "sample", s.batch_size, self.frozen.z_dim))
            frozen_image = self.frozen(w, noise=self.draws.noise(step, "frozen", self.frozen, s.batch_size))
            if is_stylegan3(self.frozen):  # in place of noise injections (ZSSGAN.forward)
                frozen_image = frozen_image + self.draws.normal(step, "jitter", frozen_image.shape).to(frozen_image) * SG3_JITTER
        trainable_image = self.trainable(w, noise=self.draws.noise(step, "trainable", self.trainable, s.batch_size))
        loss, parts = self._loss(frozen_image, trainable_image)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss became {value} at step {step + 1}; lower the learning rate")
        self.optimizer.zero_grad(set_to_none=True)  # untrained parameters keep no gradient: Adam skips them
        loss.backward()
        self.optimizer.step()
        self.step_index += 1
        self.last_images = (frozen_image, trainable_image.detach())
        return StepReport(value, {k: float(v) for k, v in parts.items()}, modules, layer_weights)

    # -- results --

    def adapted_generator(self) -> Generator:
        """A copy of the trained generator for inference (eval mode, no gradients), marked with its run."""
        g = self.trainable.copy().eval().requires_grad_(False)
        g.adaptation = adaptation_info(self.settings, self.step_index, getattr(self.frozen, "source", None))
        if hasattr(self.frozen, "source"):
            g.source = f"{self.frozen.source} adapted to {self.settings.target!r}"
        return g

    def save(self, path: str, overwrite: bool):
        """Write the checkpoint (atomically) unless this step is already on disk."""
        if self.saved_step == self.step_index and os.path.exists(path):
            return
        tensors, groups = optimizer_state(self.optimizer, self.names)
        meta = {**self.identity, "step": self.step_index, "optimizer_groups": groups}
        info = adaptation_info(self.settings, self.step_index, getattr(self.frozen, "source", None))
        save_generator(self.trainable, path, overwrite=overwrite, training_tensors=tensors,
                       metadata={ADAPTATION_KEY: json.dumps(info), "training": json.dumps(meta)})
        self.saved_step = self.step_index


def adaptation_info(settings: DomainAdaptationSettings, step: int, source: str | None) -> dict:
    """What an adapted generator's file says about it: texts, steps, settings, starting generator."""
    return {"source_text": settings.source, "target_text": settings.target, "steps": step, "from_generator": source,
            "settings": asdict(settings), "method": "StyleGAN-NADA (rinongal/StyleGAN-nada dc8406a)"}


def read_adaptation_checkpoint(path: str, device) -> tuple[Generator, dict, dict[str, torch.Tensor]]:
    """(trainable generator, training metadata, optimiser tensors) of a checkpoint Train Domain wrote."""
    stored, meta = read_safetensors(path, "a domain adaptation checkpoint")
    if "training" not in meta or ADAPTATION_KEY not in meta:
        raise ValueError(f"{path} is a generator without domain adaptation training state (not written by Train Domain): it cannot be resumed")
    tensors = {k[len(TRAINING_PREFIX):]: v.to(device) for k, v in stored.items() if k.startswith(TRAINING_PREFIX)}
    g = load_generator(path, device)
    return g, json.loads(meta["training"]), tensors


@dataclass
class AdaptResult:
    generator: Generator  # the adapted generator (eval mode, no gradients)
    path: str  # the checkpoint file
    step: int  # steps trained in all, resumed runs included
    resumed_from: int | None
    history: list[StepReport] = field(default_factory=list)


@torch.no_grad()
def preview_faces(frozen: Generator, trainable: Generator, z: torch.Tensor, truncation: float = 0.7) -> torch.Tensor:
    """A grid of fixed faces (truncated around the frozen generator's centre, stored noise): the
    frozen generator's above the trainable one's."""
    w = frozen.truncate(frozen.to_w_plus(frozen.mapping(z)), truncation, frozen.truncation_center())
    return preview_grid(frozen(w), trainable(w))


def adapt_domain(
    frozen: Generator, clips: Sequence[ClipModel], settings: DomainAdaptationSettings, path: str, steps: int,
    resume: bool = False, overwrite: bool = False, save_every: int = 50, preview_every: int = 25, preview_count: int = 4,
    progress: Progress | None = None, report: Callable[[str], None] | None = None, draws=None,
) -> AdaptResult:
    """Adapt (or, with ``resume``, continue adapting) ``frozen`` until ``steps`` steps in all,
    checkpointing to ``path`` every ``save_every`` steps (0: only at the end), at the end, and when
    ``progress`` raises (ComfyUI's cancel); the exception is then re-raised. An error inside a
    step leaves the last checkpoint as it was. An existing ``path`` is continued with ``resume``,
    replaced at the first save with ``overwrite``, and otherwise an error before any training.

    ``progress(done, total, preview)`` runs after every step, with a grid of ``preview_count`` fixed
    faces (from the seed) by the frozen and the trained generator every ``preview_every`` steps;
    ``report(text)`` gets the step and losses at the same moments.
    """
    if steps < 1 or save_every < 0 or preview_every < 1 or preview_count < 1:
        raise ValueError(f"need steps >= 1, save_every >= 0, preview_every >= 1 and preview_count >= 1, found {steps}, {save_every}, {preview_every}, {preview_count}")
    check_free(path, resume or overwrite)
    adapter = DomainAdapter(frozen, clips, settings, draws=draws, resume_from=path if resume else None)
    resumed_from = adapter.step_index if resume else None
    preview_z = torch.randn(preview_count, frozen.z_dim, generator=torch.Generator().manual_seed(settings.seed)).to(adapter.device)
    history = run_steps(adapter, steps, path, overwrite or resume, save_every, preview_every, progress, report,
                        lambda: preview_faces(adapter.frozen, adapter.trainable, preview_z))
    return AdaptResult(adapter.adapted_generator(), path, adapter.step_index, resumed_from, history)
