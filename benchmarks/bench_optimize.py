"""Latent optimisation, one step and a whole edit: ours against the reference loop, in one run.

    python benchmarks/bench_optimize.py [--sizes 256 1024] [--steps 3] [--edit-steps 100] [--device cpu] [--compile]

One optimisation step = render W+ -> image, CLIP loss + 0.008 x latent L2, backward, Adam update
(StyleCLIP's run_optimization.py defaults, batch 1, W+). Both sides use the same seeded random
full-size config-f generator and the same random full-size ViT-B/32 (open_clip
'ViT-B-32-quickgelu', built without pretrained weights), each in its own process.

* ours: ``styleclip_core.edits.optimize.LatentOptimizer`` (frozen weights, text encoded once, the
  resize as a matrix product, our generator path);
* reference: the loop of run_optimization.py written from SPEC.md 4 on the reference generator
  path (``reference_equivalent.to_reference_path``): nn.Upsample(7) + AvgPool2d, OpenAI-style
  ``model(image, text)`` that encodes the text every step, and -- as the script never freezes
  them -- generator and CLIP weights that require grad, so backward also forms their gradients;
* reference-frozen: the same with frozen weights, to show how much of the gap that alone is;
* ours+compile (``--compile``): ours after ``Generator.compile_synthesis()``; the first
  (compiling) step is reported apart.

Per step: the fastest of ``--steps`` steps after one warm-up step. Whole edit (``--edit-steps N``,
default 100 on CUDA, off on a CPU): the wall time of one N-step edit after a 2-step warm-up edit.
Ours runs ``optimize_latents`` as the Optimize Latents node does (the original rendered first, a
preview image converted for display every 10 steps, the result rendered from the final codes);
the reference runs run_optimization.py's ``main`` after model loading (the original rendered, the
loop, an intermediate image rendered and converted every 20 steps -- its default; neither side
writes files). The ratio is reference time / our time (> 1: ours is faster). Peak memory is over
the loaded models (``benchutil.PeakMemory``: peak RSS on a CPU, peak allocated CUDA memory on a GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

TEXT = "a person with purple hair"
L2_LAMBDA = 0.008


def build(size: int, device: str):
    import open_clip
    import torch

    from styleclip_core.models.generator import Generator

    torch.manual_seed(0)
    g = Generator(size).eval().requires_grad_(False)
    torch.manual_seed(1)
    net = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval().requires_grad_(False)
    with torch.no_grad():
        z = torch.randn(1, g.style_dim, generator=torch.Generator().manual_seed(2))
        w = g.truncate(g.mapping(z), 0.7, g.mean_latent(4096))
        w_plus = g.to_w_plus(w)
    return g.to(device), net.to(device), w_plus.to(device)


def ours(g, net, w_plus, amp_dtype=None):
    import open_clip

    from styleclip_core.models.clip import ClipModel
    from styleclip_core.models.latents import Latents
    from styleclip_core.edits.losses import ClipLoss, LatentL2Loss, LossSet
    from styleclip_core.edits.optimize import LatentOptimizer

    clip = ClipModel(net, lambda texts: open_clip.tokenize(texts), 224)
    loss = LossSet().add(ClipLoss(clip, TEXT)).add(LatentL2Loss(L2_LAMBDA))
    run = LatentOptimizer(g, Latents(w_plus=w_plus), loss, steps=300, amp_dtype=amp_dtype)

    def step():
        return float(run.step()[f"CLIP {TEXT!r}"][0])

    return step


def reference(g, net, w_plus, frozen: bool, steps: int = 300, state: dict | None = None):
    import open_clip
    import torch
    import torch.nn.functional as F
    from torch import nn

    from reference_equivalent import to_reference_path
    from styleclip_core.edits.optimize import get_lr

    to_reference_path(g)
    if not frozen:  # run_optimization.py never turns gradients off for either network
        g.requires_grad_(True)
        net.requires_grad_(True)
    text = open_clip.tokenize([TEXT]).to(w_plus.device)
    upsample, pool = nn.Upsample(scale_factor=7), nn.AvgPool2d(kernel_size=g.size // 32)
    init = w_plus.detach().clone()
    latent = init.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=0.1)
    state = {} if state is None else state
    state.update(i=0, latent=latent)

    def step():
        optimizer.param_groups[0]["lr"] = get_lr(state["i"] / steps, 0.1)
        img = g(latent)
        image = pool(upsample(img))
        image_features = F.normalize(net.encode_image(image), dim=-1)  # OpenAI CLIP forward: both towers
        text_features = F.normalize(net.encode_text(text), dim=-1)
        logits_per_image = net.logit_scale.exp() * image_features @ text_features.t()
        c_loss = 1 - logits_per_image / 100
        loss = c_loss + L2_LAMBDA * ((init - latent) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state["i"] += 1
        state["img"] = img
        return float(c_loss.detach())

    return step




# ---- a whole edit ------------------------------------------------------------------------------


def _shown(images):
    """What a UI shows of a preview: the first image as uint8 pixels (both sides do this)."""
    from PIL import Image

    from styleclip_core.models.render import to_unit_range

    return Image.fromarray((to_unit_range(images[:1].detach())[0].cpu().numpy() * 255).round().astype("uint8"))


def ours_edit(g, net, w_plus, steps: int, amp_dtype=None):
    """One call = one whole edit as the Optimize Latents node runs it; returns the last CLIP loss."""
    import open_clip

    from styleclip_core.models.clip import ClipModel
    from styleclip_core.models.latents import Latents
    from styleclip_core.edits.losses import ClipLoss, LatentL2Loss, LossSet
    from styleclip_core.edits.optimize import optimize_latents

    clip = ClipModel(net, lambda texts: open_clip.tokenize(texts), 224)

    def progress(done, total, preview=None):
        if preview is not None:
            _shown(preview)

    def edit():
        loss = LossSet().add(ClipLoss(clip, TEXT)).add(LatentL2Loss(L2_LAMBDA))
        result = optimize_latents(g, Latents(w_plus=w_plus), loss, steps=steps, progress=progress, preview_every=10, amp_dtype=amp_dtype)
        return float(result.history[-1][f"CLIP {TEXT!r}"][0])

    return edit


def reference_edit(g, net, w_plus, steps: int, save_every: int = 20):
    """One call = run_optimization.py's ``main`` after loading the models (edit mode, W+)."""
    import torch

    def edit():
        with torch.no_grad():
            img_orig = g(w_plus)
        state = {}
        step = reference(g, net, w_plus, frozen=False, steps=steps, state=state)
        for i in range(steps):
            c_loss = step()
            if save_every > 0 and i % save_every == 0:
                with torch.no_grad():
                    _shown(g(state["latent"]))
        torch.cat([img_orig, state["img"].detach()])
        return c_loss

    return edit


