"""The nodes that take a generator, run with the tiny StyleGAN3-T snapshot that tiny-models writes
(models/stylegan/stylegan3-t-ffhq-1024x1024.pkl): each works or says clearly why not."""
import pytest
import torch

SG3 = "stylegan3-t-ffhq-1024x1024.pkl"
LOAD = dict(ops_backend="auto", precision="fp32")
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run faster on one thread


@pytest.fixture(scope="module")
def sg3(comfy):
    out = comfy.run("StyleCLIP_LoadGenerator", generator_name=SG3, **LOAD)
    return out.args[0], out.args[1]


@pytest.fixture(scope="module")
def faces(comfy, sg3):
    return comfy.run("StyleCLIP_SampleLatents", generator=sg3[0], seed=3, batch_size=2, truncation_psi=0.7).args[0]


def test_load_sample_render_mix(comfy, sg3, faces):
    g, info = sg3
    assert "StyleGAN3" in info and "TINY RANDOM STAND-IN" in info
    images = comfy.run("StyleCLIP_Synthesize", generator=g, latents=faces, noise="const", noise_seed=0, chunk_size=4).args[0]
    assert images.shape == (2, g.size, g.size, 3) and 0 <= float(images.min()) and float(images.max()) <= 1
    mixed = comfy.run("StyleCLIP_MixLatents", latents_a=faces, latents_b=faces, factor=0.5, row_start=0, row_end=8).args[0]
    assert mixed.w_plus.shape == faces.w_plus.shape
    with pytest.raises(ValueError, match="fp32"):
        comfy.run("StyleCLIP_LoadGenerator", generator_name=SG3, ops_backend="auto", precision="bf16")


def test_text_edit_and_local_edit(comfy, sg3, faces):
    g, _ = sg3
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    loss = comfy.run("StyleCLIP_CLIPLoss", clip=clip, text="a smiling face", weight=1.0).args[0]
    for space in ("W+", "StyleSpace"):
        out = comfy.run("StyleCLIP_OptimizeLatents", generator=g, latents=faces, loss=loss, steps=2, learning_rate=0.05, space=space,
                        noise="const", noise_seed=0, preview_every=1)
        edited = out.args[0]
    mask = torch.zeros(1, g.size, g.size)
    mask[:, : g.size // 2] = 1
    images = comfy.run("StyleCLIP_LocalEdit", generator=g, original=faces, edited=edited, mask=mask, feather=0.0, blend_from="8").args[0]
    assert images.shape[0] == 2


def test_closed_form_directions(comfy, sg3, faces):
    g, _ = sg3
    for node, extra in (("StyleCLIP_SeFaDirection", {}), ("StyleCLIP_GANSpaceDirection", dict(samples=1000, seed=0))):
        direction = comfy.run(node, generator=g, component=0, start_row=0, end_row=0, **extra).args[0]
        edited = comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=faces, direction=direction, alphas="-2, 2").args[0]
        images = comfy.run("StyleCLIP_Synthesize", generator=g, latents=edited, noise="const", noise_seed=0, chunk_size=4).args[0]
        assert images.shape[0] == 4 and torch.isfinite(images).all(), node


def test_convert_and_save(comfy, sg3):
    import os

    g, _ = sg3
    folder = comfy.folder_paths.get_folder_paths("stylegan")[0]
    before = set(os.listdir(folder))
    try:
        comfy.run("StyleCLIP_ConvertGenerator", generator_name=SG3)
        comfy.run("StyleCLIP_SaveGenerator", generator=g, name="sg3_saved")
        new = sorted(set(os.listdir(folder)) - before)
        assert new == ["sg3_saved.safetensors", "stylegan3-t-ffhq-1024x1024.safetensors"]
        from styleclip_core.formats.generator_files import load_generator

        assert all(load_generator(os.path.join(folder, n)).architecture == "stylegan3" for n in new)
    finally:
        for name in set(os.listdir(folder)) - before:
            os.remove(os.path.join(folder, name))


