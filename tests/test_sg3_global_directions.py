"""Global directions for StyleGAN3 generators, as yuval-alaluf/stylegan3-editing defines them
(SPEC 13.9): statistics, the direction from relevance (every StyleSpace key, input and ToRGB
included) and the edited images on fixtures/sg3_generator_t and _r; channel relevance (its
``delta_i_c``) end to end with a stand-in CLIP against a literal re-enactment of
``preprocess/create_delta_i_c.py``; the Global Direction nodes with a StyleGAN3 generator.

Tolerance: the fixtures' atol 1e-4 + rtol 1e-4 on every output.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import load_fixture, strip
from standins import stand_in_clip
from test_sg3_generator_reference import config_of
from styleclip_core.edits import channel_relevance as cr
from styleclip_core.edits import global_directions as gd
from styleclip_core.edits.directions import add_to_styles
from styleclip_core.edits.relevance_cache import relevance_encoder
from styleclip_core.errors import CheckpointError
from styleclip_core.models.latents import Latents
from styleclip_core.models.stylegan3 import StyleGAN3Generator

CONFIGS = ("t", "r")
COMPUTE = "compute for this generator and CLIP (cached)"


@pytest.fixture(scope="module", params=CONFIGS)
def case(request):
    tensors, meta = load_fixture(f"sg3_generator_{request.param}")
    g = StyleGAN3Generator.from_state_dict(strip(tensors, "state."), config_of(meta), source=f"fixtures/sg3_generator_{request.param}")
    return request.param, tensors, meta, g.eval().requires_grad_(False)


def _fixture_stats(tensors, keys):
    return gd.StyleStatistics([tensors[f"out.gd.s_mean.{k}"] for k in keys], [tensors[f"out.gd.s_std.{k}"] for k in keys])


def test_coverage_and_recipe(case):
    _, _, meta, g = case
    se = meta["stylespace_editing"]
    assert gd.covers_every_layer(g)
    assert gd.relevance_layers(g) == list(range(len(se["key_order"])))  # input first, ToRGB last
    assert gd.num_relevance_channels(g) == se["n_total_channels"]
    assert gd.statistics_recipe(g) == {"seed": 0, "psi": 0.5, "cutoff": 8}  # s_statistics.py
    job = cr.RelevanceJob.for_generator(g)
    assert (job.seed, job.psi, job.cutoff, job.max_resolution, job.alpha, job.cumulative_mean) == (0, 0.5, 8, None, 5.0, True)
    assert job.layers(g) == gd.relevance_layers(g)
    with pytest.raises(ValueError, match="every channel of every StyleSpace key"):
        cr.RelevanceJob(max_resolution=128).layers(g)


def test_style_statistics(case, parity):
    name, tensors, meta, g = case
    tol = meta["tolerance"]
    keys = meta["stylespace_editing"]["key_order"]
    # the fixture's recipe: 512 z of RandomState(0) (the StyleGAN3 default seed), psi 0.5, cutoff 4
    stats = gd.style_statistics(g, num_samples=512, psi=0.5, cutoff=4, batch_size=200)
    assert stats.recipe == {"num_samples": 512, "seed": 0, "psi": 0.5, "cutoff": 4}
    for key, mean, std in zip(keys, stats.mean, stats.std):
        parity.close(f"sg3_{name}:out.gd.s_mean.{key}", mean, tensors[f"out.gd.s_mean.{key}"], atol=tol["atol"], rtol=tol["rtol"])
        parity.close(f"sg3_{name}:out.gd.s_std.{key}", std, tensors[f"out.gd.s_std.{key}"], atol=tol["atol"], rtol=tol["rtol"])


def test_direction_and_edited_images(case, parity):
    name, tensors, meta, g = case
    tol = meta["tolerance"]
    se = meta["stylespace_editing"]
    keys = se["key_order"]
    direction = gd.boundary(tensors["in.gd.delta_i_c"], tensors["in.gd.delta_i"], _fixture_stats(tensors, keys), g, se["gd_beta"])
    assert direction.num_channels == direction.info["num_channels"] == se["gd_num_channels_manipulated"]
    for key, delta in zip(keys, direction.deltas):
        parity.close(f"sg3_{name}:out.gd.direction.{key}", delta[None].float(), tensors[f"out.gd.direction.{key}"], atol=tol["atol"], rtol=tol["rtol"])
    # unlike StyleCLIP's StyleGAN2 directions, the ToRGB styles move too (where the fixture's direction does)
    assert bool(direction.deltas[-1].abs().sum() > 0) == bool(tensors[f"out.gd.direction.{keys[-1]}"].abs().sum() > 0)
    assert sum(int((d != 0).sum()) for d in (direction.deltas[0], direction.deltas[-1])) > 0, "the fixture should edit input or ToRGB channels"
    with torch.no_grad():
        s = g.styles(tensors["in.ws"][:1])  # sample 0 of in.ws
        edited = add_to_styles(s, direction, se["gd_alphas"])
        parity.close(f"sg3_{name}:out.gd.img_alpha", g.synthesis(edited), tensors["out.gd.img_alpha"], atol=tol["atol"], rtol=tol["rtol"])
        # the same edit through Direction.apply on W+ latents
        applied, _ = direction.apply(g, Latents(w_plus=tensors["in.ws"][:1]), se["gd_alphas"])
        assert all(torch.equal(a, b) for a, b in zip(applied.styles, edited))


def test_relevance_rows_must_cover_every_channel(case):
    _, tensors, meta, g = case
    keys = meta["stylespace_editing"]["key_order"]
    delta_i_c = tensors["in.gd.delta_i_c"]
    with pytest.raises(ValueError, match=f"fs3 of \\[{delta_i_c.shape[0]} StyleSpace channels"):
        gd.boundary(delta_i_c[:-1], tensors["in.gd.delta_i"], _fixture_stats(tensors, keys), g, 0.1)
    with pytest.raises(CheckpointError, match="belongs to another generator"):
        gd.check_fs3(torch.zeros(delta_i_c.shape[0] + 1, 16), g, "delta_i_c.npy")
    with pytest.raises(ValueError, match="keeps no channel"):
        gd.boundary(delta_i_c, tensors["in.gd.delta_i"], _fixture_stats(tensors, keys), g, 2.0)


# ---- channel relevance (delta_i_c) ------------------------------------------------------------------

# a StyleGAN3-T small enough to probe every channel on a CPU: 16 px, 4 + 4 x 4 = 20 StyleSpace channels
MICRO = {"z_dim": 8, "w_dim": 8, "img_resolution": 16, "channel_base": 64, "channel_max": 4, "num_layers": 3, "margin_size": 2}


@pytest.fixture(scope="module")
def micro():
    """The micro StyleGAN3 with every parameter perturbed (so the input's transform codes vary
    between faces, as in a trained network), its W average and stylegan3-editing statistics."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(3)
        g = StyleGAN3Generator(MICRO)
        gen = torch.Generator().manual_seed(4)
        for name, p in g.named_parameters():
            p.add_(0.1 * (100 if name.startswith("mapping.") else 1) * torch.randn(p.shape, generator=gen))
        g.mapping.w_avg.copy_(g.mapping(torch.randn(512, g.z_dim, generator=gen)).mean(0))
    g = g.eval().requires_grad_(False)
    return g, gd.style_statistics(g, num_samples=2000)


