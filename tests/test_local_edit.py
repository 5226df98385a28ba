"""Mask-local edits keep the original outside the mask and the edit inside it."""
import pytest
import torch

from styleclip_core import tiny_models
from styleclip_core.latents import Latents, sample_latents
from styleclip_core.local_edit import prepare_mask, render_local_edit


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
    torch.testing.assert_close(out[..., :, :32], img_orig[..., :, :32], atol=1e-5, rtol=0)  # outside: the original
    inside = out[..., :, 44:] - img_edit[..., :, 44:]
    assert inside.abs().max() < 1e-5, inside.abs().max()  # away from the band: the edit
    assert (img_edit - img_orig)[..., :, 44:].abs().mean() > 0.05  # and the edit is visible there


def test_feather_band_and_broadcast(setup):
    g, orig, edit, img_orig, img_edit = setup
    mask = torch.zeros(64, 64)
    mask[20:44, 20:44] = 1
    out = render_local_edit(g, orig.slice(0, 1), edit, mask, feather=2.0, start_resolution=8)
    assert out.shape[0] == 2
    far = torch.ones(64, 64, dtype=torch.bool)
    far[8:56, 8:56] = False
    assert torch.allclose(out[..., far], img_orig[:1].expand(2, -1, -1, -1)[..., far], atol=1e-6)
    m = prepare_mask(mask, 2, 64, feather=2.0)
    assert 0 < m[0, 0, 20, 32] < 1 and m[0, 0, 32, 32] > 0.99


def test_mask_batch_mismatch(setup):
    g, orig, edit, _, _ = setup
    with pytest.raises(ValueError, match="mask batch"):
        render_local_edit(g, orig, edit, torch.ones(3, 64, 64))
    with pytest.raises(ValueError, match=r"\[H, W\] or \[B, H, W\]"):
        render_local_edit(g, orig, edit, torch.ones(1, 1, 64, 64))
