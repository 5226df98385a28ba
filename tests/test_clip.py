"""CLIP: preprocessing parity, template averaging, loading every supported file format safely."""
import json
import os
import pickle
import zipfile

import pytest
import torch
from torch import nn

from conftest import load_fixture
from standins import stand_in_clip
from styleclip_core.formats import torchscript
from styleclip_core.formats.clip_files import buildable_architectures, load_clip, read_clip_state
from styleclip_core.models.clip import ClipModel, box_resize_matrix, imagenet_templates
from styleclip_core.errors import CheckpointError


def reference_resize(x):
    """StyleCLIP's CLIPLoss resize, literally: nearest x7 upsample then AvgPool2d(size // 32)."""
    return nn.AvgPool2d(x.shape[-1] // 32)(nn.Upsample(scale_factor=7)(x))


@pytest.fixture(scope="module")
def preprocess_fixture():
    return load_fixture("clip_preprocess")


@pytest.mark.parametrize("size", [64, 256, 1024])
def test_styleclip_preprocessing_matches_fixture(preprocess_fixture, size, parity):
    T, meta = preprocess_fixture
    if size == 1024:
        h = torch.arange(1024, dtype=torch.float64)[:, None]
        w = torch.arange(1024, dtype=torch.float64)[None, :]
        x = torch.stack([torch.sin(0.05 * h + 0.03 * w + c) * torch.cos(0.02 * w - 0.5 * c) for c in range(3)])[None].float()
    else:
        x = T[f"in.image_{size}"]
    out = stand_in_clip().prepare_images(x)
    expected = T[f"out.clip_input_{size}"]
    if size < 1024:
        parity.close(f"clip_preprocess:out.clip_input_{size}", out, expected, **meta["tolerance"])
        return
    # At 1024 the reference's float32 AvgPool2d sums 1024 values per output and misses the exact
    # (float64) resize by up to 1.1e-5, beyond the fixture's 1e-6; ours misses it by ~1e-7.
    # Ours: a float32 box-resize matmul (each output sums its 32x32 box with equal weights 1/1024,
    # error a few ulp of |x| <= 1): measured 1.2e-7 (1.5e-7 with ATen's default kernels), bound 1e-6.
    # The reference's 1.13e-5 is a property of the stored tensor (no computation of ours), so
    # |ours - ref| <= 1.13e-5 + 1e-6 < 2e-5 on any CPU.
    exact = reference_resize(x.double())
    assert (out.double() - exact).abs().max() < 1e-6
    assert (expected.double() - exact).abs().max() < 2e-5
    parity.close("clip_preprocess:out.clip_input_1024", out, expected, atol=2e-5, rtol=0)


def test_box_resize_is_upsample_then_pool_for_other_sizes():
    x = torch.randn(2, 3, 128, 128)
    # box-resize matmul vs nearest-upsample + AvgPool2d (|x| <= 4.7): both a few ulp of |x| from the
    # exact resize; measured 9.5e-7 (ratio 0.16 of atol + rtol |ref|) at 1 and 4 threads, AVX2, AVX512
    # and ATen's default kernels
    torch.testing.assert_close(stand_in_clip().prepare_images(x), reference_resize(x), atol=1e-6, rtol=1e-5)
    # a size the reference cannot take (16 // 32 = 0): still an exact area resize, rows sum to 1
    # (each row: at most 2 non-zero float32 weights, a sum within 1 ulp of 1; measured exact)
    m = box_resize_matrix(16, 224)
    torch.testing.assert_close(m.sum(1), torch.ones(224), atol=1e-6, rtol=0)
    assert torch.equal(box_resize_matrix(224, 224), torch.eye(224))


def test_normalized_preprocessing():
    x = torch.randn(1, 3, 64, 64)
    clip = stand_in_clip(preprocessing="normalized")
    mean = torch.tensor(clip.mean).view(1, 3, 1, 1)
    std = torch.tensor(clip.std).view(1, 3, 1, 1)
    # as above, then the affine normalisation (|out| <= 7.5): measured 9.5e-7 (ratio 0.02)
    torch.testing.assert_close(clip.prepare_images(x), ((reference_resize(x) + 1) / 2 - mean) / std, atol=1e-5, rtol=1e-5)
    assert clip.with_preprocessing("styleclip").net is clip.net


def test_templates_are_the_reference_79():
    templates = imagenet_templates()
    assert len(templates) == 79 and len(set(templates)) == 79
    assert "a photo of many {}." not in templates
    assert templates[0] == "a bad photo of a {}." and templates[1] == "a sculpture of a {}." and templates[-1] == "a tattoo of the {}."


def test_template_average_and_direction_match_fixture(parity):
    T, meta = load_fixture("global_directions")
    table = torch.cat([T["in.text.target_template_embeddings"], T["in.text.neutral_template_embeddings"]])
    templates = imagenet_templates()
    rows = {t.format("TARGET"): i for i, t in enumerate(templates)} | {t.format("NEUTRAL"): 79 + i for i, t in enumerate(templates)}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.logit_scale = nn.Parameter(torch.zeros(()))

        def encode_text(self, tokens):
            return table[tokens[:, 0]] * 3.0  # unnormalised, as a real encoder's output

    clip = ClipModel(Net(), lambda texts: torch.tensor([[rows[t]] for t in texts]), 224)
    dt = clip.text_direction("NEUTRAL", "TARGET", templates=True)
    parity.close("global_directions:out.text.dt", dt, T["out.text.dt"], atol=meta["tolerance"]["atol"], rtol=meta["tolerance"]["rtol"])
    target = clip.text_features("TARGET", templates=True)
    # a float32 unit vector of 16 values: normalising and re-measuring err by <= 2 (16/2 + 1) eps = 2.1e-6
    torch.testing.assert_close(target.norm(), torch.tensor(1.0), atol=1e-5, rtol=0)
    assert clip.text_features("TARGET", templates=True) is target  # cached


# ---- loading -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_file(tiny_models_dir):
    return os.path.join(tiny_models_dir, "openclip", "ViT-B-32.pt")


@pytest.fixture(scope="module")
def tiny_clip(openai_file):
    return load_clip(openai_file)


def test_torchscript_reader_matches_torch_jit(openai_file):
    import warnings

    assert torchscript.is_torchscript_archive(openai_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.jit.load(openai_file).state_dict()  # our own tiny file: safe to run here
    got = torchscript.read_tensors(openai_file)
    assert set(got) == set(expected)
    for k in expected:
        assert got[k].dtype == expected[k].dtype and torch.equal(got[k], expected[k]), k


def test_openai_archive_loads_with_inferred_architecture(tiny_clip):
    net = tiny_clip.net
    assert tiny_clip.is_tiny_stand_in and "OpenAI layout" in tiny_clip.name
    assert net.visual.conv1.weight.shape == (64, 3, 32, 32) and len(net.transformer.resblocks) == 1
    assert net.token_embedding.weight.shape[0] == 49408 and net.context_length == 77 and tiny_clip.image_size == 224
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in net.parameters())
    from open_clip.transformer import QuickGELU

    assert any(isinstance(m, QuickGELU) for m in net.modules())  # OpenAI's activation
    # the bundled BPE tokenizer runs: different prompts, different unit embeddings
    a, b = tiny_clip.text_features("a person with purple hair"), tiny_clip.text_features("a smiling face")
    assert a.shape == (32,) and not torch.allclose(a, b)  # they differ by 0.4
    # a float32 unit vector of 32 values: within 2 (32/2 + 1) eps = 4.1e-6 of norm 1 (measured 6e-8)
    torch.testing.assert_close(a.norm(), torch.tensor(1.0), atol=1e-5, rtol=0)
    images = torch.randn(2, 3, 64, 64, requires_grad=True)
    sim = tiny_clip.similarity(images, "a person with purple hair")
    sim.sum().backward()
    assert sim.shape == (2,) and images.grad.abs().sum() > 0


def _weights(model):
    return {k: v.clone() for k, v in model.net.state_dict().items() if k != "attn_mask"}


def test_state_dict_formats_load_to_the_same_model(tiny_clip, tmp_path):
    import open_clip
    from safetensors.torch import save_file

    from styleclip_core.formats.tiny_models import TINY_CLIP

    state = _weights(tiny_clip)
    images = torch.randn(1, 3, 64, 64)
    expected = tiny_clip.encode_images(images)
    # OpenAI-layout state dict (torch.save of the archive's state_dict()) -> architecture inferred
    torch.save({k: v.half() for k, v in state.items()}, tmp_path / "openai_state.pt")
    # exact: the tiny archive's weights are float16 values (it is written .half()), so the float16
    # round trip loses nothing, and the same model code runs on the same input
    assert torch.equal(load_clip(str(tmp_path / "openai_state.pt")).encode_images(images), expected)
    # open_clip checkpoints need their architecture; register a config matching the tiny one
    config = {
        "embed_dim": TINY_CLIP["embed_dim"], "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": TINY_CLIP["vision_layers"], "width": TINY_CLIP["vision_width"], "patch_size": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": TINY_CLIP["text_width"], "heads": 1, "layers": TINY_CLIP["text_layers"]},
    }
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "TinyTestCLIP.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "cfg")
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "open_clip_model.safetensors")
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "epoch_3.pt")
    for name in ("open_clip_model.safetensors", "epoch_3.pt"):
        model = load_clip(str(tmp_path / name), "TinyTestCLIP")
        # the same weights in the same open_clip model code: bit-identical
        assert torch.equal(model.encode_images(images), expected)
        assert torch.equal(model.text_features("a face"), tiny_clip.text_features("a face"))
    # a custom-text open_clip layout cannot be read with 'auto'
    from open_clip.model import convert_to_custom_text_state_dict

    save_file({k: v.contiguous() for k, v in convert_to_custom_text_state_dict(dict(state)).items()}, tmp_path / "custom.safetensors")
    with pytest.raises(CheckpointError, match="choose its open_clip architecture"):
        load_clip(str(tmp_path / "custom.safetensors"))
    with pytest.raises(CheckpointError, match="pick the architecture"):
        load_clip(str(tmp_path / "open_clip_model.safetensors"), "RN50")


