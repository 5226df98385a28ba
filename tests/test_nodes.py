"""Node schemas follow the pack's conventions; generator nodes behave as a user expects."""
import os

import pytest
import torch

from conftest import PACK_NODE_IDS

CUSTOM_PREFIX = "SCLIP_"
CORE_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "IMAGE", "MASK"}


def pack_nodes(comfy):
    return {k: v for k, v in comfy.nodes.items() if k.startswith("StyleCLIP_")}


def pack_infos(comfy):
    return {k: v for k, v in comfy.harness.object_info(comfy.nodes).items() if k.startswith("StyleCLIP_")}


def test_schemas(comfy):
    infos = pack_infos(comfy)
    assert set(infos) == PACK_NODE_IDS
    for node_id, info in infos.items():
        assert node_id.startswith("StyleCLIP_") and info["display_name"] and info["category"].startswith("StyleCLIP")
        assert info["description"], node_id
        for group in ("required", "optional"):
            for name, spec in info["input"][group].items():
                kind = spec[0]
                assert kind in CORE_TYPES or kind.startswith(CUSTOM_PREFIX), (node_id, name, kind)
                assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        for kind, tooltip in zip(info["output"], info["output_tooltips"]):
            assert kind in CORE_TYPES or kind.startswith(CUSTOM_PREFIX), (node_id, kind)
            assert tooltip, f"{node_id} output {kind} has no tooltip"
    assert "LATENT" not in {t for i in infos.values() for t in i["output"]}


def test_every_node_takes_its_inputs_by_name(comfy):
    """ComfyUI calls a V3 node's execute on the class with every input by its id and leaves out
    an optional input nothing is connected to: execute is a classmethod whose parameters are the
    schema's input ids, each optional one with a default, the default of an optional widget the
    schema's (what a prompt that leaves it out gets is what the frontend shows)."""
    import inspect

    for node_id, cls in pack_nodes(comfy).items():
        assert isinstance(inspect.getattr_static(cls, "execute"), classmethod), node_id
        params = inspect.signature(cls.execute).parameters
        inputs = cls.define_schema().inputs
        assert sorted(params) == sorted(i.id for i in inputs), node_id
        for i in inputs:
            p = params[i.id]
            assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY), (node_id, i.id)
            if i.optional:
                assert p.default is not p.empty, f"{node_id}: optional input {i.id} has no default"
                if getattr(i, "default", None) is not None:
                    assert p.default == i.default, (node_id, i.id, p.default, i.default)


def test_run_checks_inputs_as_comfyui_validates_a_prompt(comfy):
    """comfy.run, the one way node tests run a node, refuses what ComfyUI's prompt validation
    refuses, before the node runs."""
    load = dict(generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32")
    with pytest.raises(ValueError, match="required input 'precision' is missing"):
        comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto")
    with pytest.raises(ValueError, match="'fp64' for 'precision' is not among the options"):
        comfy.run("StyleCLIP_LoadGenerator", **{**load, "precision": "fp64"})
    with pytest.raises(TypeError, match=r"has no input \['generator'\]"):
        comfy.run("StyleCLIP_LoadGenerator", **load, generator="x")
    g = comfy.run("StyleCLIP_LoadGenerator", **load).args[0]
    with pytest.raises(ValueError, match=r"batch_size=0 outside \[1, 256\]"):
        comfy.run("StyleCLIP_SampleLatents", generator=g, seed=0, batch_size=0, truncation_psi=0.7)


def test_generator_dropdown_lists_models_folder(comfy):
    info = pack_infos(comfy)["StyleCLIP_LoadGenerator"]
    assert "stylegan2-ffhq-config-f.pt" in info["input"]["required"]["generator_name"][1]["options"]
    assert info["input"]["required"]["ops_backend"][1]["options"] == ["auto", "cuda", "reference"]


def test_load_sample_render(comfy):
    g, info = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="reference", precision="fp32").args
    assert "64px" in info and "reference" in info
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=7, batch_size=3, truncation_psi=0.7).args[0]
    assert latents.w_plus.shape == (3, g.n_latent, g.style_dim)
    images = comfy.run("StyleCLIP_Synthesize", generator=g, latents=latents, noise="const", noise_seed=0, chunk_size=2).args[0]
    assert images.shape == (3, 64, 64, 3) and images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    again = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=7, batch_size=3, truncation_psi=0.7).args[0]
    assert torch.equal(latents.w_plus, again.w_plus)  # seeded
    # random noise: an image does not depend on the chunk size
    a = comfy.run("StyleCLIP_Synthesize", generator=g, latents=latents, noise="random", noise_seed=5, chunk_size=1).args[0]
    b = comfy.run("StyleCLIP_Synthesize", generator=g, latents=latents, noise="random", noise_seed=5, chunk_size=3).args[0]
    # chunks of 1 vs 3: the generator's float32 convolutions round differently per batch (pixels in
    # [0, 1]): measured 3.2e-6 to 3.6e-6 at 1 and 4 threads and AVX512/AVX2/default, ~1/3 of the old
    # default 1e-5; 5e-5 leaves a 14x margin for other CPUs
    torch.testing.assert_close(a, b, atol=5e-5, rtol=0)


