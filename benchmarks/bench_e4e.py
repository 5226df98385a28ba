"""e4e inversion (encoder + generator render): ours against the reference-equivalent path, in one run.

    python benchmarks/bench_e4e.py [--size 1024] [--batches 1 4] [--repeats 2] [--device cpu]

Both sides use one full-size e4e encoder (``Encoder4Editing``: IR-SE50 body, FPN, one style block
per W+ row) with seeded random weights (BatchNorm statistics and PReLU slopes randomised too) and
one seeded random full-size config-f generator of ``--size``; the input is a batch of random
256 x 256 "aligned faces" in [0, 1].

* ours: the Invert Images and Synthesize Images nodes' library calls:
  ``e4e.invert(encoder, images, chunk=4)`` then ``render(g, Latents(w_plus=codes), chunk=4)``;
* reference: e4e's scripts/inference.py written from its maths on the same weights: ToTensor +
  Normalize, the encoder forward of psp_encoders.Encoder4Editing (MaxPool2d(1, stride)
  shortcuts, squeeze-excite through AdaptiveAvgPool2d, ``w0.repeat`` and a delta added row by row,
  ``latent_avg.repeat``), then ``generate_inversions``: one image at a time at full size on the
  rosinality generator path (``reference_equivalent.to_reference_path``), without writing files.

"encode" times the encoder alone, "invert+render" the whole inversion. Times are the best of
``--repeats`` after one warm-up, each measurement in its own process; the ratio is reference time
/ our time (> 1: ours is faster). Peak memory is over the loaded models (``benchutil.PeakMemory``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

CHUNK = 4  # the nodes' default chunk_size


def build_encoder(g, seed: int = 7):
    """A full-size ``Encoder4Editing`` for ``g`` on seeded random weights."""
    import torch

    from styleclip_core.formats.tiny_models import random_e4e

    net = random_e4e(g, seed=seed)
    with torch.no_grad():
        net.latent_avg = g.mean_latent(4096).expand(g.n_latent, -1).clone().to(net.latent_avg)
    return net


def faces(batch: int, seed: int = 3):
    import torch

    return torch.rand(batch, 256, 256, 3, generator=torch.Generator().manual_seed(seed))


# ---- the reference encoder maths --------------------------------------------------------------


def _reference_unit(unit, x):
    import torch
    import torch.nn.functional as F

    shortcut = unit.shortcut_layer(x) if hasattr(unit, "shortcut_layer") else F.max_pool2d(x, 1, unit.stride)
    r = unit.res_layer
    res = r[4](r[3](r[2](r[1](r[0](x)))))
    se = r[5]
    gate = F.adaptive_avg_pool2d(res, 1)
    gate = torch.sigmoid(se.fc2(F.relu(se.fc1(gate), inplace=True)))
    return res * gate + shortcut


def _reference_block(block, x):
    import torch.nn.functional as F

    x = block.convs(x).view(-1, block.linear.weight.shape[1])
    lin = block.linear
    return F.linear(x, lin.weight * lin.scale, bias=lin.bias * lin.lr_mul)


def _upsample_add(x, y):
    import torch.nn.functional as F

    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


def reference_encode(net, x):
    """psp_encoders.Encoder4Editing.forward at inference, plus pSp's latent_avg, on our weights."""
    x = net.input_layer(x)
    taps = {}
    for i, unit in enumerate(net.body):
        x = _reference_unit(unit, x)
        if i in net.taps:
            taps[i] = x
    c1, c2, c3 = (taps[i] for i in net.taps)
    w0 = _reference_block(net.styles[0], c3)
    w = w0.repeat(net.style_count, 1, 1).permute(1, 0, 2)
    features = c3
    for i in range(1, net.style_count):
        if i == net.COARSE:
            p2 = features = _upsample_add(c3, net.latlayer1(c2))
        elif i == net.MIDDLE:
            features = _upsample_add(p2, net.latlayer2(c1))
        w[:, i] += _reference_block(net.styles[i], features)
    return w + net.latent_avg.repeat(w.shape[0], 1, 1)


# ---- measurement ------------------------------------------------------------------------------


def make_run(impl: str, part: str, encoder, g, images, device: str):
    """A no-argument callable running ``part`` ('encode' or 'invert+render') the ``impl`` way; returns codes or images."""
    import torch

    from styleclip_core.models import e4e
    from styleclip_core.models.latents import Latents
    from styleclip_core.models.render import render

    if impl == "ours":
        def run():
            codes = e4e.invert(encoder, images, chunk=CHUNK)
            return codes if part == "encode" else render(g, Latents(w_plus=codes), chunk=CHUNK)
        return run

    def run():
        with torch.no_grad():
            x = (images.permute(0, 3, 1, 2) * 2 - 1).to(device)  # ToTensor + Normalize(0.5, 0.5)
            codes = reference_encode(encoder, x)
            if part == "encode":
                return codes.cpu()
            return torch.cat([g(codes[i:i + 1]).cpu() for i in range(codes.shape[0])])  # generate_inversions
    return run


def measure(impl: str, part: str, size: int, batch: int, repeats: int, device: str) -> dict:
    from bench_generator import build

    g = build(size, device, reference=impl == "reference")
    return measure_built(impl, part, g, build_encoder(g).to(device), batch, repeats, device)


def measure_built(impl: str, part: str, g, encoder, batch: int, repeats: int, device: str) -> dict:
    """``measure`` on built models (``g`` on the reference path for impl 'reference')."""
    from benchutil import timed

    r = timed(make_run(impl, part, encoder, g, faces(batch), device), repeats, device)
    out = r.pop("first").float()
    r["checksum"] = float(out.double().abs().mean())
    r["finite"] = bool(out.isfinite().all())
    return r


def run_child(*args):
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="generator size (the encoder makes its n_latent W+ rows)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--parts", nargs="+", default=["encode", "invert+render"], choices=["encode", "invert+render"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, part, size, batch, repeats, device = args.child
        print(json.dumps(measure(impl, part, int(size), int(batch), int(repeats), device)))
        return

    import torch

    from benchutil import where

    print(f"torch {torch.__version__}, {where(args.device)}; e4e IR-SE50 encoder (256 px input), {args.size}px generator")
    print(f"{'batch':>5} {'part':>13} {'impl':>9} | {'s':>8} {'ratio':>6} | {'peak MB':>8} | mean |output|")
    for batch in args.batches:
        for part in args.parts:
            results = {impl: run_child(impl, part, args.size, batch, args.repeats, args.device) for impl in ("reference", "ours")}
            ref = results["reference"]
            for impl, r in results.items():
                agree = abs(r["checksum"] - ref["checksum"]) <= 1e-4 * abs(ref["checksum"]) and r["finite"]
                print(
                    f"{batch:>5} {part:>13} {impl:>9} | {r['time']:>8.3f} {ref['time'] / r['time']:>6.2f} | {r['peak_mb']:>8.0f} | "
                    f"{r['checksum']:.6f}{'' if agree else '  OUTPUTS DIFFER'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
