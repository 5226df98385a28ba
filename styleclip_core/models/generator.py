"""StyleGAN2 generator with rosinality's state-dict layout, W+ and StyleSpace I/O.

Module and parameter names follow rosinality/stylegan2-pytorch ``model.py`` exactly, so
official checkpoints (``stylegan2-ffhq-config-f.pt``, the ``decoder.*`` copies inside e4e and
StyleCLIP mapper checkpoints) load without renaming. The architecture (size, style dim,
mapping depth, channels per resolution) is a constructor argument, and ``Generator.from_state_dict``
reads it from a checkpoint instead of assuming the stock channel table.

Rendering always goes W+ -> StyleSpace -> image: ``styles(w_plus)`` returns the per-layer style
vectors (the outputs of every modulation layer) and ``synthesis(styles)`` renders them, so an
edit in W+ and an edit in S share one code path.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import fused_leaky_relu, make_kernel, upfirdn2d
from ..precision import autocast_dtype, canonical

logger = logging.getLogger("styleclip_core.generator")

BLUR_TAPS = (1, 3, 3, 1)


def stylegan2_channels(size: int, channel_multiplier: int = 2) -> dict[int, int]:
    """The stock channel table of config-f (cm=2) and config-e (cm=1) generators."""
    cm = channel_multiplier
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
    return {r: c for r, c in table.items() if r <= size}


def _float32_region(device: torch.device):
    """Autocast switched off inside the block when it is on (nothing to do otherwise, which also
    keeps meta-device FLOP counting away from an autocast it does not support)."""
    try:
        on = torch.is_autocast_enabled(device.type)
    except RuntimeError:  # a device type without autocast (meta)
        on = False
    return torch.autocast(device.type, enabled=False) if on else contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# Building blocks


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights are scaled at run time, not at init."""

    impl = "auto"

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            # bias on the last dim: StyleCLIP's mapper feeds [B, rows, D] W+ tensors through this
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias, bias_dim=-1, impl=self.impl)
        return F.linear(x, self.weight * self.scale, bias)


class Blur(nn.Module):
    def __init__(self, pad, upsample_factor=1):
        super().__init__()
        self.gain = upsample_factor**2
        self.register_buffer("kernel", make_kernel(BLUR_TAPS) * self.gain)
        self.pad = pad
        self.impl = "auto"

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad, impl=self.impl)


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip image."""

    def __init__(self, factor=2):
        super().__init__()
        self.gain = factor**2
        self.register_buffer("kernel", make_kernel(BLUR_TAPS) * self.gain)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.factor = factor
        self.impl = "auto"

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, impl=self.impl)


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled by a style vector, then demodulated.

    The style vector ``s = modulation(w)`` is this layer's StyleSpace coordinate; ``forward``
    takes ``s`` directly so that edited style vectors can be rendered.
    """

    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            p = (len(BLUR_TAPS) - 2) - (kernel_size - 1)
            self.blur = Blur(pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)

    def forward(self, x, s):
        batch, _, height, width = x.shape
        weight = self.weight[0]  # [out, in, k, k]
        if self.kernel_size == 1:
            # toRGB: a per-sample [out, in] matrix times the feature map, as one batched matmul.
            # Pixels as rows keeps a channels-last feature map a free view.
            w = weight[None, :, :, 0, 0] * (s * self.scale)[:, None, :]
            pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, self.in_channel)
            out = torch.bmm(pixels, w.transpose(1, 2))
            return out.reshape(batch, height, width, self.out_channel).permute(0, 3, 1, 2)
        # Demodulation d[b, o] = rsqrt(sum_{i,kh,kw} (scale w[o,i,kh,kw] s[b,i])^2 + eps), computed
        # from the [out, in] energy of the kernel so the full weight is touched only once more.
        demod = None
        if self.demodulate:
            with _float32_region(x.device):  # a sum of squares: keep it in float32 under mixed precision
                acc = torch.promote_types(weight.dtype, torch.float32)
                energy = weight.to(acc).square().sum([2, 3])
                demod = torch.rsqrt((s.to(acc).square() @ energy.t()) * self.scale**2 + 1e-8)  # [B, out]
        if batch == 1 and not (torch.is_grad_enabled() and s.requires_grad):
            # One sample: fold style, scale and demodulation into the weight (one pass over it).
            coef = (s[0] * self.scale)[None, :]  # [1, in]
            if demod is not None:
                coef = demod[0, :, None] * coef  # [out, in]
            return self._conv(x, weight * coef[:, :, None, None])
        # Several samples, or gradients w.r.t. the style: scale the activations instead, so one
        # shared-weight convolution serves the batch and no per-sample weight gradient is formed.
        out = self._conv(x * (s * self.scale).reshape(batch, -1, 1, 1), weight)
        if demod is not None:
            out = out * demod.reshape(batch, -1, 1, 1)
        return out

    def _conv(self, x, weight):
        if self.upsample:
            return self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        return F.conv2d(x, weight, padding=self.padding)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise):
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.impl = "auto"

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, impl=self.impl)


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, s, noise):
        out = self.conv(x, s)
        if torch.is_grad_enabled() and out.requires_grad:
            return self.activate(self.noise(out, noise))
        # Outside autograd the conv output is ours alone: add noise and bias and activate in
        # place, sparing three full-size temporaries per layer.
        out.add_(noise * self.noise.weight)
        return fused_leaky_relu(out, self.activate.bias, impl=self.activate.impl, inplace=True)


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, s, skip=None):
        out = self.conv(x, s) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch):
        return self.input.repeat(batch, 1, 1, 1)


