"""The CUDA plugin of the StyleGAN2 ops and StyleGAN3's fused filtered_lrelu against the PyTorch reference.

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
from styleclip_core.ops.filtered_lrelu import filtered_lrelu, filtered_lrelu_composition, filtered_lrelu_reference
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

    @staticmethod
    def filtered_lrelu(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip_filter):
        return filtered_lrelu_reference(x, fu, fd, b, up, down, (px0, px1, py0, py1), gain, slope, clamp, flip_filter)


HOST_SOURCE = r"""
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>
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
// Mirrors filtered_lrelu_cuda: the same params, the same choice between the tiled and the
// per-output-sample kernel (mode 0; 1 forces per-sample, 2 tiles), loops for blocks and threads.
static at::Tensor filtered_lrelu_host(const at::Tensor& x_in, const std::optional<at::Tensor>& fu_in,
                                      const std::optional<at::Tensor>& fd_in, const std::optional<at::Tensor>& b_in,
                                      int64_t up, int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                                      int64_t pad_y1, double gain, double slope, std::optional<double> clamp,
                                      bool flip_filter, int mode) {
    const at::Tensor x = x_in.contiguous();
    const bool has_fu = fu_in.has_value() && fu_in->defined(), has_fd = fd_in.has_value() && fd_in->defined();
    const bool has_b = b_in.has_value() && b_in->defined();
    const int fu_h = has_fu ? int(fu_in->size(0)) : 1, fu_w = has_fu ? int(fu_in->size(-1)) : 1;
    const int fd_h = has_fd ? int(fd_in->size(0)) : 1, fd_w = has_fd ? int(fd_in->size(-1)) : 1;
    FilteredLreluParams p;
    TORCH_CHECK(make_filtered_lrelu_params(p, x.size(0) * x.size(1), x.size(1), int(x.size(2)), int(x.size(3)), fu_h,
                                           fu_w, has_fu && fu_in->dim() == 2, fd_h, fd_w, has_fd && fd_in->dim() == 2,
                                           int(up), int(down), int(pad_x0), int(pad_x1), int(pad_y0), int(pad_y1),
                                           gain, slope, clamp.has_value(), clamp.value_or(0.0), flip_filter),
                "filtered_lrelu: empty output");
    at::Tensor y = at::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "filtered_lrelu_host", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
        const at::Tensor fu = has_fu ? fu_in->to(acc_dtype).contiguous() : at::Tensor();
        const at::Tensor fd = has_fd ? fd_in->to(acc_dtype).contiguous() : at::Tensor();
        const at::Tensor b = has_b ? b_in->to(x.scalar_type()).to(acc_dtype).contiguous() : at::Tensor();
        const acc_t* fu_p = has_fu ? fu.const_data_ptr<acc_t>() : nullptr;
        const acc_t* fd_p = has_fd ? fd.const_data_ptr<acc_t>() : nullptr;
        const acc_t* b_p = has_b ? b.const_data_ptr<acc_t>() : nullptr;
        const bool tiled = mode == 2 || (mode == 0 && filtered_lrelu_tile_bytes(p, sizeof(acc_t)) <= kFlMaxSharedBytes);
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        scalar_t* yp = y.mutable_data_ptr<scalar_t>();
        const int64_t cap = filtered_lrelu_tile_bytes(p, sizeof(acc_t)) / int64_t(sizeof(acc_t));
        std::vector<acc_t> buf(size_t(tiled ? cap : 0));
        for (int64_t c = 0; c < p.planes; ++c) {
            const scalar_t* plane = xp + c * p.in_h * p.in_w;
            scalar_t* out = yp + c * p.out_h * p.out_w;
            const acc_t bv = b_p ? b_p[c % p.channels] : acc_t(0);
            if (!tiled) {
                for (int oy = 0; oy < p.out_h; ++oy)
                    for (int ox = 0; ox < p.out_w; ++ox)
                        out[oy * p.out_w + ox] = static_cast<scalar_t>(filtered_lrelu_pixel(p, plane, fu_p, fd_p, bv, oy, ox));
                continue;
            }
            const int tiles_y = (p.out_h + kFlTileH - 1) / kFlTileH, tiles_x = (p.out_w + kFlTileW - 1) / kFlTileW;
            for (int tile_y = 0; tile_y < tiles_y; ++tile_y)
                for (int tile_x = 0; tile_x < tiles_x; ++tile_x) {
                    const FilteredLreluTileGeom g = filtered_lrelu_tile(p, tile_y, tile_x);
                    const int n = g.th * g.tw;
                    TORCH_CHECK(n > 0 && n <= cap, "tile of ", g.th, "x", g.tw, " beyond the buffer's ", cap);
                    std::fill(buf.begin(), buf.end(), acc_t(NAN));  // stale entries would show
                    for (int i = 0; i < n; ++i) buf[i] = filtered_lrelu_tile_entry(p, g, plane, fu_p, bv, i);
                    for (int ry = 0; ry < kFlTileH; ++ry)
                        for (int rx = 0; rx < kFlTileW; ++rx) {
                            const int oy = g.oy0 + ry, ox = g.ox0 + rx;
                            if (oy < p.out_h && ox < p.out_w)
                                out[oy * p.out_w + ox] = static_cast<scalar_t>(filtered_lrelu_tile_pixel(p, g, buf.data(), fd_p, oy, ox));
                        }
                }
        }
    });
    return y;
}

