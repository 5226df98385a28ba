"""Every benchmark on one CUDA device in a few minutes, written as markdown tables.

    python benchmarks/gpu_all.py [--out benchmarks-gpu.md] [--repeats 3] [--peak-tflops TFLOPS ...]
                                 [--compile forward|all|none] [--only SECTION ...]
    python benchmarks/gpu_all.py --device cpu --quick --peak-tflops 1    # smoke test of the logic on a CPU

One process, in order (each section its own table; a section that fails or runs out of memory
becomes an error row and the run goes on):

* generator: forward and forward+backward at 256 and 1024 px, batch 1, 4 and 16 -- reference
  path, ours in float32, ours in bfloat16 (``Generator.set_precision``), with bf16/fp16 parity
  against float32 (image difference, W+ gradient cosine) -- and the achieved fraction of the
  GPU's peak throughput at 1024 px: forward (and backward) FLOPs counted with
  ``torch.utils.flop_counter.FlopCounterMode`` on a meta-device generator, divided by the measured
  time, against the peak of the device (table below, or ``--peak-tflops``): float32 rows against
  the TF32 tensor-core peak when cuDNN may use TF32 (PyTorch's default), bfloat16 rows against
  the bfloat16 peak;
* stylegan3 (bench_stylegan3.py): NVIDIA's stock StyleGAN3-T and -R at 1024 px, batch 1 and 4,
  forward and forward+backward (gradients to W+ and the weights): our ops backend 'auto' (the CUDA
  plugin) against 'reference' (PyTorch) and against NVIDIA's reference op path re-enacted in the
  same generator, with the images' (and W+ gradients') largest differences;
* optimisation (bench_optimize.py): one step at each size and a whole 100-step edit at 1024 px,
  reference / ours float32 / ours bfloat16 autocast (with the last CLIP loss against float32);
* mapper edit at 1024 px (bench_mapper.py) and global-direction edit at 1024 px (bench_global.py);
* channel relevance at 1024 px (bench_global.py): per-layer probe cost, projected to the full job
  (every conv channel x 100 faces x 2 signs), float32 against SingleChannel.py's procedure and
  bfloat16, with the bfloat16 rows' cosine to float32 ones;
* e4e inversion at 1024 px, batch 1 and 4 (bench_e4e.py);
* Edit Sliders (bench_sliders.py): new slider values to the route's JPEG at 1024 px, previews 256 and 512;
* PTI (bench_pti.py): a projector step and a tuning step at each size, reference against ours, and
  the wall time of a whole 350-step tuning at 1024 px (PTI reports about a minute per image);
* video (bench_video.py): each stage of STIT's video pipeline per frame at each size on a
  synthesized 1920 x 1080 clip of 4 frames -- alignment, e4e inversion, one clip-tuning update,
  stitching masks, one stitching step and its per-frame setup, paste-back -- reference procedure
  against ours, and the projected time per frame of the default pipeline (300 tuning updates and
  100 stitching steps per frame);
* StyleGAN-NADA (bench_nada.py): one training step at each size with the README's settings
  (k 18: every layer trains, ours skips the selection pass) and with k = 1 (the selection pass
  decides), reference loop against ours (its CLIP in float16, as ``clip.load`` leaves it on a GPU),
  and the wall time of a whole 300-step adaptation at 1024 px with the README's settings (the
  reference reports a few minutes of training on a GPU);
* torch.compile (``Generator.compile_synthesis``) of the 1024 px forward (``--compile all``: also
  batch 4 and forward+backward): compile time, speed against eager, difference from eager;
* the issue's goals as PASS / FAIL: a 100-step optimisation edit at 1024 px under 3 s, a mapper or
  global-direction edit at 1024 px under 30 ms, channel relevance of a 1024 px generator under
  15 min (projected).

Models are full size on seeded random weights (as in the single benchmarks). Ratios are reference
time / our time (> 1: ours is faster); peak memory is the peak of allocated CUDA memory over the
loaded models (``benchutil.PeakMemory``; on a CPU, sampled RSS in this one process). The tables
go to stdout and, after every section, to ``--out``. ``--quick`` shrinks every setting (64 px
generators, batches 1 and 2, a 3-step edit, two relevance layers, a 2-frame clip with a 10 px
outer mask dilation, tiny NADA models and a 3-step adaptation) to check the script, not to
measure: its goal verdicts are marked as such.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

# Dense peak throughput in TFLOPS (NVIDIA data sheets, without sparsity): float32 (CUDA cores),
# TF32 and bfloat16 (tensor cores, float32 accumulation). Matched as substrings of
# torch.cuda.get_device_name(), first match wins (so the specific names come first).
PEAKS = (
    ("H100 PCIe", 51.0, 378.0, 756.0),
    ("H100 NVL", 60.0, 417.5, 835.5),
    ("H200 NVL", 60.0, 417.5, 835.5),
    ("H100", 67.0, 494.7, 989.4),  # SXM5
    ("H200", 67.0, 494.7, 989.4),  # SXM; GH200 too
    ("A100", 19.5, 156.0, 312.0),
    ("L40S", 91.6, 183.0, 362.1),
    ("RTX 4090", 82.6, 82.6, 165.2),
)

GOAL_EDIT_100_S = 3.0
GOAL_FAST_EDIT_S = 0.030
GOAL_RELEVANCE_MIN = 15.0
SECTIONS = ("generator", "stylegan3", "optimize", "mapper", "global", "relevance", "e4e", "pti", "video", "nada", "sliders", "compile")
GOAL_SLIDER_MS = 100.0


def peak_tflops(device_name: str, override=None) -> dict | None:
    """{'fp32', 'tf32', 'bf16', 'source'} for the device, or None when unknown and not given."""
    if override:
        fp32, tf32, bf16 = (override * 3)[:3] if len(override) == 1 else tuple(override)
        return {"fp32": fp32, "tf32": tf32, "bf16": bf16, "source": "--peak-tflops"}
    for name, fp32, tf32, bf16 in PEAKS:
        if name.lower() in device_name.lower():
            return {"fp32": fp32, "tf32": tf32, "bf16": bf16, "source": f"data sheet ({name}, dense)"}
    return None


def peak_kind(precision: str, device: str) -> str:
    """Which peak a run in ``precision`` is measured against."""
    import torch

    if precision == "bf16":
        return "bf16"
    if str(device).startswith("cuda") and torch.backends.cudnn.allow_tf32:
        return "tf32"  # cuDNN convolutions run on TF32 tensor cores (PyTorch's default)
    return "fp32"


def generator_flops(size: int, backward: bool = False) -> float:
    """FLOPs of one image through our ``size`` px generator (W+ in), counted on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from styleclip_core.models.generator import Generator

    with torch.device("meta"):
        g = Generator(size).requires_grad_(False)
    w = torch.zeros(1, g.n_latent, g.style_dim, device="meta")
    counter = FlopCounterMode(display=False)
    if backward:
        x = w.clone().requires_grad_()
        with counter:
            g(x).square().mean().backward()
    else:
        with counter, torch.no_grad():
            g(w)
    return float(counter.get_total_flops())


