"""CUDA plugin for the ops: the kernels in ``csrc/``, compiled just in time with ninja.

The plugin builds on the first ``available()`` call (``backend.py`` makes it only for CUDA
tensors) and is cached per user in ``~/.cache/comfyui-styleclip/torch_extensions/<key>``;
``STYLECLIP_OPS_CACHE`` replaces the ``~/.cache/comfyui-styleclip/torch_extensions`` root.
The key names the Python, torch and CUDA versions and hashes the sources and target GPU
architectures, so an upgrade or an edit never loads a stale binary. A failed build is
remembered (``failure_reason()``) and never raises from ``available()``: callers fall back
to the PyTorch reference.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import threading
import time
from pathlib import Path

import torch

logger = logging.getLogger("styleclip_core.ops")

CACHE_ENV = "STYLECLIP_OPS_CACHE"
_CSRC = Path(__file__).resolve().with_name("csrc")
_SOURCES = ("ops.cpp", "upfirdn2d.cu", "bias_act.cu", "filtered_lrelu.cu")
_HEADERS = ("kernels.cuh",)
# With no GPU to query, torch cannot pick architectures; these cover A100/H100 and,
# through the PTX, anything newer.
_FALLBACK_ARCHS = "8.0;9.0+PTX"

_lock = threading.RLock()
_built: dict[str, object] = {}  # build directory -> loaded module
_plugin = None  # the module available() settled on
_failure: str | None = None
_tried = False


# ------------------------------------------------------------------------------ build


def _arch_descriptor() -> str:
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if archs:
        return archs
    if torch.cuda.is_available():
        caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
        return ";".join(f"{major}.{minor}" for major, minor in caps)
    return _FALLBACK_ARCHS


def _build_dir() -> str:
    digest = hashlib.sha256()
    for name in _SOURCES + _HEADERS:
        digest.update(name.encode())
        digest.update((_CSRC / name).read_bytes())
    digest.update(_arch_descriptor().encode())
    key = (
        f"py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__}"
        f"-cuda{torch.version.cuda}-{digest.hexdigest()[:16]}"
    ).replace("+", "_")
    root = os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "comfyui-styleclip", "torch_extensions")
    return os.path.join(os.path.abspath(os.path.expanduser(root)), key)


def _locate_cuda_home(cpp_extension) -> str:
    if torch.version.cuda is None:
        raise RuntimeError(f"this PyTorch build ({torch.__version__}) has no CUDA support")
    nvcc = "nvcc.exe" if os.name == "nt" else "nvcc"
    candidates = [cpp_extension.CUDA_HOME, os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    candidates = [c for c in dict.fromkeys(candidates) if c and os.path.isfile(os.path.join(c, "bin", nvcc))]
    if not candidates:
        raise RuntimeError(
            f"no CUDA toolkit found (nvcc); install CUDA {torch.version.cuda} and set CUDA_HOME to its root"
        )
    # torch guesses CUDA_HOME as the parent of the nvcc on PATH, which is wrong for wrapper
    # scripts such as /usr/local/bin/nvcc; prefer a root that also has the headers.
    with_headers = [c for c in candidates if os.path.isfile(os.path.join(c, "include", "cuda_runtime.h"))]
    cuda_home = (with_headers or candidates)[0]
    cpp_extension.CUDA_HOME = cuda_home
    return cuda_home


@contextlib.contextmanager
def _arch_list_env():
    # Without a GPU torch's own detection has nothing to detect (and fails); set a default
    # only for this compile so the caller's environment is left as it was.
    if os.environ.get("TORCH_CUDA_ARCH_LIST") or torch.cuda.is_available():
        yield
        return
    os.environ["TORCH_CUDA_ARCH_LIST"] = _FALLBACK_ARCHS
    try:
        yield
    finally:
        os.environ.pop("TORCH_CUDA_ARCH_LIST", None)


def _short(error: BaseException, lines: int = 25) -> str:
    text = str(error).strip() or type(error).__name__
    tail = text.splitlines()
    return text if len(tail) <= lines else "\n".join(["..."] + tail[-lines:])


def build(verbose: bool = False):
    """Compile (or load from the cache) and import the extension; needs nvcc, not a GPU."""
    with _lock:
        start = time.perf_counter()
        try:
            build_dir = _build_dir()
            if build_dir in _built:
                return _built[build_dir]
            logger.info("building the CUDA ops plugin in %s (minutes the first time, cached afterwards)", build_dir)
            from torch.utils import cpp_extension

            try:
                cpp_extension.verify_ninja_availability()
            except RuntimeError:
                raise RuntimeError("ninja is not installed (pip install ninja)") from None
            _locate_cuda_home(cpp_extension)
            os.makedirs(build_dir, exist_ok=True)
            # The name is per directory: torch bumps a module to name_v1 when the same name
            # is loaded from a second directory in one process, which would defeat the cache.
            name = "styleclip_ops_" + hashlib.sha1(build_dir.encode()).hexdigest()[:8]
            with _arch_list_env():
                module = cpp_extension.load(
                    name=name,
                    sources=[str(_CSRC / s) for s in _SOURCES],
                    extra_include_paths=[str(_CSRC)],
                    extra_cflags=[] if os.name == "nt" else ["-O3"],
                    extra_cuda_cflags=["-O3"],
                    build_directory=build_dir,
                    verbose=verbose,
                )
        except Exception as error:
            reason = _short(error)
            logger.warning(
                "the CUDA ops plugin failed to build after %.0f s (backend 'auto' falls back to the PyTorch reference): %s",
                time.perf_counter() - start, reason,
            )
            raise RuntimeError(f"building the CUDA ops plugin failed: {reason}") from error
        logger.info("the CUDA ops plugin is ready (%.1f s)", time.perf_counter() - start)
        _built[build_dir] = module
        return module


def available() -> bool:
    """Whether the plugin can run on this machine; builds it on the first call."""
    global _plugin, _failure, _tried
    if _tried:
        return _plugin is not None
    with _lock:
        if _tried:
            return _plugin is not None
        try:
            if not torch.cuda.is_available():
                _failure = "no CUDA device is available"
                logger.warning("the CUDA ops plugin is unavailable (%s); the PyTorch reference ops will be used", _failure)
            else:
                _plugin = build()
        except Exception as error:  # build() has logged it
            _failure = str(error) or type(error).__name__
        _tried = True
        return _plugin is not None


def failure_reason() -> str:
    if _failure:
        return _failure
    if not _tried:
        return "the CUDA plugin has not been built yet (it builds on first use with a CUDA tensor)"
    return ""


def _ops():
    if not available():
        raise RuntimeError(f"the CUDA ops plugin is unavailable: {failure_reason()}")
    return _plugin


# --------------------------------------------------------------------------- upfirdn2d


def _upfirdn2d_grad_config(cfg, in_size, out_size, kernel_size):
    """Arguments of the upfirdn2d that computes the input gradient of upfirdn2d(cfg).

    The adjoint runs the pipeline backwards: zero insertion by ``down`` undoes the
    decimation, the flipped kernel transposes the convolution, decimation by ``up`` undoes
    the zero insertion. The leading pad lines tap ``kw - 1 - t`` of gradient sample j up with
    tap t of the forward sample that read input j; the trailing pad makes exactly the input
    size come out (as ``(H*up - 1)//up + 1 == H``).
    """
    up_x, up_y, down_x, down_y, px0, px1, py0, py1 = cfg
    (h, w), (oh, ow), (kh, kw) = in_size, out_size, kernel_size
    gx0, gy0 = kw - 1 - px0, kh - 1 - py0
    gx1 = w * up_x - ow * down_x + px0
    gy1 = h * up_y - oh * down_y + py0
    return down_x, down_y, up_x, up_y, gx0, gx1, gy0, gy1


class _Upfirdn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, cfg):
        ctx.save_for_backward(kernel)
        ctx.cfg = cfg
        ctx.in_size = tuple(x.shape[2:])
        return _ops().upfirdn2d(x, kernel, *cfg)

    @staticmethod
    def backward(ctx, dy):
        (kernel,) = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0]:
            cfg = _upfirdn2d_grad_config(ctx.cfg, ctx.in_size, tuple(dy.shape[2:]), tuple(kernel.shape))
            # Through the same Function, so the gradient is itself differentiable.
            dx = _Upfirdn2d.apply(dy, kernel.flip([0, 1]), cfg)
        return dx, None, None


def upfirdn2d(x, kernel, up_x, up_y, down_x, down_y, px0, px1, py0, py1):
    """``upfirdn2d_reference`` on the GPU. Differentiable w.r.t. ``x`` (any order); the
    kernel is treated as a constant (it is a fixed filter everywhere in StyleGAN2)."""
    cfg = tuple(int(v) for v in (up_x, up_y, down_x, down_y, px0, px1, py0, py1))
    return _Upfirdn2d.apply(x, kernel.to(device=x.device), cfg)


# ---------------------------------------------------------------------- bias + leaky ReLU


class _FusedLeakyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bias, slope, scale, bias_dim):
        ops = _ops()
        y = ops.fused_leaky_relu(x, bias, bias_dim, slope, scale)
        if slope >= 0:
            # The sign of the output tells the branch, and the next layer keeps the output
            # alive anyway, so saving it costs no memory.
            ref, ctx.ref_sign = y, (1.0 if scale >= 0 else -1.0)
        else:
            # A negative slope maps both branches to the same sign; keep x + bias instead.
            ref, ctx.ref_sign = ops.fused_leaky_relu(x, bias, bias_dim, 1.0, 1.0), 1.0
        ctx.save_for_backward(ref)
        ctx.slope, ctx.scale, ctx.bias_dim = slope, scale, bias_dim
        return y

    @staticmethod
    def backward(ctx, dy):
        (ref,) = ctx.saved_tensors
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dx = _FusedLeakyReLUGrad.apply(dy, ref, ctx.ref_sign, ctx.slope, ctx.scale)
        if ctx.needs_input_grad[1]:
            dim = ctx.bias_dim % dx.ndim
            db = dx.sum([d for d in range(dx.ndim) if d != dim]) if dx.ndim > 1 else dx
        return (dx if ctx.needs_input_grad[0] else None), db, None, None, None


class _FusedLeakyReLUGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dy, ref, ref_sign, slope, scale):
        ctx.save_for_backward(ref)
        ctx.cfg = (ref_sign, slope, scale)
        return _ops().fused_leaky_relu_grad(dy, ref, ref_sign, slope, scale)

    @staticmethod
    def backward(ctx, ddx):
        (ref,) = ctx.saved_tensors
        # dx = dy * (a mask that is piecewise constant in ref): linear in dy, flat in ref.
        return _FusedLeakyReLUGrad.apply(ddx, ref, *ctx.cfg), None, None, None, None


def fused_leaky_relu(x, bias, negative_slope, scale, bias_dim):
    """``fused_leaky_relu_reference`` on the GPU, differentiable w.r.t. ``x`` and ``bias``."""
    if bias is not None:
        bias = bias.to(x.dtype)  # as the reference does
    return _FusedLeakyReLU.apply(x, bias, float(negative_slope), float(scale), int(bias_dim))


# ---------------------------------------------------------- filtered_lrelu (StyleGAN3)


class _FilteredLReLU(torch.autograd.Function):
    """Forward: the fused kernel (the upsampled intermediate never reaches global memory).
    Backward: the composition of ``ops.filtered_lrelu`` recomputed on the saved inputs and
    differentiated, so the gradients are the reference's and the intermediate's memory is
    spent only while the backward runs. Under ``create_graph`` the recomputation is part of the
    graph, so higher-order gradients work too."""

    @staticmethod
    def forward(ctx, x, b, fu, fd, cfg, impl):
        up, down, px0, px1, py0, py1, gain, slope, clamp, flip = cfg
        ctx.save_for_backward(x, b, fu, fd)
        ctx.cfg, ctx.impl = cfg, impl
        return _ops().filtered_lrelu(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip)

    @staticmethod
    def backward(ctx, dy):
        from .filtered_lrelu import filtered_lrelu_composition

        x, b, fu, fd = ctx.saved_tensors
        up, down, px0, px1, py0, py1, gain, slope, clamp, flip = ctx.cfg
        want = [ctx.needs_input_grad[0], b is not None and ctx.needs_input_grad[1]]
        create = torch.is_grad_enabled()  # create_graph: keep the recomputation in the graph
        with torch.enable_grad():
            if create:
                xr, br = x, b
            else:
                xr = x.detach().requires_grad_(want[0])
                br = None if b is None else b.detach().requires_grad_(want[1])
            inputs = [t for t, w in zip((xr, br), want) if w]
            grads = iter(())
            if inputs:
                y = filtered_lrelu_composition(xr, fu, fd, br, up, down, (px0, px1, py0, py1), gain, slope, clamp, flip, ctx.impl)
                grads = iter(torch.autograd.grad(y, inputs, dy, create_graph=create, allow_unused=True))
        dx = next(grads) if want[0] else None
        db = next(grads) if want[1] else None
        return dx, db, None, None, None, None


def filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl="auto"):
    """``filtered_lrelu_reference`` on the GPU, forward fused; differentiable w.r.t. ``x`` and ``b``
    (the filters are constants: fixed buffers in StyleGAN3). ``impl`` picks the backend of the
    composition the backward recomputes (each stage behind its own ``backend.use_cuda``)."""
    px0, px1, py0, py1 = (int(p) for p in padding)
    cfg = (int(up), int(down), px0, px1, py0, py1, float(gain), float(slope),
           None if clamp is None else float(clamp), bool(flip_filter))
    fu = None if fu is None else fu.detach().to(device=x.device)
    fd = None if fd is None else fd.detach().to(device=x.device)
    if b is not None:
        b = b.to(device=x.device)
    return _FilteredLReLU.apply(x, b, fu, fd, cfg, impl)
