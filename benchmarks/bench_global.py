"""Global directions: channel-relevance (fs3) cost per layer, ours against the reference procedure,
projected to the full job, and the latency of a global-direction edit at 1024 px.

    python benchmarks/bench_global.py [--size 256] [--num-images 4] [--batch-size 8] [--device cpu]

Both sides use one seeded random full-size config-f generator and one random full-size ViT-B/32
(open_clip 'ViT-B-32-quickgelu' without pretrained weights), in one process, layer by layer in
turn so that machine noise hits both.

* ours: ``channel_relevance`` as the node runs it (CLIP's preprocessing on the rendered batch,
  the identical-pair skip), started at each conv layer by resuming from a partial result that
  ends just before it, and stopped after ``--batches`` batches; a batch renders only the layers
  from the probed one on, for ``--batch-size`` probes at once;
* reference: SingleChannel.py's procedure (global_torch): for each face and sign, the full
  synthesis of one image on the reference generator path (``reference_equivalent``), the
  image converted to uint8, to PIL and through CLIP's preprocessing (PIL bicubic resize, crop,
  normalise), then CLIP on the 2 x num_images images of the channel at once.

Per-probe times (one probe = one rendered and encoded image) per layer are projected to the full
job: every channel x 100 faces x 2 signs, plus rendering the 100 faces up to each layer once
(ours). The ratio is reference / ours. The GPU projection divides the job's floating-point
operations (counted per layer with torch's FlopCounterMode on a meta-device generator, and on one
CLIP forward) by an assumed sustained throughput (``--gpu-tflops``); it is an estimate, not a
measurement. On a CUDA device (``--device cuda``) the times are measured there, and the rows of
a few channels in bfloat16 are compared with float32 (parity).
"""
from __future__ import annotations

import argparse
import os
import statistics as st
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

FACES = 100  # the reference job: 100 faces per channel


class _Stop(Exception):
    pass


def build(size, device):
    import open_clip
    import torch

    from reference_equivalent import to_reference_path
    from styleclip_core.clip_model import ClipModel
    from styleclip_core.generator import Generator

    torch.manual_seed(0)
    g = Generator(size).eval().requires_grad_(False)
    with torch.no_grad():
        g.w_avg.copy_(g.mean_latent(4096)[0])
    g.has_w_avg = True
    ref = Generator(size).eval().requires_grad_(False)
    ref.load_state_dict(g.state_dict())
    ref.w_avg.copy_(g.w_avg)
    ref.has_w_avg = True
    to_reference_path(ref)
    torch.manual_seed(1)
    net = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval().requires_grad_(False)
    clip = ClipModel(net.to(device), open_clip.tokenize, 224)
    return g.to(device), ref.to(device), clip


def time_ours(g, clip, stats, job, layer, row, batch, batches, tmp):
    """(seconds per probe, seconds per face of the prefix) of ``channel_relevance`` at ``layer``."""
    import torch

    from styleclip_core import global_directions as gd
    from styleclip_core.global_cache import relevance_encoder

    prepare, encode = relevance_encoder(clip)
    path = None
    if row:
        path = os.path.join(tmp, f"upto-{layer}.safetensors")
        gd.save_fs3(torch.zeros(row, clip.net.visual.output_dim), path, {"job": job.__dict__})
    stamps = [time.perf_counter()]

    def progress(done, total, preview=None):
        _sync(g)
        stamps.append(time.perf_counter())
        if len(stamps) > batches + 1:
            raise _Stop

    try:
        gd.channel_relevance(g, encode, stats, job, batch, path, progress, prepare)
    except _Stop:
        pass
    per_batch = st.median(b - a for a, b in zip(stamps[1:], stamps[2:]))
    prefix = max(0.0, stamps[1] - stamps[0] - per_batch) / job.num_images
    return per_batch / batch, prefix


