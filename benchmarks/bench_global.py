"""Global directions: channel-relevance (fs3) cost per layer, ours against the reference procedure,
projected to the full job, and the latency of a global-direction edit at 1024 px.

    python benchmarks/bench_global.py [--size 256] [--num-images 4] [--batch-size 8] [--device cpu] [--max-layers N]

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
(ours). The ratio is reference / ours. Peak memory per layer and side is over the loaded models
(``benchutil.PeakMemory``; on a CPU, in this one process, exact where a measurement raised the
process's peak and sampled otherwise). The GPU projection divides the job's floating-point
operations (counted per layer with torch's FlopCounterMode on a meta-device generator, and on one
CLIP forward) by an assumed sustained throughput (``--gpu-tflops``); it is an estimate, not a
measurement. On a CUDA device (``--device cuda``) the times are measured there, and the rows of
a few channels in bf16 are compared with fp32 (parity).

The edit table times a global-direction edit at ``--edit-size``: the text direction and boundary
(ours), and ``s + alpha delta`` + rendering for one alpha and five, ours (one batch) against
global_torch's MSCode + GenerateImg (one image at a time on the reference path), with peak memory.
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
    from styleclip_core.models.clip import ClipModel
    from styleclip_core.models.generator import Generator

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

    from styleclip_core.edits import channel_relevance as cr
    from styleclip_core.edits.relevance_cache import relevance_encoder

    prepare, encode = relevance_encoder(clip)
    path = None
    if row:
        path = os.path.join(tmp, f"upto-{layer}.safetensors")
        done = cr.RelevanceRows(path, job)  # the rows before ``layer`` as finished: the run resumes at ``layer``
        done.add(torch.zeros(row, clip.net.visual.output_dim))
        done.save()
    stamps = [time.perf_counter()]

    def progress(done, total, preview=None):
        _sync(g)
        stamps.append(time.perf_counter())
        if len(stamps) > batches + 1:
            raise _Stop

    try:
        cr.channel_relevance(g, encode, stats, job, batch, path, progress, prepare)
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

    from styleclip_core.edits import global_directions as gd

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

    from styleclip_core.models.generator import Generator

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


def _time(fn, repeats, device):
    from benchutil import timed

    return timed(fn, repeats, device)


def edit_latency(size, device, repeats=2, alphas=(-4, -2, 0, 2, 4)):
    """Rows ``(label, ours, reference or None)`` of a global-direction edit at ``size``; each a
    ``benchutil.timed`` dict (best time, peak memory over the loaded models).

    * direction: text direction (79 templates through CLIP's text tower) + boundary, ours only
      (the reference's GetDt + GetBoundary compute the same with the same networks);
    * edit + render: ``s + alpha delta`` and the images in [0, 1] on the host, for one alpha
      and for five. Ours: ``Direction.apply``'s ``add_to_styles`` and one batched synthesis; reference: global_torch's
      ``MSCode`` (numpy) and ``GenerateImg`` (one synthesis per image and alpha on the reference
      generator path, converted to uint8 on the host).
    """
    import numpy as np
    import torch

    from styleclip_core.edits import global_directions as gd
    from styleclip_core.edits.directions import add_to_styles
    from styleclip_core.edits.relevance_cache import Relevance
    from styleclip_core.models.render import to_unit_range
    from styleclip_core.models.generator import num_conv_channels

    g, ref, clip = build(size, device)
    stats = gd.style_statistics(g, num_samples=2000)
    fs3 = torch.nn.functional.normalize(torch.randn(num_conv_channels(g), 512, generator=torch.Generator().manual_seed(0)), dim=-1)
    rel = Relevance(g, fs3, stats, None, "random fs3")
    rows = []
    rows.append(("text direction + boundary (first text)", _timed_once(lambda: rel.direction(clip, "face", "face with blonde hair", 0.05), device), None))
    rows.append(("text direction + boundary (other text)", _timed_once(lambda: rel.direction(clip, "face", "smiling face", 0.05), device), None))
    direction = rel.direction(clip, "face", "smiling face", 0.05)
    with torch.no_grad():
        styles = gd.reference_styles(g, gd.sample_z(1, g.style_dim, 9))
        host = [s.cpu().numpy() for s in styles]  # the reference keeps its codes as numpy arrays
        deltas = [d.cpu().numpy() for d in direction.deltas]

        def ours(a):
            return lambda: to_unit_range(g.synthesis(add_to_styles(styles, direction, a))).cpu()

        def reference(a):
            def run():
                step = len(a)
                codes = [np.tile(s[:, None], (1, step, 1)) + np.array(a, dtype=np.float64).reshape(1, step, 1) * d for s, d in zip(host, deltas)]  # MSCode
                out = np.zeros((1, step, size, size, 3), dtype="uint8")
                for k in range(step):  # GenerateImg
                    img = ref.synthesis([torch.from_numpy(c[0, k][None]).float().to(device) for c in codes])
                    out[0, k] = ((img + 1) * (255 / 2)).permute(0, 2, 3, 1).clamp(0, 255).to(torch.uint8)[0].cpu().numpy()
                return out
            return run

        for a, label in (([4.1], "edit + render, 1 image"), (list(alphas), f"edit + render, {len(alphas)} alphas")):
            rows.append((label, _time(ours(a), repeats, device), _time(reference(a), repeats, device)))
    return rows


def _timed_once(fn, device):
    """A first call (caches cold) timed alone, with its peak memory."""
    from benchutil import PeakMemory, sync

    with PeakMemory(device) as peak:
        t = time.perf_counter()
        fn()
        sync(device)
        elapsed = time.perf_counter() - t
    return {"time": elapsed, "times": [elapsed], "peak_mb": peak.mb}


def relevance(size, device, num_images=4, batch_size=8, batches=2, precision="fp32", max_layers=None, with_reference=True, built=None, log=print):
    """Per conv layer: ours and (optionally) the reference seconds per probe and peak memory, and
    the full job (every channel x 100 faces x 2 signs) projected from them. Returns a dict with
    ``rows`` and ``totals`` ('all conv layers', 'layers up to 128 px') in seconds and FLOPs."""
    from benchutil import PeakMemory
    from styleclip_core.edits import global_directions as gd
    from styleclip_core.edits import channel_relevance as cr
    from styleclip_core.models.generator import conv_layers

    g, ref, clip = built or build(size, device)
    t = time.perf_counter()
    stats = gd.style_statistics(g, num_samples=10_000)
    stats_time = (time.perf_counter() - t) * 10
    job = cr.RelevanceJob(num_images=num_images, max_resolution=None, precision=precision)
    layers = conv_layers(g)[: max_layers or None]
    rows, totals, sub = [], {"ours": 0.0, "ref": 0.0, "flops": 0.0}, {"ours": 0.0, "ref": 0.0, "flops": 0.0}
    row = 0
    clip_flops = None
    with tempfile.TemporaryDirectory() as tmp:
        for layer in layers:
            info = g.style_layers[layer]
            with PeakMemory(device) as peak_ours:
                ours, prefix = time_ours(g, clip, stats, job, layer, row, batch_size, batches, tmp)
            reference, peak_ref = float("nan"), float("nan")
            if with_reference:
                with PeakMemory(device) as p:
                    reference = time_reference(ref, clip, stats, job, layer)
                peak_ref = p.mb
            gen_flops, clip_flops = flops_per_probe(size, layer, clip)
            probes = info.channels * 2 * FACES
            part = {"ours": probes * ours + FACES * prefix, "ref": probes * reference, "flops": probes * (gen_flops + clip_flops)}
            for k in totals:
                totals[k] += part[k]
                sub[k] += part[k] if info.resolution <= 128 else 0
            r = {"layer": info.name, "channels": info.channels, "ours": ours, "ref": reference, "ours_mb": peak_ours.mb, "ref_mb": peak_ref, "gflop": (gen_flops + clip_flops) / 1e9}
            rows.append(r)
            log(r)
            row += info.channels
    return {"rows": rows, "totals": {"all conv layers": totals, "layers up to 128 px": sub}, "clip_gflop": clip_flops / 1e9,
            "stats_s": stats_time, "complete": len(layers) == len(conv_layers(g)), "stats": stats, "built": (g, ref, clip)}


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
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each edit-latency row (after one warm-up)")
    parser.add_argument("--max-layers", type=int, help="measure only the first N conv layers (a quick check; the projection then covers only them)")
    parser.add_argument("--skip-relevance", action="store_true")
    args = parser.parse_args()

    import torch

    from benchutil import where

    print(f"torch {torch.__version__}, {where(args.device)}")
    if not args.skip_relevance:
        print(f"{args.size}px, {args.num_images} faces x 2 signs per channel measured, batch {args.batch_size} (ours); "
              f"peak MB over the loaded models (CPU: exact where a layer raised the process peak, else sampled RSS)")
        print(f"{'layer':>20} {'ch':>4} | {'ours s/probe':>12} {'ref s/probe':>11} {'ratio':>6} | {'ours MB':>8} {'ref MB':>8} | {'GFLOP/probe':>11}")

        def log(r):
            print(f"{r['layer']:>20} {r['channels']:>4} | {r['ours']:>12.3f} {r['ref']:>11.3f} {r['ref'] / r['ours']:>6.2f} | "
                  f"{r['ours_mb']:>8.0f} {r['ref_mb']:>8.0f} | {r['gflop']:>11.1f}", flush=True)

        res = relevance(args.size, args.device, args.num_images, args.batch_size, args.batches, max_layers=args.max_layers, log=log)
        print(f"CLIP ViT-B/32: {res['clip_gflop']:.1f} GFLOP per image; style statistics (100k faces): about {res['stats_s']:.0f} s")
        scope = "" if res["complete"] else f" (only the {len(res['rows'])} measured layers)"
        for label, t in res["totals"].items():
            print(f"projected full job, {label}{scope}: ours {t['ours'] / 3600:.2f} h, reference {t['ref'] / 3600:.2f} h "
                  f"(ratio {t['ref'] / t['ours']:.2f}); {t['flops'] / 1e15:.2f} PFLOP -> GPU estimate "
                  f"{t['flops'] / args.gpu_tflops[0] / 1e12 / 60:.1f} min at {args.gpu_tflops[0]:.0f} TFLOPS (float32/TF32), "
                  f"{t['flops'] / args.gpu_tflops[1] / 1e12 / 60:.1f} min at {args.gpu_tflops[1]:.0f} TFLOPS (bfloat16)")
        if args.device.startswith("cuda"):
            g, _, clip = res["built"]
            for precision, (low, mid, n) in parity(g, clip, res["stats"]).items():
                print(f"parity {precision}: row cosine to fp32 min {low:.4f}, median {mid:.4f} ({n} channels, 16 faces)")
        del res
    print(f"\nglobal-direction edit at {args.edit_size}px ({args.device}); ratio = reference / ours")
    print(f"{'':>40} | {'ours s':>8} {'ref s':>8} {'ratio':>6} | {'ours MB':>8} {'ref MB':>8}")
    for label, ours, ref in edit_latency(args.edit_size, args.device, args.repeats):
        if ref is None:
            print(f"{label:>40} | {ours['time']:>8.3f} {'':>8} {'':>6} | {ours['peak_mb']:>8.0f}")
        else:
            print(f"{label:>40} | {ours['time']:>8.3f} {ref['time']:>8.3f} {ref['time'] / ours['time']:>6.2f} | {ours['peak_mb']:>8.0f} {ref['peak_mb']:>8.0f}")


def parity(g, clip, stats, precisions=("bf16", "fp16"), num_images=16):
    """Row cosines of mixed-precision relevance rows (the first layer's channels) to fp32 ones:
    {precision: (min, median, number of channels)}."""
    from styleclip_core.edits import channel_relevance as cr
    from styleclip_core.edits.relevance_cache import relevance_encoder

    prepare, encode = relevance_encoder(clip)
    job = cr.RelevanceJob(num_images=num_images, max_resolution=4)
    exact = cr.channel_relevance(g, encode, stats, job, 64, prepare_image=prepare)
    out = {}
    for precision in precisions:
        mixed = cr.channel_relevance(g, encode, stats, cr.RelevanceJob(**{**job.__dict__, "precision": precision}), 64, prepare_image=prepare)
        cos = (exact * mixed).sum(-1)
        out[precision] = (float(cos.min()), float(cos.median()), len(cos))
    return out


if __name__ == "__main__":
    main()
