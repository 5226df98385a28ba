// Per-pixel / per-element math of the StyleGAN2 ops, shared by the CUDA kernels and
// by a host-only build (the tests compile this header with a plain C++ compiler to check
// the index arithmetic against the PyTorch reference on machines without a GPU).
#pragma once

#include <cstdint>
#include <type_traits>

#ifdef __CUDACC__
#define SC_HD __host__ __device__ __forceinline__
#else
#define SC_HD inline
#endif

namespace styleclip_ops {

// ---------------------------------------------------------------- upfirdn2d

struct Upfirdn2dParams {
    int in_h, in_w, out_h, out_w;
    int k_h, k_w;
    int up_x, up_y, down_x, down_y;
    int pad_x0, pad_y0;  // the trailing pads only decide out_h / out_w
    int64_t planes;      // N * C
};

// Fills the params and the output size; returns false when the output would be empty
// or negative (callers turn that into an error).
inline bool make_upfirdn2d_params(Upfirdn2dParams& p, int64_t planes, int in_h, int in_w, int k_h, int k_w,
                                  int up_x, int up_y, int down_x, int down_y,
                                  int pad_x0, int pad_x1, int pad_y0, int pad_y1) {
    p.planes = planes;
    p.in_h = in_h;
    p.in_w = in_w;
    p.k_h = k_h;
    p.k_w = k_w;
    p.up_x = up_x;
    p.up_y = up_y;
    p.down_x = down_x;
    p.down_y = down_y;
    p.pad_x0 = pad_x0;
    p.pad_y0 = pad_y0;
    // Python-style floor division: a 'valid' extent shorter than the kernel has no output.
    const int64_t span_h = int64_t(in_h) * up_y + pad_y0 + pad_y1 - k_h;
    const int64_t span_w = int64_t(in_w) * up_x + pad_x0 + pad_x1 - k_w;
    if (span_h < 0 || span_w < 0) return false;
    p.out_h = int(span_h / down_y + 1);
    p.out_w = int(span_w / down_x + 1);
    return true;
}

// Compile-time shapes for the generator's hot cases, so their tap loops unroll and the
// divisions by up/down become shifts. A zero means "read it from the params".
template <int UX, int UY, int DX, int DY, int KH, int KW>
struct Variant {
    static constexpr int up_x = UX, up_y = UY, down_x = DX, down_y = DY, k_h = KH, k_w = KW;
};
using GenericVariant = Variant<0, 0, 0, 0, 0, 0>;

// The set is closed under the gradient (up 2 <-> down 2), so backward passes stay fast too.
template <typename F>
void with_upfirdn2d_variant(const Upfirdn2dParams& p, F&& f) {
    const bool k4 = p.k_h == 4 && p.k_w == 4;
    const bool up2 = p.up_x == 2 && p.up_y == 2, up1 = p.up_x == 1 && p.up_y == 1;
    const bool down2 = p.down_x == 2 && p.down_y == 2, down1 = p.down_x == 1 && p.down_y == 1;
    if (k4 && up2 && down1) return f(Variant<2, 2, 1, 1, 4, 4>{});
    if (k4 && up1 && down1) return f(Variant<1, 1, 1, 1, 4, 4>{});
    if (k4 && up1 && down2) return f(Variant<1, 1, 2, 2, 4, 4>{});
    return f(GenericVariant{});
}

// Along one axis, output sample `o` correlates the flipped kernel with the padded,
// zero-stuffed signal starting at o*down. Only every up-th position holds a real input
// sample; this finds the first tap that lands on one and that sample's index, so the
// caller can step tap += up, src += 1 without ever touching the inserted zeros.
SC_HD void first_tap(int o, int down, int pad0, int up, int& tap, int& src) {
    const int pos = o * down - pad0;  // position of tap 0 on the unpadded zero-stuffed axis
    const int t = pos < 0 ? -pos : (up - pos % up) % up;
    tap = t;
    src = (pos + t) / up;
}

template <typename V, typename scalar_t, typename acc_t>
SC_HD acc_t upfirdn2d_pixel(const Upfirdn2dParams& p, const scalar_t* plane, const acc_t* kernel, int oy, int ox) {
    const int up_x = V::up_x ? V::up_x : p.up_x, up_y = V::up_y ? V::up_y : p.up_y;
    const int down_x = V::down_x ? V::down_x : p.down_x, down_y = V::down_y ? V::down_y : p.down_y;
    const int k_h = V::k_h ? V::k_h : p.k_h, k_w = V::k_w ? V::k_w : p.k_w;
    // Upper bounds of the taps per axis that can hit real samples; constants for the variants.
    const int n_y = (k_h + up_y - 1) / up_y, n_x = (k_w + up_x - 1) / up_x;

    int ty, iy, tx0, ix0;
    first_tap(oy, down_y, p.pad_y0, up_y, ty, iy);
    first_tap(ox, down_x, p.pad_x0, up_x, tx0, ix0);

    acc_t acc = acc_t(0);
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (int sy = 0; sy < n_y; ++sy) {
        const int t_y = ty + sy * up_y, y = iy + sy;
        if (t_y >= k_h || y >= p.in_h) break;
        const scalar_t* row = plane + int64_t(y) * p.in_w;
        // True convolution: tap t meets kernel element k-1-t.
        const acc_t* krow = kernel + int64_t(k_h - 1 - t_y) * k_w + (k_w - 1);
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
        for (int sx = 0; sx < n_x; ++sx) {
            const int t_x = tx0 + sx * up_x, x = ix0 + sx;
            if (t_x >= k_w || x >= p.in_w) break;
            acc += static_cast<acc_t>(row[x]) * krow[-t_x];
        }
    }
    return acc;
}

// ------------------------------------------------------------ bias + leaky ReLU

// The bias runs along one dim of a contiguous tensor: consecutive runs of `stride` elements
// share a bias value, cycling through `len` values.
inline void bias_layout(const int64_t* sizes, int64_t ndim, int64_t dim, int64_t& len, int64_t& stride) {
    len = sizes[dim];
    stride = 1;
    for (int64_t d = dim + 1; d < ndim; ++d) stride *= sizes[d];
}

template <typename index_t>
SC_HD index_t bias_index(index_t i, index_t len, index_t stride) {
    return (i / stride) % len;
}

template <typename acc_t>
SC_HD acc_t leaky_relu_scaled(acc_t v, acc_t slope, acc_t scale) {
    // Same operation order as leaky_relu(v) * scale in PyTorch, so float32 matches bit for bit.
    return (v > acc_t(0) ? v : v * slope) * scale;
}

// `ref` is either the activation's output (ref_sign = sign of scale, valid for slope >= 0)
// or its pre-activation input (ref_sign = 1); both tell which branch a sample took.
template <typename acc_t>
SC_HD acc_t leaky_relu_scaled_grad(acc_t g, acc_t ref, acc_t ref_sign, acc_t slope, acc_t scale) {
    const acc_t d = g * scale;
    return ref * ref_sign > acc_t(0) ? d : d * slope;
}

}  // namespace styleclip_ops
