"""StyleGAN-NADA: one training step, ours against the reference loop's maths, in one run.

    python benchmarks/bench_nada.py [--sizes 256 1024] [--steps N] [--settings readme k1]
                                    [--impls reference reference-loop ours] [--device cpu] [--quick]

Both sides adapt the same seeded random full-size config-f generator (``Generator(size)``'s
random init, ``bench_generator.build``) with the same random full-size CLIP ViT-B/32 (open_clip
'ViT-B-32-quickgelu', OpenAI's architecture, built without pretrained weights), "photo" ->
"sketch", one CLIP of weight 1, lr 0.002, directional term only (SPEC 15). The generator's noise
strengths, 0 at init, are set to seeded U(0.05, 0.3) values, as a trained generator has them off 0:
at 0 the two images of step 0 are equal, both sides' directional term re-encodes the trainable
batch (its guard against a zero change) and the first losses are rounding noise. Two settings:

* readme: the README's command (batch 2, auto_layer_k 18, auto_layer_iters 1, auto_layer_batch 8):
  k covers every W+ row, so every selectable layer trains whatever the selection finds;
* k1: the same with argparse's auto_layer_k = 1: the selection pass decides which one layer trains.

Ours: ``styleclip_core.edits.domain_adaptation.DomainAdapter.step`` (it skips the selection pass
under readme, where the choice is fixed; under k1 the selection is a batch-8 forward/backward
through the trainable generator to w alone).

Reference: one iteration of ``ZSSGAN/train.py``'s loop with ``ZSSGAN/model/ZSSGAN.py`` and
``criteria/clip_loss.py`` (rinongal/StyleGAN-nada dc8406a), re-enacted here from SPEC 15.2-15.4 on
the library's networks, the generators on the reference (rosinality CPU) code path
(``reference_equivalent.to_reference_path``), as the other benchmarks do:

* ``net.train()``; ``z = randn(batch, 512)`` from torch's global stream;
* ``determine_opt_layers`` whenever auto_layer_iters > 0, also when k covers every row: every
  child of the trainable generator unfrozen, ``w0`` = frozen mapping of ``randn(8, 512)`` repeated
  to W+, ``w`` its copy through the host (``torch.Tensor(w0.cpu().numpy())``, made independent as on
  a GPU: SPEC 15.4), ``SGD([w], 0.01)`` steps against ``global_clip_loss(img, target)``, which
  tokenizes and encodes the text on every call (OpenAI CLIP's ``model(image, tokens)``: both towers,
  ``exp(logit_scale) cos``); the backward also fills every generator weight's gradient (the stray
  gradients); ``topk`` of ``mean |w - w0|``, then freeze everything and unfreeze the chosen
  modules. The README's k = 18 is capped at the W+ rows (14 at 256 px), where ``torch.topk`` of the
  reference itself would raise;
* both images from the frozen mapping (``randomize_noise``: fresh noise drawn by each generator),
  CLIP preprocessing as torchvision's ``Normalize(-1, 2)``, ``Resize(224, bicubic)`` (antialiased,
  torchvision >= 0.17), ``CenterCrop(224)`` and CLIP's ``Normalize`` on the float batch, features
  normalised in place, the directional loss (text direction computed on first use, then cached);
* ``net.zero_grad()`` (both generators; gradients to None as torch >= 2 does), ``loss.backward()``,
  ``Adam(trainable.parameters(), 0.8 lr, betas (0, 0.99^0.8))`` step over every parameter.

``--impls reference-loop``: the same loop on our generator code path, which separates what the
loop costs (the selection pass every step, its stray gradients, the text encoded per call) from
what the rosinality CPU generator code costs.

On CUDA the reference's CLIP runs in float16, as ``clip.load`` leaves it on a GPU
(``open_clip.model.convert_weights_to_lp`` of a copy, inputs cast as OpenAI's
``image.type(self.dtype)``); on a CPU ``clip.load`` casts it to float32, as here. Not part of a
step on either side: the reference's unused RN50 CLIP (loaded for the texture term), the
periodic samples (the reference renders ``n_sample`` fixed faces every ``output_interval`` steps,
ours its preview grid every 25) and checkpoint writes. The README runs two CLIPs (B/32 and B/16),
which about doubles the CLIP share of a step on both sides; one is used here. The README's
environment is torch 1.7, whose ``zero_grad`` writes zeros instead of None, so there Adam would
also step (a zero move, but the work and the moment updates) every parameter that ever had a
stray gradient.

Check: step 0 of ours draws the reference's step-0 numbers (its z, selection z and noise maps from
the same seeded stream, in its order; later steps draw as ``SeededDraws`` does), so the first
losses and the first step's trained layers must agree (rtol 1e-4; 1e-2 with the float16 CLIP).

Times are the best of ``--steps`` steps after one warm-up step (default 3 at <= 256 px, 1 above),
each measurement in its own process; ratio = reference time / our time (> 1: ours is faster); peak
memory is over the loaded models (``benchutil.PeakMemory``: the process's peak RSS on a CPU, the
peak of allocated CUDA memory on a GPU). The 300-step estimate is 300 x the step time (the
README's ``--iter 301``); ``gpu_all.py``'s nada section also times a whole 300-step run on CUDA.

Measured (torch 2.14.1, a 2-core CPU with 23 GB shared with other jobs, so upper bounds; best of
3 steps at 256 px, 1 at 1024 px, after a warm-up step; two runs, each ratio from one run):

    size  setting        reference s/step  ours s/step  ratio  ref / ours peak MB
    256   README (k 18)  107.12            16.70        6.41   12484 / 1884
    256   k = 1           87.19            48.01        1.82   11866 / 4839
    1024  README (k 18)  killed (memory)   32.45        —      — / 5621
    1024  k = 1          killed (memory)   60.94        —      — / 19636
    (run 1, 1778 s; step 0 agrees: loss 1.021460 on both sides, layer convs.9 for k = 1)

    size  setting        reference-loop s/step  ours s/step  ratio  loop / ours peak MB
    256   README (k 18)  73.75                  31.87        2.31   5349 / 1868
    256   k = 1          61.91                  71.42        0.87   4887 / 4838
    1024  README (k 18)  killed (memory)        42.41        —      — / 5579
    1024  k = 1          killed (memory)        killed (memory)
    (run 2, 1461 s, load average 5-8 on the 2 cores: about twice run 1's times)

The k = 1 ratio of run 2 (< 1) is the load: the two sides alternated in one process at 128 px
(k = 1, 3 steps each) took 25-29 CPU s per step for ours and 29-35 for the reference loop. At
1024 px the batch-8 selection pass does not fit the machine's memory on the reference path
(nor, in run 2 with less memory free, on ours: run 1 measured its peak at 19.6 GB). Estimated
300-step adaptation at 1024 px on this CPU: ours 162 min with the README's settings (run 2: 212),
305 min with k = 1; the reference, not measured, does at least the work of ours' k = 1 step
(the same batch-8 selection pass plus every weight's gradient, then a step training every layer),
so over 300 x 61 s = 5 h.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from benchutil import fmt_peak, fmt_ratio, fmt_seconds, time_of  # noqa: E402

DRAWS_SEED = 7
WHOLE_STEPS = 300  # the README's --iter 301: i = 0 ... 300
# The settings compared (SPEC 15.1: README command; argparse's auto_layer_k)
SETTINGS = {
    "readme": {"batch_size": 2, "auto_layer_k": 18, "auto_layer_iters": 1, "auto_layer_batch": 8},
    "k1": {"batch_size": 2, "auto_layer_k": 1, "auto_layer_iters": 1, "auto_layer_batch": 8},
}
LABELS = {"readme": "README (k 18)", "k1": "k = 1"}
# reference: the loop on the reference generator path; reference-loop: the same loop on our generator path
REFERENCES = ("reference", "reference-loop")
IMPLS = REFERENCES + ("ours",)


def settings_of(name: str):
    from styleclip_core.edits.domain_adaptation import DomainAdaptationSettings

    return DomainAdaptationSettings(source="photo", target="sketch", learning_rate=0.002, seed=DRAWS_SEED, **SETTINGS[name])


def build(size: int, device: str, tiny: bool = False):
    """(generator, open_clip network): full size on seeded random weights, or tiny ones (the test)."""
    import open_clip
    import torch

    from bench_generator import build as build_generator

    if tiny:
        from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

        from styleclip_core.formats.tiny_models import TINY_CLIP, tiny_generator

        g = tiny_generator(size).to(device)
        c = TINY_CLIP
        torch.manual_seed(1)
        net = CLIP(c["embed_dim"], CLIPVisionCfg(layers=c["vision_layers"], width=c["vision_width"], patch_size=32, image_size=224),
                   CLIPTextCfg(context_length=77, vocab_size=49408, width=c["text_width"], heads=1, layers=c["text_layers"]), quick_gelu=True)
    else:
        g = build_generator(size, device)
        with torch.no_grad():  # noise strengths off 0, as in a trained generator (see the module doc)
            gen = torch.Generator().manual_seed(5)
            for name, p in g.named_parameters():
                if name.endswith("noise.weight"):
                    p.copy_(torch.empty(p.shape).uniform_(0.05, 0.3, generator=gen))
        torch.manual_seed(1)
        net = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None)
    return g, net.eval().requires_grad_(False).to(device)


# ---- ours ------------------------------------------------------------------------------------------


def reference_order_draws(settings, g, device):
    """Ours' draws: step 0 is the reference loop's step 0 (torch's stream seeded with DRAWS_SEED on
    ``device``, in the reference's order: z, selection z, selection noise, frozen noise, trainable
    noise), later steps ``SeededDraws``'. Drawn up front, before anything is timed."""
    import torch

    from styleclip_core.edits.domain_adaptation import SeededDraws

    gen = torch.Generator(device=device).manual_seed(DRAWS_SEED)
    shapes = [tuple(b.shape[2:]) for b in g.make_noise(1, "const")]

    def randn(*shape):
        return torch.randn(shape, generator=gen, device=device)

    def noise(n):
        return [randn(n, 1, *shape) for shape in shapes]

    s = settings
    first = {"sample": randn(s.batch_size, g.style_dim)}
    if s.auto_layer_iters:
        first["selection"] = randn(s.auto_layer_batch, g.style_dim)
        for k in range(s.auto_layer_iters):
            first[f"noise selection.{k}"] = noise(s.auto_layer_batch)
    first["noise frozen"] = noise(s.batch_size)
    first["noise trainable"] = noise(s.batch_size)

    class Draws(SeededDraws):
        def latents(self, step, what, n, dim):
            return first[what] if step == 0 else super().latents(step, what, n, dim)

        def noise(self, step, what, g, n):
            return first["noise " + what] if step == 0 else super().noise(step, what, g, n)

    return Draws(settings.seed)