at::Tensor filtered_lrelu(const at::Tensor& x, const std::optional<at::Tensor>& fu, const std::optional<at::Tensor>& fd,
                          const std::optional<at::Tensor>& b, int64_t up, int64_t down, int64_t pad_x0, int64_t pad_x1,
                          int64_t pad_y0, int64_t pad_y1, double gain, double slope, std::optional<double> clamp,
                          bool flip_filter) {
    return filtered_lrelu_host(x, fu, fd, b, up, down, pad_x0, pad_x1, pad_y0, pad_y1, gain, slope, clamp, flip_filter, 0);
}

at::Tensor filtered_lrelu_forced(const at::Tensor& x, const std::optional<at::Tensor>& fu,
                                 const std::optional<at::Tensor>& fd, const std::optional<at::Tensor>& b, int64_t up,
                                 int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1,
                                 double gain, double slope, std::optional<double> clamp, bool flip_filter, bool tiled) {
    return filtered_lrelu_host(x, fu, fd, b, up, down, pad_x0, pad_x1, pad_y0, pad_y1, gain, slope, clamp, flip_filter,
                               tiled ? 2 : 1);
}

// Whether filtered_lrelu_cuda takes the tiled kernel for these down-filter settings.
bool filtered_lrelu_tiled(int64_t down, int64_t fd_h, int64_t fd_w, int64_t acc_bytes) {
    FilteredLreluParams p{};
    p.down = int(down); p.fd_h = int(fd_h); p.fd_w = int(fd_w);
    return filtered_lrelu_tile_bytes(p, acc_bytes) <= kFlMaxSharedBytes;
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
        functions=["upfirdn2d", "upfirdn2d_specialised", "fused_leaky_relu", "fused_leaky_relu_grad",
                   "filtered_lrelu", "filtered_lrelu_forced", "filtered_lrelu_tiled"],
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

    def filtered_lrelu(self, x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
        if self.public:
            return filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl="cuda")
        return cuda_plugin.filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)


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


# ------------------------------------------------------------ filtered_lrelu (StyleGAN3, fused)


