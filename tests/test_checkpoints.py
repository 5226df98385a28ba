"""Generator files: every supported format loads to the same generator; bad files get clear errors."""
import os
import pickle

import pytest
import torch

from conftest import load_fixture, strip
from styleclip_core.formats import generator_files as checkpoints
from styleclip_core.formats import nvidia_pickle
from styleclip_core.formats import tiny_models
from styleclip_core.errors import CheckpointError
from styleclip_core.models.generator import Generator


@pytest.fixture(scope="module")
def tiny():
    return tiny_models.tiny_generator()


@pytest.fixture(scope="module")
def w(tiny):
    return torch.randn(2, tiny.n_latent, tiny.style_dim, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("writer,name", [
    (tiny_models.write_rosinality_pt, "stylegan2-ffhq-config-f.pt"),
    (tiny_models.write_ada_pkl, "network-snapshot.pkl"),
    (tiny_models.write_tf_pkl, "stylegan2-ffhq-config-f.pkl"),
])
def test_formats_load_to_the_same_generator(tmp_path, tiny, w, writer, name):
    path = writer(tiny, str(tmp_path / name))
    g = checkpoints.load_generator(path)
    assert g.config == tiny.config and g.has_w_avg
    assert torch.equal(g.w_avg, tiny.w_avg)  # a float32 copy through the file: exact
    with torch.no_grad():
        torch.testing.assert_close(g(w), tiny(w), atol=0, rtol=0)
    converted = checkpoints.convert_to_safetensors(path, str(tmp_path / "converted.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(checkpoints.load_generator(converted)(w), tiny(w), atol=0, rtol=0)


def test_ada_fixture_pickle_renders_nvidia_image(tmp_path, parity):
    """A stylegan2-ada-pytorch pickle of the fixture's G_ema renders NVIDIA's image."""
    T, meta = load_fixture("ada_to_rosinality")
    reference = Generator.from_state_dict(strip(T, "rosinality."))
    reference.w_avg.copy_(T["ada.mapping.w_avg"])
    reference.has_w_avg = True
    converted, w_avg = nvidia_pickle.ada_to_rosinality(strip(T, "ada."), "fixture")
    expected = strip(T, "rosinality.")
    fixed = {k for k in expected if k.endswith((".blur.kernel", ".upsample.kernel"))}  # the generator makes these buffers itself
    assert set(converted) == set(expected) - fixed and len(fixed) == 8
    assert all(torch.equal(converted[k], expected[k]) for k in converted)
    parity.close("ada_to_rosinality:ada.mapping.w_avg (converted)", w_avg, T["ada.mapping.w_avg"], atol=0, rtol=0)  # a copy: exact
    path = tiny_models.write_ada_pkl(reference, str(tmp_path / "ffhq.pkl"))
    g = checkpoints.load_generator(path)
    with torch.no_grad():
        img = g(T["out.ada.ws_trunc0.7_cutoff8"])
    parity.close("ada_to_rosinality:out.ada.image (from a .pkl)", img, T["out.ada.image"], atol=meta["tolerance"]["atol"], rtol=meta["tolerance"]["rtol"])


def test_pickle_code_is_never_run(tmp_path, tiny):
    """A pickle that names os.system (or any other global) does not execute it."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(CheckpointError, match="evil.pkl"):
        checkpoints.load_generator(str(path))
    assert not marker.exists()
    data, opaque = nvidia_pickle.read_pickle(str(path))
    assert "posix.system" in opaque or "os.system" in opaque


class ArbitraryObject:
    pass


def test_pt_with_code_is_refused(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"g_ema": ArbitraryObject()}, path)
    with pytest.raises(CheckpointError, match=r"objects\.pt: expected a StyleGAN2 generator checkpoint.*not loaded for safety"):
        checkpoints.load_generator(str(path))


@pytest.mark.parametrize("name", ["g.pt", "g.pkl", "g.safetensors"])
def test_truncated_files(tmp_path, tiny, name):
    full = tmp_path / ("full" + os.path.splitext(name)[1])
    if name.endswith(".pt"):
        tiny_models.write_rosinality_pt(tiny, str(full))
    elif name.endswith(".pkl"):
        tiny_models.write_ada_pkl(tiny, str(full))
    else:
        checkpoints.save_generator(tiny, str(full))
    cut = tmp_path / name
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError) as e:
        checkpoints.load_generator(str(cut))
    assert name in str(e.value) and "truncated" in str(e.value)


def test_not_a_generator(tmp_path):
    path = tmp_path / "mapper.pt"
    torch.save({"state_dict": {"mapper.course_mapping.mapping.1.weight": torch.zeros(2, 2)}, "opts": {}}, path)
    with pytest.raises(CheckpointError) as e:
        checkpoints.load_generator(str(path))
    assert "mapper.pt: expected a StyleGAN2 generator checkpoint" in str(e.value) and "state_dict" in str(e.value)
    with pytest.raises(CheckpointError, match="extension .ckpt"):
        checkpoints.load_generator(str(tmp_path / "x.ckpt"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        checkpoints.load_generator(str(tmp_path / "absent.pt"))


def test_decoder_inside_e4e_checkpoint(tmp_path, tiny, w):
    sd = {f"decoder.{k}": v for k, v in tiny.state_dict().items()}
    sd["encoder.input_layer.0.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "e4e_ffhq_encode.pt"
    torch.save({"state_dict": sd, "latent_avg": tiny.w_avg[None].repeat(tiny.n_latent, 1), "opts": {"stylegan_size": 64}}, path)
    g = checkpoints.load_generator(str(path))
    assert torch.equal(g.w_avg, tiny.w_avg)  # copies: exact
    with torch.no_grad():  # the same weights through the same code on the same batch: bit-identical
        assert torch.equal(g(w), tiny(w))


def test_save_never_overwrites(tmp_path, tiny):
    path = str(tmp_path / "g.safetensors")
    checkpoints.save_generator(tiny, path)
    before = open(path, "rb").read()
    with pytest.raises(FileExistsError):
        checkpoints.save_generator(tiny, path)
    assert open(path, "rb").read() == before
    with pytest.raises(FileExistsError):
        tiny_models.write_rosinality_pt(tiny, path)


def test_conditional_ada_is_refused(tiny):
    ada = tiny_models.rosinality_to_ada(tiny)
    ada["mapping.embed.weight"] = torch.zeros(64, 10)
    with pytest.raises(CheckpointError, match="class-conditional"):
        nvidia_pickle.ada_to_rosinality(ada, "cond.pkl")


def test_models_folder_writer(tmp_path):
    written = tiny_models.write_models_folder(str(tmp_path))
    assert os.path.join(str(tmp_path), "stylegan", "stylegan2-ffhq-config-f.pt") in written
    assert tiny_models.write_models_folder(str(tmp_path)) == []  # existing files are left alone
