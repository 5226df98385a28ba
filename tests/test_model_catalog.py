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