def _compare_filtered_lrelu(impl, x, fu, fd, b, cfg, tol=TOL, grad_weight=None):
    """Forward and x / b gradients of the fused op against the reference on the same inputs.
    ``cfg`` = (up, down, padding, gain, slope, clamp, flip_filter). float32: both against
    ``filtered_lrelu_reference``. float16 / bfloat16: the forward against a float64 reference; the
    gradients, which are by definition the composition's (the backward recomputes it), against
    the composition in the same dtype on the stages the plugin's backward uses (a float64
    reference would disagree wherever rounding moves a sample across the leaky ReLU's or the
    clamp's kink). Returns the output."""
    low = x.dtype in LOW_TOL
    ref_dtype = torch.float64 if low else x.dtype

    def filt(f, dtype):
        return None if f is None else f.to(impl.device, dtype)

    def leaf(t, dtype=None):
        return None if t is None else t.detach().to(dtype or t.dtype).clone().requires_grad_()

    x_imp, b_imp = leaf(x), leaf(b)
    y = impl.filtered_lrelu(x_imp, filt(fu, torch.float32), filt(fd, torch.float32), b_imp, *cfg)
    with torch.no_grad():
        y_ref = filtered_lrelu_reference(x.to(ref_dtype), filt(fu, ref_dtype), filt(fd, ref_dtype), None if b is None else b.to(ref_dtype), *cfg)
    assert y.dtype == x.dtype and y.shape == y_ref.shape, (y.shape, y_ref.shape)
    scale = max(1.0, float(y_ref.abs().max()))
    torch.testing.assert_close(y.detach().to(ref_dtype), y_ref, atol=tol["atol"] * scale, rtol=tol["rtol"])

    x_ref, b_ref = leaf(x), leaf(b)
    if low:
        y_grad_ref = filtered_lrelu_composition(x_ref, filt(fu, torch.float32), filt(fd, torch.float32), b_ref, *cfg,
                                                impl="cuda" if impl.public else "auto")
    else:
        y_grad_ref = filtered_lrelu_reference(x_ref, filt(fu, x.dtype), filt(fd, x.dtype), b_ref, *cfg)
    g = torch.randn(y.shape, device=x.device, dtype=x.dtype) if grad_weight is None else grad_weight.to(x.device, x.dtype)
    y_grad_ref.backward(g)
    y.backward(g)
    for name, ours, ref in (("x", x_imp, x_ref), ("b", b_imp, b_ref)):
        if ours is None:
            continue
        assert ours.grad.dtype == ours.dtype
        gscale = max(1.0, float(ref.grad.abs().max())) if low else 1.0  # relative to the largest, as the self-check
        torch.testing.assert_close(ours.grad, ref.grad, atol=tol["atol"] * gscale, rtol=tol["rtol"], msg=lambda m, name=name: f"grad {name}: {m}")
    return y


def _sg3_fixture_cases():
    tensors, meta = load_fixture("sg3_ops")
    for c in meta["cases"]:
        def get(key, c=c):
            return tensors[c[key]] if c[key] else None

        cfg = (c["up"], c["down"], tuple(c["padding_x0_x1_y0_y1"]), c["gain"], c["slope"], c["clamp"], c["flip_filter"])
        yield c, tensors, tensors[c["x"]], get("fu"), get("fd"), get("b"), cfg


def test_filtered_lrelu_fixtures(impl, parity):
    """The nine fixtures/sg3_ops cases (NVIDIA's outputs; the T and R layers, ToRGB with an active
    clamp, asymmetric 1-D and 2-D filters with both flips, no bias with cropping pads): the fused
    forward and the gradients against the reference on the same device, the forward against
    NVIDIA's (the fixture's atol 1e-5 + rtol 1e-5)."""
    for c, tensors, x, fu, fd, b, cfg in _sg3_fixture_cases():
        d = impl.device
        y = _compare_filtered_lrelu(impl, x.to(d), fu, fd, None if b is None else b.to(d), cfg,
                                    grad_weight=tensors[f"in.{c['name']}.grad_weight"])
        assert list(y.shape) == c["out_shape"]
        parity.close(f"sg3_ops:fused {c['name']}.y [{impl.name}]", y.detach().cpu(), tensors[f"out.{c['name']}.y"], atol=1e-5, rtol=1e-5)


def _random_filter(rng, gen):
    """A random filter: None, 1-D or 2-D, odd or even lengths (1 to 8 taps per axis)."""
    kind = rng.choice(["none", "1d", "1d", "2d", "2d"])
    if kind == "none":
        return None, (1, 1)
    if kind == "1d":
        n = rng.randint(1, 8)
        return torch.randn(n, generator=gen), (n, n)
    h, w = rng.randint(1, 6), rng.randint(1, 6)
    return torch.randn(h, w, generator=gen), (h, w)


