"""Edit metrics (styleclip_core/edits/metrics.py) and the Edit Metrics node: every value against a
re-computation written here from the metric's definition (PSNR by the NumPy formula, the cosines
in float64 NumPy from the networks' raw outputs, LPIPS by its embedding form), identical images
(LPIPS exactly 0, identity 1, PSNR infinite), the outside-of-the-mask metrics blind to changes
inside the mask, and bad inputs refused with messages that name what was expected and found."""
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from styleclip_core.edits import metrics
from styleclip_core.edits.metrics import edit_metrics
from styleclip_core.formats.arcface_files import load_arcface
from styleclip_core.formats.clip_files import load_clip
from styleclip_core.formats.lpips_files import load_lpips

TARGET, NEUTRAL = "a person with purple hair", "a face"


@pytest.fixture(scope="module")
def models(comfy):
    """The tiny stand-ins of the comfy fixture's models folder, loaded by the library."""
    base = os.path.join(str(comfy.base), "models")
    return dict(clip=load_clip(os.path.join(base, "openclip", "ViT-B-32.pt")),
                arcface=load_arcface(os.path.join(base, "arcface", "model_ir_se50.pth")),
                lpips=load_lpips("alex", os.path.join(base, "lpips", "alexnet-owt-7be5be79.pth")))


