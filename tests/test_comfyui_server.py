"""The pack inside a real ComfyUI: set COMFYUI_PATH to a ComfyUI checkout (its requirements
installed in this Python) to run it; skipped otherwise.

The server starts on 127.0.0.1 with --cpu and a temporary base directory holding the pack (a
link to this repository) in custom_nodes and the tiny models; every shipped workflow is
converted as the frontend converts it, queued, and must finish with its outputs written.
"""
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, detector_free, write_test_inputs

COMFYUI = os.environ.get("COMFYUI_PATH")
pytestmark = pytest.mark.skipif(not COMFYUI, reason="COMFYUI_PATH is not set")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(url, data):
    req = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from styleclip_core import tiny_models

    base = tmp_path_factory.mktemp("comfyui_base")
    os.makedirs(base / "custom_nodes")
    os.symlink(ROOT, base / "custom_nodes" / "ComfyUI-StyleCLIP")
    tiny_models.write_models_folder(str(base / "models"))
    write_test_inputs(str(base / "input"))
    port = _free_port()
    log = open(base / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory", str(base), "--disable-auto-launch"],
        cwd=COMFYUI, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                break
            try:
                _get(url + "/system_stats")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("ComfyUI did not start in 120 s")
        if proc.poll() is not None:
            pytest.fail("ComfyUI exited:\n" + open(base / "server.log").read()[-4000:])
        yield url, base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_pack_loads(server):
    url, base = server
    info = _get(url + "/object_info")
    ours = [k for k in info if k.startswith("StyleCLIP_")]
    log = open(base / "server.log").read()
    assert ours, "no StyleCLIP nodes registered:\n" + log[-4000:]
    assert "IMPORT FAILED" not in log, log[-4000:]
    import comfy_harness

    assert "stylegan2-ffhq-config-f.pt" in comfy_harness.combo_options(info["StyleCLIP_LoadGenerator"]["input"]["required"]["generator_name"])


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json"))), ids=os.path.basename)
def test_workflow_in_real_comfyui(server, path):
    import comfy_harness

    url, base = server
    info = _get(url + "/object_info")
    with open(path) as f:
        workflow = json.load(f)
    missing = {n["type"] for n in workflow["nodes"] if n["type"] not in info and n["type"] not in ("Note", "MarkdownNote", "Reroute")}
    assert not missing, f"missing nodes: {missing}"
    prompt = comfy_harness.ui_to_prompt(detector_free(workflow, info), info)
    reply = _post(url + "/prompt", {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": workflow}}})
    assert not reply.get("node_errors"), reply
    prompt_id = reply["prompt_id"]
    for _ in range(1200):
        history = _get(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id]["status"].get("completed") is not None:
            break
        time.sleep(0.25)
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1) + open(base / "server.log").read()[-3000:]
    for output in entry["outputs"].values():
        for img in output.get("images", []):
            if img.get("type") == "output":
                assert os.path.isfile(os.path.join(base, "output", img["subfolder"], img["filename"]))
