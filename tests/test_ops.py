"""The reference ops reproduce the reference implementations' CPU outputs (fixtures/ops)."""
import pytest
import torch

from conftest import load_fixture
from styleclip_core.ops import fused_leaky_relu, make_kernel, upfirdn2d
from styleclip_core.ops.upfirdn2d import upfirdn2d_reference

T, META = load_fixture("ops")
TOL = META["tolerance"]


@pytest.mark.parametrize("case", META["upfirdn2d_cases"], ids=lambda c: c["name"])
def test_upfirdn2d_matches_fixture(case, parity):
    out = upfirdn2d(T["x"], T[f"upfirdn2d.{case['name']}.kernel"], case["up"], case["down"], case["pad_x0_x1_y0_y1"], impl="reference")
    assert list(out.shape) == case["out_shape"]
    key = f"upfirdn2d.{case['name']}.out"
    parity.close(f"ops:{key}", out, T[key], atol=TOL["atol"], rtol=TOL["rtol"])


@pytest.mark.parametrize("name", ["4d", "2d", "nobias", "3d_styleclip"])
def test_fused_leaky_relu_matches_fixture(name, parity):
    out = fused_leaky_relu(T[f"flrelu.{name}.x"], T.get(f"flrelu.{name}.bias"), bias_dim=-1 if name.startswith("3d") else 1, impl="reference")
    parity.close(f"ops:flrelu.{name}.out", out, T[f"flrelu.{name}.out"], atol=TOL["atol"], rtol=TOL["rtol"])


def test_make_kernel(parity):
    # k k^T / 64: products of 1, 3, 9 over a power of two, exact in float32
    parity.close("ops:kernel_blur", make_kernel([1, 3, 3, 1]), T["kernel_blur"], atol=0, rtol=0)


def _zero_insert_reference(x, k, up, p0, p1):
    """upfirdn2d by its definition: zero insertion, padding, flipped-kernel correlation."""
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    z[:, :, ::up, ::up] = x
    z = torch.nn.functional.pad(z, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    z = z[:, :, max(-p0, 0): z.shape[2] - max(-p1, 0), max(-p0, 0): z.shape[3] - max(-p1, 0)]
    return torch.nn.functional.conv2d(z, k.flip([0, 1])[None, None].expand(c, 1, *k.shape), groups=c)


@pytest.mark.parametrize("ksize", [3, 4, 5])
def test_polyphase_upsample_equals_definition(ksize):
    """The transposed-convolution fast path is exactly zero insertion + FIR, for asymmetric kernels too."""
    g = torch.Generator().manual_seed(ksize)
    x = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.float64)
    k = torch.randn(ksize, ksize, generator=g, dtype=torch.float64)
    for p0 in range(0, ksize + 1):
        for p1 in range(-1, ksize + 1):
            ours = upfirdn2d_reference(x, k, 2, 2, 1, 1, p0, p1, p0, p1)
            # float64 sums of <= 25 products (|y| <= 10): ~25 * 2.2e-16 * 10 = 5.5e-14 worst case;
            # measured 2.7e-15
            torch.testing.assert_close(ours, _zero_insert_reference(x, k, 2, p0, p1), atol=1e-12, rtol=0)


def test_upfirdn2d_gradient():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    k = make_kernel([1, 3, 3, 1]).double() * 4
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, k, up=2, pad=(2, 1), impl="reference"), (x,))
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, k, down=2, pad=(1, 1), impl="reference"), (x,))


def test_bad_pad_length():
    with pytest.raises(ValueError, match="pad must have 2 or 4"):
        upfirdn2d(T["x"], T["kernel_blur"], pad=(1, 1, 1))


def test_fused_leaky_relu_inplace_equals_out_of_place(parity):
    x = T["flrelu.4d.x"].clone()
    out = fused_leaky_relu(x, T["flrelu.4d.bias"], impl="reference", inplace=True)
    assert out.data_ptr() == x.data_ptr()
    parity.close("ops:flrelu.4d.out (in place)", out, T["flrelu.4d.out"], atol=TOL["atol"], rtol=TOL["rtol"])
