"""StyleGAN3 generator speed and peak memory: our op path against NVIDIA's reference op path, in one run.

    python benchmarks/bench_stylegan3.py [--sizes 256 1024] [--configs T R] [--batches 1 4] [--modes forward fwd+bwd]
                                         [--repeats 2] [--warmup 1] [--device cpu] [--ops auto] [--max-gb GB] [--tiny]

Both sides are the same ``StyleGAN3Generator`` (``styleclip_core/models/stylegan3.py``) with the
same seeded random full-size weights, in NVIDIA's stock settings (SPEC 13.1, train.py's cfg specs):
T = channel_base 32768, channel_max 512; R = conv_kernel 1, radial down filters, channel_base 65536,
channel_max 1024 (``magnitude_ema`` left at 1). Only the filtered leaky ReLU of every synthesis
layer differs (``to_nvidia_reference_path`` rebinds the layers' forward; the mapping, the Fourier
input and the modulated convolution are ours on both sides):

* ours: ``ops.filtered_lrelu`` (the bias; the up filter as one ``upfirdn2d`` pass per axis, each
  inserting zeros along its own axis only, so the x pass filters a tensor ``up`` times smaller;
  leaky ReLU x gain in place, then the clamp; the down filter as a convolution strided by
  ``down``, per axis or once for a 2-D filter, so only the kept samples are computed);
* reference: NVIDIA's ``_filtered_lrelu_ref`` re-enacted from its description (NVlabs/stylegan3,
  ``torch_utils/ops/filtered_lrelu.py``, ``upfirdn2d.py``, ``bias_act.py``; SPEC 13.7), which is
  what NVIDIA's ``filtered_lrelu`` runs on every non-CUDA tensor: ``bias_act`` (the bias), then
  ``_upfirdn2d_ref`` with the up filter (zeros inserted on both axes at once by reshape + pad, pad or
  crop, a grouped ``conv2d`` with the flipped 1-D filter along x and then along y -- or once with a
  2-D one -- at gain ``up**2``), ``bias_act`` (leaky ReLU, gain, clamp: three passes), and
  ``_upfirdn2d_ref`` with the down filter at full rate, downsampled afterwards by slicing
  ``[::down, ::down]``. A missing (1-tap) filter is a ``[1, 1]`` filter there, so ToRGB still runs
  two 1x1 grouped convolutions.

"forward" renders W+ without gradients; "fwd+bwd" renders with gradients on W+ and on every
weight (latent optimisation needs the first, fine-tuning the second) and back-propagates
``image.square().mean()``. Each measurement runs in its own process (so its peak memory is its
alone); times are the best of ``--repeats`` after ``--warmup`` untimed calls; the ratio is
reference / ours (> 1: ours is faster), and the CPU-time ratio the same for the process CPU time
of those calls (on a CPU: less sensitive than wall time to other jobs taking the cores). Peak memory is over the loaded model (``benchutil.PeakMemory``: peak RSS on a CPU,
peak allocated CUDA memory on a GPU). The check columns compare the two sides' first outputs:
the largest absolute image difference (values ~ +-1) and, for fwd+bwd, the largest W+ gradient
difference over the largest W+ gradient and the relative difference of the weight-gradient norm.
Default batches: 1 at every size and also 4 at 256 px and below (``--batches`` sets them for every
size). ``--ops`` picks our ops backend (``STYLECLIP_OPS`` in the child: on a CPU every backend is
the PyTorch reference); ``--max-gb`` caps each child's address space so that a configuration too
big for the machine fails as an error row instead of waking the OOM killer (default: 85 % of the
memory available at start). ``--tiny`` shrinks the networks (channels / 64, 6 layers) to check
the script in seconds.

Measured with torch 2.14.1 on a CPU, 2 threads, a 2-core machine shared with other jobs (load
average 3 to 8 during the run), so every time is an upper bound: ``--repeats 1 --warmup 0`` (one
call per side), each measurement capped at 20.3 GiB of address space (~17 GiB usable):

    size config batch  pass     ours ms  reference ms  ratio  CPU-time ratio  ours MB  ref MB  max |image diff|  gradient checks
     256   T     1     forward    22441     41525      1.85     1.31           1600    1595    0.0e+00
     256   T     1     fwd+bwd   102287    141498      1.38     1.37           8691   11657    0.0e+00           W+ 0.0e+00, weights 0.0e+00
     256   T     4     forward   152504    158139      1.04     1.36           5880    5861    0.0e+00
     256   T     4     fwd+bwd        —         —         —        —              —       —          —           both out of memory (need > 32.1 / 43.2 GiB saved for backward)
     256   R     1     forward    49250     45631      0.93     1.23           2929    3088    0.0e+00
     256   R     1     fwd+bwd    68141         —         —        —          15439       —          —           reference out of memory (needs > 18.9 GiB)
     256   R     4     forward   113172    202484      1.79     1.50          11525   12115    0.0e+00
     256   R     4     fwd+bwd        —         —         —        —              —       —          —           both out of memory (need > 57.8 / 75.3 GiB)
    1024   T     1     forward    83838     78851      0.94     1.30           6908    7088    0.0e+00
    1024   T     1     fwd+bwd        —         —         —        —              —       —          —           both out of memory (need > 25.4 / 34.6 GiB)
    1024   R     1     forward    87430    182388      2.09     1.70          12914   13074    0.0e+00
    1024   R     1     fwd+bwd        —         —         —        —              —       —          —           both out of memory (need > 46.3 / 60.9 GiB)

(The "need" figures, ours / reference, are ``saved_for_backward_gb``, which the script now adds to
such rows, in GiB; MB in the table are MiB; the measured peaks are ~4 % above the count: 8691 MiB
against 8.2 GiB, 11657 against 10.9, 15439 against 14.5.) With one call per side the wall-time ratio follows the other jobs: the two rows
below 1 were measured again right after with ``--repeats 2 --warmup 1`` (load ~4): 256 R batch 1
forward 27535 / 38706 ms, ratio 1.41 (CPU-time ratio 1.40); 1024 T batch 1 forward 57574 /
76180 ms, ratio 1.32 (1.31). Per layer (CPU time of each layer's op alone, best of 2-3, 1024 T and
256 R forward): the filtered leaky ReLU is 88-91 % of the synthesis layers' time on both sides
(the modulated convolutions, the same on both, the rest); ours takes 1.2-1.6x less time on every
layer of 84 px and up, 0.94-1.1x on T's 36-52 px layers (1.1-1.3x on R's), and is slower only on
ToRGB (0.39 against 0.24 s at 1024 px: its 1-tap "filters" run as four 1x1 grouped convolutions,
one per axis pass up and down, where NVIDIA runs two 2-D ones; 0.15 s, ~0.3 % of the image).
Both paths give bit-identical images and gradients (the same taps summed in the same order; ours
only skips the products with inserted zeros and the samples the downsampling drops).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

IMPLS = ("ours", "reference")
MODES = ("forward", "fwd+bwd")
# NVIDIA's train.py cfg specs (SPEC 13.1): stylegan3-t keeps the constructor's channels, stylegan3-r
# doubles them and uses 1x1 convolutions and radial (2-D) down filters.
CONFIGS = {
    "T": {"channel_base": 32768, "channel_max": 512},
    "R": {"conv_kernel": 1, "use_radial_filters": True, "channel_base": 65536, "channel_max": 1024},
}


def config(size: int, name: str, tiny: bool = False) -> dict:
    """The ``StyleGAN3Generator`` config of NVIDIA's stock ``name`` ('T' or 'R') at ``size`` px
    (``tiny``: channels / 64, 6 layers, 32-dim W, for smoke tests)."""
    cfg = {"img_resolution": int(size), **CONFIGS[name.upper()]}
    if tiny:
        cfg.update(channel_base=cfg["channel_base"] // 64, channel_max=cfg["channel_max"] // 64, num_layers=6, z_dim=32, w_dim=32)
    return cfg


# ---- NVIDIA's reference op path, re-enacted (not imported, not copied) ----------------------------


def _four(padding):
    """NVIDIA's padding forms: an int, [x, y] or [x0, x1, y0, y1]."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    return (padding[0], padding[0], padding[1], padding[1]) if len(padding) == 2 else tuple(padding)


