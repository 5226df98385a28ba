"""Mask-local edits keep the original outside the mask and the edit inside it."""
import numpy as np
import pytest
import torch

from styleclip_core.formats import tiny_models
from styleclip_core.models.latents import Latents, sample_latents
from styleclip_core.edits.local_edit import render_local_edit
from styleclip_core.edits.masks import prepare_mask


@pytest.fixture(scope="module")
def setup():
    g = tiny_models.tiny_generator()
    orig = sample_latents(g, 2, seed=1, truncation_psi=0.7)
    edit = Latents(w_plus=orig.w_plus + 0.8 * torch.randn(orig.w_plus.shape, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        return g, orig, edit, g(orig.w_plus), g(edit.w_plus)


def test_outside_equals_original_inside_equals_edit(setup):
    g, orig, edit, img_orig, img_edit = setup
    mask = torch.zeros(1, 256, 256)
    mask[:, :, 128:] = 1  # right half, at another resolution than the generator's 64
    out = render_local_edit(g, orig, edit, mask, feather=0.0, start_resolution=16)
    assert out.shape == img_orig.shape
    # outside (the mask is exactly 0 there): the original's plain rendering, bit for bit
    assert torch.equal(out[..., :, :32], img_orig[..., :, :32])
    # away from the band: the mask is exactly 1 at every blended resolution (lerp returns the edit
    # pass's features), the edit pass renders the same batch as the plain rendering, and these pixels
    # lie beyond the receptive field of the original's features blended in at 16 px (convolutions
    # are local): the plain rendering of the edit, bit for bit (measured so on every set-up)
    assert torch.equal(out[..., :, 44:], img_edit[..., :, 44:])
    assert (img_edit - img_orig)[..., :, 44:].abs().mean() > 0.05  # and the edit is visible there


def test_feather_band_and_broadcast(setup):
    g, orig, edit, img_orig, img_edit = setup
    mask = torch.zeros(64, 64)
    mask[20:44, 20:44] = 1
    out = render_local_edit(g, orig.slice(0, 1), edit, mask, feather=2.0, start_resolution=8)
    assert out.shape[0] == 2
    far = torch.ones(64, 64, dtype=torch.bool)
    far[8:56, 8:56] = False  # beyond the feather's support (ceil(3 sigma) = 6 px): the mask is exactly 0
    with torch.no_grad():
        plain = g(orig.slice(0, 1).w_plus)  # the one original, rendered alone as the local edit renders it
    assert torch.equal(out[..., far], plain.expand(2, -1, -1, -1)[..., far])
    m = prepare_mask(mask, 2, 64, feather=2.0)
    assert 0 < m[0, 0, 20, 32] < 1 and m[0, 0, 32, 32] > 0.99


def test_mask_batch_mismatch(setup):
    g, orig, edit, _, _ = setup
    with pytest.raises(ValueError, match="mask batch"):
        render_local_edit(g, orig, edit, torch.ones(3, 64, 64))
    with pytest.raises(ValueError, match=r"a mask must be \[H, W\], \[B, H, W\] or \[B, 1, H, W\]"):
        render_local_edit(g, orig, edit, torch.ones(1, 3, 64, 64))


# ---- the node, as a user wires it: masks from the face parser, every blend_from choice ---------

# Beyond this many pixels of the first blended resolution from the mask's edge the result is the
# edit (measured: under 3, at 64 and 256 px; every convolution after a blend carries the
# original's features one cell further in from the outside).
BAND_CELLS = 3.5


def test_local_edit_node_with_a_face_parser_mask(comfy):
    """Outside the mask the node's image is Synthesize's rendering of the original; inside it,
    farther from the edge than the feather and the blend band, Synthesize's rendering of the
    edit; for every blend_from. The mask comes from the face parser at half the generator's
    resolution (a 256 px tiny generator: the band is a fixed fraction of the image, and the
    random parser's regions are only deep enough for it from blend_from 32 on)."""
    import scipy.ndimage

    g = tiny_models.tiny_generator(size=256, channels={4: 32, 8: 32, 16: 32, 32: 16, 64: 8, 128: 8, 256: 8})
    orig = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=11, batch_size=2, truncation_psi=0.7).args[0]
    edit = Latents(w_plus=orig.w_plus + 0.8 * torch.randn(orig.w_plus.shape, generator=torch.Generator().manual_seed(2)))
    img_orig, img_edit = (comfy.run("StyleCLIP_Synthesize", generator=g, latents=x, noise="const", noise_seed=0, chunk_size=4).args[0] for x in (orig, edit))
    parser = comfy.run("StyleCLIP_LoadFaceParser", parser_name="79999_iter.pth").args[0]
    half = torch.nn.functional.interpolate(img_orig.permute(0, 3, 1, 2), size=(128, 128), mode="area").permute(0, 2, 3, 1)
    # cloth: the tiny parser's largest part
    mask = comfy.run("StyleCLIP_FaceParsingMask", face_parser=parser, images=half, parts="cloth", dilate=0, feather=0.0).args[0]
    assert mask.shape == (2, 128, 128) and 0.3 < mask.mean() < 0.9
    feather, radius = 2.0, 6  # radius: the Gaussian's support, ceil(3 sigma)
    m = prepare_mask(mask, 2, g.size).squeeze(1).numpy()

    def distance_to(region):  # per image, in pixels
        return np.stack([scipy.ndimage.distance_transform_edt(~r) for r in region])

    # outside: where the feathered mask is exactly 0 (beyond the Gaussian's square support, a
    # Chebyshev distance > radius from the mask; a Euclidean distance > radius + 1 is not enough)
    outside = prepare_mask(mask, 2, g.size, feather).squeeze(1) == 0
    assert not outside[torch.from_numpy(distance_to(m > 0) <= radius)].any()
    depth_inside = distance_to(m < 1)
    assert outside.sum() > 1000
    options = comfy.harness.combo_options(comfy.nodes["StyleCLIP_LocalEdit"].object_info()["input"]["required"]["blend_from"])
    assert options == ["4", "8", "16", "32", "64"]
    matches_edit = []
    for blend_from in options:
        out = comfy.run("StyleCLIP_LocalEdit", generator=g, original=orig, edited=edit, mask=mask, feather=feather, blend_from=blend_from).args[0]
        assert out.shape == img_orig.shape
        assert torch.equal(out[outside], img_orig[outside]), blend_from  # the mask is 0 there: Synthesize's pixels exactly
        # "is the edit": the feathered mask is 1 only up to float32 rounding of the Gaussian's
        # weights, so deep inside the blend leaves the edit's pixels within a few ulp; measured at
        # most 1.3e-6 in the deep region (1 and 4 threads, AVX512/AVX2/default), 1e-5 is ~8x that
        is_edit = ((out - img_edit).abs().amax(-1) < 1e-5).numpy()
        matches_edit.append(int(is_edit.sum()))
        deep = depth_inside > radius + 1 + BAND_CELLS * g.size / int(blend_from)
        if int(blend_from) >= 32:
            assert deep.sum() > 200, (blend_from, deep.sum())
        assert is_edit[deep].all(), blend_from
        assert (out - img_orig).abs()[torch.from_numpy(depth_inside > radius + 1)].mean() > 0.02  # the edit shows inside
    # a lower blend_from confines the edit more strictly: fewer pixels are exactly the edit
    assert matches_edit == sorted(matches_edit) and matches_edit[0] < matches_edit[-1], matches_edit


def test_local_edit_node_mask_batch(comfy):
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="reference", precision="fp32").args[0]
    orig = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=11, batch_size=2, truncation_psi=0.7).args[0]
    with pytest.raises(ValueError, match=r"the mask batch \(3\) must be 1 or the number of faces \(2\)"):
        comfy.run("StyleCLIP_LocalEdit", generator=g, original=orig, edited=orig, mask=torch.ones(3, 32, 32), feather=2.0, blend_from="8")
    same = comfy.run("StyleCLIP_LocalEdit", generator=g, original=orig, edited=orig, mask=torch.ones(1, 32, 32), feather=2.0, blend_from="8").args[0]
    plain = comfy.run("StyleCLIP_Synthesize", generator=g, latents=orig, noise="const", noise_seed=0, chunk_size=4).args[0]
    # both passes are Synthesize's rendering of the same batch, and lerp(a, a, m) == a for any m
    assert torch.equal(same, plain)
