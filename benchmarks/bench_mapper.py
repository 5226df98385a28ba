"""Latent mapper edit latency and training speed: ours against the reference-equivalent path, in one run.

    python benchmarks/bench_mapper.py [--edit-size 1024] [--train-sizes 256 1024] [--repeats 3] [--device cpu] [--no-id]

Edit (inference): one face's W+ code through a LevelsMapper (512 wide, seeded random weights),
``w_hat = w + 0.1 mapper(w)``, then synthesis of ``w_hat``, without gradients. Compared with one
plain synthesis of ours (the cost the mapper adds) and with the reference-equivalent path: the
rosinality CPU generator code (``reference_equivalent.to_reference_path``) and the reference
mapper maths (PixelNorm over dim 1 of ``[B, rows, 512]``, EqualLinear with StyleCLIP's 3-D fused
leaky ReLU: bias on the last dim, ``leaky_relu(x + b, 0.2) * sqrt(2)``).

Training: one step of StyleCLIP's coach at its defaults (batch 2, LevelsMapper, Ranger lr 0.5,
CLIP loss + 0.8 x latent MSE + 0.1 x ID loss) with a seeded random full-size config-f generator,
a random full-size ViT-B/32 (open_clip 'ViT-B-32-quickgelu' built without pretrained weights) and
a random full-size ArcFace IR-SE50, all weights the same on both sides:

* ours: ``styleclip_core.edits.mapper_training.MapperTrainer.step`` (frozen networks, text encoded once,
  the CLIP resize as a matrix product, our generator path);
* reference: the coach's step written from SPEC.md 5.3 on the reference generator path:
  nn.Upsample(7) + AvgPool2d, OpenAI-style ``model(image, text)`` (text encoded every step),
  IDLoss's pooling and crop, ``nn.MSELoss``, and -- as the coach never freezes them -- generator,
  CLIP and ArcFace weights that require grad, so backward also forms their gradients;
* reference-frozen: the same with frozen networks, to show how much of the gap that alone is.
Both sides step the same Ranger (torch RAdam + timm Lookahead + gradient centralisation, shown
equal to Ranger's maths in tests/test_mapper_training.py); its update is a small part of a step.

Times are the fastest of ``--repeats`` after one warm-up; each measurement runs in its own
process. Ratios are reference time / our time (> 1: ours is faster): in the edit table the
reference row's "vs ours" column. Peak memory is over the loaded models (``benchutil.PeakMemory``:
the process's peak RSS on a CPU, the peak of allocated CUDA memory on a GPU).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

TEXT = "a person with purple hair"
CLIP_LAMBDA, L2_LAMBDA, ID_LAMBDA = 1.0, 0.8, 0.1


def build_generator(size: int, device: str, batch: int):
    import torch

    from styleclip_core.models.generator import Generator

    torch.manual_seed(0)
    g = Generator(size).eval().requires_grad_(False)
    with torch.no_grad():
        z = torch.randn(batch, g.style_dim, generator=torch.Generator().manual_seed(2))
        w_plus = g.to_w_plus(g.truncate(g.mapping(z), 0.7, g.mean_latent(4096)))
    return g.to(device), w_plus.to(device)


def build_mapper(g, device: str):
    import torch

    from styleclip_core.models.mapper import build_mapper as build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return build("LevelsMapper", latent_dim=g.style_dim).to(device)


# ---- the reference mapper maths -------------------------------------------------------------


def reference_mapper_delta(mapper, w):
    """StyleCLIP's LevelsMapper forward on our mapper's weights."""
    import torch
    import torch.nn.functional as F

    from styleclip_core.models.mapper import LEVELS

    def mapping(module, x):
        x = x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)
        for layer in list(module)[1:]:
            out = F.linear(x, layer.weight * layer.scale)
            x = F.leaky_relu(out + (layer.bias * layer.lr_mul).view(1, 1, -1), negative_slope=0.2) * math.sqrt(2)
        return x

    parts = []
    for name, start, stop in LEVELS:
        rows = w[:, start:stop]
        parts.append(mapping(getattr(mapper.net, name).mapping, rows) if hasattr(mapper.net, name) else torch.zeros_like(rows))
    return torch.cat(parts, 1)


# ---- edit latency ---------------------------------------------------------------------------


def measure_edit(impl: str, size: int, batch: int, repeats: int, device: str) -> dict:
    import torch

    from reference_equivalent import to_reference_path
    from styleclip_core.models.latents import Latents

    g, w = build_generator(size, device, batch)
    mapper = build_mapper(g, device)
    if impl == "reference":
        to_reference_path(g)

    def run():
        with torch.no_grad():
            if impl == "synthesis":
                return g(w)
            if impl == "ours":
                return g(mapper.edit(Latents(w_plus=w), g).w_plus)
            return g(w + 0.1 * reference_mapper_delta(mapper, w))

    return timed(run, repeats, device)


# ---- training step ----------------------------------------------------------------------------


def build_training(size: int, device: str, with_id: bool):
    import open_clip
    import torch

    from styleclip_core.models.irse import ArcFaceBackbone

    g, codes = build_generator(size, device, 2)
    torch.manual_seed(1)
    net = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval().requires_grad_(False).to(device)
    arcface = None
    if with_id:
        torch.manual_seed(4)
        arcface = ArcFaceBackbone().eval().requires_grad_(False).to(device)
    return g, codes, net, arcface


def ours_training(g, codes, net, arcface):
    import open_clip

    from styleclip_core.models.clip import ClipModel
    from styleclip_core.models.latents import Latents
    from styleclip_core.edits.losses import ClipLoss, IdentityLoss, LatentL2Loss, LossSet
    from styleclip_core.edits.mapper_training import MapperTrainer, TrainingOptions

    clip = ClipModel(net, lambda texts: open_clip.tokenize(texts), 224)
    loss = LossSet().add(ClipLoss(clip, TEXT, CLIP_LAMBDA)).add(LatentL2Loss(L2_LAMBDA, "mean"))
    if arcface is not None:
        loss = loss.add(IdentityLoss(arcface, ID_LAMBDA))
    trainer = MapperTrainer(g, Latents(w_plus=codes), loss, TrainingOptions(seed=3))

    def step():
        return trainer.step()[f"CLIP {TEXT!r}"]

    return step


def reference_training(g, codes, net, arcface, frozen: bool):
    import open_clip
    import torch
    import torch.nn.functional as F
    from torch import nn

    from reference_equivalent import to_reference_path
    from styleclip_core.edits.mapper_training import ranger

    to_reference_path(g)
    mapper = build_mapper(g, codes.device).train().requires_grad_(True)
    if not frozen:  # the coach freezes none of its networks
        for m in (g, net, arcface):
            if m is not None:
                m.requires_grad_(True)
    text = open_clip.tokenize([TEXT]).to(codes.device)
    upsample, pool = nn.Upsample(scale_factor=7), nn.AvgPool2d(kernel_size=g.size // 32)
    face_pool_256, face_pool_112 = nn.AdaptiveAvgPool2d((256, 256)), nn.AdaptiveAvgPool2d((112, 112))
    optimizer = ranger(mapper.net.parameters(), lr=0.5)

    def id_feats(x):
        if x.shape[2] != 256:
            x = face_pool_256(x)
        return arcface(face_pool_112(x[:, :, 35:223, 32:220]))

    def step():
        optimizer.zero_grad()
        w = codes
        with torch.no_grad():
            x = g(w)
        w_hat = w + 0.1 * reference_mapper_delta(mapper, w)
        x_hat = g(w_hat)
        loss = 0.0
        if arcface is not None:
            y_feats = id_feats(x).detach()
            loss_id = (1 - (id_feats(x_hat) * y_feats).sum(1)).mean()
            loss = ID_LAMBDA * loss_id
        image_features = F.normalize(net.encode_image(pool(upsample(x_hat))), dim=-1)  # OpenAI CLIP forward: both towers
        text_features = F.normalize(net.encode_text(text), dim=-1)
        loss_clip = (1 - net.logit_scale.exp() * image_features @ text_features.t() / 100).mean()
        loss = loss + CLIP_LAMBDA * loss_clip + L2_LAMBDA * F.mse_loss(w_hat, w)
        loss.backward()
        optimizer.step()
        return float(loss_clip)

    return step


def measure_train(impl: str, size: int, repeats: int, device: str, with_id: bool) -> dict:
    g, codes, net, arcface = build_training(size, device, with_id)
    if impl == "ours":
        step = ours_training(g, codes, net, arcface)
    else:
        step = reference_training(g, codes, net, arcface, frozen=impl == "reference-frozen")
    return timed(step, repeats, device)


# ---- measurement -----------------------------------------------------------------------------


def timed(fn, repeats: int, device: str) -> dict:
    """``benchutil.timed`` (best time, peak memory over the loaded models) with a check value."""
    import benchutil

    r = benchutil.timed(fn, repeats, device)
    r["check"] = benchutil.check_value(r.pop("first"))
    return r


def run_child(threads, *args):
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child", *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edit-size", type=int, default=1024)
    parser.add_argument("--edit-batch", type=int, default=1)
    parser.add_argument("--train-sizes", type=int, nargs="*", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (after one warm-up)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-id", action="store_true", help="train without the ArcFace identity term (id_lambda 0)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads in every measurement (0: torch's default)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        kind, impl, size, *rest = args.child
        if kind == "edit":
            result = measure_edit(impl, int(size), int(rest[0]), int(rest[1]), rest[2])
        else:
            result = measure_train(impl, int(size), int(rest[0]), rest[1], rest[2] == "1")
        print(json.dumps(result))
        return

    import torch

    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}")
    if args.edit_size:
        print(f"\nedit latency, {args.edit_size}px, batch {args.edit_batch} (mapper + synthesis, no gradients)")
        print(f"{'impl':>23} | {'s':>8} {'vs ours':>8} | {'peak MB':>8} | mean |image|")
        results = {impl: run_child(args.threads, "edit", impl, args.edit_size, args.edit_batch, args.repeats, args.device) for impl in ("ours", "synthesis", "reference")}
        for impl, r in results.items():
            label = {"ours": "mapper edit (ours)", "synthesis": "plain synthesis (ours)", "reference": "mapper edit (reference)"}[impl]
            agree = impl == "synthesis" or abs(r["check"] - results["ours"]["check"]) <= 1e-4 * abs(results["ours"]["check"])
            print(f"{label:>23} | {r['time']:>8.3f} {r['time'] / results['ours']['time']:>8.2f} | {r['peak_mb']:>8.0f} | {r['check']:.6f}{'' if agree else '  IMAGES DIFFER'}", flush=True)
    with_id = not args.no_id
    if args.train_sizes:
        terms = f"CLIP + {L2_LAMBDA} x latent MSE" + (f" + {ID_LAMBDA} x ID" if with_id else "")
        print(f"\ntraining step, batch 2, LevelsMapper, Ranger lr 0.5, {terms}")
        print(f"{'size':>5} {'impl':>17} | {'s/step':>8} {'it/s':>7} {'ratio':>6} | {'peak MB':>8} | first CLIP loss")
        for size in args.train_sizes:
            results = {impl: run_child(args.threads, "train", impl, size, args.repeats, args.device, int(with_id)) for impl in ("reference", "reference-frozen", "ours")}
            for impl, r in results.items():
                agree = abs(r["check"] - results["ours"]["check"]) < 1e-4
                print(
                    f"{size:>5} {impl:>17} | {r['time']:>8.3f} {1 / r['time']:>7.3f} {r['time'] / results['ours']['time']:>6.2f} | {r['peak_mb']:>8.0f} | "
                    f"{r['check']:.6f}{'' if agree else '  LOSSES DIFFER'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
