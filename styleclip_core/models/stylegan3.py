"""The StyleGAN3 generator (Karras et al., "Alias-Free Generative Adversarial Networks", 2021),
configs T and R, with NVIDIA's state-dict names (``NVlabs/stylegan3`` c233a91,
``training/networks_stylegan3.py``; SPEC 13), and its StyleSpace as ``yuval-alaluf/stylegan3-editing``
defines it.

* **Mapping** (``MappingNetwork``): ``z / sqrt(mean z^2 + 1e-8)``, then ``num_layers`` equalised
  fully connected layers with leaky ReLU times sqrt 2 (lr multiplier 0.01), broadcast to
  ``num_ws = num_layers + 2`` W+ rows; truncation lerps the rows below the cutoff toward ``w_avg``.
* **Input** (``SynthesisInput``): Fourier features. Row 0 of W+ gives ``t = affine(w)`` divided by
  ``|t[0:2]|`` = ``(c, s, tx, ty)``: a rotation and translation ``M = R(c, s) T(tx, ty) transform``
  of the frequencies (``transform`` is the user's inverse rotate/translate, identity in trained
  files); frequencies pushed out of band fade; ``sin(2 pi (x f' + phase'))`` on the pixel-centre
  grid of ``size`` samples at ``sampling_rate``, mixed by ``weight / sqrt(C)``.
* **Layers** ``L{i}_{size}_{channels}`` (``SynthesisLayer``), one W+ row each: ``s = affine(w)``
  (ToRGB: times ``1 / sqrt(C_in)``); a modulated convolution grouped per sample with padding
  ``k - 1`` (demodulated except ToRGB, after pre-normalising the weight per output channel and
  the styles over the whole batch), its weights times ``1 / sqrt(magnitude_ema)``; then
  ``filtered_lrelu`` (upsample, filter, leaky ReLU, filter, downsample: ``ops.filtered_lrelu``).
  The output is scaled by ``output_scale`` (0.25) and not clamped.
* **Layer schedule** (``SynthesisNetwork.__init__``, SPEC 13.3): cutoffs, stopbands, sampling rates,
  half-widths, sizes and channels from ``num_layers``, ``num_critical``, ``img_resolution``,
  ``first_cutoff``, ``first_stopband``, ``last_stopband_rel``, ``margin_size`` and
  ``channel_base/max``; the up/down factors, filter lengths and paddings follow from them.
  ``StyleGAN3Generator.schedule`` rebuilds it from a config, and ``config_from_state_dict`` from
  the layer names of a state dict (the other settings at NVIDIA's defaults, checked against the
  state dict's shapes).
* **StyleSpace** (stylegan3-editing ``W2S`` / ``synthesis(all_s=...)``): the input's normalised
  ``(c, s, tx, ty)``, then every layer's modulation, ToRGB included and already scaled; rendering
  from S uses each entry as it is (the input entry is not normalised again, so editing it zooms).

There is no noise input: the ``noise`` arguments are accepted and ignored, as NVIDIA's
``noise_mode`` is. On CUDA NVIDIA runs the high-resolution layers in float16; here every layer
runs in float32 on every device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..ops.bias_act import fused_leaky_relu
from ..ops.filtered_lrelu import design_lowpass_filter, filtered_lrelu
from .generator import Generator, StyleLayer

# NVIDIA's constructor defaults (SPEC 13.1): what a config or an init_kwargs dict leaves out.
DEFAULTS = {
    "z_dim": 512, "w_dim": 512, "img_resolution": 1024, "img_channels": 3, "mapping_layers": 2, "lr_multiplier": 0.01,
    "channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2, "first_cutoff": 2,
    "first_stopband": 2 ** 2.1, "last_stopband_rel": 2 ** 0.3, "margin_size": 10, "output_scale": 0.25,
    "conv_kernel": 3, "filter_size": 6, "lrelu_upsampling": 2, "use_radial_filters": False, "conv_clamp": 256,
}


# NVIDIA init kwargs (Generator, SynthesisNetwork, SynthesisLayer) that the architecture depends on
_KWARGS = ("z_dim", "w_dim", "img_resolution", "img_channels", "channel_base", "channel_max", "num_layers", "num_critical",
           "first_cutoff", "first_stopband", "last_stopband_rel", "margin_size", "output_scale", "conv_kernel", "filter_size",
           "lrelu_upsampling", "use_radial_filters", "conv_clamp")


def config_from_init_kwargs(kwargs: dict) -> dict:
    """A config from a pickled ``G_ema``'s ``_init_kwargs`` (only what train.py passed: the rest
    keeps NVIDIA's defaults). ``synthesis_kwargs`` (older snapshots) and ``mapping_kwargs`` are
    flattened."""
    flat = {**kwargs, **dict(kwargs.get("synthesis_kwargs") or {})}
    mapping = dict(kwargs.get("mapping_kwargs") or {})
    if int(flat.get("c_dim", 0) or 0):
        raise ValueError(f"a class-conditional StyleGAN3 generator (c_dim {flat['c_dim']}); conditional models are not supported")
    config = {k: (v.item() if hasattr(v, "item") else v) for k, v in flat.items() if k in _KWARGS}
    config["mapping_layers"] = int(mapping.get("num_layers", DEFAULTS["mapping_layers"]))
    if "lr_multiplier" in mapping:
        config["lr_multiplier"] = float(mapping["lr_multiplier"])
    return config


def is_stylegan3_state(state: dict) -> bool:
    """Whether a state dict in NVIDIA's names is a StyleGAN3 generator (its Fourier-feature input)."""
    return "synthesis.input.freqs" in state and "mapping.fc0.weight" in state


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer's settings, as ``SynthesisNetwork.__init__`` derives them."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: float
    out_sampling_rate: float
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    padding: tuple[int, int, int, int]
    radial: bool


