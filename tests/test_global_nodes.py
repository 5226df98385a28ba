"""Global-direction nodes: relevance from the official file or computed, directions, sweeps,
saving, combining, and the edited latents in Synthesize and Local Edit."""
import os

import pytest
import torch

from styleclip_core.edits import global_directions as gd
from styleclip_core.edits.directions import add_to_styles

COMPUTE = "compute for this generator and CLIP (cached)"


@pytest.fixture(scope="module")
def setup(comfy):
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    rel, info = comfy.run("StyleCLIP_ChannelRelevance", generator=g, fs3="fs3.npy", clip=clip, num_images=100, layers="all conv layers",
                          batch_size=16, precision="fp32", statistics_samples=2000, earlier_channels_at_mean=True).args
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=2, truncation_psi=0.7).args[0]
    return g, clip, rel, info, latents


def test_relevance_from_the_official_file(setup, comfy):
    g, clip, rel, info, _ = setup
    assert "fs3.npy: fs3 [232, 32] (232 of 232 conv channels)" in info and "stats-g" in info
    options = comfy.nodes["StyleCLIP_ChannelRelevance"].object_info()["input"]["required"]["fs3"][1]["options"]
    assert options[0] == COMPUTE and "fs3.npy" in options and not [o for o in options if o.startswith("stats-")]


def test_compute_needs_clip_then_is_cached(setup, comfy):
    g, clip, *_ = setup
    compute = dict(generator=g, fs3=COMPUTE, num_images=1, layers="all conv layers", batch_size=16, precision="fp32",
                   statistics_samples=2000, earlier_channels_at_mean=True)
    with pytest.raises(ValueError, match="needs a CLIP model"):
        comfy.run("StyleCLIP_ChannelRelevance", **compute)  # the optional clip input left unconnected
    rel, info = comfy.run("StyleCLIP_ChannelRelevance", **compute, clip=clip).args
    assert "computed in" in info and rel.fs3.shape == (232, 32)
    again, info2 = comfy.run("StyleCLIP_ChannelRelevance", **compute, clip=clip).args
    assert "reused from the cache" in info2 and torch.equal(again.fs3, rel.fs3)
    # a workflow saved before the one precision vocabulary says 'float32': it passes ComfyUI's
    # validation (the node validates precision itself) and is the same job, found in the cache
    old, info3 = comfy.run("StyleCLIP_ChannelRelevance", **{**compute, "precision": "float32"}, clip=clip).args
    assert "reused from the cache" in info3 and torch.equal(old.fs3, rel.fs3)
    with pytest.raises(ValueError, match="custom validation failed: precision must be one of fp32, bf16, fp16, found 'half'"):
        comfy.run("StyleCLIP_ChannelRelevance", **{**compute, "precision": "half"}, clip=clip)


def test_direction_report_and_beta_error(setup, comfy):
    g, clip, rel, *_ = setup
    direction, report = comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="face with blonde hair",
                                  beta=0.15, beta_report="0.1, 0.2").args
    dt = clip.text_direction("face", "face with blonde hair", templates=True).cpu()
    expected = gd.boundary(rel.fs3, dt, rel.stats, g, 0.15)
    assert len(direction.deltas) == len(expected.deltas) and all(torch.equal(a, b) for a, b in zip(direction.deltas, expected.deltas))
    kept = gd.channels_kept(rel.fs3, dt, [0.15, 0.1, 0.2])
    assert report.endswith(f"beta 0.15 keeps {kept[0]} channels; beta 0.1: {kept[1]}, beta 0.2: {kept[2]}")
    assert kept[1] >= kept[0] >= kept[2] and direction.num_channels == kept[0]
    with pytest.raises(ValueError, match="keeps no channel"):
        comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="face with blonde hair", beta=1.0, beta_report="")
    with pytest.raises(ValueError, match="not a list of numbers"):
        comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="face with blonde hair", beta=0.1,
                  beta_report="0.1, high")