def test_cuda_backend_on_cpu_is_a_clear_error(comfy):
    with pytest.raises(RuntimeError, match="CUDA ops backend was requested"):
        comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="cuda", precision="fp32")


def test_save_and_load_latents(comfy):
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=1, batch_size=2, truncation_psi=1.0).args[0]
    ui1 = comfy.run("StyleCLIP_SaveLatents", latents=latents, filename_prefix="tests/lat").ui
    ui2 = comfy.run("StyleCLIP_SaveLatents", latents=latents, filename_prefix="tests/lat").ui
    assert ui1["text"] != ui2["text"]  # numbered, never overwritten
    name = ui1["text"][0].split(" to ")[1].replace(os.sep, "/") + " [output]"
    info = comfy.nodes["StyleCLIP_LoadLatents"].object_info()
    assert name in info["input"]["required"]["latent_file"][1]["options"]
    loaded = comfy.run("StyleCLIP_LoadLatents", latent_file=name).args[0]
    assert torch.equal(loaded.w_plus, latents.w_plus)


def test_mix_latents(comfy):
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    a = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=1, batch_size=3, truncation_psi=1.0).args[0]
    b = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=2, batch_size=1, truncation_psi=1.0).args[0]
    mixed = comfy.run("StyleCLIP_MixLatents", latents_a=a, latents_b=b, factor=1.0, row_start=0, row_end=4).args[0].w_plus
    assert torch.equal(mixed[:, :4], b.w_plus[:, :4].expand(3, -1, -1)) and torch.equal(mixed[:, 4:], a.w_plus[:, 4:])
    half = comfy.run("StyleCLIP_MixLatents", latents_a=a, latents_b=b, factor=0.5, row_start=0, row_end=64).args[0].w_plus
    # a lerp at 0.5 vs (a + b) / 2 (|w| ~2.3): 1 ulp apart (measured 1.2e-7); float32 default bound
    torch.testing.assert_close(half, (a.w_plus + b.w_plus) / 2, atol=1e-5, rtol=1.3e-6)
    c = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=2, truncation_psi=1.0).args[0]
    with pytest.raises(ValueError, match="batch sizes 3 and 2 differ"):
        comfy.run("StyleCLIP_MixLatents", latents_a=a, latents_b=c, factor=1.0, row_start=0, row_end=4)


def test_interrupt_stops_rendering(comfy):
    import comfy.model_management as mm

    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=1, batch_size=4, truncation_psi=1.0).args[0]
    mm.interrupt_current_processing(True)
    with pytest.raises(mm.InterruptProcessingException):
        comfy.run("StyleCLIP_Synthesize", generator=g, latents=latents, noise="const", noise_seed=0, chunk_size=1)
    assert not mm.processing_interrupted()


def test_convert_generator_node(comfy):
    path = comfy.run("StyleCLIP_ConvertGenerator", generator_name="stylegan2-ffhq-config-f.pt").args[0]
    assert path.endswith("stylegan2-ffhq-config-f.safetensors") and os.path.isfile(path)
    with pytest.raises(FileExistsError):
        comfy.run("StyleCLIP_ConvertGenerator", generator_name="stylegan2-ffhq-config-f.pt")
    os.remove(path)
