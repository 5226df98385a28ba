"""Pictures for the node reference (docs/images/): every example workflow opened in the real
ComfyUI frontend, run there, screenshotted with its results on the canvas, and the images it
saved laid out in one picture.

Needs a ComfyUI checkout (``COMFYUI_PATH``, its requirements installed in this Python), the
Python package ``playwright`` and a Chromium (``CHROMIUM_PATH`` or ``chromium`` on PATH;
Playwright's own browser download is not needed). Not run by the tests or CI.

    COMFYUI_PATH=/path/to/ComfyUI python tools/screenshots.py [workflow.json ...]

The server is started as the acceptance tests start it (tests/real_comfyui.py): on 127.0.0.1
with ``--cpu``, in a temporary base directory holding the pack, the tiny random stand-in models
(``python -m styleclip_core tiny-models``), so the outputs are noise-like (real checkpoints give
faces). Photo workflows run as shipped: Example Portrait and Align Faces' built-in face mesh (the
pack's requirements, installed in that Python). Files are written as JPEG under 250 KB.
"""
from __future__ import annotations

import argparse
import glob
import io
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

OUT = os.path.join(ROOT, "docs", "images")
MAX_BYTES = 250_000
VIEWPORT = {"width": 1920, "height": 1080}
SHOT_WIDTH = 1600  # screenshots are downscaled to this width
CELL = 160  # output images: height of one image in the contact sheet
MAX_PER_ROW = 8
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def save_jpeg(image, path: str, max_bytes: int = MAX_BYTES) -> int:
    """Write ``image`` as a JPEG under ``max_bytes``, lowering the quality (then the size) as needed."""
    image = image.convert("RGB")
    while True:
        for quality in (85, 80, 75, 70, 65, 60, 55, 50):
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True)
            if buffer.tell() <= max_bytes:
                with open(path, "wb") as f:
                    f.write(buffer.getvalue())
                return buffer.tell()
        image = image.resize((image.width * 4 // 5, image.height * 4 // 5))


VIDEO_FRAMES = 4  # frames of a saved video shown in the sheet, evenly spread


def pictures(path: str) -> list:
    """A saved image, or VIDEO_FRAMES frames of a saved video (PyAV, which ComfyUI ships)."""
    from PIL import Image

    if not path.endswith((".mp4", ".webm", ".mov", ".mkv")):
        return [Image.open(path).convert("RGB")]
    import av

    with av.open(path) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    step = max(1, (len(frames) - 1) / max(1, VIDEO_FRAMES - 1))
    return [frames[min(len(frames) - 1, round(i * step))] for i in range(min(VIDEO_FRAMES, len(frames)))]


def contact_sheet(rows: list[tuple[str, list[str]]]):
    """One picture of saved images: a labelled row (or rows of MAX_PER_ROW) per save node."""
    from PIL import Image, ImageDraw

    label_h, pad = 18, 6
    lines = []
    for label, files in rows:
        images = [im for f in files for im in pictures(f)]
        images = [im.resize((max(1, round(im.width * CELL / im.height)), CELL), Image.NEAREST if im.height < CELL else Image.LANCZOS) for im in images]
        for start in range(0, len(images), MAX_PER_ROW):
            lines.append((label if start == 0 else "", images[start:start + MAX_PER_ROW]))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))  # a label wider than its row's images widens the sheet
    width = max(max(sum(im.width for im in ims) + pad * (len(ims) + 1), round(measure.textlength(label)) + 2 * pad) for label, ims in lines)
    height = sum((label_h if label else 0) + CELL + pad for label, _ in lines) + pad
    sheet = Image.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    y = pad
    for label, ims in lines:
        if label:
            draw.text((pad, y + 3), label, fill=(230, 230, 230))
            y += label_h
        x = pad
        for im in ims:
            sheet.paste(im, (x, y))
            x += im.width + pad
        y += CELL + pad
    return sheet


# Fit the graph into the part of the canvas that the side bar, top bar and zoom controls leave
# free (the frontend's own fit view leaves wide margins).
FIT_VIEW = """() => {
    const canvas = window.app.canvas;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const node of window.app.graph._nodes) {
        const title = LiteGraph.NODE_TITLE_HEIGHT;
        x0 = Math.min(x0, node.pos[0]); y0 = Math.min(y0, node.pos[1] - title);
        x1 = Math.max(x1, node.pos[0] + node.size[0]); y1 = Math.max(y1, node.pos[1] + node.size[1]);
    }
    const rect = canvas.canvas.getBoundingClientRect();
    const left = 80 - rect.left, top = 60 - rect.top, right = 30, bottom = 60;
    const width = rect.width - left - right, height = rect.height - top - bottom;
    const scale = Math.min(width / (x1 - x0), height / (y1 - y0), 1.5);
    canvas.ds.scale = scale;
    canvas.ds.offset[0] = (left + (width - (x1 - x0) * scale) / 2) / scale - x0;
    canvas.ds.offset[1] = (top + (height - (y1 - y0) * scale) / 2) / scale - y0;
    canvas.setDirty(true, true);
    return [rect.left, rect.top, rect.width, rect.height, scale];
}"""