def test_mapper_trains_and_applies(comfy, sg3, faces):
    import os

    g, _ = sg3
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    loss = comfy.run("StyleCLIP_CLIPLoss", clip=clip, text="a smiling face", weight=1.0).args[0]
    folder = comfy.folder_paths.get_folder_paths("styleclip_mappers")[0]
    before = set(os.listdir(folder))
    try:
        for mapper_type in ("LevelsMapper", "FullStyleSpaceMapper"):
            mapper = comfy.run("StyleCLIP_TrainMapper", generator=g, loss=loss, name=f"sg3_{mapper_type}", if_exists="new numbered file", steps=2,
                               mapper_type=mapper_type, coarse=True, medium=True, fine=True, batch_size=2, learning_rate=0.5, optimizer="ranger",
                               seed=0, sample_count=4, truncation_psi=0.7, save_every=0, preview_every=1).args[0]
            edited = comfy.run("StyleCLIP_ApplyMapper", generator=g, mapper=mapper, latents=faces, strength=1.0).args[0]
            images = comfy.run("StyleCLIP_Synthesize", generator=g, latents=edited, noise="const", noise_seed=0, chunk_size=4).args[0]
            assert torch.isfinite(images).all(), mapper_type
    finally:
        for name in set(os.listdir(folder)) - before:
            os.remove(os.path.join(folder, name))


def test_e4e_codes_on_a_stylegan3_say_why(comfy, sg3, faces):
    """e4e encodes into StyleGAN2 only: its codes given to a StyleGAN3 (rendering, Pivotal Tuning,
    the video chain) are refused with a message naming StyleGAN3 and what to use instead."""
    g, _ = sg3
    from styleclip_core.models.latents import Latents

    with pytest.raises(ValueError, match="different generator"):
        comfy.run("StyleCLIP_Synthesize", generator=g, latents=Latents(w_plus=torch.zeros(1, 10, 64)), noise="const", noise_seed=0, chunk_size=4)
    photos = comfy.run("StyleCLIP_Synthesize", generator=g, latents=faces, noise="const", noise_seed=0, chunk_size=4).args[0]
    e4e = comfy.run("StyleCLIP_LoadE4E", e4e_name="e4e_ffhq_encode.pt", ops_backend="auto").args[0]
    codes = comfy.run("StyleCLIP_InvertImages", e4e=e4e, images=photos, chunk_size=4).args[0]
    alex = comfy.run("StyleCLIP_LoadLPIPS", net="alex", backbone_name="alexnet-owt-7be5be79.pth").args[0]
    why = r"StyleGAN3 generator.*e4e's codes.*Load e4e Encoder's generator"
    with pytest.raises(ValueError, match=why):
        comfy.run("StyleCLIP_Synthesize", generator=g, latents=codes, noise="const", noise_seed=0, chunk_size=4)
    with pytest.raises(ValueError, match=why):
        comfy.run("StyleCLIP_PivotalTuning", generator=g, lpips=alex, latents=codes, images=photos, steps=1, learning_rate=3e-4, lpips_threshold=0.06,
                  l2_weight=1.0, lpips_weight=1.0, locality_regularization=True, seed=0)
    with pytest.raises(ValueError, match=why):
        comfy.run("StyleCLIP_TuneOnClip", generator=g, lpips=alex, latents=codes, crops=photos, steps=1, learning_rate=3e-5, l2_weight=10.0, lpips_weight=1.0)


def test_projection_and_pivotal_tuning_run(comfy, sg3, faces):
    """A photo reaches a StyleGAN3 through Project Latents (optimisation, no encoder), then Pivotal Tuning."""
    g, _ = sg3
    photos = comfy.run("StyleCLIP_Synthesize", generator=g, latents=faces, noise="const", noise_seed=0, chunk_size=4).args[0]
    vgg = comfy.run("StyleCLIP_LoadLPIPS", net="vgg", backbone_name="vgg16-397923af.pth").args[0]
    alex = comfy.run("StyleCLIP_LoadLPIPS", net="alex", backbone_name="alexnet-owt-7be5be79.pth").args[0]
    latents, projected = comfy.run("StyleCLIP_ProjectLatents", generator=g, lpips=vgg, images=photos, space="w+", steps=2, seed=0,
                                   w_avg_samples=50, learning_rate=0.01, noise_regularization=1e5).args
    assert latents.w_plus.shape == faces.w_plus.shape and projected.shape == photos.shape
    tuned, pivots, reconstruction, _ = comfy.run(
        "StyleCLIP_PivotalTuning", generator=g, lpips=alex, latents=latents, images=photos, steps=2, learning_rate=3e-4, lpips_threshold=0.0,
        l2_weight=1.0, lpips_weight=1.0, locality_regularization=True, seed=0).args
    assert tuned.architecture == "stylegan3" and torch.isfinite(reconstruction).all()
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), g.state_dict().values()))