def time_reference(ref, clip, stats, job, layer):
    """Seconds per probe of SingleChannel.py's loop for channel 0 of ``layer``."""
    import numpy as np
    import torch
    from PIL import Image

    from styleclip_core import global_directions as gd

    mean, std = stats.mean[layer], stats.std[layer]
    base = gd.reference_styles(ref, gd.sample_z(job.num_images, ref.style_dim, job.seed))
    c = 0
    start = time.perf_counter()
    inputs = []
    with torch.no_grad():
        for i in range(job.num_images):
            for sign in (-1, 1):
                styles = [b[i:i + 1].clone() for b in base]
                styles[layer][0, : c + 1] = mean[: c + 1]
                styles[layer][0, c] += sign * job.alpha * std[c]
                img = ref.synthesis(styles)  # noise_mode='const', one image
                img = ((img + 1) * (255 / 2)).permute(0, 2, 3, 1).clamp(0, 255).to(torch.uint8)[0].cpu().numpy()
                pil = Image.fromarray(img).resize((224, 224), Image.Resampling.BICUBIC)  # CLIP's Resize + CenterCrop, square input
                x = (np.asarray(pil, dtype=np.float32) / 255 - np.array(clip.mean, np.float32)) / np.array(clip.std, np.float32)
                inputs.append(torch.from_numpy(x).permute(2, 0, 1))
        clip.net.encode_image(torch.stack(inputs).to(clip.device))
    _sync(ref)
    return (time.perf_counter() - start) / (2 * job.num_images)


def _sync(g):
    import torch

    if g.w_avg.is_cuda:
        torch.cuda.synchronize()


