"""Every shipped workflow runs end to end through the pack's nodes with the tiny models, as shipped
(the photo workflows with the built-in face detector on the Example Portrait), and saves what it
should: the number of images its batches make, at their size, none of them flat, the faces of a
batch different, edits different from their originals, and latents that load back with the batch
they were saved with."""
import glob
import itertools
import json
import os
import re
from typing import NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, skip_without_photo_deps
from example_video import EXAMPLE_CLIP_FILE

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
W_PLUS = (10, 64)  # rows and width of the tiny stand-in generator's W+ (e4e's bundled one too)
PHOTO = (512, 512)  # height, width of the Example Portrait (scikit-image's astronaut.png) the photo workflows start from
CLIP = (352, 384)  # height, width of the Example Clip's frames (the video workflows)


class Images(NamedTuple):
    """Images a SaveImage saves: how many, their size, and how many tiles a grid holds."""
    count: int
    height: int = 64
    width: int = 64
    tiles: tuple = (1, 1)  # rows, columns of an Image Grid


class Video(NamedTuple):
    """One mp4 a Save Video writes: its frames and their size."""
    frames: int
    height: int
    width: int


class Codes(NamedTuple):
    """One .safetensors a Save Latents writes: the batch it holds."""
    batch: int


# What each workflow saves under the output folder, by filename prefix (its Save node's widget),
# from the batches its widgets make: Sample Latents' batch_size, the alphas of a sweep, one photo.
# "differ": pairs of outputs (original, edit) whose images, or codes, must differ.
# "renders": saved latents that the workflow's generator renders into the saved images.
# Saved latents are read back by Load Latents (styleclip_core's loader, from its file list).
SAVED = {
    "01_generate_faces.json": dict(
        outputs={"styleclip/faces": Images(4), "styleclip/faces_latents": Codes(4)},
        renders={"styleclip/faces_latents": "styleclip/faces"}),
    "02_text_edit_optimization.json": dict(
        outputs={"styleclip/text_edit_original": Images(1), "styleclip/text_edit": Images(1),
                 "styleclip/text_edit_original_latents": Codes(1), "styleclip/text_edit_latents": Codes(1)},
        differ=[("styleclip/text_edit_original", "styleclip/text_edit"), ("styleclip/text_edit_original_latents", "styleclip/text_edit_latents")],
        renders={"styleclip/text_edit_original_latents": "styleclip/text_edit_original", "styleclip/text_edit_latents": "styleclip/text_edit"}),
    "03_invert_photo.json": dict(
        outputs={"styleclip/photo_reconstructed": Images(1, *PHOTO), "styleclip/photo_latents": Codes(1)}),
    "04_mapper_edit.json": dict(
        outputs={"styleclip/mapper_original": Images(4), "styleclip/mapper_edited": Images(4)},
        differ=[("styleclip/mapper_original", "styleclip/mapper_edited")]),
    "05_local_edit_face_parsing.json": dict(
        outputs={"styleclip/local_original": Images(2), "styleclip/local_hair": Images(2)},
        differ=[("styleclip/local_original", "styleclip/local_hair")]),
    "06_local_edit_core_masks.json": dict(
        outputs={"styleclip/local_box": Images(2)}),
    "07_mapper_train_and_apply.json": dict(
        outputs={"styleclip/trained_mapper_original": Images(4), "styleclip/trained_mapper_edited": Images(4)},
        differ=[("styleclip/trained_mapper_original", "styleclip/trained_mapper_edited")]),
    "08_global_direction.json": dict(  # 2 faces x 5 alphas, one grid row per face
        outputs={"styleclip/global_blonde_sweep": Images(1, 2 * 64, 5 * 64, tiles=(2, 5)),
                 "styleclip/global_blonde_sweep_local": Images(1, 2 * 64, 5 * 64, tiles=(2, 5))},
        differ=[("styleclip/global_blonde_sweep", "styleclip/global_blonde_sweep_local")]),
    "09_masked_text_edit.json": dict(
        outputs={"styleclip/masked_text_edit_original": Images(1), "styleclip/masked_text_edit": Images(1)},
        differ=[("styleclip/masked_text_edit_original", "styleclip/masked_text_edit")]),
    "10_edit_photo_by_text.json": dict(
        outputs={"styleclip/photo_text_edit": Images(1, *PHOTO), "styleclip/photo_text_edit_latents": Codes(1)}),
    "11_photo_pti_global_edit.json": dict(
        outputs={"styleclip/photo_pti_global_edit": Images(1, *PHOTO)}),
    "12_photo_pti_text_edit.json": dict(
        outputs={"styleclip/photo_pti_text_edit": Images(1, *PHOTO), "styleclip/photo_pti_text_edit_latents": Codes(1)}),
    "13_compare_e4e_pti.json": dict(  # e4e | e4e + PTI | photo, at the generator's size
        outputs={"styleclip/e4e_vs_pti": Images(1, 64, 3 * 64, tiles=(1, 3))}, tables=("ID", "LPIPS", "PSNR", "**mean**")),
    "14_sliders_text_and_mapper.json": dict(
        outputs={"styleclip/sliders_text_and_mapper": Images(1)}),
    "15_sliders_sefa.json": dict(  # the strip: component 0 at 5 strengths
        outputs={"styleclip/sliders_sefa": Images(1), "styleclip/sliders_sefa_strip": Images(1, 64, 5 * 64, tiles=(1, 5))},
        differ=[]),
    "16_sliders_preset_reload.json": dict(  # needs the preset workflow 14 saves
        outputs={"styleclip/sliders_preset": Images(4)}, needs=("14_sliders_text_and_mapper.json", "smile_purple_hair")),
    # the Example Clip (16 frames of 352 x 384) edited and saved at its own size; the table of Video Consistency shown
    "17_video_edit_example_clip.json": dict(
        outputs={"styleclip/video_edit": Video(16, *CLIP)}, tables=("flicker", "identity, consecutive output frames")),
    "18_video_edit_your_clip.json": dict(
        outputs={"styleclip/video_edit": Video(16, *CLIP)}, tables=("flicker", "identity, consecutive output frames"), needs_video=True),
    # 4 faces by the original generator (top row) and the adapted one (bottom row): every tile differs, so the adaptation shows on each face
    "19_nada_photo_to_sketch.json": dict(
        outputs={"styleclip/nada_photo_to_sketch": Images(1, 2 * 64, 4 * 64, tiles=(2, 4))}),
    # resumes workflow 19's checkpoint when 19 ran before in the session, else trains it
    "20_nada_photo_edit.json": dict(
        outputs={"styleclip/nada_photo_edit": Images(1, *PHOTO)}),
    # the tiny StyleGAN3-T stand-in (64 px): 2 faces above their text edits; the same faces along SeFa component 0 at 5 strengths
    "21_stylegan3_sample_and_edit.json": dict(
        outputs={"styleclip/sg3_text_edit": Images(1, 2 * 64, 2 * 64, tiles=(2, 2)),
                 "styleclip/sg3_sefa_sweep": Images(1, 2 * 64, 5 * 64, tiles=(2, 5))}),
}


