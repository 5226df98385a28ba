"""Video editing (STIT, SPEC 16): the time per frame of each stage, ours against the reference procedure, in one run.

    python benchmarks/bench_video.py [--sizes 256 1024] [--frames 4] [--steps 2] [--device cpu] [--quick]

The clip is synthesized: ``--frames`` frames of 1920 x 1080 with a drawn face (skin ellipse, eyes,
mouth) that moves and rolls a little, its eye centres and mouth corners given directly as
``FacePoints`` (with a pixel of landmark jitter), about 640 px of crop side. The models are full
size on seeded random weights: a config-f generator of each size (``bench_generator.build``; the
reference side on ``reference_equivalent.to_reference_path``), e4e's IR-SE50 encoder
(``bench_e4e.build_encoder``), LPIPS-alex (``tiny_models.random_lpips``) and a BiSeNet face parser
of the release's widths (ResNet-18 context path; BatchNorm variances randomised). Stages:

1. alignment: ``video.alignment.align_video`` over the clip (crop axes, Gaussian smoothing of
   centre and axes, STIT's crop at 1024 from the 1080p frame, Lanczos resize to the generator
   size). Ours only: it is STIT's ``crop_image`` call for call (the same PIL operations), so a
   reference column would time the same code.
2. e4e inversion of the clip's crops (the pivots). Ours: ``models.e4e.invert(encoder, crops,
   chunk=4)``; reference: e4e's encoder forward written from its maths (``bench_e4e.reference_encode``:
   MaxPool2d(1, stride) shortcuts, squeeze-excite through AdaptiveAvgPool2d, ``w0.repeat`` plus
   per-row deltas) on the whole clip in one batch, the crops resized to 256 the same way as ours.
3. clip tuning, one step over the clip divided by its frames (one generator update per frame),
   STIT's settings (lr 3e-5, L2 weight 10, LPIPS-alex weight 1, no locality term, every frame
   updating the one generator in turn). Ours: ``photos.pivotal_tuning.PivotalTuner`` with
   ``video.frames.CLIP_TUNING`` (Adam over the synthesis weights; both images through AlexNet in
   one batch); reference: STIT's coach loop (SPEC 16 / 10.3) on the reference path: a deep copy of
   G, ``Adam(G.parameters(), lr 3e-5, betas (0.9, 0.999))`` over every weight, per frame
   ``G.synthesis`` at its pivot, ``mse_loss * 10 + squeeze(lpips)`` with the lpips package's
   forward (the two images through AlexNet one after the other), zero_grad, backward, step.
   Targets: the clip's crops; pivots: truncated (psi 0.7) random codes.
4. masks of one frame. Ours: ``video.masks.stitching_masks`` (nearest resize to 512, ImageNet
   normalisation, BiSeNet's main head, ``create_masks`` with ``max_pool2d`` dilation, bilinear
   resize to the crop size); reference: STIT's ``calc_masks`` from SPEC 16.2: the same input, the
   parser's full forward (all three heads upsampled, as face-parsing.PyTorch's; output 0 used), and
   ``create_masks`` with STIT's ``utils/morphology.dilation`` "convolution" engine (geodesic padding
   -1e4, one one-hot ``k x k`` kernel per window offset: a ``k^2``-channel convolution, max over the
   channels; k = 51 for the default 50 px outer dilation), resized to the generator size. On a CPU
   the reference's masks are one timed call without a warm-up (about a minute each).
5. stitching of one frame. One step: ours is the loop body of ``video.stitching.stitch`` (our
   generator's ``synthesis``, ``masked_distance`` border + 0.01 content, the per-step ``.item()``
   history, zero_grad, backward, Adam step); the reference is STIT's ``optimize_border`` step
   (SPEC 16.3) on the reference path: ``G.synthesis``, ``masked_l2`` border + 0.01 content, the
   threshold test, zero_grad, backward, step. Setup per frame: ours ``Generator.copy()`` + Adam,
   the reference ``deepcopy(G).train().requires_grad_(True).float()`` + Adam over all parameters,
   plus on both sides the edited rendering and the rendering after the loop (no gradients). The
   per-frame cost is setup + 100 steps (``StitchingSettings().steps``), projected from the step.
   Masks for the stitching: ``create_masks`` of an ellipse foreground (a random parser's classes
   are arbitrary).
6. paste-back of one frame into its 1920 x 1080 frame with the full mask feathered as STIT's
   ``paste_image_mask`` (radius outer // 2, scaled to the crop size). Ours, as
   ``video.frames.stitch_frames``: ``masks.feathered`` then ``photos.align.paste_back`` (torch,
   float frames); reference (when OpenCV is installed): SPEC 16.1/16.3's PIL procedure: the mask to
   uint8, ``cv2.erode`` (box, constant 0 border) and ``cv2.GaussianBlur`` (sigma from the width),
   the crop as RGBA with that alpha, ``Image.transform(frame size, PERSPECTIVE, inverse
   coefficients, BILINEAR)``, ``alpha_composite`` onto an RGBA copy of the PIL frame. The paste
   itself runs on the CPU on both sides (ours feathers on the device and pastes on the host, as
   ``stitch_frames`` does).

Times are the best of ``--steps`` calls after one warm-up call, each measurement in its own
process; ratio = reference time / our time (> 1: ours is faster); peak memory is over the loaded
models and the clip (``benchutil.PeakMemory``). The check column shows a value from each side's
first call (losses, code and mask sums, the pasted frame's mean) to show they agree. The
projection adds up one frame of the default pipeline: alignment, inversion, 300 tuning steps
(the tuning makes steps x frames updates, so 300 updates per frame), masks, stitching setup + 100
steps, paste-back; where a stage has no reference figure, our time stands in on the reference side.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from benchutil import fmt_peak, fmt_ratio, fmt_seconds, time_of  # noqa: E402

FRAME_W, FRAME_H = 1920, 1080
STAGES = ("align", "e4e", "tuning", "masks", "stitch", "paste")
REFERENCE_STAGES = ("e4e", "tuning", "masks", "stitch", "paste")  # alignment: ours only (same PIL calls as STIT)
DEFAULT_OUTER = 50  # STIT's --outer_mask_dilation
LABELS = {
    "align": "alignment (smoothing + crop at 1024 + resize)",
    "e4e": "e4e inversion",
    "tuning": "clip tuning, one update",
    "masks": "masks (BiSeNet at 512 + create_masks)",
    "stitch": "stitching, one step",
    "stitch_setup": "stitching setup (copy, Adam, 2 renders)",
    "stitch_frame": "stitching, setup + {n} steps",
    "paste": "paste-back into 1920x1080",
}


# ---- the clip and the models ------------------------------------------------------------------


def synthetic_clip(frames: int, seed: int = 0):
    """(frames [T, 1080, 1920, 3] float in [0, 1], [FacePoints] per frame): a drawn face that moves."""
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from styleclip_core.photos.align import FacePoints

    y, x = np.mgrid[:FRAME_H, :FRAME_W].astype(np.float32)
    back = np.stack([110 + 50 * np.sin(x / 91.0) * np.cos(y / 67.0), 90 + 0.05 * x + 0.04 * y, 130 + 40 * np.cos((x + y) / 143.0)], -1)
    back = np.clip(back, 0, 255).astype(np.uint8)
    jitter = np.random.RandomState(seed).uniform(-1.0, 1.0, size=(frames, 4, 2))  # landmark noise the smoothing evens out
    t_ = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    out, points = [], []
    for i in range(frames):
        cx, cy, roll = 900.0 + 8.0 * i, 470.0 + 3.0 * math.sin(i), math.radians(4.0 * math.sin(0.7 * i))
        rot = np.array([[math.cos(roll), math.sin(roll)], [-math.sin(roll), math.cos(roll)]])

        def place(xy):
            return [tuple(p) for p in np.asarray(xy, dtype=np.float64) @ rot.T + (cx, cy)]

        img = Image.fromarray(back)
        draw = ImageDraw.Draw(img)
        draw.polygon(place(np.stack([185 * np.cos(t_), 70 + 250 * np.sin(t_)], 1)), fill=(222, 178, 150))
        for ex in (-80.0, 80.0):
            draw.polygon(place(np.stack([ex + 24 * np.cos(t_), 13 * np.sin(t_)], 1)), fill=(40, 30, 30))
        draw.line(place([(-60, 170), (0, 182), (60, 170)]), fill=(150, 40, 50), width=12)
        pts = np.array(place([(-80, 0), (80, 0), (-60, 170), (60, 170)])) + jitter[i]
        points.append(FacePoints(*map(tuple, pts)))
        out.append(torch.from_numpy(np.asarray(img).copy()).float() / 255)
    return torch.stack(out), points


def build_parser(device: str, seed: int = 5):
    """BiSeNet with face-parsing.PyTorch's widths on seeded random weights."""
    import torch

    from styleclip_core.models.face_parser import BiSeNet

    torch.manual_seed(seed)
    net = BiSeNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 1.5)
                m.running_mean.uniform_(-0.1, 0.1)
    return net.eval().requires_grad_(False).to(device)