def flops_per_probe(size, layer, clip):
    """Generator FLOPs of one probe at ``layer`` (from the layer on) and CLIP FLOPs per image."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from styleclip_core.generator import Generator

    with torch.device("meta"):
        g = Generator(size)
    styles = [torch.zeros(1, s.channels, device="meta") for s in g.style_layers]
    with torch.no_grad():
        state = g.synthesis_state(styles, layer)
        counter = FlopCounterMode(display=False)
        with counter:
            g.synthesis(styles, start=state)
        gen = counter.get_total_flops()
        counter = FlopCounterMode(display=False)
        with counter:
            clip.net.encode_image(torch.zeros(1, 3, 224, 224, device=clip.device))
    return gen, counter.get_total_flops()


def edit_latency(size, device, repeats=2):
    """Seconds for a global-direction edit at ``size``: text direction (79 templates), boundary,
    s + alpha delta, and rendering one face (and a five-alpha strip)."""
    import torch

    from reference_equivalent import to_reference_path
    from styleclip_core import global_directions as gd
    from styleclip_core.global_cache import Relevance

    g, _, clip = build(size, device)
    del _
    stats = gd.style_statistics(g, num_samples=2000)
    fs3 = torch.nn.functional.normalize(torch.randn(gd.num_conv_channels(g), 512, generator=torch.Generator().manual_seed(0)), dim=-1)
    rel = Relevance(g, fs3, stats, None, "random fs3")
    out = {}
    t = time.perf_counter()
    direction = rel.direction(clip, "face", "face with blonde hair", 0.05)
    out["text direction + boundary (first time)"] = time.perf_counter() - t
    t = time.perf_counter()
    direction = rel.direction(clip, "face", "smiling face", 0.05)
    out["text direction + boundary (other text)"] = time.perf_counter() - t
    with torch.no_grad():
        w = gd.reference_styles(g, gd.sample_z(1, g.style_dim, 9))
        for alphas, label in (([4.1], "edit + render, 1 image"), ([-4, -2, 0, 2, 4], "edit + render, 5 alphas")):
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                g.synthesis(gd.apply_direction(w, direction, alphas))
                _sync(g)
                times.append(time.perf_counter() - t)
            out[label] = min(times)
        to_reference_path(g)
        t = time.perf_counter()
        g.synthesis(gd.apply_direction(w, direction, [4.1]))
        out["render, 1 image, reference path"] = time.perf_counter() - t
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-images", type=int, default=4, help="faces per channel in the measurement (the projection uses 100)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=2, help="timed batches per layer (ours)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gpu-tflops", type=float, nargs=2, default=[100.0, 300.0], metavar=("FP32", "BF16"),
                        help="assumed sustained GPU throughput for the projection (TF32 convolutions, bfloat16 autocast)")
    parser.add_argument("--edit-size", type=int, default=1024)
    parser.add_argument("--skip-relevance", action="store_true")
    args = parser.parse_args()

    import torch

    from styleclip_core import global_directions as gd

    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}")
    if not args.skip_relevance:
        g, ref, clip = build(args.size, args.device)
        t = time.perf_counter()
        stats = gd.style_statistics(g, num_samples=10_000)
        stats_time = (time.perf_counter() - t) * 10
        job = gd.RelevanceJob(num_images=args.num_images, max_resolution=None)
        print(f"{args.size}px, {args.num_images} faces x 2 signs per channel measured, batch {args.batch_size} (ours)")
        print(f"{'layer':>20} {'ch':>4} | {'ours s/probe':>12} {'ref s/probe':>11} {'ratio':>6} | {'GFLOP/probe':>11}")
        totals = {"ours": 0.0, "ref": 0.0, "flops": 0.0}
        sub = dict(totals)
        clip_flops = None
        row = 0
        with tempfile.TemporaryDirectory() as tmp:
            for layer in gd.conv_layers(g):
                info = g.style_layers[layer]
                ours, prefix = time_ours(g, clip, stats, job, layer, row, args.batch_size, args.batches, tmp)
                reference = time_reference(ref, clip, stats, job, layer)
                gen_flops, clip_flops = flops_per_probe(args.size, layer, clip)
                probes = info.channels * 2 * FACES
                part = {"ours": probes * ours + FACES * prefix, "ref": probes * reference, "flops": probes * (gen_flops + clip_flops)}
                for k in totals:
                    totals[k] += part[k]
                    sub[k] += part[k] if info.resolution <= 128 else 0
                print(f"{info.name:>20} {info.channels:>4} | {ours:>12.3f} {reference:>11.3f} {reference / ours:>6.2f} | {(gen_flops + clip_flops) / 1e9:>11.1f}", flush=True)
                row += info.channels
        print(f"CLIP ViT-B/32: {clip_flops / 1e9:.1f} GFLOP per image; style statistics (100k faces): about {stats_time:.0f} s")
        for label, t in (("all conv layers", totals), ("layers up to 128 px", sub)):
            print(f"projected full job, {label}: ours {t['ours'] / 3600:.1f} h, reference {t['ref'] / 3600:.1f} h "
                  f"(ratio {t['ref'] / t['ours']:.2f}); {t['flops'] / 1e15:.1f} PFLOP -> GPU estimate "
                  f"{t['flops'] / args.gpu_tflops[0] / 1e12 / 60:.0f} min at {args.gpu_tflops[0]:.0f} TFLOPS (float32/TF32), "
                  f"{t['flops'] / args.gpu_tflops[1] / 1e12 / 60:.0f} min at {args.gpu_tflops[1]:.0f} TFLOPS (bfloat16)")
        if args.device.startswith("cuda"):
            parity(g, clip, stats)
    print(f"global-direction edit at {args.edit_size}px ({args.device}):")
    for label, seconds in edit_latency(args.edit_size, args.device).items():
        print(f"  {label:>40}: {seconds:.3f} s")


def parity(g, clip, stats):
    """bfloat16 and float16 rows of the first layer's first channels against float32."""
    from styleclip_core import global_directions as gd
    from styleclip_core.global_cache import relevance_encoder

    prepare, encode = relevance_encoder(clip)
    job = gd.RelevanceJob(num_images=16, max_resolution=4)
    exact = gd.channel_relevance(g, encode, stats, job, 64, prepare_image=prepare)
    for precision in ("bfloat16", "float16"):
        mixed = gd.channel_relevance(g, encode, stats, gd.RelevanceJob(**{**job.__dict__, "precision": precision}), 64, prepare_image=prepare)
        cos = (exact * mixed).sum(-1)
        print(f"parity {precision}: row cosine to float32 min {cos.min():.4f}, median {cos.median():.4f} ({len(cos)} channels, 16 faces)")


if __name__ == "__main__":
    main()
