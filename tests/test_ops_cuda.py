"""The CUDA plugin of the StyleGAN2 ops against the PyTorch reference.

Every plugin check runs on up to three implementations of the plugin's kernel interface,
each behind the plugin's own autograd wrappers:

* ``torch-emulated``: the kernels' contract written in torch ops; always runs and checks the
  wrappers (gradient pads, double backward, bias gradient, memory-light saving).
* ``host-compiled``: ``csrc/kernels.cuh`` (the per-pixel math the CUDA kernels run) compiled
  for the CPU with a plain C++ compiler; checks the kernels' index arithmetic without a GPU.
* ``cuda``: the real plugin on a CUDA device, through the public ``impl='cuda'`` path.
"""
from __future__ import annotations

import logging
import math
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import load_fixture

from styleclip_core.ops import backend, cuda_plugin
from styleclip_core.ops.bias_act import fused_leaky_relu, fused_leaky_relu_reference
from styleclip_core.ops.upfirdn2d import make_kernel, upfirdn2d, upfirdn2d_reference

# The compile tests run nvcc / g++ on whatever the machine has (minutes on 2 cores).
pytestmark = pytest.mark.timeout(1800)

REPO = Path(__file__).resolve().parents[1]
CSRC = REPO / "styleclip_core" / "ops" / "csrc"
TOL = dict(atol=1e-5, rtol=1e-5)
# float16 / bfloat16 inputs against a float32 reference: a couple of ulps of the low precision
# (float16 eps 9.8e-4, bfloat16 7.8e-3). On the CPU implementations measured up to 0.30 of the bound
# (1 and 4 threads, AVX512/AVX2/ATen default kernels).
LOW_TOL = {torch.float16: dict(atol=3e-3, rtol=3e-3), torch.bfloat16: dict(atol=2e-2, rtol=2e-2)}
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _nvcc() -> str | None:
    candidates = [shutil.which("nvcc"), os.path.join(os.environ.get("CUDA_HOME", ""), "bin", "nvcc"),
                  "/usr/local/cuda/bin/nvcc"]
    return next((c for c in candidates if c and os.path.isfile(c)), None)


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch):
    monkeypatch.delenv(backend.ENV_VAR, raising=False)


# ------------------------------------------------------------------ plugin implementations


class TorchEmulatedKernels:
    """What each compiled entry point computes, in torch ops."""

    @staticmethod
    def upfirdn2d(x, kernel, *cfg):
        return upfirdn2d_reference(x, kernel, *cfg)

    @staticmethod
    def fused_leaky_relu(x, bias, bias_dim, slope, scale):
        return fused_leaky_relu_reference(x, bias, slope, scale, bias_dim)

    @staticmethod
    def fused_leaky_relu_grad(grad, ref, ref_sign, slope, scale):
        d = grad * scale
        return torch.where(ref * ref_sign > 0, d, d * slope)


