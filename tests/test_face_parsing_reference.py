"""BiSeNet parity with the reference network (zllrunning/face-parsing.PyTorch d2e684c, model.py
BiSeNet.forward) on fixtures/bisenet: procedural weights (rules re-created below from the fixture's
json), three inputs, the three outputs (feat_out, feat_out16, feat_out32), their pre-upsampling
head logits, intermediate taps and the argmax parsing map (SPEC section 14)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import procedural
from conftest import load_fixture, strip
from styleclip_core.models.face_parser import BiSeNet

OUTS = ("feat_out", "feat_out16", "feat_out32")
HEADS = ("conv_out", "conv_out16", "conv_out32")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def bisenet_value(key, shape, keys):
    """fixtures/bisenet.json procedural_weights.rules, first match, float64 then float32."""
    shape = tuple(shape)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    u = procedural.u(key, shape)  # np.random.RandomState(crc32(key)).random_sample(n)
    if key.endswith("running_var"):
        a = 0.5 + u
    elif key.endswith("running_mean"):
        a = 0.2 * u - 0.1
    elif key.endswith("bias"):
        a = 0.2 * u - 0.1
    elif key.endswith("weight") and key[: -len("weight")] + "running_mean" in keys:
        a = 0.8 + 0.4 * u
    elif key.endswith("weight") and len(shape) == 4:
        a = (2 * u - 1) * math.sqrt(3 / int(np.prod(shape[1:])))
    else:
        raise AssertionError(f"no rule for {key} {shape}")
    return torch.from_numpy(np.asarray(a, dtype=np.float64)).float()


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("bisenet")


@pytest.fixture(scope="module")
def state(fixture):
    _, meta = fixture
    keys = meta["state_keys"]
    return {k: bisenet_value(k, v["shape"], keys) for k, v in keys.items()}


@pytest.fixture(scope="module")
def run(fixture, state):
    """Our BiSeNet on the fixture inputs: per case the three outputs, head logits and taps."""
    tensors, meta = fixture
    net = BiSeNet.from_state_dict(state, "procedural")
    taps = {}
    hooks = [
        net.cp.resnet.register_forward_hook(lambda m, i, o: taps.update(resnet=o)),
        net.cp.register_forward_hook(lambda m, i, o: taps.update(cp=o)),
        net.ffm.register_forward_hook(lambda m, i, o: taps.update(ffm=o)),
    ]
    got = {}
    with torch.no_grad():
        for case in meta["inputs"]["cases"]:
            u8 = tensors[f"in.{case}.image_u8"]
            x = u8.permute(2, 0, 1).float().div(255)[None]
            x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
            heads = net.heads(x)
            outs = net.outputs(x)
            main = net(x)
            r8, r16, r32 = taps["resnet"]
            _, up16, up32 = taps["cp"]
            got[case] = {
                "x": x, "main": main,
                **dict(zip(OUTS, outs)), **{"head." + h: v for h, v in zip(HEADS, heads)},
                "tap.resnet_feat8_mean": r8.mean((2, 3)), "tap.resnet_feat16_mean": r16.mean((2, 3)),
                "tap.resnet_feat32_mean": r32.mean((2, 3)), "tap.cp_feat16_up_mean": up16.mean((2, 3)),
                "tap.cp_feat32_up_mean": up32.mean((2, 3)), "tap.ffm_mean": taps["ffm"].mean((2, 3)),
            }
    for h in hooks:
        h.remove()
    return got


def test_procedural_weights(fixture, state):
    """The weights are the reference's: key order and shapes of BiSeNet(19).state_dict(), each
    tensor's float64 sum, the probes, and the tensors stored in full."""
    tensors, meta = fixture
    keys = meta["state_keys"]
    assert len(keys) == 191 and sum(k.endswith("num_batches_tracked") for k in keys) == 31
    assert list(BiSeNet().state_dict()) == list(keys)
    assert {k: list(v.shape) for k, v in BiSeNet().state_dict().items()} == {k: v["shape"] for k, v in keys.items()}
    assert sum(v.numel() for k, v in state.items() if v.is_floating_point()) == 13313088
    for k, v in keys.items():
        assert math.isclose(state[k].double().sum().item(), v["sum_float64"], rel_tol=1e-9, abs_tol=1e-9), k
    for k, first in meta["procedural_weights"]["probe_first_6_values"].items():
        assert state[k].flatten()[:6].tolist() == first, k
    for k, v in strip(tensors, "state.").items():
        assert torch.equal(state[k], v), k


