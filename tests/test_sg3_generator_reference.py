"""The StyleGAN3 generator (models.stylegan3) on fixtures/sg3_generator_t and _r, computed by NVIDIA's
own code (stylegan3 c233a91) and stylegan3-editing (36ce2b4): SPEC 13. The layer schedule from the
init kwargs and from the state dict alone, the mapping and truncation, images from z and from W+,
the Fourier-feature input with a user transform, per-layer outputs, and StyleSpace (W2S and
rendering from edited S).

Tolerance: the fixtures' atol 1e-4 + rtol 1e-4 on every output (NVIDIA's reruns at 1 vs 2 threads:
images within 1.4e-6; ours sums the same taps through the same convolutions). Measured at 1, 2
and 4 threads: in the parity table.
"""
import pytest
import torch

from conftest import load_fixture, strip
from styleclip_core.models.stylegan3 import StyleGAN3Generator, schedule

CONFIGS = ("t", "r")


def config_of(meta) -> dict:
    k = dict(meta["config"]["G_ema_init_kwargs"])
    out = {name: k[name] for name in ("z_dim", "w_dim", "img_resolution", "img_channels", "channel_base", "channel_max", "num_layers") if name in k}
    out["mapping_layers"] = k.get("mapping_kwargs", {}).get("num_layers", 2)
    for name in ("conv_kernel", "use_radial_filters", "conv_clamp"):
        if name in k:
            out[name] = k[name]
    return out


@pytest.fixture(scope="module", params=CONFIGS)
def case(request):
    tensors, meta = load_fixture(f"sg3_generator_{request.param}")
    g = StyleGAN3Generator.from_state_dict(strip(tensors, "state."), config_of(meta), source=f"fixtures/sg3_generator_{request.param}")
    return request.param, tensors, meta, g.eval().requires_grad_(False)


def test_schedule(case):
    name, _, meta, g = case
    inp, layers = schedule(config_of(meta))
    d = meta["derived"]
    assert [l.name for l in layers] == d["layer_names"]
    assert inp["size"] == d["input"]["size"][0] and inp["sampling_rate"] == d["input"]["sampling_rate"] and inp["bandwidth"] == d["input"]["bandwidth"]
    for spec, ref in zip(layers, d["layers"]):
        assert list(spec.padding) == ref["padding_x0_x1_y0_y1"], spec.name
        assert (spec.up_factor, spec.down_factor, spec.up_taps, spec.down_taps) == (ref["up_factor"], ref["down_factor"], ref["up_taps"], ref["down_taps"]), spec.name
        assert (spec.in_channels, spec.out_channels, spec.conv_kernel, spec.radial) == (ref["in_channels"], ref["out_channels"], ref["conv_kernel"], ref["down_radial"]), spec.name
        for key in ("in_sampling_rate", "out_sampling_rate", "in_cutoff", "out_cutoff", "in_half_width", "out_half_width"):
            assert getattr(spec, key) == pytest.approx(ref[key], rel=1e-12), (spec.name, key)
    # the state dict alone gives the same schedule (NVIDIA's defaults for what it does not hold)
    read = StyleGAN3Generator.config_from_state_dict(g.state_dict())
    assert [l.padding for l in schedule(read)[1]] == [l.padding for l in layers]


def test_designed_filters_equal_the_stored_ones(case, parity):
    name, tensors, meta, _ = case
    with torch.device("cpu"):
        built = StyleGAN3Generator(config_of(meta))
    for key, value in built.state_dict().items():
        if key.endswith("_filter"):
            parity.close(f"sg3_{name}:designed {key}", value, tensors[f"state.{key}"], atol=1e-7, rtol=1e-6)


def test_mapping_and_truncation(case, parity):
    name, tensors, meta, g = case
    tol = meta["tolerance"]
    z = tensors["in.z"]
    with torch.no_grad():
        ws = g.to_w_plus(g.mapping(z))
        parity.close(f"sg3_{name}:out.mapping_psi1", ws, tensors["out.mapping_psi1"], atol=tol["atol"], rtol=tol["rtol"])
        parity.close(f"sg3_{name}:out.ws_psi07", g.truncate(ws, 0.7, g.truncation_center()), tensors["out.ws_psi07"], atol=tol["atol"], rtol=tol["rtol"])
        parity.close(f"sg3_{name}:out.ws_psi05_cutoff4", g.truncate(ws, 0.5, g.truncation_center(), cutoff=4), tensors["out.ws_psi05_cutoff4"], atol=tol["atol"], rtol=tol["rtol"])


def test_images(case, parity):
    name, tensors, meta, g = case
    tol = meta["tolerance"]
    with torch.no_grad():
        ws = g.to_w_plus(g.mapping(tensors["in.z"]))
        parity.close(f"sg3_{name}:out.img_psi1", g(ws), tensors["out.img_psi1"], atol=tol["atol"], rtol=tol["rtol"])
        parity.close(f"sg3_{name}:out.img_psi07", g(g.truncate(ws, 0.7, g.truncation_center())), tensors["out.img_psi07"], atol=tol["atol"], rtol=tol["rtol"])
        parity.close(f"sg3_{name}:out.img_synth", g(tensors["in.ws"]), tensors["out.img_synth"], atol=tol["atol"], rtol=tol["rtol"])


