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


def test_e4e_codes_on_a_stylegan3_say_why(comfy, sg3):
    g, _ = sg3
    from styleclip_core.models.latents import Latents

    with pytest.raises(ValueError, match="different generator"):
        comfy.run("StyleCLIP_Synthesize", generator=g, latents=Latents(w_plus=torch.zeros(1, 10, 64)), noise="const", noise_seed=0, chunk_size=4)


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
