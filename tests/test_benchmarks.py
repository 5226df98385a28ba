"""The logic of benchmarks/gpu_all.py that runs without a GPU: peak table, FLOP count, goals,
markdown. (``python benchmarks/gpu_all.py --device cpu --quick`` runs every section at tiny settings.)"""
import argparse
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import gpu_all  # noqa: E402


@pytest.mark.parametrize(
    "name, expected",
    [
        ("NVIDIA H100 80GB HBM3", (67.0, 494.7, 989.4)),
        ("NVIDIA H100 PCIe", (51.0, 378.0, 756.0)),
        ("NVIDIA H100 NVL", (60.0, 417.5, 835.5)),
        ("NVIDIA H200", (67.0, 494.7, 989.4)),
        ("NVIDIA A100-SXM4-80GB", (19.5, 156.0, 312.0)),
        ("NVIDIA L40S", (91.6, 183.0, 362.1)),
        ("NVIDIA GeForce RTX 4090", (82.6, 82.6, 165.2)),
    ],
)
def test_known_peaks(name, expected):
    p = gpu_all.peak_tflops(name)
    assert (p["fp32"], p["tf32"], p["bf16"]) == expected


def test_peak_override_and_unknown():
    assert gpu_all.peak_tflops("NVIDIA T4") is None
    assert gpu_all.peak_tflops("NVIDIA H100 80GB HBM3", [100.0])["tf32"] == 100.0
    p = gpu_all.peak_tflops("anything", [1.0, 2.0, 3.0])
    assert (p["fp32"], p["tf32"], p["bf16"], p["source"]) == (1.0, 2.0, 3.0, "--peak-tflops")
    assert gpu_all.peak_kind("bf16", "cuda") == "bf16" and gpu_all.peak_kind("fp32", "cpu") == "fp32"


def test_generator_flops_on_meta():
    forward = gpu_all.generator_flops(1024)
    assert 140e9 < forward < 160e9  # ~74 G multiply-adds of convolution for a config-f 1024 px image
    assert gpu_all.generator_flops(64, backward=True) == pytest.approx(2 * gpu_all.generator_flops(64), rel=0.02)


def test_fraction_row():
    peaks = {"fp32": 50.0, "tf32": 400.0, "bf16": 800.0, "source": "test"}
    row = gpu_all.fraction_row(1024, 4, "forward", "ours", "fp32", 150e9, {"time": 0.01}, peaks, "tf32")
    assert row[5] == "60.00" and row[6] == "400 (TF32)" and row[7] == "15.0%"
    assert gpu_all.fraction_row(1024, 4, "forward", "ours", "fp32", 150e9, {"error": "out of memory"}, None, "tf32")[5:] == ["—", "—", "—"]


def _settings(quick):
    args = argparse.Namespace(quick=quick, repeats=3, sizes=None, batches=None, compile=None, edit_steps=None)
    return gpu_all.Settings.make(args)


def test_goals_and_markdown():
    s = _settings(False)
    assert (s.sizes, s.batches, s.big, s.edit_steps) == ([256, 1024], [1, 4, 16], 1024, 100)
    report = gpu_all.Report()
    results = {
        "edit": {"fp32": {"time": 3.4}, "bf16": {"time": 2.5}},
        "mapper": {"time": 0.021},
        "global": {"error": "out of memory"},
        "relevance": ({"float32": 20.0, "bfloat16": 14.0}, True),
    }
    gpu_all.goals(s, report, results)
    text = report.markdown()
    assert "| 100-step optimisation edit at 1024 px < 3 s | 2.50 s (bf16) | PASS |" in text
    assert "| mapper or global-direction edit at 1024 px < 30 ms | mapper edit 21.0 ms | PASS |" in text
    assert "float32 20.0 min, bfloat16 14.0 min | PASS |" in text
    quick = gpu_all.Report()
    gpu_all.goals(_settings(True), quick, {"mapper": {"time": 0.5}, "relevance": ({"float32": 1.0}, False)})
    assert "FAIL (quick settings: not the goal's)" in quick.markdown()  # partial relevance is never a pass
    assert gpu_all.fmt_time(0.0123) == "12.3 ms" and gpu_all.fmt_time(2.5) == "2.50 s" and gpu_all.fmt_time(math.nan) == "—"
    assert gpu_all.fmt_ratio(3.0, 1.5) == "2.00" and gpu_all.fmt_ratio(math.nan, 1.0) == "—"


