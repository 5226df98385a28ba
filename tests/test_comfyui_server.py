"""The pack inside a real ComfyUI server (set COMFYUI_PATH to a ComfyUI checkout whose
requirements are installed in this Python; skipped otherwise): it loads, lists its workflows
as templates, and every shipped workflow — converted as the frontend converts it — runs to
completion with the tiny models and writes its outputs."""
import glob
import json
import os
import urllib.request

import pytest

from conftest import PACK_NODE_IDS, ROOT, skip_without_photo_deps
from real_comfyui import PACK_FOLDER, get, post, wait_for

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))


def test_pack_loads_and_lists_templates(comfyui_server):
    import comfy_harness

    url, base = comfyui_server
    info = get(url + "/object_info")
    log = open(base / "server.log").read()
    assert {k for k in info if k.startswith("StyleCLIP_")} == PACK_NODE_IDS, "not every StyleCLIP node registered:\n" + log[-4000:]
    # the pack's own import (a core comfy_extras node that lacks e.g. torchaudio is not the pack's failure)
    assert not [line for line in log.splitlines() if "IMPORT FAILED" in line and PACK_FOLDER in line], log[-4000:]
    assert "stylegan2-ffhq-config-f.pt" in comfy_harness.combo_options(info["StyleCLIP_LoadGenerator"]["input"]["required"]["generator_name"])
    # ComfyUI lists a pack's workflows/ folder (as it does example_workflows/) under the pack's
    # folder name in the template browser, and serves each file from there
    templates = get(url + "/workflow_templates")
    assert sorted(templates[PACK_FOLDER]) == sorted(os.path.splitext(os.path.basename(p))[0] for p in WORKFLOWS)
    for path in WORKFLOWS:
        with open(path) as f:
            assert get(f"{url}/api/workflow_templates/{PACK_FOLDER}/{os.path.basename(path)}") == json.load(f)
        # the card's thumbnail, which the frontend asks for beside the workflow
        thumb = os.path.splitext(os.path.basename(path))[0] + ".jpg"
        with urllib.request.urlopen(f"{url}/api/workflow_templates/{PACK_FOLDER}/{thumb}", timeout=30) as r:
            assert r.headers["Content-Type"] == "image/jpeg" and r.read() == open(os.path.splitext(path)[0] + ".jpg", "rb").read()
    # the pack's frontend extension (web/), which orders those templates
    with urllib.request.urlopen(f"{url}/extensions/{PACK_FOLDER}/template_order.js", timeout=30) as r:
        assert b"getWorkflowTemplates" in r.read()
    assert f"/extensions/{PACK_FOLDER}/template_order.js" in get(url + "/extensions")


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_in_real_comfyui(comfyui_server, path):
    import comfy_harness

    url, base = comfyui_server
    info = get(url + "/object_info")
    with open(path) as f:
        workflow = skip_without_photo_deps(json.load(f))
    missing = {n["type"] for n in workflow["nodes"] if n["type"] not in info and n["type"] not in ("Note", "MarkdownNote", "Reroute")}
    assert not missing, f"missing nodes: {missing}"
    prompt = comfy_harness.ui_to_prompt(workflow, info)
    reply = post(url + "/prompt", {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": workflow}}})
    assert not reply.get("node_errors"), reply
    entry = wait_for(url, reply["prompt_id"])
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1) + open(base / "server.log").read()[-3000:]
    for output in entry["outputs"].values():
        for img in output.get("images", []):
            if img.get("type") == "output":
                assert os.path.isfile(os.path.join(base, "output", img["subfolder"], img["filename"]))


def test_models_are_freed_and_reloaded_through_comfyui(comfyui_server):
    """ComfyUI's own model management loads the pack's models (its ModelPatcher on our modules),
    'Free model and node cache' unloads them, and the next run loads them again."""
    import time

    import comfy_harness

    url, base = comfyui_server
    info = get(url + "/object_info")
    with open(os.path.join(ROOT, "workflows", "02_text_edit_optimization.json")) as f:
        workflow = json.load(f)
    for node in workflow["nodes"]:
        if node["type"] == "StyleCLIP_OptimizeLatents":
            node["widgets_values"][0] = 2  # steps: a short run is enough here
    prompt = comfy_harness.ui_to_prompt(workflow, info)

    def free():
        request = urllib.request.Request(url + "/free", json.dumps({"unload_models": True, "free_memory": True}).encode(), {"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).close()
        time.sleep(2)  # the worker frees between prompts

    free()  # models of earlier tests (e.g. workflow 10's CLIP) may still be loaded
    start = len(open(base / "server.log").read())
    for attempt in range(2):
        reply = post(url + "/prompt", {"prompt": prompt})
        entry = wait_for(url, reply["prompt_id"])
        assert entry["status"]["status_str"] == "success", open(base / "server.log").read()[-3000:]
        free()
    log = open(base / "server.log").read()[start:]
    assert "Traceback" not in log, log[-3000:]
    # both runs loaded the generator and CLIP through ComfyUI (the cache was dropped in between)
    assert log.count("Requested to load Generator") >= 2 and log.count("Requested to load CLIP") >= 2, log[-3000:]
