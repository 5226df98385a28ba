"""StyleGAN3's filtered_lrelu and low-pass filter design (ops.filtered_lrelu) on fixtures/sg3_ops,
computed by NVIDIA's own code (stylegan3 c233a91, ``_filtered_lrelu_ref`` and
``SynthesisLayer.design_lowpass_filter``): SPEC 13.5 and 13.7. Nine cases with gradients: the
layers of a T and an R network (up 2 or 4, radial down filter), ToRGB with an active clamp,
asymmetric 1-D and 2-D filters with and without flip_filter, no bias with cropping padding.

Tolerances are the fixture's (atol 1e-5 + rtol 1e-5 for outputs up to ~256 and their gradients;
designed filters atol 1e-7 + rtol 1e-6): ours runs each 1-D filter as its own pass through the
pack's upfirdn2d, NVIDIA's through conv2d as well, so the sums are the same taps in the same
order up to the convolution backend's blocking. Measured at 1, 2 and 4 threads: in the parity table.
"""
import pytest
import torch

from conftest import load_fixture
from styleclip_core.ops.filtered_lrelu import design_lowpass_filter, filtered_lrelu


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("sg3_ops")


def test_design_lowpass_filter(fixture, parity):
    tensors, meta = fixture
    tol = meta["tolerance"]["design_filters"]
    for case in meta["design_lowpass_filter"]["cases"]:
        f = design_lowpass_filter(case["numtaps"], case["cutoff"], case["width"], case["fs"], case["radial"])
        if case["out_key"] is None:
            assert f is None, case["name"]
            continue
        parity.close(f"sg3_ops:{case['out_key']}", f, tensors[case["out_key"]], atol=tol["atol"], rtol=tol["rtol"])


@pytest.mark.parametrize("case", [c["name"] for c in load_fixture("sg3_ops")[1]["cases"]])
def test_filtered_lrelu(fixture, case, parity):
    tensors, meta = fixture
    c = next(c for c in meta["cases"] if c["name"] == case)
    tol = meta["tolerance"]
    get = lambda key: tensors[c[key]] if c[key] else None  # noqa: E731
    x = tensors[c["x"]].clone().requires_grad_(True)
    b = get("b")
    if b is not None:
        b = b.clone().requires_grad_(True)
    y = filtered_lrelu(x, get("fu"), get("fd"), b, c["up"], c["down"], c["padding_x0_x1_y0_y1"], c["gain"], c["slope"], c["clamp"], c["flip_filter"])
    assert list(y.shape) == c["out_shape"]
    parity.close(f"sg3_ops:out.{case}.y", y.detach(), tensors[f"out.{case}.y"], atol=tol["atol"], rtol=tol["rtol"])
    (y * tensors[f"in.{case}.grad_weight"]).sum().backward()
    parity.close(f"sg3_ops:out.{case}.grad_x", x.grad, tensors[f"out.{case}.grad_x"], atol=tol["atol"], rtol=tol["rtol"])
    if b is not None:
        parity.close(f"sg3_ops:out.{case}.grad_b", b.grad, tensors[f"out.{case}.grad_b"], atol=tol["atol"], rtol=tol["rtol"])


def test_bad_arguments_are_named():
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"bias must be \[3\]"):
        filtered_lrelu(x, b=torch.zeros(4))
    with pytest.raises(ValueError, match=r"padding is \[x0, x1, y0, y1\]"):
        filtered_lrelu(x, padding=(1, 1))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        filtered_lrelu(torch.zeros(3, 8, 8))
