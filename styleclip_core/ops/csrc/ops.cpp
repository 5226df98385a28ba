// Python bindings. Kept apart from the .cu files so nvcc never has to parse pybind11.
#include <torch/extension.h>

#include <optional>

namespace styleclip_ops {
at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& kernel, int64_t up_x, int64_t up_y,
                          int64_t down_x, int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                          int64_t pad_y1);
at::Tensor fused_leaky_relu_cuda(const at::Tensor& x, const std::optional<at::Tensor>& bias, int64_t bias_dim,
                                 double slope, double scale);
at::Tensor fused_leaky_relu_grad_cuda(const at::Tensor& grad, const at::Tensor& ref, double ref_sign, double slope,
                                      double scale);
at::Tensor filtered_lrelu_cuda(const at::Tensor& x, const std::optional<at::Tensor>& fu,
                               const std::optional<at::Tensor>& fd, const std::optional<at::Tensor>& b, int64_t up,
                               int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1,
                               double gain, double slope, std::optional<double> clamp, bool flip_filter);
}  // namespace styleclip_ops

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    using namespace pybind11::literals;
    m.def("upfirdn2d", &styleclip_ops::upfirdn2d_cuda,
          "Zero-insertion upsample, pad/crop, true 2-D FIR convolution, downsample of [N, C, H, W].", "x"_a,
          "kernel"_a, "up_x"_a, "up_y"_a, "down_x"_a, "down_y"_a, "pad_x0"_a, "pad_x1"_a, "pad_y0"_a, "pad_y1"_a);
    m.def("fused_leaky_relu", &styleclip_ops::fused_leaky_relu_cuda,
          "leaky_relu(x + bias broadcast along bias_dim, slope) * scale; bias may be None.", "x"_a, "bias"_a,
          "bias_dim"_a, "slope"_a, "scale"_a);
    m.def("fused_leaky_relu_grad", &styleclip_ops::fused_leaky_relu_grad_cuda,
          "Gradient of fused_leaky_relu w.r.t. its input; the branch is taken where ref * ref_sign > 0.", "grad"_a,
          "ref"_a, "ref_sign"_a, "slope"_a, "scale"_a);
    m.def("filtered_lrelu", &styleclip_ops::filtered_lrelu_cuda,
          "StyleGAN3's filtered leaky ReLU, forward, fused: bias, upsample, pad, filter fu, leaky ReLU x gain, clamp, "
          "filter fd, downsample (ops/filtered_lrelu.py). fu, fd, b and clamp may be None.",
          "x"_a, "fu"_a, "fd"_a, "b"_a, "up"_a, "down"_a, "pad_x0"_a, "pad_x1"_a, "pad_y0"_a, "pad_y1"_a, "gain"_a,
          "slope"_a, "clamp"_a, "flip_filter"_a);
}