def test_a_stylegan3_encoder_file_says_why(comfy):
    """stylegan3-editing's ReStyle encoders (decoder.* a StyleGAN3) are refused by Load e4e Encoder, naming StyleGAN3."""
    import os

    from styleclip_core.formats.tiny_models import tiny_stylegan3

    decoder = {f"decoder.{k}": v for k, v in tiny_stylegan3("t").state_dict().items()}
    folder = comfy.folder_paths.get_folder_paths("e4e")[0]
    path = os.path.join(folder, "restyle_e4e_sg3_stand_in.pt")
    torch.save({"state_dict": {"encoder.input_layer.0.weight": torch.zeros(64, 6, 3, 3), **decoder},
                "opts": {"encoder_type": "ProgressiveBackboneEncoder"}, "latent_avg": torch.zeros(8, 64)}, path)
    try:
        with pytest.raises(ValueError, match="ProgressiveBackboneEncoder encoder for a StyleGAN3 generator.*Project Latents"):
            comfy.run("StyleCLIP_LoadE4E", e4e_name=os.path.basename(path), ops_backend="auto", unvalidated=True)
    finally:
        os.remove(path)


def test_domain_adaptation(comfy, sg3, faces):
    """Train Domain (NADA) adapts a StyleGAN3 (the reference's SG3Generator layers) and Load Adapted
    Generator reads it back."""
    import os

    g, _ = sg3
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="nada").args[0]
    folder = comfy.folder_paths.get_folder_paths("stylegan")[0]
    before = set(os.listdir(folder))
    try:
        adapted, name, _ = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, source_text="photo", target_text="sketch", name="nada_sg3",
                                     if_exists="new numbered file", steps=2, batch_size=2, learning_rate=0.002, auto_layer_k=18, auto_layer_iters=1,
                                     auto_layer_batch=8, phase="default", lambda_direction=1.0, lambda_global=0.0, lambda_manifold=0.0,
                                     clip_weight=1.0, seed=0, save_every=0, preview_every=1).args
        loaded, info = comfy.run("StyleCLIP_LoadAdaptedGenerator", generator_name=name, **LOAD).args
        assert loaded.architecture == "stylegan3" and "'photo' -> 'sketch'" in info
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), adapted.state_dict().values()))
    finally:
        for n in set(os.listdir(folder)) - before:
            os.remove(os.path.join(folder, n))


def test_rotate_translate(comfy, sg3, faces):
    g, _ = sg3
    moved = comfy.run("StyleCLIP_TransformStyleGAN3", generator=g, rotate=30.0, translate_x=0.3, translate_y=-0.2).args[0]
    assert torch.equal(g.synthesis.input.transform, torch.eye(3))  # the loaded generator is unchanged
    a = comfy.run("StyleCLIP_Synthesize", generator=g, latents=faces, noise="const", noise_seed=0, chunk_size=4).args[0]
    b = comfy.run("StyleCLIP_Synthesize", generator=moved, latents=faces, noise="const", noise_seed=0, chunk_size=4).args[0]
    assert (a - b).abs().max() > 0.05
    sg2 = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", **LOAD).args[0]
    with pytest.raises(ValueError, match="needs a StyleGAN3 generator"):
        comfy.run("StyleCLIP_TransformStyleGAN3", generator=sg2, rotate=30.0, translate_x=0.0, translate_y=0.0)


def test_edit_sliders(comfy, sg3, faces):
    g, _ = sg3
    direction = comfy.run("StyleCLIP_SeFaDirection", generator=g, component=1, start_row=0, end_row=0).args[0]
    for mode in ("sliders", "grid"):
        out = comfy.run("StyleCLIP_EditSliders", generator=g, latents=faces, direction_1=direction, value_1=2.0, value_2=0.0, value_3=0.0,
                        value_4=0.0, preview_size="256", mode=mode, grid_direction=1, grid_range=3.0, grid_steps=3, preset="", save_preset_as="")
        assert torch.isfinite(out.args[0]).all(), mode
