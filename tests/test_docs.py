"""The generated documentation is in sync with its sources (model catalog, node schemas, example
workflows): run ``python tools/build_docs.py`` after changing any of them. Every node is on
exactly one node reference page, every picture a page shows exists and is small, and the
Comfy Registry metadata is complete."""
import glob
import os
import re
import tomllib

import pytest

from conftest import ROOT

MAX_IMAGE_BYTES = 250_000


@pytest.fixture(scope="module")
def generated():
    import build_docs

    return build_docs.generate()


def test_readme_models_guide_is_in_sync(generated):
    import build_docs

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    begin, end = "<!-- models:begin -->", "<!-- models:end -->"
    assert readme.count(begin) == 1 and readme.count(end) == 1
    assert readme == generated["README.md"], "README.md is out of date: run python tools/build_docs.py"
    block = readme.split(begin)[1].split(end)[0]
    assert block.strip() == build_docs.models_block().strip()


def test_models_guide_names_every_catalog_file(generated):
    from styleclip_core.formats.model_catalog import CATALOG

    block = generated["README.md"].split("<!-- models:begin -->")[1].split("<!-- models:end -->")[0]
    for entry in CATALOG:
        row = next(line for line in block.splitlines() if line.startswith(f"| `{entry.filename}` |"))
        assert f"`{entry.folder}`" in row and entry.size.split("(")[0].strip() in row
        assert entry.url in block
        if "non-commercial" in entry.licence.lower():
            assert "**non-commercial**" in row, row
        if entry.sha256:
            assert entry.sha256 in block


def test_node_pages_are_in_sync(generated):
    import build_docs

    stale = build_docs.differing(generated)
    assert not stale, f"out of date: {stale}; run python tools/build_docs.py"
    pages = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "docs", "nodes", "*.md"))}
    assert pages == {os.path.basename(p) for p in generated if p.startswith(os.path.join("docs", "nodes"))}, "a page in docs/nodes is not generated"


def test_every_node_is_on_exactly_one_page():
    import comfy_harness

    nodes = set(comfy_harness.pack_nodes())
    found = []
    for path in glob.glob(os.path.join(ROOT, "docs", "nodes", "*.md")):
        with open(path, encoding="utf-8") as f:
            found += re.findall(r"^node id `([^`]+)`", f.read(), flags=re.M)
    assert sorted(found) == sorted(nodes), ({n for n in found if found.count(n) > 1}, nodes - set(found), set(found) - nodes)


def test_every_workflow_is_shown_with_its_pictures():
    import build_docs

    workflows = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "workflows", "*.json")))
    shown = sorted(wf for page in build_docs.PAGES for wf in page.workflows)
    assert shown == workflows
    for wf in workflows:
        for name in build_docs.image_names(wf):
            path = os.path.join(ROOT, "docs", "images", name)
            assert os.path.isfile(path), f"{path} is missing: run tools/screenshots.py (needs COMFYUI_PATH)"


def test_linked_pictures_exist_and_are_small():
    docs = [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "nodes", "*.md"))]
    for doc in docs:
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            path = os.path.normpath(os.path.join(os.path.dirname(doc), target))
            assert os.path.isfile(path), f"{doc} shows {target}, which does not exist"
    for path in glob.glob(os.path.join(ROOT, "docs", "images", "*")):
        assert os.path.getsize(path) < MAX_IMAGE_BYTES, f"{path} is {os.path.getsize(path)} bytes"


def test_relative_links_resolve():
    docs = [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "nodes", "*.md"))]
    for doc in docs:
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert os.path.exists(os.path.normpath(os.path.join(os.path.dirname(doc), target))), f"{doc} links to {target}"


def test_comfy_registry_metadata():
    from PIL import Image

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    comfy = project["tool"]["comfy"]
    for key in ("PublisherId", "DisplayName", "Icon", "requires-comfyui"):
        assert isinstance(comfy.get(key), str) and comfy[key].strip(), f"[tool.comfy] {key} is empty"
    repo = project["project"]["urls"]["Repository"]
    owner_name = repo.removeprefix("https://github.com/").strip("/")
    prefix = f"https://raw.githubusercontent.com/{owner_name}/main/"
    assert comfy["Icon"].startswith(prefix), comfy["Icon"]
    icon = os.path.join(ROOT, *comfy["Icon"][len(prefix):].split("/"))
    with Image.open(icon) as im:
        assert im.width == im.height <= 400 and im.format == "PNG"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*", project["project"]["name"])
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert f"comfy node install {project['project']['name']}" in f.read()