def ours_nada(g, net, settings):
    import open_clip

    from styleclip_core.edits.domain_adaptation import DomainAdapter
    from styleclip_core.models.clip import ClipModel

    clip = ClipModel(net, lambda texts: open_clip.tokenize(texts), 224, preprocessing="nada", name="ViT-B/32 (random)")
    adapter = DomainAdapter(g, [clip], settings, draws=reference_order_draws(settings, g, g.w_avg.device))

    def step():
        r = adapter.step()
        return {"loss": r.loss, "trained": sorted(r.trained)}

    return step


# ---- the reference loop (SPEC 15.2-15.4) ------------------------------------------------------------


def reference_nada(g, net, settings, clip_fp16: bool = False, generator_path: str = "reference"):
    """One call = one iteration of train.py's loop (see the module doc). Seeds torch's global stream.
    ``generator_path`` 'ours': the same loop on our generator code path (the 'reference-loop' rows)."""
    import open_clip
    import torch
    import torchvision.transforms as T
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    from reference_equivalent import to_reference_path
    from styleclip_core.models.clip import imagenet_templates

    s = settings
    if s.lambda_manifold:
        raise ValueError("the benchmark's reference has no angle term")
    device = g.w_avg.device
    path = to_reference_path if generator_path == "reference" else (lambda m: m)
    frozen = path(copy.deepcopy(g)).eval().requires_grad_(False)
    trainable = path(copy.deepcopy(g)).train().requires_grad_(False)
    for name in ("input", "conv1", "convs"):  # get_training_layers(phase=None)
        trainable.get_submodule(name).requires_grad_(True)
    r = 4 / 5  # g_reg_every / (g_reg_every + 1)
    g_optim = torch.optim.Adam(trainable.parameters(), lr=s.learning_rate * r, betas=(0 ** r, 0.99 ** r))
    idx_to_layer = ["conv1", "to_rgb1"] + [f"convs.{i}" for i in range(len(trainable.convs))]  # all_layers[2:4] + conv_layers
    k = min(s.auto_layer_k, trainable.n_latent)  # torch.topk raises beyond the rows (README's 18 at 256 px)

    clip = net
    if clip_fp16:  # clip.load on a GPU: float16 weights
        clip = copy.deepcopy(net)
        open_clip.model.convert_weights_to_lp(clip, torch.float16)
    dtype = torch.float16 if clip_fp16 else torch.float32
    preprocess = T.Compose([T.Normalize(mean=[-1.0, -1.0, -1.0], std=[2.0, 2.0, 2.0]),
                            T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                            T.Normalize(OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)])
    templates = imagenet_templates()
    cache = {"direction": None}

    def tokenize(texts):
        return open_clip.tokenize(texts).to(device)

    def encode_images(images):
        return clip.encode_image(preprocess(images).to(device).type(dtype))

    def get_image_features(img):
        features = encode_images(img)
        features /= features.clone().norm(dim=-1, keepdim=True)
        return features

    def get_text_features(cls):
        features = clip.encode_text(tokenize([t.format(cls) for t in templates])).detach()
        features /= features.norm(dim=-1, keepdim=True)
        return features

    def global_clip_loss(img, text):
        tokens, image = tokenize([text]), preprocess(img)
        image_features = clip.encode_image(image.type(dtype))  # OpenAI CLIP.forward(image, text)
        text_features = clip.encode_text(tokens)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logits_per_image = clip.logit_scale.exp() * image_features @ text_features.t()
        return (1.0 - logits_per_image / 100).mean()

    def clip_directional_loss(src_img, target_img):
        if cache["direction"] is None:
            direction = (get_text_features(s.target) - get_text_features(s.source)).mean(axis=0, keepdim=True)
            direction /= direction.norm(dim=-1, keepdim=True)
            cache["direction"] = direction
        src_encoding, target_encoding = get_image_features(src_img), get_image_features(target_img)
        edit_direction = target_encoding - src_encoding
        if edit_direction.sum() == 0:
            target_encoding = get_image_features(target_img + 1e-6)
            edit_direction = target_encoding - src_encoding
        edit_direction /= edit_direction.clone().norm(dim=-1, keepdim=True)
        return (1.0 - torch.nn.CosineSimilarity()(edit_direction, cache["direction"])).mean()

    def clip_loss(src_img, target_img):  # CLIPLoss.forward
        loss = 0.0
        if s.lambda_global:
            loss += s.lambda_global * global_clip_loss(target_img, f"a {s.target}")
        if s.lambda_direction:
            loss += s.lambda_direction * clip_directional_loss(src_img, target_img)
        return loss

    def determine_opt_layers():
        sample_z = torch.randn(s.auto_layer_batch, frozen.style_dim, device=device)
        initial_w_codes = frozen.mapping(sample_z)[:, None].repeat(1, frozen.n_latent, 1)
        w_codes = torch.Tensor(initial_w_codes.cpu().detach().numpy().copy()).to(device)  # .copy(): the GPU's semantics
        w_codes.requires_grad = True
        w_optim = torch.optim.SGD([w_codes], lr=0.01)
        for _ in range(s.auto_layer_iters):
            generated_from_w = trainable(w_codes, noise="random")
            w_loss = torch.sum(torch.stack([weight * global_clip_loss(generated_from_w, s.target) for weight in s.clip_weights]))
            w_optim.zero_grad()
            w_loss.backward()
            w_optim.step()
        layer_weights = torch.abs(w_codes - initial_w_codes).mean(dim=-1).mean(dim=0)
        chosen_layer_idx = torch.topk(layer_weights, k)[1].cpu().numpy()
        return [idx_to_layer[idx] for idx in chosen_layer_idx]

    torch.manual_seed(DRAWS_SEED)
    trained = {"names": ["input", "conv1", "convs"]}

    def step():
        frozen.train(), trainable.train()  # net.train()
        sample_z = torch.randn(s.batch_size, frozen.style_dim, device=device)  # mixing_noise(batch, 512, 0, device)
        if s.auto_layer_iters > 0:
            trainable.requires_grad_(True)  # unfreeze_layers(): every child
            train_layers = determine_opt_layers()
            trainable.requires_grad_(False)  # freeze_layers()
            for name in train_layers:
                trainable.get_submodule(name).requires_grad_(True)
            trained["names"] = train_layers
        with torch.no_grad():
            w_styles = frozen.to_w_plus(frozen.mapping(sample_z))
            frozen_img = frozen(w_styles, noise="random")
        trainable_img = trainable(w_styles, noise="random")
        loss = torch.sum(torch.stack([weight * clip_loss(frozen_img, trainable_img) for weight in s.clip_weights]))
        frozen.zero_grad(), trainable.zero_grad()  # net.zero_grad()
        loss.backward()
        g_optim.step()
        return {"loss": float(loss.detach()), "trained": sorted(trained["names"])}

    return step


