"""e4e: the encoder reproduces the reference on the full-size procedural fixture; checkpoints in
the official layout load with their generator; bad files get clear errors."""
import time

import pytest
import torch

import procedural
from conftest import load_fixture, load_manifest
from styleclip_core.formats import e4e_files, tiny_models
from styleclip_core.models import e4e
from styleclip_core.errors import CheckpointError


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("e4e_and_id_procedural")


@pytest.fixture(scope="module")
def manifest():
    return load_manifest("e4e_ffhq_encode")


def test_procedural_weights_match_probe(fixture, manifest, parity):
    _, meta = fixture
    keys = manifest["keys_encoder"]
    for key, first in meta["procedural_weights"]["probe_first_6_values"]["e4e"].items():
        got = procedural.value(key, keys[key]["shape"], set(keys)).flatten()[:6]
        # exact: only correctly rounded float64 operations (+, *, sqrt) and one cast to float32, the
        # same on every CPU (the old bound 1e-7 was ~1 ulp); the json holds the float32 values exactly
        parity.close(f"e4e_and_id_procedural:probe.e4e.{key}", got, torch.tensor(first), atol=0, rtol=0)


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
def test_parity_with_reference(fixture, manifest, parity):
    T, meta = fixture
    tol = meta["tolerance"]
    start = time.perf_counter()
    net = e4e.Encoder4Editing.from_state_dict(procedural.state_dict(manifest["keys_encoder"]))
    built = time.perf_counter()
    x = T["in.image"]
    c1, c2, c3 = net.features(x)
    codes = net.codes(c1, c2, c3)
    ran = time.perf_counter()
    print(f"procedural e4e: weights {built - start:.1f} s, forward {ran - built:.1f} s")

    def check(name, ours, ref):
        parity.close(f"e4e_and_id_procedural:out.{name}", ours, ref, atol=tol["atol"], rtol=tol["rtol"])

    check("c3", c3, T["out.c3"])
    check("c2_spatial_mean", c2.mean((2, 3)), T["out.c2_spatial_mean"])
    check("c1_spatial_mean", c1.mean((2, 3)), T["out.c1_spatial_mean"])
    check("w0", net.styles[0](c3), T["out.w0"])
    check("codes", codes, T["out.codes"])
    net.latent_avg = T["in.latent_avg"]
    check("codes_plus_latent_avg", net.encode(x), T["out.codes_plus_latent_avg"])


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("e4e") / "e4e_ffhq_encode.pt"
    return str(tiny_models.WRITERS["e4e"][2](str(path)))


def test_tiny_checkpoint_loads_with_its_generator(tiny_file):
    encoder, g = e4e_files.load_e4e(tiny_file)
    ref_g = tiny_models.tiny_generator()
    ref = tiny_models.tiny_e4e(ref_g)
    assert encoder.is_tiny_stand_in and g.is_tiny_stand_in and encoder.has_latent_avg
    assert (encoder.style_count, encoder.style_dim) == (g.n_latent, g.style_dim) == (10, 64)
    assert g.config == ref_g.config
    # (two batch sizes only: every new input shape costs the CPU convolutions a set-up)
    images = torch.rand(2, 256, 256, 3, generator=torch.Generator().manual_seed(0))
    w = e4e.invert(encoder, images, chunk=2)
    with torch.no_grad():
        expected = ref(e4e.preprocess(images)) + ref_g.w_avg
    assert torch.equal(w, expected)  # the same weights and ops on the same batch of 2: bit-identical
    # BatchNorm uses its running statistics: a code does not depend on the rest of the batch (up to
    # float32 rounding: batches of 1 and 2 run the convolutions differently; measured 1.2e-7 on
    # codes of magnitude 1.5, ratio 0.006 of the bound, at 1 and 4 threads and AVX512/AVX2/default)
    torch.testing.assert_close(e4e.invert(encoder, images, chunk=1), w, atol=1e-5, rtol=1e-5)
    # a 1024 px crop is resized to the encoder's 256 px first
    assert e4e.invert(encoder, images[:1].repeat_interleave(4, 1).repeat_interleave(4, 2)).shape == (1, 10, 64)


def test_latent_avg_forms(tmp_path):
    g = tiny_models.tiny_generator()
    net = tiny_models.tiny_e4e(g)
    for shape in ([64], [10, 64]):
        ckpt = {"state_dict": {f"encoder.{k}": v for k, v in net.state_dict().items()}, "latent_avg": torch.arange(64.0).expand(*shape).clone()}
        enc = e4e_files.encoder_from_checkpoint(ckpt, "x.pt")
        assert enc.latent_avg.shape == (10, 64) and torch.equal(enc.latent_avg[3], torch.arange(64.0))
    ckpt["latent_avg"] = torch.zeros(18, 512)
    with pytest.raises(CheckpointError, match=r"latent_avg of shape \[10, 64\] or \[64\].*found shape \[18, 512\]"):
        e4e_files.encoder_from_checkpoint(ckpt, "x.pt")


def test_errors_name_expected_and_found(tmp_path, tiny_file):
    g = tiny_models.tiny_generator()
    # a generator checkpoint is not an e4e checkpoint
    gen_path = tiny_models.write_rosinality_pt(g, str(tmp_path / "stylegan2-ffhq-config-f.pt"))
    with pytest.raises(CheckpointError, match=r"expected an e4e checkpoint .*found a dict with keys \['g_ema', 'latent_avg'"):
        e4e_files.load_e4e(gen_path)
    # truncated file
    data = open(tiny_file, "rb").read()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt: expected an e4e checkpoint.*truncated"):
        e4e_files.load_e4e(str(cut))
    # a pSp encoder has the same keys but another forward
    obj = torch.load(tiny_file, weights_only=True)
    obj["opts"]["encoder_type"] = "GradualStyleEncoder"
    torch.save(obj, tmp_path / "psp.pt")
    with pytest.raises(CheckpointError, match="found a GradualStyleEncoder checkpoint"):
        e4e_files.load_e4e(str(tmp_path / "psp.pt"))
    # encoder and generator disagree on the latent count (a 32 px generator has 8 W+ rows)
    small = tiny_models.tiny_generator(size=32)
    tiny_models.write_e4e_pt(tiny_models.tiny_e4e(g), small, str(tmp_path / "mismatch.pt"))
    with pytest.raises(CheckpointError, match=r"W\+ \[8, 64\] for 32px.*found an encoder producing W\+ \[10, 64\]"):
        e4e_files.load_e4e(str(tmp_path / "mismatch.pt"))
    # encoder weights that do not fit the inferred architecture
    obj = torch.load(tiny_file, weights_only=True)
    obj["state_dict"]["encoder.latlayer1.weight"] = torch.zeros(64, 7, 1, 1)
    torch.save(obj, tmp_path / "bad_shape.pt")
    with pytest.raises(CheckpointError, match=r"latlayer1.weight: expected \[64, 48, 1, 1\], found \[64, 7, 1, 1\]"):
        e4e_files.load_e4e(str(tmp_path / "bad_shape.pt"))