HOST_SOURCE = r"""
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <optional>
#include "kernels.cuh"

using namespace styleclip_ops;

// Mirrors upfirdn2d_kernel: the same per-pixel function and variant choice, loops for threads.
at::Tensor upfirdn2d(const at::Tensor& x_in, const at::Tensor& kernel, int64_t up_x, int64_t up_y, int64_t down_x,
                     int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1) {
    const at::Tensor x = x_in.contiguous();
    Upfirdn2dParams p;
    TORCH_CHECK(make_upfirdn2d_params(p, x.size(0) * x.size(1), int(x.size(2)), int(x.size(3)), int(kernel.size(0)),
                                      int(kernel.size(1)), int(up_x), int(up_y), int(down_x), int(down_y),
                                      int(pad_x0), int(pad_x1), int(pad_y0), int(pad_y1)), "empty output");
    at::Tensor y = at::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d_host", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const at::Tensor k = kernel.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
        with_upfirdn2d_variant(p, [&](auto variant) {
            using V = decltype(variant);
            const scalar_t* xp = x.const_data_ptr<scalar_t>();
            scalar_t* yp = y.mutable_data_ptr<scalar_t>();
            for (int64_t c = 0; c < p.planes; ++c)
                for (int oy = 0; oy < p.out_h; ++oy)
                    for (int ox = 0; ox < p.out_w; ++ox)
                        yp[(c * p.out_h + oy) * p.out_w + ox] = static_cast<scalar_t>(upfirdn2d_pixel<V>(
                            p, xp + c * p.in_h * p.in_w, k.const_data_ptr<acc_t>(), oy, ox));
        });
    });
    return y;
}

bool upfirdn2d_specialised(int64_t k_h, int64_t k_w, int64_t up_x, int64_t up_y, int64_t down_x, int64_t down_y) {
    Upfirdn2dParams p{};
    p.k_h = int(k_h); p.k_w = int(k_w); p.up_x = int(up_x); p.up_y = int(up_y);
    p.down_x = int(down_x); p.down_y = int(down_y);
    bool specialised = false;
    with_upfirdn2d_variant(p, [&](auto variant) {
        specialised = !std::is_same_v<decltype(variant), GenericVariant>;
    });
    return specialised;
}

at::Tensor fused_leaky_relu(const at::Tensor& x_in, const std::optional<at::Tensor>& bias_in, int64_t bias_dim,
                            double slope, double scale) {
    const at::Tensor x = x_in.contiguous();
    at::Tensor bias;
    int64_t len = 1, stride = 1;
    if (bias_in.has_value() && bias_in->defined()) {
        bias_layout(x.sizes().data(), x.dim(), c10::maybe_wrap_dim(bias_dim, x.dim()), len, stride);
        TORCH_CHECK(bias_in->numel() == len, "bias size");
        bias = bias_in->to(x.scalar_type()).contiguous();
    }
    at::Tensor y = at::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "flrelu_host", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        const scalar_t* bp = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
        scalar_t* yp = y.mutable_data_ptr<scalar_t>();
        for (int64_t i = 0; i < x.numel(); ++i) {
            acc_t v = static_cast<acc_t>(xp[i]);
            if (bp != nullptr) v += static_cast<acc_t>(bp[bias_index(i, len, stride)]);
            yp[i] = static_cast<scalar_t>(leaky_relu_scaled(v, acc_t(slope), acc_t(scale)));
        }
    });
    return y;
}

at::Tensor fused_leaky_relu_grad(const at::Tensor& g_in, const at::Tensor& ref_in, double ref_sign, double slope,
                                 double scale) {
    const at::Tensor g = g_in.contiguous(), ref = ref_in.to(g.scalar_type()).contiguous();
    at::Tensor dx = at::empty_like(g);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "flrelu_grad_host", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* gp = g.const_data_ptr<scalar_t>();
        const scalar_t* rp = ref.const_data_ptr<scalar_t>();
        scalar_t* dp = dx.mutable_data_ptr<scalar_t>();
        for (int64_t i = 0; i < g.numel(); ++i)
            dp[i] = static_cast<scalar_t>(leaky_relu_scaled_grad(static_cast<acc_t>(gp[i]), static_cast<acc_t>(rp[i]),
                                                                 acc_t(ref_sign), acc_t(slope), acc_t(scale)));
    });
    return dx;
}
"""


@pytest.fixture(scope="session")
def host_kernels(tmp_path_factory):
    if not (shutil.which("c++") or shutil.which("g++")) or not shutil.which("ninja"):
        pytest.skip("needs a C++ compiler and ninja")
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        name="styleclip_ops_host_check",
        cpp_sources=HOST_SOURCE,
        functions=["upfirdn2d", "upfirdn2d_specialised", "fused_leaky_relu", "fused_leaky_relu_grad"],
        extra_include_paths=[str(CSRC)],
        extra_cflags=["-O1"],
        build_directory=str(tmp_path_factory.mktemp("host_kernels")),
    )


class Impl:
    """Runs the ops through the plugin's autograd wrappers on ``device``."""

    def __init__(self, name, device, public):
        self.name, self.device, self.public = name, torch.device(device), public

    def upfirdn2d(self, x, kernel, cfg):
        if self.public:
            up_x, up_y, down_x, down_y, *pad = cfg
            return upfirdn2d(x, kernel, up=(up_x, up_y), down=(down_x, down_y), pad=pad, impl="cuda")
        return cuda_plugin.upfirdn2d(x, kernel, *cfg)

    def flrelu(self, x, bias, slope=0.2, scale=math.sqrt(2), bias_dim=1):
        if self.public:
            return fused_leaky_relu(x, bias, slope, scale, bias_dim, impl="cuda")
        return cuda_plugin.fused_leaky_relu(x, bias, slope, scale, bias_dim)


