"""Pivotal tuning with a known answer, and the PTI nodes (Load LPIPS, Project Latents, Pivotal
Tuning, Save Generator) run as ComfyUI runs them on the tiny stand-ins."""
import os

import pytest
import torch

from styleclip_core.formats.generator_files import load_generator
from styleclip_core.formats.tiny_models import random_lpips, tiny_generator
from styleclip_core.models.latents import sample_latents
from styleclip_core.photos.pivotal_tuning import TuningSettings, pivotal_tuning


def test_tuning_recovers_a_perturbed_generator():
    """Known answer: faces rendered by a generator are the target, the generator's synthesis weights
    are perturbed by 10 % (multiplicative noise), and tuning the perturbed copy at the true codes
    brings the reconstruction back. Measured over 50 steps (two faces, jointly): L2 0.349 -> 0.0125
    (28x), LPIPS 0.167 -> 0.0100 (17x); the test asks for 10x."""
    g = tiny_generator().set_ops_backend("reference")
    lp = random_lpips()
    latents = sample_latents(g, 2, seed=1, truncation_psi=0.7)
    with torch.no_grad():
        target = g(latents.w_plus)
    perturbed = g.copy()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in perturbed.named_parameters():
            if not name.startswith("style."):
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=gen))

    def errors(generator):
        with torch.no_grad():
            x = generator(latents.w_plus)
        return (x - target).square().mean().item(), lp(x, target).mean().item()

    l2_before, lpips_before = errors(perturbed)
    result = pivotal_tuning(perturbed, latents, target, lp, TuningSettings(steps=50))
    l2_after, lpips_after = errors(result.generator)
    print(f"L2 {l2_before:.4f} -> {l2_after:.4f}, LPIPS {lpips_before:.4f} -> {lpips_after:.4f}")
    assert result.steps_applied == 100 and not result.stopped_early  # several faces: no early stop, one update per face per step
    assert l2_after * 10 < l2_before and lpips_after * 10 < lpips_before
    assert errors(perturbed) == (l2_before, lpips_before), "the input generator is not changed"


def test_bad_tuning_inputs():
    g = tiny_generator()
    lp = random_lpips()
    latents = sample_latents(g, 2, seed=1)
    with pytest.raises(ValueError, match=r"expected images \[B, 3, 64, 64\].*found shape \[2, 3, 32, 32\]"):
        pivotal_tuning(g, latents, torch.zeros(2, 3, 32, 32), lp)
    with pytest.raises(ValueError, match="2 pivots for 1 images"):
        pivotal_tuning(g, latents, torch.zeros(1, 3, 64, 64), lp)
    with pytest.raises(ValueError, match="loss weights"):
        pivotal_tuning(g, latents, torch.zeros(2, 3, 64, 64), lp, TuningSettings(l2_weight=-1))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="autograd"):
        pivotal_tuning(g, latents, torch.zeros(2, 3, 64, 64), lp)


def test_l2_weight_zero_works():
    """The reference crashes with pt_l2_lambda = 0 (an unbound variable); ours tunes on LPIPS alone."""
    g = tiny_generator()
    latents = sample_latents(g, 1, seed=2)
    with torch.no_grad():
        target = g(latents.w_plus) * 0.5
    result = pivotal_tuning(g, latents, target, random_lpips(), TuningSettings(steps=2, l2_weight=0, lpips_threshold=0))
    assert result.steps_applied == 2 and torch.isfinite(result.history[-1]["loss"])


# ---- nodes -------------------------------------------------------------------------------------


def test_photo_to_tuned_generator_nodes(comfy):
    """Load LPIPS (both nets) -> Project Latents (from e4e's codes) -> Pivotal Tuning -> Save Generator,
    then the saved file loads back as the same generator; the tuned one goes to edit nodes."""
    from comfy.utils import PROGRESS_LOG

    g, info = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="reference", precision="fp32").args
    alex, alex_info = comfy.run("StyleCLIP_LoadLPIPS", net="alex", backbone_name="alexnet-owt-7be5be79.pth").args
    vgg, _ = comfy.run("StyleCLIP_LoadLPIPS", net="vgg", backbone_name="vgg16-397923af.pth").args
    assert alex_info.startswith("TINY RANDOM STAND-IN") and "LPIPS-alex" in alex_info
    seeds = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=2, truncation_psi=0.7).args[0]
    photos = comfy.run("StyleCLIP_Synthesize", generator=g, latents=seeds, noise="const", noise_seed=0, chunk_size=4).args[0]
    photos = torch.nn.functional.interpolate(photos.permute(0, 3, 1, 2), size=128, mode="bilinear").permute(0, 2, 3, 1)  # a photo's size
    start = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=9, batch_size=2, truncation_psi=0.5).args[0]
    PROGRESS_LOG.clear()
    latents, projected = comfy.run("StyleCLIP_ProjectLatents", generator=g, lpips=vgg, images=photos, space="w+", steps=3, seed=0,
                                   w_avg_samples=50, learning_rate=0.01, noise_regularization=1e5, start=start).args
    assert latents.w_plus.shape == (2, g.n_latent, g.style_dim) and projected.shape == (2, 64, 64, 3)
    assert [p[:2] for p in PROGRESS_LOG] == [(1, 3), (2, 3), (3, 3)] and PROGRESS_LOG[-1][2] is not None  # the last step shows a preview
    with pytest.raises(ValueError, match="LPIPS-vgg"):
        comfy.run("StyleCLIP_ProjectLatents", generator=g, lpips=alex, images=photos, space="w", steps=1, seed=0, w_avg_samples=5,
                  learning_rate=0.01, noise_regularization=1e5)
    tuned, pivots, reconstruction, tuning_info = comfy.run(
        "StyleCLIP_PivotalTuning", generator=g, lpips=alex, latents=latents, images=photos, steps=2, learning_rate=3e-4, lpips_threshold=0.06,
        l2_weight=1.0, lpips_weight=1.0, locality_regularization=True, seed=0).args
    assert "4 updates" in tuning_info and "face 1" in tuning_info
    assert torch.equal(pivots.w_plus, latents.w_plus) and reconstruction.shape == (2, 64, 64, 3)
    assert getattr(tuned, "comfy_patcher", None) is not None and tuned is not g
    assert not torch.equal(tuned.conv1.conv.weight, g.conv1.conv.weight)
    edited = comfy.run("StyleCLIP_Synthesize", generator=tuned, latents=pivots, noise="const", noise_seed=0, chunk_size=4).args[0]
    assert torch.equal(edited, reconstruction)
    path = comfy.run("StyleCLIP_SaveGenerator", generator=tuned, name="pti_tuned").args[0]
    again = comfy.run("StyleCLIP_SaveGenerator", generator=tuned, name="pti_tuned").args[0]
    assert os.path.basename(path) == "pti_tuned.safetensors" and os.path.basename(again) == "pti_tuned_00001.safetensors"
    loaded = load_generator(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), tuned.state_dict().values()))
    assert torch.equal(loaded.w_avg, tuned.w_avg)
    with pytest.raises(ValueError, match="use letters"):
        comfy.run("StyleCLIP_SaveGenerator", generator=tuned, name="../escape")


def test_missing_lpips_backbone_names_the_file(comfy):
    with pytest.raises(FileNotFoundError, match=r"alexnet-owt-7be5be79.pth.*models/lpips|lpips.*alexnet-owt-7be5be79.pth"):
        comfy.run("StyleCLIP_LoadLPIPS", net="alex", backbone_name="gone.pth", unvalidated=True)
