"""Loss terms compute the reference maths per sample; loss sets chain without side effects."""
import os

import pytest
import torch
import torch.nn.functional as F

from standins import stand_in_clip
from styleclip_core.edits import losses
from styleclip_core.formats.arcface_files import load_arcface
from styleclip_core.models.irse import identity_features
from styleclip_core.models.latents import Latents
from styleclip_core.formats.tiny_models import tiny_generator


@pytest.fixture(scope="module")
def g():
    return tiny_generator()


@pytest.fixture(scope="module")
def faces(g):
    w = torch.randn(3, g.n_latent, g.style_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return Latents(w_plus=w), g(w)


def edited(g, faces, amount=0.3):
    latents, images = faces
    w = latents.w_plus + amount * torch.randn(latents.w_plus.shape, generator=torch.Generator().manual_seed(4))
    w.requires_grad_(True)
    return losses.EditContext.start(images, latents).edited(g(w), Latents(w_plus=w)), w


def test_clip_loss_is_one_minus_scaled_cosine(g, faces):
    clip = stand_in_clip()
    ctx, w = edited(g, faces)
    value = losses.ClipLoss(clip, "purple hair").prepare(ctx)(ctx)
    f = F.normalize(clip.net.encode_image(clip.prepare_images(ctx.image)), dim=-1)
    t = F.normalize(clip.net.encode_text(clip.tokenizer(["purple hair"]))[0], dim=0)
    # the term's formula recomputed (losses ~1, the features' dot products reordered at most):
    # measured 0 to 6e-8 (AVX2); assert_close's float32 default (1e-5 + 1.3e-6 |x|) is ~80 ulp
    torch.testing.assert_close(value, 1 - clip.net.logit_scale.exp() * (f @ t) / 100, atol=1e-5, rtol=1.3e-6)
    value.sum().backward()
    assert value.shape == (3,) and w.grad.abs().sum() > 0


def test_directional_clip_loss(g, faces):
    clip = stand_in_clip()
    term = losses.DirectionalClipLoss(clip, "a face", "a face with purple hair")
    ctx, w = edited(g, faces)
    value = term.prepare(ctx)(ctx)
    d = clip.encode_images(ctx.image) - clip.encode_images(ctx.original_image)
    assert (d.norm(dim=-1) > losses.DIRECTION_MIN_NORM).all()
    t = clip.text_direction("a face", "a face with purple hair", templates=False)
    # our cosine vs F.cosine_similarity (other float32 order): measured 1.2e-7 (1 ulp of 1)
    torch.testing.assert_close(value, 1 - F.cosine_similarity(d, t[None].expand_as(d), dim=-1), atol=1e-5, rtol=1.3e-6)
    # at the start the image has not changed: loss 1 and a bounded gradient, not 1/eps
    start = losses.EditContext.start(ctx.original_image, ctx.original_latents)
    w0 = faces[0].w_plus.clone().requires_grad_(True)
    at_start = start.edited(g(w0), Latents(w_plus=w0))
    v0 = term.prepare(start)(at_start)
    v0.sum().backward()
    assert torch.equal(v0, torch.ones(3))  # the change is exactly 0 at the start: 1 - 0 / clamp = 1
    assert torch.isfinite(w0.grad).all() and w0.grad.abs().max() < 1e3


def test_identity_loss(g, faces, tiny_models_dir):
    arcface = load_arcface(os.path.join(tiny_models_dir, "arcface", "model_ir_se50.pth"))
    assert arcface.is_tiny_stand_in and not any(p.requires_grad for p in arcface.parameters())
    ctx, w = edited(g, faces)
    term = losses.IdentityLoss(arcface)
    value = term.prepare(ctx)(ctx)
    with torch.no_grad():
        expected = 1 - (identity_features(arcface, ctx.image) * identity_features(arcface, ctx.original_image)).sum(1)
    # the identity loss recomputed (values ~0.02): measured exact; the float32 default bound
    torch.testing.assert_close(value, expected, atol=1e-5, rtol=1.3e-6)
    start = losses.EditContext.start(ctx.original_image, ctx.original_latents)
    # 1 - <f, f> for unit float32 features: measured 1.2e-7 to 2.4e-7 (1-2 ulp of 1)
    torch.testing.assert_close(term.prepare(start)(start), torch.zeros(3), atol=1e-6, rtol=0)
    assert term.weight == 0.005


def test_tiny_arcface_uses_official_key_names(tiny_models_dir):
    from conftest import load_manifest

    import re

    def patterns(keys):  # key names up to the unit index: fewer units, same scheme
        return {re.sub(r"^body\.\d+\.", "body.*.", k) for k in keys}

    official = load_manifest("irse50_backbone_112")["keys"]
    state = torch.load(os.path.join(tiny_models_dir, "arcface", "model_ir_se50.pth"), weights_only=True)
    assert patterns(k for k in state if k != "tiny_stand_in") == patterns(official)
    assert all(state[k].dtype == getattr(torch, official[k]["dtype"]) for k in state if k in official)


def test_latent_l2_sums_over_rows_and_layers(g, faces):
    ctx, w = edited(g, faces)
    value = losses.LatentL2Loss().prepare(ctx)(ctx)
    # sums of 640 squares (~60) in float32: the term reduces the same tensor the same way (measured
    # exact on every set-up); the float32 default (1e-5 + 1.3e-6 |x|, ~10 ulp here) allows a reorder
    torch.testing.assert_close(value, ((w - faces[0].w_plus) ** 2).sum((1, 2)), atol=1e-5, rtol=1.3e-6)
    a, b = Latents(styles=g.styles(w.detach())), Latents(styles=g.styles(faces[0].w_plus))
    expected = sum(((x - y) ** 2).sum(1) for x, y in zip(a.styles, b.styles))
    torch.testing.assert_close(losses.latent_sq_distance(a, b), expected, atol=1e-5, rtol=1.3e-6)  # as above (~32): measured exact
    with pytest.raises(ValueError, match="cannot compare"):
        losses.latent_sq_distance(a, faces[0])


def test_per_sample_values_do_not_depend_on_the_batch(g, faces):
    clip = stand_in_clip()
    loss = losses.LossSet().add(losses.ClipLoss(clip, "x")).add(losses.LatentL2Loss())
    ctx, _ = edited(g, faces)
    whole = loss.prepare(ctx)(ctx).total
    one = losses.EditContext(ctx.image[1:2], Latents(w_plus=ctx.latents.w_plus[1:2]), ctx.original_image[1:2], Latents(w_plus=ctx.original_latents.w_plus[1:2]))
    # one face alone vs in a batch of 3 (CLIP on another batch, losses ~1.6): measured exact
    torch.testing.assert_close(loss.prepare(one)(one).total, whole[1:2], atol=1e-6, rtol=1e-5)


def test_loss_sets_chain_without_changing_their_input():
    clip = stand_in_clip()
    first = losses.chain(None, losses.ClipLoss(clip, "a"))
    second = losses.chain(first, losses.LatentL2Loss(0.5))
    third = losses.chain(second, losses.ClipLoss(clip, "a", 2.0))
    assert len(first.terms) == 1 and len(second.terms) == 2 and len(third.terms) == 3
    assert [label for label, _ in third.active] == ["CLIP 'a'", "latent L2", "CLIP 'a' #2"]
    assert third.describe() == "1 x CLIP 'a' + 0.5 x latent L2 + 2 x CLIP 'a' #2"
    muted = losses.chain(losses.chain(None, losses.ClipLoss(clip, "a", 0.0)), losses.LatentL2Loss(0.0))
    assert muted.active == []
    with pytest.raises(ValueError, match="no term with a non-zero weight"):
        muted.prepare(None)


def test_weighted_total(g, faces):
    clip = stand_in_clip()
    ctx, _ = edited(g, faces)
    loss = losses.LossSet().add(losses.ClipLoss(clip, "x", 2.0)).add(losses.LatentL2Loss(0.25)).add(losses.IdentityLoss(None, 0.0))
    value = loss.prepare(ctx)(ctx)
    assert list(value.parts) == ["CLIP 'x'", "latent L2"]  # the zero-weight term is not even prepared
    assert torch.equal(value.total, 2 * value.parts["CLIP 'x'"] + 0.25 * value.parts["latent L2"])  # total = 0 + 2 a + 0.25 b


def test_mask_is_resized_into_the_context(faces):
    images = faces[1]
    mask = torch.zeros(1, 128, 128)
    mask[:, :64] = 1
    ctx = losses.EditContext.start(images, faces[0], mask)
    assert ctx.mask.shape == (1, 1, 64, 64)
    assert ctx.mask[0, 0, :32].min() == 1 and ctx.mask[0, 0, 32:].max() == 0
    assert losses.resize_mask(torch.ones(32, 32), (64, 64), 3).shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="mask batch"):
        losses.resize_mask(torch.ones(2, 64, 64), (64, 64), 3)