# ---- measurement --------------------------------------------------------------------------------------


def default_steps(size: int) -> int:
    return 3 if size <= 256 else 1


def make_step(impl: str, setting: str, size: int, device: str, tiny: bool = False, clip_fp16: bool | None = None):
    from benchutil import is_cuda

    g, net = build(size, device, tiny)
    if impl in REFERENCES:
        return reference_nada(g, net, settings_of(setting), is_cuda(device) if clip_fp16 is None else clip_fp16,
                              "reference" if impl == "reference" else "ours")
    return ours_nada(g, net, settings_of(setting))


def measure(impl: str, setting: str, size: int, steps: int, device: str, tiny: bool = False, clip_fp16: bool | None = None) -> dict:
    """Best step time of ``steps`` after a warm-up step (step 0, whose loss and layers are 'first')."""
    from benchutil import timed

    step = make_step(impl, setting, size, device, tiny, clip_fp16)
    r = timed(step, steps, device, warmup=1)
    return {"time": r["time"], "times": r["times"], "peak_mb": r["peak_mb"], "first": r["first"]}


def measure_whole(size: int, steps: int, device: str, setting: str = "readme", tiny: bool = False) -> dict:
    """Wall time of ``steps`` steps of ours (after building and one warm-up step, not counted)."""
    from benchutil import run_steps_timed

    step = make_step("ours", setting, size, device, tiny)
    step()
    elapsed, peak_mb, last = run_steps_timed(step, steps, device)
    return {"time": elapsed, "peak_mb": peak_mb, "last_loss": last["loss"], "steps": steps}