def _random_filtered_lrelu_cases(n, seed):
    """(shape, fu, fd, has bias, cfg) with random sizes, up / down in {1, 2, 4}, 1-D and 2-D filters
    of odd and even lengths, both flips, positive and negative pads, clamp on and off; only cases
    whose output is not empty (the reference's domain)."""
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    cases = []
    while len(cases) < n:
        h, w = rng.randint(1, 12), rng.randint(1, 12)
        up, down = rng.choice([1, 2, 4]), rng.choice([1, 2, 4])
        fu, (fu_h, fu_w) = _random_filter(rng, gen)
        fd, (fd_h, fd_w) = _random_filter(rng, gen)
        pad = tuple(rng.randint(-3, 9) for _ in range(4))
        tmp_h = h * up + pad[2] + pad[3] - (fu_h - 1)
        tmp_w = w * up + pad[0] + pad[1] - (fu_w - 1)
        if tmp_h < fd_h or tmp_w < fd_w:
            continue
        slope = rng.choice([0.2, 0.2, 1.0, -0.3, 0.0])
        gain = rng.choice([math.sqrt(2), 1.0, 0.7])
        clamp = rng.choice([None, None, 0.5, 2.0])
        cfg = (up, down, pad, gain, slope, clamp, rng.random() < 0.5)
        cases.append(((rng.randint(1, 2), rng.randint(1, 3), h, w), fu, fd, rng.random() < 0.75, cfg))
    return cases


# Long down filters with down 4: the tiled kernel's shared buffer would pass 48 KiB, so the
# per-output-sample kernel runs (with float32: (15 * 4 + 64)^2 * 4 bytes).
LONG_DOWN_CASES = [
    ((1, 2, 20, 18), 6, 64, (4, 4, (3, 2, 4, 1), math.sqrt(2), 0.2, 1.0, False)),
    ((1, 2, 20, 18), 4, (60, 56), (4, 4, (2, 2, -1, 3), 1.0, 0.2, None, True)),
]


def _long_down_case(case, gen):
    shape, fu_len, fd_shape, cfg = case
    fd = torch.randn(fd_shape if isinstance(fd_shape, tuple) else (fd_shape,), generator=gen)
    return shape, torch.randn(fu_len, generator=gen), fd / fd.abs().sum(), cfg


def test_filtered_lrelu_random(impl):
    torch.manual_seed(11)
    gen = torch.Generator().manual_seed(12)
    cases = _random_filtered_lrelu_cases(80, seed=13) + [(*_long_down_case(c, gen)[:3], True, c[3]) for c in LONG_DOWN_CASES]
    for i, (shape, fu, fd, has_b, cfg) in enumerate(cases):
        if i % 4 == 0:  # channels-last storage: the plugin must not assume contiguity
            x = torch.randn(shape[0], shape[2], shape[3], shape[1], device=impl.device).permute(0, 3, 1, 2)
        else:
            x = torch.randn(shape, device=impl.device)
        b = torch.randn(shape[1], device=impl.device) if has_b else None
        _compare_filtered_lrelu(impl, x, fu, fd, b, cfg)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_filtered_lrelu_low_precision(impl, dtype):
    """float16 / bfloat16 inputs (float32 filters and bias, as in the network) against a float64
    reference: the StyleGAN3 layer settings and random cases with normalised filters."""
    torch.manual_seed(14)
    for c, tensors, x, fu, fd, b, cfg in _sg3_fixture_cases():
        if c["name"] == "torgb":
            continue  # values up to 256: a float16 ulp there is 0.25
        d = impl.device
        _compare_filtered_lrelu(impl, x.to(d, dtype), fu, fd, b.to(d) if b is not None else None, cfg, LOW_TOL[dtype])
    for shape, fu, fd, has_b, cfg in _random_filtered_lrelu_cases(12, seed=15):
        fu = None if fu is None else fu / fu.abs().sum()
        fd = None if fd is None else fd / fd.abs().sum()
        x = torch.randn(shape, device=impl.device).to(dtype)
        b = torch.randn(shape[1], device=impl.device) if has_b else None
        _compare_filtered_lrelu(impl, x, fu, fd, b, cfg, LOW_TOL[dtype])


