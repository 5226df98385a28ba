"""Latent optimisation reproduces StyleCLIP's run_optimization (fixture), batches, progress, cancel."""
import pytest
import torch

from conftest import load_fixture, strip
from standins import stand_in_clip
from styleclip_core.edits import losses
from styleclip_core.models.generator import Generator
from styleclip_core.models.latents import Latents
from styleclip_core.edits.optimize import LatentOptimizer, get_lr, optimize_latents
from styleclip_core.models.render import render
from styleclip_core.formats.tiny_models import tiny_generator


@pytest.fixture(scope="module")
def fixture():
    T, meta = load_fixture("latent_optimization")
    g = Generator.from_state_dict(strip(T, "state.")).eval().requires_grad_(False)
    clip = stand_in_clip(T["in.P"], T["in.text_feature"])
    loss = losses.LossSet().add(losses.ClipLoss(clip, "x")).add(losses.LatentL2Loss(meta["runs"]["wplus"]["args"]["l2_lambda"]))
    return T, meta, g, loss


def test_lr_schedule_matches_reference(fixture, parity):
    T, *_ = fixture
    lrs = torch.tensor([get_lr(i / 300, 0.1) for i in range(300)], dtype=torch.float64)
    # float64 learning rates <= 0.1 from the same closed form: a few ulp (2.2e-17 each); measured exact
    parity.close("latent_optimization:out.get_lr_default_300_steps", lrs, T["out.get_lr_default_300_steps"], atol=1e-15, rtol=0)
    assert lrs[0] == 0


@pytest.mark.parametrize("mode,space", [("wplus", "w+"), ("stylespace", "s")])
def test_trajectory_matches_reference(fixture, mode, space, parity):
    T, meta, g, loss = fixture
    args, tol = meta["runs"][mode]["args"], meta["tolerance"]
    result = optimize_latents(g, Latents(w_plus=T["in.latent_init"]), loss, steps=args["step"], lr=args["lr"], space=space)
    lrs = torch.tensor(result.lrs, dtype=torch.float64)  # as above (the json's floats)
    parity.close(f"latent_optimization:runs.{mode}.lr_per_step", lrs, torch.tensor(meta["runs"][mode]["lr_per_step"], dtype=torch.float64), atol=1e-15, rtol=0)
    clip_per_step = torch.stack([h["CLIP 'x'"][0] for h in result.history])
    key = f"out.{mode}.clip_loss_per_step"
    parity.close(f"latent_optimization:{key}", clip_per_step, T[key], atol=tol["atol"], rtol=tol["rtol"])
    if space == "w+":
        assert result.latents.space == "w+"
        parity.close("latent_optimization:out.wplus.final_latent", result.latents.w_plus, T["out.wplus.final_latent"], atol=tol["atol"], rtol=tol["rtol"])
    else:
        assert result.latents.space == "s"
        start = g.styles(T["in.latent_init"])
        for i, (s, layer) in enumerate(zip(result.latents.styles, g.style_layers)):
            key = f"out.stylespace.final_latent.s.{i}"
            parity.close(f"latent_optimization:{key}", s, T[key], atol=tol["atol"], rtol=tol["rtol"])
            if layer.is_torgb:
                assert torch.equal(s, start[i])  # toRGB styles are not optimised
            else:
                assert not torch.equal(s, start[i])
    reference_result = T[f"out.{mode}.final_result"]
    # the fixture's tolerance (atol 1e-4, rtol 1e-3)
    parity.close(f"latent_optimization:out.{mode}.final_result[0] (original)", result.original_images, reference_result[:1], atol=1e-4, rtol=1e-3)
    # Our image is rendered from the returned codes; the reference's is one update behind them.
    assert torch.equal(result.images, render(g, result.latents))  # the same synthesis of the same batch
    assert (result.images - reference_result[1:]).abs().max() > 1e-2


def _toy(dtype=torch.float32):
    g = tiny_generator().to(dtype)
    clip = stand_in_clip(seed=1)
    clip.net.to(dtype)
    loss = losses.LossSet().add(losses.ClipLoss(clip, "x")).add(losses.DirectionalClipLoss(clip, "a", "b", 0.5)).add(losses.LatentL2Loss())
    w = torch.randn(3, g.n_latent, g.style_dim, generator=torch.Generator().manual_seed(7)).to(dtype)
    return g, loss, Latents(w_plus=g.truncate(w, 0.7, g.w_avg[None]))