def test_alpha_sweep_is_a_strip_per_face(setup, comfy):
    g, clip, rel, _, latents = setup
    direction = comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="smiling face", beta=0.1, beta_report="").args[0]
    edited, originals, count = comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=latents, direction=direction, alphas="-4, 0, 2.5").args
    assert count == 3 and edited.space == "s" and edited.batch_size == 6 and originals.batch_size == 6
    styles = latents.to_styles(g)
    for face in range(2):
        for k, alpha in enumerate((-4, 0, 2.5)):
            single = add_to_styles([s[face:face + 1] for s in styles], direction, [alpha])
            for a, b in zip(edited.styles, single):
                assert torch.equal(a[face * 3 + k], b[0])  # elementwise float64 s + alpha * d: batch-independent
            assert torch.equal(originals.w_plus[face * 3 + k], latents.w_plus[face])
    images = comfy.run("StyleCLIP_Synthesize", generator=g, latents=edited, noise="const", noise_seed=0, chunk_size=4).args[0]
    plain = comfy.run("StyleCLIP_Synthesize", generator=g, latents=latents, noise="const", noise_seed=0, chunk_size=4).args[0]
    # alpha 0 is the face itself, rendered from StyleSpace codes in a batch of 4 vs from W+ in a batch
    # of 2 (pixels in [0, 1]): measured 0 with AVX512, 1.25e-6 / 1.46e-6 with ATen's default / AVX2 kernels
    torch.testing.assert_close(images[1], plain[0], atol=1e-5, rtol=0)
    assert (images[0] - images[2]).abs().max() > 1e-3
    # Local Edit takes the pair: outside the mask the original, inside the edit
    mask = torch.zeros(1, 64, 64)
    mask[:, :32] = 1
    local = comfy.run("StyleCLIP_LocalEdit", generator=g, original=originals, edited=edited, mask=mask, feather=0.0, blend_from="8").args[0]
    unedited = comfy.run("StyleCLIP_Synthesize", generator=g, latents=originals, noise="const", noise_seed=0, chunk_size=6).args[0]
    assert torch.equal(local[:, 40:], unedited[:, 40:])  # the mask is 0 there: the original's rendering of the same batch, exactly
    changed = (local[:, :24] - unedited[:, :24]).abs().amax(dim=(1, 2, 3))
    # alpha 0 leaves the face as it was (its codes computed in another batch: measured 1.0e-6 to
    # 1.55e-6; the edited faces change by 1.0)
    assert (changed[[0, 2, 3, 5]] > 1e-3).all() and (changed[[1, 4]] < 1e-4).all()
    grid = comfy.run("StyleCLIP_ImageGrid", images=images, columns=count).args[0]
    assert grid.shape == (1, 128, 192, 3)
    assert torch.equal(grid[0, 64:, 128:], images[5]) and torch.equal(grid[0, :64, 64:128], images[1])
    padded = comfy.run("StyleCLIP_ImageGrid", images=images[:5], columns=4).args[0]
    assert padded.shape == (1, 128, 256, 3) and padded[0, 64:, 64:].abs().sum() == 0
    with pytest.raises(ValueError, match="alphas"):
        comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=latents, direction=direction, alphas=" ")


def test_direction_of_another_generator_is_refused(setup, comfy):
    g, clip, rel, _, latents = setup
    direction = comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="smiling face", beta=0.1, beta_report="").args[0]
    from styleclip_core.formats import tiny_models

    small = tiny_models.tiny_generator(size=32)
    with pytest.raises(ValueError, match="made for another generator"):
        comfy.run("StyleCLIP_ApplyGlobalDirection", generator=small, direction=direction, alphas="1",
                  latents=comfy.run("StyleCLIP_SampleLatents", generator=small, seed=0, batch_size=1, truncation_psi=0.7).args[0])


def test_save_load_combine(setup, comfy):
    g, clip, rel, *_ = setup
    a = comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="face with blonde hair", beta=0.1, beta_report="").args[0]
    b = comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="smiling face", beta=0.1, beta_report="").args[0]
    ui1 = comfy.run("StyleCLIP_SaveDirection", direction=a, name="blonde").ui["text"][0]
    ui2 = comfy.run("StyleCLIP_SaveDirection", direction=a, name="blonde").ui["text"][0]
    assert ui1.endswith("blonde.safetensors") and ui2.endswith("blonde_00001.safetensors")
    assert "'face' -> 'face with blonde hair', beta 0.1" in ui1
    with pytest.raises(ValueError, match="direction name"):
        comfy.run("StyleCLIP_SaveDirection", direction=a, name="../escape")
    info = comfy.nodes["StyleCLIP_LoadDirection"].object_info()
    assert {"blonde.safetensors", "blonde_00001.safetensors"} <= set(info["input"]["required"]["direction_name"][1]["options"])
    loaded, text = comfy.run("StyleCLIP_LoadDirection", direction_name="blonde.safetensors").args
    assert len(loaded.deltas) == len(a.deltas) and all(torch.equal(x, y) for x, y in zip(loaded.deltas, a.deltas)) and "blonde hair" in text
    mix = comfy.run("StyleCLIP_CombineDirections", direction_a=loaded, weight_a=1.0, weight_b=-0.5, direction_b=b).args[0]
    for m, x, y in zip(mix.deltas, a.deltas, b.deltas):
        assert torch.equal(m, x - 0.5 * y)  # 0 + 1.0 * x + (-0.5) * y: the same IEEE operations
    half = comfy.run("StyleCLIP_CombineDirections", direction_a=a, weight_a=0.5, weight_b=1.0).args[0]
    assert torch.equal(half.deltas[0], 0.5 * a.deltas[0])
    os.remove(os.path.join(comfy.folder_paths.get_folder_paths("styleclip_directions")[0], "blonde.safetensors"))
    os.remove(os.path.join(comfy.folder_paths.get_folder_paths("styleclip_directions")[0], "blonde_00001.safetensors"))