# --------------------------------------------------------------------------------------------
# Generator


@dataclass(frozen=True)
class StyleLayer:
    """One StyleSpace layer: a modulated convolution and the W+ row that drives it."""

    index: int
    name: str  # NVIDIA / StyleCLIP name, e.g. "conv0_resolution_8", "toRGB_resolution_8"
    module: str  # rosinality module path, e.g. "convs.0", "to_rgbs.0"
    w_index: int
    channels: int
    resolution: int

    @property
    def is_torgb(self) -> bool:
        return self.name.startswith("toRGB")


class Generator(nn.Module):
    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channels: dict[int, int] | None = None, lr_mlp: float = 0.01):
        super().__init__()
        log_size = int(math.log2(size))
        if 2**log_size != size or size < 4:
            raise ValueError(f"generator size must be a power of two >= 4, got {size}")
        channels = {int(r): int(c) for r, c in (channels or stylegan2_channels(size)).items()}
        missing = [2**i for i in range(2, log_size + 1) if 2**i not in channels]
        if missing:
            raise ValueError(f"channels table lacks resolutions {missing} for a {size}px generator")
        self.size, self.style_dim, self.n_mlp, self.lr_mlp = size, style_dim, n_mlp, lr_mlp
        self.channels = {2**i: channels[2**i] for i in range(2, log_size + 1)}
        self.log_size = log_size
        self.num_layers = (log_size - 2) * 2 + 1
        self.n_latent = log_size * 2 - 2

        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp)]
        )
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for j in range(self.num_layers):
            res = 2 ** ((j + 5) // 2)
            self.noises.register_buffer(f"noise_{j}", torch.randn(1, 1, res, res))
        in_channel = self.channels[4]
        for i in range(3, log_size + 1):
            out_channel = self.channels[2**i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel

        # The checkpoint's average W (TF dlatent_avg / NVIDIA w_avg) when it has one; not part of
        # the rosinality state dict, so it is a non-persistent buffer.
        self.register_buffer("w_avg", torch.zeros(style_dim), persistent=False)
        self.has_w_avg = False
        self.style_layers = self._style_layers()

    # ---- configuration --------------------------------------------------------------------

    @property
    def config(self) -> dict:
        return {
            "size": self.size,
            "style_dim": self.style_dim,
            "n_mlp": self.n_mlp,
            "lr_mlp": self.lr_mlp,
            "channels": {str(r): c for r, c in self.channels.items()},
        }

    @property
    def z_dim(self) -> int:
        """Width of Z (StyleGAN2: that of W; StyleGAN3 generators may differ)."""
        return self.style_dim

    @classmethod
    def from_config(cls, config: dict) -> "Generator":
        return cls(config["size"], config["style_dim"], config["n_mlp"], {int(r): c for r, c in config["channels"].items()}, config.get("lr_mlp", 0.01))

    def set_precision(self, precision: str) -> "Generator":
        """``fp32`` (the reference numbers) or ``bf16`` / ``fp16`` convolutions (``precision.py``)."""
        self.precision = canonical(precision)
        return self

    def set_ops_backend(self, impl: str) -> "Generator":
        """Choose the ops implementation ('auto', 'cuda' or 'reference') for every layer."""
        from ..ops.backend import resolve

        resolve(impl)  # validates the name
        for m in self.modules():
            if hasattr(m, "impl"):
                m.impl = impl
        self.ops_backend = impl
        return self

    def compile_synthesis(self, enabled: bool = True, fallback: bool = True, ops: str = "reference", **options) -> "Generator":
        """Run the synthesis layers through ``torch.compile`` (an opt-in speed option; off by default).

        The first call for each new kind of input (batch size, layer range, gradients on or off,
        precision) compiles, which takes tens of seconds (minutes for a 1024 px generator on a
        CPU); later calls run the compiled code. While compiled, the layers use the ``ops``
        backend ('reference': PyTorch ops, which the compiler fuses; the CUDA plugin's kernels are
        opaque to it). ``options`` go to ``torch.compile`` (e.g. ``mode='max-autotune'``).

        If torch.compile is unavailable or compiling fails (no C++ compiler for the CPU backend,
        an unsupported Python, ...), a warning says why and the generator runs eagerly from then
        on (``compile_status`` starts with 'eager'); with ``fallback=False`` the error is raised.
        ``compile_synthesis(False)`` returns to eager mode and the previous ops backend.
        """
        if not enabled:
            if self._compiled_layers is not None:
                self.set_ops_backend(self._eager_ops_backend)
            self._compiled_layers = None
            self.compile_status = "off"
            return self
        self._compile_fallback = fallback
        try:
            # The function, not this instance's bound method: a copy of the generator then runs
            # its own layers through the shared compiled code.
            compiled = torch.compile(type(self)._run_layers_eager, **options)
        except Exception as e:  # e.g. "torch.compile is not supported on Python 3.x"
            self._compile_failed(e, "torch.compile is unavailable")
            return self
        if self._compiled_layers is None:
            self._eager_ops_backend = self.ops_backend
        self.set_ops_backend(ops)
        self._compiled_layers = compiled
        self.compile_status = "compiled"
        return self

    def _compile_failed(self, error: Exception, what: str):
        first = (str(error).strip().splitlines() or [""])[0][:300]
        message = f"{what} ({type(error).__name__}: {first}); the generator runs eagerly instead"
        if not self._compile_fallback:
            raise RuntimeError(f"{what}: {type(error).__name__}: {first}") from error
        logger.warning("StyleCLIP: %s", message)
        import warnings

        warnings.warn(message, RuntimeWarning, stacklevel=3)
        if self._compiled_layers is not None:
            self.set_ops_backend(self._eager_ops_backend)
        self._compiled_layers = None
        self.compile_status = f"eager (torch.compile failed: {type(error).__name__}: {first})"

    ops_backend = "auto"
    _compiled_layers = None  # see compile_synthesis
    _compile_fallback = True
    _eager_ops_backend = "auto"
    compile_status = "off"
    source = ""  # file it was loaded from
    is_tiny_stand_in = False  # written by tiny_models, random weights
    # Channels-last runs the convolutions and FIR filters several times faster on the CPU
    # (oneDNN) and no slower on CUDA.
    memory_format = torch.channels_last
    precision = "fp32"  # see precision.py

    def _style_layers(self) -> list[StyleLayer]:
        layers = [
            StyleLayer(0, "conv1_resolution_4", "conv1", 0, self.channels[4], 4),
            StyleLayer(1, "toRGB_resolution_4", "to_rgb1", 1, self.channels[4], 4),
        ]
        in_channel = self.channels[4]
        for k, i in enumerate(range(3, self.log_size + 1)):
            res, c = 2**i, self.channels[2**i]
            n = len(layers)
            layers += [
                StyleLayer(n, f"conv0_resolution_{res}", f"convs.{2 * k}", 1 + 2 * k, in_channel, res),
                StyleLayer(n + 1, f"conv1_resolution_{res}", f"convs.{2 * k + 1}", 2 + 2 * k, c, res),
                StyleLayer(n + 2, f"toRGB_resolution_{res}", f"to_rgbs.{k}", 3 + 2 * k, c, res),
            ]
            in_channel = c
        return layers

    def _modconv(self, layer: StyleLayer) -> ModulatedConv2d:
        return self.get_submodule(layer.module).conv

    # ---- latent spaces ---------------------------------------------------------------------

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Z [B, D] -> W [B, D] through the mapping network."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean of W over ``n`` seeded samples of Z, ``[1, D]``."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen).to(self.w_avg.device)
        return self.mapping(z).mean(0, keepdim=True)

    def truncation_center(self) -> torch.Tensor:
        """The checkpoint's W average when present, else the mean of 4096 seeded samples; ``[1, D]``."""
        if self.has_w_avg:
            return self.w_avg[None]
        return self.mean_latent(4096)

    @staticmethod
    def truncate(w: torch.Tensor, psi: float, center: torch.Tensor, cutoff: int | None = None) -> torch.Tensor:
        """Pull W or W+ toward ``center``: center + psi (w - center).

        rosinality truncates every row (``cutoff=None``); NVIDIA's mapping truncates only the W+
        rows below ``cutoff`` (8 in StyleCLIP's global-direction statistics).
        """
        if psi == 1:
            return w
        if w.ndim == 3 and center.ndim == 2:
            center = center[:, None]
        out = center + psi * (w - center)
        if cutoff is not None:
            if w.ndim != 3:
                raise ValueError("a truncation cutoff needs W+ rows [B, n_latent, D]")
            out = torch.cat([out[:, :cutoff], w[:, cutoff:]], 1)
        return out

    def to_w_plus(self, w: torch.Tensor) -> torch.Tensor:
        """W [B, D] -> W+ [B, n_latent, D]; W+ passes through after a shape check."""
        if w.ndim == 2:
            return w[:, None].repeat(1, self.n_latent, 1)
        if w.ndim != 3 or w.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(
                f"expected W [B, {self.style_dim}] or W+ [B, {self.n_latent}, {self.style_dim}] for this "
                f"{self.size}px generator, found {list(w.shape)}"
            )
        return w

    def style_mix(self, w1: torch.Tensor, w2: torch.Tensor, inject_index: int) -> torch.Tensor:
        """W+ whose rows < inject_index come from w1 and the rest from w2."""
        w1, w2 = self.to_w_plus(w1), self.to_w_plus(w2)
        return torch.cat([w1[:, :inject_index], w2[:, inject_index:]], 1)

    @torch.no_grad()
    def style_weights(self) -> list[torch.Tensor]:
        """Per StyleSpace layer, the float64 matrix ``[C, D]`` of the linear part of W -> style
        (``s = (scale W) w + lr_mul b``): a W change ``d`` moves the style by ``matrix @ d``."""
        out = []
        for layer in self.style_layers:
            m = self._modconv(layer).modulation
            out.append(m.weight.detach().double() * m.scale)
        return out

    def styles(self, w_plus: torch.Tensor) -> list[torch.Tensor]:
        """W+ -> StyleSpace: one ``[B, C_i]`` style vector per modulated convolution, generator order."""
        w_plus = self.to_w_plus(w_plus)
        return [self._modconv(layer).modulation(w_plus[:, layer.w_index]) for layer in self.style_layers]

    # ---- synthesis -------------------------------------------------------------------------

    def make_noise(self, batch: int, mode="const", generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Per-layer noise: 'const' = the stored buffers, 'random' = fresh N(0, 1), or a list as given."""
        if not isinstance(mode, str):
            noise = list(mode)
            if len(noise) != self.num_layers:
                raise ValueError(f"expected {self.num_layers} noise maps, found {len(noise)}")
            return noise
        buffers = [getattr(self.noises, f"noise_{j}") for j in range(self.num_layers)]
        if mode == "const":
            return buffers
        if mode == "random":
            return [
                torch.randn((batch, 1, *b.shape[2:]), generator=generator, device="cpu" if generator is not None else b.device).to(b)
                for b in buffers
            ]
        raise ValueError(f"noise mode must be 'const', 'random' or a list of tensors, found {mode!r}")

    def synthesis(
        self,
        styles: Sequence[torch.Tensor],
        noise="const",
        generator: torch.Generator | None = None,
        layer_hook: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        start: tuple[int, torch.Tensor, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """StyleSpace -> image ``[B, 3, size, size]`` in about [-1, 1] (not clamped).

        ``layer_hook(resolution, features, rgb)`` runs after every resolution and may replace the
        feature map and the running RGB image (mask-local editing blends two passes there).
        ``start=(layer, features, rgb)`` resumes from ``synthesis_state(...)`` at style layer
        ``layer``: edits of that layer and later ones need not recompute what comes before.
        """
        if len(styles) != len(self.style_layers):
            raise ValueError(f"expected {len(self.style_layers)} style vectors, found {len(styles)}")
        styles = [s.reshape(s.shape[0], -1) for s in styles]
        batch = styles[0].shape[0]
        noise = self.make_noise(batch, noise, generator)
        if start is None:
            first, x, rgb = 0, self.input(batch).contiguous(memory_format=self.memory_format), None
        else:
            first, x, rgb = start
        with self._precision(x.device):
            x, rgb = self._run_layers(styles, noise, x, rgb, first, len(self.style_layers), layer_hook)
        return rgb.to(styles[0].dtype).contiguous()

    def _precision(self, device: torch.device):
        """Convolutions in bfloat16 / float16 when ``precision`` asks for it (a CUDA speed option;
        the modulation and demodulation stay in float32)."""
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            # Nothing to switch: an autocast the caller entered (LatentOptimizer's amp_dtype, a
            # relevance job's precision) must reach the convolutions, and meta-device FLOP
            # counting must not meet an autocast it does not support.
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    def synthesis_state(self, styles: Sequence[torch.Tensor], layer: int, noise="const") -> tuple[int, torch.Tensor, torch.Tensor | None]:
        """(layer, features, rgb) just before style layer ``layer``, for ``synthesis(start=...)``."""
        styles = [s.reshape(s.shape[0], -1) for s in styles]
        batch = styles[0].shape[0]
        x = self.input(batch).contiguous(memory_format=self.memory_format)
        with self._precision(x.device):
            x, rgb = self._run_layers(styles, self.make_noise(batch, noise), x, None, 0, layer, None)
        return layer, x, rgb

    def _run_layers(self, styles, noise, x, rgb, first, stop, layer_hook):
        compiled = self._compiled_layers
        if compiled is None:
            return self._run_layers_eager(styles, noise, x, rgb, first, stop, layer_hook)
        try:
            return compiled(self, styles, noise, x, rgb, first, stop, layer_hook)
        except torch.OutOfMemoryError:
            raise  # not the compiler's fault; eager would run out of memory too
        except Exception as e:
            # A failure to compile (or one inside compiled code) is reported once and the
            # generator goes on eagerly; an error of the inputs themselves recurs eagerly and
            # reaches the caller from there. Every input is left as it was (nothing runs in place
            # on a tensor the caller holds), so the eager rerun computes the same result.
            self._compile_failed(e, "torch.compile of the synthesis failed")
            return self._run_layers_eager(styles, noise, x, rgb, first, stop, layer_hook)

    def _run_layers_eager(self, styles, noise, x, rgb, first, stop, layer_hook):
        # Style layer i: 0 conv1, 1 to_rgb1, then per resolution k: 2+3k convs[2k] (up),
        # 3+3k convs[2k+1], 4+3k to_rgbs[k]; the hook follows each toRGB.
        for i in range(first, stop):
            if i == 0:
                x = self.conv1(x, styles[0], noise[0])
            elif i == 1:
                rgb = self.to_rgb1(x, styles[1])
            else:
                k, j = divmod(i - 2, 3)
                if j < 2:
                    x = self.convs[2 * k + j](x, styles[i], noise[1 + 2 * k + j])
                else:
                    rgb = self.to_rgbs[k](x, styles[i], rgb)
            if layer_hook is not None and self.style_layers[i].is_torgb:
                x, rgb = layer_hook(self.style_layers[i].resolution, x, rgb)
        return x, rgb

    def forward(self, w_plus: torch.Tensor, noise="const", generator: torch.Generator | None = None) -> torch.Tensor:
        """W or W+ -> image."""
        return self.synthesis(self.styles(w_plus), noise=noise, generator=generator)

    # ---- checkpoints -----------------------------------------------------------------------

    @staticmethod
    def config_from_state_dict(state: dict[str, torch.Tensor]) -> dict:
        """Read size, style dim, mapping depth and channels from rosinality ``g_ema`` keys."""
        try:
            style_dim = state["style.1.weight"].shape[0]
            n_mlp = 0
            while f"style.{n_mlp + 1}.weight" in state:
                n_mlp += 1
            n_rgb = 0
            while f"to_rgbs.{n_rgb}.conv.weight" in state:
                n_rgb += 1
            channels = {4: state["input.input"].shape[1]}
            for k in range(n_rgb):
                channels[2 ** (k + 3)] = state[f"convs.{2 * k}.conv.weight"].shape[1]
        except KeyError as e:
            raise ValueError(f"not a rosinality StyleGAN2 generator state dict: key {e.args[0]!r} is missing") from None
        return {"size": 2 ** (n_rgb + 2), "style_dim": style_dim, "n_mlp": n_mlp, "lr_mlp": 0.01, "channels": channels}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], config: dict | None = None, source: str = "state dict") -> "Generator":
        """Build a generator shaped like ``state`` and load it; buffers it lacks (noise, FIR kernels) keep defaults."""
        config = config or cls.config_from_state_dict(state)
        with torch.device("meta"):
            g = cls.from_config(config)
        expected = g.state_dict()
        missing = [k for k in expected if k not in state and not _is_default_buffer(k)]
        unexpected = [k for k in state if k not in expected]
        wrong = shape_mismatches(expected, state)
        if missing or unexpected or wrong:
            parts = []
            if missing:
                parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:4])})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:4])})")
            if wrong:
                parts.append(f"{len(wrong)} shape mismatches ({'; '.join(wrong[:3])})")
            raise ValueError(f"{source}: does not match a StyleGAN2 generator of {config['size']}px: " + ", ".join(parts))
        # Adopt the file's tensors as parameters (no second copy of a 1024px model in memory);
        # a state dict of meta tensors (manifest checks) yields a meta generator.
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        g.load_state_dict(state, strict=False, assign=True)
        device = next(iter(state.values())).device
        if device.type != "meta":
            g._materialize_default_buffers(device)
        return g

    def copy(self) -> "Generator":
        """An independent generator with this one's weights, buffers and settings (precision, ops
        backend, W average, source, stand-in mark), to fine-tune while this one stays as it is.
        Attributes others attached (ComfyUI's model patcher) are not copied; torch.compile is not
        carried over (compile the copy again if wanted)."""
        with torch.device("meta"):
            g = Generator.from_config(self.config)
        g.load_state_dict({k: v.detach().clone() for k, v in self.state_dict().items()}, assign=True)
        g.w_avg = self.w_avg.detach().clone()
        g.has_w_avg = self.has_w_avg
        g.set_precision(self.precision).set_ops_backend(getattr(self, "ops_backend", "auto"))
        for name in ("source", "is_tiny_stand_in", "adaptation"):
            if hasattr(self, name):
                setattr(g, name, getattr(self, name))
        return g.train(self.training).requires_grad_(False)

    def _materialize_default_buffers(self, device):
        """Give every buffer the state dict did not provide its default value on ``device``."""
        gen = torch.Generator().manual_seed(0)
        for module_name, module in self.named_modules():
            for name, buf in list(module._buffers.items()):
                if buf is None or not buf.is_meta:
                    continue
                if isinstance(module, (Blur, Upsample)):
                    value = make_kernel(BLUR_TAPS) * module.gain
                elif module_name == "noises":
                    value = torch.randn(buf.shape, generator=gen)
                else:
                    value = torch.zeros(buf.shape)
                module._buffers[name] = value.to(device)


def conv_layers(g: Generator) -> list[int]:
    """Indices of the StyleSpace layers that fs3 covers: every modulated conv except toRGB."""
    return [l.index for l in g.style_layers if not l.is_torgb]


def num_conv_channels(g: Generator) -> int:
    return sum(g.style_layers[i].channels for i in conv_layers(g))



def _is_default_buffer(key: str) -> bool:
    """Buffers a state dict may omit: FIR kernels are constants, noise maps can be drawn."""
    return key.endswith(".kernel") or key.startswith("noises.")


def shape_mismatches(expected: dict, state: dict) -> list[str]:
    """``'key: expected [..], found [..]'`` for every tensor of ``state`` whose shape differs from
    the one of the same name in ``expected`` (a module's ``state_dict()``)."""
    return [
        f"{k}: expected {list(v.shape)}, found {list(state[k].shape)}"
        for k, v in expected.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