@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_outputs_match_reference(fixture, run, case):
    tensors, meta = fixture
    tol = meta["tolerance"]
    atol, rtol = tol["atol"], tol["rtol"]
    spec = meta["inputs"]["cases"][case]
    got = run[case]
    assert math.isclose(got["x"].double().sum().item(), spec["x_sum_float64"], rel_tol=1e-9)
    worst = {}
    for name in [f"head.{h}" for h in HEADS] + [k for k in got if k.startswith("tap.")]:
        ref = tensors[f"out.{case}.{name}"]
        assert got[name].shape == ref.shape, name
        torch.testing.assert_close(got[name], ref, atol=atol, rtol=rtol, msg=lambda m: f"{case} {name}: {m}")
        worst[name] = (got[name] - ref).abs().max().item()
    h, w = got["x"].shape[2:]
    r0, r1, c0, c1 = (200, 216, 300, 316) if h == 512 else (100, 116, 150, 166)  # json calls.crop
    for name in OUTS:
        full = got[name]
        assert list(full.shape) == spec["full_output_stats"][name]["shape"]
        for part, sl in (("sub", full[:, :, 3::16, 5::16]), ("crop", full[:, :, r0:r1, c0:c1])):
            ref = tensors[f"out.{case}.{name}.{part}"]
            torch.testing.assert_close(sl, ref, atol=atol, rtol=rtol, msg=lambda m: f"{case} {name}.{part}: {m}")
            worst[f"{name}.{part}"] = (sl - ref).abs().max().item()
        stats = spec["full_output_stats"][name]
        sums = full.double().sum((0, 2, 3))
        bound = 1e-5 * stats["abs_sum"]  # tolerance.applies_to: per-class sums, rtol 1e-5 of abs_sum
        assert (sums - torch.tensor(stats["per_class_sum_float64"], dtype=torch.float64)).abs().max() <= bound, name
        assert abs(full.double().sum().item() - stats["sum"]) <= bound
        assert abs(full.double().abs().sum().item() - stats["abs_sum"]) <= bound
        assert abs(full.min().item() - stats["min"]) <= atol and abs(full.max().item() - stats["max"]) <= atol
    # the inference path (forward) is the main output
    torch.testing.assert_close(got["main"], got["feat_out"], atol=0, rtol=0)
    print(case, {k: f"{v:.2e}" for k, v in worst.items()})


@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_parsing_map_matches_reference(fixture, run, case):
    """test.py: parsing = feat_out.squeeze(0).numpy().argmax(0). Equal wherever the reference top-2
    margin (from the stored head logits, upsampled as the reference does) is >= 2e-4, and at most 1e-4
    of all pixels differ."""
    tensors, meta = fixture
    ref_map = tensors[f"out.{case}.parsing"].long()
    ours = run[case]["feat_out"][0].numpy().argmax(0)  # numpy: first index on ties, as test.py
    ours = torch.from_numpy(ours)
    h, w = ref_map.shape
    ref_logits = F.interpolate(tensors[f"out.{case}.head.conv_out"], (h, w), mode="bilinear", align_corners=True)[0]
    assert torch.equal(ref_logits.argmax(0), ref_map)  # the stored head reproduces the stored map
    top2 = ref_logits.topk(2, dim=0).values
    margin = top2[0] - top2[1]
    counts = meta["inputs"]["cases"][case]["top2_margin_of_feat_out"]
    assert int((margin < 2e-4).sum()) == counts["pixels_below_2e-4"]
    differ = ours != ref_map
    assert not differ[margin >= 2e-4].any(), f"{int(differ[margin >= 2e-4].sum())} confident pixels differ"
    assert int(differ.sum()) <= 1e-4 * h * w
    hist = torch.bincount(ours.flatten(), minlength=19).tolist()
    print(case, "pixels differing", int(differ.sum()), "of", h * w)
    if "parsing_class_histogram" in meta["inputs"]["cases"][case]:
        ref_hist = meta["inputs"]["cases"][case]["parsing_class_histogram"]
        assert sum(abs(a - b) for a, b in zip(hist, ref_hist)) <= 2 * int(differ.sum())