@pytest.fixture(params=["torch-emulated", "host-compiled", "cuda"])
def impl(request, monkeypatch):
    if request.param == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device")
        assert cuda_plugin.available(), cuda_plugin.failure_reason()
        return Impl("cuda", "cuda", public=True)
    kernels = TorchEmulatedKernels if request.param == "torch-emulated" else request.getfixturevalue("host_kernels")
    monkeypatch.setattr(cuda_plugin, "_plugin", kernels)
    monkeypatch.setattr(cuda_plugin, "_tried", True)
    monkeypatch.setattr(cuda_plugin, "_failure", None)
    return Impl(request.param, "cpu", public=False)


# ---------------------------------------------------------------------------- helpers


def _compare_upfirdn2d(impl, x, kernel, cfg, tol=TOL):
    """Forward and x-gradient of the plugin against the reference, on the same inputs."""
    low = x.dtype in LOW_TOL
    ref_dtype = torch.float64 if low else x.dtype
    x_ref = x.detach().to(ref_dtype).requires_grad_()
    x_imp = x.detach().clone().requires_grad_()
    y_ref = upfirdn2d_reference(x_ref, kernel.to(x_ref.device, ref_dtype), *cfg)
    y = impl.upfirdn2d(x_imp, kernel, cfg)
    assert y.dtype == x.dtype and y.shape == y_ref.shape
    torch.testing.assert_close(y.to(ref_dtype), y_ref, **tol)
    g = torch.randn(y.shape, device=x.device, dtype=x.dtype)
    y_ref.backward(g.to(ref_dtype))
    y.backward(g)
    torch.testing.assert_close(x_imp.grad.to(ref_dtype), x_ref.grad, **tol)
    return y


def _random_upfirdn2d_cases(n, seed):
    rng = random.Random(seed)
    cases = []
    while len(cases) < n:
        h, w, kh, kw = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 5), rng.randint(1, 5)
        up_x, up_y, down_x, down_y = (rng.randint(1, 3) for _ in range(4))
        px0, px1, py0, py1 = (rng.randint(-3, 4) for _ in range(4))
        if h * up_y + py0 + py1 >= kh and w * up_x + px0 + px1 >= kw:
            cases.append(((h, w), (kh, kw), (up_x, up_y, down_x, down_y, px0, px1, py0, py1)))
    return cases


GENERATOR_USES = {
    # name: (kernel, up, down, pad) as StyleGAN2's Upsample (ToRGB skip), Blur after the
    # transposed 3x3 conv, and Downsample.
    "upsample": (make_kernel([1, 3, 3, 1]) * 4, 2, 1, (2, 1)),
    "blur": (make_kernel([1, 3, 3, 1]) * 4, 1, 1, (1, 1)),
    "downsample": (make_kernel([1, 3, 3, 1]), 1, 2, (1, 1)),
}


def _load_fixtures():
    """(meta, tensors) of the ops fixture; fails (never skips) when it is absent, like every fixture test."""
    tensors, meta = load_fixture("ops")
    return meta, tensors


# -------------------------------------------------------------------------- upfirdn2d


def test_upfirdn2d_fixtures(impl, parity):
    meta, tensors = _load_fixtures()
    x = tensors["x"].to(impl.device)
    for case in meta["upfirdn2d_cases"]:
        name = case["name"]
        x0, x1, y0, y1 = case["pad_x0_x1_y0_y1"]
        cfg = (case["up"], case["up"], case["down"], case["down"], x0, x1, y0, y1)
        kernel = tensors[f"upfirdn2d.{name}.kernel"].to(impl.device)
        y = _compare_upfirdn2d(impl, x, kernel, cfg)
        parity.close(f"ops:upfirdn2d.{name}.out [{impl.name}]", y.cpu(), tensors[f"upfirdn2d.{name}.out"], **TOL)


