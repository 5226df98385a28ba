// upfirdn2d: one thread per output pixel, looping only over the taps that meet real
// (not zero-inserted, not padded) input samples.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
// Not ATen/cuda/CUDAContext.h: it pulls in cuBLAS/cuSPARSE headers that minimal toolkits lack.
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "kernels.cuh"

namespace styleclip_ops {
namespace {

constexpr int kBlockX = 32;  // a warp along a row keeps the loads and stores coalesced
constexpr int kBlockY = 8;
constexpr int kMaxGridYZ = 65535;

template <typename V, typename scalar_t, typename acc_t>
__global__ void upfirdn2d_kernel(Upfirdn2dParams p, const scalar_t* __restrict__ x,
                                 const acc_t* __restrict__ kernel, scalar_t* __restrict__ y) {
    const int ox = blockIdx.x * blockDim.x + threadIdx.x;
    if (ox >= p.out_w) return;
    const int64_t in_plane = int64_t(p.in_h) * p.in_w, out_plane = int64_t(p.out_h) * p.out_w;
    // Grid-stride over rows and planes: gridDim.y/z are capped at 65535.
    for (int64_t c = blockIdx.z; c < p.planes; c += gridDim.z) {
        for (int oy = blockIdx.y * blockDim.y + threadIdx.y; oy < p.out_h; oy += blockDim.y * gridDim.y) {
            const acc_t v = upfirdn2d_pixel<V>(p, x + c * in_plane, kernel, oy, ox);
            y[c * out_plane + int64_t(oy) * p.out_w + ox] = static_cast<scalar_t>(v);
        }
    }
}

}  // namespace

at::Tensor upfirdn2d_cuda(const at::Tensor& x_in, const at::Tensor& kernel_in, int64_t up_x, int64_t up_y,
                          int64_t down_x, int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                          int64_t pad_y1) {
    TORCH_CHECK(x_in.is_cuda(), "upfirdn2d: x must be a CUDA tensor, got ", x_in.device());
    TORCH_CHECK(x_in.dim() == 4, "upfirdn2d: x must be [N, C, H, W], got ", x_in.sizes());
    TORCH_CHECK(kernel_in.dim() == 2 && kernel_in.numel() > 0, "upfirdn2d: kernel must be a non-empty [kh, kw] tensor, got ",
                kernel_in.sizes());
    TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "upfirdn2d: up and down must be >= 1");
    TORCH_CHECK(x_in.size(2) * up_y < (int64_t(1) << 30) && x_in.size(3) * up_x < (int64_t(1) << 30),
                "upfirdn2d: the upsampled plane is too large");
    for (int64_t v : {pad_x0, pad_x1, pad_y0, pad_y1})
        TORCH_CHECK(v > -(int64_t(1) << 30) && v < (int64_t(1) << 30), "upfirdn2d: pad out of range");

    const c10::cuda::CUDAGuard device_guard(x_in.device());
    const at::Tensor x = x_in.contiguous();

    Upfirdn2dParams p;
    const bool ok = make_upfirdn2d_params(p, x.size(0) * x.size(1), int(x.size(2)), int(x.size(3)),
                                          int(kernel_in.size(0)), int(kernel_in.size(1)), int(up_x), int(up_y),
                                          int(down_x), int(down_y), int(pad_x0), int(pad_x1), int(pad_y0),
                                          int(pad_y1));
    TORCH_CHECK(ok, "upfirdn2d: the padded input (", x.size(2), "x", x.size(3), " upsampled by ", up_y, "x", up_x,
                ", pads ", pad_x0, ",", pad_x1, ",", pad_y0, ",", pad_y1, ") is smaller than the kernel ",
                kernel_in.sizes());

    at::Tensor y = at::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
    if (y.numel() == 0) return y;

    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        // Taps stay in the accumulation type: rounding them to half would cost accuracy for nothing.
        const at::Tensor k = kernel_in.to(x.device(), c10::CppTypeToScalarType<acc_t>::value).contiguous();
        const dim3 block(kBlockX, kBlockY);
        const dim3 grid(unsigned((p.out_w + kBlockX - 1) / kBlockX),
                        unsigned(std::min<int64_t>((p.out_h + kBlockY - 1) / kBlockY, kMaxGridYZ)),
                        unsigned(std::min<int64_t>(p.planes, kMaxGridYZ)));
        const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
        with_upfirdn2d_variant(p, [&](auto variant) {
            using V = decltype(variant);
            upfirdn2d_kernel<V, scalar_t, acc_t><<<grid, block, 0, stream>>>(
                p, x.const_data_ptr<scalar_t>(), k.const_data_ptr<acc_t>(), y.mutable_data_ptr<scalar_t>());
            C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    });
    return y;
}

}  // namespace styleclip_ops
