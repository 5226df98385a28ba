"""Acceptance in the real ComfyUI frontend: every shipped workflow, opened in a headless
Chromium, loads without a missing-node or missing-model dialog and runs to completion when
queued from the page (so the frontend's own graph-to-prompt conversion is exercised).

Needs COMFYUI_PATH, the Python package ``playwright`` and a Chromium (``CHROMIUM_PATH`` or
/usr/bin/chromium; Playwright's own browser download is not needed); skipped otherwise."""
import glob
import json
import os
import shutil

import pytest

from conftest import ROOT, skip_without_photo_deps
from real_comfyui import get

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (set CHROMIUM_PATH)")


@pytest.fixture(scope="module")
def page(comfyui_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = comfyui_server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            # no background traffic: this machine has no network beyond loopback
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url + "/", wait_until="networkidle")
        page.wait_for_function("window.app && window.app.graph", timeout=120_000)
        page.keyboard.press("Escape")  # the first-visit template browser
        yield page
        browser.close()


def _next_finished(url, before, timeout=300):
    """The first prompt to finish that is not in ``before`` (the page does not return its id)."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [v for k, v in get(url + "/history").items() if k not in before and v["status"].get("completed") is not None]
        if done:
            return done[0]
        time.sleep(0.25)
    return None


def _dialogs(page):
    return page.evaluate("() => Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText)")


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_in_real_frontend(comfyui_server, page, path):
    url, base = comfyui_server
    with open(path) as f:
        workflow = skip_without_photo_deps(json.load(f))
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
    page.wait_for_timeout(1000)
    dialogs = _dialogs(page)
    assert not [d for d in dialogs if "Missing" in d or "missing" in d], dialogs
    unregistered = page.evaluate("() => window.app.graph._nodes.filter(n => !(n.type in LiteGraph.registered_node_types)).map(n => n.type)")
    assert not unregistered
    before = set(get(url + "/history"))
    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    entry = _next_finished(url, before)
    assert entry is not None, "the page queued nothing: " + str(_dialogs(page))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:3000]
    page.keyboard.press("Escape")
