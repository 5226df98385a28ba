"""Edit Sliders: the slider edit (library), the preview route's work (validation, coalescing,
exactness against a render of the same values), presets, the node and Mapper as Direction."""
import io
import json
import threading

import pytest
import torch
from PIL import Image

from styleclip_core.edits.directions import Direction, mapper_direction
from styleclip_core.edits.sliders import PreviewCache, SliderEdit, jpeg, preview, reduce, to_uint8
from styleclip_core.formats import preset_files
from styleclip_core.formats.tiny_models import tiny_generator
from styleclip_core.models.latents import Latents, sample_latents
from styleclip_core.models.render import render


def slider_server(comfy):
    import sys

    return sys.modules["comfyui_styleclip.nodes.slider_server"]


@pytest.fixture(scope="module")
def setup():
    g = tiny_generator().set_ops_backend("reference")
    gen = torch.Generator().manual_seed(4)
    w = Direction("w", [torch.randn(g.style_dim, generator=gen).double()], {"made_by": "random W"})
    rows = torch.zeros(g.n_latent, g.style_dim, dtype=torch.float64)
    rows[2:5] = torch.randn(3, g.style_dim, generator=gen).double()
    wplus = Direction("w+", [rows], {"made_by": "random W+ rows 2..4"})
    s = Direction("s", [torch.randn(layer.channels, generator=gen).double() * 0.1 for layer in g.style_layers], {"made_by": "random S"})
    return g, sample_latents(g, 2, seed=3, truncation_psi=0.7), (w, wplus, s)


def test_slider_edit_is_the_weighted_sum_of_directions(setup):
    """Values (a, b) on W and W+ directions: the W+ codes move by a·w + b·rows, exactly as applying
    the two directions one after the other (float64 sums, cast once to float32: equal to 1 ulp)."""
    g, latents, (w, wplus, s) = setup
    edit = SliderEdit(g, latents, [w, wplus])
    assert edit.space == "w+"
    got = edit.edited([1.5, -2.0]).w_plus
    want = (latents.w_plus.double() + 1.5 * w.deltas[0] + -2.0 * wplus.deltas[0]).float()
    torch.testing.assert_close(got, want, atol=0, rtol=2 ** -23)
    assert torch.equal(edit.edited([0.0, 0.0]).w_plus, latents.w_plus)


def test_mixed_spaces_meet_in_stylespace(setup):
    """A W direction and a StyleSpace one on two sliders: edited in StyleSpace, where the W part is
    the exact affine image of the W change (the styles of the W-edited codes)."""
    g, latents, (w, _, s) = setup
    edit = SliderEdit(g, latents, [w, s])
    assert edit.space == "s"
    got = edit.edited([2.0, 0.0]).styles
    want = g.styles(latents.w_plus + 2.0 * w.deltas[0].float())
    for a, b in zip(got, want):
        # float64 A·dw against float32 A·(w + dw): float32 rounding of the affine map, |s| ~ 1
        torch.testing.assert_close(a, b, atol=2e-5, rtol=0)


def test_preview_is_the_full_render_reduced(setup):
    """The preview is the full-size render of the same values, area-reduced and rounded: what
    queueing shows, exactly."""
    g, latents, (w, wplus, _) = setup
    edit = SliderEdit(g, latents, [w, wplus])
    pixels = edit.preview([1.0, 0.5], 32)
    full = render(g, edit.edited([1.0, 0.5]).slice(0, 1))
    assert pixels.dtype == torch.uint8 and pixels.shape == (32, 32, 3)
    assert torch.equal(pixels, to_uint8(reduce(full, 32))[0])
    assert not torch.equal(pixels, edit.preview([0.0, 0.0], 32))


def test_strip_sweeps_one_direction(setup):
    g, latents, (w, wplus, _) = setup
    edit = SliderEdit(g, latents, [w, wplus])
    strip = edit.strip(1, [1.0, 0.0], -3.0, 3.0, 4)
    assert strip.batch_size == 4
    for k, v in enumerate([-3.0, -1.0, 1.0, 3.0]):
        torch.testing.assert_close(strip.w_plus[k], edit.edited([1.0, v]).w_plus[0], atol=0, rtol=0)


