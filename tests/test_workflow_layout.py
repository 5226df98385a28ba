"""The example workflows' layout, read from their JSON: no node's box (title bar included)
overlaps another's, and every node that shows an image has room for the preview inside its
size (so the frontend does not grow it) and a free strip below it (so a preview that does
grow, e.g. in another frontend version, covers no node)."""
import glob
import json
import os

import pytest

from conftest import ROOT

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))

# LiteGraph (frontend 1.27.10, LGraphNode.computeSize): a body is one slot row per input/output
# (NODE_SLOT_HEIGHT 20), each widget NODE_WIDGET_HEIGHT 20 + 4, then 8 + 6 of margins; the image
# preview widget asks for at least 220 (ImagePreviewWidget.computeLayoutSize) + 4.
SLOT_HEIGHT, WIDGET_HEIGHT, MARGINS, PREVIEW = 20, 24, 14, 224


def _load(path):
    with open(path) as f:
        return json.load(f)


def _box(node):
    from build_workflows import TITLE_HEIGHT

    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_HEIGHT, x + w, y + h


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_no_nodes_overlap(path):
    nodes = _load(path)["nodes"]
    clashes = [(a["id"], b["id"]) for i, a in enumerate(nodes) for b in nodes[i + 1:] if _overlap(_box(a), _box(b))]
    assert not clashes, f"overlapping nodes (ids): {clashes}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_image_nodes_have_room_for_their_preview(path):
    from build_workflows import FREE_BELOW, IMAGE_NODES, NODE_WIDTH

    nodes = _load(path)["nodes"]
    shown = [n for n in nodes if n["type"] in IMAGE_NODES]
    assert shown, "no node shows an image"
    for n in shown:
        (x, y), (w, h) = n["pos"], n["size"]
        body = SLOT_HEIGHT * max(len(n["inputs"]), len(n["outputs"]), 1) + WIDGET_HEIGHT * len(n["widgets_values"]) + MARGINS
        assert h >= body + PREVIEW and w >= NODE_WIDTH, f"node {n['id']} ({n['type']}) is {w} x {h}: too small for its widgets and a preview"
        strip = (x, y + h, x + w, y + h + FREE_BELOW)
        below = [m["id"] for m in nodes if m is not n and _overlap(strip, _box(m))]
        assert not below, f"node {n['id']} ({n['type']}) has nodes {below} within {FREE_BELOW} below it, where its preview may grow"
