"""e4e (encoder4editing): invert aligned face photos into a generator's W+ space.

``Encoder4Editing`` follows the official module and key names (``input_layer``, ``body.<i>``,
``styles.<i>.convs/linear``, ``latlayer1/2``), so ``e4e_ffhq_encode.pt`` loads without renaming.
The body is the IR-SE network of ``irse.py``; depth, widths and the number of W+ rows are read
from the checkpoint, so small test encoders load too. The official file also carries the
generator it was trained with (``decoder.*``), which ``formats.e4e_files.load_e4e`` returns alongside.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from ..progress import Progress
from ..values import called, check_count, check_finite
from . import irse
from .generator import EqualLinear
from .render import from_unit_range

INPUT_SIZE = 256


class GradualStyleBlock(nn.Module):
    """Strided 3x3 convs (LeakyReLU 0.01) down to 1x1, then an equalized linear layer."""

    def __init__(self, in_channels: int, out_channels: int, n_convs: int):
        super().__init__()
        layers = []
        for i in range(n_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_channels, out_channels, lr_mul=1)

    def forward(self, x):
        return self.linear(self.convs(x).flatten(1))


def _upsample_add(x, y):
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


def tap_units(units) -> tuple[int, int, int]:
    """Indices of the units whose outputs feed the FPN (c1, c2, c3): the last unit of each of the
    last three stages (6, 20, 23 in IR-SE50)."""
    stage_ends = [i - 1 for i, (_, _, stride) in enumerate(units) if stride == 2 and i > 0] + [len(units) - 1]
    if len(stage_ends) < 3:
        raise ValueError(f"an e4e body needs at least 4 stages of residual units, found {len(stage_ends)}")
    return tuple(stage_ends[-3:])


class Encoder4Editing(nn.Module):
    """``Encoder4Editing(50, 'ir_se')`` at inference (every delta added): W+ codes relative to the
    generator's average latent; ``encode`` adds that average as pSp does."""

    # W+ rows before these indices read the coarse (c3), then the medium (p2) FPN level; the rest the fine one (p1).
    COARSE, MIDDLE = 3, 7

    def __init__(self, units=None, style_count: int = 18, style_dim: int = 512, start_from_latent_avg: bool = True):
        super().__init__()
        units = units or irse.units_of(irse.IR_SE50)
        self.taps = tap_units(units)
        strides = [s for _, _, s in units]
        spatial = [INPUT_SIZE // 2 ** strides[: t + 1].count(2) for t in self.taps]  # 64, 32, 16 at 256 px
        width = units[-1][1]
        self.style_count, self.style_dim = style_count, style_dim
        self.input_layer = irse.input_layer(units[0][0])
        self.body = irse.body(units)
        levels = [2 if i < self.COARSE else 1 if i < self.MIDDLE else 0 for i in range(style_count)]
        self.styles = nn.ModuleList(GradualStyleBlock(width, style_dim, int(math.log2(spatial[lv]))) for lv in levels)
        self.latlayer1 = nn.Conv2d(units[self.taps[1]][1], width, 1)
        self.latlayer2 = nn.Conv2d(units[self.taps[0]][1], width, 1)
        # Added to the codes when the checkpoint was trained with start_from_latent_avg (pSp's wrapper).
        self.register_buffer("latent_avg", torch.zeros(style_count, style_dim), persistent=False)
        self.start_from_latent_avg = start_from_latent_avg

    source = ""
    is_tiny_stand_in = False
    has_latent_avg = False

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Body taps (c1, c2, c3) of a preprocessed batch [B, 3, 256, 256]."""
        x = self.input_layer(x)
        taps = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self.taps:
                taps.append(x)
        return tuple(taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Codes [B, style_count, style_dim] without the average latent (the reference encoder's output)."""
        return self.codes(*self.features(x))

    def codes(self, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor) -> torch.Tensor:
        """The style heads on the body taps: W = w0 on every row, plus a delta per row from the FPN level of that row."""
        w0 = self.styles[0](c3)
        deltas, features = [], c3
        for i in range(1, self.style_count):
            if i == self.COARSE:
                p2 = features = _upsample_add(c3, self.latlayer1(c2))
            elif i == self.MIDDLE:
                features = _upsample_add(p2, self.latlayer2(c1))
            deltas.append(self.styles[i](features))
        return torch.cat([w0[:, None], w0[:, None] + torch.stack(deltas, 1)], 1) if deltas else w0[:, None]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        codes = self(x)
        return codes + self.latent_avg if self.start_from_latent_avg else codes

    @classmethod
    def from_state_dict(cls, state: dict, start_from_latent_avg: bool = True, source: str = "state dict") -> "Encoder4Editing":
        """Build an encoder shaped like ``state`` (no ``encoder.`` prefix) and adopt its tensors; a
        state of meta tensors yields a meta encoder (shape checks of the full-size layout)."""
        units = irse.units_from_state(state)
        style_count = 0
        while f"styles.{style_count}.linear.weight" in state:
            style_count += 1
        if not units or not style_count or "input_layer.0.weight" not in state:
            raise CheckpointError(source, "Encoder4Editing weights (input_layer.*, body.<i>.*, styles.<i>.*, latlayer1/2.*)", f"keys {sorted(state)[:6]}")
        style_dim = state["styles.0.linear.weight"].shape[0]
        try:
            with torch.device("meta"):
                net = cls(units, style_count, style_dim, start_from_latent_avg)
        except ValueError as e:
            raise CheckpointError(source, "an Encoder4Editing body (IR-SE stages)", str(e)) from None
        expected = net.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [f"{k}: expected {list(v.shape)}, found {list(state[k].shape)}" for k, v in expected.items() if k in state and state[k].shape != v.shape]
        if missing or unexpected or wrong:
            raise CheckpointError(
                source, f"an Encoder4Editing with {len(units)} residual units and {style_count} style blocks",
                f"missing {missing[:4]}, unexpected {unexpected[:4]}, shape mismatches {wrong[:3]}",
            )
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, assign=True)
        device = state["input_layer.0.weight"].device
        net.latent_avg = torch.zeros(style_count, style_dim, device=device)
        return net.eval().requires_grad_(False)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """Aligned faces [B, H, W, C] in [0, 1] -> the encoder's input [B, 3, 256, 256] in [-1, 1]
    (e4e's Resize((256, 256)) + Normalize(0.5, 0.5); a 256 px crop passes unchanged)."""
    x = from_unit_range(images)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x


@torch.no_grad()
def invert(encoder: Encoder4Editing, images: torch.Tensor, chunk: int = 4, progress: Progress | None = None,
           names: dict[str, str] | None = None) -> torch.Tensor:
    """W+ codes [B, style_count, style_dim] (average latent added) of aligned faces [B, H, W, C] in [0, 1]."""
    chunk = check_count(chunk, called(names, "chunk"))
    check_finite(images, called(names, "images"))
    device = encoder.latent_avg.device
    out, total = [], images.shape[0]
    for start in range(0, total, chunk):
        x = preprocess(images[start:start + chunk]).to(device)
        out.append(encoder.encode(x).float().cpu())
        if progress is not None:
            progress(min(start + chunk, total), total, None)
    return torch.cat(out)