def test_bad_slider_values(setup):
    g, latents, (w, wplus, _) = setup
    edit = SliderEdit(g, latents, [w, wplus])
    for values, words in (([1.0], "expected 2 slider values"), ([1.0, float("nan")], "finite"), ([1.0, 1e9], "within"), ([1.0, "2"], "finite")):
        with pytest.raises(ValueError, match=words):
            edit.preview(values, 32)
    with pytest.raises(ValueError, match="1 to 8 directions"):
        SliderEdit(g, latents, [])
    small = tiny_generator(size=32, channels={4: 32, 8: 32, 16: 32, 32: 16})
    with pytest.raises(ValueError, match="another generator"):
        SliderEdit(small, sample_latents(small, 1, seed=0), [wplus])  # 10 W+ rows for a generator of 8


def test_mapper_direction_is_the_mappers_edit(setup, tiny_models_dir):
    """Strength 1 of Mapper as Direction is the mapper's edit of that face (w + 0.1 mapper(w))."""
    import os

    from styleclip_core.formats.mapper_files import load_mapper

    g, latents, _ = setup
    mapper, _ = load_mapper(os.path.join(tiny_models_dir, "styleclip_mappers", "purple_hair.pt"))
    d = mapper_direction(mapper, g, latents, face=1)
    with torch.no_grad():
        want = mapper.edit(latents.slice(1, 2), g).w_plus
    got = d.apply(g, latents.slice(1, 2), [1.0])[0].w_plus
    # float64 w + 0.1 m against float32 w + 0.1 m: one float32 rounding of |w| ~ 1
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="face 5 of a batch of 2"):
        mapper_direction(mapper, g, latents, face=5)


# ---- the preview service (the route's work) ---------------------------------------------------------------------


def test_preview_route_validates_and_renders(setup):
    g, latents, (w, wplus, _) = setup
    cache = PreviewCache()
    cache.put("7", SliderEdit(g, latents, [w, wplus]))
    status, body = preview({"node": "7", "values": [1.0, 0.5], "size": 128, "seq": 1}, cache)
    assert status == 200
    assert Image.open(io.BytesIO(body)).size == (128, 128)
    assert body == jpeg(cache.get("7").preview([1.0, 0.5], 128))  # the JPEG of exactly the render of those values
    for payload, code, words in (
        ({"node": "8", "values": [1.0, 0.5]}, 404, "no slider edit"),
        ({"node": "../x", "values": [1.0]}, 400, "node id"),
        ({"node": "7", "values": [1.0, 0.5], "size": 333}, 400, "size"),
        ({"node": "7", "values": [1.0]}, 400, "expected 2 slider values"),
        ({"node": "7", "values": "1, 2"}, 400, "list of numbers"),
        ({"node": "7", "values": [1.0, 0.5], "seq": "x"}, 400, "seq"),
        ({"node": "7", "values": [1.0, 0.5], "client": "a/b"}, 400, "client"),
        ([1, 2], 400, "JSON object"),
    ):
        status, text = preview(payload, cache)
        assert status == code and words in text, (payload, status, text)


def test_preview_route_renders_only_the_newest_request(setup):
    """Requests that queue behind a render are answered 204 when a newer one arrived: only the
    newest is rendered, and it always is (the last slider position is never dropped)."""
    g, latents, (w, wplus, _) = setup
    cache = PreviewCache()
    edit = SliderEdit(g, latents, [w, wplus])
    cache.put("3", edit)
    rendered, gate = [], threading.Event()
    real = edit.preview

    def slow_preview(values, size, face=0):
        rendered.append(values[0])
        gate.wait(5)
        return real(values, size, face)

    edit.preview = slow_preview
    answers = {}

    def ask(seq):
        answers[seq] = preview({"node": "3", "values": [float(seq), 0.0], "size": 128, "seq": seq}, cache)[0]

    first = threading.Thread(target=ask, args=(1,))
    first.start()
    while not rendered:
        pass
    waiting = [threading.Thread(target=ask, args=(seq,)) for seq in (2, 3, 4)]
    for t in waiting:
        t.start()
    while cache.latest.get(("3", "")) != 4:
        pass
    gate.set()
    for t in [first, *waiting]:
        t.join(10)
    assert answers[1] == 200 and answers[4] == 200 and answers[2] == answers[3] == 204
    assert rendered == [1.0, 4.0]
    assert preview({"node": "3", "values": [9.0, 0.0], "size": 128, "seq": 2}, cache)[0] == 204  # older than the newest seen
    assert preview({"node": "3", "values": [9.0, 0.0], "size": 128, "seq": 2, "client": "tab2"}, cache)[0] == 200  # another tab counts apart


