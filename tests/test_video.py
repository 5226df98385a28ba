"""Video editing (STIT; styleclip_core/video, nodes/video_nodes.py) beyond the fixture parity of
test_stit_reference.py: smoothing steadies jittered crops, frames without a face pass through,
keyframed strengths, the node chain on a synthesized moving face (stitching lowers the seam
error, edits change only the face region), and clear errors."""
import numpy as np
import pytest
import torch

import synthetic_face as sf
from styleclip_core.photos.align import FacePoints
from styleclip_core.photos.align import crop_axes
from styleclip_core.video.alignment import align_video, smoothed_quads
from styleclip_core.video.consistency import temporal_change
from styleclip_core.video.frames import smooth_latents
from styleclip_core.video.keyframes import parse_keyframes, strengths
from styleclip_core.models.latents import Latents

FRAMES = 8


def moving_face(frames=FRAMES, jitter=0.0, seed=0):
    """A drawn face moving right and rolling a little, with its true points; ``jitter`` adds
    N(0, jitter) pixels to each detected point (a detector's frame-to-frame noise)."""
    rng = np.random.default_rng(seed)
    pictures, points, truth = [], [], []
    for t in range(frames):
        center, angle = (140.0 + 4 * t, 130.0 - 1.5 * t), 6.0 + 1.0 * t
        pixels, pts = sf.face_photo(width=320, height=288, center=center, angle_deg=angle)
        pictures.append(pixels)
        truth.append(pts)
        noisy = pts.array() + rng.normal(0, jitter, (4, 2)) if jitter else pts.array()
        points.append(FacePoints(*map(tuple, noisy)))
    return torch.from_numpy(np.stack(pictures)).float() / 255, points, truth


def test_smoothing_steadies_jittered_crops():
    """With detector noise, smoothed crop centres are closer to the true (linear) motion."""
    _, noisy, truth = moving_face(frames=24, jitter=2.0)
    true_c = np.stack([crop_axes(p)[0] for p in truth])
    raw = smoothed_quads(np.stack([crop_axes(p) for p in noisy]), 0, 0).mean(1)
    smooth = smoothed_quads(np.stack([crop_axes(p) for p in noisy]), 1.0, 3.0).mean(1)
    err_raw, err_smooth = np.abs(raw - true_c)[2:-2].mean(), np.abs(smooth - true_c)[2:-2].mean()
    assert err_smooth < 0.75 * err_raw, (err_raw, err_smooth)


def test_align_video_crops_and_missing_frames():
    frames, points, _ = moving_face()
    points[3] = None
    crops, where = align_video(frames, points, 256)
    assert crops.shape == (FRAMES - 1, 256, 256, 3) and where.frames == tuple(i for i in range(FRAMES) if i != 3)
    assert where.missing == (3,) and "no face in frames [3]" in where.summary()
    # each crop holds the face: the crop centre is skin-coloured (the drawn face's (224, 180, 150))
    centre = crops[:, 118:138, 118:138].mean((1, 2)) * 255
    assert (centre - torch.tensor([224.0, 180.0, 150.0])).abs().max() < 12, centre


def test_align_video_errors():
    frames, points, _ = moving_face(frames=3)
    with pytest.raises(ValueError, match="no face in any"):
        align_video(frames, [None] * 3)
    with pytest.raises(ValueError, match="2 entries for 3 frames"):
        align_video(frames, points[:2])
    bad = list(points)
    bad[1] = FacePoints((5.0, 5.0), (5.0, 5.0), (5.0, 5.0), (5.0, 5.0))
    with pytest.raises(ValueError, match="frame 1"):
        align_video(frames, bad)


def test_keyframes():
    assert parse_keyframes("0: 0, 8: 3, 15: 3") == [(0, 0.0), (8, 3.0), (15, 3.0)]
    assert parse_keyframes("4=1\n2 -0.5") == [(2, -0.5), (4, 1.0)]
    assert parse_keyframes("  ") == []
    s = strengths(10, parse_keyframes("2: 0, 6: 2"))
    assert np.allclose(s, [0, 0, 0, 0.5, 1, 1.5, 2, 2, 2, 2])
    assert np.allclose(strengths(4, [], 1.5), 1.5)
    for bad, why in (("3", "could not read"), ("1: 2, 1: 3", "given twice"), ("-1: 2", "could not read|frame >= 0"), ("2: nan", "could not read|finite")):
        with pytest.raises(ValueError, match=why):
            parse_keyframes(bad)