def test_the_shipped_workflows():
    assert [os.path.basename(p) for p in WORKFLOWS] == sorted(SAVED)


def _output_files(comfy):
    out = comfy.folder_paths.get_output_directory()
    return {os.path.relpath(os.path.join(root, f), out).replace(os.sep, "/") for root, _, files in os.walk(out) for f in files}


def _by_prefix(files):
    """{prefix: [files]}: SaveImage and Save Latents name a file prefix_NNNNN_.ext."""
    grouped = {}
    for f in sorted(files):
        match = re.fullmatch(r"(.+)_\d{5}_\.(png|safetensors|mp4)", f)
        assert match, f"{f}: not a file a Save node names"
        grouped.setdefault(match[1], []).append(f)
    return grouped


def _image(comfy, name):
    img = Image.open(os.path.join(comfy.folder_paths.get_output_directory(), name))
    assert img.mode == "RGB", (name, img.mode)
    return np.asarray(img).astype(np.float32) / 255


def _video_frames(comfy, name):
    """The frames of a saved mp4, [T, H, W, 3] in [0, 1], decoded as core Load Video decodes them."""
    video = comfy.harness.VideoStandIn(os.path.join(comfy.folder_paths.get_output_directory(), name))
    return video.get_components().images.numpy()


def _distinct(images, what):
    """No two of the images alike: each pair differs by over 1/255 on average."""
    for (i, a), (j, b) in itertools.combinations(enumerate(images), 2):
        assert np.abs(a - b).mean() > 1 / 255, f"{what}: images {i} and {j} are alike"


