"""Every shipped workflow runs end to end through the pack's nodes with the tiny models, as shipped
(the photo workflows with the built-in face detector on the Example Portrait)."""
import glob
import json
import os

import pytest

from conftest import ROOT, skip_without_photo_deps

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))


def test_there_are_workflows():
    assert WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_runs(comfy, path):
    with open(path) as f:
        workflow = skip_without_photo_deps(json.load(f))
    # a new user's input folder holds no image of ours: the photo workflows start from Example Portrait
    assert "LoadImage" not in {n["type"] for n in workflow["nodes"]}
    info = comfy.harness.object_info(comfy.nodes)
    prompt = comfy.harness.ui_to_prompt(workflow, info)
    results = comfy.harness.execute(prompt, comfy.nodes)
    saved = [img for _, ui in results.values() if ui and "images" in ui for img in ui["images"] if "filename" in img]
    for img in saved:
        assert os.path.isfile(os.path.join(comfy.folder_paths.get_output_directory(), img["subfolder"], img["filename"]))
    assert results, "the workflow has no output node"


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