# ---- measurement ---------------------------------------------------------------------------------


def measure(impl: str, size: int, steps: int, device: str, amp: str | None = None) -> dict:
    """Seconds per step (best of ``steps`` after one warm-up step) and peak memory of ``impl``."""
    import torch

    from benchutil import PeakMemory, sync

    g, net, w_plus = build(size, device)
    amp_dtype = getattr(torch, amp) if amp else None
    with PeakMemory(device) as peak:
        if impl == "ours+compile":
            g.compile_synthesis()
        if impl.startswith("ours"):
            step = ours(g, net, w_plus, amp_dtype=amp_dtype)
        else:
            step = reference(g, net, w_plus, frozen=impl == "reference-frozen")
        t = time.perf_counter()
        first_loss = step()  # warm-up; step 0 (lr 0) of the schedule
        sync(device)
        first_s = time.perf_counter() - t
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - t)
    out = {"time": min(times), "first_s": first_s, "peak_mb": peak.mb, "first_clip_loss": first_loss}
    if impl == "ours+compile":
        out["status"] = g.compile_status
    return out


def measure_edit(impl: str, size: int, steps: int, device: str, amp: str | None = None) -> dict:
    """Wall time of one ``steps``-step edit after a 2-step warm-up edit, and peak memory."""
    import torch

    from benchutil import PeakMemory, sync

    g, net, w_plus = build(size, device)
    amp_dtype = getattr(torch, amp) if amp else None
    with PeakMemory(device) as peak:
        if impl == "ours+compile":
            g.compile_synthesis()
        make = (lambda n: ours_edit(g, net, w_plus, n, amp_dtype)) if impl.startswith("ours") else (lambda n: reference_edit(g, net, w_plus, n))
        make(2)()  # warm-up (and compile)
        edit = make(steps)
        sync(device)
        t = time.perf_counter()
        last_loss = edit()
        sync(device)
        elapsed = time.perf_counter() - t
    return {"time": elapsed, "peak_mb": peak.mb, "last_clip_loss": last_loss}


