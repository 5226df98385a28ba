"""Global-direction nodes: relevance from the official file or computed, directions, sweeps,
saving, combining, and the edited latents in Synthesize and Local Edit."""
import os

import pytest
import torch

from styleclip_core import global_directions as gd

COMPUTE = "compute for this generator and CLIP (cached)"


@pytest.fixture(scope="module")
def setup(comfy):
    n = comfy.nodes
    g = n["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "auto", "fp32").args[0]
    clip = n["StyleCLIP_LoadCLIP"].execute("ViT-B-32.pt", "auto", "styleclip").args[0]
    rel, info = n["StyleCLIP_ChannelRelevance"].execute(g, "fs3.npy", 100, "all conv layers", 16, "float32", 2000, True, clip).args
    latents = n["StyleCLIP_SampleLatents"].execute(g, 3, 2, 0.7).args[0]
    return n, g, clip, rel, info, latents


def test_relevance_from_the_official_file(setup, comfy):
    n, g, clip, rel, info, _ = setup
    assert "fs3.npy: fs3 [232, 32] (232 of 232 conv channels)" in info and "stats-g" in info
    options = comfy.harness.object_info({"x": n["StyleCLIP_ChannelRelevance"]})["x"]["input"]["required"]["fs3"][1]["options"]
    assert options[0] == COMPUTE and "fs3.npy" in options and not [o for o in options if o.startswith("stats-")]


def test_compute_needs_clip_then_is_cached(setup):
    n, g, clip, *_ = setup
    node = n["StyleCLIP_ChannelRelevance"]
    with pytest.raises(ValueError, match="needs a CLIP model"):
        node.execute(g, COMPUTE, 1, "all conv layers", 16, "float32", 2000, True)
    rel, info = node.execute(g, COMPUTE, 1, "all conv layers", 16, "float32", 2000, True, clip).args
    assert "computed in" in info and rel.fs3.shape == (232, 32)
    again, info2 = node.execute(g, COMPUTE, 1, "all conv layers", 16, "float32", 2000, True, clip).args
    assert "reused from the cache" in info2 and torch.equal(again.fs3, rel.fs3)


def test_direction_report_and_beta_error(setup):
    n, g, clip, rel, *_ = setup
    node = n["StyleCLIP_GlobalDirection"]
    direction, report = node.execute(rel, clip, "face", "face with blonde hair", 0.15, "0.1, 0.2").args
    dt = clip.text_direction("face", "face with blonde hair", templates=True).cpu()
    expected = gd.boundary(rel.fs3, dt, rel.stats, g, 0.15)
    assert all(torch.equal(a, b) for a, b in zip(direction.deltas, expected.deltas))
    kept = gd.channels_kept(rel.fs3, dt, [0.15, 0.1, 0.2])
    assert report.endswith(f"beta 0.15 keeps {kept[0]} channels; beta 0.1: {kept[1]}, beta 0.2: {kept[2]}")
    assert kept[1] >= kept[0] >= kept[2] and direction.num_channels == kept[0]
    with pytest.raises(ValueError, match="keeps no channel"):
        node.execute(rel, clip, "face", "face with blonde hair", 1.0, "")
    with pytest.raises(ValueError, match="not a list of numbers"):
        node.execute(rel, clip, "face", "face with blonde hair", 0.1, "0.1, high")


def test_alpha_sweep_is_a_strip_per_face(setup):
    n, g, clip, rel, _, latents = setup
    direction = n["StyleCLIP_GlobalDirection"].execute(rel, clip, "face", "smiling face", 0.1, "").args[0]
    edited, originals, count = n["StyleCLIP_ApplyGlobalDirection"].execute(g, latents, direction, "-4, 0, 2.5").args
    assert count == 3 and edited.space == "s" and edited.batch_size == 6 and originals.batch_size == 6
    styles = latents.to_styles(g)
    for face in range(2):
        for k, alpha in enumerate((-4, 0, 2.5)):
            single = gd.apply_direction([s[face:face + 1] for s in styles], direction, [alpha])
            for a, b in zip(edited.styles, single):
                assert torch.equal(a[face * 3 + k], b[0])  # elementwise float64 s + alpha * d: batch-independent
            assert torch.equal(originals.w_plus[face * 3 + k], latents.w_plus[face])
    images = n["StyleCLIP_Synthesize"].execute(g, edited, "const", 0, 4).args[0]
    plain = n["StyleCLIP_Synthesize"].execute(g, latents, "const", 0, 4).args[0]
    # alpha 0 is the face itself, rendered from StyleSpace codes in a batch of 4 vs from W+ in a batch
    # of 2 (pixels in [0, 1]): measured 0 with AVX512, 1.25e-6 / 1.46e-6 with ATen's default / AVX2 kernels
    torch.testing.assert_close(images[1], plain[0], atol=1e-5, rtol=0)
    assert (images[0] - images[2]).abs().max() > 1e-3
    # Local Edit takes the pair: outside the mask the original, inside the edit
    mask = torch.zeros(1, 64, 64)
    mask[:, :32] = 1
    local = n["StyleCLIP_LocalEdit"].execute(g, originals, edited, mask, 0.0, "8").args[0]
    unedited = n["StyleCLIP_Synthesize"].execute(g, originals, "const", 0, 6).args[0]
    assert torch.equal(local[:, 40:], unedited[:, 40:])  # the mask is 0 there: the original's rendering of the same batch, exactly
    changed = (local[:, :24] - unedited[:, :24]).abs().amax(dim=(1, 2, 3))
    # alpha 0 leaves the face as it was (its codes computed in another batch: measured 1.0e-6 to
    # 1.55e-6; the edited faces change by 1.0)
    assert (changed[[0, 2, 3, 5]] > 1e-3).all() and (changed[[1, 4]] < 1e-4).all()
    grid = n["StyleCLIP_ImageGrid"].execute(images, count).args[0]
    assert grid.shape == (1, 128, 192, 3)
    assert torch.equal(grid[0, 64:, 128:], images[5]) and torch.equal(grid[0, :64, 64:128], images[1])
    padded = n["StyleCLIP_ImageGrid"].execute(images[:5], 4).args[0]
    assert padded.shape == (1, 128, 256, 3) and padded[0, 64:, 64:].abs().sum() == 0
    with pytest.raises(ValueError, match="alphas"):
        n["StyleCLIP_ApplyGlobalDirection"].execute(g, latents, direction, " ")


def test_direction_of_another_generator_is_refused(setup):
    n, g, clip, rel, _, latents = setup
    direction = n["StyleCLIP_GlobalDirection"].execute(rel, clip, "face", "smiling face", 0.1, "").args[0]
    from styleclip_core import tiny_models

    small = tiny_models.tiny_generator(size=32)
    with pytest.raises(ValueError, match="made for another generator"):
        n["StyleCLIP_ApplyGlobalDirection"].execute(small, n["StyleCLIP_SampleLatents"].execute(small, 0, 1, 0.7).args[0], direction, "1")


def test_save_load_combine(setup, comfy):
    n, g, clip, rel, *_ = setup
    a = n["StyleCLIP_GlobalDirection"].execute(rel, clip, "face", "face with blonde hair", 0.1, "").args[0]
    b = n["StyleCLIP_GlobalDirection"].execute(rel, clip, "face", "smiling face", 0.1, "").args[0]
    ui1 = n["StyleCLIP_SaveDirection"].execute(a, "blonde").ui["text"][0]
    ui2 = n["StyleCLIP_SaveDirection"].execute(a, "blonde").ui["text"][0]
    assert ui1.endswith("blonde.safetensors") and ui2.endswith("blonde_00001.safetensors")
    assert "'face' -> 'face with blonde hair', beta 0.1" in ui1
    with pytest.raises(ValueError, match="direction name"):
        n["StyleCLIP_SaveDirection"].execute(a, "../escape")
    info = comfy.harness.object_info({"x": n["StyleCLIP_LoadDirection"]})["x"]
    assert {"blonde.safetensors", "blonde_00001.safetensors"} <= set(info["input"]["required"]["direction_name"][1]["options"])
    loaded, text = n["StyleCLIP_LoadDirection"].execute("blonde.safetensors").args
    assert all(torch.equal(x, y) for x, y in zip(loaded.deltas, a.deltas)) and "blonde hair" in text
    mix = n["StyleCLIP_CombineDirections"].execute(loaded, 1.0, -0.5, b).args[0]
    for m, x, y in zip(mix.deltas, a.deltas, b.deltas):
        assert torch.equal(m, x - 0.5 * y)  # 0 + 1.0 * x + (-0.5) * y: the same IEEE operations
    half = n["StyleCLIP_CombineDirections"].execute(a, 0.5, 1.0).args[0]
    assert torch.equal(half.deltas[0], 0.5 * a.deltas[0])
    os.remove(os.path.join(comfy.folder_paths.get_folder_paths("styleclip_directions")[0], "blonde.safetensors"))
    os.remove(os.path.join(comfy.folder_paths.get_folder_paths("styleclip_directions")[0], "blonde_00001.safetensors"))