# ---- tables -----------------------------------------------------------------------------------------


def agreement(ref: dict | None, ours: dict | None, rel: float = 1e-4, ref_impl: str = "reference") -> str:
    """The check column: step 0's losses and trained layers of both sides."""
    notes = [f"{impl}: {r['error']}" for impl, r in ((ref_impl, ref), ("ours", ours)) if r is not None and "error" in r]
    if ref and ours and "error" not in ref and "error" not in ours:
        a, b = ours["first"], ref["first"]
        same = abs(a["loss"] - b["loss"]) <= rel * abs(b["loss"]) + 1e-6
        notes.append(f"first loss {b['loss']:.6f} / {a['loss']:.6f} ({'agree' if same else 'DIFFER'})")
        if len(a["trained"]) == 1 or len(b["trained"]) == 1:
            notes.append(f"layer {b['trained'][0]} / {a['trained'][0]}")
        if a["trained"] != b["trained"]:
            notes.append("TRAINED LAYERS DIFFER")
    return "; ".join(notes)


COLUMNS = ["size", "setting", "reference s/step", "ours s/step", "ratio", "ref peak MB", "ours peak MB", "check (reference / ours)"]
ESTIMATE_COLUMNS = ["size", "setting", f"reference, {WHOLE_STEPS} steps", f"ours, {WHOLE_STEPS} steps", "saved"]


