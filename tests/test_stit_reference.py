"""STIT parity (rotemtzaban/STIT fac087f) on fixtures/stit, SPEC section 16: (a) the temporally
smoothed alignment (crop axes, quads, the inverse perspective coefficients) on seeded landmark
sequences; (b) the stitching masks (dilation, create_masks, calc_masks with the fixture's
stand-in segmenter) and the stitching tuning (optimize_border) on the pti fixture's generator.

Tolerances. Alignment is float64 maths on ~1e3-pixel values: the fixture's own independent NumPy
check agrees to 4.5e-13, and ours runs the same operations (scipy's filter, the same normal
equations), so 1e-9 leaves four orders of margin. Masks are max filters and comparisons of
exact values: equal. The stitched images and losses take the fixture's bounds (1e-4): the
generator is NVIDIA's converted to ours, whose forward differs from NVIDIA's by about 1e-6
relative (the PTI parity, tests/test_pti_reference.py), and three Adam steps of lr 3e-4 keep
that at the same order: measured at 1, 2 and 4 threads, images within 4.8e-6 to 8.2e-6 and
losses within 2.1e-7 relative, 12x and 500x inside the bounds.
"""
import numpy as np
import pytest
import torch

from conftest import load_fixture, strip
from styleclip_core.formats.nvidia_pickle import ada_to_rosinality
from styleclip_core.models.generator import Generator
from styleclip_core.models.latents import Latents
from styleclip_core.photos.align import FacePoints
from styleclip_core.photos.align import crop_axes
from styleclip_core.video.alignment import perspective_coefficients, smoothed_quads
from styleclip_core.video.masks import create_masks, dilation, stitching_masks
from styleclip_core.video.stitching import StitchingSettings, masked_distance, stitch


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("stit")


# ---- (a) alignment ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["seq20_default", "seq20_nosmooth", "seq5_default", "seq20_scale1.2_c2_xy5"])
def test_smoothed_alignment(fixture, parity, case):
    tensors, meta = fixture
    spec = meta["a_alignment_smoothing"]["cases"][case]
    landmarks = tensors[spec["landmarks_key"]].numpy()
    axes = np.stack([crop_axes(FacePoints.from_68(lm), spec["scale"]) for lm in landmarks])
    parity(f"stit:{case}.cxy_raw", np.abs(axes - tensors[f"out.a.{case}.cxy_raw"].numpy()).max(), 1e-9)
    quads = smoothed_quads(axes, spec["center_sigma"], spec["xy_sigma"])
    parity(f"stit:{case}.quads", np.abs(quads - tensors[f"out.a.{case}.quads"].numpy()).max(), 1e-9)
    coeffs = np.stack([perspective_coefficients(q, 1024) for q in quads])
    expected = tensors[f"out.a.{case}.inverse_coeffs"].numpy()
    # the coefficients span ~1e-4 (g, h) to ~1e3 (c, f): relative to each coefficient's scale
    parity(f"stit:{case}.inverse_coeffs (relative)", (np.abs(coeffs - expected) / np.abs(expected).max(0)).max(), 1e-9)


def test_unsmoothed_quads_are_the_ffhq_squares(fixture):
    """sigma 0 leaves the per-frame square: STIT's quad is photos.align's FFHQ quad."""
    from styleclip_core.photos.align import ffhq_quad

    tensors, _ = fixture
    for lm in tensors["in.a.seq5_.landmarks"].numpy():
        points = FacePoints.from_68(lm)
        quad = smoothed_quads(crop_axes(points)[None], 0, 0)[0]
        assert np.abs(quad - ffhq_quad(points)[0]).max() < 1e-9


def test_inverse_coefficients_are_the_alignments_affine_map(fixture):
    """Paste-back uses the crop's affine map (photos.align.FaceAlignment); for STIT's parallelogram
    quads it is the reference's perspective map: g, h vanish and the rest agree."""
    from styleclip_core.photos.align import FaceAlignment

    tensors, _ = fixture
    quads = tensors["out.a.seq20_scale1.2_c2_xy5.quads"].numpy()
    for quad in quads:
        coeffs = perspective_coefficients(quad, 1024)
        assert np.abs(coeffs[6:]).max() < 1e-12
        affine = FaceAlignment(tuple(map(tuple, quad + 0.5)), (2000, 2000), 1024).image_to_aligned() * 1024
        assert np.abs(affine.flatten() - coeffs[:6]).max() / np.abs(coeffs[:6]).max() < 1e-12


# ---- (b) masks ---------------------------------------------------------------------------------


def test_dilation(fixture, parity):
    tensors, _ = fixture
    x = tensors["in.b.dilation.x"]
    parity.close("stit:dilation.k3", dilation(x, 3), tensors["out.b.dilation.k3"], atol=0, rtol=0)
    parity.close("stit:dilation.k5", dilation(x, 5), tensors["out.b.dilation.k5_unfold"], atol=0, rtol=0)