@pytest.mark.parametrize("use", sorted(GENERATOR_USES))
def test_upfirdn2d_generator_uses(impl, use):
    kernel, up, down, (p0, p1) = GENERATOR_USES[use]
    torch.manual_seed(0)
    for shape in [(2, 3, 4, 4), (1, 5, 16, 16), (2, 2, 33, 17)]:
        x = torch.randn(shape, device=impl.device)
        _compare_upfirdn2d(impl, x, kernel.to(impl.device), (up, up, down, down, p0, p1, p0, p1))


def test_upfirdn2d_random(impl):
    torch.manual_seed(1)
    for i, ((h, w), (kh, kw), cfg) in enumerate(_random_upfirdn2d_cases(60, seed=2)):
        if i % 3 == 0:  # channels-last storage: the plugin must not assume contiguity
            x = torch.randn(2, h, w, 3, device=impl.device).permute(0, 3, 1, 2)
        else:
            x = torch.randn(2, 3, h, w, device=impl.device)
        kernel = torch.randn(kh, kw, device=impl.device)
        _compare_upfirdn2d(impl, x, kernel, cfg)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_upfirdn2d_low_precision(impl, dtype):
    torch.manual_seed(3)
    for use, (kernel, up, down, (p0, p1)) in GENERATOR_USES.items():
        x = torch.randn(2, 4, 16, 16, device=impl.device).to(dtype)
        _compare_upfirdn2d(impl, x, kernel.to(impl.device), (up, up, down, down, p0, p1, p0, p1), LOW_TOL[dtype])
    for (h, w), (kh, kw), cfg in _random_upfirdn2d_cases(10, seed=4):
        x = torch.randn(1, 2, h, w, device=impl.device).to(dtype)
        kernel = torch.rand(kh, kw, device=impl.device)
        _compare_upfirdn2d(impl, x, kernel / kernel.sum(), cfg, LOW_TOL[dtype])


def test_upfirdn2d_gradcheck_and_double_backward(impl):
    torch.manual_seed(5)
    kernel = torch.randn(4, 3, device=impl.device, dtype=torch.float64)
    x = torch.randn(1, 2, 5, 6, device=impl.device, dtype=torch.float64, requires_grad=True)
    for cfg in [(2, 2, 1, 1, 1, 2, 0, 1), (1, 1, 2, 2, 1, 1, 2, 1), (3, 2, 2, 3, -1, 2, 2, -1)]:
        def fn(t):
            return impl.upfirdn2d(t, kernel, cfg)

        assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7)
        assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-7)

        # d/dx <v, d/dx <w, y^2>> needs the gradient of the gradient.
        def second_order(op):
            t = x.detach().clone().requires_grad_()
            y = op(t)
            w = torch.linspace(-1, 1, y.numel(), device=y.device, dtype=y.dtype).view_as(y)
            (g,) = torch.autograd.grad((w * y.square()).sum(), t, create_graph=True)
            v = torch.linspace(1, 2, g.numel(), device=g.device, dtype=g.dtype).view_as(g)
            (h,) = torch.autograd.grad((v * g).sum(), t)
            return h

        torch.testing.assert_close(second_order(fn), second_order(lambda t: upfirdn2d_reference(t, kernel, *cfg)))


def test_upfirdn2d_variants_cover_the_generator_and_their_gradients(host_kernels):
    for kernel, up, down, _ in GENERATOR_USES.values():
        kh, kw = kernel.shape
        assert host_kernels.upfirdn2d_specialised(kh, kw, up, up, down, down)
        assert host_kernels.upfirdn2d_specialised(kh, kw, down, down, up, up)  # the backward pass
    assert not host_kernels.upfirdn2d_specialised(3, 4, 2, 2, 1, 1)


# ------------------------------------------------------------------------ bias + act


