"""StyleGAN3 generators in the pack's paths: files (NVIDIA snapshot pickle, stylegan3-editing .pt,
.safetensors), sampling and rendering, W -> StyleSpace directions, SeFa, mask-local edits, latent
optimisation and the errors of what does not carry over. The generator's own maths is checked
against NVIDIA's in test_sg3_generator_reference.py; these tests use the tiny stand-ins of
``formats.tiny_models`` (T and R)."""
import os

import pytest
import torch

from standins import stand_in_clip
from styleclip_core.edits import factorization as fz
from styleclip_core.edits import losses
from styleclip_core.edits.directions import Direction
from styleclip_core.edits.local_edit import render_local_edit
from styleclip_core.edits.optimize import optimize_latents
from styleclip_core.errors import CheckpointError
from styleclip_core.formats import generator_files, tiny_models
from styleclip_core.models.latents import Latents, sample_latents
from styleclip_core.models.render import render
from styleclip_core.models.stylegan3 import StyleGAN3Generator


@pytest.fixture(scope="module", params=["t", "r"])
def g(request):
    return tiny_models.tiny_stylegan3(request.param)


def test_files_load_as_stylegan3(g, tmp_path):
    z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = g(g.mapping(z))
    pkl = tiny_models.write_sg3_pkl(g, str(tmp_path / "snapshot.pkl"))
    loaded = generator_files.load_generator(pkl)
    assert isinstance(loaded, StyleGAN3Generator) and loaded.is_tiny_stand_in and loaded.config["architecture"] == "stylegan3"
    safetensors = generator_files.save_generator(loaded, str(tmp_path / "converted.safetensors"))
    # stylegan3-editing's .pt: a plain state dict, maybe without the user transform
    pt = str(tmp_path / "editing.pt")
    torch.save({k: v for k, v in g.state_dict().items() if k != "synthesis.input.transform"}, pt)
    for path in (pkl, safetensors, pt):
        h = generator_files.load_generator(path)
        assert isinstance(h, StyleGAN3Generator), path
        with torch.no_grad():
            assert torch.equal(h(h.mapping(z)), expected), path
    assert generator_files.load_generator(safetensors).is_tiny_stand_in
    with pytest.raises(FileExistsError):
        generator_files.save_generator(loaded, safetensors)


def test_conditional_and_foreign_pickles_are_refused(g, tmp_path):
    path = tiny_models.write_sg3_pkl(g, str(tmp_path / "cond.pkl"))
    from styleclip_core.formats import nvidia_pickle

    data, _ = nvidia_pickle.read_pickle(path)
    data["G_ema"].state["_init_kwargs"]["c_dim"] = 10
    from styleclip_core.models.stylegan3 import config_from_init_kwargs

    with pytest.raises(ValueError, match="class-conditional"):
        config_from_init_kwargs(data["G_ema"].state["_init_kwargs"])
    bad = str(tmp_path / "bad.pt")
    torch.save({"mapping.fc0.weight": torch.zeros(4, 4)}, bad)
    with pytest.raises(CheckpointError, match="bad.pt"):
        generator_files.load_generator(bad)


def test_sample_render_mix(g):
    lat = sample_latents(g, 3, seed=4, truncation_psi=0.7)
    assert lat.w_plus.shape == (3, g.n_latent, g.style_dim)
    images = render(g, lat, chunk=2)
    assert images.shape == (3, 3, g.size, g.size) and torch.isfinite(images).all()
    assert torch.equal(render(g, lat, noise="random", seed=3, chunk=2), images)  # no noise inputs: every noise mode is the same image
    mixed = g.style_mix(lat.w_plus[:1], lat.w_plus[1:2], 4)
    assert torch.equal(mixed[:, :4], lat.w_plus[:1, :4]) and torch.equal(mixed[:, 4:], lat.w_plus[1:2, 4:])


def test_w_direction_in_stylespace(g):
    """A W direction moves every synthesis layer's style by its affine's linear part; the input's
    (rotation and translation) is left as it is."""
    lat = sample_latents(g, 2, seed=5)
    d = torch.randn(g.style_dim, generator=torch.Generator().manual_seed(2)) * 0.3
    s = Direction("w", [d]).to_space("s", g)
    before = lat.to_styles(g)
    after = Latents(w_plus=lat.w_plus + d).to_styles(g)
    assert torch.equal(s.deltas[0], torch.zeros_like(s.deltas[0]))
    for b, a, delta in list(zip(before, after, s.deltas))[1:]:
        torch.testing.assert_close(a - b, delta.float().expand_as(a), atol=2e-5, rtol=1e-4)


