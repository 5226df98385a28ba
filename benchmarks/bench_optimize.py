"""Latent optimisation step time and peak memory: ours against the reference loop, in one run.

    python benchmarks/bench_optimize.py [--sizes 256 1024] [--steps 3] [--device cpu]

One optimisation step = render W+ -> image, CLIP loss + 0.008 x latent L2, backward, Adam update
(StyleCLIP's run_optimization.py defaults, batch 1, W+). Both sides use the same seeded random
full-size config-f generator and the same random full-size ViT-B/32 (open_clip
'ViT-B-32-quickgelu', built without pretrained weights), each in its own process.

* ours: ``styleclip_core.optimize.LatentOptimizer`` (frozen weights, text encoded once, the
  resize as a matrix product, our generator path);
* reference: the loop of run_optimization.py written from SPEC.md 4 on the reference generator
  path (``reference_equivalent.to_reference_path``): nn.Upsample(7) + AvgPool2d, OpenAI-style
  ``model(image, text)`` that encodes the text every step, and -- as the script never freezes
  them -- generator and CLIP weights that require grad, so backward also forms their gradients;
* reference-frozen: the same with frozen weights, to show how much of the gap that alone is.

Times are the fastest of ``--steps`` steps after one warm-up step; the ratio is reference time /
our time (> 1: ours is faster). Peak memory is the process's peak RSS over the loaded models
(CPU) or the peak of allocated CUDA memory over the loaded models (GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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

    from styleclip_core.generator import Generator

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

    from styleclip_core.clip_model import ClipModel
    from styleclip_core.latents import Latents
    from styleclip_core.losses import ClipLoss, LatentL2Loss, LossSet
    from styleclip_core.optimize import LatentOptimizer

    clip = ClipModel(net, lambda texts: open_clip.tokenize(texts), 224)
    loss = LossSet().add(ClipLoss(clip, TEXT)).add(LatentL2Loss(L2_LAMBDA))
    run = LatentOptimizer(g, Latents(w_plus=w_plus), loss, steps=300, amp_dtype=amp_dtype)

    def step():
        return float(run.step()[f"CLIP {TEXT!r}"][0])

    return step


def reference(g, net, w_plus, frozen: bool):
    import open_clip
    import torch
    import torch.nn.functional as F
    from torch import nn

    from reference_equivalent import to_reference_path
    from styleclip_core.optimize import get_lr

    to_reference_path(g)
    if not frozen:  # run_optimization.py never turns gradients off for either network
        g.requires_grad_(True)
        net.requires_grad_(True)
    text = open_clip.tokenize([TEXT]).to(w_plus.device)
    upsample, pool = nn.Upsample(scale_factor=7), nn.AvgPool2d(kernel_size=g.size // 32)
    init = w_plus.detach().clone()
    latent = init.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=0.1)
    state = {"i": 0}

    def step():
        optimizer.param_groups[0]["lr"] = get_lr(state["i"] / 300, 0.1)
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
        return float(c_loss)

    return step


def measure(impl: str, size: int, steps: int, device: str) -> dict:
    import torch

    g, net, w_plus = build(size, device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step = ours(g, net, w_plus) if impl == "ours" else reference(g, net, w_plus, frozen=impl == "reference-frozen")
    first_loss = step()  # warm-up; step 0 (lr 0) of the schedule
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    if cuda:
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"time": min(times), "peak_mb": peak / 2**20, "first_clip_loss": first_loss}


def run_child(impl, size, steps, device):
    cmd = [sys.executable, __file__, "--child", impl, str(size), str(steps), device]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{impl} at {size}px failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, size, steps, device = args.child
        print(json.dumps(measure(impl, int(size), int(steps), device)))
        return

    import torch

    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; batch 1, W+, CLIP loss + {L2_LAMBDA} x L2, Adam")
    print(f"{'size':>5} {'impl':>17} | {'s/step':>8} {'ratio':>6} | {'peak MB':>8} | first CLIP loss")
    for size in args.sizes:
        results = {impl: run_child(impl, size, args.steps, args.device) for impl in ("reference", "reference-frozen", "ours")}
        for impl, r in results.items():
            agree = abs(r["first_clip_loss"] - results["ours"]["first_clip_loss"]) < 1e-4
            print(
                f"{size:>5} {impl:>17} | {r['time']:>8.3f} {r['time'] / results['ours']['time']:>6.2f} | {r['peak_mb']:>8.0f} | "
                f"{r['first_clip_loss']:.6f}{'' if agree else '  LOSSES DIFFER'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