def _literal_create_delta_i_c(g, clip, stats, job, restore=False):
    """create_delta_i_c.py as written (``restore``: the probed value put back after each channel),
    with ``clip`` for OpenAI's CLIP: S codes of the first faces of s_statistics.py, one render per
    face from S, bicubic resize (align_corners) to 224, [0, 1], CLIP normalisation, NumPy maths."""
    with torch.no_grad():
        latents_s = [s.clone() for s in gd.reference_styles(g, gd.sample_z(job.num_images, g.z_dim, job.seed), job.psi, job.cutoff)]
    mean = [m.numpy() for m in stats.mean]
    std = [s.numpy() for s in stats.std]
    norm_mean = torch.tensor(clip.mean)[:, None, None]
    norm_std = torch.tensor(clip.std)[:, None, None]
    all_features = []
    for layer, codes in enumerate(latents_s):
        for channel in range(codes.shape[1]):
            kept = codes[:, channel].clone()
            images = torch.zeros(job.num_images, 2, 3, 224, 224)
            for k, direction in enumerate((-job.alpha, job.alpha)):
                codes[:, channel] = float(mean[layer][channel] + np.float32(direction) * std[layer][channel])
                for i in range(job.num_images):
                    with torch.no_grad():
                        image = g.synthesis([s[i:i + 1] for s in latents_s])
                    image = F.interpolate(image, size=(224, 224), mode="bicubic", align_corners=True)
                    images[i, k] = ((((image + 1) / 2).clamp(0, 1) - norm_mean) / norm_std)[0]
            with torch.no_grad():
                all_features.append(clip.net.encode_image(images.view(-1, 3, 224, 224)).view(job.num_images, 2, -1).double().numpy())
            if restore:
                codes[:, channel] = kept
    f = np.array(all_features)
    f = f / np.linalg.norm(f, axis=-1)[..., None]
    d = f[:, :, 1] - f[:, :, 0]
    d = (d / np.linalg.norm(d, axis=-1)[..., None]).mean(1)
    return torch.from_numpy(d / np.linalg.norm(d, axis=-1)[:, None]).float()