def _compare_flrelu(impl, x, bias, bias_dim, slope=0.2, scale=math.sqrt(2), tol=TOL):
    low = x.dtype in LOW_TOL
    ref_dtype = torch.float64 if low else x.dtype
    x_ref = x.detach().to(ref_dtype).requires_grad_()
    x_imp = x.detach().clone().requires_grad_()
    b_ref = b_imp = None
    if bias is not None:
        b_ref = bias.detach().to(ref_dtype).requires_grad_()
        b_imp = bias.detach().clone().requires_grad_()
    y_ref = fused_leaky_relu_reference(x_ref, b_ref, slope, scale, bias_dim)
    y = impl.flrelu(x_imp, b_imp, slope, scale, bias_dim)
    assert y.dtype == x.dtype and y.shape == x.shape
    torch.testing.assert_close(y.to(ref_dtype), y_ref, **tol)
    g = torch.randn(y.shape, device=x.device, dtype=x.dtype)
    y_ref.backward(g.to(ref_dtype))
    y.backward(g)
    torch.testing.assert_close(x_imp.grad.to(ref_dtype), x_ref.grad, **tol)
    if bias is not None:
        assert b_imp.grad.dtype == bias.dtype
        # A bias gradient sums many rounded products; allow for the length of the sum.
        n = x.numel() // bias.numel()
        bias_tol = {k: v * (math.sqrt(n) if low else 1) for k, v in tol.items()}
        torch.testing.assert_close(b_imp.grad.to(ref_dtype), b_ref.grad, **bias_tol)
    return y


def test_fused_leaky_relu_fixtures(impl, parity):
    _, tensors = _load_fixtures()
    for case, bias_dim in [("4d", 1), ("2d", 1), ("nobias", 1), ("3d_styleclip", -1)]:
        x = tensors[f"flrelu.{case}.x"].to(impl.device)
        bias = tensors.get(f"flrelu.{case}.bias")
        y = _compare_flrelu(impl, x, None if bias is None else bias.to(impl.device), bias_dim)
        parity.close(f"ops:flrelu.{case}.out [{impl.name}]", y.cpu(), tensors[f"flrelu.{case}.out"], **TOL)


SHAPES = [(7, 5), (2, 6, 5), (2, 5, 4, 3), (3, 4, 1, 1)]


@pytest.mark.parametrize("bias_dim", [1, -1, None], ids=["dim1", "dim-1", "nobias"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fused_leaky_relu_shapes(impl, shape, bias_dim):
    torch.manual_seed(6)
    x = torch.randn(shape, device=impl.device)
    bias = None if bias_dim is None else torch.randn(shape[bias_dim], device=impl.device)
    _compare_flrelu(impl, x, bias, 1 if bias_dim is None else bias_dim)
    # Non-contiguous input and a bias that is a strided view.
    xt = torch.randn(tuple(reversed(shape)), device=impl.device).permute(*reversed(range(len(shape))))
    bt = None if bias is None else torch.randn(2 * bias.numel(), device=impl.device)[::2]
    _compare_flrelu(impl, xt, bt, 1 if bias_dim is None else bias_dim)


@pytest.mark.parametrize("slope,scale", [(0.0, 1.0), (0.2, -1.5), (-0.5, 2.0), (1.3, 0.7)])
def test_fused_leaky_relu_other_slopes_and_scales(impl, slope, scale):
    # The backward infers the branch from the saved output when it can; these cover a dead
    # negative side, a negative gain and a slope that makes both branches share a sign.
    torch.manual_seed(7)
    x = torch.randn(2, 5, 3, 4, device=impl.device)
    _compare_flrelu(impl, x, torch.randn(5, device=impl.device), 1, slope, scale)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_fused_leaky_relu_low_precision(impl, dtype):
    torch.manual_seed(8)
    for shape, bias_dim in [((4, 16), 1), ((2, 6, 16), -1), ((2, 8, 5, 5), 1)]:
        x = torch.randn(shape, device=impl.device).to(dtype)
        bias = torch.randn(shape[bias_dim], device=impl.device)  # float32 bias on a half tensor, as in the models
        _compare_flrelu(impl, x, bias, bias_dim, tol=LOW_TOL[dtype])


def test_fused_leaky_relu_gradcheck(impl):
    def away_from_kink(z):  # finite differences must not straddle zero
        return torch.where(z > 0, z.clamp_min(0.05), z.clamp_max(-0.05))

    torch.manual_seed(9)
    opts = dict(device=impl.device, dtype=torch.float64)
    bias = torch.randn(3, **opts)
    x = (away_from_kink(torch.randn(2, 3, 4, **opts)) - bias[:, None]).requires_grad_()
    bias.requires_grad_()
    x_nobias = away_from_kink(torch.randn(2, 4, 3, **opts)).requires_grad_()
    cases = [
        (lambda t, b: impl.flrelu(t, b, 0.2, math.sqrt(2), 1), (x, bias)),
        (lambda t: impl.flrelu(t, None, 0.2, math.sqrt(2), -1), (x_nobias,)),
        (lambda t: impl.flrelu(t, None, -0.3, 1.5, -1), (x_nobias,)),
    ]
    for fn, inputs in cases:
        assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)
        assert torch.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-7)


