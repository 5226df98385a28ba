"""LPIPS parity with the pip package ``lpips`` 0.1.4 (heads v0.1) on fixtures/lpips: procedural
torchvision-layout backbones (rule re-created below from the fixture's json), the package's real
heads, 64 px and 256 px pairs, both nets, per-layer terms and raw backbone taps (SPEC section 9)."""
import hashlib
import math
import zlib

import numpy as np
import pytest
import torch

from conftest import load_fixture, strip
from styleclip_core.errors import CheckpointError
from styleclip_core.formats import lpips_files
from styleclip_core.models.lpips import LPIPS, channels

TORCHVISION = {"vgg": "vgg16", "alex": "alexnet"}


def procedural_backbone(net: str) -> dict[str, torch.Tensor]:
    """fixtures/lpips.json procedural_backbone.rule, in torchvision's key names (features.*)."""
    out = {}
    with torch.device("meta"):
        shapes = {f"features.{k}": v.shape for k, v in lpips_files.features(net).state_dict().items()}
    for key, shape in shapes.items():
        name = f"{TORCHVISION[net]}.{key}"
        t = np.random.RandomState(zlib.crc32(name.encode("utf-8"))).standard_normal(int(np.prod(shape))).reshape(shape)
        t = t * math.sqrt(2 / int(np.prod(shape[1:]))) if key.endswith("weight") else t * 0.05
        out[key] = torch.from_numpy(t).float()
    return out


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("lpips")


@pytest.fixture(scope="module", params=["vgg", "alex"])
def model(request, fixture, tmp_path_factory):
    net = request.param
    tensors, _ = fixture
    folder = tmp_path_factory.mktemp(net)
    backbone = procedural_backbone(net)
    # A torchvision file holds the classifier too; the loader must ignore it.
    torch.save({**backbone, "classifier.1.weight": torch.zeros(4, 4)}, folder / lpips_files.BACKBONE_FILES[net])
    heads = strip(tensors, f"state.{net}.")
    torch.save({k: v for k, v in heads.items() if k.startswith("lin")}, folder / "heads.pth")
    return net, lpips_files.load_lpips(net, str(folder / lpips_files.BACKBONE_FILES[net]), str(folder / "heads.pth")), backbone


def test_procedural_backbone_is_the_fixtures(fixture, model, parity):
    """The re-created rule gives the stored first conv, the probes and the float64 sums."""
    tensors, meta = fixture
    net, _, backbone = model
    spec = meta["procedural_backbone"][net]
    by_lpips_key = {k: backbone[v["torchvision_key"]] for k, v in spec["backbone_keys"].items()}
    for suffix in ("weight", "bias"):
        assert torch.equal(by_lpips_key[f"net.slice1.0.{suffix}"], tensors[f"state.{net}.net.slice1.0.{suffix}"])
    for key, values in spec["probe_first_6_values"].items():
        assert by_lpips_key[key].flatten()[:6].tolist() == pytest.approx(values, abs=0, rel=0)
    worst = max(abs(by_lpips_key[k].double().sum().item() - s) / max(1.0, abs(s)) for k, s in spec["backbone_param_sums_float64"].items())
    # float32 rounding of ~2.4M values summed in float64: relative 1e-6 at most
    parity(f"lpips.{net}.backbone_sums", worst, 1e-6)


def test_package_heads_are_the_fixtures(fixture):
    """The heads the loader reads by default (the installed lpips wheel) are the fixture's v0.1 heads."""
    tensors, meta = fixture
    sha = dict(item.split(" sha256 ") for item in meta["lpips_wheel"].split("; lin weights files ")[1].split(", "))
    for net in ("vgg", "alex"):
        path = lpips_files.heads_path(net)
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == sha[f"weights/v0.1/{net}.pth"]
        for k, head in enumerate(lpips_files.read_heads(net)):
            assert torch.equal(head, tensors[f"state.{net}.lin{k}.model.1.weight"])


