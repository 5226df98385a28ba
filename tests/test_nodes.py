"""Node schemas follow the pack's conventions; generator nodes behave as a user expects."""
import os

import pytest
import torch

CUSTOM_PREFIX = "SCLIP_"
CORE_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "IMAGE", "MASK"}


def pack_infos(comfy):
    return {k: v for k, v in comfy.harness.object_info(comfy.nodes).items() if k.startswith("StyleCLIP_")}


def test_schemas(comfy):
    infos = pack_infos(comfy)
    assert len(infos) >= 7
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


def test_generator_dropdown_lists_models_folder(comfy):
    info = pack_infos(comfy)["StyleCLIP_LoadGenerator"]
    assert "stylegan2-ffhq-config-f.pt" in info["input"]["required"]["generator_name"][1]["options"]
    assert info["input"]["required"]["ops_backend"][1]["options"] == ["auto", "cuda", "reference"]


def test_load_sample_render(comfy):
    n = comfy.nodes
    g, info = n["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "reference", "fp32").args
    assert "64px" in info and "reference" in info
    latents = n["StyleCLIP_SampleLatents"].execute(g, 7, 3, 0.7).args[0]
    assert latents.w_plus.shape == (3, g.n_latent, g.style_dim)
    images = n["StyleCLIP_Synthesize"].execute(g, latents, "const", 0, 2).args[0]
    assert images.shape == (3, 64, 64, 3) and images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    again = n["StyleCLIP_SampleLatents"].execute(g, 7, 3, 0.7).args[0]
    assert torch.equal(latents.w_plus, again.w_plus)  # seeded
    # random noise: an image does not depend on the chunk size
    a = n["StyleCLIP_Synthesize"].execute(g, latents, "random", 5, 1).args[0]
    b = n["StyleCLIP_Synthesize"].execute(g, latents, "random", 5, 3).args[0]
    # chunks of 1 vs 3: the generator's float32 convolutions round differently per batch (pixels in
    # [0, 1]): measured 3.2e-6 to 3.6e-6 at 1 and 4 threads and AVX512/AVX2/default, ~1/3 of the old
    # default 1e-5; 5e-5 leaves a 14x margin for other CPUs
    torch.testing.assert_close(a, b, atol=5e-5, rtol=0)


def test_cuda_backend_on_cpu_is_a_clear_error(comfy):
    with pytest.raises(RuntimeError, match="CUDA ops backend was requested"):
        comfy.nodes["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "cuda", "fp32")


def test_save_and_load_latents(comfy):
    n = comfy.nodes
    g = n["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "auto", "fp32").args[0]
    latents = n["StyleCLIP_SampleLatents"].execute(g, 1, 2, 1.0).args[0]
    ui1 = n["StyleCLIP_SaveLatents"].execute(latents, "tests/lat").ui
    ui2 = n["StyleCLIP_SaveLatents"].execute(latents, "tests/lat").ui
    assert ui1["text"] != ui2["text"]  # numbered, never overwritten
    name = ui1["text"][0].split(" to ")[1].replace(os.sep, "/") + " [output]"
    info = comfy.harness.object_info({"x": n["StyleCLIP_LoadLatents"]})["x"]
    assert name in info["input"]["required"]["latent_file"][1]["options"]
    loaded = n["StyleCLIP_LoadLatents"].execute(name).args[0]
    assert torch.equal(loaded.w_plus, latents.w_plus)


def test_mix_latents(comfy):
    n = comfy.nodes
    g = n["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "auto", "fp32").args[0]
    a = n["StyleCLIP_SampleLatents"].execute(g, 1, 3, 1.0).args[0]
    b = n["StyleCLIP_SampleLatents"].execute(g, 2, 1, 1.0).args[0]
    mixed = n["StyleCLIP_MixLatents"].execute(a, b, 1.0, 0, 4).args[0].w_plus
    assert torch.equal(mixed[:, :4], b.w_plus[:, :4].expand(3, -1, -1)) and torch.equal(mixed[:, 4:], a.w_plus[:, 4:])
    half = n["StyleCLIP_MixLatents"].execute(a, b, 0.5, 0, 64).args[0].w_plus
    # a lerp at 0.5 vs (a + b) / 2 (|w| ~2.3): 1 ulp apart (measured 1.2e-7); float32 default bound
    torch.testing.assert_close(half, (a.w_plus + b.w_plus) / 2, atol=1e-5, rtol=1.3e-6)
    c = n["StyleCLIP_SampleLatents"].execute(g, 3, 2, 1.0).args[0]
    with pytest.raises(ValueError, match="batch sizes 3 and 2 differ"):
        n["StyleCLIP_MixLatents"].execute(a, c, 1.0, 0, 4)


def test_interrupt_stops_rendering(comfy):
    import comfy.model_management as mm

    n = comfy.nodes
    g = n["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "auto", "fp32").args[0]
    latents = n["StyleCLIP_SampleLatents"].execute(g, 1, 4, 1.0).args[0]
    mm.interrupt_current_processing(True)
    with pytest.raises(mm.InterruptProcessingException):
        n["StyleCLIP_Synthesize"].execute(g, latents, "const", 0, 1)
    assert not mm.processing_interrupted()


def test_convert_generator_node(comfy):
    n = comfy.nodes
    path = n["StyleCLIP_ConvertGenerator"].execute("stylegan2-ffhq-config-f.pt").args[0]
    assert path.endswith("stylegan2-ffhq-config-f.safetensors") and os.path.isfile(path)
    with pytest.raises(FileExistsError):
        n["StyleCLIP_ConvertGenerator"].execute("stylegan2-ffhq-config-f.pt")
    os.remove(path)
