"""The CUDA plugin checked against the PyTorch reference before it is trusted.

On the first use of the plugin in a process for an op and a dtype, ``passed(op, dtype, device)``
runs both paths on small seeded random inputs (the shapes and settings StyleGAN2 uses: the ToRGB
skip upsample, the blur after a transposed convolution, a downsample, the bias + leaky ReLU on
channels and on the last dim; and those of StyleGAN3's filtered_lrelu: 1-D passes along one axis
with 12 or 24 taps, cropping pads, 2-D down filters; and the fused filtered_lrelu itself as the
StyleGAN3 layers call it: up 2 or 4, down 2, 12 / 24 taps, cropping pads, the radial 2-D down
filter, ToRGB with an active clamp), forward and backward, and compares them. A mismatch beyond the
tolerance is logged once with the figures, and the op falls back to the reference (backend
'auto'); ``STYLECLIP_OPS=cuda`` keeps the plugin but the log still says it failed.

Tolerances: float32 ``1e-5 · max(1, max|reference|)`` (the kernels sum the same taps in another
order: a handful of float32 roundings); float16 ``4e-3`` and bfloat16 ``3e-2`` relative to the
reference's largest magnitude (a few units in the last place of their 11 and 8 significant bits).
"""
from __future__ import annotations

import logging
import threading

import torch

logger = logging.getLogger("styleclip_core.ops")

OPS = ("upfirdn2d", "fused_leaky_relu", "filtered_lrelu")
TOLERANCE = {torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}

# Reentrant: the fused filtered_lrelu's backward runs the upfirdn2d and bias + leaky ReLU stages,
# whose own first-use checks may start while the filtered_lrelu check holds the lock.
_lock = threading.RLock()
_results: dict[tuple[str, torch.dtype, str], tuple[bool, str]] = {}


def _cases(op: str):
    """(kwargs of the op, input shape, FIR taps or None) cases; ``upfirdn2d``'s kernel is the
    StyleGAN2 [1, 3, 3, 1] blur unless the case gives its taps (``_kernel``). ``filtered_lrelu``'s
    third entry names the filters' shapes (None: no filter), whether there is a bias and a scale
    for the input (large for ToRGB, so that its clamp bites)."""
    if op == "upfirdn2d":
        return [
            (dict(up_x=2, up_y=2, down_x=1, down_y=1, px0=2, px1=1, py0=2, py1=1), (2, 3, 8, 8), None),  # ToRGB skip upsample
            (dict(up_x=1, up_y=1, down_x=1, down_y=1, px0=1, px1=1, py0=1, py1=1), (2, 5, 9, 9), None),  # blur after transposed conv
            (dict(up_x=1, up_y=1, down_x=2, down_y=2, px0=1, px1=1, py0=1, py1=1), (1, 4, 8, 8), None),  # downsample
            # StyleGAN3's filtered_lrelu: one 1-D pass per axis (12 or 24 taps), padding that crops, 2-D radial down filters
            (dict(up_x=2, up_y=1, down_x=1, down_y=1, px0=9, px1=8, py0=0, py1=0), (2, 3, 12, 12), (1, 12)),
            (dict(up_x=1, up_y=4, down_x=1, down_y=1, px0=0, px1=0, py0=12, py1=9), (2, 3, 8, 8), (24, 1)),
            (dict(up_x=1, up_y=1, down_x=2, down_y=1, px0=-1, px1=2, py0=0, py1=0), (2, 3, 16, 16), (1, 12)),
            (dict(up_x=1, up_y=1, down_x=2, down_y=2, px0=0, px1=0, py0=0, py1=0), (1, 3, 30, 30), (12, 12)),
        ]
    if op == "filtered_lrelu":
        layer = dict(gain=2 ** 0.5, slope=0.2, clamp=256.0, flip_filter=False)
        return [
            (dict(up=2, down=2, padding=(9, 8, 9, 8), **layer), (2, 3, 12, 12), dict(fu=(12,), fd=(12,), b=True, scale=1.0)),  # T layer
            (dict(up=4, down=2, padding=(12, 9, 12, 9), **layer), (2, 3, 8, 8), dict(fu=(24,), fd=(12,), b=True, scale=1.0)),  # up 4, 24 taps
            (dict(up=2, down=2, padding=(9, 8, 9, 8), **{**layer, "clamp": None}), (1, 3, 12, 12), dict(fu=(12,), fd=(12, 12), b=True, scale=1.0)),  # R: radial down filter
            (dict(up=2, down=2, padding=(-1, 2, 1, -2), **{**layer, "clamp": 1.5}), (2, 3, 12, 12), dict(fu=(12,), fd=(12,), b=False, scale=1.0)),  # cropping pads, clamp
            (dict(up=1, down=1, padding=(0, 0, 0, 0), gain=1.0, slope=1.0, clamp=256.0, flip_filter=False), (2, 3, 7, 7), dict(fu=None, fd=None, b=True, scale=300.0)),  # ToRGB, clamp active
            (dict(up=2, down=1, padding=(2, 1, 0, 3), gain=2.0, slope=0.3, clamp=None, flip_filter=True), (1, 3, 6, 7), dict(fu=(3, 4), fd=(5,), b=True, scale=1.0)),  # flip, 2-D up filter
        ]
    return [(dict(negative_slope=0.2, scale=2 ** 0.5, bias_dim=1), (2, 6, 5, 5), None), (dict(negative_slope=0.2, scale=2 ** 0.5, bias_dim=-1), (3, 4, 7), None)]


def _kernel(taps, gen) -> torch.Tensor:
    from .upfirdn2d import make_kernel

    if taps is None:
        return make_kernel([1, 3, 3, 1])
    k = torch.rand(taps, generator=gen) + 0.1
    return k / k.sum()