@pytest.mark.parametrize("space", ["w+", "s"])
def test_a_batch_edits_each_face_as_if_alone(space):
    # In float64: batched and single convolutions round differently, and Adam's normalisation
    # turns float32 rounding in near-zero gradient components into visible (~1e-3) differences
    # after a few steps; in float64 that rounding is far below the tolerance.
    g, loss, start = _toy(torch.float64)
    together = optimize_latents(g, start, loss, steps=6, space=space)
    for i in (0, 2):
        alone = optimize_latents(g, start.slice(i, i + 1), loss, steps=6, space=space)
        got, want = together.latents.slice(i, i + 1), alone.latents
        for a, b in zip(got.to_styles(g), want.to_styles(g)):
            torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(together.images[i:i + 1], alone.images, atol=1e-9, rtol=1e-9)
        for step_together, step_alone in zip(together.history, alone.history):
            for label in step_alone:
                torch.testing.assert_close(step_together[label][i:i + 1], step_alone[label], atol=1e-9, rtol=1e-9)
    assert (together.latents.slice(0, 1).to_styles(g)[0] - start.slice(0, 1).to_styles(g)[0]).abs().max() > 1e-3


def test_progress_previews_and_interruption():
    g, loss, start = _toy()
    before = start.w_plus.clone()
    calls = []
    result = optimize_latents(g, start, loss, steps=7, preview_every=3, progress=lambda d, t, p: calls.append((d, t, p)))
    assert [(d, t) for d, t, _ in calls] == [(i, 7) for i in range(1, 8)]
    assert [d for d, _, p in calls if p is not None] == [3, 6, 7]
    assert torch.equal(calls[-1][2], result.images)
    assert len(result.history) == 7 and torch.equal(start.w_plus, before)

    class Stop(Exception):
        pass

    seen = []

    def stop_at_4(done, total, preview):
        seen.append(done)
        if done == 4:
            raise Stop

    with pytest.raises(Stop):
        optimize_latents(g, start, loss, steps=50, progress=stop_at_4)
    assert seen == [1, 2, 3, 4] and torch.equal(start.w_plus, before)


def test_stylespace_codes_continue_in_stylespace_only():
    g, loss, start = _toy()
    first = optimize_latents(g, start.slice(0, 1), loss, steps=3, space="s")
    again = LatentOptimizer(g, first.latents, loss, steps=3, space="s")
    assert torch.equal(again.context.original_image, first.images)  # the same synthesis of the same codes
    with pytest.raises(ValueError, match="cannot be optimised in W\\+"):
        optimize_latents(g, first.latents, loss, steps=3, space="w+")


def test_refuses_inference_mode_and_runs_under_no_grad():
    g, loss, start = _toy()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        optimize_latents(g, start, loss, steps=2)
    with torch.no_grad():
        result = optimize_latents(g, start, loss, steps=3)
    assert not torch.equal(result.latents.w_plus, start.w_plus)


def test_random_noise_matches_synthesize():
    g, loss, start = _toy()
    result = optimize_latents(g, start, loss, steps=2, noise="random", seed=11)
    # the same per-sample noise maps, the same synthesis of the same batch of 3: bit-identical
    assert torch.equal(result.images, render(g, result.latents, noise="random", seed=11))
    assert torch.equal(result.original_images, render(g, start, noise="random", seed=11))


def test_optimize_node(comfy):
    import comfy.model_management as mm
    from comfy.utils import PROGRESS_LOG

    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=2, truncation_psi=0.7).args[0]
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    arcface = comfy.run("StyleCLIP_LoadArcFace", arcface_name="model_ir_se50.pth").args[0]
    for model in (g, clip.net, arcface):
        assert not any(p.is_inference() for p in model.parameters())
    loss = comfy.run("StyleCLIP_CLIPLoss", clip=clip, text="a person with purple hair", weight=1.0).args[0]
    loss = comfy.run("StyleCLIP_IdentityLoss", arcface=arcface, weight=0.005, loss=loss).args[0]
    loss = comfy.run("StyleCLIP_LatentL2Loss", weight=0.008, loss=loss).args[0]
    PROGRESS_LOG.clear()
    out = comfy.run("StyleCLIP_OptimizeLatents", generator=g, latents=latents, loss=loss, steps=4, learning_rate=0.1, space="StyleSpace",
                    noise="const", noise_seed=0, preview_every=2, mask=torch.ones(64, 64))
    edited, images = out.args
    assert edited.space == "s" and edited.batch_size == 2 and images.shape == (2, 64, 64, 3)
    assert "CLIP 'a person with purple hair'" in out.ui["text"][0]
    assert [(v, t) for v, t, _ in PROGRESS_LOG] == [(i, 4) for i in range(1, 5)] and PROGRESS_LOG[1][2] and PROGRESS_LOG[-1][2]
    mm.interrupt_current_processing(True)
    with pytest.raises(mm.InterruptProcessingException):
        comfy.run("StyleCLIP_OptimizeLatents", generator=g, latents=latents, loss=loss, steps=50, learning_rate=0.1, space="W+",
                  noise="const", noise_seed=0, preview_every=10)
    assert not mm.processing_interrupted()
