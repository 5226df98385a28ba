// StyleGAN3's filtered_lrelu, forward only, fused: bias, zero-insertion upsample, pad/crop, up
// filter, leaky ReLU x gain, clamp, down filter and decimation in one kernel, so the
// upsampled intermediate never goes to global memory. The math per sample is kernels.cuh's.
//
// The tiled kernel gives each block a kFlTileH x kFlTileW tile of output samples: its threads
// first compute, once each, the activated intermediate samples the tile reads into shared
// memory, then every thread sums the down filter for one output sample from there. When that
// buffer would not fit in shared memory (very long down filters), a per-output-sample kernel
// recomputes the intermediate where it is read instead (same math, more arithmetic).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
// Not ATen/cuda/CUDAContext.h: it pulls in cuBLAS/cuSPARSE headers that minimal toolkits lack.
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <optional>

#include "kernels.cuh"

namespace styleclip_ops {
namespace {

constexpr int kMaxGridYZ = 65535;

template <typename scalar_t, typename acc_t>
__global__ void filtered_lrelu_tiled_kernel(FilteredLreluParams p, const scalar_t* __restrict__ x,
                                            const acc_t* __restrict__ fu, const acc_t* __restrict__ fd,
                                            const acc_t* __restrict__ bias, scalar_t* __restrict__ y,
                                            int tiles_y) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    acc_t* buf = reinterpret_cast<acc_t*>(smem_raw);
    const int64_t in_plane = int64_t(p.in_h) * p.in_w, out_plane = int64_t(p.out_h) * p.out_w;
    const int tid = threadIdx.y * blockDim.x + threadIdx.x, threads = blockDim.x * blockDim.y;
    // Grid-stride over tile rows and planes: gridDim.y/z are capped at 65535.
    for (int64_t c = blockIdx.z; c < p.planes; c += gridDim.z) {
        const scalar_t* plane = x + c * in_plane;
        const acc_t b = bias ? bias[c % p.channels] : acc_t(0);
        for (int tile_y = blockIdx.y; tile_y < tiles_y; tile_y += gridDim.y) {
            const FilteredLreluTileGeom g = filtered_lrelu_tile(p, tile_y, blockIdx.x);
            __syncthreads();  // the previous tile's readers are done with the buffer
            const int n = g.th * g.tw;
            for (int i = tid; i < n; i += threads) buf[i] = filtered_lrelu_tile_entry(p, g, plane, fu, b, i);
            __syncthreads();
            const int oy = g.oy0 + threadIdx.y, ox = g.ox0 + threadIdx.x;
            if (oy < p.out_h && ox < p.out_w)
                y[c * out_plane + int64_t(oy) * p.out_w + ox] =
                    static_cast<scalar_t>(filtered_lrelu_tile_pixel(p, g, buf, fd, oy, ox));
        }
    }
}

template <typename scalar_t, typename acc_t>
__global__ void filtered_lrelu_direct_kernel(FilteredLreluParams p, const scalar_t* __restrict__ x,
                                             const acc_t* __restrict__ fu, const acc_t* __restrict__ fd,
                                             const acc_t* __restrict__ bias, scalar_t* __restrict__ y) {
    const int ox = blockIdx.x * blockDim.x + threadIdx.x;
    if (ox >= p.out_w) return;
    const int64_t in_plane = int64_t(p.in_h) * p.in_w, out_plane = int64_t(p.out_h) * p.out_w;
    for (int64_t c = blockIdx.z; c < p.planes; c += gridDim.z) {
        const acc_t b = bias ? bias[c % p.channels] : acc_t(0);
        for (int oy = blockIdx.y * blockDim.y + threadIdx.y; oy < p.out_h; oy += blockDim.y * gridDim.y) {
            const acc_t v = filtered_lrelu_pixel(p, x + c * in_plane, fu, fd, b, oy, ox);
            y[c * out_plane + int64_t(oy) * p.out_w + ox] = static_cast<scalar_t>(v);
        }
    }
}

void check_filter(const std::optional<at::Tensor>& f, const at::Tensor& x, const char* name) {
    if (!f.has_value() || !f->defined()) return;
    TORCH_CHECK((f->dim() == 1 || f->dim() == 2) && f->numel() > 0, "filtered_lrelu: ", name,
                " must be a non-empty 1-D or 2-D filter, got ", f->sizes());
    TORCH_CHECK(f->device() == x.device(), "filtered_lrelu: ", name, " is on ", f->device(), " but x is on ",
                x.device());
}

}  // namespace

