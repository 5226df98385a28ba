"""Models are handed to ComfyUI's model management: loaders register them, nodes ask for every
model they run at once, and freeing models moves their weights to the offload device."""
import torch


def test_nodes_load_the_models_they_run(comfy, monkeypatch):
    import comfy.model_management as mm

    calls = []
    real = mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda patchers, **kw: (calls.append([p.model for p in patchers]), real(patchers, **kw)))
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    arcface = comfy.run("StyleCLIP_LoadArcFace", arcface_name="model_ir_se50.pth").args[0]
    for model in (g, clip.net, arcface):
        assert model.comfy_patcher.model is model and model.comfy_patcher.load_device == mm.get_torch_device()
    assert calls == []  # loading alone puts nothing on the compute device

    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=1, truncation_psi=0.7).args[0]
    assert calls.pop() == [g]
    loss = comfy.run("StyleCLIP_CLIPLoss", clip=clip, text="purple hair", weight=1.0).args[0]
    loss = comfy.run("StyleCLIP_IdentityLoss", arcface=arcface, weight=0.1, loss=loss).args[0]
    loss = comfy.run("StyleCLIP_LatentL2Loss", weight=0.008, loss=loss, reduction="sum").args[0]
    comfy.run("StyleCLIP_OptimizeLatents", generator=g, latents=latents, loss=loss, steps=1, learning_rate=0.1, space="W+", noise="const",
              noise_seed=0, preview_every=10)
    assert calls.pop() == [g, clip.net, arcface]  # one call: freeing room for one never evicts another
    images = comfy.run("StyleCLIP_Synthesize", generator=g, latents=latents, noise="const", noise_seed=0, chunk_size=4).args[0]
    assert calls.pop() == [g]
    comfy.run("StyleCLIP_CLIPScore", clip=clip, images=images, text="a face")
    assert calls.pop() == [clip.net]


def test_freeing_models_offloads_their_weights(comfy):
    import comfy.model_management as mm

    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    g.comfy_patcher.offload_device = torch.device("meta")  # a device the test can tell apart from the CPU
    comfy.run("StyleCLIP_SampleLatents", generator=g, seed=0, batch_size=1, truncation_psi=0.7)
    mm.unload_all_models()
    assert {p.device.type for p in g.parameters()} | {b.device.type for b in g.buffers()} == {"meta"}
