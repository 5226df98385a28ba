// Per-pixel / per-element math of the StyleGAN2 ops and StyleGAN3's filtered_lrelu, shared by the CUDA kernels and
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

// ------------------------------------------------------------ filtered_lrelu (StyleGAN3)
//
// One output sample of one plane is
//   sum over the down filter's taps of clamp(lrelu(u) * gain),
// where u, one sample of the intermediate ("tmp") signal, is the up filter (true
// convolution, gain up per axis for a 1-D filter, up*up for a 2-D one) over the bias-added
// input, zero-stuffed by `up` and padded by pad_x0 / pad_y0 (negative crops). A 1-D filter is
// separable: the outer product of itself with itself. A missing filter is the 1-tap [1].
// This is exactly filtered_lrelu_reference (ops/filtered_lrelu.py); the tmp size per axis is
// in*up + pad0 + pad1 - (fu_len - 1), the output size (tmp - fd_len) / down + 1.

struct FilteredLreluParams {
    int in_h, in_w;
    int tmp_h, tmp_w;     // the up-filtered (intermediate) plane
    int out_h, out_w;
    int up, down;
    int pad_x0, pad_y0;   // the trailing pads only decide tmp_h / tmp_w
    int fu_h, fu_w;       // taps along y and x (a 1-D filter: both its length)
    int fd_h, fd_w;
    bool fu_2d, fd_2d;    // 2-D filters are [h, w] row-major; 1-D ones run along both axes
    bool flip;            // flip_filter: correlation instead of convolution
    bool has_clamp;
    double gain, slope, clamp;
    int64_t planes;       // N * C
    int64_t channels;     // C: plane c has bias[c % C]
};

// Fills the params and the sizes; false when the intermediate or the output would be empty
// (callers turn that into an error). A filter length of 1 with *_2d false is the identity.
inline bool make_filtered_lrelu_params(FilteredLreluParams& p, int64_t planes, int64_t channels, int in_h, int in_w,
                                       int fu_h, int fu_w, bool fu_2d, int fd_h, int fd_w, bool fd_2d, int up,
                                       int down, int pad_x0, int pad_x1, int pad_y0, int pad_y1, double gain,
                                       double slope, bool has_clamp, double clamp, bool flip) {
    p.planes = planes;
    p.channels = channels;
    p.in_h = in_h;
    p.in_w = in_w;
    p.fu_h = fu_h;
    p.fu_w = fu_w;
    p.fu_2d = fu_2d;
    p.fd_h = fd_h;
    p.fd_w = fd_w;
    p.fd_2d = fd_2d;
    p.up = up;
    p.down = down;
    p.pad_x0 = pad_x0;
    p.pad_y0 = pad_y0;
    p.gain = gain;
    p.slope = slope;
    p.has_clamp = has_clamp;
    p.clamp = clamp;
    p.flip = flip;
    if (up < 1 || down < 1 || fu_h < 1 || fu_w < 1 || fd_h < 1 || fd_w < 1) return false;
    const int64_t tmp_h = int64_t(in_h) * up + pad_y0 + pad_y1 - (fu_h - 1);
    const int64_t tmp_w = int64_t(in_w) * up + pad_x0 + pad_x1 - (fu_w - 1);
    if (tmp_h < fd_h || tmp_w < fd_w) return false;
    p.tmp_h = int(tmp_h);
    p.tmp_w = int(tmp_w);
    p.out_h = int((tmp_h - fd_h) / down + 1);
    p.out_w = int((tmp_w - fd_w) / down + 1);
    return true;
}

// Tap t of a filter of n taps, in the true-convolution convention (element n-1-t) or, with
// flip, the correlation one (element t).
SC_HD int filter_index(int t, int n, bool flip) { return flip ? t : n - 1 - t; }

