"""Face parsing (BiSeNet, the 19-class CelebAMask-HQ layout of face-parsing.PyTorch's
``79999_iter.pth``): image -> per-pixel class -> masks of chosen parts.

The module tree (``cp.resnet.*``, ``cp.arm16``, ``ffm``, ``conv_out`` ...) is written from the
public architecture so the released state dict loads with its own key names.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from .generator import shape_mismatches

CLASSES = (
    "background", "skin", "left_brow", "right_brow", "left_eye", "right_eye", "eyeglasses",
    "left_ear", "right_ear", "earring", "nose", "mouth", "upper_lip", "lower_lip", "neck",
    "necklace", "cloth", "hair", "hat",
)
# Names users think in, each a set of parser classes.
PARTS = {
    "skin": ("skin",), "brows": ("left_brow", "right_brow"), "eyes": ("left_eye", "right_eye"),
    "eyeglasses": ("eyeglasses",), "ears": ("left_ear", "right_ear"), "earrings": ("earring",),
    "nose": ("nose",), "mouth": ("mouth", "upper_lip", "lower_lip"), "lips": ("upper_lip", "lower_lip"),
    "neck": ("neck",), "necklace": ("necklace",), "cloth": ("cloth",), "hair": ("hair",), "hat": ("hat",),
    "background": ("background",),
    "face": ("skin", "left_brow", "right_brow", "left_eye", "right_eye", "nose", "mouth", "upper_lip", "lower_lip"),
}
INPUT_SIZE = 512
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = self.downsample(x) if hasattr(self, "downsample") else x
        return F.relu(out + shortcut)


class ResNet18(nn.Module):
    """Returns the 1/8, 1/16 and 1/32 resolution features."""

    def __init__(self, widths=(64, 128, 256, 512), blocks=2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for i, w in enumerate(widths):
            layer = [BasicBlock(cin, w, 1 if i == 0 else 2)] + [BasicBlock(w, w) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            cin = w

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        f8 = self.layer2(self.layer1(x))
        f16 = self.layer3(f8)
        return f8, f16, self.layer4(f16)


class AttentionRefinement(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))


class ContextPath(nn.Module):
    def __init__(self, widths=(64, 128, 256, 512), head=128):
        super().__init__()
        self.resnet = ResNet18(widths)
        self.arm16 = AttentionRefinement(widths[2], head)
        self.arm32 = AttentionRefinement(widths[3], head)
        self.conv_head32 = ConvBNReLU(head, head)
        self.conv_head16 = ConvBNReLU(head, head)
        self.conv_avg = ConvBNReLU(widths[3], head, 1, 1, 0)

    def forward(self, x):
        f8, f16, f32 = self.resnet(x)
        avg = self.conv_avg(f32.mean((2, 3), keepdim=True))
        up32 = self.conv_head32(F.interpolate(self.arm32(f32) + avg, f16.shape[2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(f16) + up32, f8.shape[2:], mode="nearest"))
        return f8, up16, up32


class FeatureFusion(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, 1, 1, 0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, a, b):
        feat = self.convblk(torch.cat([a, b], 1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))
        return feat * atten + feat


class Output(nn.Module):
    def __init__(self, cin, mid, n_classes):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Only the main head runs at inference (``forward``); the auxiliary heads (``conv_out16/32``)
    exist so the released state dict loads strictly, and ``outputs`` runs all three as the reference's
    ``forward`` does."""

    def __init__(self, n_classes=19, widths=(64, 128, 256, 512), head=128, fuse=256):
        super().__init__()
        self.cp = ContextPath(widths, head)
        self.ffm = FeatureFusion(widths[1] + head, fuse)
        self.conv_out = Output(fuse, fuse, n_classes)
        self.conv_out16 = Output(head, 64, n_classes)
        self.conv_out32 = Output(head, 64, n_classes)

    def forward(self, x):
        f8, cp8, _ = self.cp(x)
        logits = self.conv_out(self.ffm(f8, cp8))
        return F.interpolate(logits, x.shape[2:], mode="bilinear", align_corners=True)

    def heads(self, x):
        """The three head logits before upsampling: main (1/8), ``conv_out16`` on the context path's
        1/8 map, ``conv_out32`` on its 1/16 map."""
        f8, cp8, cp16 = self.cp(x)
        return self.conv_out(self.ffm(f8, cp8)), self.conv_out16(cp8), self.conv_out32(cp16)

    def outputs(self, x):
        """(feat_out, feat_out16, feat_out32) at the input size, as face-parsing.PyTorch's forward."""
        return tuple(F.interpolate(h, x.shape[2:], mode="bilinear", align_corners=True) for h in self.heads(x))

    @classmethod
    def from_state_dict(cls, state: dict, source: str = "state dict") -> "BiSeNet":
        state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
        try:
            widths = tuple(state[f"cp.resnet.layer{i}.0.conv1.weight"].shape[0] for i in range(1, 5))
            n_classes = state["conv_out.conv_out.weight"].shape[0]
            head = state["cp.arm16.conv.conv.weight"].shape[0]
            fuse = state["ffm.convblk.conv.weight"].shape[0]
        except KeyError as e:
            raise CheckpointError(source, "a BiSeNet face parser (face-parsing.PyTorch 79999_iter.pth: cp.resnet.*, ffm.*, conv_out.*)", f"no key {e.args[0]!r}; keys {sorted(state)[:5]}") from None
        net = cls(n_classes, widths, head, fuse)
        wrong = shape_mismatches(net.state_dict(), state)
        if wrong:
            raise CheckpointError(source, f"a BiSeNet face parser with widths {list(widths)} and {n_classes} classes (as read from the file)",
                                  f"{len(wrong)} tensors of other shapes ({'; '.join(wrong[:3])})")
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(source, "the BiSeNet key layout", f"missing {missing[:4]}, unexpected {unexpected[:4]}")
        return net.eval()


def parse(net: BiSeNet, images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3] images in [0, 1] -> class index [B, H, W] (the parser sees 512x512 inputs with
    ImageNet normalisation, as in face-parsing.PyTorch; labels come back at the input size)."""
    x = images[..., :3].permute(0, 3, 1, 2).float()
    h, w = x.shape[2:]
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    x = (x - x.new_tensor(MEAN)[:, None, None]) / x.new_tensor(STD)[:, None, None]
    logits = net(x)
    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits.argmax(1)