def smooth_images(batch, height=64, width=64, seed=0):
    """Images in [-1, 1] with structure at several scales (random noise upsampled), so CLIP, ArcFace
    and LPIPS see more than white noise."""
    gen = torch.Generator().manual_seed(seed)
    x = sum(F.interpolate(torch.randn(batch, 3, max(2, height // s), max(2, width // s), generator=gen), size=(height, width), mode="bilinear")
            for s in (16, 4, 1))
    return (x / 3).clamp(-1, 1)


def numpy_psnr(a, b, keep=None):
    """10 log10(1 / MSE) of [-1, 1] images mapped to [0, 1]; MSE weighted by ``keep`` [B, H, W]."""
    a, b = (a.double().numpy() + 1) / 2, (b.double().numpy() + 1) / 2
    d2 = (a - b) ** 2
    if keep is None:
        mse = d2.reshape(len(d2), -1).mean(1)
    else:
        w = np.broadcast_to(keep.double().numpy()[:, None], d2.shape)
        mse = (w * d2).reshape(len(d2), -1).sum(1) / w.reshape(len(d2), -1).sum(1)
    return np.where(mse == 0, np.inf, 10 * np.log10(1 / np.where(mse == 0, 1, mse)))


def numpy_cos(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_values_against_recomputation(models):
    clip, arcface, lpips = models["clip"], models["arcface"], models["lpips"]
    original = smooth_images(3, 64, 64, seed=1)
    edited = (original + 0.3 * smooth_images(3, 64, 64, seed=2)).clamp(-1, 1)
    got = edit_metrics(original, edited, clip, TARGET, NEUTRAL, arcface, lpips, chunk=2)
    assert list(got.per_face) == ["clip", "clip_direction", "identity", "lpips", "psnr"]
    with torch.no_grad():
        # CLIP: the raw network outputs, normalised and compared in float64 here
        e = clip.net.encode_image(clip.prepare_images(edited)).numpy()
        o = clip.net.encode_image(clip.prepare_images(original)).numpy()
        t = clip.net.encode_text(clip.tokenizer([TARGET, NEUTRAL])).numpy()
        # ArcFace: StyleCLIP's IDLoss preprocessing written out (pool to 256, crop, pool to 112)
        def arc(x):
            x = F.adaptive_avg_pool2d(x, (256, 256))[:, :, 35:223, 32:220]
            return arcface(F.adaptive_avg_pool2d(x, (112, 112))).numpy()
        # LPIPS: the embedding form (squared distance of flat vectors; SPEC 9.1)
        lp = (lpips.embed(original) - lpips.embed(edited)).double().square().sum(1).numpy()
    unit = lambda v: v / np.linalg.norm(v.astype(np.float64), axis=-1, keepdims=True)  # noqa: E731
    text_change = unit(t[0:1]) - unit(t[1:2])
    expected = {
        "clip": numpy_cos(e, t[0:1]),
        "clip_direction": numpy_cos(unit(e) - unit(o), text_change),
        "identity": numpy_cos(arc(edited), arc(original)),
        "lpips": lp,
    }
    # float32 networks and reductions against float64 here, 1 and 2 threads: measured max |diff|
    # 9e-8 (CLIP), 1.9e-6 (directional: a difference of two embeddings magnifies their rounding),
    # 1.8e-7 (identity); bounds about 10x that for other kernels and thread counts
    bounds = {"clip": 1e-6, "clip_direction": 2e-5, "identity": 2e-6}
    for key, bound in bounds.items():
        np.testing.assert_allclose(got.per_face[key], expected[key], atol=bound, rtol=0, err_msg=key)
    # LPIPS (values ~0.01 here): the conv form against the embedding form, measured relative
    # difference 1.8e-7; 1e-5 relative for other summation orders
    np.testing.assert_allclose(got.per_face["lpips"], expected["lpips"], rtol=1e-5, atol=0)
    assert min(got.per_face["lpips"]) > 0.001  # a real change, not a degenerate distance
    # PSNR: both in float64 from the same pixels, only the summation order differs
    np.testing.assert_allclose(got.per_face["psnr"], numpy_psnr(original, edited), rtol=1e-12)
    assert got.means == {k: pytest.approx(float(np.mean(v))) for k, v in got.per_face.items()}
    # The CLIP similarity is ClipModel.similarity's
    # chunks of 2 + 1 against one batch of 3: float32 rounding of batched kernels (measured 4.5e-8)
    np.testing.assert_allclose(got.per_face["clip"], clip.similarity(edited, TARGET).numpy(), atol=1e-6, rtol=0)


def test_identical_images(models):
    x = smooth_images(2, 64, 64, seed=3)
    got = edit_metrics(x, x.clone(), models["clip"], TARGET, NEUTRAL, models["arcface"], models["lpips"], mask=torch.zeros(64, 64))
    assert got.per_face["lpips"] == [0.0, 0.0] and got.per_face["lpips_outside"] == [0.0, 0.0]  # the same features: exact
    assert got.per_face["psnr"] == [math.inf, math.inf] and got.per_face["psnr_outside"] == [math.inf, math.inf]
    # identity: the dot product of a float32 unit vector (64-d) with itself, 1 to rounding (~64 x 6e-8)
    assert got.per_face["identity"] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert all(math.isnan(v) for v in got.per_face["clip_direction"]) and math.isnan(got.means["clip_direction"])
    assert "undefined" in " ".join(got.notes)
    assert got.means["psnr"] == math.inf and "| **mean** |" in got.table() and "inf" in got.table() and "n/a" in got.table()


def test_originals_at_another_resolution_are_resized(models):
    """A 128 px photo scored against 64 px renderings: the same numbers as the photo resized first."""
    photo = smooth_images(1, 128, 128, seed=5)
    edited = smooth_images(2, 64, 64, seed=6)
    resized = F.interpolate(photo, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    got = edit_metrics(photo, edited, lpips=models["lpips"])
    want = edit_metrics(resized, edited, lpips=models["lpips"])
    assert got.per_face == want.per_face  # the same resize on the same pixels: exact


def test_outside_metrics_ignore_changes_inside_the_mask(models):
    lpips = models["lpips"]
    original = smooth_images(2, 64, 64, seed=4)
    mask = torch.zeros(2, 64, 64)
    mask[:, 16:48, 20:44] = 1
    mask[1, 10:16, 20:44] = 0.5  # soft edge on the second face
    change = 0.5 * smooth_images(2, 64, 64, seed=5)
    inside_only = original + change * (mask > 0)[:, None]
    got = edit_metrics(original, inside_only, lpips=lpips, mask=mask)
    assert got.per_face["lpips_outside"][0] == 0.0 and got.per_face["psnr_outside"][0] == math.inf
    # face 1: changed where the soft mask is 0.5 too; that half still counts outside (weight 0.5)
    keep = 1 - mask
    np.testing.assert_allclose(got.per_face["psnr_outside"], numpy_psnr(original, inside_only, keep), rtol=1e-12)
    assert math.isfinite(got.per_face["psnr_outside"][1]) and got.per_face["lpips_outside"][1] > 0
    assert all(v > 0 for v in got.per_face["lpips"]) and all(math.isfinite(v) for v in got.per_face["psnr"])  # the whole image changed
    # a change outside the mask is seen by both
    outside = original + change * (mask == 0)[:, None]
    got = edit_metrics(original, outside, lpips=lpips, mask=mask)
    assert all(v > 0.001 for v in got.per_face["lpips_outside"])
    np.testing.assert_allclose(got.per_face["psnr_outside"], numpy_psnr(original, outside, keep), rtol=1e-12)
    # LPIPS outside is LPIPS of the original against the edit with the original pasted inside
    with torch.no_grad():
        pasted = outside * (1 - mask[:, None]) + original * mask[:, None]
        # lerp against this blend: float32 rounding where the mask is 0.5 (measured exact); 1e-6 relative
        np.testing.assert_allclose(got.per_face["lpips_outside"], lpips(original, pasted).numpy(), rtol=1e-6)
    # a mask over everything leaves nothing outside: undefined, said in the notes
    got = edit_metrics(original, outside, lpips=lpips, mask=torch.ones(64, 64))
    assert all(math.isnan(v) for v in got.per_face["psnr_outside"] + got.per_face["lpips_outside"]) and "covers the whole image" in got.notes[-1]


def test_one_original_for_many_edits_any_resolution(models):
    """An alpha sweep of one face: one original for every edit, at a non-square size."""
    original = smooth_images(1, 48, 80, seed=6)
    edited = torch.cat([original, original + 0.1, original - 0.2]).clamp(-1, 1)
    one = edit_metrics(original, edited, models["clip"], TARGET, NEUTRAL, models["arcface"], models["lpips"], chunk=2)
    each = edit_metrics(original.expand(3, -1, -1, -1), edited, models["clip"], TARGET, NEUTRAL, models["arcface"], models["lpips"], chunk=3)
    for key in one.per_face:
        # other chunkings of the same images: float32 rounding of batched kernels (measured max
        # |diff| 2e-7, directional CLIP; 0 for LPIPS and PSNR); 2e-6 for other kernels
        np.testing.assert_allclose(one.per_face[key], each.per_face[key], atol=2e-6, rtol=0, err_msg=key)
    assert one.per_face["psnr"][0] == math.inf and one.per_face["lpips"][0] == 0.0
    # face 0 is the original itself, encoded in a batch of another size (its embedding moves by
    # rounding only): no direction, not the direction of the rounding
    assert math.isnan(one.per_face["clip_direction"][0]) and math.isnan(each.per_face["clip_direction"][0])
    assert one.count == 3 and [r["face"] for r in one.rows()] == [0, 1, 2]


def test_only_the_metrics_of_the_given_models():
    x = smooth_images(2, 32, 32, seed=7)
    got = edit_metrics(x, x * 0.9)
    assert list(got.per_face) == ["psnr"] and len(got.rows()) == 2 and set(got.rows()[0]) == {"face", "psnr"}
    np.testing.assert_allclose(got.per_face["psnr"], numpy_psnr(x, x * 0.9), rtol=1e-12)
    table = got.table().splitlines()
    assert table[0] == "| face | PSNR ↑ |" and len(table) == 2 + 2 + 1  # header, rule, 2 faces, mean


@pytest.mark.parametrize("case, words", [
    ("channels last", ["edited", "expected images [B, 3, H, W]", "[2, 32, 32, 3]"]),
    ("sizes differ", ["original", "edited images' size 32 x 32", "found 32 x 40"]),
    ("batches differ", ["original", "1 image or one per edited image (3)", "batch of 2"]),
    ("empty batch", ["edited", "at least one image", "[0, 3, 32, 32]"]),
    ("mask size", ["mask", "images' size 32 x 32", "found 16 x 16"]),
    ("mask batch", ["mask", "1 mask or one per edited image (2)", "batch of 3"]),
    ("mask shape", ["mask", "[H, W] or [B, H, W]", "[2, 1, 1, 32, 32]"]),
    ("mask range", ["mask", "values in [0, 1]", "to 2"]),
    ("NaN pixels", ["edited", "NaN", "batch index 1"]),
    ("CLIP without target", ["target", "need a target text"]),
    ("too small for LPIPS", ["edited", "LPIPS-alex needs images of at least 31 px", "found 24 x 24"]),
])
def test_bad_inputs_are_clear_errors(models, case, words):
    x = smooth_images(2, 32, 32, seed=8)
    kwargs = dict(original=x, edited=x.clone())
    if case == "channels last":
        kwargs["edited"] = x.permute(0, 2, 3, 1)
    elif case == "sizes differ":
        kwargs["original"] = smooth_images(2, 32, 40)
    elif case == "batches differ":
        kwargs["edited"] = smooth_images(3, 32, 32)
    elif case == "empty batch":
        kwargs["edited"] = x[:0]
    elif case == "mask size":
        kwargs["mask"] = torch.zeros(2, 16, 16)
    elif case == "mask batch":
        kwargs["mask"] = torch.zeros(3, 32, 32)
    elif case == "mask shape":
        kwargs["mask"] = torch.zeros(2, 1, 1, 32, 32)
    elif case == "mask range":
        kwargs["mask"] = torch.full((32, 32), 2.0)
    elif case == "NaN pixels":
        kwargs["edited"][1, 0, 3, 3] = math.nan
    elif case == "CLIP without target":
        kwargs.update(clip=models["clip"], target=" ")
    elif case == "too small for LPIPS":
        kwargs.update(original=x[..., :24, :24], edited=x[..., :24, :24], lpips=models["lpips"])
    with pytest.raises(ValueError) as e:
        edit_metrics(**kwargs)
    for w in words:
        assert w in str(e.value), (case, str(e.value))


def test_lpips_min_size_is_the_backbones():
    """The size check is right: one pixel less fails inside the network, the minimum runs."""
    for net in ("alex", "vgg"):
        n = metrics.lpips_min_size(net)
        model = __import__("styleclip_core.models.lpips", fromlist=["LPIPS"]).LPIPS(net)
        with torch.no_grad():
            assert model(torch.zeros(1, 3, n, n), torch.zeros(1, 3, n, n)).shape == (1,)
            with pytest.raises(RuntimeError):
                model(torch.zeros(1, 3, n - 1, n - 1), torch.zeros(1, 3, n - 1, n - 1))


def test_edit_metrics_node(comfy, monkeypatch):
    import comfy.model_management as mm

    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    arcface = comfy.run("StyleCLIP_LoadArcFace", arcface_name="model_ir_se50.pth").args[0]
    lpips = comfy.run("StyleCLIP_LoadLPIPS", net="alex", backbone_name="alexnet-owt-7be5be79.pth").args[0]
    calls = []
    real = mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda patchers, **kw: (calls.append([p.model for p in patchers]), real(patchers, **kw)))
    originals = (smooth_images(2, 64, 64, seed=9) + 1) / 2  # ComfyUI images [B, H, W, 3] in [0, 1]
    originals = originals.permute(0, 2, 3, 1).contiguous()
    edited = originals.clone()
    edited[:, :20] = 1 - edited[:, :20]
    mask = torch.zeros(1, 64, 64)
    mask[:, :24] = 1
    out = comfy.run("StyleCLIP_EditMetrics", originals=originals, edited=edited, clip=clip, arcface=arcface, lpips=lpips,
                    target=TARGET, neutral=NEUTRAL, mask=mask)
    table, *lists = out.args
    assert calls == [[clip.net, arcface, lpips]]  # every model it runs, in one call (model management)
    x0, x1 = originals.permute(0, 3, 1, 2) * 2 - 1, edited.permute(0, 3, 1, 2) * 2 - 1
    want = edit_metrics(x0, x1, clip, TARGET, NEUTRAL, arcface, lpips, mask)
    # the node computes the library's numbers on the same pixels (float32 -> Python float is exact)
    assert lists == [want.per_face[k] for k in ("clip", "clip_direction", "identity", "lpips", "psnr", "lpips_outside", "psnr_outside")]
    assert table == want.table() and out.ui["text"] == (table,)
    assert lists[5] == [0.0, 0.0] and lists[6] == [math.inf, math.inf]  # changed only inside the mask
    # without models only PSNR; the other lists are empty
    table, *lists = comfy.run("StyleCLIP_EditMetrics", originals=originals[:1], edited=edited, target=TARGET, neutral=NEUTRAL).args
    assert [len(v) for v in lists] == [0, 0, 0, 0, 2, 0, 0] and "PSNR" in table and "CLIP" not in table
    with pytest.raises(ValueError, match="originals: expected 1 image or one per edited image"):
        comfy.run("StyleCLIP_EditMetrics", originals=torch.cat([originals] * 2)[:3], edited=edited, target=TARGET, neutral=NEUTRAL)
