"""Every shipped workflow runs end to end through the pack's nodes with the tiny models."""
import glob
import json
import os

import pytest

from conftest import ROOT, detector_free

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))


def test_there_are_workflows():
    assert WORKFLOWS


class _Watched:
    """A node class whose runs are noted in ``running`` (the harness runs one node at a time)."""

    def __init__(self, cls, name, running):
        self._cls, self._name, self._running = cls, name, running

    def __getattr__(self, attr):
        return getattr(self._cls, attr)

    def execute(self, **kwargs):
        self._running[:] = [self._name]
        return self._cls.execute(**kwargs)


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_runs(comfy, path, monkeypatch):
    """... and every node that shows an image on the canvas while it runs (a preview on its
    progress bar) or after (images in its result) is one the layout gives room for a preview."""
    from build_workflows import IMAGE_NODES
    from comfy.utils import ProgressBar

    with open(path) as f:
        workflow = json.load(f)
    info = comfy.harness.object_info(comfy.nodes)
    prompt = comfy.harness.ui_to_prompt(detector_free(workflow, info), info)
    running, shown = [], set()
    update = ProgressBar.update_absolute

    def update_absolute(self, value, total=None, preview=None):
        if preview is not None:
            shown.add(running[0])
        return update(self, value, total, preview)

    monkeypatch.setattr(ProgressBar, "update_absolute", update_absolute)
    results = comfy.harness.execute(prompt, {name: _Watched(cls, name, running) for name, cls in comfy.nodes.items()})
    saved = [img for _, ui in results.values() if ui and "images" in ui for img in ui["images"] if "filename" in img]
    for img in saved:
        assert os.path.isfile(os.path.join(comfy.folder_paths.get_output_directory(), img["subfolder"], img["filename"]))
    assert results, "the workflow has no output node"
    shown |= {prompt[k]["class_type"] for k, (_, ui) in results.items() if ui and ui.get("images")}
    assert shown and shown <= IMAGE_NODES, f"nodes that show images but are laid out without room for them: {shown - IMAGE_NODES}"


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
    from styleclip_core.model_catalog import by_filename

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
