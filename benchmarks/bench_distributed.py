"""The long jobs under torchrun: channel relevance and mapper training with 1 and 2 (or more)
ranks, their throughput and its ratio, and the figures an 8-GPU estimate is made from.

    python benchmarks/bench_distributed.py [--ranks 1 2] [--jobs relevance mapper] [--threads 1] [--project-size 1024]

Each measurement runs in its own ``torchrun --standalone --nproc_per_node N`` (gloo; N = 1 is the
single-process path: torchrun sets WORLD_SIZE 1 and nothing is distributed) with ``--threads``
torch threads per rank, so N ranks use N cores. Models are seeded random, built the same in
every rank (no files):

* generator: 64 px, style_dim 512, channels 256/256/128/64/32 (4 to 64 px);
* CLIP: an open_clip ViT (patch 32 at 224 px, width 256, 4 layers; the pack's ClipModel);
* relevance: ``relevance_for`` as the CLI runs it (statistics of 2000 samples, cache folder,
  lock, rank 0's merge and write), 2 faces per channel, the 768 channels up to 8 px, batches of
  16 probes. Timed from a barrier after the models are loaded to rank 0's return; each rank's
  time to the end of its own units is gathered (imbalance), and "merge" is from the last rank's
  end of work to rank 0's return (gathering the rows, writing the file, the final barrier);
* mapper: ``MapperTrainer.step`` with StyleCLIP's LevelsMapper (512 wide: 3.15 M parameters,
  12.6 MB of float32 gradients a step), Ranger, CLIP loss + 0.8 latent L2 (mean), a global batch
  of ``--global-batch`` (default 4) split across the ranks, 2 warm-up steps then ``--steps``
  timed; plus the time of one gloo all-reduce of a gradient-sized tensor here (what DDP adds to a
  step: the mapper is the first module of the forward pass, so its gradients are the last of the
  backward pass and their all-reduce cannot overlap it), and the same steps under DDP's
  ``no_sync`` (no gradient all-reduce; timing only).

The projection section counts, for the full relevance job of a ``--project-size`` config-f
generator (every conv layer, 100 faces, batches of 16: the reference's), the FLOPs of every unit
(FlopCounterMode on the meta device: the synthesis from the probed layer on plus one ViT-B/32
image encoding per probe; the faces' prefix renders per layer, which every rank does for itself),
deals the units to 8 ranks as ``channel_relevance`` does, and prints the share of the busiest
rank, the prefix overhead and the rows gathered at the end. Times on a GPU are not measured here
(no GPU); the README turns these counts into an estimate.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics as st
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

CHANNELS = {4: 256, 8: 256, 16: 128, 32: 64, 64: 32}


def build_models():
    import open_clip
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from styleclip_core.models.clip import ClipModel
    from styleclip_core.models.generator import Generator

    torch.manual_seed(0)
    g = Generator(64, 512, 2, CHANNELS).eval().requires_grad_(False)
    with torch.no_grad():
        g.w_avg.copy_(g.mean_latent(4096)[0])
    g.has_w_avg = True
    torch.manual_seed(1)
    net = CLIP(256, CLIPVisionCfg(layers=4, width=256, patch_size=32, image_size=224),
               CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1), quick_gelu=True).eval()
    return g, ClipModel(net, open_clip.tokenize, 224, name="bench ViT")


# ---- workers (one per rank, under torchrun) -------------------------------------------------------


def worker_relevance(args):
    from styleclip_core import distributed
    from styleclip_core.edits import channel_relevance as cr
    from styleclip_core.edits import relevance_cache as rc

    distributed.init("cpu")
    rank, size = distributed.world()
    g, clip = build_models()
    job = cr.RelevanceJob(num_images=args.num_images, max_resolution=args.max_resolution)
    ends = {}
    gather = cr._gather_rows

    def timed_gather(*a, **k):  # entered when this rank has finished its units
        ends["work"] = time.perf_counter()
        return gather(*a, **k)

    cr._gather_rows = timed_gather
    distributed.barrier()
    start = time.perf_counter()
    rel = rc.relevance_for(g, clip, [args.cache_dir], job, args.batch_size, statistics_samples=2000)
    end = time.perf_counter()
    ends.setdefault("work", end)
    work = distributed.all_gather_object(ends["work"] - start)
    if rank == 0:
        rows = rel.fs3.shape[0]
        print("RESULT " + json.dumps({"job": "relevance", "ranks": size, "seconds": end - start, "rows": rows, "throughput": rows / (end - start),
                                      "work": work, "merge": end - start - max(work), "rows_bytes": rel.fs3.numel() * 4,
                                      "probes": rel.info["rendered"]}), flush=True)
    distributed.finish()


def worker_mapper(args):
    import torch

    from styleclip_core import distributed
    from styleclip_core.edits import losses
    from styleclip_core.edits.mapper_training import MapperTrainer, TrainingOptions
    from styleclip_core.models.latents import sample_latents

    distributed.init("cpu")
    rank, size = distributed.world()
    g, clip = build_models()
    loss = losses.LossSet().add(losses.ClipLoss(clip, "a person with purple hair")).add(losses.LatentL2Loss(0.8, "mean"))
    trainer = MapperTrainer(g, sample_latents(g, 64, 0, 0.7), loss, TrainingOptions(batch_size=args.global_batch))
    params = sum(p.numel() for p in trainer.mapper.net.parameters())
    optimizer_times = []
    optimizer_step = trainer.optimizer.step

    def timed_optimizer_step(*a, **k):
        t = time.perf_counter()
        out = optimizer_step(*a, **k)
        optimizer_times.append(time.perf_counter() - t)
        return out

    trainer.optimizer.step = timed_optimizer_step
    times = steps(trainer, args.steps, distributed)
    smaller = {}
    if size == 1:  # the per-rank work of the multi-rank runs: one process at their slice's batch
        for ranks in args.ranks:
            if ranks > 1 and args.global_batch % ranks == 0:
                part = MapperTrainer(g, sample_latents(g, 64, 0, 0.7), loss, TrainingOptions(batch_size=args.global_batch // ranks))
                smaller[args.global_batch // ranks] = st.median(steps(part, args.steps, distributed))
    allreduce = unsynced = None
    if size > 1:
        # the same steps without DDP's gradient all-reduce (no_sync: the ranks' weights part, so
        # these steps only time; nothing is saved), then one all-reduce of a gradient alone
        with trainer.net.no_sync():
            unsynced = st.median(steps(trainer, args.steps, distributed))
        grad = torch.randn(params)
        reps = []
        for _ in range(5):
            distributed.barrier()
            t = time.perf_counter()
            distributed.all_reduce_sum(grad)
            reps.append(time.perf_counter() - t)
        allreduce = min(reps)
    if rank == 0:
        step = st.median(times)
        print("RESULT " + json.dumps({"job": "mapper", "ranks": size, "seconds": step, "throughput": args.global_batch / step, "params": params,
                                      "grad_bytes": params * 4, "allreduce": allreduce, "per_rank": args.global_batch / size,
                                      "optimizer": st.median(optimizer_times[:args.steps + 2][-args.steps:]), "smaller": smaller, "unsynced": unsynced}), flush=True)
    distributed.finish()


def steps(trainer, count, distributed):
    """Seconds of ``count`` steps after 2 warm-up steps."""
    for _ in range(2):
        trainer.step()
    distributed.barrier()
    times = []
    for _ in range(count):
        t = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - t)
    return times


# ---- projection of the full relevance job ----------------------------------------------------------


def project_relevance(size: int, ranks: int, num_images: int = 100, batch_size: int = 16):
    """FLOP-weighted shares of the full job over ``ranks`` (channel_relevance's dealing)."""
    import open_clip
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from styleclip_core import distributed
    from styleclip_core.edits.channel_relevance import RelevanceJob, relevance_units
    from styleclip_core.models.generator import Generator

    job = RelevanceJob(num_images=num_images, max_resolution=None)
    with torch.device("meta"):
        g = Generator(size)
    clip = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval()  # random weights on the CPU; only its FLOPs count

    def flops(fn):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            fn()
        return counter.get_total_flops()

    styles = [torch.zeros(1, s.channels, device="meta") for s in g.style_layers]
    clip_flops = flops(lambda: clip.encode_image(torch.zeros(1, 3, 224, 224)))
    full = flops(lambda: g.synthesis(styles))
    probe, prefix = {}, {}
    for layer in job.layers(g):
        state = g.synthesis_state(styles, layer)
        probe[layer] = flops(lambda: g.synthesis(styles, start=state)) + clip_flops
        prefix[layer] = max(0.0, full - probe[layer] + clip_flops)  # rendering a face up to the layer
    units = relevance_units(g, job, batch_size)
    cost = {u: 2 * num_images * (u.stop - u.start) * probe[u.layer] for u in units}
    total = sum(cost.values())
    shares = [sum(cost[u] for u in distributed.shard(units, r, ranks)) for r in range(ranks)]
    prefixes = num_images * sum(prefix.values())  # each rank renders every layer's prefix for its faces
    rows = sum(u.stop - u.start for u in units)
    return {"size": size, "ranks": ranks, "units": len(units), "rows": rows, "pflop": total / 1e15, "busiest": max(shares) / (total / ranks),
            "prefix_share": prefixes / (total / ranks), "rows_mb": rows * 512 * 4 / 1e6}


# ---- driver --------------------------------------------------------------------------------------------


def run(job: str, ranks: int, args) -> dict:
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), PYTHONPATH=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [torchrun, "--standalone", "--nnodes", "1", "--nproc_per_node", str(ranks), os.path.abspath(__file__), "--worker", job,
               "--cache-dir", tmp, "--steps", str(args.steps), "--global-batch", str(args.global_batch),
               "--num-images", str(args.num_images), "--max-resolution", str(args.max_resolution), "--batch-size", str(args.batch_size),
               "--ranks", *map(str, args.ranks)]
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    lines = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{job} with {ranks} ranks failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--jobs", nargs="+", choices=["relevance", "mapper"], default=["relevance", "mapper"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--steps", type=int, default=10, help="mapper steps timed (after 2 warm-up steps)")
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--num-images", type=int, default=2)
    parser.add_argument("--max-resolution", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16, help="relevance probes per batch")
    parser.add_argument("--project-size", type=int, default=1024, help="generator size of the projected full relevance job")
    parser.add_argument("--project-ranks", type=int, default=8)
    parser.add_argument("--worker", choices=["relevance", "mapper"], help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "relevance":
        return worker_relevance(args)
    if args.worker == "mapper":
        return worker_mapper(args)

    print(f"CPU: {os.cpu_count()} cores, {args.threads} torch thread(s) per rank, load average {os.getloadavg()[0]:.2f} at the start\n")
    print("| job | ranks | time | throughput | vs 1 rank | efficiency | notes |")
    print("|---|---|---|---|---|---|---|")
    for job in args.jobs:
        base = None
        for ranks in args.ranks:
            r = run(job, ranks, args)
            base = base or (r["throughput"] if ranks == 1 else None)
            ratio = r["throughput"] / base if base else float("nan")
            if job == "relevance":
                notes = f"{r['rows']} rows, {r['probes']} probes"
                if ranks > 1:
                    notes += f"; ranks' work {min(r['work']):.1f}-{max(r['work']):.1f} s, merge + write {r['merge'] * 1e3:.0f} ms ({r['rows_bytes'] / 1e6:.2f} MB of rows)"
                print(f"| relevance | {ranks} | {r['seconds']:.1f} s | {r['throughput']:.1f} rows/s | {ratio:.2f} | {ratio / ranks:.0%} | {notes} |", flush=True)
            else:
                notes = f"global batch {args.global_batch} ({r['per_rank']:g} a rank), {r['params'] / 1e6:.2f} M parameters; optimiser step {r['optimizer'] * 1e3:.0f} ms"
                notes += "".join(f"; one rank at batch {b}: {t * 1e3:.0f} ms a step" for b, t in r["smaller"].items())
                if r["allreduce"] is not None:
                    notes += (f"; without DDP's gradient all-reduce {r['unsynced'] * 1e3:.0f} ms; gloo all-reduce of {r['grad_bytes'] / 1e6:.1f} MB alone: "
                              f"{r['allreduce'] * 1e3:.1f} ms ({r['allreduce'] / r['seconds']:.1%} of a step)")
                print(f"| mapper training | {ranks} | {r['seconds'] * 1e3:.0f} ms a step | {r['throughput']:.2f} faces/s | {ratio:.2f} | {ratio / ranks:.0%} | {notes} |", flush=True)
    p = project_relevance(args.project_size, args.project_ranks)
    print(f"\nFull relevance job of a {p['size']} px config-f generator (every conv layer, 100 faces, batches of 16): {p['rows']} rows in "
          f"{p['units']} units, {p['pflop']:.0f} PFLOP (synthesis from the probed layer + ViT-B/32 per probe). Dealt to {p['ranks']} ranks: "
          f"the busiest rank has {p['busiest']:.4f} x the mean share; each rank's own prefix renders add {p['prefix_share']:.2%} of a share; "
          f"rank 0 gathers {p['rows_mb']:.1f} MB of rows at the end.")


if __name__ == "__main__":
    sys.exit(main())
