"""PTI: one projector step and one pivotal-tuning step, ours against the reference procedure, in one run.

    python benchmarks/bench_pti.py [--sizes 256 1024] [--steps 3] [--whole-steps N] [--device cpu]

Both sides use the same seeded random full-size config-f generator, full-size VGG16 / AlexNet LPIPS
on He-initialised random weights, and a target rendered from another code (batch 1).

* projector step (SPEC 10.2): jittered W broadcast to W+, synthesis with the optimised noise
  maps, LPIPS-VGG embedding distance on 256 px (area-reduced) images + 1e5 x noise regulariser,
  backward, Adam, noise re-standardisation.
  - ours: ``styleclip_core.photos.projector.Projector.step`` (our generator path, gradients of the
    code and the noise only);
  - reference: PTI's ``w_projector.project`` loop written from SPEC 10.2 on the reference generator
    path (``reference_equivalent.to_reference_path``): a deep copy of G whose noise buffers are
    optimised, ``loss.backward()``.
* tuning step (SPEC 10.3): synthesis at the pivot, L2 + LPIPS-alex against the photo, backward,
  Adam over the synthesis weights.
  - ours: ``styleclip_core.photos.pivotal_tuning.PivotalTuner.step`` (both images through AlexNet
    in one batch);
  - reference: ``single_id_coach`` + ``base_coach.calc_loss`` from SPEC 10.3 on the reference path:
    ``Adam(G.parameters())`` over every weight (the mapping's get none), and the lpips package's
    forward, which runs the two images through AlexNet one after the other.
* whole tuning (``--whole-steps N``, default 350 on CUDA, off on a CPU): the wall time of an
  N-step tuning with the early stop off (PTI reports about a minute per image at 1024 px on a GPU).

Per step: the fastest of ``--steps`` steps after one warm-up step, each measurement in its own
process. Ratio = reference time / our time (> 1: ours is faster); peak memory is over the loaded
models (``benchutil.PeakMemory``). The first loss of each side is printed to show they agree.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DRAWS_SEED = 7
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def build(size: int, device: str, reference: bool):
    import torch

    from bench_generator import build as build_generator
    from styleclip_core.formats.tiny_models import random_lpips

    g = build_generator(size, device, reference=reference)
    with torch.no_grad():
        z = torch.randn(2, g.style_dim, generator=torch.Generator().manual_seed(2)).to(device)
        w = g.truncate(g.mapping(z), 0.7, g.mean_latent(1000))
        target = g(g.to_w_plus(w[:1]))  # the "photo"
        pivot = g.to_w_plus(w[1:])  # a nearby code: the pivot
    return g, random_lpips("vgg", 3).to(device), random_lpips("alex", 4).to(device), target, pivot


# ---- the reference procedures (SPEC 10.2, 10.3) ------------------------------------------------


def reference_projector(g, vgg, target, steps: int):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from styleclip_core.schedules import get_lr

    G = copy.deepcopy(g).eval().requires_grad_(False)
    z = np.random.RandomState(123).randn(600, G.style_dim)
    w_samples = G.mapping(torch.from_numpy(z).to(target.device, torch.float32)).cpu().numpy().astype(np.float32)[:, None]
    w_avg = np.mean(w_samples, axis=0, keepdims=True)
    w_std = (np.sum((w_samples - w_avg) ** 2) / 600) ** 0.5
    noise_bufs = [getattr(G.noises, f"noise_{j}") for j in range(G.num_layers)]

    def vgg16(images255):  # NVIDIA's vgg16.pt(x, resize_images=False, return_lpips=True)
        return vgg.embed(images255 / 127.5 - 1)

    def to256(x):
        x = (x + 1) * (255 / 2)
        return F.interpolate(x, size=(256, 256), mode="area") if x.shape[2] > 256 else x

    target_features = vgg16(to256(target))
    torch.manual_seed(DRAWS_SEED)  # the noise maps and the per-step jitter come from torch's global stream
    w_opt = torch.tensor(w_avg, dtype=torch.float32, device=target.device, requires_grad=True)
    optimizer = torch.optim.Adam([w_opt] + noise_bufs, betas=(0.9, 0.999), lr=0.005)
    for buf in noise_bufs:
        buf[:] = torch.randn_like(buf)
        buf.requires_grad = True
    state = {"i": 0}

    def step():
        t = state["i"] / steps
        w_noise_scale = w_std * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
        for group in optimizer.param_groups:
            group["lr"] = get_lr(t, 0.01)
        ws = (w_opt + torch.randn_like(w_opt) * w_noise_scale).repeat([1, G.n_latent, 1])
        synth = G.synthesis(G.styles(ws), noise="const")
        dist = (target_features - vgg16(to256(synth))).square().sum()
        reg = 0.0
        for v in noise_bufs:
            noise = v
            while True:
                reg += (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
                reg += (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
                if noise.shape[2] <= 8:
                    break
                noise = F.avg_pool2d(noise, kernel_size=2)
        loss = dist + reg * 1e5
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for buf in noise_bufs:
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        state["i"] += 1
        return float(dist)

    return step


def reference_tuning(g, alex, target, pivot):
    import torch

    G = copy.deepcopy(g).requires_grad_(True)
    optimizer = torch.optim.Adam(G.parameters(), lr=3e-4)

    def lpips_package(x0, x1):  # lpips.LPIPS.forward: the two images through the net one after the other
        from styleclip_core.models.lpips import unit_normalize

        f0, f1 = alex.taps_of(x0), alex.taps_of(x1)
        return sum(torch.nn.functional.conv2d((unit_normalize(a) - unit_normalize(b)).square(), h).mean([2, 3], keepdim=True)
                   for a, b, h in zip(f0, f1, alex.heads))

    def step():
        generated = G.synthesis(G.styles(pivot))
        l2 = torch.nn.functional.mse_loss(generated, target)
        lp = torch.squeeze(lpips_package(generated, target))
        loss = l2 + lp
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(lp)

    return step


# ---- ours --------------------------------------------------------------------------------------


def ours_projector(g, vgg, target, steps: int):
    import torch

    from styleclip_core.photos.projector import Projector, ProjectorSettings

    # the reference's draws, in its order: every noise map, then one jitter row per step
    torch.manual_seed(DRAWS_SEED)
    noise = [torch.randn_like(b) for b in g.make_noise(1, "const")]
    jitter = torch.stack([torch.randn(1, 1, g.style_dim, device=target.device) for _ in range(steps)])
    run = Projector(g, target, vgg, ProjectorSettings(steps=steps), initial_noise=noise, jitter=jitter)

    def step():
        run.step()
        return float(run.result.distances[-1][0])

    return step


def ours_tuning(g, alex, target, pivot, steps: int = 350):
    from styleclip_core.models.latents import Latents
    from styleclip_core.photos.pivotal_tuning import PivotalTuner, TuningSettings

    run = PivotalTuner(g, Latents(w_plus=pivot), target, alex, TuningSettings(steps=steps, lpips_threshold=0))

    def step():
        run.step()
        return float(run.history[-1]["lpips"])

    return step


# ---- measurement -------------------------------------------------------------------------------


def make_step(part: str, impl: str, size: int, device: str, steps: int):
    g, vgg, alex, target, pivot = build(size, device, reference=impl == "reference")
    if part == "projector":
        return (reference_projector if impl == "reference" else ours_projector)(g, vgg, target, steps + 1)
    if impl == "reference":
        return reference_tuning(g, alex, target, pivot)
    return ours_tuning(g, alex, target, pivot, steps + 1)


def measure(part: str, impl: str, size: int, steps: int, device: str) -> dict:
    from benchutil import timed

    step = make_step(part, impl, size, device, steps)
    r = timed(step, steps, device, warmup=1)
    return {"time": r["time"], "peak_mb": r["peak_mb"], "first": r["first"]}


def measure_whole(impl: str, size: int, steps: int, device: str) -> dict:
    """Wall time of a ``steps``-step tuning (after building; one warm-up step not counted)."""
    from benchutil import run_steps_timed

    step = make_step("tuning", impl, size, device, steps)
    step()
    elapsed, peak_mb, last = run_steps_timed(step, steps, device)
    return {"time": elapsed, "peak_mb": peak_mb, "first": last}


def run_child(kind, part, impl, size, steps, device):
    cmd = [sys.executable, __file__, "--child", kind, part, impl, str(size), str(steps), device]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{kind} {part} {impl} at {size}px failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (after one warm-up step)")
    parser.add_argument("--whole-steps", type=int, help="steps of the timed whole tuning (default 350 on CUDA, 0 = off on a CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, part, impl, size, steps, device = args.child
        r = measure(part, impl, int(size), int(steps), device) if kind == "step" else measure_whole(impl, int(size), int(steps), device)
        print(json.dumps(r))
        return

    import torch

    from benchutil import where

    whole = args.whole_steps if args.whole_steps is not None else (350 if args.device.startswith("cuda") else 0)
    print(f"torch {torch.__version__}, {where(args.device)}; batch 1; best of {args.steps} steps after a warm-up step")
    print(f"{'size':>5} {'part':>10} {'impl':>10} | {'s/step':>8} {'ratio':>6} | {'peak MB':>8} | first loss (distance / LPIPS)")
    for size in args.sizes:
        for part in ("projector", "tuning"):
            results = {impl: run_child("step", part, impl, size, args.steps, args.device) for impl in ("reference", "ours")}
            for impl, r in results.items():
                agree = abs(r["first"] - results["reference"]["first"]) <= 1e-4 * abs(results["reference"]["first"]) + 1e-6
                print(f"{size:>5} {part:>10} {impl:>10} | {r['time']:>8.3f} {results['reference']['time'] / r['time']:>6.2f} | "
                      f"{r['peak_mb']:>8.0f} | {r['first']:.6f}{'' if agree else '  LOSSES DIFFER'}", flush=True)
    if whole:
        print(f"\nwhole {whole}-step tuning (early stop off)")
        for size in args.sizes:
            results = {impl: run_child("whole", "tuning", impl, size, whole, args.device) for impl in ("reference", "ours")}
            for impl, r in results.items():
                print(f"{size:>5} {impl:>10} | {r['time']:>8.1f} s {results['reference']['time'] / r['time']:>6.2f} | {r['peak_mb']:>8.0f} MB | "
                      f"last LPIPS {r['first']:.6f}", flush=True)


if __name__ == "__main__":
    main()