at::Tensor filtered_lrelu_cuda(const at::Tensor& x_in, const std::optional<at::Tensor>& fu_in,
                               const std::optional<at::Tensor>& fd_in, const std::optional<at::Tensor>& b_in,
                               int64_t up, int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                               int64_t pad_y1, double gain, double slope, std::optional<double> clamp,
                               bool flip_filter) {
    TORCH_CHECK(x_in.is_cuda(), "filtered_lrelu: x must be a CUDA tensor, got ", x_in.device());
    TORCH_CHECK(x_in.dim() == 4, "filtered_lrelu: x must be [N, C, H, W], got ", x_in.sizes());
    TORCH_CHECK(up >= 1 && down >= 1, "filtered_lrelu: up and down must be >= 1");
    TORCH_CHECK(x_in.size(2) * up < (int64_t(1) << 30) && x_in.size(3) * up < (int64_t(1) << 30),
                "filtered_lrelu: the upsampled plane is too large");
    for (int64_t v : {pad_x0, pad_x1, pad_y0, pad_y1})
        TORCH_CHECK(v > -(int64_t(1) << 30) && v < (int64_t(1) << 30), "filtered_lrelu: pad out of range");
    check_filter(fu_in, x_in, "fu");
    check_filter(fd_in, x_in, "fd");
    const bool has_fu = fu_in.has_value() && fu_in->defined(), has_fd = fd_in.has_value() && fd_in->defined();
    const bool has_b = b_in.has_value() && b_in->defined();
    if (has_b) {
        TORCH_CHECK(b_in->dim() == 1 && b_in->size(0) == x_in.size(1), "filtered_lrelu: the bias must be [",
                    x_in.size(1), "], got ", b_in->sizes());
        TORCH_CHECK(b_in->device() == x_in.device(), "filtered_lrelu: b is on ", b_in->device(), " but x is on ",
                    x_in.device());
    }

    const c10::cuda::CUDAGuard device_guard(x_in.device());
    const at::Tensor x = x_in.contiguous();
    // A 1-D filter of n taps runs along both axes; a 2-D one is [taps along y, taps along x].
    const int fu_h = has_fu ? int(fu_in->size(0)) : 1, fu_w = has_fu ? int(fu_in->size(-1)) : 1;
    const int fd_h = has_fd ? int(fd_in->size(0)) : 1, fd_w = has_fd ? int(fd_in->size(-1)) : 1;
    FilteredLreluParams p;
    const bool ok = make_filtered_lrelu_params(
        p, x.size(0) * x.size(1), x.size(1), int(x.size(2)), int(x.size(3)), fu_h, fu_w, has_fu && fu_in->dim() == 2,
        fd_h, fd_w, has_fd && fd_in->dim() == 2, int(up), int(down), int(pad_x0), int(pad_x1), int(pad_y0),
        int(pad_y1), gain, slope, clamp.has_value(), clamp.value_or(0.0), flip_filter);
    TORCH_CHECK(ok, "filtered_lrelu: the padded, upsampled input (", x.size(2), "x", x.size(3), " up ", up, ", pads ",
                pad_x0, ",", pad_x1, ",", pad_y0, ",", pad_y1, ") is too small for the filters (", fu_h, "x", fu_w,
                " and ", fd_h, "x", fd_w, " taps)");

    at::Tensor y = at::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
    if (y.numel() == 0) return y;

    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "filtered_lrelu_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const auto acc_opts = x.options().dtype(c10::CppTypeToScalarType<acc_t>::value);
        // Filters stay in the accumulation type; the bias is rounded to x's dtype first, as the
        // reference adds it (b.to(x.dtype)).
        const at::Tensor fu = has_fu ? fu_in->to(acc_opts).contiguous() : at::Tensor();
        const at::Tensor fd = has_fd ? fd_in->to(acc_opts).contiguous() : at::Tensor();
        const at::Tensor b = has_b ? b_in->to(x.scalar_type()).to(acc_opts).contiguous() : at::Tensor();
        const acc_t* fu_p = has_fu ? fu.const_data_ptr<acc_t>() : nullptr;
        const acc_t* fd_p = has_fd ? fd.const_data_ptr<acc_t>() : nullptr;
        const acc_t* b_p = has_b ? b.const_data_ptr<acc_t>() : nullptr;
        const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
        const int64_t smem = filtered_lrelu_tile_bytes(p, sizeof(acc_t));
        if (smem <= kFlMaxSharedBytes) {
            const int tiles_y = (p.out_h + kFlTileH - 1) / kFlTileH;
            const dim3 block(kFlTileW, kFlTileH);
            const dim3 grid(unsigned((p.out_w + kFlTileW - 1) / kFlTileW),
                            unsigned(std::min<int64_t>(tiles_y, kMaxGridYZ)),
                            unsigned(std::min<int64_t>(p.planes, kMaxGridYZ)));
            filtered_lrelu_tiled_kernel<scalar_t, acc_t><<<grid, block, size_t(smem), stream>>>(
                p, x.const_data_ptr<scalar_t>(), fu_p, fd_p, b_p, y.mutable_data_ptr<scalar_t>(), tiles_y);
        } else {
            constexpr int kBlockX = 32, kBlockY = 8;
            const dim3 block(kBlockX, kBlockY);
            const dim3 grid(unsigned((p.out_w + kBlockX - 1) / kBlockX),
                            unsigned(std::min<int64_t>((p.out_h + kBlockY - 1) / kBlockY, kMaxGridYZ)),
                            unsigned(std::min<int64_t>(p.planes, kMaxGridYZ)));
            filtered_lrelu_direct_kernel<scalar_t, acc_t><<<grid, block, 0, stream>>>(
                p, x.const_data_ptr<scalar_t>(), fu_p, fd_p, b_p, y.mutable_data_ptr<scalar_t>());
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return y;
}

}  // namespace styleclip_ops
