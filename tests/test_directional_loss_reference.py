"""DirectionalClipLoss against StyleGAN-NADA's maths, written down here from
rinongal/StyleGAN-nada (commit dc8406a) `ZSSGAN/criteria/clip_loss.py`: `CLIPLoss.get_text_features`,
`compute_text_direction`, `get_image_features`, `clip_directional_loss` and `DirectionLoss('cosine')`
(see also fixtures/nada.json "maths"), with the pack's seeded CLIP stand-in (tests/standins.py, whose
prompts all have different text features) and the tiny generator.

Both sides use the same image encoder (the stand-in network on the pack's CLIP preprocessing); what
is compared is the loss arithmetic. NADA's own resize/normalise preprocessing is outside it.

Differences, each tested below:
* the per-sample loss ``[B]`` (every pack term is per sample) is NADA's batch mean for each face alone;
* the text direction comes from the two prompts themselves (``templates=False``), i.e. NADA's
  direction with the single template "{}"; NADA averages 79 ImageNet templates;
* the image-change norm is floored at 0.01 (README "Differences from the reference
  implementations"): identical to NADA above it, ``1 - <change, d> / 0.01`` below, 1 at no change
  (NADA re-encodes ``target + 1e-6`` when the change sums to exactly 0).
"""
import pytest
import torch
import torch.nn.functional as F

from standins import stand_in_clip
from styleclip_core.edits import losses
from styleclip_core.formats.tiny_models import tiny_generator
from styleclip_core.models.clip import imagenet_templates
from styleclip_core.models.latents import Latents

NEUTRAL, TARGET = "a face", "a face with purple hair"
EPS32 = torch.finfo(torch.float32).eps


# ---- StyleGAN-NADA ZSSGAN/criteria/clip_loss.py, transcribed -----------------------------------

def nada_get_text_features(net, tokenizer, class_str, templates):
    """get_text_features: tokens of every template formatted with the class; encode_text; each row
    divided by its norm (norm=True)."""
    tokens = tokenizer([t.format(class_str) for t in templates])
    text_features = net.encode_text(tokens).detach()
    return text_features / text_features.norm(dim=-1, keepdim=True)


def nada_compute_text_direction(net, tokenizer, source_class, target_class, templates):
    """compute_text_direction: (target_features - source_features).mean(0, keepdim) / its norm."""
    source = nada_get_text_features(net, tokenizer, source_class, templates)
    target = nada_get_text_features(net, tokenizer, target_class, templates)
    direction = (target - source).mean(axis=0, keepdim=True)
    return direction / direction.norm(dim=-1, keepdim=True)


def nada_get_image_features(encode_images, img):
    f = encode_images(img)
    return f / f.clone().norm(dim=-1, keepdim=True)


def nada_clip_directional_loss(encode_images, src_img, target_img, target_direction):
    """clip_directional_loss with direction_loss_type 'cosine': DirectionLoss = 1 - CosineSimilarity()
    (dim 1, eps 1e-8), averaged over the batch."""
    src_encoding = nada_get_image_features(encode_images, src_img)
    target_encoding = nada_get_image_features(encode_images, target_img)
    edit_direction = target_encoding - src_encoding
    if edit_direction.sum() == 0:
        target_encoding = nada_get_image_features(encode_images, target_img + 1e-6)
        edit_direction = target_encoding - src_encoding
    edit_direction = edit_direction / edit_direction.clone().norm(dim=-1, keepdim=True)
    return (1.0 - torch.nn.CosineSimilarity()(edit_direction, target_direction)).mean()


# -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def g():
    return tiny_generator()


@pytest.fixture(scope="module")
def clip():
    return stand_in_clip(seed=5)


def encoder(clip):
    return lambda img: clip.net.encode_image(clip.prepare_images(img))  # the same encoder for both sides


def setup(g, amount, seed=4, n=3):
    w0 = torch.randn(n, g.n_latent, g.style_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        original = g(w0)
    w = (w0 + amount * torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed))).requires_grad_(True)
    ctx = losses.EditContext.start(original, Latents(w_plus=w0))
    return ctx, w, original


def text_change_norm(clip):
    with torch.no_grad():
        t = F.normalize(clip.net.encode_text(clip.tokenizer([NEUTRAL, TARGET])), dim=-1)
    return (t[1] - t[0]).norm().item()


def bound(change_norm, text_change_norm, dim):
    """Float32 bound on |ours - NADA| for 1 - cos: unit vectors carry ~eps per component, a difference
    of two of them ~2 sqrt(D) eps absolute, so a cosine of such differences is off by about
    2 sqrt(D) eps / |difference| for each operand plus D eps of summation; a factor 4 of headroom."""
    return 4 * (2 * dim ** 0.5 * EPS32 * (1 / change_norm + 1 / text_change_norm) + dim * EPS32)


def test_text_direction_is_nadas_with_the_prompt_itself(clip):
    ours = clip.text_direction(NEUTRAL, TARGET, templates=False)
    nada = nada_compute_text_direction(clip.net, clip.tokenizer, NEUTRAL, TARGET, ["{}"])[0]
    torch.testing.assert_close(ours, nada, atol=4 * EPS32, rtol=0)
    # NADA's 79-template direction is a different vector with these (prompt-dependent) text features
    nada79 = nada_compute_text_direction(clip.net, clip.tokenizer, NEUTRAL, TARGET, imagenet_templates())[0]
    assert len(imagenet_templates()) == 79
    assert (ours @ nada79).item() < 0.99


