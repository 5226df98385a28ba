"""The models check tells present, missing, wrong and stand-in files apart."""
import os

import torch

from styleclip_core.formats import model_catalog

from styleclip_core.formats import tiny_models
from styleclip_core.__main__ import main


def test_check_models(tmp_path, capsys):
    models = str(tmp_path)
    tiny_models.write_models_folder(models)
    rows = {e.kind: (status, detail) for e, status, detail in model_catalog.check_models(models)}
    assert rows["generator"][0] == "PROBLEM" and "tiny random stand-in" in rows["generator"][1]
    assert rows["mapper"][0] == "PROBLEM" and "stand-in" in rows["mapper"][1]
    assert rows["fs3"][0] == "PROBLEM" and "not [5376 or 6048, 512]" in rows["fs3"][1]
    os.remove(os.path.join(models, "styleclip_global", "fs3.npy"))
    rows = {e.kind: (status, detail) for e, status, detail in model_catalog.check_models(models)}
    assert rows["fs3"][0] == "MISSING" and "styleclip_global" in rows["fs3"][1]
    # a real-architecture file that is not what its name says
    os.remove(os.path.join(models, "face_parsing", "79999_iter.pth"))
    torch.save({"style.1.weight": torch.zeros(2, 2)}, os.path.join(models, "face_parsing", "79999_iter.pth"))
    # a truncated download
    clip = os.path.join(models, "openclip", "ViT-B-32.pt")
    with open(clip, "r+b") as f:
        f.truncate(1000)
    rows = {e.kind: (status, detail) for e, status, detail in model_catalog.check_models(models)}
    assert rows["face_parser"][0] == "PROBLEM" and "BiSeNet" in rows["face_parser"][1]
    assert rows["clip"][0] == "PROBLEM" and "SHA-256" in rows["clip"][1]
    assert main(["check-models", "--models-dir", models, "--quick"]) == 1
    out = capsys.readouterr().out
    assert "MISSING  styleclip_global/fs3.npy" in out


def test_catalog_entries_are_complete():
    for e in model_catalog.CATALOG:
        assert e.source and e.licence and e.size and e.used_by and e.folder and e.filename
    folders = {e.folder for e in model_catalog.CATALOG}
    assert {"stylegan", "e4e", "openclip", "arcface", "styleclip_mappers", "face_parsing", "mediapipe"} <= folders


def test_stylegan3_files_are_told_apart(tmp_path):
    """NVIDIA's StyleGAN3 FFHQ pickles: the tiny stand-in that tiny-models writes under the T name is
    reported as one; a StyleGAN2 file, another size or the other config under a StyleGAN3 name are
    named for what they are; a StyleGAN3 of the right shape passes."""
    from styleclip_core.models.stylegan3 import DEFAULTS, StyleGAN3Generator

    models = str(tmp_path)
    tiny_models.write_models_folder(models, kinds=["generator_sg3_t"])

    def rows():
        return {e.kind: (status, detail) for e, status, detail in model_catalog.check_models(models)}

    found = rows()
    assert found["generator_sg3_t"][0] == "PROBLEM" and "tiny random stand-in" in found["generator_sg3_t"][1]
    assert found["generator_sg3_r"][0] == "MISSING" and "api.ngc.nvidia.com" in found["generator_sg3_r"][1]
    folder = os.path.join(models, "stylegan")
    t_path, r_path = (os.path.join(folder, f"stylegan3-{c}-ffhq-1024x1024.pkl") for c in "tr")
    os.remove(t_path)
    tiny_models.write_sg3_pkl(tiny_models.tiny_stylegan3("t"), t_path, mark_tiny=False)  # random weights, 64 px
    tiny_models.write_ada_pkl(tiny_models.tiny_generator(), r_path)  # a StyleGAN2 pickle under the R name
    found = rows()
    assert found["generator_sg3_t"][0] == "PROBLEM" and "64px / 8 W+ rows" in found["generator_sg3_t"][1], found["generator_sg3_t"]
    assert found["generator_sg3_r"][0] == "PROBLEM" and "StyleGAN2" in found["generator_sg3_r"][1], found["generator_sg3_r"]
    # FFHQ's shape (1024 px, 14 layers, W 512) at a few channels: config R (1x1 convolutions, radial filters)
    r_like = StyleGAN3Generator({**DEFAULTS, "img_resolution": 1024, "channel_base": 256, "channel_max": 8, "conv_kernel": 1, "use_radial_filters": True})
    for path in (t_path, r_path):
        os.remove(path)
        tiny_models.write_sg3_pkl(r_like, path, mark_tiny=False)
    found = rows()
    assert found["generator_sg3_r"] == ("OK", "StyleGAN3-R 1024px, 16 W+ rows, conv_kernel 1")
    assert found["generator_sg3_t"][0] == "PROBLEM" and "StyleGAN3-R (1x1 convolutions) generator, not config T" in found["generator_sg3_t"][1]