def test_architecture_list_is_offline_buildable():
    names = buildable_architectures()
    assert "ViT-B-32" in names and "ViT-B-32-quickgelu" in names and "RN50" in names
    import open_clip

    for name in names:
        assert "hf_tokenizer_name" not in open_clip.get_model_config(name)["text_cfg"], name


def test_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ViT-B-32.pt"):
        load_clip(str(tmp_path / "ViT-B-32.pt"))
    # a pickle that would run code is refused, not executed
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        read_clip_state(str(tmp_path / "evil.pt"))
    assert not (tmp_path / "pwned").exists()


def test_torchscript_reader_refuses_foreign_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil_archive.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"weight": Evil()}, protocol=2))
        z.writestr("archive/constants.pkl", pickle.dumps((), protocol=2))
    assert torchscript.is_torchscript_archive(str(path))
    with pytest.raises(CheckpointError, match="refusing to load global"):
        torchscript.read_tensors(str(path))
    assert not (tmp_path / "pwned").exists()
    # a truncated archive is a clear error too
    data = open(path, "rb").read()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises((CheckpointError, zipfile.BadZipFile)):
        torchscript.read_tensors(str(tmp_path / "cut.pt"))


def test_clip_score_node(comfy):
    clip, info = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args
    assert info.startswith("TINY RANDOM STAND-IN") and "224px" in info
    images = torch.rand(3, 64, 64, 3)
    scores, report = comfy.run("StyleCLIP_CLIPScore", clip=clip, images=images, text="a person with purple hair").args
    expected = clip.similarity(images.permute(0, 3, 1, 2) * 2 - 1, "a person with purple hair")
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    # the node computes the same similarity on the same pixels (float32 -> Python float -> float32 is lossless)
    assert torch.equal(torch.tensor(scores), expected.detach())
    assert report.count("\n") == 2 and "image 2:" in report


def test_missing_model_file_says_where_to_put_it(comfy):
    # ComfyUI's validation refuses a file name its dropdown does not list; a loader sees one when
    # the file went away after the list was made (unvalidated: past that check)
    with pytest.raises(FileNotFoundError) as e:
        comfy.run("StyleCLIP_LoadArcFace", arcface_name="nothing_here.pth", unvalidated=True)
    assert "nothing_here.pth" in str(e.value) and "arcface" in str(e.value) and "model_ir_se50.pth" in str(e.value)
    with pytest.raises(FileNotFoundError, match="ViT-B-32.pt from OpenAI"):
        comfy.run("StyleCLIP_LoadCLIP", clip_name="missing.pt", architecture="auto", image_preprocessing="styleclip", unvalidated=True)
