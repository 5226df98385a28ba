"""Time the CUDA plugin against the PyTorch reference for the generator's ops.

    python benchmarks/bench_ops.py [--iters 50] [--dtype float32]

Each row is one run: mean milliseconds per call of each path after a warmup, and the
speedup (reference / plugin). Needs a CUDA GPU; elsewhere it says so and exits 0.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from styleclip_core.ops import cuda_plugin, fused_leaky_relu, make_kernel, upfirdn2d  # noqa: E402

BATCH = 4
# channel_multiplier=2 StyleGAN2: channels of the layers that produce each resolution.
CHANNELS = {256: 128, 1024: 32}


def _cases():
    blur = make_kernel([1, 3, 3, 1])
    for res in (256, 1024):
        c = CHANNELS[res]
        # ToRGB skip upsample: RGB at res/2 -> res.
        yield f"upsample   up=2   pad=(2,1) {res}", "up", (BATCH, 3, res // 2, res // 2), dict(kernel=blur * 4, up=2, pad=(2, 1))
        # Blur after the stride-2 transposed 3x3 conv, whose output is res+1 wide.
        yield f"blur              pad=(1,1) {res}", "up", (BATCH, c, res + 1, res + 1), dict(kernel=blur * 4, pad=(1, 1))
        yield f"downsample down=2 pad=(1,1) {res}", "up", (BATCH, c, res, res), dict(kernel=blur, down=2, pad=(1, 1))
    for shape in ((4, 512, 64, 64), (4, 32, 1024, 1024)):
        yield f"fused_leaky_relu {list(shape)}", "act", shape, {}


def _timed(fn, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        print("bench_ops needs a CUDA GPU; none is available here, nothing to time.")
        return 0
    if not cuda_plugin.available():
        print(f"the CUDA ops plugin is unavailable: {cuda_plugin.failure_reason()}")
        return 1

    dtype = getattr(torch, args.dtype)
    print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}  {args.dtype}  "
          f"{args.iters} iters after {args.warmup} warmup\n")
    print(f"{'op':<36} {'pass':<9} {'reference ms':>12} {'cuda ms':>9} {'speedup':>8} {'max |diff|':>10}")
    for name, kind, shape, kw in _cases():
        torch.manual_seed(0)
        x = torch.randn(shape, device="cuda", dtype=dtype)
        if kind == "up":
            kw = dict(kw, kernel=kw["kernel"].cuda())

            def op(t, impl, kw=kw):
                return upfirdn2d(t, impl=impl, **kw)

            params = []
        else:
            bias = torch.randn(shape[1], device="cuda", dtype=dtype)
            params = [bias]

            def op(t, impl, bias=bias):
                return fused_leaky_relu(t, bias, impl=impl)

        with torch.no_grad():
            diff = (op(x, "cuda").float() - op(x, "reference").float()).abs().max().item()
        grad = torch.randn_like(op(x, "reference"))
        xg = x.detach().requires_grad_()
        for p in params:
            p.requires_grad_()

        for label, impl_fn in [
            ("forward", lambda impl: lambda: op(x, impl)),
            ("fwd+bwd", lambda impl: lambda: torch.autograd.backward(op(xg, impl), grad)),
        ]:
            with torch.set_grad_enabled(label != "forward"):
                ref_ms = _timed(impl_fn("reference"), args.iters, args.warmup)
                cuda_ms = _timed(impl_fn("cuda"), args.iters, args.warmup)
            print(f"{name:<36} {label:<9} {ref_ms:>12.3f} {cuda_ms:>9.3f} {ref_ms / cuda_ms:>7.2f}x {diff:>10.2e}")
            xg.grad = None
            for p in params:
                p.grad = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
