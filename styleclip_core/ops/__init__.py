"""StyleGAN2 ops. Each has a PyTorch reference and a CUDA plugin behind one function."""
from .backend import BACKENDS, describe
from .bias_act import fused_leaky_relu
from .upfirdn2d import make_kernel, upfirdn2d

__all__ = ["BACKENDS", "describe", "fused_leaky_relu", "make_kernel", "upfirdn2d"]