def test_fused_leaky_relu_saves_one_tensor(impl):
    x = torch.randn(2, 3, 4, 4, device=impl.device, requires_grad=True)
    bias = torch.randn(3, device=impl.device, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = impl.flrelu(x, bias)
    assert len(saved) == 1 and saved[0].shape == y.shape


# ----------------------------------------------------------------------- compile check


@pytest.mark.skipif(_nvcc() is None, reason="needs nvcc (CUDA toolkit)")
def test_plugin_compiles(tmp_path, monkeypatch):
    monkeypatch.setenv(cuda_plugin.CACHE_ENV, str(tmp_path))
    module = cuda_plugin.build()
    for name in ("upfirdn2d", "fused_leaky_relu", "fused_leaky_relu_grad"):
        assert callable(getattr(module, name))
    assert Path(module.__file__).resolve().is_relative_to(tmp_path.resolve())


# -------------------------------------------------------------------- backend selection


def test_env_reference_wins_over_impl(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "reference")
    assert backend.resolve("cuda") == "reference"
    assert backend.describe("cuda", "cpu").startswith("reference")


@needs_gpu
def test_env_reference_forces_reference_on_cuda(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "reference")

    def must_not_build():
        raise AssertionError("the plugin was consulted although the reference was forced")

    monkeypatch.setattr(cuda_plugin, "available", must_not_build)
    x = torch.randn(1, 2, 8, 8, device="cuda")
    assert not backend.use_cuda(x, "cuda")
    assert backend.describe("auto", "cuda").startswith("reference")
    y = upfirdn2d(x, make_kernel([1, 3, 3, 1]), up=2, pad=(2, 1), impl="cuda")
    assert y.shape == (1, 2, 16, 16)
    fused_leaky_relu(x, torch.zeros(2, device="cuda"), impl="cuda")


def test_env_cuda_with_cpu_tensor_raises(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "cuda")
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(RuntimeError, match=r"on cpu.*(CUDA device|'reference')"):
        upfirdn2d(x, make_kernel([1, 3, 3, 1]), pad=(1, 2))
    with pytest.raises(RuntimeError, match=r"on cpu.*(CUDA device|'reference')"):
        fused_leaky_relu(x, torch.zeros(2))


def test_describe_auto_cpu_is_reference():
    assert "reference" in backend.describe("auto", "cpu")


def test_invalid_backend_names_the_choices(monkeypatch):
    with pytest.raises(ValueError, match="auto, cuda, reference"):
        backend.resolve("triton")
    monkeypatch.setenv(backend.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="auto, cuda, reference"):
        upfirdn2d(torch.randn(1, 1, 4, 4), make_kernel([1, 1]))


@pytest.fixture
def fresh_plugin(monkeypatch):
    for name, value in [("_plugin", None), ("_tried", False), ("_failure", None)]:
        monkeypatch.setattr(cuda_plugin, name, value)


def test_unavailable_without_cuda_device(fresh_plugin, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="styleclip_core.ops"):
        assert cuda_plugin.available() is False
        assert cuda_plugin.available() is False  # remembered, not retried or logged again
    assert cuda_plugin.failure_reason()
    assert len([r for r in caplog.records if r.name == "styleclip_core.ops"]) == 1


def test_failed_build_is_reported_not_raised(fresh_plugin, monkeypatch, caplog, tmp_path):
    # Pretend there is a GPU but no CUDA toolkit: available() must say no and explain why.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0")
    monkeypatch.setenv(cuda_plugin.CACHE_ENV, str(tmp_path))

    def no_toolkit(_):
        raise RuntimeError("no CUDA toolkit found (nvcc)")

    monkeypatch.setattr(cuda_plugin, "_locate_cuda_home", no_toolkit)
    with caplog.at_level(logging.INFO, logger="styleclip_core.ops"):
        assert cuda_plugin.available() is False
    assert "no CUDA toolkit" in cuda_plugin.failure_reason()
    messages = [r.getMessage() for r in caplog.records if r.name == "styleclip_core.ops"]
    assert len(messages) == 2 and "building" in messages[0] and "failed" in messages[1]


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_self_check_passes_on_the_gpu(dtype):
    """The plugin's first-use self-check (ops/self_check.py) passes for every op in every dtype
    on this GPU, so backend 'auto' keeps the plugin; the loader's report says so."""
    from styleclip_core.ops import cuda_plugin, self_check

    if not cuda_plugin.available():
        pytest.skip(f"the CUDA plugin is unavailable: {cuda_plugin.failure_reason()}")
    for op in self_check.OPS:
        assert self_check.passed(op, dtype, "cuda"), self_check.results()[(op, dtype, "cuda")][1]
    assert "passed" in backend.describe("auto", "cuda", (dtype,))


# ------------------------------------------------------------------ StyleGAN3's filtered_lrelu


@needs_gpu
def test_filtered_lrelu_cuda_matches_the_fixture_and_the_reference(parity):
    """filtered_lrelu's CUDA path (the plugin's upfirdn2d and bias + leaky ReLU kernels) on the
    nine fixtures/sg3_ops cases, forward and gradients, against NVIDIA's outputs and against the
    reference path on the same GPU (float32: the fixture's atol 1e-5 + rtol 1e-5)."""
    from styleclip_core.ops import cuda_plugin
    from styleclip_core.ops.filtered_lrelu import filtered_lrelu

    if not cuda_plugin.available():
        pytest.skip(f"the CUDA plugin is unavailable: {cuda_plugin.failure_reason()}")
    tensors, meta = load_fixture("sg3_ops")
    for c in meta["cases"]:
        results = {}
        for impl in ("cuda", "reference"):
            get = lambda key: tensors[c[key]].cuda() if c[key] else None  # noqa: E731
            x = tensors[c["x"]].cuda().requires_grad_(True)
            b = get("b")
            if b is not None:
                b.requires_grad_(True)
            y = filtered_lrelu(x, get("fu"), get("fd"), b, c["up"], c["down"], c["padding_x0_x1_y0_y1"], c["gain"], c["slope"], c["clamp"], c["flip_filter"], impl=impl)
            (y * tensors[f"in.{c['name']}.grad_weight"].cuda()).sum().backward()
            results[impl] = (y.detach(), x.grad, None if b is None else b.grad)
        for what, ours, ref, nvidia in zip(("y", "grad_x", "grad_b"), results["cuda"], results["reference"], (f"out.{c['name']}.{k}" for k in ("y", "grad_x", "grad_b"))):
            if ours is None:
                continue
            parity.close(f"sg3_ops:cuda {c['name']}.{what}", ours.cpu(), tensors[nvidia], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5, msg=f"{c['name']} {what}: cuda vs reference")


@needs_gpu
def test_stylegan3_generator_cuda_matches_the_cpu():
    """The tiny StyleGAN3 stand-ins (T and R) render the same image on the GPU (ops 'auto', the
    plugin when it builds) as on the CPU (fixture tolerance atol 1e-4 + rtol 1e-4)."""
    from styleclip_core.formats.tiny_models import tiny_stylegan3

    for config in ("t", "r"):
        g = tiny_stylegan3(config)
        z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            cpu = g(g.mapping(z))
            gpu = g.copy().to("cuda")
            out = gpu(gpu.mapping(z.cuda())).cpu()
        torch.testing.assert_close(out, cpu, atol=1e-4, rtol=1e-4, msg=config)