def nvidia_upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """NVIDIA's ``_upfirdn2d_ref``: zero insertion on both axes, pad / crop, the (flipped) filter as
    grouped ``conv2d`` (a 1-D one along x, then along y), then ``[::down, ::down]``."""
    import torch
    import torch.nn.functional as F

    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    x0, x1, y0, y1 = _four(padding)
    # zeros after every sample: a [h, 1, w, 1] view padded to [h, up, w, up]
    x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))  # conv2d correlates: flipping makes it a convolution
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=c)  # [c, 1, 1, k]: along x
        x = F.conv2d(x, f.unsqueeze(3), groups=c)  # [c, 1, k, 1]: along y
    return x[:, :, ::down, ::down]


def nvidia_bias_act_ref(x, b=None, act="linear", alpha=None, gain=None, clamp=None):
    """NVIDIA's ``_bias_act_ref`` for 'linear' and 'lrelu' on channels: bias, activation, gain
    (skipped when 1), clamp (skipped when None), each its own pass."""
    import torch.nn.functional as F

    if gain is None:
        gain = 1.0 if act == "linear" else math.sqrt(2)
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, float(0.2 if alpha is None else alpha))
    if float(gain) != 1:
        x = x * float(gain)
    if clamp is not None and clamp >= 0:
        x = x.clamp(-float(clamp), float(clamp))
    return x