def ours_and_nada_inputs(g, clip, ctx, w, original):
    """(edited image, our per-face loss, NADA's image encoder, NADA's one-template text direction,
    the L2-normalised image embedding change) for the edit ``w`` of ``original``."""
    term = losses.DirectionalClipLoss(clip, NEUTRAL, TARGET)
    image = g(w)
    ours = term.prepare(ctx)(ctx.edited(image, Latents(w_plus=w)))
    encode = encoder(clip)
    d = nada_compute_text_direction(clip.net, clip.tokenizer, NEUTRAL, TARGET, ["{}"])
    with torch.no_grad():
        change = F.normalize(encode(image), dim=-1) - F.normalize(encode(original), dim=-1)
    return image, ours, encode, d, change


def test_loss_matches_nada_above_the_floor(g, clip):
    ctx, w, original = setup(g, amount=0.3)
    image, ours, encode, d, change = ours_and_nada_inputs(g, clip, ctx, w, original)
    text_change = text_change_norm(clip)
    assert (change.norm(dim=-1) > 10 * losses.DIRECTION_MIN_NORM).all()  # well above the floor
    tol = bound(change.norm(dim=-1).min().item(), text_change, change.shape[-1])
    # per sample: NADA's loss on each face alone
    per_face = torch.stack([nada_clip_directional_loss(encode, original[i:i + 1], image[i:i + 1], d) for i in range(3)])
    diff = (ours - per_face).abs().max().item()
    assert diff <= tol, (diff, tol)
    # the batch: NADA's mean
    nada = nada_clip_directional_loss(encode, original, image, d)
    assert abs(ours.mean().item() - nada.item()) <= tol
    # float64 NADA (same features in double) bounds our float32 error the same way
    encode64 = lambda img: encode(img).double()  # noqa: E731
    nada64 = torch.stack([nada_clip_directional_loss(encode64, original[i:i + 1], image[i:i + 1], d.double()) for i in range(3)])
    assert (ours.double() - nada64).abs().max().item() <= tol
    # gradients: d(mean ours)/dw == d(NADA batch loss)/dw
    (gw,) = torch.autograd.grad(ours.mean(), w, retain_graph=True)
    (gn,) = torch.autograd.grad(nada, w)
    rel = ((gw - gn).norm() / gn.norm()).item()
    assert rel <= 1e-4, rel
    print(f"directional loss vs NADA: max |diff| {diff:.2e} (bound {tol:.2e}); loss values {ours.tolist()}; grad rel diff {rel:.1e}")


def test_norm_floor_below_001(g, clip):
    """Below the floor ours is 1 - <change, d>/0.01 = 1 - (|change|/0.01)(1 - NADA); at no change it
    is exactly 1 with a finite gradient, where NADA's cosine of a zero-norm change is undefined."""
    assert losses.DIRECTION_MIN_NORM == 0.01  # the documented floor
    ctx, w, original = setup(g, amount=4e-3)
    image, ours, encode, d, change = ours_and_nada_inputs(g, clip, ctx, w, original)
    norms = change.norm(dim=-1)
    assert (norms < losses.DIRECTION_MIN_NORM).all() and (norms > 0.2 * losses.DIRECTION_MIN_NORM).all(), norms
    cos_nada = 1 - torch.stack([nada_clip_directional_loss(encode, original[i:i + 1], image[i:i + 1], d) for i in range(3)])
    expected = 1 - norms / losses.DIRECTION_MIN_NORM * cos_nada
    # the cosine's float32 bound (as above), scaled by |change|/0.01 < 1
    tol = bound(norms.min().item(), text_change_norm(clip), change.shape[-1]) * norms.max().item() / losses.DIRECTION_MIN_NORM
    torch.testing.assert_close(ours.detach(), expected, atol=tol, rtol=0)
    print(f"below the floor (|change| {norms.min():.1e}..{norms.max():.1e}): max |ours - (1 - |change|/0.01 * cos_NADA)| "
          f"{(ours.detach() - expected).abs().max():.1e} (bound {tol:.1e}); 1 - NADA would be {(1 - cos_nada).tolist()}, ours {ours.tolist()}")
    assert ((1 - ours.detach()).abs() < cos_nada.abs()).all()  # a weaker pull than NADA's
    # no change at all: loss 1 exactly, finite bounded gradient (NADA would divide 0 by 0 unless the
    # +1e-6 re-encode moves the embedding)
    w0 = ctx.original_latents.w_plus.clone().requires_grad_(True)
    v0 = losses.DirectionalClipLoss(clip, NEUTRAL, TARGET).prepare(ctx)(ctx.edited(g(w0), Latents(w_plus=w0)))
    torch.testing.assert_close(v0.detach(), torch.ones(3), atol=0, rtol=0)
    v0.sum().backward()
    assert torch.isfinite(w0.grad).all() and w0.grad.abs().max() < 1e3
