"""Latent optimisation steps per second on a CUDA GPU at 1024 px: float32 and mixed precision.

    python benchmarks/gpu_optimize_amp.py [--size 1024] [--steps 20] [--ops auto]

The same step as bench_optimize.py (random full-size config-f generator and ViT-B/32, CLIP loss
+ 0.008 x latent L2, Adam, batch 1, W+) run by ``LatentOptimizer`` in float32 and with the
forward passes under ``torch.autocast`` in bfloat16 and float16 (Adam and the codes stay
float32). Reports steps/s, peak memory and how far the mixed-precision CLIP loss is from the
float32 one after the same number of steps. Without a CUDA device it says so and exits 0.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_optimize import TEXT, build, ours  # noqa: E402
from styleclip_core.precision import PRECISIONS, autocast_dtype  # noqa: E402


def run(size: int, steps: int, device: str, precision: str, ops: str) -> dict:
    import torch

    g, net, w_plus = build(size, device)
    g.set_ops_backend(ops)
    step = ours(g, net, w_plus, amp_dtype=autocast_dtype(precision))
    cuda = device.startswith("cuda")
    for _ in range(3):  # warm-up: kernels, autotuning, allocator
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    losses = [step() for _ in range(steps)]
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    return {"steps_per_s": steps / elapsed, "peak_mb": peak, "last_loss": losses[-1], "finite": all(math.isfinite(v) for v in losses)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ops", default="auto", help="generator ops backend: auto, cuda or reference")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # 'cpu' exercises the code path on a CPU
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_optimize_amp.py needs a CUDA GPU; none is available here, nothing to measure.")
        return
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__}, {where}, {args.size}px, batch 1, W+, {args.steps} timed steps, ops {args.ops!r}; text {TEXT!r}")
    print(f"{'precision':>9} | {'steps/s':>8} {'speed-up':>8} | {'peak MB':>8} | last CLIP loss (vs fp32)")
    base = None
    for name in PRECISIONS:
        try:
            r = run(args.size, args.steps, args.device, name, args.ops)
        except Exception as e:  # report and go on: one precision failing says something too
            print(f"{name:>9} | failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
            continue
        base = base or r
        print(
            f"{name:>9} | {r['steps_per_s']:>8.2f} {r['steps_per_s'] / base['steps_per_s']:>8.2f} | {r['peak_mb']:>8.0f} | "
            f"{r['last_loss']:.5f} ({r['last_loss'] - base['last_loss']:+.5f}){'' if r['finite'] else '  NON-FINITE LOSS'}",
            flush=True,
        )
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
