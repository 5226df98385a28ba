"""The edit-folder command (styleclip_core/evaluation/edit_folder.py, ``python -m styleclip_core
edit-folder``) on tiny stand-in models and synthetic face photos aligned at given points (no
MediaPipe): a folder with a broken file (two edited photos and a failures.log line naming it),
a rerun that keeps the done outputs untouched and appends only its own failure, pivotal tuning
and the projector changing the result, sharding by RANK / WORLD_SIZE, and recipes, points files
and arguments refused with clear messages."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import synthetic_face as sf
from styleclip_core.__main__ import main
from styleclip_core.evaluation import edit_folder as ef
from styleclip_core.evaluation.photo_input import Aligner, read_points
from styleclip_core.photos import align

# Photos larger than the face's crop square (side about 250 px), so that paste-back leaves a
# border of the photo untouched.
PHOTO_SETTINGS = [dict(width=400, height=360, center=(190.0, 160.0), angle_deg=10.0),
                  dict(width=380, height=380, center=(200.0, 170.0), angle_deg=-6.0, scale=1.1)]
MAPPER_RECIPE = {"note": "tiny mapper edit", "edit": {"method": "mapper", "settings": {"mapper": "purple_hair.pt", "strength": 2}}}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A ComfyUI-style models folder of the tiny stand-ins the recipes here need (no CLIP: mapper
    edits do not use it)."""
    from styleclip_core.formats import tiny_models

    base = str(tmp_path_factory.mktemp("edit_folder_models"))
    tiny_models.write_models_folder(base, kinds=["mapper", "e4e", "lpips_alex", "lpips_vgg"])
    return base


@pytest.fixture(scope="module")
def kit(models_dir):
    """The models of a recipe with every step (loaded once for the library-level tests)."""
    recipe = ef.parse_recipe({**MAPPER_RECIPE, "pivotal_tuning": True, "projector": True}, search=search(models_dir))
    return ef.load_models(recipe, ef.model_paths({}, models_dir), "cpu")