def test_preview_cache_keeps_the_newest_nodes(setup):
    g, latents, (w, _, _) = setup
    cache = PreviewCache(size=2)
    for node in ("1", "2", "3"):
        cache.put(node, SliderEdit(g, latents, [w]))
    assert cache.get("1") is None and cache.get("3") is not None


# ---- presets and the node ----------------------------------------------------------------------------


def test_presets(tmp_path):
    folder = str(tmp_path / "presets")
    preset_files.save_preset(folder, "smile", [1.0, -2.5], ["a", "b"])
    assert preset_files.list_presets(folder) == ["smile"]
    assert preset_files.load_preset(folder, "smile") == {"values": [1.0, -2.5], "labels": ["a", "b"]}
    with pytest.raises(FileExistsError):
        preset_files.save_preset(folder, "smile", [0.0])
    preset_files.save_preset(folder, "smile", [3.0], overwrite=True)
    assert preset_files.load_preset(folder, "smile")["values"] == [3.0]
    for name in ("../up", "", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="preset name"):
            preset_files.save_preset(folder, name, [1.0])
    with pytest.raises(ValueError, match="finite"):
        preset_files.save_preset(folder, "bad", [float("inf")])
    (tmp_path / "presets" / "broken.json").write_text(json.dumps({"values": [1]}))
    with pytest.raises(Exception, match="format"):
        preset_files.load_preset(folder, "broken")


def test_edit_sliders_node(comfy, setup, monkeypatch, tmp_path):
    server = slider_server(comfy)
    monkeypatch.setattr(server, "presets_folder", lambda: str(tmp_path / "presets"))
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="reference", precision="fp32").args[0]
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=1, batch_size=2, truncation_psi=0.7).args[0]
    _, _, (w, wplus, s) = setup
    common = dict(generator=g, latents=latents, direction_1=w, direction_2=wplus, value_1=1.5, value_2=-1.0, value_3=0.0, value_4=0.0,
                  preview_size="256", grid_direction=2, grid_range=3.0, grid_steps=3)
    images, codes, info = comfy.run("StyleCLIP_EditSliders", mode="sliders", preset="", save_preset_as="mine", unique_id="42", **common).args
    assert images.shape == (2, 64, 64, 3) and codes.batch_size == 2 and "1.5" in info
    assert torch.equal(codes.w_plus, server.CACHE.get("42").edited([1.5, -1.0]).w_plus)  # the cached edit is the run's
    status, _ = preview({"node": "42", "values": [1.5, -1.0], "size": 256, "seq": 1}, server.CACHE)
    assert status == 200
    again = comfy.run("StyleCLIP_EditSliders", mode="sliders", preset="", save_preset_as="mine", unique_id="42", **common)  # same values: fine
    with pytest.raises(ValueError, match="exists with other values"):
        comfy.run("StyleCLIP_EditSliders", mode="sliders", preset="", save_preset_as="mine", unique_id="42", **{**common, "value_1": 2.0})
    loaded = comfy.run("StyleCLIP_EditSliders", mode="sliders", preset="mine", save_preset_as="", unique_id="43", **{**common, "value_1": 0.0}).args[1]
    assert torch.equal(loaded.w_plus, codes.w_plus)  # the preset's values, not the sliders'
    grid, strip, _ = comfy.run("StyleCLIP_EditSliders", mode="grid", preset="", save_preset_as="", unique_id="44", **common).args
    assert grid.shape == (1, 64, 3 * 64, 3) and strip.batch_size == 3
    assert again.ui["styleclip_sliders"][0]["labels"][0].startswith("W")
    with pytest.raises(FileNotFoundError, match="no slider preset 'gone'"):
        comfy.run("StyleCLIP_EditSliders", mode="sliders", preset="gone", save_preset_as="", **common)


def test_mapper_direction_node(comfy, setup):
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="reference", precision="fp32").args[0]
    mapper = comfy.run("StyleCLIP_LoadMapper", mapper_name="purple_hair.pt").args[0]
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=1, batch_size=2, truncation_psi=0.7).args[0]
    direction = comfy.run("StyleCLIP_MapperDirection", generator=g, mapper=mapper, latents=latents, face=0).args[0]
    assert direction.space == "w+" and "mapper" in direction.describe()
    edited = comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=Latents(w_plus=latents.w_plus[:1]), direction=direction, alphas="1").args[0]
    with torch.no_grad():
        want = mapper.edit(Latents(w_plus=latents.w_plus[:1]), g).w_plus
    torch.testing.assert_close(edited.w_plus, want, atol=1e-6, rtol=0)  # as test_mapper_direction_is_the_mappers_edit
