"""LPIPS, the learned perceptual distance (Zhang et al. 2018; pip package ``lpips`` 0.1.4, heads v0.1).

``d(x0, x1) = Σ_k mean_hw( w_k · (n_k(x0) - n_k(x1))² )`` where ``n_k`` is backbone tap k, unit-normalised
over channels at each pixel, and ``w_k ≥ 0`` the per-channel head of layer k (SPEC 9.1). The backbone
is torchvision's VGG16 or AlexNet ``features`` with torchvision's layer indices, so its state dict
keys are exactly those of ``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth``.

``embed`` gives the same distance as a squared Euclidean distance between flat vectors: NVIDIA's
projector (and PTI's) computes the target's embedding once and compares every step against it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's features layouts: ("conv", in, out, kernel, stride, padding) / ("pool", kernel, stride).
# A ReLU follows every conv. Taps are the ReLU outputs at these features indices (before each pool).
LAYOUTS = {
    "vgg": {
        "layers": [
            ("conv", 3, 64, 3, 1, 1), ("conv", 64, 64, 3, 1, 1), ("pool", 2, 2),
            ("conv", 64, 128, 3, 1, 1), ("conv", 128, 128, 3, 1, 1), ("pool", 2, 2),
            ("conv", 128, 256, 3, 1, 1), ("conv", 256, 256, 3, 1, 1), ("conv", 256, 256, 3, 1, 1), ("pool", 2, 2),
            ("conv", 256, 512, 3, 1, 1), ("conv", 512, 512, 3, 1, 1), ("conv", 512, 512, 3, 1, 1), ("pool", 2, 2),
            ("conv", 512, 512, 3, 1, 1), ("conv", 512, 512, 3, 1, 1), ("conv", 512, 512, 3, 1, 1),
        ],
        "taps": (3, 8, 15, 22, 29),  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    },
    "alex": {
        "layers": [
            ("conv", 3, 64, 11, 4, 2), ("pool", 3, 2),
            ("conv", 64, 192, 5, 1, 2), ("pool", 3, 2),
            ("conv", 192, 384, 3, 1, 1), ("conv", 384, 256, 3, 1, 1), ("conv", 256, 256, 3, 1, 1),
        ],
        "taps": (1, 4, 7, 9, 11),  # relu1 .. relu5
    },
}
NETS = tuple(LAYOUTS)

# v0.1 input scaling: ImageNet mean / std rewritten for images in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def features(net: str) -> nn.Sequential:
    """The backbone up to its last tap, indexed as torchvision's ``vgg16().features`` / ``alexnet().features``."""
    if net not in LAYOUTS:
        raise ValueError(f"LPIPS net must be one of {list(NETS)}, found {net!r}")
    modules: list[nn.Module] = []
    for spec in LAYOUTS[net]["layers"]:
        if spec[0] == "conv":
            _, cin, cout, k, stride, pad = spec
            modules += [nn.Conv2d(cin, cout, k, stride, pad), nn.ReLU()]
        else:
            modules.append(nn.MaxPool2d(spec[1], spec[2]))
    return nn.Sequential(*modules)


def channels(net: str) -> list[int]:
    """Channels of the 5 taps (the conv before each tap's ReLU)."""
    out, index, last = [], 0, None
    for spec in LAYOUTS[net]["layers"]:
        if spec[0] == "conv":
            last, index = spec[2], index + 2  # conv, ReLU
            if index - 1 in LAYOUTS[net]["taps"]:
                out.append(last)
        else:
            index += 1
    return out


def unit_normalize(f: torch.Tensor) -> torch.Tensor:
    # The epsilon is added to the norm, outside the square root (lpips.normalize_tensor).
    return f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10)


class LPIPS(nn.Module):
    """``LPIPS(net)(x0, x1)`` -> ``[B]`` distances of images ``[B, 3, H, W]`` in [-1, 1]."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        self.net_name = net
        self.net = features(net)
        self.taps = LAYOUTS[net]["taps"]
        self.heads = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in channels(net)])
        self.register_buffer("shift", torch.tensor(SHIFT).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).reshape(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def taps_of(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Raw backbone activations at the 5 taps (before unit normalisation)."""
        h = (x - self.shift) / self.scale
        out = []
        for i, m in enumerate(self.net):
            h = m(h)
            if i in self.taps:
                out.append(h)
                if len(out) == len(self.taps):
                    break
        return out

    def per_layer(self, x0: torch.Tensor, x1: torch.Tensor) -> list[torch.Tensor]:
        """The 5 layer terms, each ``[B]``; their sum is the distance."""
        if x0.shape != x1.shape:
            raise ValueError(f"LPIPS compares images of one shape, found {list(x0.shape)} and {list(x1.shape)}")
        batch = x0.shape[0]
        # Both images through the backbone at once: one pass, same numbers as two.
        taps = self.taps_of(torch.cat([x0, x1]))
        terms = []
        for f, head in zip(taps, self.heads):
            n = unit_normalize(f)
            d = (n[:batch] - n[batch:]).square()
            terms.append(F.conv2d(d, head).mean([1, 2, 3]))
        return terms

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.per_layer(x0, x1)).sum(0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` vectors whose squared distance is the LPIPS distance (SPEC 9.1, embedding form):
        the concatenated ``n_k · sqrt(w_k) / sqrt(H_k W_k)``."""
        parts = []
        for f, head in zip(self.taps_of(x), self.heads):
            n = unit_normalize(f) * head.sqrt() / (f.shape[2] * f.shape[3]) ** 0.5
            parts.append(n.flatten(1))
        return torch.cat(parts, 1)