def run_child(kind, impl, size, steps, device):
    cmd = [sys.executable, __file__, "--child", kind, impl, str(size), str(steps), device]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{kind} {impl} at {size}px failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (after one warm-up step); 0 skips the per-step table")
    parser.add_argument("--edit-steps", type=int, help="steps of the timed whole edit (default 100 on CUDA, 0 = off on a CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also measure ours after Generator.compile_synthesis()")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, impl, size, steps, device = args.child
        fn = measure if kind == "step" else measure_edit
        print(json.dumps(fn(impl, int(size), int(steps), device)))
        return

    import torch

    from benchutil import where

    edit_steps = args.edit_steps if args.edit_steps is not None else (100 if args.device.startswith("cuda") else 0)
    print(f"torch {torch.__version__}, {where(args.device)}; batch 1, W+, CLIP loss + {L2_LAMBDA} x L2, Adam")
    extra = ["ours+compile"] if args.compile else []
    if args.steps:
        print(f"\none step (best of {args.steps} after a warm-up step)")
        print(f"{'size':>5} {'impl':>17} | {'s/step':>8} {'ratio':>6} | {'peak MB':>8} | first CLIP loss")
        for size in args.sizes:
            results = {impl: run_child("step", impl, size, args.steps, args.device) for impl in ("reference", "reference-frozen", "ours", *extra)}
            for impl, r in results.items():
                agree = abs(r["first_clip_loss"] - results["ours"]["first_clip_loss"]) < 1e-4
                note = f"  first (compiling) step {r['first_s']:.1f} s, {r['status']}" if impl == "ours+compile" else ""
                print(
                    f"{size:>5} {impl:>17} | {r['time']:>8.3f} {results['reference']['time'] / r['time']:>6.2f} | {r['peak_mb']:>8.0f} | "
                    f"{r['first_clip_loss']:.6f}{'' if agree else '  LOSSES DIFFER'}{note}",
                    flush=True,
                )
    if edit_steps:
        print(f"\nwhole {edit_steps}-step edit (after a 2-step warm-up edit)")
        print(f"{'size':>5} {'impl':>17} | {'s/edit':>8} {'ratio':>6} | {'peak MB':>8} | last CLIP loss")
        for size in args.sizes:
            results = {impl: run_child("edit", impl, size, edit_steps, args.device) for impl in ("reference", "ours", *extra)}
            for impl, r in results.items():
                agree = abs(r["last_clip_loss"] - results["ours"]["last_clip_loss"]) < 1e-3
                print(
                    f"{size:>5} {impl:>17} | {r['time']:>8.2f} {results['reference']['time'] / r['time']:>6.2f} | {r['peak_mb']:>8.0f} | "
                    f"{r['last_clip_loss']:.6f}{'' if agree else '  LOSSES DIFFER'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