def viewport_for(workflow: dict) -> dict:
    """A window of VIEWPORT's width whose canvas has about the graph's aspect ratio, so that
    fit view fills it."""
    xs = [n["pos"][0] for n in workflow["nodes"]] + [n["pos"][0] + n["size"][0] for n in workflow["nodes"]]
    ys = [n["pos"][1] for n in workflow["nodes"]] + [n["pos"][1] + n["size"][1] for n in workflow["nodes"]]
    width = VIEWPORT["width"]
    chrome_w, chrome_h = 50, 60  # side bar, top bar
    canvas_h = (width - chrome_w) * (max(ys) - min(ys) + 300) / (max(xs) - min(xs) + 200)
    return {"width": width, "height": int(min(max(canvas_h + chrome_h, 720), 1400))}


def _next_finished(url, before, timeout):
    from real_comfyui import get

    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [(k, v) for k, v in get(url + "/history").items() if k not in before and v["status"].get("completed") is not None]
        if done:
            return done[0][1]
        time.sleep(0.5)
    raise TimeoutError("the workflow did not finish in time")


def saved_images(entry: dict, base: str, prompt: dict) -> list[tuple[str, list[str]]]:
    """(label, files) per node that saved images to the output folder, in node id order."""
    rows = []
    for node_id in sorted(entry["outputs"], key=lambda k: int(k) if k.isdigit() else 0):
        files = [os.path.join(base, "output", img["subfolder"], img["filename"])
                 for img in entry["outputs"][node_id].get("images", []) if img.get("type") == "output"]
        if files:
            prefix = prompt.get(node_id, {}).get("inputs", {}).get("filename_prefix", "")
            video = files[0].endswith(".mp4")
            what = f"a video: {VIDEO_FRAMES} of its frames" if video else f"{len(files)} image{'s' if len(files) > 1 else ''}"
            rows.append((f"{prefix} ({what})", files))
    return rows


def shoot(page, url: str, base: str, path: str, timeout: float) -> tuple[str, str]:
    import comfy_harness
    from real_comfyui import get

    from build_docs import image_names

    name = os.path.basename(path)
    info = get(url + "/object_info")
    with open(path) as f:
        workflow = json.load(f)
    page.set_viewport_size(viewport_for(workflow))
    page.evaluate("async ([wf, name]) => { await window.app.loadGraphData(wf, true, true, name); }", [workflow, name])
    page.wait_for_timeout(1000)
    page.keyboard.press("Escape")
    before = set(get(url + "/history"))
    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    entry = _next_finished(url, before, timeout)
    if entry["status"]["status_str"] != "success":
        raise RuntimeError(f"{name} failed: {json.dumps(entry['status'])[:2000]}")
    page.wait_for_timeout(1500)  # the result images appear on the save nodes
    page.evaluate(FIT_VIEW)
    page.wait_for_timeout(800)

    from PIL import Image

    shot_name, output_name = image_names(name)
    shot = Image.open(io.BytesIO(page.screenshot()))
    shot = shot.resize((SHOT_WIDTH, round(shot.height * SHOT_WIDTH / shot.width)), Image.LANCZOS)
    n1 = save_jpeg(shot, os.path.join(OUT, shot_name))
    prompt = comfy_harness.ui_to_prompt(workflow, info)
    rows = saved_images(entry, base, prompt)
    if not rows:
        raise RuntimeError(f"{name} saved no images")
    n2 = save_jpeg(contact_sheet(rows), os.path.join(OUT, output_name))
    return f"{shot_name} ({n1 // 1000} KB)", f"{output_name} ({n2 // 1000} KB)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Screenshots of the example workflows in the real ComfyUI frontend (docs/images).")
    parser.add_argument("workflows", nargs="*", help="workflow files (default: every file in workflows/)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one workflow may run")
    args = parser.parse_args(argv)
    import real_comfyui

    if not real_comfyui.COMFYUI:
        parser.error("set COMFYUI_PATH to a ComfyUI checkout")
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        parser.error("no Chromium found (set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    paths = args.workflows or sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as base, real_comfyui.running_comfyui(base, ROOT) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url + "/", wait_until="networkidle")
        page.wait_for_function("window.app && window.app.graph", timeout=120_000)
        page.keyboard.press("Escape")  # the first-visit template browser
        page.evaluate("""async () => {
            const settings = window.app.extensionManager.setting;
            await settings.set('Comfy.Minimap.Visible', false);  // a clean canvas for the pictures
            await settings.set('Comfy.Graph.CanvasInfo', false);
            await settings.set('LiteGraph.Canvas.MinFontSizeForLOD', 0);  // text even when zoomed out
            await settings.set('Comfy.Workflow.WorkflowTabsPosition', 'Sidebar');
        }""")
        for path in paths:
            start = time.time()
            print(os.path.basename(path), "->", *shoot(page, url, base, os.path.abspath(path), args.timeout), f"{time.time() - start:.0f} s", flush=True)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
