// Fused bias + leaky ReLU + gain, and its gradient with respect to the input.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
// Not ATen/cuda/CUDAContext.h: it pulls in cuBLAS/cuSPARSE headers that minimal toolkits lack.
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "kernels.cuh"

namespace styleclip_ops {
namespace {

constexpr int kThreads = 256;

constexpr int64_t kMaxBlocks = int64_t(1) << 16;  // fills any current GPU; kernels grid-stride over the rest

unsigned grid_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)); }

// 32-bit indices whenever they fit: the bias lookup divides by the inner size, and 64-bit
// integer division is several times slower on the GPU. The margin keeps i + stride from
// overflowing in the last grid-stride step.
template <typename F>
void with_index_type(int64_t n, F&& f) {
    if (n <= std::numeric_limits<int32_t>::max() - kMaxBlocks * kThreads) return f(int32_t(0));
    return f(int64_t(0));
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void bias_act_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ bias,
                                scalar_t* __restrict__ y, index_t n, index_t bias_len, index_t bias_stride,
                                acc_t slope, acc_t scale) {
    const index_t step = index_t(blockDim.x) * gridDim.x;
    for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        acc_t v = static_cast<acc_t>(x[i]);
        if (bias != nullptr) v += static_cast<acc_t>(bias[bias_index(i, bias_len, bias_stride)]);
        y[i] = static_cast<scalar_t>(leaky_relu_scaled(v, slope, scale));
    }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void bias_act_grad_kernel(const scalar_t* __restrict__ g, const scalar_t* __restrict__ ref,
                                     scalar_t* __restrict__ dx, index_t n, acc_t ref_sign, acc_t slope,
                                     acc_t scale) {
    const index_t step = index_t(blockDim.x) * gridDim.x;
    for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const acc_t v = leaky_relu_scaled_grad(static_cast<acc_t>(g[i]), static_cast<acc_t>(ref[i]), ref_sign,
                                               slope, scale);
        dx[i] = static_cast<scalar_t>(v);
    }
}

}  // namespace

at::Tensor fused_leaky_relu_cuda(const at::Tensor& x_in, const std::optional<at::Tensor>& bias_in, int64_t bias_dim,
                                 double slope, double scale) {
    TORCH_CHECK(x_in.is_cuda(), "fused_leaky_relu: x must be a CUDA tensor, got ", x_in.device());
    TORCH_CHECK(x_in.dim() >= 1, "fused_leaky_relu: x must have at least one dimension");
    const c10::cuda::CUDAGuard device_guard(x_in.device());
    const at::Tensor x = x_in.contiguous();

    at::Tensor bias;
    int64_t bias_len = 1, bias_stride = 1;
    if (bias_in.has_value() && bias_in->defined()) {
        const int64_t dim = c10::maybe_wrap_dim(bias_dim, x.dim());
        bias_layout(x.sizes().data(), x.dim(), dim, bias_len, bias_stride);
        TORCH_CHECK(bias_in->dim() == 1 && bias_in->numel() == bias_len, "fused_leaky_relu: bias must be [",
                    bias_len, "] to match dim ", bias_dim, " of x ", x.sizes(), ", got ", bias_in->sizes());
        TORCH_CHECK(bias_in->device() == x.device(), "fused_leaky_relu: bias is on ", bias_in->device(),
                    " but x is on ", x.device());
        bias = bias_in->to(x.scalar_type()).contiguous();
    }

    at::Tensor y = at::empty_like(x);
    const int64_t n = x.numel();
    if (n == 0) return y;
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fused_leaky_relu_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* b = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
        with_index_type(n, [&](auto index) {
            using index_t = decltype(index);
            bias_act_kernel<scalar_t, acc_t, index_t><<<grid_for(n), kThreads, 0, stream>>>(
                x.const_data_ptr<scalar_t>(), b, y.mutable_data_ptr<scalar_t>(), index_t(n), index_t(bias_len),
                index_t(bias_stride), acc_t(slope), acc_t(scale));
            C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    });
    return y;
}

at::Tensor fused_leaky_relu_grad_cuda(const at::Tensor& grad_in, const at::Tensor& ref_in, double ref_sign,
                                      double slope, double scale) {
    TORCH_CHECK(grad_in.is_cuda() && ref_in.device() == grad_in.device(),
                "fused_leaky_relu_grad: grad and ref must be on the same CUDA device, got ", grad_in.device(), " and ",
                ref_in.device());
    TORCH_CHECK(grad_in.sizes() == ref_in.sizes(), "fused_leaky_relu_grad: grad ", grad_in.sizes(),
                " and ref ", ref_in.sizes(), " differ in shape");
    const c10::cuda::CUDAGuard device_guard(grad_in.device());
    const at::Tensor g = grad_in.contiguous();
    const at::Tensor ref = ref_in.to(g.scalar_type()).contiguous();

    at::Tensor dx = at::empty_like(g);
    const int64_t n = g.numel();
    if (n == 0) return dx;
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "fused_leaky_relu_grad_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        with_index_type(n, [&](auto index) {
            using index_t = decltype(index);
            bias_act_grad_kernel<scalar_t, acc_t, index_t><<<grid_for(n), kThreads, 0, stream>>>(
                g.const_data_ptr<scalar_t>(), ref.const_data_ptr<scalar_t>(), dx.mutable_data_ptr<scalar_t>(),
                index_t(n), acc_t(ref_sign), acc_t(slope), acc_t(scale));
            C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    });
    return dx;
}

}  // namespace styleclip_ops