def compare(op: str, plugin_fn, reference_fn, device, dtype: torch.dtype, seed: int = 0) -> tuple[bool, str]:
    """Run ``plugin_fn`` and ``reference_fn`` (the op's two paths, with the reference's signature)
    on every case, forward and backward; (whether all agree within the tolerance, a summary)."""
    tol = TOLERANCE.get(dtype)
    if tol is None:
        return False, f"no tolerance for {dtype}"
    gen = torch.Generator().manual_seed(seed)
    worst, where = 0.0, ""
    for k, (kwargs, shape, taps) in enumerate(_cases(op)):
        x0 = torch.randn(shape, generator=gen)
        extra = {}
        if op == "upfirdn2d":
            extra["kernel"] = _kernel(taps, gen).to(device)
        elif op == "filtered_lrelu":
            x0 = x0 * taps["scale"]
            for name in ("fu", "fd"):
                extra[name] = None if taps[name] is None else _kernel(taps[name], gen).to(device)
            if taps["b"]:
                extra["bias"] = torch.randn(shape[1], generator=gen).to(device, dtype).requires_grad_(True)
        else:
            extra["bias"] = torch.randn(shape[kwargs["bias_dim"]], generator=gen).to(device, dtype).requires_grad_(True)
        dy = None  # drawn once the output's shape is known, the same for both paths
        results = []
        for fn in (plugin_fn, reference_fn):
            x = x0.to(device, dtype).requires_grad_(True)
            bias = extra.get("bias")
            if bias is not None:
                bias = bias.detach().clone().requires_grad_(True)
            if op == "upfirdn2d":
                args = {"kernel": extra["kernel"]}
            elif op == "filtered_lrelu":
                args = {"fu": extra["fu"], "fd": extra["fd"], "bias": bias}
            else:
                args = {"bias": bias}
            y = fn(x, **args, **kwargs)
            if dy is None:
                dy = torch.randn(y.shape, generator=gen)
            grads = torch.autograd.grad(y, [x] + ([bias] if bias is not None else []), dy.to(device, dtype))
            results.append([y.detach(), *[g.detach() for g in grads]])
        for name, a, b in zip(("forward", "grad x", "grad bias"), *results):
            scale = max(1.0, float(b.abs().max())) if dtype == torch.float32 else max(float(b.abs().max()), 1e-6)
            err = float((a.float() - b.float()).abs().max()) / scale
            if err > worst:
                worst, where = err, f"case {k} {name}"
    ok = worst <= tol
    return ok, f"{op} {str(dtype).replace('torch.', '')}: largest difference {worst:.2e} of tolerance {tol:.0e}" + (f" ({where})" if not ok else "")


def _paths(op: str):
    from . import cuda_plugin
    from .bias_act import fused_leaky_relu_reference
    from .upfirdn2d import upfirdn2d_reference

    if op == "filtered_lrelu":
        from .filtered_lrelu import filtered_lrelu_reference

        return (lambda x, fu, fd, bias, **k: cuda_plugin.filtered_lrelu(x, fu, fd, bias, **k),
                lambda x, fu, fd, bias, **k: filtered_lrelu_reference(x, fu, fd, bias, **k))
    if op == "upfirdn2d":
        return (lambda x, kernel, **k: cuda_plugin.upfirdn2d(x, kernel, k["up_x"], k["up_y"], k["down_x"], k["down_y"], k["px0"], k["px1"], k["py0"], k["py1"]),
                lambda x, kernel, **k: upfirdn2d_reference(x, kernel, k["up_x"], k["up_y"], k["down_x"], k["down_y"], k["px0"], k["px1"], k["py0"], k["py1"]))
    return (lambda x, bias, **k: cuda_plugin.fused_leaky_relu(x, bias, k["negative_slope"], k["scale"], k["bias_dim"]),
            lambda x, bias, **k: fused_leaky_relu_reference(x, bias, k["negative_slope"], k["scale"], k["bias_dim"]))


def passed(op: str, dtype: torch.dtype, device) -> bool:
    """Whether the plugin's ``op`` agrees with the reference in ``dtype`` on ``device``; checked
    once per process and (op, dtype, device), logged once."""
    key = (op, dtype, str(device))
    done = _results.get(key)  # the hot path (every op call): no lock once checked
    if done is not None:
        return done[0]
    with _lock:
        if key not in _results:
            try:
                _results[key] = compare(op, *_paths(op), device, dtype)
            except Exception as e:  # noqa: BLE001 -- a plugin that cannot even run the check is not trusted
                _results[key] = (False, f"{op} {dtype}: the check raised {type(e).__name__}: {e}")
            ok, summary = _results[key]
            if ok:
                logger.info("CUDA ops self-check passed: %s", summary)
            else:
                logger.warning("CUDA ops self-check FAILED, %s; backend 'auto' uses the PyTorch reference for it "
                               "(STYLECLIP_OPS=cuda keeps the plugin anyway)", summary)
        return _results[key][0]


def report(device, dtypes=(torch.float32,)) -> str:
    """A line for loaders: the self-check's verdict for every op in ``dtypes`` (running it if needed)."""
    parts = []
    for dtype in dtypes:
        verdicts = [passed(op, dtype, device) for op in OPS]
        parts.append(f"{str(dtype).replace('torch.', '')} {'passed' if all(verdicts) else 'FAILED (reference used where it failed)'}")
    return "self-check " + ", ".join(parts)


def results() -> dict:
    """Every check run so far: (op, dtype, device) -> (passed, summary)."""
    with _lock:
        return dict(_results)