def test_distances_layers_and_taps(fixture, model, parity):
    tensors, meta = fixture
    net, lp, _ = model
    tol = meta["tolerance"]
    a, b = tensors["in.x64_a"], tensors["in.x64_b"]
    x256 = [tensors[f"in.x256_{s}_u8"].float() / 127.5 - 1 for s in "ab"]
    with torch.no_grad():
        for size, (x0, x1) in (("64", (a, b)), ("256", x256)):
            terms = lp.per_layer(x0, x1)
            d = lp(x0, x1)
            parity.close(f"lpips.{net}.d{size}", d.reshape(-1, 1, 1, 1), tensors[f"out.{net}.d{size}"], atol=tol["atol"], rtol=tol["rtol"])
            for k, term in enumerate(terms):
                parity.close(f"lpips.{net}.d{size}.layer{k}", term.reshape(-1, 1, 1, 1), tensors[f"out.{net}.d{size}.layer{k}"], atol=tol["atol"], rtol=tol["rtol"])
        for k, tap in enumerate(lp.taps_of(a)):
            parity.close(f"lpips.{net}.tap{k}_mean", tap.mean([2, 3]), tensors[f"out.{net}.tap{k}_spatial_mean_x64_a"], atol=0, rtol=tol["rtol"])
        swapped = lp(b, a)
        parity.close(f"lpips.{net}.d64_swapped", swapped.reshape(-1, 1, 1, 1), tensors[f"out.{net}.d64_swapped"], atol=tol["atol"], rtol=tol["rtol"])
    assert tensors[f"out.{net}.d64"].flatten()[2] == 0 and d.shape == (2,)
    assert lp(a, b)[2] == 0, "an identical pair is exactly 0"


def test_embedding_distance_is_lpips(fixture, model, parity):
    """SPEC 9.1's embedding form (the projector's): |e(a) - e(b)|² is the LPIPS distance."""
    tensors, meta = fixture
    net, lp, _ = model
    a, b = tensors["in.x64_a"], tensors["in.x64_b"]
    with torch.no_grad():
        embedded = (lp.embed(a) - lp.embed(b)).square().sum(1)
    # Same terms summed in another order: float32 rounding of a sum of ~1e4 terms of a value ~0.5.
    parity.close(f"lpips.{net}.embedding_d64", embedded.reshape(-1, 1, 1, 1), tensors[f"out.{net}.d64"], atol=meta["tolerance"]["atol"], rtol=meta["tolerance"]["rtol"])


def test_gradients_flow_to_the_images(model):
    _, lp, _ = model
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    lp(x * 2 - 1, torch.zeros(1, 3, 64, 64)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in lp.parameters())


def test_channels_match_the_heads():
    assert channels("vgg") == [64, 128, 256, 512, 512] and channels("alex") == [64, 192, 384, 256, 256]
    assert [h.shape[1] for h in LPIPS("alex").heads] == channels("alex")


def test_bad_backbone_files(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(CheckpointError, match=r"expected torchvision's AlexNet weights \(alexnet-owt-7be5be79.pth.*another network"):
        lpips_files.load_lpips("alex", str(other))
    swapped = tmp_path / "vgg_as_alex.pth"
    torch.save(procedural_backbone("vgg"), swapped)  # VGG's features.3 is a ReLU: AlexNet's conv is missing
    with pytest.raises(CheckpointError, match=r"AlexNet weights .*found no features.3.weight"):
        lpips_files.load_lpips("alex", str(swapped))
    reshaped = tmp_path / "wrong_shape.pth"
    torch.save({**procedural_backbone("alex"), "features.0.weight": torch.zeros(64, 3, 3, 3)}, reshaped)
    with pytest.raises(CheckpointError, match=r"features.0.weight \[64, 3, 3, 3\] \(expected \[64, 3, 11, 11\]\)"):
        lpips_files.load_lpips("alex", str(reshaped))
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        lpips_files.load_lpips("alex", str(tmp_path / "alexnet-owt-7be5be79.pth"))
    with pytest.raises(ValueError, match="one of"):
        lpips_files.load_lpips("squeeze", str(other))
