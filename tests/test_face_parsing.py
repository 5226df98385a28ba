"""Face parser: the public BiSeNet key layout loads; labels -> part masks -> refined masks."""
import pytest
import torch

from styleclip_core.errors import CheckpointError
from styleclip_core.edits.masks import part_mask, refine_mask
from styleclip_core.models.face_parser import CLASSES, BiSeNet, parse

# Keys of face-parsing.PyTorch's 79999_iter.pth named by its public model code (a sample of each block).
RELEASE_KEYS = [
    "cp.resnet.conv1.weight", "cp.resnet.bn1.running_var", "cp.resnet.layer1.0.conv1.weight", "cp.resnet.layer1.1.bn2.bias",
    "cp.resnet.layer2.0.downsample.0.weight", "cp.resnet.layer2.0.downsample.1.running_mean", "cp.resnet.layer4.1.conv2.weight",
    "cp.arm16.conv.conv.weight", "cp.arm16.conv.bn.weight", "cp.arm16.conv_atten.weight", "cp.arm16.bn_atten.bias",
    "cp.arm32.conv.conv.weight", "cp.conv_head32.conv.weight", "cp.conv_head16.bn.running_var", "cp.conv_avg.conv.weight",
    "ffm.convblk.conv.weight", "ffm.convblk.bn.weight", "ffm.conv1.weight", "ffm.conv2.weight",
    "conv_out.conv.conv.weight", "conv_out.conv_out.weight", "conv_out16.conv.bn.weight", "conv_out16.conv_out.weight", "conv_out32.conv_out.weight",
]


def test_release_layout():
    sd = BiSeNet().state_dict()
    assert all(k in sd for k in RELEASE_KEYS)
    assert not any(k.startswith("sp.") for k in sd)  # the release has no spatial path
    assert sd["conv_out.conv_out.weight"].shape == (19, 256, 1, 1) and sd["cp.resnet.layer4.0.conv1.weight"].shape == (512, 256, 3, 3)
    net = BiSeNet.from_state_dict({"module." + k: v for k, v in sd.items()})  # DataParallel prefixes are accepted
    assert len(net.state_dict()) == len(sd)


def test_parse_and_masks():
    torch.manual_seed(0)
    net = BiSeNet(widths=(8, 8, 16, 16), head=8, fuse=16).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 1.5)
    net = BiSeNet.from_state_dict(net.state_dict())
    with torch.no_grad():
        labels = parse(net, torch.rand(2, 100, 80, 3))
    assert labels.shape == (2, 100, 80) and labels.max() < len(CLASSES)
    fake = torch.zeros(1, 10, 10, dtype=torch.long)
    fake[0, 2:5, 2:5] = CLASSES.index("hair")
    fake[0, 6:8, 6:8] = CLASSES.index("upper_lip")
    assert part_mask(fake, ["hair"]).sum() == 9 and part_mask(fake, ["mouth"]).sum() == 4 and part_mask(fake, ["hair", "lips"]).sum() == 13
    grown = refine_mask(part_mask(fake, ["hair"]), dilate=1)
    assert grown.sum() == 25
    shrunk = refine_mask(part_mask(fake, ["hair"]), dilate=-1)
    assert shrunk.sum() == 1
    soft = refine_mask(part_mask(fake, ["hair"]), feather=1.0)
    assert 0 < soft[0, 1, 3] < 1
    with pytest.raises(ValueError, match="unknown face part 'beard'"):
        part_mask(fake, ["beard"])


def test_not_a_parser():
    with pytest.raises(CheckpointError, match="BiSeNet face parser"):
        BiSeNet.from_state_dict({"foo": torch.zeros(1)}, "x.pth")
