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
    # with the run's images and previews on the canvas, no node has grown over another
    page.wait_for_timeout(1500)
    boxes = page.evaluate("""() => window.app.graph._nodes.map(n => ({id: n.id, type: n.type, imgs: (n.imgs || []).length,
        box: [n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, n.pos[0] + n.size[0], n.pos[1] + n.size[1]]}))""")
    clashes = [(a["id"], a["type"], b["id"], b["type"]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
               if a["box"][0] < b["box"][2] and b["box"][0] < a["box"][2] and a["box"][1] < b["box"][3] and b["box"][1] < a["box"][3]]
    assert not clashes, f"nodes overlapping after the run: {clashes}"
    assert any(b["imgs"] for b in boxes), "no node shows an image after the run"
    page.keyboard.press("Escape")


def test_templates_in_the_template_browser(comfyui_server, page):
    """The pack's category of the template browser lists its workflows in their numbered order,
    each card with its thumbnail loaded."""
    from real_comfyui import PACK_FOLDER

    page.wait_for_timeout(1000)
    if not page.get_by_text(PACK_FOLDER, exact=True).count():  # the first-visit browser may already be open
        page.evaluate("async () => { await window.app.extensionManager.command.execute('Comfy.BrowseTemplates'); }")
    page.get_by_text(PACK_FOLDER, exact=True).first.click()
    page.wait_for_timeout(1500)
    cards = page.evaluate("""async () => {
        // frontend 1.27.10 renders the first 12 cards and more as the list is scrolled to its end
        const all = () => Array.from(document.querySelectorAll('[data-testid^="template-workflow-"]'));
        for (let n = -1, i = 0; i < 40 && all().length !== n; i++) {
            n = all().length;
            all()[n - 1]?.scrollIntoView();
            await new Promise(r => setTimeout(r, 400));
        }
        const cards = [];
        for (const c of all()) {
            c.scrollIntoView();  // thumbnails load when their card comes into view
            const imgs = () => Array.from(c.querySelectorAll('img'));
            for (let i = 0; i < 50 && !(imgs().length && imgs().every(im => im.complete && im.naturalWidth)); i++)
                await new Promise(r => setTimeout(r, 100));
            cards.push({name: c.dataset.testid.slice('template-workflow-'.length),
                        images: imgs().map(im => [im.complete, im.naturalWidth, im.naturalHeight])});
        }
        return cards;
    }""")
    names = [c["name"] for c in cards]
    assert names == sorted(os.path.splitext(os.path.basename(p))[0] for p in WORKFLOWS), names
    for card in cards:  # the pictures are the thumbnails (fetched into blob: URLs), not placeholders
        assert card["images"] and all(img == [True, 512, 384] for img in card["images"]), card
    page.keyboard.press("Escape")