def test_smooth_latents():
    w = torch.randn(12, 4, 8, generator=torch.Generator().manual_seed(0))
    assert smooth_latents(Latents(w_plus=w), 0).w_plus is w
    smooth = smooth_latents(Latents(w_plus=w), 2.0).w_plus
    assert smooth.shape == w.shape and temporal_change_of(smooth) < 0.5 * temporal_change_of(w)
    # a constant sequence is left as it is
    const = w[:1].repeat(12, 1, 1)
    assert torch.allclose(smooth_latents(Latents(w_plus=const), 3.0).w_plus, const, atol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        smooth_latents(Latents(w_plus=w), -1)


def temporal_change_of(w):
    return (w[1:] - w[:-1]).abs().mean().item()


def test_temporal_change_weights_the_face():
    frames = torch.zeros(3, 4, 4, 3)
    frames[1, 0, 0] = 1.0  # a change outside the face
    masks = torch.zeros(3, 4, 4)
    masks[:, 2:, 2:] = 1
    assert temporal_change(frames, masks) == 0.0 and temporal_change(frames) > 0


# ---- the node chain --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(comfy):
    """Align (typed points) -> invert -> tune on the clip -> edit -> stitch, on the tiny models."""
    from styleclip_core.edits.directions import Direction

    frames, points, _ = moving_face()
    lines = "\n".join(" ".join(f"{v:.3f}" for v in p.array().flatten()) for p in points)
    crops, where, info = comfy.run("StyleCLIP_AlignVideoFaces", frames=frames, landmarks="points (from the points input)", output_size="256",
                                   center_sigma=1.0, xy_sigma=3.0, scale=1.0, no_face="pass through unedited", points=lines).args
    e4e, g = comfy.run("StyleCLIP_LoadE4E", e4e_name="e4e_ffhq_encode.pt", ops_backend="auto").args[:2]
    latents = comfy.run("StyleCLIP_InvertFrames", e4e=e4e, crops=crops, smoothing=0.0, chunk_size=4).args[0]
    lpips = comfy.run("StyleCLIP_LoadLPIPS", net="alex", backbone_name="alexnet-owt-7be5be79.pth").args[0]
    tuned, pivots, _, _ = comfy.run("StyleCLIP_TuneOnClip", generator=g, lpips=lpips, latents=latents, crops=crops, steps=2,
                                    learning_rate=3e-5, l2_weight=10.0, lpips_weight=1.0).args
    direction = Direction("w", [torch.randn(g.style_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)])
    edited, edit_info = comfy.run("StyleCLIP_EditFrames", generator=tuned, latents=pivots, direction=direction, alignment=where, strength=3.0,
                                  keyframes="0: 0, 7: 4").args
    parser = comfy.run("StyleCLIP_LoadFaceParser", parser_name="79999_iter.pth").args[0]
    out = comfy.run("StyleCLIP_StitchAndPasteBack", generator=tuned, face_parser=parser, frames=frames, alignment=where, crops=crops, latents=edited,
                    steps=5, learning_rate=3e-4, content_weight=0.01, loss="l2", outer_dilation=50, inner_dilation=0,
                    whole_image_border=False, feather=True).args
    return dict(frames=frames, crops=crops, where=where, tuned=tuned, pivots=pivots, edited=edited, edit_info=edit_info, out=out, parser=parser)


def test_chain_outputs(chain):
    frames, (out, masks, stitched, info) = chain["frames"], chain["out"]
    assert out.shape == frames.shape and masks.shape == frames.shape[:3] and stitched.shape == (FRAMES, chain["tuned"].size, chain["tuned"].size, 3)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    # outside the pasted masks the frames are untouched
    outside = masks == 0
    assert torch.equal(out[outside], frames[outside][..., :3])
    assert (masks.sum((1, 2)) > 0).all()
    assert "seam error" in info and "0: 0" in chain["edit_info"] and "7: 4" in chain["edit_info"]


def test_stitching_lowers_the_seam_error(comfy, chain):
    from styleclip_core.video.frames import stitch_frames
    from styleclip_core.video.stitching import StitchingSettings

    with torch.inference_mode(False):
        none = stitch_frames(chain["tuned"], chain["frames"], chain["where"], chain["crops"], chain["edited"], chain["parser"], StitchingSettings(steps=0))
        some = stitch_frames(chain["tuned"], chain["frames"], chain["where"], chain["crops"], chain["edited"], chain["parser"], StitchingSettings(steps=20))
    assert np.allclose(none.seam_before, none.seam_after)
    assert np.mean(some.seam_after) < 0.9 * np.mean(some.seam_before), (some.seam_before, some.seam_after)


def test_frame_without_a_face_passes_through(comfy):
    frames, points, _ = moving_face(frames=4)
    lines = "\n".join(" ".join(f"{v:.3f}" for v in p.array().flatten()) for p in points)
    crops, where, _ = comfy.run("StyleCLIP_AlignVideoFaces", frames=frames, landmarks="points (from the points input)", output_size="256",
                                center_sigma=1.0, xy_sigma=3.0, scale=1.0, no_face="pass through unedited", points=lines).args
    # drop frame 2's face as a detector would
    from styleclip_core.video.alignment import align_video

    kept = [p if i != 2 else None for i, p in enumerate(points)]
    crops, where = align_video(frames, kept, 256)
    e4e, g = comfy.run("StyleCLIP_LoadE4E", e4e_name="e4e_ffhq_encode.pt", ops_backend="auto").args[:2]
    latents = comfy.run("StyleCLIP_InvertFrames", e4e=e4e, crops=crops, smoothing=1.0, chunk_size=4).args[0]
    parser = comfy.run("StyleCLIP_LoadFaceParser", parser_name="79999_iter.pth").args[0]
    out, masks, stitched, _ = comfy.run("StyleCLIP_StitchAndPasteBack", generator=g, face_parser=parser, frames=frames, alignment=where, crops=crops,
                                        latents=latents, steps=1, learning_rate=3e-4, content_weight=0.01, loss="l1", outer_dilation=50,
                                        inner_dilation=0, whole_image_border=False, feather=False).args
    assert torch.equal(out[2], frames[2]) and masks[2].sum() == 0 and stitched.shape[0] == 3
    with pytest.raises(ValueError, match="3 frames of the clip have a face"):
        comfy.run("StyleCLIP_EditFrames", generator=g, latents=Latents(w_plus=latents.w_plus[:2]), direction=None, alignment=where, strength=1.0)


def test_consistency_node(comfy, chain):
    frames, (out, masks, stitched, _) = chain["frames"], chain["out"]
    arcface = comfy.run("StyleCLIP_LoadArcFace", arcface_name="model_ir_se50.pth").args[0]
    table = comfy.run("StyleCLIP_VideoConsistency", frames_in=frames, frames_out=out, masks=masks, arcface=arcface, crops_out=stitched,
                      crops_in=chain["crops"]).args[0]
    for row in ("flicker", "consecutive output frames", "output face to input face"):
        assert row in table
    with pytest.raises(ValueError, match="compare a clip with its own edit"):
        comfy.run("StyleCLIP_VideoConsistency", frames_in=frames, frames_out=out[:3])


def test_interruption_stops_and_keeps_the_input(chain):
    """ComfyUI's interruption arrives through the progress callback: the stitching stops at once,
    nothing is returned and the input frames are as they were."""
    from styleclip_core.video.frames import stitch_frames
    from styleclip_core.video.stitching import StitchingSettings

    frames = chain["frames"]
    before = frames.clone()
    calls = []

    def progress(done, total, preview):
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt("interrupted")

    with torch.inference_mode(False), pytest.raises(KeyboardInterrupt):
        stitch_frames(chain["tuned"], frames, chain["where"], chain["crops"], chain["edited"], chain["parser"], StitchingSettings(steps=1), progress=progress)
    assert calls == [1, 2] and torch.equal(frames, before)


def test_feathered_paste_mask_is_stits():
    """STIT's paste_image_mask softens the full mask with cv2.erode (a (2r+1)^2 box, outside 0)
    and cv2.GaussianBlur (the same width, sigma from the width): ours on float masks, against
    OpenCV's on the same values (OpenCV comes with mediapipe; skipped without it)."""
    cv2 = pytest.importorskip("cv2")
    from styleclip_core.video.masks import dilation, feathered

    rng = np.random.default_rng(3)
    mask = np.zeros((96, 96), np.float32)
    mask[20:80, 15:70] = 1
    mask[50:60, 60:90] = rng.uniform(0.2, 1, (10, 30))
    for r in (0, 3, 7, 25):
        ours = feathered(torch.from_numpy(mask)[None, None], r)[0, 0].numpy()
        if r == 0:
            assert np.array_equal(ours, mask)
            continue
        k = 2 * r + 1
        eroded = cv2.erode(mask, np.ones((k, k)), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        expected = cv2.GaussianBlur(eroded, (k, k), sigmaX=0)
        assert np.abs(ours - expected).max() < 1e-5, r  # float32 sums of k weights
    # the separable dilation is the square max filter
    x = torch.from_numpy(rng.normal(size=(1, 2, 17, 23)).astype(np.float32))
    square = torch.nn.functional.max_pool2d(x, 5, stride=1, padding=2)
    assert torch.equal(dilation(x, 5), square)
