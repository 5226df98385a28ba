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

The handlers' work is in plain functions (the library's ``edits.sliders.preview``, ``preset_*``
here) so tests can call them without a server; rendering runs in a worker thread so the server
keeps serving.
"""
from __future__ import annotations

import asyncio
import os

from ..styleclip_core.edits.sliders import PreviewCache, preview
from ..styleclip_core.formats import preset_files

CACHE = PreviewCache()


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
        status, body = await asyncio.get_running_loop().run_in_executor(None, preview, payload, CACHE)
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