def rows(results: dict, sizes, settings=tuple(SETTINGS), rel: float = 1e-4, ref_impl: str = "reference") -> list[list]:
    """``results[(impl, setting, size)]`` as ``measure`` returns (or {'error': ...}) -> table rows."""
    out = []
    for size in sizes:
        for setting in settings:
            ref, ours = results.get((ref_impl, setting, size)), results.get(("ours", setting, size))
            if ref is None and ours is None:
                continue
            out.append([size, LABELS[setting], fmt_seconds(time_of(ref)), fmt_seconds(time_of(ours)), fmt_ratio(time_of(ref), time_of(ours)), fmt_peak(ref), fmt_peak(ours),
                        agreement(ref, ours, rel, ref_impl)])
    return out


def estimate_rows(results: dict, sizes, settings=tuple(SETTINGS), steps: int = WHOLE_STEPS, ref_impl: str = "reference") -> list[list]:
    """``steps`` x the step time of each side."""
    out = []
    for size in sizes:
        for setting in settings:
            ref, ours = steps * time_of(results.get((ref_impl, setting, size))), steps * time_of(results.get(("ours", setting, size)))
            if math.isnan(ref) and math.isnan(ours):
                continue
            saved = "—" if math.isnan(ref) or math.isnan(ours) else f"{(ref - ours) / 60:.1f} min"
            out.append([size, LABELS[setting], _fmt_min(ref), _fmt_min(ours), saved])
    return out