def test_layers_and_input(case, parity):
    name, tensors, meta, g = case
    tol = meta["tolerance"]
    syn = g.synthesis
    ws = tensors["in.ws"]
    with torch.no_grad():
        styles = g.styles(ws)
        raw = syn.input.affine(ws[:, 0])
        parity.close(f"sg3_{name}:out.styles.input", raw, tensors["out.styles.input"], atol=tol["atol"], rtol=tol["rtol"])
        x = syn.input(styles[0])
        parity.close(f"sg3_{name}:out.input_features_sample0", x[0], tensors["out.input_features_sample0"], atol=tol["atol"], rtol=tol["rtol"])
        for i, layer in enumerate(syn.layer_names):
            module = getattr(syn, layer)
            parity.close(f"sg3_{name}:out.styles.{layer}", module.affine(ws[:, 1 + i]), tensors[f"out.styles.{layer}"], atol=tol["atol"], rtol=tol["rtol"])
            x = module(x, styles[1 + i])
            parity.close(f"sg3_{name}:out.layer_out.{layer}.sample0_ch0to3", x[0, :4], tensors[f"out.layer_out.{layer}.sample0_ch0to3"], atol=tol["atol"], rtol=tol["rtol"])


def test_user_transform(case, parity):
    name, tensors, meta, g = case
    tol = meta["tolerance"]
    g = g.copy()
    g.synthesis.input.transform.copy_(tensors["in.transform"])
    with torch.no_grad():
        parity.close(f"sg3_{name}:out.img_transform_synth", g(tensors["in.ws"]), tensors["out.img_transform_synth"], atol=tol["atol"], rtol=tol["rtol"])
        ws = g.truncate(g.to_w_plus(g.mapping(tensors["in.z"])), 0.7, g.truncation_center())
        parity.close(f"sg3_{name}:out.img_transform_psi07", g(ws), tensors["out.img_transform_psi07"], atol=tol["atol"], rtol=tol["rtol"])
        x = g.synthesis.input(g.styles(tensors["in.ws"])[0])
        parity.close(f"sg3_{name}:out.input_features_transform_sample0", x[0], tensors["out.input_features_transform_sample0"], atol=tol["atol"], rtol=tol["rtol"])


def test_stylespace(case, parity):
    name, tensors, meta, g = case
    tol = meta["tolerance"]
    keys = meta["stylespace_editing"]["key_order"]
    assert [l.name for l in g.style_layers] == keys
    assert [l.channels for l in g.style_layers] == [meta["stylespace_editing"]["dims"][k] for k in keys]
    assert [l.is_torgb for l in g.style_layers] == [False] * (len(keys) - 1) + [True]
    with torch.no_grad():
        s = g.styles(tensors["in.ws"])
        for key, value in zip(keys, s):
            parity.close(f"sg3_{name}:out.s_edit.{key}", value, tensors[f"out.s_edit.{key}"], atol=tol["atol"], rtol=tol["rtol"])
        assert torch.equal(g.synthesis(s), g(tensors["in.ws"]))  # rendering W2S(ws) is rendering ws
        edited = [value + tensors[f"in.s_delta.{key}"] for key, value in zip(keys, s)]
        parity.close(f"sg3_{name}:out.s_edit.img_from_s_plus_delta", g.synthesis(edited), tensors["out.s_edit.img_from_s_plus_delta"], atol=tol["atol"], rtol=tol["rtol"])


def test_missing_transform_is_the_identity(case):
    _, tensors, meta, g = case
    state = {k: v for k, v in strip(tensors, "state.").items() if k != "synthesis.input.transform"}
    h = StyleGAN3Generator.from_state_dict(state, config_of(meta))
    assert torch.equal(h.synthesis.input.transform, torch.eye(3))


def test_bad_state_dict_is_named(case):
    _, tensors, meta, _ = case
    state = strip(tensors, "state.")
    state["synthesis.L0_36_64.weight"] = state["synthesis.L0_36_64.weight"][:-1]
    with pytest.raises(ValueError, match="shape mismatches"):
        StyleGAN3Generator.from_state_dict(state, config_of(meta))


def test_with_transform_sets_gen_images_buffer(case, parity):
    """``with_transform(30, (0.3, -0.2))`` is gen_images.py --rotate=30 --translate=0.3,-0.2: the
    fixture's buffer (float64 inverse stored in float32: exact) and its image."""
    name, tensors, meta, g = case
    assert meta["transform"]["gen_images_options"] == "--rotate=30 --translate=0.3,-0.2"
    moved = g.with_transform(30, (0.3, -0.2))
    parity.close(f"sg3_{name}:in.transform (with_transform)", moved.synthesis.input.transform, tensors["in.transform"], atol=0, rtol=0)
    assert torch.equal(g.synthesis.input.transform, torch.eye(3))  # a copy: the loaded generator is unchanged
    with torch.no_grad():
        tol = meta["tolerance"]
        parity.close(f"sg3_{name}:out.img_transform_synth (with_transform)", moved(tensors["in.ws"]), tensors["out.img_transform_synth"], atol=tol["atol"], rtol=tol["rtol"])