def search(models_dir):
    return {"mapper": [os.path.join(models_dir, "styleclip_mappers")]}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(folder, points file, {name: FacePoints}): two synthetic faces and a broken 'photo' (text
    under a .png name), and the points file naming the faces."""
    folder = tmp_path_factory.mktemp("edit_folder_photos")
    points = {f"face_{i}.png": sf.write_face_png(folder / f"face_{i}.png", **s) for i, s in enumerate(PHOTO_SETTINGS)}
    (folder / "broken.png").write_text("this is not an image")
    (folder / "notes.txt").write_text("not a photo: ignored")
    points_file = tmp_path_factory.mktemp("edit_folder_points") / "points.txt"
    points_file.write_text("".join(f"{name} " + " ".join(f"{v:.3f}" for v in p.array().flatten()) + "\n" for name, p in points.items()))
    return str(folder), str(points_file), points


def write_recipe(tmp_path, recipe, name="recipe.json"):
    path = tmp_path / name
    path.write_text(json.dumps(recipe))
    return str(path)


def run_cli(models_dir, recipe_path, photo_dir, points_file, out, *extra):
    return main(["edit-folder", "--recipe", recipe_path, "--photos", photo_dir, "--out", str(out), "--models-dir", models_dir,
                 "--points", points_file, "--device", "cpu", "--no-progress", *extra])


def failure_lines(out):
    with open(os.path.join(out, ef.FAILURES), encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f]


def outside_mask(path, points):
    """True where paste-back leaves the photo alone: its blend mask is exactly 0 there."""
    pixels = np.array(Image.open(path).convert("RGB"))
    _, alignment = align.align_face(pixels, points, 256)
    photo = torch.from_numpy(pixels)[None].float() / 255
    _, mask = align.paste_back(photo, torch.zeros(1, 64, 64, 3), [alignment])
    return pixels, mask[0].numpy() == 0


def test_folder_with_a_broken_photo_and_a_rerun(models_dir, photos, tmp_path, capsys):
    photo_dir, points_file, points = photos
    recipe = write_recipe(tmp_path, MAPPER_RECIPE)  # "purple_hair.pt": found in --models-dir's styleclip_mappers
    out = tmp_path / "out"
    assert run_cli(models_dir, recipe, photo_dir, points_file, out) == 1  # a photo failed
    printed = capsys.readouterr()
    assert "3 photos: 2 written, 0 already done (skipped), 1 failed" in printed.out
    assert sorted(os.listdir(out)) == ["face_0.png", "face_1.png", ef.FAILURES]  # no .partial file left
    (first,) = failure_lines(out)
    assert first[1:3] == ["broken.png", "read"] and "broken.png is not a readable image" in first[3], first
    for name, pts in points.items():
        edited = np.array(Image.open(out / name))
        photo, outside = outside_mask(os.path.join(photo_dir, name), pts)
        assert edited.shape == photo.shape and outside.any() and (~outside).any()
        # outside the blend mask the output is the photo exactly: photo + (face - photo) * 0 is the
        # photo's value k / 255, and round(k / 255 * 255) is k again in float32
        assert np.array_equal(edited[outside], photo[outside])
        assert not np.array_equal(edited[~outside], photo[~outside])  # the face was replaced
    # a rerun skips what is done (byte for byte, not touched) and appends only its own failure
    done = {name: ((out / name).read_bytes(), os.stat(out / name).st_mtime_ns) for name in points}
    assert run_cli(models_dir, recipe, photo_dir, points_file, out) == 1
    assert "3 photos: 0 written, 2 already done (skipped), 1 failed" in capsys.readouterr().out
    assert {name: ((out / name).read_bytes(), os.stat(out / name).st_mtime_ns) for name in points} == done
    lines = failure_lines(out)
    assert len(lines) == 2 and lines[0] == first and lines[1][1:3] == ["broken.png", "read"]
    # without the broken file every photo is done: status 0, nothing written again
    os.rename(os.path.join(photo_dir, "broken.png"), tmp_path / "broken.png")
    try:
        assert run_cli(models_dir, recipe, photo_dir, points_file, out) == 0
    finally:
        os.rename(tmp_path / "broken.png", os.path.join(photo_dir, "broken.png"))
    assert "2 photos: 0 written, 2 already done (skipped), 0 failed" in capsys.readouterr().out
    assert len(failure_lines(out)) == 2


def edit_one(kit, recipe, path, points):
    with Aligner("points", {path: points}, recipe.align_size(kit.models.generator.size)) as aligner:
        return ef.PhotoEditor(recipe, kit, aligner).edit(path)


def test_pivotal_tuning_and_the_projector_change_the_result(kit, photos, models_dir):
    photo_dir, _, points = photos
    path = os.path.join(photo_dir, "face_0.png")
    photo, outside = outside_mask(path, points["face_0.png"])

    def edited(**steps):
        recipe = ef.parse_recipe({"edit": None, **steps})  # the reconstruction: what the tuning fits
        return edit_one(kit, recipe, path, points["face_0.png"])

    def error(image):  # mean squared pixel error to the photo, over the pasted face
        return float(((image[~outside].astype(np.float64) - photo[~outside]) ** 2).mean())

    e4e = edited()
    tuned = edited(pivotal_tuning={"steps": 3, "lpips_threshold": 0})  # threshold 0: every step applied
    projected = edited(projector={"steps": 2, "w_avg_samples": 20})
    for image in (tuned, projected):
        assert np.array_equal(image[outside], e4e[outside]) and not np.array_equal(image[~outside], e4e[~outside])
    # three steps of PTI (lr 3e-4) bring the reconstruction toward the photo: measured 0.898 of e4e's
    # squared error over the pasted face (the same at 1 and 2 threads; a tiny random generator, 350
    # steps go much further). 0.97 is a margin for other CPUs' summation orders, which change the
    # 8-bit outputs by a level at a few pixels, far less than the 10 % measured
    assert error(tuned) < 0.97 * error(e4e), (error(tuned), error(e4e))
    # with an edit, the tuned generator renders the edit too: the result differs from the untuned edit
    recipe = ef.parse_recipe({**MAPPER_RECIPE, "pivotal_tuning": {"steps": 2, "lpips_threshold": 0}}, search=search(models_dir))
    untuned = ef.parse_recipe(MAPPER_RECIPE, search=search(models_dir))
    assert not np.array_equal(edit_one(kit, recipe, path, points["face_0.png"]), edit_one(kit, untuned, path, points["face_0.png"]))


def test_already_aligned_photos(kit, tmp_path):
    """--aligned: the photo is the crop, the whole photo is pasted over (feathered at its edges)."""
    crop, _ = align.align_face(*sf.face_photo(), 256)
    path = str(tmp_path / "crop.png")
    Image.fromarray(crop).save(path)
    recipe = ef.parse_recipe({"edit": None, "paste_back": {"feather": 0}})
    with Aligner("aligned", None, 256) as aligner:
        out = ef.PhotoEditor(recipe, kit, aligner).edit(path)
    assert out.shape == crop.shape and (out != crop).any(-1).mean() > 0.9


def test_ranks_take_disjoint_shares(kit, photos, models_dir, tmp_path, monkeypatch):
    """RANK / WORLD_SIZE (as torchrun sets them; no process group): rank r edits photos r, r + 2, ...
    of the sorted list, and both ranks together edit every photo once."""
    photo_dir, points_file, _ = photos
    listed = ef.list_photos(photo_dir)
    assert [os.path.basename(p) for p in listed] == ["broken.png", "face_0.png", "face_1.png"]
    recipe = ef.parse_recipe(MAPPER_RECIPE, search=search(models_dir))
    text = open(points_file).read()
    out = tmp_path / "out"
    done, summaries = [], []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        before = set(os.listdir(out)) if out.exists() else set()
        summary = ef.edit_folder(recipe, kit, listed, str(out), "points", text, show_progress=False)
        summaries.append(summary)
        new = set(os.listdir(out)) - before - {ef.FAILURES}
        done.append(new | {f[0] for f in summary.failures})
    assert done == [{"broken.png", "face_1.png"}, {"face_0.png"}]  # every 2nd photo from the rank's own
    assert [(s.share, s.written, s.failed) for s in summaries] == [(2, 1, 1), (1, 1, 0)]
    assert "rank 1/2: 1 of 3 photos: 1 written" in summaries[1].line(str(out), 1, 2)
    # the same photo edited alone, in one process: the same bytes (the same code on the same inputs)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    alone = tmp_path / "alone"
    ef.edit_folder(recipe, kit, listed[1:], str(alone), "points", text, show_progress=False)
    assert sorted(os.listdir(alone)) == ["face_0.png", "face_1.png"]
    for name in ("face_0.png", "face_1.png"):
        assert (alone / name).read_bytes() == (out / name).read_bytes()


@pytest.mark.parametrize("recipe, words", [
    ([MAPPER_RECIPE], ["expected a mapping with the keys note, align", "found list"]),
    ({"edits": []}, ["unknown keys ['edits']", "a recipe has only note, align, projector, pivotal_tuning, edit, paste_back"]),
    ({"align": {"size": 256}}, ["expected edit", "or null for the reconstruction alone", "found no edit key"]),
    ({"edit": {"method": "styleclip", "prompt": "x"}}, ["recipe.json: edit: expected method to be one of global, optimize, mapper", "'styleclip'"]),
    ({"edit": {"method": "global"}}, ["edit: the global method needs a prompt"]),
    ({"edit": {"method": "mapper", "settings": {"mapper": "nowhere.pt"}}}, ["settings.mapper names 'nowhere.pt', which is not a file"]),
    ({"edit": None, "pivotal_tuning": {"steps": 2.5}}, ["expected pivotal_tuning.steps to be a whole number of at least 1, found 2.5"]),
    ({"edit": None, "pivotal_tuning": {"step": 3}}, ["unknown pivotal_tuning settings ['step']", "steps, learning_rate, lpips_threshold"]),
    ({"edit": None, "pivotal_tuning": "yes"}, ["expected pivotal_tuning to be a mapping of its settings", "null or false for none", "found str 'yes'"]),
    ({"edit": None, "pivotal_tuning": {"locality": "true"}}, ["expected pivotal_tuning.locality to be true or false, found 'true'"]),
    ({"edit": None, "pivotal_tuning": {"learning_rate": 0}}, ["expected pivotal_tuning.learning_rate to be a number above 0, found 0"]),
    ({"edit": None, "projector": {"space": "z"}}, ["expected projector.space to be one of w, w+, found 'z'"]),
    ({"edit": None, "align": {"size": 512}}, ["expected align.size to be one of auto, 256, 1024, found 512"]),
    ({"edit": None, "align": [256]}, ["expected align to be a mapping of its settings (size), found list [256]"]),
    ({"edit": None, "paste_back": {"feather": 0.9}}, ["expected paste_back.feather to be a number from 0 to 0.5, found 0.9"]),
    ({"edit": None, "note": 3}, ["expected note to be a text"]),
])
def test_bad_recipes_are_clear_errors(recipe, words):
    with pytest.raises(ValueError) as e:
        ef.parse_recipe(recipe, "recipe.json")
    for w in words:
        assert w in str(e.value), str(e.value)


def test_recipe_defaults_and_sizes():
    r = ef.parse_recipe({"edit": None, "pivotal_tuning": True, "projector": {"steps": 9}})
    assert r.pivotal_tuning == {"steps": 350, "learning_rate": 3e-4, "lpips_threshold": 0.06, "l2_weight": 1.0, "lpips_weight": 1.0,
                                "locality": False, "seed": 0}  # PTI's hyperparameters.py
    assert r.projector["steps"] == 9 and r.projector["w_avg_samples"] == 600 and r.paste_back == {"feather": 0.1}
    # 'auto': FFHQ's 1024 px crops when tuning compares with 1024 px renders, e4e's 256 otherwise
    assert (r.align_size(1024), r.align_size(256), ef.parse_recipe({"edit": None}).align_size(1024)) == (1024, 256, 256)
    assert ef.parse_recipe({"edit": None, "pivotal_tuning": False, "projector": None}).pivotal_tuning is None


def test_bad_recipe_file_stops_before_any_model_loads(tmp_path, photos, capsys):
    """No model is given at all: the recipe's error comes first, and nothing is written."""
    photo_dir, _, _ = photos
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"edit": null, "pivotal_tuning": {"steps": -1}}')
    args = ["edit-folder", "--recipe", str(recipe), "--photos", photo_dir, "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main(args) == 1
    assert "recipe.json: expected pivotal_tuning.steps to be a whole number of at least 1, found -1" in capsys.readouterr().err
    recipe.write_text('{"edit": null,}')
    assert main(args) == 1 and "not valid JSON" in capsys.readouterr().err
    recipe.write_text('{"edit": null, "pivotal_tuning": {}}')  # a good recipe: now the missing models are named
    assert main(args) == 1 and "give --e4e e4e_ffhq_encode.pt or --models-dir with e4e/e4e_ffhq_encode.pt" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as e:
        main(args + ["--points", "p.txt", "--aligned"])
    assert e.value.code == 2 and "exclude each other" in capsys.readouterr().err


def test_models_the_recipe_needs_are_named(models_dir):
    paths = ef.model_paths({}, models_dir)
    assert paths["clip"] is None and paths["e4e"].endswith(os.path.join("e4e", "e4e_ffhq_encode.pt"))
    with pytest.raises(ValueError, match="optimize edit needs CLIP: give --clip ViT-B-32.pt or --models-dir with openclip/ViT-B-32.pt; "):
        ef.load_models(ef.parse_recipe({"edit": {"method": "optimize", "prompt": "a smile"}}), paths, "cpu", models_dir=models_dir)
    no_lpips = dict(paths, lpips=None)
    with pytest.raises(ValueError, match="pivotal_tuning needs LPIPS-alex .*--lpips alexnet-owt-7be5be79.pth"):
        ef.load_models(ef.parse_recipe({"edit": None, "pivotal_tuning": True}), no_lpips, "cpu")
    with pytest.raises(ValueError, match="--clip: expected a model file, found 'nowhere.pt'"):
        ef.model_paths({"clip": "nowhere.pt"}, models_dir)


def test_points_files_and_output_names(tmp_path):
    paths = [str(tmp_path / n) for n in ("a.jpg", "a.png", "b_2.png")]
    line = "10 20 50 20 15 60 45 60"
    by_order = read_points("\n".join([line] * 3), paths)
    assert list(by_order) == paths and by_order[paths[0]] == align.parse_points(line, 1)[0]
    by_name = read_points(f"b_2.png: {line}\na.png {line}\n", paths)  # the digit in b_2 is not a point
    assert by_name[paths[0]] is None and by_name[paths[1]] == by_name[paths[2]] == by_order[paths[0]]
    with pytest.raises(ValueError, match="line 1: expected a photo's file name and 8 numbers, found 'c.png"):
        read_points(f"c.png {line}", paths)
    with pytest.raises(ValueError, match=r"2 lines for 3 images.*photos in name order: a.jpg, a.png, b_2.png"):
        read_points(f"{line}\n{line}", paths)
    with pytest.raises(ValueError, match="has no line for a.jpg"):
        Aligner("points", by_name).align(paths[0], np.zeros((80, 80, 3), np.uint8))
    # two photos of one name but the extension keep their whole name, so their outputs differ
    assert ef.output_names(paths) == {paths[0]: "a.jpg.png", paths[1]: "a.png.png", paths[2]: "b_2.png"}


def test_torchrun_sums_the_ranks(models_dir, photos, tmp_path):
    """Under torchrun (two CPU ranks, gloo) the command joins the process group, each rank edits
    its share, and rank 0 alone prints the totals after the barrier; both exit 1 (a photo failed)."""
    import subprocess
    import sys

    photo_dir, points_file, _ = photos
    recipe = write_recipe(tmp_path, MAPPER_RECIPE)
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "styleclip_core",
                          "edit-folder", "--recipe", recipe, "--photos", photo_dir, "--out", str(out), "--models-dir", models_dir,
                          "--points", points_file, "--device", "cpu", "--no-progress"], capture_output=True, text=True, env=env, timeout=240)
    summaries = [line for line in run.stdout.splitlines() if "already done" in line]
    assert run.returncode != 0 and len(summaries) == 1, run.stdout + run.stderr
    assert summaries[0].startswith(f"edit-folder: 3 photos: 2 written, 0 already done (skipped), 1 failed (see {out / ef.FAILURES})")
    assert sorted(os.listdir(out)) == ["face_0.png", "face_1.png", ef.FAILURES] and len(failure_lines(out)) == 1
