"""IR-SE residual networks: the ArcFace identity backbone (``model_ir_se50.pth``) and the body
that e4e's encoder shares with it. Key names follow the official checkpoints; depth and widths
are read from a checkpoint, so small test networks load too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

# IR-SE50: (input channels, output channels, units) per stage; the first unit of a stage strides 2.
IR_SE50 = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))


def units_of(stages) -> list[tuple[int, int, int]]:
    """(in, out, stride) of every residual unit."""
    return [(cin if i == 0 else cout, cout, 2 if i == 0 else 1) for cin, cout, n in stages for i in range(n)]


class SqueezeExcite(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * gate


class ResidualUnitIRSE(nn.Module):
    """BN -> conv3x3 -> PReLU -> conv3x3 (stride) -> BN -> squeeze-excite, plus a shortcut that
    subsamples (same width) or projects (conv1x1 + BN)."""

    def __init__(self, in_channel, depth, stride, se_reduction=16):
        super().__init__()
        self.stride = stride
        if in_channel != depth:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcite(depth, se_reduction),
        )

    def forward(self, x):
        # A 1x1 max-pool with stride s (the reference's shortcut) is plain subsampling.
        shortcut = self.shortcut_layer(x) if hasattr(self, "shortcut_layer") else x[:, :, :: self.stride, :: self.stride]
        return self.res_layer(x) + shortcut


def input_layer(width=64) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width))


def body(units) -> nn.Sequential:
    return nn.Sequential(*[ResidualUnitIRSE(cin, cout, stride) for cin, cout, stride in units])


def units_from_state(state: dict, prefix: str = "body.") -> list[tuple[int, int, int]]:
    """Residual units described by a state dict: widths from the conv shapes; stride 2 for the
    first unit and for every unit that changes width (how IR-SE stages are built)."""
    units, i = [], 0
    while f"{prefix}{i}.res_layer.1.weight" in state:
        w = state[f"{prefix}{i}.res_layer.1.weight"]
        cout, cin = w.shape[0], w.shape[1]
        units.append((cin, cout, 2 if i == 0 or cin != cout else 1))
        i += 1
    return units


class ArcFaceBackbone(nn.Module):
    """ArcFace IR-SE50 (``Backbone(112, 50, 'ir_se')`` of TreB1eN / pSp / StyleCLIP): a 112x112
    face -> L2-normalised 512-d identity embedding (eval mode: dropout off, BN running stats)."""

    def __init__(self, units=None, embedding=512, final_size=7):
        super().__init__()
        units = units or units_of(IR_SE50)
        width = units[-1][1]
        self.input_layer = input_layer(units[0][0])
        self.body = body(units)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(width), nn.Dropout(0.6), nn.Flatten(), nn.Linear(width * final_size * final_size, embedding), nn.BatchNorm1d(embedding)
        )

    def forward(self, x):
        x = self.output_layer(self.body(self.input_layer(x)))
        return F.normalize(x, dim=1)

    @classmethod
    def from_state_dict(cls, state: dict, source: str = "state dict") -> "ArcFaceBackbone":
        units = units_from_state(state)
        if not units or "output_layer.3.weight" not in state:
            raise CheckpointError(source, "an ArcFace IR-SE backbone (model_ir_se50.pth: input_layer.*, body.<i>.*, output_layer.*)", f"keys {sorted(state)[:6]}")
        linear = state["output_layer.3.weight"]
        width = units[-1][1]
        final = int(round((linear.shape[1] / width) ** 0.5))
        net = cls(units, linear.shape[0], final)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(source, "the ArcFace IR-SE key layout", f"missing {missing[:4]}, unexpected {unexpected[:4]}")
        return net.eval()


def identity_features(net: ArcFaceBackbone, images: torch.Tensor) -> torch.Tensor:
    """ID embedding of generator images [B, 3, H, W] in [-1, 1] as StyleCLIP's IDLoss computes
    it: pool to 256, crop the face [35:223, 32:220], pool to 112, backbone (L2-normalised)."""
    if images.shape[2] != 256:
        images = F.adaptive_avg_pool2d(images, (256, 256))
    images = images[:, :, 35:223, 32:220]
    return net(F.adaptive_avg_pool2d(images, (112, 112)))