// The intermediate sample u[ty][tx], activated: clamp(lrelu(u) * gain). `plane` is the input
// plane, `bias` the plane's bias value (zero when there is none), `fu` the up filter (nullptr:
// the 1-tap identity). Only the taps that meet real (not zero-inserted, not padding) input
// samples are visited, as in upfirdn2d_pixel.
template <typename scalar_t, typename acc_t>
SC_HD acc_t filtered_lrelu_tmp(const FilteredLreluParams& p, const scalar_t* plane, const acc_t* fu, acc_t bias,
                               int ty, int tx) {
    const int up = p.up;
    int ty0, iy0, tx0, ix0;
    first_tap(ty, 1, p.pad_y0, up, ty0, iy0);
    first_tap(tx, 1, p.pad_x0, up, tx0, ix0);
    acc_t u = acc_t(0);
    if (p.fu_2d) {
        const acc_t g = acc_t(up) * acc_t(up);
        for (int t_y = ty0, y = iy0; t_y < p.fu_h && y < p.in_h; t_y += up, ++y) {
            const scalar_t* row = plane + int64_t(y) * p.in_w;
            const acc_t* frow = fu + int64_t(filter_index(t_y, p.fu_h, p.flip)) * p.fu_w;
            for (int t_x = tx0, x = ix0; t_x < p.fu_w && x < p.in_w; t_x += up, ++x)
                u += (static_cast<acc_t>(row[x]) + bias) * (frow[filter_index(t_x, p.fu_w, p.flip)] * g);
        }
    } else {
        // Separable: along x first, then along y, each pass at gain `up` (the reference's order).
        const acc_t g = acc_t(up);
        for (int t_y = ty0, y = iy0; t_y < p.fu_h && y < p.in_h; t_y += up, ++y) {
            const scalar_t* row = plane + int64_t(y) * p.in_w;
            acc_t v = acc_t(0);
            for (int t_x = tx0, x = ix0; t_x < p.fu_w && x < p.in_w; t_x += up, ++x) {
                const acc_t w = fu ? fu[filter_index(t_x, p.fu_w, p.flip)] * g : g;
                v += (static_cast<acc_t>(row[x]) + bias) * w;
            }
            u += v * (fu ? fu[filter_index(t_y, p.fu_h, p.flip)] * g : g);
        }
    }
    // leaky_relu(u) * gain (bias_act's order of operations), then the clamp.
    acc_t a = leaky_relu_scaled(u, acc_t(p.slope), acc_t(p.gain));
    if (p.has_clamp) {
        const acc_t c = acc_t(p.clamp);
        a = a > c ? c : (a < -c ? -c : a);
    }
    return a;
}

// The output sample at (oy, ox): the down filter (gain 1, no padding) over the activated
// intermediate, read through `tmp(ty, tx)`: computed on the fly (FilteredLreluDirect) or from a
// tile of it computed beforehand (FilteredLreluTile). `fd` nullptr: the 1-tap identity.
template <typename acc_t, typename Tmp>
SC_HD acc_t filtered_lrelu_down(const FilteredLreluParams& p, const acc_t* fd, const Tmp& tmp, int oy, int ox) {
    const int by = oy * p.down, bx = ox * p.down;
    acc_t acc = acc_t(0);
    for (int s_y = 0; s_y < p.fd_h; ++s_y) {
        if (p.fd_2d) {
            const acc_t* frow = fd + int64_t(filter_index(s_y, p.fd_h, p.flip)) * p.fd_w;
            for (int s_x = 0; s_x < p.fd_w; ++s_x)
                acc += tmp(by + s_y, bx + s_x) * frow[filter_index(s_x, p.fd_w, p.flip)];
        } else {
            acc_t v = acc_t(0);
            for (int s_x = 0; s_x < p.fd_w; ++s_x) {
                const acc_t a = tmp(by + s_y, bx + s_x);
                v += fd ? a * fd[filter_index(s_x, p.fd_w, p.flip)] : a;
            }
            acc += fd ? v * fd[filter_index(s_y, p.fd_h, p.flip)] : v;
        }
    }
    return acc;
}