def ellipse_masks(size: int, outer: int, device: str):
    """(content, border, full) ``[1, 1, size, size]``: STIT's ``create_masks`` of an ellipse face at 512, resized."""
    import torch
    import torch.nn.functional as F

    from styleclip_core.video.masks import PARSER_SIZE, create_masks

    v, u = torch.meshgrid(torch.linspace(0, 1, PARSER_SIZE), torch.linspace(0, 1, PARSER_SIZE), indexing="ij")
    fg = ((((u - 0.5) / 0.3) ** 2 + ((v - 0.55) / 0.38) ** 2) < 1).float()[None, None]
    masks = create_masks(outer // 2, fg, 0, outer // 2, False)
    return tuple(F.interpolate(m, (size, size), mode="bilinear", align_corners=True).to(device) for m in masks)


def setup(size: int, frames: int, device: str, reference: bool):
    """The generator (reference path or ours), the clip, its crops and alignment, pivots."""
    import torch

    from bench_generator import build as build_generator
    from styleclip_core.models.render import photos_at
    from styleclip_core.video.alignment import align_video

    g = build_generator(size, device, reference=reference)
    clip, points = synthetic_clip(frames)
    crops, alignment = align_video(clip, points, size)
    with torch.no_grad():
        z = torch.randn(frames + 1, g.style_dim, generator=torch.Generator().manual_seed(2)).to(device)
        w = g.to_w_plus(g.truncate(g.mapping(z), 0.7, g.mean_latent(1000)))
    return {"g": g, "clip": clip, "points": points, "crops": crops, "alignment": alignment,
            "targets": photos_at(crops, size).to(device), "pivots": w[:frames], "edit_offset": w[frames:] - w[:1]}


# ---- the reference procedures -------------------------------------------------------------------


def lpips_package(alex, x0, x1):
    """lpips.LPIPS.forward on our weights: the two images through AlexNet one after the other."""
    import torch

    from styleclip_core.models.lpips import unit_normalize

    f0, f1 = alex.taps_of(x0), alex.taps_of(x1)
    return sum(torch.nn.functional.conv2d((unit_normalize(a) - unit_normalize(b)).square(), h).mean([2, 3], keepdim=True)
               for a, b, h in zip(f0, f1, alex.heads))


def reference_dilation(x, k: int):
    """STIT's ``utils/morphology.dilation`` with a flat k x k element, engine "convolution" (SPEC 16.2)."""
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    padded = F.pad(x, (k // 2, k // 2, k // 2, k // 2), value=-1e4)  # geodesic: outside never wins
    kernel = torch.zeros(k * k, 1, k, k, device=x.device, dtype=x.dtype)
    kernel.view(k * k, k * k).fill_diagonal_(1.0)  # one one-hot kernel per window offset
    bias = torch.zeros(k * k, device=x.device, dtype=x.dtype)  # the flat element's neighbourhood (zeros)
    out = F.conv2d(padded.view(b * c, 1, h + k - 1, w + k - 1), kernel, bias=bias).max(dim=1)[0]
    return out.view(b, c, h, w)


def reference_masks(crop, parser, outer: int, size: int):
    """STIT's calc_masks (SPEC 16.2) on a crop ``[1, 3, S, S]`` in [-1, 1], resized to ``size``."""
    import torch
    import torch.nn.functional as F

    from styleclip_core.video.masks import BACKGROUND_CLASSES, IMAGENET_MEAN, IMAGENET_STD

    with torch.no_grad():
        x = F.interpolate(crop, (512, 512), mode="nearest")
        x = (x.clip(-1, 1) + 1) / 2
        x = (x - x.new_tensor(IMAGENET_MEAN)[:, None, None]) / x.new_tensor(IMAGENET_STD)[:, None, None]
        classes = parser.outputs(x)[0].argmax(dim=1, keepdim=True)
        fg = torch.ones_like(classes, dtype=torch.bool)
        for c in BACKGROUND_CLASSES:
            fg &= classes != c
        mask = fg.float()
        bp, inner, out_d = outer // 2, 0, outer // 2
        s = mask.shape[2]
        idx = torch.arange(s, device=mask.device)
        edge_1d = (idx < bp) | (idx >= s - bp)
        edge = (edge_1d[:, None] | edge_1d[None, :]).float()[None, None].expand_as(mask)
        temp = reference_dilation(mask, 2 * inner + 1) if inner != 0 else mask
        border = torch.minimum(edge, temp)
        full = reference_dilation(temp, 2 * out_d + 1)
        border = torch.maximum(border, full - temp).clip(0, 1)
        content = (mask - border).clip(0, 1)
        return tuple(F.interpolate(m, (size, size), mode="bilinear", align_corners=True) for m in (content, border, full))


def masked_l2(x, t, m):
    """STIT's ``masked_l2`` (l2): sum(mse(x m, t m, elementwise)) / sum(m)."""
    import torch.nn.functional as F

    return F.mse_loss(x * m, t * m, reduction="none").sum() / m.sum()


# ---- the stages -------------------------------------------------------------------------------


def make_stage(stage: str, impl: str, size: int, frames: int, device: str, outer: int):
    """A no-argument callable doing ``stage`` once the ``impl`` way (returning a check value), the
    number of frames one call covers, and extras (stitching's setup) to time after it."""
    import torch

    ref = impl == "reference"
    s = setup(size, frames, device, reference=ref)
    g = s["g"]

    if stage == "align":
        from styleclip_core.video.alignment import align_video

        def run():
            crops, _ = align_video(s["clip"], s["points"], size)
            return float(crops.double().mean())
        return run, frames, {}

    if stage == "e4e":
        import torch.nn.functional as F

        from bench_e4e import build_encoder, reference_encode
        from styleclip_core.models import e4e
        from styleclip_core.models.render import from_unit_range

        encoder = build_encoder(g).to(device)
        crops = s["crops"]
        if not ref:
            return lambda: float(e4e.invert(encoder, crops, chunk=4).double().abs().mean()), frames, {}

        def run():
            with torch.no_grad():
                x = from_unit_range(crops)  # ToTensor + Normalize(0.5, 0.5)
                if x.shape[-1] != 256:
                    x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
                return float(reference_encode(encoder, x.to(device)).cpu().double().abs().mean())
        return run, frames, {}

    if stage == "tuning":
        from styleclip_core.formats.tiny_models import random_lpips
        from styleclip_core.models.latents import Latents
        from styleclip_core.photos.pivotal_tuning import PivotalTuner
        from styleclip_core.video.frames import CLIP_TUNING

        alex = random_lpips("alex", 4).to(device)
        pivots, targets = s["pivots"], s["targets"]
        if not ref:
            tuner = PivotalTuner(g, Latents(w_plus=pivots), targets, alex, CLIP_TUNING)

            def run():
                start = len(tuner.history)
                tuner.step()
                return float(tuner.history[start]["loss"])
            return run, frames, {}

        G = copy.deepcopy(g).requires_grad_(True)
        optimizer = torch.optim.Adam(G.parameters(), lr=CLIP_TUNING.learning_rate, betas=(0.9, 0.999))

        def run():
            first = None
            for i in range(frames):  # one frame at a time, each an update of the one generator
                generated = G.synthesis(G.styles(pivots[i: i + 1]))
                l2 = torch.nn.functional.mse_loss(generated, targets[i: i + 1])
                lp = torch.squeeze(lpips_package(alex, generated, targets[i: i + 1]))
                loss = l2 * CLIP_TUNING.l2_weight + lp * CLIP_TUNING.lpips_weight
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                first = loss.detach() if first is None else first
            return float(first)
        return run, frames, {}

    crop = s["targets"][:1]
    if stage == "masks":
        from styleclip_core.video.masks import stitching_masks

        parser = build_parser(device)
        if ref:
            return lambda: sum(float(m.double().sum()) for m in reference_masks(crop, parser, outer, size)), 1, {}
        return lambda: sum(float(m.double().sum()) for m in stitching_masks(crop, parser, outer, 0, False, size)), 1, {}

    content, border, full = ellipse_masks(size, outer, device)
    if stage == "stitch":
        from styleclip_core.models.latents import Latents
        from styleclip_core.video.stitching import StitchingSettings, _render, masked_distance

        st = StitchingSettings()
        code = s["pivots"][:1] + s["edit_offset"]  # the frame's edited code (fixed)
        with torch.no_grad():
            edited = g.synthesis(g.styles(code))
        if not ref:
            latent = Latents(w_plus=code.detach().clone())

            def fresh():
                tuned = g.copy().requires_grad_(True)
                return tuned, torch.optim.Adam(tuned.parameters(), lr=st.learning_rate)

            tuned, optimizer = fresh()
            history = []

            def run():  # the loop body of video.stitching.stitch
                image = _render(tuned, latent)
                border_loss = masked_distance(image, crop, border, st.loss == "l2")
                content_loss = masked_distance(image, edited, content, st.loss == "l2")
                loss = border_loss + st.content_weight * content_loss
                history.append({"border": border_loss.item(), "content": content_loss.item(), "total": loss.item()})
                if border_loss < st.border_threshold:
                    return history[-1]["border"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                return history[-1]["border"]

            def final():
                with torch.no_grad():
                    return _render(tuned, latent)

            def edit():
                with torch.no_grad():
                    return g.synthesis(latent.to_styles(g))
            return run, 1, {"copy": fresh, "edit": edit, "final": final}

        def fresh():
            G = copy.deepcopy(g).train(True).requires_grad_(True).float()
            return G, torch.optim.Adam(G.parameters(), lr=st.learning_rate, betas=(0.9, 0.999), eps=1e-8)

        G, optimizer = fresh()
        latent = code.detach().clone()

        def run():  # optimize_border's step
            img = G.synthesis(G.styles(latent))
            border_loss = masked_l2(img, crop, border)
            loss = border_loss + st.content_weight * masked_l2(img, edited, content)
            if border_loss < st.border_threshold:
                return border_loss.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return border_loss.item()

        def final():
            with torch.no_grad():
                return G.synthesis(G.styles(latent))

        def edit():
            with torch.no_grad():
                return g.synthesis(g.styles(latent))
        return run, 1, {"copy": fresh, "edit": edit, "final": final}

    if stage == "paste":
        from styleclip_core.video.masks import scaled_pixels

        radius = int(round(scaled_pixels(outer // 2, size)))
        face = s["crops"][:1]  # [1, S, S, 3] in [0, 1]: the stitched crop stands in
        frame = s["clip"][:1]
        alignment = s["alignment"]
        if not ref:
            from styleclip_core.photos.align import paste_back
            from styleclip_core.video.masks import feathered

            def run():
                paste_mask = feathered(full, radius)[:, 0].cpu()
                image, _ = paste_back(frame, face, [alignment.alignments[0]], feather=0.0, mask=paste_mask)
                return float(image.double().mean())
            return run, 1, {}

        import cv2  # noqa: F401  (ImportError: no reference row)
        import numpy as np
        from PIL import Image

        from styleclip_core.photos.align import to_uint8
        from styleclip_core.video.alignment import perspective_coefficients

        frame_pil = Image.fromarray(to_uint8(frame)[0])
        face_pil = Image.fromarray(to_uint8(face)[0])
        coefficients = tuple(perspective_coefficients(alignment.quads[0], size))

        def run():
            mask = (full[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            k = 2 * radius + 1
            eroded = cv2.erode(mask, np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
            blurred = cv2.GaussianBlur(eroded, (k, k), sigmaX=0)  # sigma 0: OpenCV's from the width
            masked = face_pil.convert("RGBA")
            masked.putalpha(Image.fromarray(blurred))
            projected = masked.transform(frame_pil.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR)
            pasted = frame_pil.convert("RGBA")
            pasted.alpha_composite(projected)
            return float(np.asarray(pasted)[..., :3].mean() / 255)
        return run, 1, {}

    raise ValueError(f"unknown stage {stage!r}")


def measure(stage: str, impl: str, size: int, frames: int, steps: int, device: str, outer: int = DEFAULT_OUTER) -> dict:
    """One stage the ``impl`` way: ``time`` per frame (stitching: per step), ``peak_mb``, ``first``
    (the check value of the first call); stitching adds ``setup`` (copy + Adam + the two renders)."""
    from benchutil import is_cuda, sync, timed

    run, per_call, extras = make_stage(stage, impl, size, frames, device, outer)
    slow = stage == "masks" and impl == "reference" and not is_cuda(device)  # a minute a call on a CPU
    r = timed(run, 1 if slow else steps, device, warmup=0 if slow else 1)
    out = {"time": r["time"] / per_call, "peak_mb": r["peak_mb"], "first": r["first"]}
    if extras:
        def best(fn, n=2):
            times = []
            for _ in range(n):
                sync(device)
                t = time.perf_counter()
                fn()
                sync(device)
                times.append(time.perf_counter() - t)
            return min(times)

        extras["edit"](), extras["final"]()  # warm-up of the no-gradient renders
        parts = {"copy": best(extras["copy"]), "edit": best(extras["edit"]), "final": best(extras["final"])}
        out["setup"] = sum(parts.values())
        out["setup_parts"] = parts
    return out


# ---- tables ----------------------------------------------------------------------------------


def _agree(a, b, rel):
    return abs(a - b) <= rel * abs(b) + 1e-6


CHECKS = {"align": ("crop mean", 0), "e4e": ("mean |code|", 1e-4), "tuning": ("first loss (frame 0)", 1e-4),
          "masks": ("sum of the 3 masks", 1e-5), "stitch": ("first border loss", 1e-4), "paste": ("mean of the pasted frame", 1e-2)}


def projected(results: dict, size: int, tuning_steps: int | None = None, stitch_steps: int | None = None) -> dict:
    """Seconds per frame of the default pipeline for each side: {'reference', 'ours', 'parts': {stage: (ref, ours)}}.
    ``results[(stage, impl, size)]`` as ``measure`` returns; a missing reference figure is replaced by ours."""
    from styleclip_core.video.frames import CLIP_TUNING
    from styleclip_core.video.stitching import StitchingSettings

    tuning_steps = CLIP_TUNING.steps if tuning_steps is None else tuning_steps
    stitch_steps = StitchingSettings().steps if stitch_steps is None else stitch_steps
    parts = {}
    for stage in STAGES:
        pair = []
        for impl in ("reference", "ours"):
            r = results.get((stage, impl, size))
            if r is None or "error" in r:
                r = results.get((stage, "ours", size)) if impl == "reference" else None
            if r is None or "error" in r:
                pair.append(float("nan"))
                continue
            if stage == "tuning":
                pair.append(tuning_steps * r["time"])
            elif stage == "stitch":
                pair.append(r.get("setup", float("nan")) + stitch_steps * r["time"])
            else:
                pair.append(r["time"])
        parts[stage] = tuple(pair)
    return {"reference": sum(p[0] for p in parts.values()), "ours": sum(p[1] for p in parts.values()), "parts": parts,
            "tuning_steps": tuning_steps, "stitch_steps": stitch_steps}


def stage_rows(results: dict, sizes) -> list[list]:
    """Markdown rows: stage, size, reference s, ours s, ratio, peak MB ours / reference, check."""
    from styleclip_core.video.stitching import StitchingSettings

    rows = []
    for size in sizes:
        for stage in STAGES:
            ref, ours = results.get((stage, "reference", size)), results.get((stage, "ours", size))
            if ref is None and ours is None:
                continue  # not measured (--stages)
            what, rel = CHECKS[stage]
            notes = []
            for impl, r in (("reference", ref), ("ours", ours)):
                if r is not None and "error" in r:
                    notes.append(f"{impl}: {r['error']}")
            if ref is not None and ours is not None and "error" not in ref and "error" not in ours:
                same = "agree" if _agree(ours["first"], ref["first"], rel) else "DIFFER"
                notes.append(f"{what}: {ref['first']:.6g} / {ours['first']:.6g} ({same})")
            elif ours is not None and "error" not in ours:
                notes.append(f"{what}: {ours['first']:.6g}" + ("; same PIL calls as STIT's crop_image: no reference timed" if stage == "align" else ""))
            per = "per step" if stage == "stitch" else "per frame"
            rows.append([f"{LABELS[stage]}, {per}", size, fmt_seconds(time_of(ref)) if ref else "—", fmt_seconds(time_of(ours)), fmt_ratio(time_of(ref), time_of(ours)) if ref else "—",
                         f"{fmt_peak(ours)} / {fmt_peak(ref) if ref else '—'}", "; ".join(notes)])
            if stage == "stitch":
                setup_ref = ref.get("setup", float("nan")) if ref and "error" not in ref else float("nan")
                setup_ours = ours.get("setup", float("nan")) if ours and "error" not in ours else float("nan")
                parts = []
                for impl, r in (("reference", ref), ("ours", ours)):
                    if r and "setup_parts" in r:
                        p = r["setup_parts"]
                        parts.append(f"{impl}: copy {fmt_seconds(p['copy'])}, edit render {fmt_seconds(p['edit'])}, final render {fmt_seconds(p['final'])}")
                rows.append([f"{LABELS['stitch_setup']}, per frame", size, fmt_seconds(setup_ref), fmt_seconds(setup_ours), fmt_ratio(setup_ref, setup_ours), "", "; ".join(parts)])
                n = StitchingSettings().steps
                whole_ref, whole_ours = setup_ref + n * time_of(ref) if ref else float("nan"), setup_ours + n * time_of(ours)
                rows.append([f"{LABELS['stitch_frame'].format(n=n)}, per frame (projected)", size, fmt_seconds(whole_ref), fmt_seconds(whole_ours),
                             fmt_ratio(whole_ref, whole_ours), "", ""])
    return rows


STAGE_COLUMNS = ["stage", "size", "reference", "ours", "ratio", "peak MB ours / ref", "check (reference / ours)"]
PROJECTION_COLUMNS = ["size", "reference s / frame", "ours s / frame", "ratio", "ours: tuning / stitching / rest", "notes"]


def projection_rows(results: dict, sizes) -> list[list]:
    rows = []
    for size in sizes:
        p = projected(results, size)
        tune, stitch = p["parts"]["tuning"][1], p["parts"]["stitch"][1]
        rest = p["ours"] - tune - stitch
        stand_ins = [st for st in STAGES if (st, "reference", size) not in results or "error" in results[(st, "reference", size)]]
        note = f"{p['tuning_steps']} tuning updates + {p['stitch_steps']} stitching steps per frame"
        if stand_ins:
            note += f"; ours stands in for the reference's {', '.join(stand_ins)}"
        rows.append([size, fmt_seconds(p["reference"]), fmt_seconds(p["ours"]), fmt_ratio(p["reference"], p["ours"]),
                     f"{fmt_seconds(tune)} / {fmt_seconds(stitch)} / {fmt_seconds(rest)}", note])
    return rows


def markdown(columns, rows) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


# ---- command line --------------------------------------------------------------------------------


def run_child(stage, impl, size, frames, steps, device, outer) -> dict:
    cmd = [sys.executable, __file__, "--child", stage, impl, str(size), str(frames), str(steps), device, str(outer)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        tail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        if "No module named 'cv2'" in out.stderr:
            tail = "OpenCV (cv2) not installed: no reference paste"
        print(f"[{stage} {impl} {size}px failed]\n{out.stderr[-2000:]}", file=sys.stderr, flush=True)
        return {"error": tail[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="generator sizes (default 256 1024)")
    parser.add_argument("--frames", type=int, help="clip length for the per-frame averages (default 4)")
    parser.add_argument("--steps", type=int, help="timed calls per measurement after one warm-up call (default 2)")
    parser.add_argument("--outer", type=int, help=f"STIT's outer mask dilation in pixels of a 1024 crop (default {DEFAULT_OUTER})")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="tiny settings (64 px, 2 frames, 1 step, outer dilation 10): checks the script")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, impl, size, frames, steps, device, outer = args.child
        print(json.dumps(measure(stage, impl, int(size), int(frames), int(steps), device, int(outer))))
        return
    sizes = args.sizes or ([64] if args.quick else [256, 1024])
    frames = args.frames or (2 if args.quick else 4)
    steps = args.steps or (1 if args.quick else 2)
    outer = args.outer if args.outer is not None else (10 if args.quick else DEFAULT_OUTER)

    import torch

    from benchutil import where

    print(f"torch {torch.__version__}, {where(args.device)}; a {frames}-frame {FRAME_W}x{FRAME_H} clip; best of {steps} after a warm-up; "
          f"outer mask dilation {outer}{' (--quick)' if args.quick else ''}", flush=True)
    results = {}
    start = time.perf_counter()
    for size in sizes:
        for stage in args.stages:
            for impl in (("reference", "ours") if stage in REFERENCE_STAGES else ("ours",)):
                t0 = time.perf_counter()
                results[(stage, impl, size)] = r = run_child(stage, impl, size, frames, steps, args.device, outer)
                print(f"  {size:>5} {stage:>7} {impl:>9}: {fmt_seconds(time_of(r))}{' ' + r['error'] if 'error' in r else ''} "
                      f"({time.perf_counter() - t0:.0f} s with setup)", flush=True)
    print()
    print(markdown(STAGE_COLUMNS, stage_rows(results, sizes)))
    if set(args.stages) == set(STAGES):
        print()
        print("Projected time per frame of the default pipeline:\n")
        print(markdown(PROJECTION_COLUMNS, projection_rows(results, sizes)))
    print(f"\nTotal wall time {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