class _Watched:
    """A node class whose runs are noted in ``running`` (the harness runs one node at a time)."""

    def __init__(self, cls, name, running):
        self._cls, self._name, self._running = cls, name, running

    def __getattr__(self, attr):
        return getattr(self._cls, attr)

    def execute(self, **kwargs):
        self._running[:] = [self._name]
        return self._cls.execute(**kwargs)

    def with_hidden(self, holder):
        """The harness's copy of the class with ComfyUI's hidden inputs, still watched."""
        return _Watched(type(self._cls.__name__, (self._cls,), {"hidden": holder}), self._name, self._running)


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_runs_and_saves(comfy, path, monkeypatch):
    """... and every node that shows an image on the canvas while it runs (a preview on its
    progress bar) or after (images in its result) is one the layout gives room for a preview."""
    from build_workflows import IMAGE_NODES
    from comfy.utils import ProgressBar

    with open(path) as f:
        workflow = skip_without_photo_deps(json.load(f))
    # a new user's input folder holds no image of ours: the photo workflows start from Example Portrait
    assert "LoadImage" not in {n["type"] for n in workflow["nodes"]}
    expected = SAVED[os.path.basename(path)]
    if expected.get("needs_video") and not os.path.exists(os.path.join(comfy.folder_paths.get_input_directory(), EXAMPLE_CLIP_FILE)):
        pytest.skip("PyAV (av) is not installed: the clip for Load Video was not written (the test install has it)")
    info = comfy.harness.object_info(comfy.nodes)
    if expected.get("needs"):  # a preset another workflow saves: run that one first when this test runs alone
        other, preset = expected["needs"]
        if not os.path.exists(os.path.join(comfy.folder_paths.get_user_directory(), "styleclip_presets", preset + ".json")):
            with open(os.path.join(ROOT, "workflows", other)) as f:
                comfy.harness.execute(comfy.harness.ui_to_prompt(json.load(f), info), comfy.nodes)
    prompt = comfy.harness.ui_to_prompt(workflow, info)
    before = _output_files(comfy)
    running, shown = [], set()
    update = ProgressBar.update_absolute

    def update_absolute(self, value, total=None, preview=None):
        if preview is not None:
            shown.add(running[0])
        return update(self, value, total, preview)

    monkeypatch.setattr(ProgressBar, "update_absolute", update_absolute)
    results = comfy.harness.execute(prompt, {name: _Watched(cls, name, running) for name, cls in comfy.nodes.items()})
    monkeypatch.setattr(ProgressBar, "update_absolute", update)
    shown |= {prompt[k]["class_type"] for k, (_, ui) in results.items() if ui and ui.get("images")}
    assert shown and shown <= IMAGE_NODES, f"nodes that show images but are laid out without room for them: {shown - IMAGE_NODES}"
    for k, (_, ui) in results.items():  # Preview Any shows what it is given as text (workflow 13: the Edit Metrics tables)
        if prompt[k]["class_type"] == "PreviewAny":
            assert ui and ui["text"][0].strip(), f"Preview Any {k} shows nothing"
            if expected.get("tables"):
                assert all(word in ui["text"][0] for word in expected["tables"]), ui["text"][0]
    new = _output_files(comfy) - before
    saved = _by_prefix(new)
    assert {k: len(v) for k, v in saved.items()} == {k: e.count if isinstance(e, Images) else 1 for k, e in expected["outputs"].items()}
    # SaveImage reports exactly the files it wrote
    reported = {f"{img['subfolder']}/{img['filename']}" for _, ui in results.values() if ui for img in ui.get("images", []) if "filename" in img}
    assert reported == {f for f in new if f.endswith((".png", ".mp4"))}

    images, codes = {}, {}
    for prefix, e in expected["outputs"].items():
        if isinstance(e, Video):
            frames = _video_frames(comfy, saved[prefix][0])
            assert frames.shape == (e.frames, e.height, e.width, 3), (prefix, frames.shape)
            assert frames.std() > 8 / 255, f"{prefix} is flat"
            _distinct(list(frames), f"{prefix} frames")  # the clip moves
            continue
        if isinstance(e, Codes):
            # loaded back as a user loads them: Load Latents lists the output folder's files
            latents = comfy.run("StyleCLIP_LoadLatents", latent_file=saved[prefix][0] + " [output]").args[0]
            assert latents.space == "w+" and latents.batch_size == e.batch and latents.w_plus.shape == (e.batch, *W_PLUS), prefix
            assert torch.isfinite(latents.w_plus).all() and (latents.w_plus.std(dim=(1, 2)) > 0).all(), prefix
            codes[prefix] = latents
            continue
        batch = [_image(comfy, name) for name in saved[prefix]]
        for name, img in zip(saved[prefix], batch):
            assert img.shape == (e.height, e.width, 3), name
            assert img.std() > 8 / 255, f"{name} is flat (std {img.std() * 255:.1f} / 255)"
        _distinct(batch, prefix)
        rows, cols = e.tiles
        h, w = e.height // rows, e.width // cols
        _distinct([batch[0][r * h:(r + 1) * h, c * w:(c + 1) * w] for r in range(rows) for c in range(cols)], f"{prefix} tiles")
        images[prefix] = np.stack(batch)
    for a, b in expected.get("differ", []):
        if a in codes:
            assert not torch.equal(codes[a].w_plus, codes[b].w_plus), f"{b} holds the codes of {a}"
        else:
            changed = np.abs(images[a] - images[b]).reshape(len(images[a]), -1).max(axis=1)
            assert (changed > 8 / 255).all(), f"{b} shows no edit of {a}: {changed * 255}"
    if expected.get("renders"):
        g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
        for latents, picture in expected["renders"].items():
            rendered = comfy.run("StyleCLIP_Synthesize", generator=g, latents=codes[latents], noise="const", noise_seed=0, chunk_size=4).args[0]
            assert np.abs(rendered.numpy() - images[picture]).max() <= 1 / 255 + 1e-6, f"{latents} does not render {picture}"