def test_video_projection_and_tables():
    import bench_video

    def r(t, **extra):
        return {"time": t, "peak_mb": 100.0, "first": 1.0, **extra}

    results = {("align", "ours", 256): r(0.1), ("e4e", "reference", 256): r(0.4), ("e4e", "ours", 256): r(0.2),
               ("tuning", "reference", 256): r(2.0), ("tuning", "ours", 256): r(1.0),
               ("masks", "reference", 256): r(3.0), ("masks", "ours", 256): r(0.5),
               ("stitch", "reference", 256): r(0.8, setup=1.0), ("stitch", "ours", 256): r(0.4, setup=0.5),
               ("paste", "reference", 256): {"error": "ModuleNotFoundError: No module named 'cv2'"}, ("paste", "ours", 256): r(0.3)}
    p = bench_video.projected(results, 256)
    # 300 tuning updates per frame, stitching setup + 100 steps; align and (failed) paste: ours stands in
    assert p["ours"] == pytest.approx(0.1 + 0.2 + 300 * 1.0 + 0.5 + 0.5 + 100 * 0.4 + 0.3)
    assert p["reference"] == pytest.approx(0.1 + 0.4 + 300 * 2.0 + 3.0 + 1.0 + 100 * 0.8 + 0.3)
    rows = bench_video.stage_rows(results, [256])
    assert len(rows) == len(bench_video.STAGES) + 2 and all(len(row) == len(bench_video.STAGE_COLUMNS) for row in rows)
    assert rows[2][4] == "2.00" and "agree" in rows[2][6]
    assert "No module named 'cv2'" in rows[-1][6] and rows[-1][2] == "—"
    proj = bench_video.projection_rows(results, [256])
    assert proj[0][3] == f"{p['reference'] / p['ours']:.2f}" and "align, paste" in proj[0][5]


def test_nada_bench_smoke():
    """bench_nada.py through gpu_all's nada section at --quick settings (tiny generator and CLIP, one
    step each, a 3-step whole run): step 0 of both sides agrees; the tables; the reference's float16
    CLIP (its CUDA path) runs; a failed row."""
    import bench_nada
    from styleclip_core.edits.domain_adaptation import selectable_modules
    from styleclip_core.formats.tiny_models import tiny_generator

    s = _settings(True)
    report, results = gpu_all.Report(), {}
    gpu_all.section_nada(s, "cpu", report, None, results)
    got, size = results["nada"], s.big
    assert len(got) == 2 * len(bench_nada.SETTINGS) and all("error" not in r and r["time"] > 0 for r in got.values())
    every = sorted(selectable_modules(tiny_generator(size)))
    assert got[("ours", "readme", size)]["first"]["trained"] == got[("reference", "readme", size)]["first"]["trained"] == every
    one = got[("ours", "k1", size)]["first"]["trained"]
    assert len(one) == 1 and one == got[("reference", "k1", size)]["first"]["trained"]
    text = report.markdown()
    assert text.count("(agree)") == 2 and "DIFFER" not in text
    assert results["nada_whole"]["steps"] == 3 and math.isfinite(results["nada_whole"]["last_loss"])
    assert "a whole 3-step adaptation" in text
    est = bench_nada.estimate_rows(got, [size])
    assert len(est) == 2 and est[0][2] == bench_nada._fmt_min(300 * got[("reference", "readme", size)]["time"])

    half = bench_nada.measure("reference", "k1", size, 1, "cpu", tiny=True, clip_fp16=True)
    assert "(agree)" in bench_nada.agreement(half, got[("ours", "k1", size)], rel=1e-2)
    failed = bench_nada.rows({("reference", "readme", size): {"error": "out of memory"}, ("ours", "readme", size): got[("ours", "readme", size)]}, [size])
    assert failed[0][2] == "—" and failed[0][4] == "—" and failed[0][-1] == "reference: out of memory"