def schedule(config: dict) -> tuple[dict, list[LayerSpec]]:
    """(input settings, per-layer settings) of a config (SPEC 13.3)."""
    c = {**DEFAULTS, **config}
    n, nc, res = c["num_layers"], c["num_critical"], c["img_resolution"]
    last_cutoff = res / 2
    last_stopband = last_cutoff * c["last_stopband_rel"]
    exponents = np.minimum(np.arange(n + 1) / (n - nc), 1)
    cutoffs = c["first_cutoff"] * (last_cutoff / c["first_cutoff"]) ** exponents
    stopbands = c["first_stopband"] * (last_stopband / c["first_stopband"]) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + c["margin_size"] * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((c["channel_base"] / 2) / cutoffs, c["channel_max"]))
    channels[-1] = c["img_channels"]
    if "channels" in config:  # read from a state dict: what the weights say
        channels = np.asarray(config["channels"], dtype=np.float64)
    inp = {"channels": int(channels[0]), "size": int(sizes[0]), "sampling_rate": float(rates[0]), "bandwidth": float(cutoffs[0])}
    layers = []
    for i in range(n + 1):
        p = max(i - 1, 0)
        is_torgb = i == n
        critical = i >= n - nc
        kernel = 1 if is_torgb else int(c["conv_kernel"])
        s_in, s_out = float(rates[p]), float(rates[i])
        tmp = max(s_in, s_out) * (1 if is_torgb else c["lrelu_upsampling"])
        up, down = int(np.rint(tmp / s_in)), int(np.rint(tmp / s_out))
        up_taps = c["filter_size"] * up if up > 1 and not is_torgb else 1
        down_taps = c["filter_size"] * down if down > 1 and not is_torgb else 1
        in_size, out_size = int(sizes[p]), int(sizes[i])
        total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
        lo = (total + up) // 2
        layers.append(LayerSpec(
            name=f"L{i}_{out_size}_{int(channels[i])}", is_torgb=is_torgb, is_critically_sampled=critical,
            in_channels=int(channels[p]), out_channels=int(channels[i]), in_size=in_size, out_size=out_size,
            in_sampling_rate=s_in, out_sampling_rate=s_out, in_cutoff=float(cutoffs[p]), out_cutoff=float(cutoffs[i]),
            in_half_width=float(half_widths[p]), out_half_width=float(half_widths[i]), conv_kernel=kernel,
            up_factor=up, down_factor=down, up_taps=up_taps, down_taps=down_taps,
            padding=(lo, total - lo, lo, total - lo), radial=bool(c["use_radial_filters"]) and not critical))
    return inp, layers