# ---- formatting -----------------------------------------------------------------------------------


def fmt_time(s) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "—"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_mb(mb) -> str:
    return "—" if mb is None or (isinstance(mb, float) and math.isnan(mb)) else f"{mb:.0f}"


def fmt_ratio(num, den) -> str:
    if num is None or den is None or not den or math.isnan(num) or math.isnan(den):
        return "—"
    return f"{num / den:.2f}"


def t(r) -> float:
    """The time of a result dict, NaN for a failed one."""
    return float("nan") if r is None or "error" in r else r["time"]


def mb(r) -> float:
    return float("nan") if r is None or "error" in r else r.get("peak_mb", float("nan"))


def err(r) -> str:
    return r["error"] if r is not None and "error" in r else ""


@dataclass
class Report:
    header: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def table(self, title: str, columns: list[str], rows: list[list], notes: list[str] = ()) -> str:
        lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines += [""] + [f"{n}" for n in notes if n] + ([""] if notes else [])
        text = "\n".join(lines)
        self.parts.append(text)
        print(text + "\n", flush=True)
        return text

    def markdown(self) -> str:
        return "\n".join(self.header) + "\n\n" + "\n\n".join(self.parts) + "\n"


def guarded(fn, *args, **kwargs) -> dict:
    """``fn(...)``, or {'error': ...} when it fails (out of memory included): one row, not the run."""
    import torch

    try:
        return fn(*args, **kwargs)
    except torch.OutOfMemoryError:
        return {"error": "out of memory"}
    except Exception as e:  # a benchmark row that fails is reported, the others still run
        return {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ---- settings -------------------------------------------------------------------------------------


@dataclass
class Settings:
    sizes: list[int]
    batches: list[int]
    big: int  # the size of the goals and of the 1024 px sections
    repeats: int
    step_repeats: int
    edit_steps: int
    rel_images: int
    rel_batch: int
    rel_batches: int
    rel_layers: int | None
    e4e_batches: list[int]
    compile: str
    quick: bool

    @classmethod
    def make(cls, args):
        if args.quick:
            s = cls([64], [1, 2], 64, 1, 1, 3, 1, 2, 2, 2, [1], "none", True)
        else:
            s = cls([256, 1024], [1, 4, 16], 1024, args.repeats, 5, 100, 4, 32, 2, None, [1, 4], "forward", False)
        if args.sizes:
            s.sizes, s.big = args.sizes, max(args.sizes)
        if args.batches:
            s.batches = args.batches
        if args.compile:
            s.compile = args.compile
        if args.edit_steps:
            s.edit_steps = args.edit_steps
        return s


# ---- sections -------------------------------------------------------------------------------------


def section_generator(s: Settings, device, report: Report, peaks, results):
    import torch

    from bench_generator import build, codes, run, step_fn

    rows, frac_rows, parity_rows = [], [], []
    kinds = {"fp32": peak_kind("fp32", device), "bf16": "bf16"}
    flops = {}
    for size in s.sizes:
        ours_g, ref_g = build(size, device), build(size, device, reference=True)
        for batch in s.batches:
            for mode in ("forward", "fwd+bwd"):
                ref = guarded(run, ref_g, batch, mode, s.repeats, device)
                ours = guarded(run, ours_g, batch, mode, s.repeats, device)
                ours_g.set_precision("bf16")
                half = guarded(run, ours_g, batch, mode, s.repeats, device)
                ours_g.set_precision("fp32")
                results[("generator", size, batch, mode)] = ours
                agree = "" if "error" in ours or "error" in ref or abs(ours["checksum"] - ref["checksum"]) <= 1e-3 * abs(ref["checksum"]) else "OUTPUTS DIFFER"
                note = "; ".join(x for x in (err(ref) and f"reference: {err(ref)}", err(ours) and f"ours: {err(ours)}", err(half) and f"bf16: {err(half)}", agree) if x)
                rows.append([size, batch, mode, fmt_time(t(ref)), fmt_time(t(ours)), fmt_ratio(t(ref), t(ours)), fmt_time(t(half)),
                             fmt_ratio(t(ours), t(half)), fmt_mb(mb(ref)), fmt_mb(mb(ours)), fmt_mb(mb(half)), note])
                if size == s.big:
                    key = (size, mode == "fwd+bwd")
                    if key not in flops:
                        flops[key] = generator_flops(size, backward=mode == "fwd+bwd")
                    for impl, precision, r in (("reference", "fp32", ref), ("ours", "fp32", ours), ("ours", "bf16", half)):
                        if impl == "reference" and mode != "forward":
                            continue  # its backward also forms per-sample weight gradients: other work than counted
                        frac_rows.append(fraction_row(size, batch, mode, impl, precision, flops[key], r, peaks, kinds[precision]))
        # parity of the mixed-precision paths against float32, batch 1
        w = codes(ours_g, 1)
        exact_img, exact_grad = step_fn(ours_g, w, "forward")().float(), step_fn(ours_g, w, "fwd+bwd")().float()
        for precision in ("bf16", "fp16"):
            ours_g.set_precision(precision)
            try:
                img, grad = step_fn(ours_g, w, "forward")().float(), step_fn(ours_g, w, "fwd+bwd")().float()
                diff = float((img - exact_img).abs().max() / exact_img.abs().max())
                cos = float(torch.nn.functional.cosine_similarity(grad.flatten(), exact_grad.flatten(), dim=0))
                parity_rows.append([size, precision, f"{diff:.2e}", f"{cos:.5f}", "finite" if img.isfinite().all() and grad.isfinite().all() else "NON-FINITE"])
            except Exception as e:  # fp16 autocast is not on every CPU build
                parity_rows.append([size, precision, "—", "—", f"{type(e).__name__}: {str(e)[:80]}"])
            finally:
                ours_g.set_precision("fp32")
        del ours_g, ref_g
        gc.collect()
    report.table(
        "Generator (W+ in, image out)",
        ["size", "batch", "pass", "reference", "ours fp32", "ratio", "ours bf16", "bf16 speed-up", "ref MB", "ours MB", "bf16 MB", "notes"],
        rows,
        ["Best of the repeats after a warm-up. ratio = reference / ours fp32; bf16 speed-up = ours fp32 / ours bf16. fwd+bwd: back to W+, weights frozen."],
    )
    report.table("Mixed precision against float32 (ours, batch 1)", ["size", "precision", "image max diff / max", "W+ gradient cosine", "check"], parity_rows)
    peak_note = (f"Peak TFLOPS from {peaks['source']}: fp32 {peaks['fp32']}, TF32 {peaks['tf32']}, bf16 {peaks['bf16']}." if peaks
                 else "Peak unknown for this device: pass --peak-tflops.")
    report.table(
        f"Achieved fraction of peak, generator at {s.big} px",
        ["pass", "batch", "impl", "precision", "GFLOP / image", "achieved TFLOPS", "peak TFLOPS", "fraction of peak"],
        frac_rows,
        [f"FLOPs counted with FlopCounterMode on a meta-device generator (our path; convolutions and matrix products). "
         f"fp32 rows are compared with the {kinds['fp32'].upper()} peak"
         f"{' (cuDNN runs float32 convolutions on TF32 tensor cores)' if kinds['fp32'] == 'tf32' else ''}. {peak_note}"],
    )


def fraction_row(size, batch, mode, impl, precision, flops, r, peaks, kind):
    achieved = flops * batch / t(r) / 1e12 if not math.isnan(t(r)) else float("nan")
    peak = peaks[kind] if peaks else None
    frac = f"{achieved / peak:.1%}" if peak and not math.isnan(achieved) else "—"
    return [mode, batch, impl, precision, f"{flops / 1e9:.1f}", "—" if math.isnan(achieved) else f"{achieved:.2f}",
            f"{peak:g} ({kind.upper()})" if peak else "—", frac]


def section_stylegan3(s: Settings, device, report: Report, peaks, results):
    from bench_stylegan3 import build, compare, ops_backend, run
    from styleclip_core.ops.backend import describe

    rows = []
    batches = [1] if s.quick else [1, 4]
    for name in ("T", "R"):
        ours_g, nv_g = build(s.big, name, device, tiny=s.quick), build(s.big, name, device, reference=True, tiny=s.quick)
        for batch in batches:
            for mode in ("forward", "fwd+bwd"):
                got = {}
                for label, g, ops in (("nvidia", nv_g, "auto"), ("reference", ours_g, "reference"), ("auto", ours_g, "auto")):
                    with ops_backend(ops):
                        got[label] = guarded(run, g, batch, mode, s.repeats, device)
                firsts = {k: r.pop("first") for k, r in got.items() if "error" not in r}
                diffs = []
                for other in ("reference", "nvidia"):
                    if "auto" in firsts and other in firsts:
                        c = compare(firsts["auto"], firsts[other])
                        grad = f", W+ grad {c['w_grad_rel_diff']:.1e} of max" if "w_grad_rel_diff" in c else ""
                        diffs.append(f"vs {other}: image {c['image_max_diff']:.1e}{grad}")
                del firsts
                nv, ref, auto = got["nvidia"], got["reference"], got["auto"]
                rows.append([name, batch, mode, fmt_time(t(nv)), fmt_time(t(ref)), fmt_time(t(auto)), fmt_ratio(t(ref), t(auto)), fmt_ratio(t(nv), t(auto)),
                             fmt_mb(mb(nv)), fmt_mb(mb(ref)), fmt_mb(mb(auto)),
                             "; ".join(diffs + [f"{k}: {err(r)}" for k, r in got.items() if err(r)])])
        del ours_g, nv_g
        gc.collect()
    report.table(
        f"StyleGAN3 generator, {s.big} px (W+ in, image out; NVIDIA's stock T and R, random weights{', tiny networks' if s.quick else ''})",
        ["config", "batch", "pass", "NVIDIA ref path", "ours 'reference'", "ours 'auto'", "ratio ref/auto", "ratio NVIDIA/auto",
         "NVIDIA MB", "ref MB", "auto MB", "checks (largest abs difference)"],
        rows,
        [f"Our ops backend 'auto' ({describe('auto', device)}) against 'reference' (PyTorch), set through STYLECLIP_OPS; NVIDIA ref path: "
         "NVIDIA's _filtered_lrelu_ref re-enacted in the same generator (bench_stylegan3.py; NVIDIA's fused CUDA kernel is not run). "
         "fwd+bwd: gradients to W+ and to every weight. Best of the repeats after a warm-up."],
    )


def section_optimize(s: Settings, device, report: Report, peaks, results):
    from bench_optimize import measure, measure_edit

    rows = []
    for size in s.sizes:
        ref = guarded(measure, "reference", size, s.step_repeats, device)
        ours = guarded(measure, "ours", size, s.step_repeats, device)
        half = guarded(measure, "ours", size, s.step_repeats, device, amp="bfloat16")
        check = ""
        if "error" not in ours and "error" not in ref:
            check = "first CLIP loss equal" if abs(ours["first_clip_loss"] - ref["first_clip_loss"]) < 1e-4 else "LOSSES DIFFER"
        rows.append([f"one step, {size} px", fmt_time(t(ref)), fmt_time(t(ours)), fmt_ratio(t(ref), t(ours)), fmt_time(t(half)),
                     fmt_ratio(t(ref), t(half)), fmt_mb(mb(ref)), fmt_mb(mb(ours)), fmt_mb(mb(half)), "; ".join(x for x in (check, err(ref), err(ours), err(half)) if x)])
    ref = guarded(measure_edit, "reference", s.big, s.edit_steps, device)
    ours = guarded(measure_edit, "ours", s.big, s.edit_steps, device)
    half = guarded(measure_edit, "ours", s.big, s.edit_steps, device, amp="bfloat16")
    results["edit"] = {"fp32": ours, "bf16": half}
    check = ""
    if "error" not in ours and "error" not in half:
        check = f"last CLIP loss fp32 {ours['last_clip_loss']:.5f}, bf16 {half['last_clip_loss'] - ours['last_clip_loss']:+.5f}"
    if "error" not in ours and "error" not in ref:
        check += ("; " if check else "") + ("reference loss equal" if abs(ours["last_clip_loss"] - ref["last_clip_loss"]) < 1e-3 else "REFERENCE LOSS DIFFERS")
    rows.append([f"whole {s.edit_steps}-step edit, {s.big} px", fmt_time(t(ref)), fmt_time(t(ours)), fmt_ratio(t(ref), t(ours)), fmt_time(t(half)),
                 fmt_ratio(t(ref), t(half)), fmt_mb(mb(ref)), fmt_mb(mb(ours)), fmt_mb(mb(half)), "; ".join(x for x in (check, err(ref), err(ours), err(half)) if x)])
    report.table(
        "Latent optimisation (batch 1, W+, CLIP + 0.008 x L2, Adam)",
        ["what", "reference", "ours fp32", "ratio", "ours bf16", "ratio", "ref MB", "ours MB", "bf16 MB", "checks"],
        rows,
        ["One step: best of the timed steps after a warm-up step. Whole edit: one edit after a 2-step warm-up edit; ours as the "
         "Optimize Latents node runs it, the reference as run_optimization.py's main. ratio = reference / ours."],
    )


def section_mapper(s: Settings, device, report: Report, peaks, results):
    from bench_mapper import measure_edit

    r = {impl: guarded(measure_edit, impl, s.big, 1, s.repeats, device) for impl in ("reference", "ours", "synthesis")}
    results["mapper"] = r["ours"]
    report.table(
        f"Mapper edit, {s.big} px, batch 1 (LevelsMapper + synthesis, no gradients)",
        ["", "reference", "ours", "ratio", "ref MB", "ours MB", "notes"],
        [["mapper edit", fmt_time(t(r["reference"])), fmt_time(t(r["ours"])), fmt_ratio(t(r["reference"]), t(r["ours"])), fmt_mb(mb(r["reference"])),
          fmt_mb(mb(r["ours"])), "; ".join(x for x in (err(r["reference"]), err(r["ours"])) if x)],
         ["plain synthesis (ours)", "", fmt_time(t(r["synthesis"])), "", "", fmt_mb(mb(r["synthesis"])), err(r["synthesis"])]],
    )


def section_global(s: Settings, device, report: Report, peaks, results):
    from bench_global import edit_latency

    rows = []
    for label, ours, ref in edit_latency(s.big, device, s.repeats):
        rows.append([label, fmt_time(t(ref)) if ref else "", fmt_time(t(ours)), fmt_ratio(t(ref), t(ours)) if ref else "", fmt_mb(mb(ref)) if ref else "", fmt_mb(mb(ours))])
        if label == "edit + render, 1 image":
            results["global"] = ours
    report.table(
        f"Global-direction edit, {s.big} px",
        ["", "reference", "ours", "ratio", "ref MB", "ours MB"],
        rows,
        ["Edit + render: s + alpha delta and the images on the host; ours one batch, the reference global_torch's MSCode + GenerateImg."],
    )


def section_relevance(s: Settings, device, report: Report, peaks, results):
    from bench_global import parity, relevance

    rows = []
    quiet = lambda r: None  # noqa: E731
    full = relevance(s.big, device, s.rel_images, s.rel_batch, s.rel_batches, "float32", s.rel_layers, log=quiet)
    built = full.pop("built")
    half = guarded(relevance, s.big, device, s.rel_images, s.rel_batch, s.rel_batches, "bfloat16", s.rel_layers, with_reference=False, built=built, log=quiet)
    measured = f"{len(full['rows'])} of the conv layers" if not full["complete"] else "all conv layers"
    best = {}
    for precision, res in (("float32", full), ("bfloat16", half)):
        if "error" in res:
            rows.append([precision, "", "—", "—", "—", "", "", res["error"]])
            continue
        for label, tot in res["totals"].items():
            ours_min, ref_min = tot["ours"] / 60, tot["ref"] / 60
            rows.append([precision, label, f"{ours_min:.1f} min", "—" if math.isnan(ref_min) else f"{ref_min:.1f} min", fmt_ratio(ref_min, ours_min),
                         fmt_mb(max(r["ours_mb"] for r in res["rows"])), fmt_mb(max((r["ref_mb"] for r in res["rows"]), default=float("nan"))), f"{tot['flops'] / 1e15:.2f} PFLOP"])
            if label == "all conv layers":
                best[precision] = ours_min
    results["relevance"] = (best, full["complete"])
    notes = [f"Measured: {measured}, {s.rel_images} faces x 2 signs per channel, batch {s.rel_batch} (ours); projected to every channel x 100 faces x 2 signs."]
    if str(device).startswith("cuda"):
        p = guarded(parity, built[0], built[2], full["stats"], ("bfloat16",), 2)
        if "error" in p:
            notes.append(f"bfloat16 parity failed: {p['error']}")
        else:
            low, mid, n = p["bfloat16"]
            notes.append(f"bfloat16 rows against float32 (first layer, {n} channels, 2 faces): cosine min {low:.4f}, median {mid:.4f}.")
    report.table(f"Channel relevance (fs3), {s.big} px generator, projected full job",
                 ["precision", "layers", "ours", "reference", "ratio", "ours max MB", "ref max MB", "work"], rows, notes)


def section_e4e(s: Settings, device, report: Report, peaks, results):
    from bench_e4e import build_encoder, measure_built
    from bench_generator import build

    ours_g, ref_g = build(s.big, device), build(s.big, device, reference=True)
    encoder = build_encoder(ours_g).to(device)
    rows = []
    for batch in s.e4e_batches:
        for part in ("encode", "invert+render"):
            ref = guarded(measure_built, "reference", part, ref_g, encoder, batch, s.repeats, device)
            ours = guarded(measure_built, "ours", part, ours_g, encoder, batch, s.repeats, device)
            agree = "" if "error" in ours or "error" in ref or abs(ours["checksum"] - ref["checksum"]) <= 1e-4 * abs(ref["checksum"]) else "OUTPUTS DIFFER"
            rows.append([batch, part, fmt_time(t(ref)), fmt_time(t(ours)), fmt_ratio(t(ref), t(ours)), fmt_mb(mb(ref)), fmt_mb(mb(ours)),
                         "; ".join(x for x in (err(ref), err(ours), agree) if x)])
    report.table(f"e4e inversion (IR-SE50 encoder at 256 px, {s.big} px generator)",
                 ["batch", "part", "reference", "ours", "ratio", "ref MB", "ours MB", "notes"], rows)


def section_pti(s: Settings, device, report: Report, peaks, results):
    from bench_pti import measure, measure_whole

    rows = []
    for size in s.sizes:
        for part in ("projector", "tuning"):
            ref = guarded(measure, part, "reference", size, s.step_repeats, device)
            ours = guarded(measure, part, "ours", size, s.step_repeats, device)
            agree = "" if "error" in ours or "error" in ref or abs(ours["first"] - ref["first"]) <= 1e-4 * abs(ref["first"]) + 1e-6 else "LOSSES DIFFER"
            rows.append([size, part, fmt_time(t(ref)), fmt_time(t(ours)), fmt_ratio(t(ref), t(ours)), fmt_mb(mb(ref)), fmt_mb(mb(ours)),
                         "; ".join(x for x in (err(ref), err(ours), agree) if x)])
    steps = 3 if s.quick else 350
    whole = guarded(measure_whole, "ours", s.big, steps, device)
    results["pti_whole"] = whole
    rows.append([s.big, f"whole {steps}-step tuning", "", fmt_time(t(whole)), "", "", fmt_mb(mb(whole)), err(whole)])
    report.table("PTI: one projector step and one tuning step (batch 1), and a whole tuning (bench_pti.py)",
                 ["size", "part", "reference", "ours", "ratio", "ref MB", "ours MB", "notes"], rows,
                 notes=["PTI reports about a minute per image for its 350-step tuning at 1024 px on a GPU."])


def section_video(s: Settings, device, report: Report, peaks, results):
    from bench_video import (DEFAULT_OUTER, PROJECTION_COLUMNS, REFERENCE_STAGES, STAGE_COLUMNS, STAGES, measure,
                             projection_rows, stage_rows)

    frames, outer = (2, 10) if s.quick else (4, DEFAULT_OUTER)
    got = {}
    for size in s.sizes:
        for stage in STAGES:
            for impl in (("reference", "ours") if stage in REFERENCE_STAGES else ("ours",)):
                got[(stage, impl, size)] = guarded(measure, stage, impl, size, frames, s.step_repeats, device, outer)
    results["video"] = got
    report.table(f"Video (STIT): each stage per frame, a {frames}-frame 1920x1080 clip (bench_video.py)", STAGE_COLUMNS, stage_rows(got, s.sizes),
                 notes=[f"Best of {s.step_repeats} after a warm-up; outer mask dilation {outer} px. Tuning: one update of the clip's generator "
                        "per frame (STIT's settings); stitching: one step, and its per-frame setup + 100 steps projected. Paste-back runs on the "
                        "CPU on both sides (the library pastes on the host)."])
    report.table("Video: projected time per frame of the default pipeline", PROJECTION_COLUMNS, projection_rows(got, s.sizes),
                 notes=["alignment + e4e + 300 tuning updates + masks + stitching setup + 100 stitching steps + paste-back."])


def section_nada(s: Settings, device, report: Report, peaks, results):
    from bench_nada import COLUMNS, SETTINGS, WHOLE_STEPS, measure, measure_whole, rows

    got = {}
    for size in s.sizes:
        for setting in SETTINGS:
            for impl in ("reference", "ours"):
                got[(impl, setting, size)] = guarded(measure, impl, setting, size, s.step_repeats, device, tiny=s.quick)
    results["nada"] = got
    steps = 3 if s.quick else WHOLE_STEPS
    whole = guarded(measure_whole, s.big, steps, device, tiny=s.quick)
    results["nada_whole"] = whole
    report.table("StyleGAN-NADA: one training step, batch 2, selection batch 8 (bench_nada.py)", COLUMNS,
                 rows(got, s.sizes, rel=1e-2 if str(device).startswith("cuda") else 1e-4),
                 notes=[f"Best of {s.step_repeats} steps after a warm-up step; one ViT-B/32, photo -> sketch. README: k 18 (every layer trains; "
                        "ours skips the selection pass); k = 1: the selection pass decides. Check: step 0 draws the same numbers on both sides."])
    ref_step = t(got.get(("reference", "readme", s.big)))
    projected = steps * ref_step
    report.table(f"StyleGAN-NADA: a whole {steps}-step adaptation at {s.big} px, README settings",
                 ["size", "steps", "reference (projected)", "ours", "ratio", "ours MB", "notes"],
                 [[s.big, steps, fmt_time(projected), fmt_time(t(whole)), fmt_ratio(projected, t(whole)), fmt_mb(mb(whole)),
                   err(whole) or f"last loss {whole['last_loss']:.5f}"]],
                 notes=["Ours: the wall time of the steps after a warm-up step, no previews or checkpoints; reference: steps x its step "
                        "time. The reference reports a few minutes of training on a GPU (README: 301 iterations, two CLIPs)."])


def section_sliders(s: Settings, device, report: Report, peaks, results):
    from bench_sliders import measure

    rows = []
    for preview in (256, 512):
        r = guarded(measure, s.big, preview, max(3, s.repeats), device)
        if preview == 512:
            results["slider"] = r
        best = r.get("best", float("nan"))
        rows.append([s.big, preview, fmt_time(best), fmt_time(r.get("median", float("nan"))), fmt_mb(r.get("peak_mb", float("nan"))), err(r)])
    report.table(f"Edit Sliders: new slider values to the route's JPEG, {s.big} px generator (bench_sliders.py)",
                 ["generator", "preview", "best", "median", "MB", "notes"], rows,
                 notes=["Three directions (W, SeFa, StyleSpace; edited in StyleSpace), one face; the browser's part is not included."])


def section_compile(s: Settings, device, report: Report, peaks, results):
    from bench_generator import build, run_compiled

    configs = [(1, "forward")] + ([(4, "forward"), (1, "fwd+bwd")] if s.compile == "all" else [])
    rows = []
    g = build(s.big, device)
    for batch, mode in configs:
        eager = results.get(("generator", s.big, batch, mode))
        r = guarded(run_compiled, g, batch, mode, s.repeats, device, time_eager=eager is None or "error" in eager)
        if "error" not in r and r["eager_time"] is not None:
            eager = {"time": r["eager_time"]}
        if "error" in r:
            rows.append([s.big, batch, mode, fmt_time(t(eager)), "—", "—", "—", "—", r["error"]])
            continue
        rows.append([s.big, batch, mode, fmt_time(t(eager)), fmt_time(r["time"]), fmt_ratio(t(eager), r["time"]), f"{r['compile_s']:.1f} s",
                     f"{r['max_diff']:.1e}", r["status"]])
    report.table("torch.compile (Generator.compile_synthesis)", ["size", "batch", "pass", "eager", "compiled", "speed-up", "compile time", "max abs(compiled − eager)", "status"], rows,
                 ["Eager: ours fp32 from the generator table (measured here when that section did not run). "
                  "Compile time: the first call (tracing, compiling, autotuning)."])


def goals(s: Settings, report: Report, results):
    def verdict(ok):
        v = "PASS" if ok else "FAIL"
        return f"{v} (quick settings: not the goal's)" if s.quick else v

    rows = []
    edit = results.get("edit")
    if edit:
        times = {k: t(v) for k, v in edit.items() if not math.isnan(t(v))}
        if times:
            k = min(times, key=times.get)
            rows.append([f"{s.edit_steps}-step optimisation edit at {s.big} px < {GOAL_EDIT_100_S:g} s", f"{times[k]:.2f} s ({k})", verdict(times[k] < GOAL_EDIT_100_S)])
    fast = {}
    if "mapper" in results and not math.isnan(t(results["mapper"])):
        fast["mapper edit"] = t(results["mapper"])
    if "global" in results and not math.isnan(t(results["global"])):
        fast["global-direction edit"] = t(results["global"])
    if fast:
        k = min(fast, key=fast.get)
        shown = ", ".join(f"{n} {v * 1e3:.1f} ms" for n, v in fast.items())
        rows.append([f"mapper or global-direction edit at {s.big} px < {GOAL_FAST_EDIT_S * 1e3:g} ms", shown, verdict(fast[k] < GOAL_FAST_EDIT_S)])
    if "relevance" in results:
        best, complete = results["relevance"]
        if best:
            k = min(best, key=best.get)
            shown = ", ".join(f"{p} {v:.1f} min" for p, v in best.items()) + ("" if complete else " (measured layers only)")
            rows.append([f"channel relevance, {s.big} px generator, all conv layers < {GOAL_RELEVANCE_MIN:g} min (projected)", shown,
                         verdict(best[k] < GOAL_RELEVANCE_MIN and complete)])
    slider = results.get("slider")
    if slider and not math.isnan(slider.get("best", float("nan"))):
        rows.append([f"slider to preview (512 px) for a {s.big} px generator < {GOAL_SLIDER_MS:g} ms (route's part)", f"{slider['best'] * 1e3:.1f} ms",
                     verdict(slider["best"] * 1e3 < GOAL_SLIDER_MS)])
    report.table("Goals (issues 9 and 15)", ["goal", "measured", "verdict"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="benchmarks-gpu.md", help="markdown file written after every section (default: ./benchmarks-gpu.md)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement after a warm-up")
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks the script, measures nothing meaningful")
    parser.add_argument("--sizes", type=int, nargs="+", help="generator sizes (default 256 1024); the largest is used for the 1024 px sections")
    parser.add_argument("--batches", type=int, nargs="+", help="generator batches (default 1 4 16)")
    parser.add_argument("--edit-steps", type=int, help="steps of the whole optimisation edit (default 100)")
    parser.add_argument("--compile", choices=["none", "forward", "all"], help="torch.compile rows (default forward: 1024 px batch 1)")
    parser.add_argument("--peak-tflops", type=float, nargs="+", metavar="TFLOPS",
                        help="the device's peak: one number for every precision, or three: FP32 TF32 BF16 (default: from the table of known GPUs)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    args = parser.parse_args()
    if args.peak_tflops and len(args.peak_tflops) not in (1, 3):
        parser.error("--peak-tflops takes one number or three (FP32 TF32 BF16)")

    import torch

    from benchutil import where

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_all.py needs a CUDA GPU (or --device cpu --quick to check the script); none is available here, nothing to measure.")
        return
    s = Settings.make(args)
    name = where(args.device)
    peaks = peak_tflops(name, args.peak_tflops) if args.device.startswith("cuda") or args.peak_tflops else None
    report = Report()
    cuda_v = ""
    if args.device.startswith("cuda"):
        cuda_v = (f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}; cuDNN TF32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'}, "
                  f"float32 matmul precision '{torch.get_float32_matmul_precision()}'")
    report.header = [
        "# StyleCLIP benchmarks on one device",
        "",
        f"{name}; torch {torch.__version__}{cuda_v}; {time.strftime('%Y-%m-%d %H:%M')}.",
        f"Sizes {s.sizes}, batches {s.batches}, {s.repeats} repeats, {s.edit_steps}-step edit{' (--quick)' if s.quick else ''}. "
        "Full-size models on seeded random weights; ratio = reference / ours; MB = peak memory over the loaded models.",
    ]
    print("\n".join(report.header) + "\n", flush=True)
    start = time.perf_counter()
    results = {}
    sections = {"generator": section_generator, "stylegan3": section_stylegan3, "optimize": section_optimize, "mapper": section_mapper, "global": section_global,
                "relevance": section_relevance, "e4e": section_e4e, "pti": section_pti, "video": section_video, "nada": section_nada, "sliders": section_sliders, "compile": section_compile}
    for key in SECTIONS:
        if (args.only and key not in args.only) or (key == "compile" and s.compile == "none"):
            continue
        t0 = time.perf_counter()
        try:
            sections[key](s, args.device, report, peaks, results)
        except Exception as e:  # a broken section is reported and the rest still runs
            report.table(f"{key}: failed", ["error"], [[f"{type(e).__name__}: {str(e).strip()[:300]}"]])
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
        print(f"[{key}: {time.perf_counter() - t0:.0f} s]", flush=True)
        write(args.out, report)
    goals(s, report, results)
    report.parts.append(f"Total wall time {time.perf_counter() - start:.0f} s.")
    write(args.out, report)
    print(f"Total wall time {time.perf_counter() - start:.0f} s; tables written to {args.out}")


def write(path, report: Report):
    with open(path, "w") as f:
        f.write(report.markdown())


if __name__ == "__main__":
    main()