def test_filtered_lrelu_gradcheck_and_double_backward(impl):
    """The fused forward and the recomputed backward are one function (float64 finite
    differences), and the gradient is itself differentiable (create_graph)."""
    torch.manual_seed(16)
    opts = dict(device=impl.device, dtype=torch.float64)
    fu, fd = torch.randn(4, **opts), torch.randn(3, 2, **opts)
    b = torch.randn(2, **opts, requires_grad=True)
    x = torch.randn(1, 2, 5, 4, **opts, requires_grad=True)
    for cfg in [(2, 2, (2, 1, 1, 3), math.sqrt(2), 0.2, None, False), (1, 2, (-1, 2, 0, 1), 1.3, 0.05, 50.0, True)]:
        def fn(t, bias):
            return impl.filtered_lrelu(t, fu, fd, bias, *cfg)

        # Away from the leaky ReLU's kink, which finite differences must not straddle.
        assert torch.autograd.gradcheck(fn, (x, b), eps=1e-6, atol=1e-6)
        assert torch.autograd.gradgradcheck(fn, (x, b), eps=1e-6, atol=1e-6)


def test_filtered_lrelu_saves_only_its_inputs(impl):
    """The forward keeps the inputs for the backward, never the upsampled intermediate."""
    x = torch.randn(2, 3, 12, 12, device=impl.device, requires_grad=True)
    b = torch.randn(3, device=impl.device, requires_grad=True)
    fu, fd = torch.rand(12, device=impl.device), torch.rand(12, device=impl.device)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = impl.filtered_lrelu(x, fu, fd, b, 2, 2, (9, 8, 9, 8), math.sqrt(2), 0.2, 256.0, False)
    assert y.shape == (2, 3, 10, 10)
    assert len(saved) <= 4 and {t.numel() for t in saved} <= {x.numel(), b.numel(), 12}


