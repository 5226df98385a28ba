"""The parity fixture (conftest.py) asserts what torch.testing.assert_close asserts and records it."""
import pytest
import torch

from conftest import Parity, parity_table


def test_close_agrees_with_assert_close():
    records = {}
    p = Parity("t", records)
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(1000, generator=gen) * 10
    for atol, rtol in [(1e-4, 1e-4), (1e-5, 0.0), (0.0, 1e-3)]:
        for scale in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2):
            ours = ref + scale * torch.randn(1000, generator=gen)
            try:
                torch.testing.assert_close(ours, ref, atol=atol, rtol=rtol)
                expected = True
            except AssertionError:
                expected = False
            try:
                p.close(f"{atol} {rtol} {scale}", ours, ref, atol=atol, rtol=rtol)
                got = True
            except AssertionError:
                got = False
            assert got == expected, (atol, rtol, scale)
    ours = ref + 1e-6
    p.close("absolute only", ours, ref, atol=1e-5, rtol=0)
    r = records["absolute only"]
    assert r["measured"] == r["max_abs"] == (ours.double() - ref.double()).abs().max().item() and r["bound"] == 1e-5
    assert "parity:" in parity_table(records) and "1e-05 0.0 1e-06" in parity_table(records)


def test_failures_name_the_figure():
    p = Parity("t", {})
    with pytest.raises(AssertionError, match=r"parity x: measured 2\.000e-05 exceeds its bound 1\.000e-05"):
        p("x", 2e-5, 1e-5)
    with pytest.raises(AssertionError, match="parity nan"):
        p("nan", float("nan"), 1.0)
    with pytest.raises(AssertionError, match="parity shape: shape"):
        p.close("shape", torch.zeros(2), torch.zeros(3), atol=1, rtol=0)
    with pytest.raises(AssertionError, match="parity dtype: dtype"):
        p.close("dtype", torch.zeros(2), torch.zeros(2, dtype=torch.float64), atol=1, rtol=0)
    with pytest.raises(AssertionError, match="parity y: .*exceeds atol"):
        p.close("y", torch.tensor([0.0, float("nan")]), torch.zeros(2), atol=1, rtol=0)


def test_a_name_belongs_to_one_test():
    records = {}
    Parity("a", records)("n", 0.0, 1.0)
    Parity("a", records)("n", 0.0, 1.0)  # the same test again (a rerun) replaces it
    with pytest.raises(AssertionError, match="recorded by two tests"):
        Parity("b", records)("n", 0.0, 1.0)
