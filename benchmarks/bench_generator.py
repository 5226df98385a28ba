"""Generator speed and peak memory: ours against the reference-equivalent path, in one run.

    python benchmarks/bench_generator.py [--sizes 256 1024] [--batches 1 4 16] [--modes forward fwd+bwd]
                                         [--repeats 3] [--device cpu] [--compile] [--precision fp32]

Each measurement runs in its own process (so peak memory is that run's alone) with the same
seeded random full-size weights (config-f channel table). "forward" renders W+ without
gradients; "fwd+bwd" also back-propagates to W+ as latent optimisation does (weights frozen).
Times are the best of ``--repeats`` after one warm-up; ours and the reference alternate so
machine noise hits both. The ratio is reference time / our time (> 1: ours is faster). Peak
memory is over the loaded model (``benchutil.PeakMemory``: peak RSS on a CPU, peak allocated
CUDA memory on a GPU). Default batches: 1 4 on a CPU (batch 16 at 1024 px needs tens of GB
there), 1 4 16 on CUDA.

``--compile`` adds a row for ``Generator.compile_synthesis()`` (torch.compile): its time after
compiling, the compile time (first call), and the largest difference from our eager output in
the same process. ``--precision bf16`` / ``fp16`` runs our rows under autocast (a CUDA option).
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

IMPLS = ("reference", "ours", "ours+compile")


def build(size: int, device: str = "cpu", reference: bool = False):
    """The seeded random config-f generator of ``size`` (on the reference path if asked)."""
    import torch

    from reference_equivalent import to_reference_path
    from styleclip_core.models.generator import Generator

    torch.manual_seed(0)
    g = Generator(size).eval().requires_grad_(False)
    if reference:
        to_reference_path(g)
    return g.to(device)


def codes(g, batch: int):
    import torch

    w = torch.randn(batch, g.n_latent, g.style_dim, generator=torch.Generator().manual_seed(1))
    return w.to(g.w_avg.device)


def step_fn(g, w, mode: str):
    import torch

    def step():
        if mode == "forward":
            with torch.no_grad():
                return g(w)
        x = w.clone().requires_grad_()
        g(x).square().mean().backward()
        return x.grad

    return step


def run(g, batch: int, mode: str, repeats: int, device: str) -> dict:
    """Time one configuration on a built generator: best time, peak memory, output checksum."""
    from benchutil import timed

    r = timed(step_fn(g, codes(g, batch), mode), repeats, device)
    out = r.pop("first")
    r["checksum"] = float(out.double().abs().sum())
    return r


def run_compiled(g, batch: int, mode: str, repeats: int, device: str, time_eager: bool = False) -> dict:
    """``run`` after ``compile_synthesis``; adds compile_s (first call), max_diff from eager, status
    (and eager_time, ``run`` before compiling, with ``time_eager``)."""
    from benchutil import sync

    g.compile_synthesis(False)  # the eager output (and time) of this generator, even if compiled before
    step = step_fn(g, codes(g, batch), mode)
    eager = step().float()
    eager_time = run(g, batch, mode, repeats, device)["time"] if time_eager else None
    g.compile_synthesis()
    sync(device)
    t = time.perf_counter()
    compiled = step().float()
    sync(device)
    compile_s = time.perf_counter() - t
    r = run(g, batch, mode, repeats, device)
    r.update(compile_s=compile_s, max_diff=float((compiled - eager).abs().max()), status=g.compile_status, eager_time=eager_time)
    return r


def measure(impl: str, size: int, batch: int, mode: str, repeats: int, device: str = "cpu", precision: str = "fp32") -> dict:
    g = build(size, device, reference=impl == "reference")
    if impl != "reference":
        g.set_precision(precision)
    if impl == "ours+compile":
        return run_compiled(g, batch, mode, repeats, device)
    return run(g, batch, mode, repeats, device)


def run_child(impl, size, batch, mode, repeats, device="cpu", precision="fp32"):
    cmd = [sys.executable, __file__, "--child", impl, str(size), str(batch), mode, str(repeats), device, precision]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{impl} {size}px batch {batch} {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", help="default: 1 4 on a CPU, 1 4 16 on CUDA")
    parser.add_argument("--modes", nargs="+", default=["forward", "fwd+bwd"], choices=["forward", "fwd+bwd"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also measure Generator.compile_synthesis() (torch.compile)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="our rows' precision (autocast; a CUDA option)")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, size, batch, mode, repeats, device, precision = args.child
        print(json.dumps(measure(impl, int(size), int(batch), mode, int(repeats), device, precision)))
        return

    import torch

    from benchutil import where

    batches = args.batches or ([1, 4, 16] if args.device.startswith("cuda") else [1, 4])
    impls = ["reference", "ours"] + (["ours+compile"] if args.compile else [])
    print(f"torch {torch.__version__}, {where(args.device)}; ours in {args.precision}")
    print(f"{'size':>5} {'batch':>5} {'mode':>8} {'impl':>13} | {'s':>8} {'ratio':>6} | {'peak MB':>8} (over the loaded model)")
    for size in args.sizes:
        for batch in batches:
            for mode in args.modes:
                results = {impl: run_child(impl, size, batch, mode, args.repeats, args.device, args.precision) for impl in impls}
                ref = results["reference"]
                for impl, r in results.items():
                    note = ""
                    if impl != "reference" and abs(r["checksum"] - ref["checksum"]) > 1e-3 * abs(ref["checksum"]):
                        note = "  OUTPUTS DIFFER" if args.precision == "fp32" else f"  (checksum {r['checksum'] / ref['checksum'] - 1:+.1e} off fp32 reference)"
                    if impl == "ours+compile":
                        note += f"  compile {r['compile_s']:.1f} s, max |compiled - eager| {r['max_diff']:.1e}, {r['status']}"
                    print(
                        f"{size:>5} {batch:>5} {mode:>8} {impl:>13} | {r['time']:>8.3f} {ref['time'] / r['time']:>6.2f} | "
                        f"{r['peak_mb']:>8.0f}{note}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