def test_filtered_lrelu_host_tiled_and_per_sample_paths(host_kernels):
    """Both CUDA kernels' index arithmetic, on the host: the tiled one (shared buffer, each
    intermediate sample once) and the per-output-sample one, forced, against the reference; and
    which one the network's layers and the long down filters get."""
    gen = torch.Generator().manual_seed(17)
    cases = _random_filtered_lrelu_cases(40, seed=18)
    cases += [(*_long_down_case(c, gen)[:3], True, c[3]) for c in LONG_DOWN_CASES]
    # Several tiles per axis, edge tiles cut short.
    cases.append(((1, 2, 23, 37), torch.rand(12, generator=gen), torch.rand(12, generator=gen), True,
                  (2, 2, (9, 8, 9, 8), math.sqrt(2), 0.2, 256.0, False)))
    for shape, fu, fd, has_b, (up, down, pad, gain, slope, clamp, flip) in cases:
        x = torch.randn(shape, generator=gen)
        b = torch.randn(shape[1], generator=gen) if has_b else None
        ref = filtered_lrelu_reference(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip)
        for tiled in (False, True):
            y = host_kernels.filtered_lrelu_forced(x, fu, fd, b, up, down, *pad, gain, slope, clamp, flip, tiled)
            scale = max(1.0, float(ref.abs().max()))
            torch.testing.assert_close(y, ref, atol=1e-5 * scale, rtol=1e-5, msg=f"tiled={tiled} {shape} {pad}")
    for taps, down in [((12, 12), 2), ((12, 12), 4), ((24, 24), 2), ((1, 1), 1)]:  # T and R layers, ToRGB
        for acc_bytes in (4, 8):
            assert host_kernels.filtered_lrelu_tiled(down, *taps, acc_bytes)
    assert not host_kernels.filtered_lrelu_tiled(4, 64, 64, 4)
    assert not host_kernels.filtered_lrelu_tiled(4, 60, 56, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_filtered_lrelu_self_check_passes_with_the_host_kernel(host_kernels, monkeypatch, dtype):
    """The plugin's first-use self-check for filtered_lrelu (ops/self_check.py, the StyleGAN3 layer
    settings), run on the CPU with the host-compiled fused math as the plugin: what the GPU's check
    will compare, up to the device's summation order."""
    from styleclip_core.ops import self_check

    monkeypatch.setattr(cuda_plugin, "_plugin", host_kernels)
    monkeypatch.setattr(cuda_plugin, "_tried", True)
    monkeypatch.setattr(cuda_plugin, "_failure", None)
    ok, summary = self_check.compare("filtered_lrelu", *self_check._paths("filtered_lrelu"), "cpu", dtype)
    assert ok, summary


def test_filtered_lrelu_public_function_takes_the_fused_plugin(host_kernels, monkeypatch):
    """The public function runs the fused plugin when ``backend.use_cuda`` says so (faked here on
    the CPU, the host-compiled kernel standing in), and the composition when the filters need a
    gradient (the plugin treats them as constants)."""
    monkeypatch.setattr(cuda_plugin, "_plugin", host_kernels)
    monkeypatch.setattr(cuda_plugin, "_tried", True)
    monkeypatch.setattr(cuda_plugin, "_failure", None)
    monkeypatch.setattr(backend, "decide", lambda impl, device: (impl != "reference", "cuda (faked)"))
    from styleclip_core.ops import self_check

    monkeypatch.setattr(self_check, "passed", lambda op, dtype, device: True)  # tested on its own above
    calls = []
    real = host_kernels.filtered_lrelu

    class Spy:
        def __getattr__(self, name):
            return getattr(host_kernels, name)

        @staticmethod
        def filtered_lrelu(*args):
            calls.append(args[4:6])
            return real(*args)

    monkeypatch.setattr(cuda_plugin, "_plugin", Spy())
    x = torch.randn(1, 3, 12, 12, requires_grad=True)
    fu, fd, b = torch.rand(12), torch.rand(12, 12), torch.randn(3)
    args = (2, 2, (9, 8, 9, 8), math.sqrt(2), 0.2, None, False)
    y = filtered_lrelu(x, fu, fd, b, *args, impl="cuda")
    assert calls == [(2, 2)]
    torch.testing.assert_close(y, filtered_lrelu_reference(x, fu, fd, b, *args), atol=1e-5, rtol=1e-5)
    y.sum().backward()
    filtered_lrelu(x, fu.requires_grad_(), fd, b, *args, impl="cuda")
    assert len(calls) == 1  # a filter that wants a gradient: the composition
    filtered_lrelu(x, fu.detach(), fd, b, *args, impl="reference")
    assert len(calls) == 1


# ----------------------------------------------------------------------- compile check


@pytest.mark.skipif(_nvcc() is None, reason="needs nvcc (CUDA toolkit)")
def test_plugin_compiles(tmp_path, monkeypatch):
    monkeypatch.setenv(cuda_plugin.CACHE_ENV, str(tmp_path))
    module = cuda_plugin.build()
    assert "filtered_lrelu.cu" in cuda_plugin._SOURCES
    for name in ("upfirdn2d", "fused_leaky_relu", "fused_leaky_relu_grad", "filtered_lrelu"):
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
    """filtered_lrelu's CUDA path (the fused forward kernel; the backward through the plugin's
    upfirdn2d and bias + leaky ReLU kernels) on the nine fixtures/sg3_ops cases, forward and
    gradients, against NVIDIA's outputs and against the reference path on the same GPU (float32:
    the fixture's atol 1e-5 + rtol 1e-5)."""
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
def test_filtered_lrelu_fused_forward_never_stores_the_intermediate():
    """A T layer's filtered_lrelu on the GPU without autograd: the fused forward allocates its
    output and nothing of the size of the 2x-upsampled intermediate (4x the output), which the
    composition writes to memory."""
    from styleclip_core.ops import cuda_plugin

    if not cuda_plugin.available():
        pytest.skip(f"the CUDA plugin is unavailable: {cuda_plugin.failure_reason()}")
    x = torch.randn(2, 64, 132, 132, device="cuda")
    fu, fd, b = torch.rand(12, device="cuda"), torch.rand(12, device="cuda"), torch.randn(64, device="cuda")
    args = (2, 2, (9, 8, 9, 8), math.sqrt(2), 0.2, 256.0, False)
    peaks = {}
    for impl in ("cuda", "reference"):
        with torch.no_grad():
            filtered_lrelu(x, fu, fd, b, *args, impl=impl)  # first use: the build and the self-check
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            y = filtered_lrelu(x, fu, fd, b, *args, impl=impl)
            torch.cuda.synchronize()
            peaks[impl] = torch.cuda.max_memory_allocated() - base
    out_bytes = y.numel() * y.element_size()
    assert peaks["cuda"] <= 1.5 * out_bytes, peaks
    assert peaks["reference"] >= 3 * out_bytes, peaks


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
