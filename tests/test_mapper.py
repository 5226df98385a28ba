"""Latent mappers reproduce StyleCLIP's LevelsMapper / SingleMapper (fixture) and load official files."""
import pytest
import torch

from conftest import load_fixture, load_manifest, strip
from styleclip_core.models.generator import Generator
from styleclip_core.models.latents import Latents
from styleclip_core.formats.mapper_files import load_mapper, save_mapper
from styleclip_core.models.mapper import build_mapper


@pytest.fixture(scope="module")
def fx():
    T, meta = load_fixture("levels_mapper")
    return T, meta, meta["tolerance"]


def close(parity, name, a, b, tol):
    parity.close(f"levels_mapper:{name}", a, b, atol=tol["atol"], rtol=tol["rtol"])


@torch.no_grad()
def test_levels_mapper(fx, parity):
    T, meta, tol = fx
    mapper = build_mapper("LevelsMapper", strip(T, "mapper."))
    g = Generator.from_state_dict(strip(T, "decoder."))
    w = Latents(w_plus=T["in.w"])
    close(parity, "out.levels.delta", mapper.delta(w, g).w_plus, T["out.levels.delta"], tol)
    edited = mapper.edit(w, g)
    close(parity, "out.levels.w_hat", edited.w_plus, T["out.levels.w_hat"], tol)
    close(parity, "out.levels.image", g(edited.w_plus), T["out.levels.image"], tol)
    close(parity, "out.image_unedited", g(T["in.w"]), T["out.image_unedited"], tol)
    half = mapper.edit(w, g, strength=0.5).w_plus
    close(parity, "in.w + 0.05 * out.levels.delta (strength 0.5)", half, T["in.w"] + 0.05 * T["out.levels.delta"], tol)


@torch.no_grad()
def test_no_medium_and_single(fx, parity):
    T, meta, tol = fx
    g = Generator.from_state_dict(strip(T, "decoder."))
    w = Latents(w_plus=T["in.w"])
    no_medium = {k: v for k, v in strip(T, "mapper.").items() if not k.startswith("medium_mapping")}
    m = build_mapper("LevelsMapper", no_medium)
    assert m.options["no_medium_mapper"] and not m.options["no_coarse_mapper"]
    delta = m.delta(w, g).w_plus
    close(parity, "out.no_medium.delta", delta, T["out.no_medium.delta"], tol)
    assert torch.count_nonzero(delta[:, 4:8]) == 0
    single = {k.replace("course_mapping.", "mapping."): v for k, v in strip(T, "mapper.").items() if k.startswith("course_mapping.")}
    close(parity, "out.single.delta", build_mapper("SingleMapper", single).delta(w, g).w_plus, T["out.single.delta"], tol)


def test_official_checkpoint_layout(tmp_path, fx, parity):
    T, meta, tol = fx
    sd = {k: v for k, v in T.items() if k.startswith(("mapper.", "decoder."))}
    path = tmp_path / "purple.pt"
    torch.save({"state_dict": sd, "opts": {"description": "purple hair", "mapper_type": "LevelsMapper", "no_medium_mapper": False, "stylegan_size": 64}}, path)
    mapper, decoder = load_mapper(str(path))
    assert mapper.options["description"] == "purple hair" and decoder is not None
    g = Generator.from_state_dict(decoder)
    with torch.no_grad():
        close(parity, "out.levels.w_hat (official .pt layout)", mapper.edit(Latents(w_plus=T["in.w"]), g).w_plus, T["out.levels.w_hat"], tol)
    ours = tmp_path / "purple.safetensors"
    save_mapper(mapper, str(ours))
    again, none = load_mapper(str(ours))
    assert none is None and again.options == mapper.options
    with pytest.raises(FileExistsError):
        save_mapper(mapper, str(ours))


def test_full_size_manifest():
    manifest = load_manifest("styleclip_levels_mapper")
    state = {k: torch.empty(v["shape"], device="meta") for k, v in manifest["keys_mapper"].items()}
    with torch.device("meta"):
        m = build_mapper("LevelsMapper", {k: torch.zeros(v.shape, device="meta") for k, v in state.items()})
    assert {k: list(v.shape) for k, v in m.net.state_dict().items()} == {k: v["shape"] for k, v in manifest["keys_mapper"].items()}


def test_wrong_generator_or_space(fx):
    T, meta, tol = fx
    mapper = build_mapper("LevelsMapper", strip(T, "mapper."))
    g = Generator.from_state_dict(strip(T, "decoder."))
    with pytest.raises(ValueError, match="different generator"):
        mapper.delta(Latents(w_plus=torch.zeros(1, 12, 64)), g)
    with pytest.raises(ValueError, match="StyleSpace"):
        mapper.delta(Latents(styles=g.styles(T["in.w"])), g)


def test_not_a_mapper(tmp_path):
    from styleclip_core.errors import CheckpointError

    path = tmp_path / "g.pt"
    torch.save({"g_ema": {}}, path)
    with pytest.raises(CheckpointError, match="g.pt: expected a StyleCLIP mapper checkpoint"):
        load_mapper(str(path))
