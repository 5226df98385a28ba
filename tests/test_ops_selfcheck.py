"""The CUDA plugin's self-check (ops/self_check.py), exercised on the CPU: the comparison itself
(both paths the reference: it passes with a zero difference; a path that is off fails with the
figures), and the decision it feeds (backend 'auto' falls back to the reference after a failed
check, an explicit 'cuda' keeps the plugin, each check runs once and is logged once, the loaders'
report says what happened). The real plugin against the reference on a GPU is tests/test_ops_cuda.py."""
import logging

import pytest
import torch

from styleclip_core.ops import backend, self_check
from styleclip_core.ops.bias_act import fused_leaky_relu_reference
from styleclip_core.ops.filtered_lrelu import filtered_lrelu_reference
from styleclip_core.ops.upfirdn2d import upfirdn2d, upfirdn2d_reference


def upfirdn_reference(x, kernel, **k):
    return upfirdn2d_reference(x, kernel, k["up_x"], k["up_y"], k["down_x"], k["down_y"], k["px0"], k["px1"], k["py0"], k["py1"])


def flrelu_reference(x, bias, **k):
    return fused_leaky_relu_reference(x, bias, k["negative_slope"], k["scale"], k["bias_dim"])


def filtered_reference(x, fu, fd, bias, **k):
    return filtered_lrelu_reference(x, fu, fd, bias, **k)


REFERENCES = {"upfirdn2d": upfirdn_reference, "fused_leaky_relu": flrelu_reference, "filtered_lrelu": filtered_reference}


@pytest.fixture(autouse=True)
def fresh_results(monkeypatch):
    monkeypatch.setattr(self_check, "_results", {})


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_same_path_passes_exactly(dtype):
    assert set(REFERENCES) == set(self_check.OPS)
    for op, fn in REFERENCES.items():
        ok, summary = self_check.compare(op, fn, fn, "cpu", dtype)
        assert ok and "largest difference 0.00e+00" in summary, summary


def test_a_wrong_path_fails_with_its_figures():
    def off_by_a_pixel(x, kernel, **k):  # a pad off by one: the kind of kernel bug the check is for
        return upfirdn_reference(x, kernel, **{**k, "px0": k["px0"] + 1, "px1": k["px1"] - 1})

    ok, summary = self_check.compare("upfirdn2d", off_by_a_pixel, upfirdn_reference, "cpu", torch.float32)
    assert not ok and "upfirdn2d float32" in summary and "(case " in summary

    def slightly_off(x, bias, **k):  # 1e-4 relative: ten times the float32 tolerance
        return flrelu_reference(x, bias, **k) * (1 + 1e-4)

    ok, summary = self_check.compare("fused_leaky_relu", slightly_off, flrelu_reference, "cpu", torch.float32)
    assert not ok and "of tolerance 1e-05" in summary

    def wrong_gradient(x, bias, **k):  # forward right, backward twice too large
        y = flrelu_reference(x, bias, **k)
        return y + (y - y.detach())

    ok, summary = self_check.compare("fused_leaky_relu", wrong_gradient, flrelu_reference, "cpu", torch.float32)
    assert not ok and "grad" in summary

    def unflipped(x, fu, fd, bias, **k):  # flip_filter ignored: only the asymmetric-filter case shows it
        return filtered_reference(x, fu, fd, bias, **{**k, "flip_filter": False})

    ok, summary = self_check.compare("filtered_lrelu", unflipped, filtered_reference, "cpu", torch.float32)
    assert not ok and "filtered_lrelu float32" in summary and "(case 5 " in summary

    def clamp_passes_gradient(x, fu, fd, bias, **k):  # forward right, gradient through the active clamp
        y = filtered_reference(x, fu, fd, bias, **k)
        return y + (filtered_reference(x, fu, fd, bias, **{**k, "clamp": None}) - filtered_reference(x.detach(), fu, fd, bias.detach() if bias is not None else None, **{**k, "clamp": None}))

    ok, summary = self_check.compare("filtered_lrelu", clamp_passes_gradient, filtered_reference, "cpu", torch.float32)
    assert not ok and "grad" in summary


def test_a_failed_check_falls_back_unless_cuda_is_asked_for(monkeypatch, caplog):
    """With the plugin 'available' (faked) and its upfirdn2d wrong, 'auto' runs the reference and
    'cuda' the plugin; the check runs once per (op, dtype, device) and is logged once."""
    calls = []

    def wrong(x, kernel, **k):
        calls.append(1)
        return upfirdn_reference(x, kernel, **k) + 1

    monkeypatch.setattr(backend, "decide", lambda impl, device: (True, "cuda (JIT plugin)"))
    monkeypatch.setattr(self_check, "_paths", lambda op: (wrong, upfirdn_reference) if op == "upfirdn2d" else (REFERENCES[op], REFERENCES[op]))
    x = torch.zeros(1, 1, 4, 4)
    with caplog.at_level(logging.INFO, logger="styleclip_core.ops"):
        assert backend.use_cuda(x, "auto", "upfirdn2d") is False
        assert backend.use_cuda(x, "auto", "upfirdn2d") is False
        assert backend.use_cuda(x, "cuda", "upfirdn2d") is True
        assert backend.use_cuda(x, "auto", "fused_leaky_relu") is True
        assert backend.use_cuda(x, "auto", "filtered_lrelu") is True
    failed = [r for r in caplog.records if "self-check FAILED" in r.getMessage()]
    assert len(failed) == 1 and "upfirdn2d float32" in failed[0].getMessage()
    assert len(calls) == len(self_check._cases("upfirdn2d"))  # one check: each case once
    assert "self-check float32 FAILED" in backend.describe("auto", "cpu")
    monkeypatch.setenv(backend.ENV_VAR, "cuda")
    assert backend.use_cuda(x, "auto", "upfirdn2d") is True  # STYLECLIP_OPS=cuda forces the plugin


def test_a_check_that_raises_is_a_failure(monkeypatch):
    def broken(x, kernel, **k):
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(self_check, "_paths", lambda op: (broken, upfirdn_reference))
    assert self_check.passed("upfirdn2d", torch.float32, "cpu") is False
    assert "no kernel image" in self_check.results()[("upfirdn2d", torch.float32, "cpu")][1]


def test_the_cpu_path_never_runs_the_check():
    x = torch.randn(1, 2, 8, 8)
    upfirdn2d(x, torch.ones(2, 2) / 4, pad=(1, 0))
    assert self_check.results() == {}
    assert "self-check" not in backend.describe("auto", "cpu")
