"""The evaluate command (styleclip_core/evaluation, ``python -m styleclip_core evaluate``) end to
end on tiny stand-in models: seeded samples and photos (synthetic faces aligned at given points,
inverted with the tiny e4e), the results.md table and the results.csv rows, results that are
never overwritten, and configs and arguments refused with clear messages."""
import csv
import json
import math
import os

import numpy as np
import pytest
import torch

import synthetic_face as sf
from styleclip_core.__main__ import main
from styleclip_core.edits.metrics import METRICS
from styleclip_core.evaluation.config import parse_edits, read_config

METRIC_COLUMNS = ["clip", "clip_direction", "identity", "lpips", "psnr"]
CSV_COLUMNS = ["edit", "method", "prompt", "neutral", "settings", "face", "face_name", *METRIC_COLUMNS, "seconds"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny stand-ins the command needs, written to a temporary models folder."""
    from styleclip_core.formats import tiny_models

    base = str(tmp_path_factory.mktemp("evaluate_models"))
    tiny_models.write_models_folder(base, kinds=["generator", "mapper", "e4e", "clip", "arcface", "fs3", "lpips_alex"])
    return {k: os.path.join(base, folder, name) for k, (folder, name, _) in tiny_models.WRITERS.items()}


def command(models, config, out, *faces, extra=()):
    return ["evaluate", "--config", str(config), *faces, "--clip", models["clip"], "--arcface", models["arcface"],
            "--lpips", models["lpips_alex"], "--out", str(out), "--device", "cpu", *extra]


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def table_rows(md):
    """The rows of the markdown table of results.md, as lists of cells (header first, rule dropped)."""
    rows = [line.strip("|").split(" | ") for line in md.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [[c.strip() for c in r] for r in rows]


def test_sampled_faces(models, tmp_path, capsys):
    config = tmp_path / "edits.yaml"
    config.write_text(
        "- method: global\n  prompt: a face with blonde hair\n  neutral: a face\n"
        f"  settings: {{alpha: 3, beta: 0.05, fs3: {models['fs3']}, statistics_samples: 1000}}\n"
        "- method: optimize\n  prompt: a person with purple hair\n  settings: {steps: 2, id_lambda: 0}\n"  # no ArcFace in the loss: time
        "- method: global\n  prompt: a face with blonde hair\n"  # strength 0: the faces themselves
        f"  settings: {{alpha: 0, beta: 0.05, fs3: {models['fs3']}, statistics_samples: 1000}}\n")
    out = tmp_path / "out"
    args = command(models, config, out, "--generator", models["generator"], "--samples", "2", "--seed", "3")
    assert main(args + ["--save-images"]) == 0
    assert "wrote" in capsys.readouterr().out
    rows = read_csv(out / "results.csv")
    assert rows[0] == CSV_COLUMNS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [(r["edit"], r["method"], r["face"], r["face_name"]) for r in body] == [
        (str(e), m, str(f), f"sample {f}") for e, m in ((1, "global"), (2, "optimize"), (3, "global")) for f in (0, 1)]
    for r in body[:4]:  # real edits: every score a finite number, the time positive
        values = [float(r[k]) for k in METRIC_COLUMNS]
        assert all(math.isfinite(v) for v in values), r
        assert float(r["seconds"]) > 0 and -1 <= float(r["clip"]) <= 1 and float(r["lpips"]) > 0
    assert json.loads(body[2]["settings"]) == {"steps": 2, "lr": 0.1, "l2_lambda": 0.008, "id_lambda": 0.0, "space": "w+"}  # defaults filled in
    assert json.loads(body[0]["settings"])["fs3"] == "fs3.npy" and "num_images" not in body[0]["settings"]
    # strength 0 renders each face itself: each edit is scored against its own face, not another.
    # Not bit for bit: the originals are rendered as one batch, each edit alone, and float32
    # kernels round batches of other sizes differently (measured PSNR 130 dB, LPIPS 5e-13); two
    # different faces score about 10 dB and LPIPS 0.05
    for r in body[4:]:
        assert float(r["psnr"]) > 100 and float(r["lpips"]) < 1e-6 and math.isnan(float(r["clip_direction"]))
        assert float(r["identity"]) == pytest.approx(1.0, abs=1e-5)  # a float32 unit vector with itself (64-d)
    # results.md: one row per edit with the mean of the CSV's faces
    md = (out / "results.md").read_text(encoding="utf-8")
    table = table_rows(md)
    assert table[0] == ["method", "prompt", "neutral", "settings", *[METRICS[k][0] for k in METRIC_COLUMNS], "s / edit", "setup s"]
    assert [r[:3] for r in table[1:]] == [["global", "a face with blonde hair", "a face"], ["optimize", "a person with purple hair", "a face"],
                                         ["global", "a face with blonde hair", "a face"]]
    for k, row in enumerate(table[1:3]):
        faces = body[2 * k:2 * k + 2]
        for j, key in enumerate(METRIC_COLUMNS):
            mean = sum(float(f[key]) for f in faces) / 2
            places = 2 if key == "psnr" else 4
            assert float(row[4 + j]) == pytest.approx(mean, abs=0.51 * 10 ** -places), (key, row)  # rounded to the places shown
        assert float(row[-2]) == pytest.approx(sum(float(f["seconds"]) for f in faces) / 2, abs=0.0006)
    assert "2 sampled faces (seed 3, truncation 0.7)" in md and table[3][5] == "n/a" and "directional CLIP is undefined" in md
    images = sorted(os.listdir(out / "images"))
    assert images == sorted([f"face{i:03}_original.png" for i in (0, 1)] + [f"edit{k:02}_{m}_face{i:03}.png" for k, m in ((1, "global"), (2, "optimize"), (3, "global")) for i in (0, 1)])
    # a second run never overwrites: numbered files beside the first ones
    before = {p: (out / p).read_bytes() for p in ("results.md", "results.csv")}
    config.write_text(config.read_text().split("- method: optimize")[0])
    assert main(args + ["--save-images"]) == 0
    assert {p: (out / p).read_bytes() for p in before} == before
    assert len(read_csv(out / "results_00001.csv")) == 1 + 2 and (out / "results_00001.md").exists() and (out / "images_00001").is_dir()
    assert sorted(os.listdir(out / "images")) == images


def test_identity_weight_of_optimize_edits(models):
    """id_lambda left out: StyleCLIP's notebook weight 0.005 with an ArcFace model, else no identity loss."""
    from styleclip_core.evaluation import runner
    from styleclip_core.formats.arcface_files import load_arcface
    from styleclip_core.formats.generator_files import load_generator

    spec = parse_edits([{"method": "optimize", "prompt": "a smiling face"}])[0]
    g = load_generator(models["generator"])
    with_arcface, _ = runner.prepare_edit(spec, runner.Models(g, None, load_arcface(models["arcface"])))
    without, _ = runner.prepare_edit(spec, runner.Models(g, None))
    assert spec.settings["id_lambda"] is None and with_arcface.settings["id_lambda"] == 0.005 and without.settings["id_lambda"] == 0.0


def test_photos(models, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    settings = [dict(width=320, height=288, center=(150.0, 130.0), angle_deg=12.0), dict(width=300, height=300, center=(160.0, 140.0), angle_deg=-8.0, scale=1.2)]
    points = [sf.write_face_png(photos / f"face_{i}.png", **s) for i, s in enumerate(settings)]
    (photos / "notes.txt").write_text("not a photo")
    points_file = tmp_path / "points.txt"
    points_file.write_text("\n".join(" ".join(f"{v:.3f}" for v in p.array().flatten()) for p in points))
    config = tmp_path / "edits.json"
    config.write_text(json.dumps([
        {"method": "mapper", "settings": {"mapper": os.path.relpath(models["mapper"], tmp_path), "strength": 2}},  # relative to the config
        {"method": "global", "prompt": "a face with blonde hair", "settings": {"alpha": 4, "beta": 0.05, "statistics_samples": 1000}},
    ]))
    out = tmp_path / "out"
    assert main(command(models, config, out, "--photos", str(photos), "--e4e", models["e4e"], "--points", str(points_file),
                        extra=("--fs3", models["fs3"]))) == 0
    rows = read_csv(out / "results.csv")
    assert rows[0] == CSV_COLUMNS and len(rows) == 1 + 2 * 2
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [(r["method"], r["prompt"], r["face_name"]) for r in body] == [
        ("mapper", "purple hair", "face_0.png"), ("mapper", "purple hair", "face_1.png"),  # the mapper file's own text
        ("global", "a face with blonde hair", "face_0.png"), ("global", "a face with blonde hair", "face_1.png")]
    assert all(math.isfinite(float(r[k])) for r in body for k in METRIC_COLUMNS)
    assert json.loads(body[2]["settings"])["fs3"] == "fs3.npy"  # the command's --fs3
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "2 photos from" in md and "aligned at the given points, inverted with e4e" in md and len(table_rows(md)) == 1 + 2


def test_photos_are_inverted_faces(models, tmp_path):
    """The faces of the photo path are e4e's codes of the aligned crops (what Invert Images gives)."""
    from styleclip_core.evaluation import runner
    from styleclip_core.formats.e4e_files import load_e4e
    from styleclip_core.models.e4e import invert
    from styleclip_core.photos import align

    encoder, _ = load_e4e(models["e4e"])
    path = tmp_path / "a.png"
    pts = sf.write_face_png(path)
    faces = runner.photo_faces(encoder, [str(path)], "points", " ".join(map(str, pts.array().flatten())))
    crop, _ = align.align_face(sf.face_photo()[0], pts, 256)
    assert torch.equal(faces.latents.w_plus, invert(encoder, torch.from_numpy(np.array(crop))[None].float() / 255))
    assert faces.names == ["a.png"]


@pytest.mark.parametrize("items, words", [
    ({"method": "global"}, ["a list of edits", "found dict"]),
    ([{"method": "interfacegan", "prompt": "x"}], ["edit 1", "method to be one of global, optimize, mapper", "'interfacegan'"]),
    ([{"method": "optimize", "prompt": "x"}, {"method": "optimize"}], ["edit 2", "needs a prompt"]),
    ([{"method": "optimize", "prompt": "x", "settings": {"stepz": 3}}], ["unknown settings ['stepz']", "steps, lr, l2_lambda, id_lambda, space"]),
    ([{"method": "optimize", "prompt": "x", "settings": {"steps": 2.5}}], ["settings.steps", "whole number", "2.5"]),
    ([{"method": "optimize", "prompt": "x", "settings": {"space": "z"}}], ["settings.space", "w+, s", "'z'"]),
    ([{"method": "global", "prompt": "x", "settings": {"alpha": "strong"}}], ["settings.alpha", "finite number", "'strong'"]),
    ([{"method": "mapper"}], ["needs settings.mapper"]),
    ([{"method": "mapper", "settings": {"mapper": "nowhere.pt"}}], ["settings.mapper", "'nowhere.pt'", "not a file"]),
    ([{"method": "global", "prompt": "x", "strength": 2}], ["unknown keys ['strength']"]),
])
def test_bad_configs_are_clear_errors(items, words):
    with pytest.raises(ValueError) as e:
        parse_edits(items, "edits.yaml")
    for w in words:
        assert w in str(e.value), str(e.value)


def test_yaml_and_json_configs_read_the_same(tmp_path):
    (tmp_path / "a.yaml").write_text("- method: optimize\n  prompt: a smiling face\n  settings:\n    steps: 40\n")
    (tmp_path / "a.json").write_text('[{"method": "optimize", "prompt": "a smiling face", "settings": {"steps": 40}}]')
    assert read_config(str(tmp_path / "a.yaml")) == read_config(str(tmp_path / "a.json"))
    assert read_config(str(tmp_path / "a.json"))[0].settings == {"steps": 40, "lr": 0.1, "l2_lambda": 0.008, "id_lambda": None, "space": "w+"}
    (tmp_path / "b.json").write_text("- method: optimize")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_config(str(tmp_path / "b.json"))


def test_bad_arguments(models, tmp_path, capsys):
    config = tmp_path / "edits.json"
    config.write_text('[{"method": "optimize", "prompt": "x", "settings": {"steps": 1, "id_lambda": 0.1}}]')
    for faces, words in ((["--generator", models["generator"]], "either --samples N"),
                         (["--generator", models["generator"], "--photos", str(tmp_path)], "--photos needs --e4e"),
                         (["--samples", "1"], "--generator is needed")):
        with pytest.raises(SystemExit) as e:
            main(command(models, config, tmp_path / "out", *faces))
        assert e.value.code == 2 and words in capsys.readouterr().err
    # an identity loss without ArcFace: a message and status 1, and nothing written
    args = command(models, config, tmp_path / "out", "--generator", models["generator"], "--samples", "1")
    args.remove("--arcface")
    args.remove(models["arcface"])
    assert main(args) == 1
    assert "id_lambda 0.1 needs an ArcFace model (--arcface)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out" / "results.md")



def test_photos_found_by_a_detector(models, tmp_path, monkeypatch):
    """Without --points the faces are found by the built-in detector, the largest face of each
    photo. MediaPipe itself is tested on a real photo in test_real_photo.py (importing it takes
    10 s here); a stand-in detector that reports the synthetic face's points and a smaller face
    stands in for it."""
    from PIL import Image

    from styleclip_core.evaluation import runner
    from styleclip_core.formats.e4e_files import load_e4e
    from styleclip_core.models.e4e import invert
    from styleclip_core.photos import align

    pixels, pts = sf.face_photo()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "b_grey.png")
    small = sf.face_points((60.0, 60.0), 0.0, 0.5)

    class Detector:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def detect(self, rgb):
            return [small, pts] if rgb.shape[0] > 64 else []

    monkeypatch.setattr(align, "builtin_detector", lambda *a, **k: Detector())
    encoder, _ = load_e4e(models["e4e"])
    faces = runner.photo_faces(encoder, [str(tmp_path / "a.png")], "detect")
    crop, _ = align.align_face(pixels, pts, 256)
    assert torch.equal(faces.latents.w_plus, invert(encoder, torch.from_numpy(np.array(crop))[None].float() / 255))
    with pytest.raises(align.FaceNotFoundError, match="no face found in .*b_grey.png"):
        runner.photo_faces(encoder, runner.list_photos(str(tmp_path)), "detect")
