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