def test_seed_control_values_are_skipped(comfy):
    with open(os.path.join(ROOT, "workflows", "01_generate_faces.json")) as f:
        workflow = json.load(f)
    prompt = comfy.harness.ui_to_prompt(workflow, comfy.harness.object_info(comfy.nodes))
    sample = next(v for v in prompt.values() if v["class_type"] == "StyleCLIP_SampleLatents")
    assert sample["inputs"]["seed"] == 42 and sample["inputs"]["batch_size"] == 4 and sample["inputs"]["truncation_psi"] == 0.7


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_model_files_are_named_with_their_sources(path):
    """Nodes that load an official file list it in properties.models as the frontend's
    missing-models notice expects (name, url, directory), where the frontend can see such a file."""
    from build_workflows import FRONTEND_MODEL_EXTENSIONS
    from styleclip_core.formats.model_catalog import by_filename

    with open(path) as f:
        workflow = json.load(f)
    for node in workflow["nodes"]:
        named = [v for v in node.get("widgets_values") or [] if isinstance(v, str) and by_filename(v)]
        listed = {m["name"]: m for m in node.get("properties", {}).get("models", [])}
        for name in named:
            if not name.endswith(FRONTEND_MODEL_EXTENSIONS):
                assert name not in listed, f"node {node['id']} lists {name}, which ComfyUI's model list never shows"
                assert name in " ".join(n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in ("Note", "MarkdownNote")), name
                continue
            assert name in listed, f"node {node['id']} ({node['type']}) loads {name} but does not list it"
            entry = listed[name]
            assert entry["url"].startswith("https://") and entry["directory"] == by_filename(name).folder