def nvidia_filtered_lrelu_ref(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2, clamp=None, flip_filter=False):
    """NVIDIA's ``_filtered_lrelu_ref``: bias_act(bias), upfirdn2d(up), bias_act(lrelu), upfirdn2d(down)."""
    x = nvidia_bias_act_ref(x, b)
    x = nvidia_upfirdn2d_ref(x, fu, up=up, padding=_four(padding), gain=up ** 2, flip_filter=flip_filter)
    x = nvidia_bias_act_ref(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return nvidia_upfirdn2d_ref(x, fd, down=down, flip_filter=flip_filter)


def _nvidia_layer_forward(self, x, s):
    """``SynthesisLayer.forward`` with the filtered leaky ReLU on NVIDIA's reference path (the
    arguments NVIDIA's SynthesisLayer passes: gain sqrt 2 and slope 0.2, ToRGB 1 and 1)."""
    from styleclip_core.models.stylegan3 import modulated_conv2d

    spec = self.spec
    x = modulated_conv2d(x, self.weight, s, spec.conv_kernel - 1, not spec.is_torgb, self.magnitude_ema.rsqrt())
    gain, slope = (1, 1) if spec.is_torgb else (math.sqrt(2), 0.2)
    return nvidia_filtered_lrelu_ref(x, self.up_filter, self.down_filter, self.bias.to(x.dtype), spec.up_factor, spec.down_factor,
                                     list(spec.padding), gain, slope, self.conv_clamp)


def to_nvidia_reference_path(g):
    """Rebind every synthesis layer of ``g`` (in place) to NVIDIA's reference filtered_lrelu; returns ``g``."""
    from styleclip_core.models.stylegan3 import SynthesisLayer

    for m in g.modules():
        if isinstance(m, SynthesisLayer):
            m.forward = types.MethodType(_nvidia_layer_forward, m)
    return g


# ---- measuring ------------------------------------------------------------------------------------


def build(size: int, name: str, device: str = "cpu", reference: bool = False, tiny: bool = False):
    """The seeded random stock generator (on NVIDIA's reference op path if asked)."""
    import torch

    from styleclip_core.models.stylegan3 import StyleGAN3Generator

    torch.manual_seed(0)
    g = StyleGAN3Generator(config(size, name, tiny)).eval().requires_grad_(False)
    if reference:
        to_nvidia_reference_path(g)
    return g.to(device)


def codes(g, batch: int):
    """Seeded W+ codes from the mapping (so their statistics are a network's, not N(0, 1)'s)."""
    import torch

    z = torch.randn(batch, g.z_dim, generator=torch.Generator().manual_seed(1)).to(g.w_avg.device)
    with torch.no_grad():
        return g.to_w_plus(g.mapping(z))


def step_fn(g, w, mode: str):
    """One call: the image (forward), or the image, the W+ gradient and the weight gradients' norm (fwd+bwd)."""
    import torch

    params = [p for p in g.synthesis.parameters()]

    def forward():
        with torch.no_grad():
            return {"image": g(w)}

    def backward():
        for p in params:
            p.grad = None
        x = w.clone().requires_grad_()
        img = g(x)
        img.square().mean().backward()
        norm = torch.sqrt(sum(p.grad.double().square().sum() for p in params if p.grad is not None))
        return {"image": img.detach(), "w_grad": x.grad, "weight_grad_norm": float(norm)}

    if mode == "fwd+bwd":
        g.synthesis.requires_grad_(True)
        return backward
    g.requires_grad_(False)
    return forward


def run(g, batch: int, mode: str, repeats: int, device: str, warmup: int = 1) -> dict:
    """Time one configuration on a built generator: best wall time, the process CPU time of the
    same calls (``cpu_time``, the best), peak memory, the first call's outputs."""
    import time

    from benchutil import timed

    step, cpu = step_fn(g, codes(g, batch), mode), []

    def counted():
        t = time.process_time()
        out = step()
        cpu.append(time.process_time() - t)
        return out

    r = timed(counted, repeats, device, warmup=warmup)
    r["cpu_time"] = min(cpu[warmup:])
    return r


@contextlib.contextmanager
def ops_backend(ops: str):
    """Our ops backend for the block. Through ``STYLECLIP_OPS``, because
    ``StyleGAN3Generator.set_ops_backend`` records the name but its layers call ``filtered_lrelu``
    (and the mapping ``fused_leaky_relu``) with the default 'auto'; the variable overrides that."""
    before = os.environ.get("STYLECLIP_OPS")
    if ops == "auto":
        os.environ.pop("STYLECLIP_OPS", None)
    else:
        os.environ["STYLECLIP_OPS"] = ops
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("STYLECLIP_OPS", None)
        else:
            os.environ["STYLECLIP_OPS"] = before


def measure(impl: str, size: int, name: str, batch: int, mode: str, repeats: int, device: str = "cpu", ops: str = "auto",
            tiny: bool = False, save: str | None = None, warmup: int = 1) -> dict:
    """One measurement (``impl`` 'ours' or 'reference'); ``save``: where the first outputs go (torch.save)."""
    import torch

    g = build(size, name, device, reference=impl == "reference", tiny=tiny)
    with ops_backend(ops if impl == "ours" else "auto"):
        r = run(g, batch, mode, repeats, device, warmup)
    first = r.pop("first")
    if save:
        torch.save({k: v.cpu() if torch.is_tensor(v) else v for k, v in first.items()}, save)
    return r


def compare(ours: dict, ref: dict) -> dict:
    """The check columns from both sides' first outputs."""
    out = {"image_max_diff": float((ours["image"].double() - ref["image"].double()).abs().max()),
           "image_max": float(ref["image"].abs().max())}
    if "w_grad" in ours and "w_grad" in ref:
        out["w_grad_rel_diff"] = float((ours["w_grad"].double() - ref["w_grad"].double()).abs().max() / ref["w_grad"].double().abs().max())
        out["weight_grad_rel_diff"] = abs(ours["weight_grad_norm"] - ref["weight_grad_norm"]) / ref["weight_grad_norm"]
    return out


def saved_for_backward_gb(size: int, name: str, batch: int, reference: bool, tiny: bool = False) -> float:
    """GiB of the tensors autograd keeps for the backward pass of one fwd+bwd call, counted on the
    meta device (nothing is computed or allocated): views count once, with their base. What a run
    that ran out of memory would have needed at least (measured peaks are ~4 % above it)."""
    import torch

    from styleclip_core.models.stylegan3 import StyleGAN3Generator

    with torch.device("meta"):
        g = StyleGAN3Generator(config(size, name, tiny))
    if reference:
        to_nvidia_reference_path(g)
    g.synthesis.requires_grad_(True)
    saved = {}

    def pack(t):
        base = t if t._base is None else t._base
        saved[id(base)] = (base, base.numel() * base.element_size())  # the tensor too, so its id stays its own
        return t

    w = torch.zeros(batch, g.n_latent, g.style_dim, device="meta", requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        g(w)
    return sum(n for _, n in saved.values()) / 2**30


def _limit_memory(gb: float):
    import resource

    if gb and gb > 0:
        limit = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def default_max_gb() -> float:
    """85 % of MemAvailable, plus the few GB of address space that importing torch maps."""
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 2**20
    except (OSError, StopIteration, ValueError):
        return 0.0
    return round(0.85 * avail + 4, 1)


def run_child(impl, size, name, batch, mode, repeats, device="cpu", ops="auto", tiny=False, max_gb=0.0, save=None, warmup=1) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(dict(
        impl=impl, size=size, name=name, batch=batch, mode=mode, repeats=repeats, device=device, ops=ops, tiny=tiny, save=save, max_gb=max_gb, warmup=warmup))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        tail = [line for line in out.stderr.strip().splitlines() if line.strip()]
        reason = tail[-1] if tail else f"exit status {out.returncode}"
        if any(m in out.stderr for m in ("not enough memory", "can't allocate memory", "MemoryError", "std::bad_alloc")) or out.returncode in (-9, 137):
            reason = f"out of memory (cap {max_gb:g} GiB address space)" if max_gb else "out of memory"
        return {"error": reason[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_pair(size, name, batch, mode, repeats, device="cpu", ops="auto", tiny=False, max_gb=0.0, warmup=1) -> dict:
    """Both sides of one configuration, each in its own process, and the check columns."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        results, firsts = {}, {}
        for impl in IMPLS:
            path = os.path.join(tmp, f"{impl}.pt")
            results[impl] = run_child(impl, size, name, batch, mode, repeats, device, ops, tiny, max_gb, path, warmup)
            if "error" not in results[impl]:
                firsts[impl] = torch.load(path)
        results["check"] = compare(firsts["ours"], firsts["reference"]) if len(firsts) == 2 else {}
    for impl in IMPLS:
        if mode == "fwd+bwd" and results[impl].get("error", "").startswith("out of memory"):
            results[impl]["error"] += f"; needs > {saved_for_backward_gb(size, name, batch, impl == 'reference', tiny):.1f} GiB saved for backward"
    return results


# ---- table ----------------------------------------------------------------------------------------

COLUMNS = ["size", "config", "batch", "pass", "ours ms", "reference ms", "ratio", "CPU-time ratio", "ours MB", "ref MB", "max |image diff|", "gradient checks"]


def fmt_ms(r) -> str:
    if "error" in r:
        return "—"
    ms = r["time"] * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}"


def row(size, name, batch, mode, results, device="cpu") -> list[str]:
    ours, ref, check = results["ours"], results["reference"], results["check"]
    both = "error" not in ours and "error" not in ref
    ratio = f"{ref['time'] / ours['time']:.2f}" if both else "—"
    cpu_ratio = f"{ref['cpu_time'] / ours['cpu_time']:.2f}" if both and not str(device).startswith("cuda") else "—"
    mb = lambda r: "—" if "error" in r else f"{r['peak_mb']:.0f}"  # noqa: E731
    diff = f"{check['image_max_diff']:.1e}" if check else "—"
    grads = ""
    if "w_grad_rel_diff" in check:
        grads = f"W+ {check['w_grad_rel_diff']:.1e}, weights {check['weight_grad_rel_diff']:.1e}"
    notes = "; ".join(f"{impl}: {r['error']}" for impl, r in (("ours", ours), ("reference", ref)) if "error" in r)
    return [str(size), name, str(batch), mode, fmt_ms(ours), fmt_ms(ref), ratio, cpu_ratio, mb(ours), mb(ref), diff, grads + (f" {notes}" if notes else "")]


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)] if rows else [len(c) for c in COLUMNS]
    line = lambda cells: "  ".join(c.rjust(w) if i < len(cells) - 1 else c for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(COLUMNS)] + [line(r) for r in rows])


def batches_for(size: int, batches) -> list[int]:
    return list(batches) if batches else ([1, 4] if size <= 256 else [1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--configs", nargs="+", default=["T", "R"], type=str.upper, choices=sorted(CONFIGS))
    parser.add_argument("--batches", type=int, nargs="+", help="default: 1, and 4 at 256 px and below")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per measurement (the best is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before them")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ops", default="auto", choices=["auto", "cuda", "reference"], help="our ops backend")
    parser.add_argument("--max-gb", type=float, help="address-space cap of each measurement in GiB (default 85%% of the available memory + 4; 0: none)")
    parser.add_argument("--tiny", action="store_true", help="shrunk networks: checks the script, measures nothing meaningful")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        a = json.loads(args.child)
        _limit_memory(a.pop("max_gb"))
        print(json.dumps(measure(**a)))
        return

    import torch

    from benchutil import where

    max_gb = default_max_gb() if args.max_gb is None else args.max_gb
    print(f"torch {torch.__version__}, {where(args.device)}; our ops backend {args.ops}"
          f"{'; tiny networks' if args.tiny else ''}{f'; each measurement capped at {max_gb:g} GiB address space' if max_gb else ''}", flush=True)
    rows = []
    for size in args.sizes:
        for name in args.configs:
            for batch in batches_for(size, args.batches):
                for mode in args.modes:
                    results = measure_pair(size, name, batch, mode, args.repeats, args.device, args.ops, args.tiny, max_gb, args.warmup)
                    rows.append(row(size, name, batch, mode, results, args.device))
                    print("  ".join(rows[-1]), flush=True)
    print()
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
