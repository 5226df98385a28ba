"""Models are handed to ComfyUI's model management: loaders register them, nodes ask for every
model they run at once, and freeing models moves their weights to the offload device."""
import torch


def test_nodes_load_the_models_they_run(comfy, monkeypatch):
    import comfy.model_management as mm

    n = comfy.nodes
    calls = []
    real = mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda patchers, **kw: (calls.append([p.model for p in patchers]), real(patchers, **kw)))
    g = n["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "auto", "fp32").args[0]
    clip = n["StyleCLIP_LoadCLIP"].execute("ViT-B-32.pt", "auto", "styleclip").args[0]
    arcface = n["StyleCLIP_LoadArcFace"].execute("model_ir_se50.pth").args[0]
    for model in (g, clip.net, arcface):
        assert model.comfy_patcher.model is model and model.comfy_patcher.load_device == mm.get_torch_device()
    assert calls == []  # loading alone puts nothing on the compute device

    latents = n["StyleCLIP_SampleLatents"].execute(g, 3, 1, 0.7).args[0]
    assert calls.pop() == [g]
    loss = n["StyleCLIP_CLIPLoss"].execute(clip, "purple hair", 1.0).args[0]
    loss = n["StyleCLIP_IdentityLoss"].execute(arcface, 0.1, loss).args[0]
    loss = n["StyleCLIP_LatentL2Loss"].execute(0.008, loss, "sum").args[0]
    n["StyleCLIP_OptimizeLatents"].execute(g, latents, loss, 1, 0.1, "W+", "const", 0, 10)
    assert calls.pop() == [g, clip.net, arcface]  # one call: freeing room for one never evicts another
    images = n["StyleCLIP_Synthesize"].execute(g, latents, "const", 0, 4).args[0]
    assert calls.pop() == [g]
    n["StyleCLIP_CLIPScore"].execute(clip, images, "a face")
    assert calls.pop() == [clip.net]


def test_freeing_models_offloads_their_weights(comfy):
    import comfy.model_management as mm

    g = comfy.nodes["StyleCLIP_LoadGenerator"].execute("stylegan2-ffhq-config-f.pt", "auto", "fp32").args[0]
    g.comfy_patcher.offload_device = torch.device("meta")  # a device the test can tell apart from the CPU
    comfy.nodes["StyleCLIP_SampleLatents"].execute(g, 0, 1, 0.7)
    mm.unload_all_models()
    assert {p.device.type for p in g.parameters()} | {b.device.type for b in g.buffers()} == {"meta"}