def test_stylegan3_nvidia_reference_path_on_fixture():
    """bench_stylegan3's re-enactment of NVIDIA's _filtered_lrelu_ref against the outputs and gradients
    NVIDIA's own code computed (fixtures/sg3_ops, its tolerance): the benchmark's reference side is NVIDIA's function."""
    import torch

    import bench_stylegan3
    from conftest import load_fixture

    tensors, meta = load_fixture("sg3_ops")
    tol = meta["tolerance"]
    for c in meta["cases"]:
        get = lambda key: tensors[c[key]] if c[key] else None  # noqa: E731
        x = tensors[c["x"]].clone().requires_grad_(True)
        b = get("b")
        b = b.clone().requires_grad_(True) if b is not None else None
        y = bench_stylegan3.nvidia_filtered_lrelu_ref(x, get("fu"), get("fd"), b, c["up"], c["down"], list(c["padding_x0_x1_y0_y1"]), c["gain"],
                                                      c["slope"], c["clamp"], c["flip_filter"])
        torch.testing.assert_close(y.detach(), tensors[f"out.{c['name']}.y"], atol=tol["atol"], rtol=tol["rtol"], msg=c["name"])
        (y * tensors[f"in.{c['name']}.grad_weight"]).sum().backward()
        torch.testing.assert_close(x.grad, tensors[f"out.{c['name']}.grad_x"], atol=tol["atol"], rtol=tol["rtol"], msg=c["name"])
        if b is not None:
            torch.testing.assert_close(b.grad, tensors[f"out.{c['name']}.grad_b"], atol=tol["atol"], rtol=tol["rtol"], msg=c["name"])


def test_stylegan3_benchmark_smoke():
    """Tiny T and R networks: both op paths in one generator give the same image and gradients; the
    command line (one configuration, each side in its own process) fills every column."""
    import bench_stylegan3 as b

    for name in ("T", "R"):
        ours, ref = b.build(32, name, tiny=True), b.build(32, name, reference=True, tiny=True)
        assert all(getattr(ref.synthesis, n).forward.__func__ is b._nvidia_layer_forward for n in ref.synthesis.layer_names)
        w = b.codes(ours, 2)
        c = b.compare(b.step_fn(ours, w, "fwd+bwd")(), b.step_fn(ref, w, "fwd+bwd")())
        assert c["image_max"] > 1e-3 and c["image_max_diff"] <= 1e-5 * c["image_max"], (name, c)
        assert c["w_grad_rel_diff"] <= 1e-5 and c["weight_grad_rel_diff"] <= 1e-5, (name, c)
    rows = b.main(["--tiny", "--sizes", "32", "--configs", "R", "--batches", "1", "--modes", "fwd+bwd", "--repeats", "1", "--warmup", "0"])
    assert len(rows) == 1 and len(rows[0]) == len(b.COLUMNS)
    size, config, batch, mode, ours_ms, ref_ms, ratio, cpu_ratio, ours_mb, ref_mb, diff, grads = rows[0]
    assert (size, config, batch, mode) == ("32", "R", "1", "fwd+bwd")
    assert float(ours_ms) > 0 and float(ref_ms) > 0 and float(ratio) > 0 and float(cpu_ratio) > 0 and float(ours_mb) >= 0
    assert float(diff) <= 1e-5 and grads.startswith("W+ ")
    oom = b.row(1024, "R", 1, "fwd+bwd", {"ours": {"time": 1.0, "cpu_time": 2.0, "peak_mb": 5.0}, "reference": {"error": "out of memory"}, "check": {}})
    assert oom[4:8] == ["1000", "—", "—", "—"] and "reference: out of memory" in oom[-1]
    assert "reference ms" in b.format_table([oom])
    # what an out-of-memory row says it needed: NVIDIA's path keeps more for backward (its full-rate tensors)
    assert 0 < b.saved_for_backward_gb(32, "T", 1, False, tiny=True) < b.saved_for_backward_gb(32, "T", 1, True, tiny=True)
