"""e4e: the encoder reproduces the reference on the full-size procedural fixture; checkpoints in
the official layout load with their generator; bad files get clear errors."""
import time

import pytest
import torch

import procedural
from conftest import load_fixture, load_manifest
from styleclip_core import e4e, tiny_models
from styleclip_core.errors import CheckpointError


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("e4e_and_id_procedural")


@pytest.fixture(scope="module")
def manifest():
    return load_manifest("e4e_ffhq_encode")


def test_procedural_weights_match_probe(fixture, manifest):
    _, meta = fixture
    keys = manifest["keys_encoder"]
    for key, first in meta["procedural_weights"]["probe_first_6_values"]["e4e"].items():
        got = procedural.value(key, keys[key]["shape"], set(keys)).flatten()[:6]
        torch.testing.assert_close(got, torch.tensor(first), atol=1e-7, rtol=0)


def test_full_size_layout_from_manifest(manifest):
    """The official 621-key layout builds the reference architecture (on the meta device: no memory)."""
    keys = manifest["keys_encoder"]
    state = {k: torch.empty(v["shape"], dtype=getattr(torch, v["dtype"]), device="meta") for k, v in keys.items()}
    net = e4e.Encoder4Editing.from_state_dict(state)
    assert (net.style_count, net.style_dim) == (manifest["style_count"], 512)
    assert net.taps == (6, 20, 23)
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == {k: v["shape"] for k, v in keys.items()}
    assert sum(v.numel() for v in net.state_dict().values()) == manifest["summary_encoder"]["num_elements"]
    assert [len(s.convs) // 2 for s in net.styles] == [4] * 3 + [5] * 4 + [6] * 11
    assert sorted(k[len("encoder."):] for k in manifest["keys_checkpoint"] if k.startswith("encoder.")) == sorted(keys)


@torch.no_grad()
def test_parity_with_reference(fixture, manifest):
    T, meta = fixture
    tol = meta["tolerance"]
    start = time.perf_counter()
    net = e4e.Encoder4Editing.from_state_dict(procedural.state_dict(manifest["keys_encoder"]))
    built = time.perf_counter()
    x = T["in.image"]
    c1, c2, c3 = net.features(x)
    codes = net(x)
    ran = time.perf_counter()
    print(f"procedural e4e: weights {built - start:.1f} s, forward {ran - built:.1f} s")
    report = {}

    def check(name, ours, ref):
        report[name] = (ours - ref).abs().max().item()
        torch.testing.assert_close(ours, ref, atol=tol["atol"], rtol=tol["rtol"], msg=lambda m: f"{name}: {m}")

    check("c3", c3, T["out.c3"])
    check("c2_spatial_mean", c2.mean((2, 3)), T["out.c2_spatial_mean"])
    check("c1_spatial_mean", c1.mean((2, 3)), T["out.c1_spatial_mean"])
    check("w0", net.styles[0](c3), T["out.w0"])
    check("codes", codes, T["out.codes"])
    net.latent_avg = T["in.latent_avg"]
    check("codes_plus_latent_avg", net.encode(x), T["out.codes_plus_latent_avg"])
    print("max abs diff:", {k: f"{v:.2e}" for k, v in report.items()})