def _fmt_min(x):
    return "—" if math.isnan(x) else (f"{x / 60:.1f} min" if x >= 60 else f"{x:.1f} s")


def markdown(columns, table) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in table])


# ---- command line -------------------------------------------------------------------------------------


def run_child(impl, setting, size, steps, device, tiny) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, setting, str(size), str(steps), device, str(int(tiny))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        lines = [line for line in out.stderr.strip().splitlines() if not line.startswith("WARNING:")]  # open_clip's "no pretrained weights"
        if out.returncode < 0:
            tail = f"killed by signal {-out.returncode}" + (" (out of memory)" if out.returncode == -9 else "")
        else:
            tail = lines[-1] if lines else f"exit {out.returncode}"
        print(f"[{impl} {setting} {size}px failed]\n{out.stderr[-2000:]}", file=sys.stderr, flush=True)
        return {"error": tail[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="generator sizes (default 256 1024)")
    parser.add_argument("--steps", type=int, help="timed steps per measurement after one warm-up step (default 3 at <= 256 px, 1 above)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), default=["reference", "ours"],
                        help="sides measured (default reference ours; reference-loop: the reference loop on our generator path)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny models at 32 px, one step: checks the script")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, setting, size, steps, device, tiny = args.child
        print(json.dumps(measure(impl, setting, int(size), int(steps), device, tiny=bool(int(tiny)))))
        return
    sizes = args.sizes or ([32] if args.quick else [256, 1024])

    import torch

    from benchutil import is_cuda, where

    print(f"torch {torch.__version__}, {where(args.device)}; photo -> sketch, one ViT-B/32, batch 2, selection batch 8; "
          f"best of {args.steps or ('1' if args.quick else '3 (<= 256 px) / 1')} steps after a warm-up step{' (--quick)' if args.quick else ''}", flush=True)
    results = {}
    start = time.perf_counter()
    for size in sizes:
        steps = args.steps or (1 if args.quick else default_steps(size))
        for setting in args.settings:
            for impl in args.impls:
                t0 = time.perf_counter()
                results[(impl, setting, size)] = r = run_child(impl, setting, size, steps, args.device, args.quick)
                print(f"  {size:>5} {setting:>6} {impl:>9}: {fmt_seconds(time_of(r))}{' ' + r['error'] if 'error' in r else ''} "
                      f"({time.perf_counter() - t0:.0f} s with setup)", flush=True)
    big = max(sizes)
    for ref_impl in [i for i in REFERENCES if i in args.impls] or ["reference"]:
        columns = COLUMNS if ref_impl == "reference" else [c.replace("reference", ref_impl).replace("ref ", "loop ") for c in COLUMNS]
        print(f"\n{ref_impl} against ours:\n")
        print(markdown(columns, rows(results, sizes, args.settings, 1e-2 if is_cuda(args.device) else 1e-4, ref_impl)))
        print(f"\nEstimated {WHOLE_STEPS}-step adaptation at {big} px ({WHOLE_STEPS} x the step time; no samples, previews or checkpoints):\n")
        print(markdown([c.replace("reference", ref_impl) for c in ESTIMATE_COLUMNS], estimate_rows(results, [big], args.settings, ref_impl=ref_impl)))
    print(f"\nTotal wall time {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