class FullyConnected(nn.Module):
    """NVIDIA's FullyConnectedLayer: weight scaled by lr / sqrt(in), bias by lr."""

    def __init__(self, in_features, out_features, lr_multiplier=1.0, bias_init=0.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.as_tensor(np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]).copy()))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x):
        w, b = self.weight * self.weight_gain, self.bias * self.bias_gain
        if not self.activation:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return fused_leaky_relu(x.matmul(w.t()), b, 0.2, math.sqrt(2))


class MappingNetwork(nn.Module):
    def __init__(self, z_dim, w_dim, num_ws, num_layers=2, lr_multiplier=0.01):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        features = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnected(features[i], features[i + 1], lr_multiplier, activation=True))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class SynthesisInput(nn.Module):
    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.channels, self.size, self.sampling_rate, self.bandwidth = channels, size, sampling_rate, bandwidth
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth  # NVIDIA's draw; checkpoints hold the real ones
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = FullyConnected(w_dim, 4, bias_init=[1, 0, 0, 0])
        nn.init.zeros_(self.affine.weight)
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    @staticmethod
    def normalise(t: torch.Tensor) -> torch.Tensor:
        """The affine output ``[B, 4]`` -> ``(c, s, tx, ty)``: divided by the norm of its first two."""
        return t / t[:, :2].norm(dim=1, keepdim=True)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t = (c, s, tx, ty)`` ``[B, 4]`` (the normalised affine output, or a StyleSpace entry) -> ``[B, C, size, size]``."""
        b = t.shape[0]
        eye = torch.eye(3, device=t.device, dtype=t.dtype)
        m_r = eye.repeat(b, 1, 1)
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = eye.repeat(b, 1, 1)
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.to(t.dtype).unsqueeze(0)
        freqs, phases = self.freqs.to(t.dtype).unsqueeze(0), self.phases.to(t.dtype).unsqueeze(0)
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=t.device, dtype=t.dtype)
        theta[0, 0] = 0.5 * self.size / self.sampling_rate
        theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grids = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [B, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


def modulated_conv2d(x, weight, styles, padding, demodulate, input_gain):
    """StyleGAN3's modulated convolution, one grouped convolution over the batch."""
    batch, in_channels = x.shape[0], x.shape[1]
    out_channels, _, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(batch, -1, 1, 1, 1)
    w = w * input_gain
    x = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, in_channels, kh, kw), padding=padding, groups=batch)
    return x.reshape(batch, -1, *x.shape[2:])


class SynthesisLayer(nn.Module):
    def __init__(self, w_dim, spec: LayerSpec, conv_clamp):
        super().__init__()
        self.spec, self.conv_clamp = spec, conv_clamp
        self.impl = "auto"  # the ops backend (StyleGAN3Generator.set_ops_backend)
        self.affine = FullyConnected(w_dim, spec.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, spec.conv_kernel, spec.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        # Designed at the layer's temporary rate max(s_in, s_out) x lrelu_upsampling = s_in x up; the
        # 1-tap ones are None and absent from the state dict, as NVIDIA's.
        tmp = spec.in_sampling_rate * spec.up_factor
        self.register_buffer("up_filter", design_lowpass_filter(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, tmp))
        self.register_buffer("down_filter", design_lowpass_filter(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2, tmp, spec.radial))

    def style(self, w: torch.Tensor) -> torch.Tensor:
        """This layer's StyleSpace coordinate: the modulation it uses (ToRGB: already scaled)."""
        s = self.affine(w)
        if self.spec.is_torgb:
            s = s * (1 / math.sqrt(self.spec.in_channels * self.spec.conv_kernel ** 2))
        return s

    def forward(self, x, s):
        spec = self.spec
        x = modulated_conv2d(x, self.weight, s, spec.conv_kernel - 1, not spec.is_torgb, self.magnitude_ema.rsqrt())
        gain, slope = (1.0, 1.0) if spec.is_torgb else (math.sqrt(2), 0.2)
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype), spec.up_factor, spec.down_factor,
                              spec.padding, gain, slope, self.conv_clamp, impl=self.impl)


