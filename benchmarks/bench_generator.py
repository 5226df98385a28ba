"""Generator speed and peak memory: ours against the reference-equivalent path, in one run.

    python benchmarks/bench_generator.py [--sizes 256 1024] [--batches 1 4] [--repeats 3]

Each measurement runs in its own process (so peak memory is that run's alone) with the same
seeded random full-size weights (config-f channel table). "forward" renders W+ without
gradients; "fwd+bwd" also back-propagates to W+ as latent optimisation does (weights frozen).
Times are the best of ``--repeats`` after one warm-up; ours and the reference alternate so
machine noise hits both. The ratio is reference time / our time (> 1: ours is faster).
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


def measure(impl: str, size: int, batch: int, mode: str, repeats: int) -> dict:
    import torch

    from reference_equivalent import to_reference_path
    from styleclip_core.generator import Generator

    torch.manual_seed(0)
    g = Generator(size).eval().requires_grad_(False)
    if impl == "reference":
        to_reference_path(g)
    w = torch.randn(batch, g.n_latent, g.style_dim, generator=torch.Generator().manual_seed(1))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step():
        if mode == "forward":
            with torch.no_grad():
                return g(w)
        x = w.clone().requires_grad_()
        img = g(x)
        img.square().mean().backward()
        return x.grad

    step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = step()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"time": min(times), "peak_mb": peak / 1024, "over_model_mb": (peak - base_rss) / 1024, "checksum": float(out.double().abs().sum())}


def run_child(impl, size, batch, mode, repeats):
    cmd = [sys.executable, __file__, "--child", impl, str(size), str(batch), mode, str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--modes", nargs="+", default=["forward", "fwd+bwd"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, size, batch, mode, repeats = args.child
        print(json.dumps(measure(impl, int(size), int(batch), mode, int(repeats))))
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"{'size':>5} {'batch':>5} {'mode':>8} | {'ours s':>8} {'ref s':>8} {'ratio':>6} | {'ours MB':>8} {'ref MB':>8} (peak RSS over the loaded model)")
    for size in args.sizes:
        for batch in args.batches:
            for mode in args.modes:
                ref = run_child("reference", size, batch, mode, args.repeats)
                ours = run_child("ours", size, batch, mode, args.repeats)
                agree = abs(ours["checksum"] - ref["checksum"]) <= 1e-3 * abs(ref["checksum"])
                print(
                    f"{size:>5} {batch:>5} {mode:>8} | {ours['time']:>8.3f} {ref['time']:>8.3f} {ref['time'] / ours['time']:>6.2f} | "
                    f"{ours['over_model_mb']:>8.0f} {ref['over_model_mb']:>8.0f}{'' if agree else '  OUTPUTS DIFFER'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
