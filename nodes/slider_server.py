"""The live preview of Edit Sliders: the routes the pack adds to ComfyUI's server, and the cache of
the slider edits of the nodes' last runs they render from.

* ``POST /styleclip/sliders/preview`` with JSON ``{"node": id, "values": [...], "size": 256, "seq": n,
  "client": c}`` -> a JPEG of the node's preview face edited by ``values`` (header
  ``X-StyleCLIP-Seq``: ``seq``), or 204 when a newer request of the same client (a browser tab)
  for the same node arrived meanwhile (only the newest is rendered), 404
  for a node without a cached run, 400 for bad values. Nothing but the cached edits is rendered;
  no path or file name is accepted.
* ``GET /styleclip/presets``, ``GET /styleclip/presets/{name}``, ``POST /styleclip/presets/{name}``
  (``{"values", "labels", "overwrite"}``; 409 when it exists and ``overwrite`` is not set): slider
  presets as JSON files in ComfyUI's user folder (``user/styleclip_presets``).

The handlers' work is in plain functions (``preview``, ``preset_*``) so tests can call them without
a server; rendering runs in a worker thread so the server keeps serving.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import threading
from collections import OrderedDict

import torch

from ..styleclip_core.edits.sliders import SliderEdit, check_values
from ..styleclip_core.formats import preset_files

PREVIEW_SIZES = (128, 256, 512, 1024)
MAX_CACHED = 8  # nodes whose last run can be previewed (the newest ones)
_NODE_ID = re.compile(r"[0-9A-Za-z:_\-.]{1,64}")
log = logging.getLogger("styleclip")


class PreviewCache:
    """node id -> the SliderEdit of its last run, with per-node ordering of preview requests."""

    def __init__(self, size: int = MAX_CACHED):
        self.size = size
        self.edits: OrderedDict[str, SliderEdit] = OrderedDict()
        self.latest: dict[tuple[str, str], int] = {}  # (node, client) -> the newest seq seen
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def put(self, node_id: str, edit: SliderEdit):
        with self.guard:
            self.edits[node_id] = edit
            self.edits.move_to_end(node_id)
            self.locks.setdefault(node_id, threading.Lock())
            while len(self.edits) > self.size:
                old, _ = self.edits.popitem(last=False)
                self.latest = {k: v for k, v in self.latest.items() if k[0] != old}

    def get(self, node_id: str) -> SliderEdit | None:
        with self.guard:
            return self.edits.get(node_id)


CACHE = PreviewCache()


def jpeg(pixels: torch.Tensor, quality: int = 90) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def check_request(payload) -> tuple[str, str, list, int, int]:
    """(node id, client, values, size, seq) of a preview request, or ValueError saying what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object {node, values, size, seq, client}")
    node = payload.get("node")
    if not isinstance(node, str) or not _NODE_ID.fullmatch(node):
        raise ValueError(f"node: expected a node id (letters, digits, ':', '_', '-', '.'), found {node!r}")
    client = payload.get("client", "")
    if not isinstance(client, str) or not (client == "" or _NODE_ID.fullmatch(client)):
        raise ValueError(f"client: expected a short id (letters, digits, ':', '_', '-', '.'), found {client!r}")
    size = payload.get("size", 256)
    if size not in PREVIEW_SIZES:
        raise ValueError(f"size: expected one of {PREVIEW_SIZES}, found {size!r}")
    seq = payload.get("seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ValueError(f"seq: expected an integer, found {seq!r}")
    values = payload.get("values")
    if not isinstance(values, list):
        raise ValueError(f"values: expected a list of numbers, found {type(values).__name__}")
    return node, client, values, size, seq


def preview(payload, cache: PreviewCache = CACHE) -> tuple[int, bytes | str]:
    """(HTTP status, JPEG bytes or a message) for a preview request; blocking (run it in a thread).

    Requests for one node are rendered one at a time; a request that has been overtaken by a
    newer one of the same client for the same node while it waited is answered 204 without
    rendering (clients count ``seq`` each on their own)."""
    try:
        node, client, values, size, seq = check_request(payload)
    except ValueError as e:
        return 400, str(e)
    edit = cache.get(node)
    if edit is None:
        return 404, f"node {node} has no slider edit to preview: queue the workflow once"
    try:
        values = check_values(values, len(edit.directions))
    except ValueError as e:
        return 400, str(e)
    key = (node, client)
    with cache.guard:
        if seq < cache.latest.get(key, -1):
            return 204, "superseded"
        cache.latest[key] = seq
        lock = cache.locks[node]
    with lock:
        if seq < cache.latest.get(key, -1):
            return 204, "superseded"  # a newer request came while this one waited
        try:
            with torch.inference_mode():
                pixels = edit.preview(values, size)
        except (RuntimeError, ValueError) as e:  # e.g. the model was offloaded mid-render
            log.warning("StyleCLIP slider preview of node %s failed: %s", node, e)
            return 503, f"preview failed: {e}"
    return 200, jpeg(pixels)


def presets_folder() -> str:
    import folder_paths

    return os.path.join(folder_paths.get_user_directory(), "styleclip_presets")


def preset_list() -> dict:
    return {"presets": preset_files.list_presets(presets_folder())}


def preset_load(name: str) -> tuple[int, dict]:
    try:
        return 200, preset_files.load_preset(presets_folder(), name)
    except FileNotFoundError as e:
        return 404, {"error": str(e)}
    except ValueError as e:
        return 400, {"error": str(e)}


def preset_save(name: str, payload) -> tuple[int, dict]:
    if not isinstance(payload, dict):
        return 400, {"error": "expected a JSON object {values, labels, overwrite}"}
    try:
        path = preset_files.save_preset(presets_folder(), name, payload.get("values"), payload.get("labels"), overwrite=bool(payload.get("overwrite")))
    except FileExistsError:
        return 409, {"error": f"a preset named {name!r} exists; save with overwrite to replace it"}
    except ValueError as e:
        return 400, {"error": str(e)}
    return 200, {"saved": os.path.basename(path)}


def register_routes():
    """Add the routes to ComfyUI's running server (once); nothing happens without one (tests)."""
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:
        return False
    if PromptServer.instance is None or getattr(PromptServer.instance, "_styleclip_routes", False):
        return False
    routes = PromptServer.instance.routes

    @routes.post("/styleclip/sliders/preview")
    async def slider_preview(request):
        try:
            payload = await request.json()
        except ValueError:
            return web.Response(status=400, text="expected JSON")
        status, body = await asyncio.get_running_loop().run_in_executor(None, preview, payload)
        if status == 200:
            return web.Response(body=body, content_type="image/jpeg", headers={"X-StyleCLIP-Seq": str(payload.get("seq", 0)), "Cache-Control": "no-store"})
        return web.Response(status=status, text=body if status != 204 else None)

    @routes.get("/styleclip/presets")
    async def presets(request):
        return web.json_response(preset_list())

    @routes.get("/styleclip/presets/{name}")
    async def preset_get(request):
        status, body = preset_load(request.match_info["name"])
        return web.json_response(body, status=status)

    @routes.post("/styleclip/presets/{name}")
    async def preset_post(request):
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response({"error": "expected JSON"}, status=400)
        status, body = preset_save(request.match_info["name"], payload)
        return web.json_response(body, status=status)

    PromptServer.instance._styleclip_routes = True
    return True