// The intermediate computed where it is read: each sample once per output tap that needs it.
template <typename scalar_t, typename acc_t>
struct FilteredLreluDirect {
    const FilteredLreluParams& p;
    const scalar_t* plane;
    const acc_t* fu;
    acc_t bias;
    SC_HD acc_t operator()(int ty, int tx) const { return filtered_lrelu_tmp(p, plane, fu, bias, ty, tx); }
};

template <typename scalar_t, typename acc_t>
SC_HD acc_t filtered_lrelu_pixel(const FilteredLreluParams& p, const scalar_t* plane, const acc_t* fu,
                                 const acc_t* fd, acc_t bias, int oy, int ox) {
    const FilteredLreluDirect<scalar_t, acc_t> tmp{p, plane, fu, bias};
    return filtered_lrelu_down(p, fd, tmp, oy, ox);
}

// Tiled evaluation: a block of kFlTileH x kFlTileW output samples first computes, once each,
// the intermediate samples they read (a buffer of tile_h x tile_w, row-major), then the
// outputs from that buffer.
constexpr int kFlTileH = 16;
constexpr int kFlTileW = 16;

// The default dynamic shared memory a block may use without opting in (every GPU since Kepler);
// a larger buffer means the per-output-sample path.
constexpr int64_t kFlMaxSharedBytes = 48 * 1024;

struct FilteredLreluTileGeom {
    int oy0, ox0;  // the tile's first output sample
    int ty0, tx0;  // the first intermediate sample it reads
    int th, tw;    // how many intermediate samples it reads per axis (clipped at the plane's edge)
};

// The buffer's capacity per axis for any tile (the first dimension of the shared array).
SC_HD int filtered_lrelu_tile_cap(int tile, int down, int fd_len) { return (tile - 1) * down + fd_len; }

// The tiled path's buffer in bytes (acc_bytes: sizeof the accumulation type).
inline int64_t filtered_lrelu_tile_bytes(const FilteredLreluParams& p, int64_t acc_bytes) {
    return int64_t(filtered_lrelu_tile_cap(kFlTileH, p.down, p.fd_h)) * filtered_lrelu_tile_cap(kFlTileW, p.down, p.fd_w) *
           acc_bytes;
}

SC_HD FilteredLreluTileGeom filtered_lrelu_tile(const FilteredLreluParams& p, int tile_y, int tile_x) {
    FilteredLreluTileGeom g;
    g.oy0 = tile_y * kFlTileH;
    g.ox0 = tile_x * kFlTileW;
    g.ty0 = g.oy0 * p.down;
    g.tx0 = g.ox0 * p.down;
    const int last_oy = (g.oy0 + kFlTileH < p.out_h ? g.oy0 + kFlTileH : p.out_h) - 1;
    const int last_ox = (g.ox0 + kFlTileW < p.out_w ? g.ox0 + kFlTileW : p.out_w) - 1;
    g.th = last_oy * p.down + p.fd_h - g.ty0;
    g.tw = last_ox * p.down + p.fd_w - g.tx0;
    return g;
}

template <typename acc_t>
struct FilteredLreluTile {
    const acc_t* buf;
    int ty0, tx0, tw;
    SC_HD acc_t operator()(int ty, int tx) const { return buf[(ty - ty0) * tw + (tx - tx0)]; }
};

// Entry i (row-major over th x tw) of the tile's buffer.
template <typename scalar_t, typename acc_t>
SC_HD acc_t filtered_lrelu_tile_entry(const FilteredLreluParams& p, const FilteredLreluTileGeom& g,
                                      const scalar_t* plane, const acc_t* fu, acc_t bias, int i) {
    return filtered_lrelu_tmp(p, plane, fu, bias, g.ty0 + i / g.tw, g.tx0 + i % g.tw);
}

template <typename acc_t>
SC_HD acc_t filtered_lrelu_tile_pixel(const FilteredLreluParams& p, const FilteredLreluTileGeom& g,
                                      const acc_t* buf, const acc_t* fd, int oy, int ox) {
    const FilteredLreluTile<acc_t> tmp{buf, g.ty0, g.tx0, g.tw};
    return filtered_lrelu_down(p, fd, tmp, oy, ox);
}

}  // namespace styleclip_ops