@pytest.mark.parametrize("cumulative", [True, False], ids=["as_the_script", "channels_alone"])
def test_channel_relevance_end_to_end(micro, cumulative):
    g, stats = micro
    clip = stand_in_clip()
    job = cr.RelevanceJob.for_generator(g, num_images=2, cumulative_mean=cumulative)
    prepare, encode = relevance_encoder(clip, g)
    tally = {}
    fs3 = cr.channel_relevance(g, encode, stats, job, batch_size=24, prepare_image=prepare, tally=tally)
    assert fs3.shape == (gd.num_relevance_channels(g), 16) == (20, 16)
    torch.testing.assert_close(fs3.norm(dim=1), torch.ones(20), atol=1e-5, rtol=0)  # a unit row per channel
    assert tally["rendered"] == 20 * 2 * 2
    expected = _literal_create_delta_i_c(g, clip, stats, job, restore=not cumulative)
    # batched float32 renders vs one render per face, float64 NumPy normalisations (unit rows)
    torch.testing.assert_close(fs3, expected, atol=2e-5, rtol=1e-4)
    # the direction it gives covers every key, the input's transform codes and ToRGB included
    d = gd.boundary(fs3, F.normalize(torch.randn(16, generator=torch.Generator().manual_seed(1)), dim=0), stats, g, 0.0)
    assert [x.shape[0] for x in d.deltas] == [layer.channels for layer in g.style_layers]
    assert all(bool((x != 0).any()) for x in d.deltas)


def test_stylegan3_preprocessing_is_create_delta_i_c(micro):
    images = torch.rand(2, 3, 16, 16) * 2.4 - 1.2
    clip = stand_in_clip()
    prepare, _ = relevance_encoder(clip, micro[0])
    x = F.interpolate(images, size=(224, 224), mode="bicubic", align_corners=True)
    expected = (((x + 1) / 2).clamp(0, 1) - torch.tensor(clip.mean)[:, None, None]) / torch.tensor(clip.std)[:, None, None]
    assert torch.equal(prepare(images), expected)
    # StyleGAN2 keeps SingleChannel.py's (uint8, antialiased resize)
    assert not torch.equal(relevance_encoder(clip)[0](images), expected)


# ---- nodes ---------------------------------------------------------------------------------------------


def test_global_direction_nodes_take_a_stylegan3_generator(micro, comfy):
    g, _ = micro
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]  # the tiny stand-in
    width = clip.text_features("face").shape[-1]
    compute = dict(generator=g, fs3=COMPUTE, clip=clip, num_images=1, layers="all conv layers", batch_size=40, precision="fp32",
                   statistics_samples=1000, earlier_channels_at_mean=True)
    with pytest.raises(ValueError, match="StyleGAN3 generator's relevance covers every channel"):
        comfy.run("StyleCLIP_ChannelRelevance", **{**compute, "layers": "up to 128 px (SingleChannel.py as written)"})
    rel, info = comfy.run("StyleCLIP_ChannelRelevance", **compute).args
    assert rel.fs3.shape == (20, width) and "(20 of 20 StyleSpace channels (input and ToRGB included))" in info and "computed in" in info
    assert rel.stats.recipe["seed"] == 0 and rel.stats.recipe["psi"] == 0.5 and rel.stats.recipe["cutoff"] == 8
    again, info2 = comfy.run("StyleCLIP_ChannelRelevance", **compute).args
    assert "reused from the cache" in info2 and torch.equal(again.fs3, rel.fs3)

    direction, report = comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="face with blonde hair",
                                  beta=0.0, beta_report="0.1, 0.2").args
    expected = gd.boundary(rel.fs3, clip.text_direction("face", "face with blonde hair", templates=True).cpu(), rel.stats, g, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(direction.deltas, expected.deltas)) and "keeps 20 channels" in report
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=2, truncation_psi=0.7).args[0]
    edited, originals, count = comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=latents, direction=direction, alphas="-2, 3").args
    assert count == 2
    expected_styles = add_to_styles(g.styles(latents.w_plus), direction, [-2.0, 3.0])
    assert all(torch.equal(a, b) for a, b in zip(edited.styles, expected_styles))

    # a relevance file of another generator is refused, naming the rows it should have
    folder = comfy.folder_paths.get_folder_paths("styleclip_global")[0]
    np.save(f"{folder}/delta_i_c_other.npy", np.zeros((19, width), dtype=np.float32))
    with pytest.raises(ValueError, match=r"delta_i_c_other.npy: expected fs3 of \[20 StyleSpace channels"):  # the pack's CheckpointError
        comfy.run("StyleCLIP_ChannelRelevance", **{**compute, "fs3": "delta_i_c_other.npy"})