@pytest.mark.parametrize("case", ["default_like", "inner2", "whole_image_border"])
def test_create_masks(fixture, parity, case):
    tensors, meta = fixture
    spec = meta["b_stitching_tuning"]["mask_cases (create_masks on in.b.foreground_mask, 64x64)"][case]
    masks = create_masks(spec["border_pixels"], tensors["in.b.foreground_mask"], spec["inner_dilation"], spec["outer_dilation"],
                         spec["whole_image_border"])
    for name, m in zip(("content", "border", "full"), masks):
        parity.close(f"stit:masks.{case}.{name}", m, tensors[f"out.b.masks.{case}.{name}"], atol=0, rtol=0)


def standin_segmenter(x: torch.Tensor) -> torch.Tensor:
    """The fixture's deterministic segmenter (json ``seg_standin``): class logits from the pixel's
    coordinates (u across, v down, each linspace(0, 1) over 512) plus half the normalised red channel."""
    b, _, h, w = x.shape
    v, u = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    logits = torch.zeros(b, 19, h, w)
    logits[:, 0] = 1
    logits[:, 1] = 2 * ((((u - 0.5) / 0.3) ** 2 + ((v - 0.55) / 0.38) ** 2) < 1).float() + 0.5 * x[:, 0]
    logits[:, 17] = 3 * ((v < 0.25) & (u > 0.2) & (u < 0.8)).float()
    logits[:, 18] = 4 * (v < 0.12).float()
    logits[:, 16] = 5 * (v > 0.9).float()
    return logits


def test_calc_masks(fixture, parity):
    tensors, meta = fixture
    masks = stitching_masks(tensors["in.b.crop_tensor"], standin_segmenter, 50, 0, False, size=1024)
    summary = meta["b_stitching_tuning"]["calc_masks_summary_1024"]
    for name, m in zip(("content", "border", "full"), masks):
        parity.close(f"stit:calc_masks.{name}", m[:, :, ::16, ::16], tensors[f"out.b.calc_masks.{name}.sub"], atol=1e-6, rtol=0)
        # the sums cover every pixel; float32 bilinear weights summed over 1e6 pixels: relative 1e-6
        parity(f"stit:calc_masks.{name}.sum (relative)", abs(m.double().sum().item() - summary[name]["sum"]) / summary[name]["sum"], 1e-5)


# ---- (b) stitching tuning ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pti_generator(fixture):
    tensors, _ = fixture
    state, w_avg = ada_to_rosinality(strip(tensors, "state."), "fixtures/stit")
    g = Generator.from_state_dict(state, source="fixtures/stit")
    g.w_avg.copy_(w_avg)
    return g.eval().requires_grad_(False)


@pytest.mark.parametrize("case", ["l2_3steps", "l1_2steps", "threshold_stop"])
def test_stitching_tuning(fixture, pti_generator, parity, case):
    tensors, meta = fixture
    spec = meta["b_stitching_tuning"]["opt_cases"][case]
    kw = spec["kwargs"]
    settings = StitchingSettings(steps=kw["num_steps"], content_weight=kw["content_loss_lambda"], loss="l2" if kw["loss_l2"] else "l1",
                                 border_threshold=kw["border_loss_threshold"])
    border, content = tensors["out.b.masks.default_like.border"], tensors["out.b.masks.default_like.content"]
    before = {k: v.clone() for k, v in pti_generator.state_dict().items()}
    result = stitch(pti_generator, Latents(w_plus=tensors["in.b.opt.w"]), tensors["in.b.opt.border_image"], tensors["in.b.opt.content_image"],
                    border, content, settings)
    assert all(torch.equal(before[k], v) for k, v in pti_generator.state_dict().items()), "the tuned generator was changed"
    expected = spec["per_forward_losses"]
    assert len(result.history) == len(expected)
    for i, (ours, ref) in enumerate(zip(result.history, expected)):
        for term in ("border", "content", "total"):
            parity(f"stit:{case}.step{i}.{term} (relative)", abs(ours[term] - ref[term]) / abs(ref[term]), 1e-4)
    parity.close(f"stit:{case}.image", result.image, tensors[f"out.b.opt.{case}.image"], atol=1e-4, rtol=0)
    assert result.steps_applied == (0 if case == "threshold_stop" else kw["num_steps"])


def test_masked_distance_weights():
    """The reference's normalisation: 3 channels summed over a 1-channel mask count; masking first."""
    x, t = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    m = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    assert masked_distance(x, t, m, True).item() == pytest.approx(3 * (1 + 0.25) / 1.5)
    assert masked_distance(x, t, m, False).item() == pytest.approx(3 * (1 + 0.5) / 1.5)
