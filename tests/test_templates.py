"""The example workflows as ComfyUI's template browser shows them (ComfyUI 0.3.64, frontend
1.27.10): each workflows/NAME.json has its thumbnail, the same-name .jpg the frontend asks for,
small and drawn from the workflow's current layout, with a title and description; the
frontend extension that orders the pack's templates is declared to ComfyUI."""
import glob
import json
import os

import pytest

from conftest import ROOT

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))


def test_every_workflow_has_a_title_and_description():
    from make_thumbnails import TEMPLATES

    names = [os.path.splitext(os.path.basename(p))[0] for p in WORKFLOWS]
    assert sorted(TEMPLATES) == names
    for title, description in TEMPLATES.values():
        assert title and description and len(description) <= 90


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_thumbnail(path):
    from PIL import Image

    from make_thumbnails import MAX_BYTES, SIZE, layout_key

    thumb = os.path.splitext(path)[0] + ".jpg"
    assert os.path.isfile(thumb), f"no thumbnail {os.path.basename(thumb)}: run python tools/make_thumbnails.py"
    assert os.path.getsize(thumb) <= MAX_BYTES
    with Image.open(thumb) as img:
        assert img.format == "JPEG" and img.size == SIZE
        comment = img.info.get("comment", b"").decode()
    with open(path) as f:
        key = layout_key(json.load(f))
    assert comment == "layout " + key, f"{os.path.basename(thumb)} was drawn from another layout: run python tools/make_thumbnails.py"


def test_nothing_but_workflows_and_thumbnails_in_the_templates_folder():
    """ComfyUI lists every .json of the folder as a template (so no index.json or other JSON)
    and serves the whole folder."""
    names = sorted(os.listdir(os.path.join(ROOT, "workflows")))
    stems = {os.path.splitext(n)[0] for n in names if n.endswith(".json")}
    assert all(n.endswith((".json", ".jpg")) and os.path.splitext(n)[0] in stems for n in names), names


def test_frontend_extension_is_declared():
    import ast

    with open(os.path.join(ROOT, "__init__.py")) as f:
        tree = ast.parse(f.read())
    web = next(node.value.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "WEB_DIRECTORY")
    script = os.path.join(ROOT, web, "template_order.js")
    assert os.path.isfile(script)
    with open(script) as f:
        text = f.read()
    assert 'from "../../scripts/api.js"' in text and "getWorkflowTemplates" in text


@pytest.mark.skipif(not __import__("shutil").which("node"), reason="no Node.js")
def test_frontend_extension_sorts_this_packs_templates_only(tmp_path):
    """The extension, loaded as the frontend loads it (/extensions/PACK/template_order.js), against a
    stand-in of the frontend's api module."""
    import shutil
    import subprocess

    js = tmp_path / "extensions" / "ComfyUI-StyleCLIP"
    js.mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "web", "template_order.js"), js)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "api.js").write_text(
        "export const api = { async getWorkflowTemplates() { return "
        "{ 'ComfyUI-StyleCLIP': ['10_b', '02_a', '01_c'], other: ['b', 'a'] }; } };\n")
    check = (
        f"import {{ api }} from '{(tmp_path / 'scripts' / 'api.js').as_uri()}';"
        f"await import('{(js / 'template_order.js').as_uri()}');"
        "console.log(JSON.stringify(await api.getWorkflowTemplates()));"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", check], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ComfyUI-StyleCLIP": ["01_c", "02_a", "10_b"], "other": ["b", "a"]}
