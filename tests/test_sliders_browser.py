"""Edit Sliders' live preview in the real ComfyUI frontend: workflow 14 opened in headless Chromium
and queued once; then moving a slider (the widget's own callback, as a drag calls it) updates the
preview on the node without queueing, to exactly the image the pack's route renders for those
values, and a burst of moves ends on the last value. The time from a slider change to its image
being shown is printed (CPU, tiny stand-in models, 256 px preview).

Needs COMFYUI_PATH, the Python package ``playwright`` and a Chromium (``CHROMIUM_PATH`` or
/usr/bin/chromium); skipped otherwise."""
import base64
import json
import os
import shutil
import urllib.request

import pytest

from conftest import ROOT
from real_comfyui import get

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
WORKFLOW = os.path.join(ROOT, "workflows", "14_sliders_text_and_mapper.json")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (set CHROMIUM_PATH)")

NODE = "window.app.graph._nodes.find(n => n.type === 'StyleCLIP_EditSliders')"
SHOWN = f"""async () => {{
    const node = {NODE};
    const img = node._styleclipPreview.img;
    if (!img.dataset.seq) return null;
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let text = ''; for (const b of bytes) text += String.fromCharCode(b);
    return {{seq: Number(img.dataset.seq), values: JSON.parse(img.dataset.values), jpeg: btoa(text), node: String(node.id),
             stats: node._styleclipPreview.stats}};
}}"""


def route_preview(url, node, values, size=256):
    request = urllib.request.Request(url + "/styleclip/sliders/preview", json.dumps({"node": node, "values": values, "size": size, "seq": 0, "client": "test"}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.read()


def move(page, name, value):
    page.evaluate(f"""() => {{ const node = {NODE}; const w = node.widgets.find(w => w.name === '{name}');
                              w.value = {value}; w.callback(w.value); }}""")


def wait_shown(page, values, timeout_ms=60_000):
    page.wait_for_function(f"(want) => {{ const img = {NODE}?._styleclipPreview?.img; return !!img && img.dataset.values === JSON.stringify(want); }}",
                           arg=values, timeout=timeout_ms)
    return page.evaluate(SHOWN)


def test_sliders_update_the_preview_live(comfyui_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = comfyui_server
    with open(WORKFLOW) as f:
        workflow = json.load(f)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url + "/", wait_until="networkidle")
        page.wait_for_function("window.app && window.app.graph", timeout=120_000)
        page.keyboard.press("Escape")
        page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
        assert page.evaluate(f"() => !!{NODE}._styleclipPreview"), "the pack's extension did not attach to Edit Sliders"
        before = set(get(url + "/history"))
        page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
        first = wait_shown(page, [3.0, 1.0], 300_000)  # the node's values after its run
        finished = [v for k, v in get(url + "/history").items() if k not in before]
        assert finished and finished[0]["status"]["status_str"] == "success"
        assert base64.b64decode(first["jpeg"]) == route_preview(url, first["node"], [3.0, 1.0])

        move(page, "value_1", -2.5)
        moved = wait_shown(page, [-2.5, 1.0])
        assert moved["seq"] > first["seq"] and moved["jpeg"] != first["jpeg"], "the preview did not change"
        assert base64.b64decode(moved["jpeg"]) == route_preview(url, moved["node"], [-2.5, 1.0]), "the preview is not the render of the values shown"

        for v in (-2.0, -1.0, 0.0, 1.0, 2.0, 4.5):  # a burst, faster than the renders: the last value always renders
            move(page, "value_2", v)
        last = wait_shown(page, [-2.5, 4.5])
        assert base64.b64decode(last["jpeg"]) == route_preview(url, last["node"], [-2.5, 4.5])
        print(f"slider change -> preview shown (ms, 256 px, CPU, tiny models): {[round(x) for x in last['stats']]}")
        browser.close()