class SynthesisNetwork(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        c = {**DEFAULTS, **config}
        inp, self.specs = schedule(config)
        self.output_scale = c["output_scale"]
        self.input = SynthesisInput(c["w_dim"], inp["channels"], inp["size"], inp["sampling_rate"], inp["bandwidth"])
        self.layer_names = [spec.name for spec in self.specs]
        for spec in self.specs:
            setattr(self, spec.name, SynthesisLayer(c["w_dim"], spec, c["conv_clamp"]))

    def forward(self, styles, noise=None, generator=None, layer_hook=None, start=None):
        """StyleSpace -> image ``[B, 3, R, R]`` (not clamped). ``noise`` and ``generator`` are
        accepted and ignored (StyleGAN3 has no noise inputs). ``layer_hook(i, features, None)``
        runs after synthesis layer ``i`` (``specs[i]`` says its grid) and returns the features
        (and None); there is no resolution ladder, so no partial ``start``."""
        if start is not None:
            raise NotImplementedError("StyleGAN3 synthesis cannot resume from a partial state (every layer has its own grid); render all of it")
        if len(styles) != len(self.layer_names) + 1:
            raise ValueError(f"expected {len(self.layer_names) + 1} style vectors (the input's 4 values, then one per layer), found {len(styles)}")
        x = self.input(styles[0])
        for i, (name, s) in enumerate(zip(self.layer_names, styles[1:])):
            x = getattr(self, name)(x, s)
            if layer_hook is not None:
                x, _ = layer_hook(i, x, None)
        return x * self.output_scale if self.output_scale != 1 else x


@dataclass(frozen=True)
class StyleGAN3Layer(StyleLayer):
    """A StyleSpace layer of StyleGAN3: the input (4 values), a synthesis layer, or ToRGB."""

    torgb: bool = False

    @property
    def is_torgb(self) -> bool:
        return self.torgb


def user_transform(rotate: float, translate: tuple[float, float]) -> np.ndarray:
    """``inverse([[cos a, sin a, tx], [-sin a, cos a, ty], [0, 0, 1]])`` in float64, ``a`` =
    ``rotate`` degrees (``gen_images.py``'s ``make_transform`` and the buffer it sets; SPEC 13.4)."""
    a = rotate / 360 * 2 * np.pi
    m = np.array([[np.cos(a), np.sin(a), translate[0]], [-np.sin(a), np.cos(a), translate[1]], [0, 0, 1]], dtype=np.float64)
    return np.linalg.inv(m)


def layer_mask(mask: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
    """An image-space mask ``[B, 1, R, R]`` on a synthesis layer's grid: the image spans the central
    ``out_sampling_rate`` samples of its ``out_size`` (the rest is the margin the layer computes
    around the image, SPEC 13.4), so the mask is area-resized to that many samples and padded with
    its edge values over the margin."""
    inner = min(int(round(spec.out_sampling_rate)), spec.out_size)
    m = mask if mask.shape[-1] == inner else F.interpolate(mask, size=(inner, inner), mode="area")
    pad = (spec.out_size - inner) // 2
    return F.pad(m, [pad, spec.out_size - inner - pad] * 2, mode="replicate") if pad or spec.out_size != inner else m


class StyleGAN3Generator(nn.Module):
    """Mapping + synthesis with NVIDIA's names; the pack's generator interface (``mapping``,
    ``to_w_plus``, ``truncate``, ``styles``, ``synthesis``, ``forward``, ``style_layers``)."""

    architecture = "stylegan3"

    def __init__(self, config: dict):
        super().__init__()
        c = {**DEFAULTS, **config}
        self._config = {k: v for k, v in config.items()}
        self.size, self.style_dim, self.z_dim = int(c["img_resolution"]), int(c["w_dim"]), int(c["z_dim"])
        self.n_latent = int(c["num_layers"]) + 2
        self.mapping = MappingNetwork(c["z_dim"], c["w_dim"], self.n_latent, c["mapping_layers"], c["lr_multiplier"])
        self.synthesis = SynthesisNetwork(config)
        self.has_w_avg = True
        self.precision, self.ops_backend = "fp32", "auto"
        self.style_layers = [StyleGAN3Layer(0, "input", "synthesis.input", 0, 4, self.synthesis.input.size)] + [
            StyleGAN3Layer(i + 1, spec.name, f"synthesis.{spec.name}", i + 1, spec.in_channels, spec.out_size, spec.is_torgb)
            for i, spec in enumerate(self.synthesis.specs)]

    # ---- configuration ----

    @property
    def config(self) -> dict:
        return {"architecture": self.architecture, **self._config}

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    @property
    def num_layers(self) -> int:
        return 0  # noise maps: none

    @property
    def n_mlp(self) -> int:
        return self.mapping.num_layers

    @classmethod
    def from_config(cls, config: dict) -> "StyleGAN3Generator":
        return cls({k: v for k, v in config.items() if k != "architecture"})

    def set_precision(self, precision: str) -> "StyleGAN3Generator":
        if precision != "fp32":
            raise ValueError(f"StyleGAN3 generators run in fp32 only here (found precision {precision!r})")
        return self

    def set_ops_backend(self, impl: str) -> "StyleGAN3Generator":
        from ..ops.backend import resolve

        resolve(impl)  # a bad name is an error
        self.ops_backend = impl
        for name in self.synthesis.layer_names:
            getattr(self.synthesis, name).impl = impl
        return self

    # ---- latent spaces ----

    def truncation_center(self) -> torch.Tensor:
        return self.w_avg[None]

    truncate = staticmethod(Generator.truncate)
    style_mix = Generator.style_mix

    def to_w_plus(self, w: torch.Tensor) -> torch.Tensor:
        if w.ndim == 2:
            return w[:, None].repeat(1, self.n_latent, 1)
        if w.ndim != 3 or w.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(f"expected W [B, {self.style_dim}] or W+ [B, {self.n_latent}, {self.style_dim}] for this StyleGAN3 generator, found {list(w.shape)}")
        return w

    def styles(self, w_plus: torch.Tensor) -> list[torch.Tensor]:
        """W+ -> StyleSpace (stylegan3-editing's W2S): the input's ``(c, s, tx, ty)``, then every layer's modulation."""
        w_plus = self.to_w_plus(w_plus).float()
        syn = self.synthesis
        out = [syn.input.normalise(syn.input.affine(w_plus[:, 0]))]
        return out + [getattr(syn, name).style(w_plus[:, 1 + i]) for i, name in enumerate(syn.layer_names)]

    def forward(self, w_plus: torch.Tensor, noise=None, generator=None) -> torch.Tensor:
        return self.synthesis(self.styles(w_plus))

    @torch.no_grad()
    def style_weights(self) -> list[torch.Tensor | None]:
        """Per StyleSpace layer, the float64 ``[C, D]`` linear part of W -> style (ToRGB with its
        1 / sqrt(C_in)); None for the input, whose ``(c, s, tx, ty)`` is normalised (not linear)."""
        syn, out = self.synthesis, [None]
        for spec in syn.specs:
            a = getattr(syn, spec.name).affine
            w = a.weight.detach().double() * a.weight_gain
            out.append(w / math.sqrt(spec.in_channels * spec.conv_kernel ** 2) if spec.is_torgb else w)
        return out

    def make_noise(self, batch: int, mode="const", generator=None) -> list:
        return []

    def with_transform(self, rotate: float = 0.0, translate: tuple[float, float] = (0.0, 0.0)) -> "StyleGAN3Generator":
        """A copy whose output is rotated by ``rotate`` degrees and translated by ``translate``
        (in image units: 1 = the image's width), as NVIDIA's ``gen_images.py --rotate --translate``:
        the input's ``transform`` buffer holds the inverse of ``make_transform(translate, rotate)``.
        The styles are unchanged; the content moves continuously (no texture sticking)."""
        g = self.copy()
        g.synthesis.input.transform.copy_(torch.from_numpy(user_transform(rotate, translate)).float())
        return g

    # ---- checkpoints ----

    @staticmethod
    def config_from_state_dict(state: dict) -> dict:
        """The config a state dict in NVIDIA's names implies: sizes and channels from its layer
        names and shapes, the other settings NVIDIA's defaults (``schedule`` is then checked
        against every filter's shape by ``from_state_dict``)."""
        names = sorted({k.split(".")[1] for k in state if k.startswith("synthesis.L")}, key=lambda n: int(n[1:].split("_")[0]))
        if not names or "mapping.fc0.weight" not in state or "synthesis.input.freqs" not in state:
            raise ValueError("not a StyleGAN3 generator state dict (NVIDIA names: mapping.fc0.weight, synthesis.input.freqs, synthesis.L0_...)")
        n_map = 0
        while f"mapping.fc{n_map}.weight" in state:
            n_map += 1
        w0 = state[f"synthesis.{names[0]}.weight"]
        channels = [int(state["synthesis.input.weight"].shape[0])] + [int(state[f"synthesis.{n}.weight"].shape[0]) for n in names]
        last = state[f"synthesis.{names[-1]}.weight"]
        down_radial = [state.get(f"synthesis.{n}.down_filter") for n in names]
        return {
            "z_dim": int(state["mapping.fc0.weight"].shape[1]), "w_dim": int(state["mapping.fc0.weight"].shape[0]),
            "img_resolution": int(names[-1].split("_")[1]), "img_channels": int(last.shape[0]), "mapping_layers": n_map,
            "num_layers": len(names) - 1, "conv_kernel": int(w0.shape[-1]),
            "use_radial_filters": any(f is not None and f.ndim == 2 for f in down_radial),
            "channels": channels[1:],  # each layer's output channels (the input has the first one's)
        }

    @classmethod
    def from_state_dict(cls, state: dict, config: dict | None = None, source: str = "state dict") -> "StyleGAN3Generator":
        """Build a generator shaped like ``state`` (NVIDIA names) and load it. A missing
        ``synthesis.input.transform`` is the identity (stylegan3-editing's converted files)."""
        config = {k: v for k, v in (config or cls.config_from_state_dict(state)).items() if k != "architecture"}
        with torch.device("meta"):
            g = cls(config)
        expected = {k: v for k, v in g.state_dict().items()}
        missing = [k for k in expected if k not in state and k != "synthesis.input.transform"]
        unexpected = [k for k in state if k not in expected]
        wrong = [f"{k}: expected {list(v.shape)}, found {list(state[k].shape)}" for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
        if missing or unexpected or wrong:
            parts = ([f"missing {len(missing)} keys (e.g. {', '.join(missing[:4])})"] if missing else []) + (
                [f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:4])})"] if unexpected else []) + (
                [f"{len(wrong)} shape mismatches ({'; '.join(wrong[:3])})"] if wrong else [])
            raise ValueError(f"{source}: does not match a StyleGAN3 generator with these settings ({', '.join(parts)}); a file trained with "
                             "non-default architecture settings needs its NVIDIA pickle, which records them")
        state = {k: v.float() for k, v in state.items()}
        state.setdefault("synthesis.input.transform", torch.eye(3))
        g.load_state_dict(state, strict=True, assign=True)
        g._config = config
        return g

    def copy(self) -> "StyleGAN3Generator":
        """An independent generator with this one's weights and settings."""
        g = StyleGAN3Generator.from_state_dict({k: v.detach().clone() for k, v in self.state_dict().items()}, self._config)
        for name in ("source", "is_tiny_stand_in", "adaptation", "ops_backend"):
            if hasattr(self, name):
                setattr(g, name, getattr(self, name))
        return g.to(self.w_avg.device).train(self.training).requires_grad_(False)