def test_sefa(g):
    eigvec, values = fz.sefa_factors(g)
    assert eigvec.shape == (g.style_dim, g.style_dim) and (values[:-1] >= values[1:]).all()
    assert fz.sefa_layers(g)[0] == "synthesis." + g.synthesis.layer_names[0]  # the input's affine is not a modulation
    lat = sample_latents(g, 1, seed=0)
    edited = render(g, Latents(w_plus=lat.w_plus + 3 * fz.sefa_direction(g, 0).deltas[0].float()))
    assert (edited - render(g, lat)).abs().max() > 1e-3


def test_local_edit_keeps_the_outside(g):
    lat = sample_latents(g, 2, seed=1)
    edited = Latents(w_plus=lat.w_plus + torch.randn(g.style_dim, generator=torch.Generator().manual_seed(0)))
    mask = torch.zeros(1, g.size, g.size)
    mask[:, g.size // 4: 3 * g.size // 4, g.size // 4: 3 * g.size // 4] = 1
    out = render_local_edit(g, lat, edited, mask)
    original, full = render(g, lat), render(g, edited)
    outside = mask[0] == 0
    assert torch.equal(out[..., outside], original[..., outside])  # bit for bit: the last layer blends with the user's mask
    inside = out[..., mask[0] == 1]
    assert (inside - original[..., mask[0] == 1]).abs().mean() > 0.5 * (full[..., mask[0] == 1] - original[..., mask[0] == 1]).abs().mean()


def test_layer_mask_places_the_image_in_the_margin():
    from styleclip_core.models.stylegan3 import layer_mask

    g = tiny_models.tiny_stylegan3("t")
    spec = g.synthesis.specs[0]  # a layer with a margin: the image is its central sampling_rate samples
    inner = int(spec.out_sampling_rate)
    mask = torch.zeros(1, 1, g.size, g.size)
    mask[..., : g.size // 2] = 1  # the left half
    m = layer_mask(mask, spec)
    pad = (spec.out_size - inner) // 2
    assert m.shape[-1] == spec.out_size
    assert (m[..., pad:pad + inner, pad:pad + inner // 2] == 1).all() and (m[..., pad:pad + inner, pad + inner // 2: pad + inner] == 0).all()
    assert (m[..., :, :pad] == 1).all() and (m[..., :, -pad:] == 0).all()  # the margin continues the edge


def test_text_optimisation(g):
    clip = stand_in_clip(seed=2)
    loss = losses.LossSet().add(losses.ClipLoss(clip, "a face", 1.0))
    start = sample_latents(g, 1, seed=2)
    for space in ("w+", "s"):
        result = optimize_latents(g, start, loss, steps=4, lr=0.05, space=space)
        first, last = (float(sum(v.sum() for v in h.values())) for h in (result.history[0], result.history[-1]))
        assert last < first and torch.isfinite(result.images).all(), space


def test_e4e_codes_are_refused_with_a_reason(g):
    codes = Latents(w_plus=torch.zeros(1, 18, g.style_dim))
    with pytest.raises(ValueError, match="different generator"):
        codes.check(g)


def test_precision_is_fp32_only(g):
    with pytest.raises(ValueError, match="fp32"):
        g.copy().set_precision("bf16")


def test_tiny_models_folder_has_a_stylegan3(tmp_path):
    tiny_models.write_models_folder(str(tmp_path), kinds=["generator_sg3_t"])
    path = os.path.join(tmp_path, "stylegan", "stylegan3-t-ffhq-1024x1024.pkl")
    assert isinstance(generator_files.load_generator(path), StyleGAN3Generator)


def test_domain_adaptation_trains_the_references_stylegan3_layers(g):
    """StyleGAN-NADA on StyleGAN3 (ZSSGAN.py SG3Generator): no layer selection, every synthesis child
    but L10 and L12 of a 14-layer net trains, affines frozen."""
    from styleclip_core.edits import domain_adaptation as da

    with torch.device("meta"):
        stock = StyleGAN3Generator({"img_resolution": 1024})
    assert da.stylegan3_modules(stock) == ["synthesis.input", *(f"synthesis.{n}" for i, n in enumerate(stock.synthesis.layer_names) if i not in (10, 12))]
    clip = stand_in_clip(seed=1, preprocessing="nada")
    adapter = da.DomainAdapter(g, [clip], da.DomainAdaptationSettings(batch_size=2))
    before = {k: v.clone() for k, v in adapter.trainable.state_dict().items()}
    report = adapter.step()
    assert report.trained == da.stylegan3_modules(g) and report.layer_weights is None
    after = adapter.trainable.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(".affine." not in k and not k.startswith("mapping.") for k in changed)
    assert any(k.endswith(".weight") and ".L" in k for k in changed)
