"""ComfyUI adapters: each node converts ComfyUI types, calls styleclip_core, reports progress."""
from comfy_api.latest import ComfyExtension, io

from . import generator_nodes
from .common import register_model_folders

NODES: list[type[io.ComfyNode]] = [*generator_nodes.NODES]
# issue 4: real photos
from . import photo_nodes  # noqa: E402

NODES += photo_nodes.NODES


class StyleCLIPExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> StyleCLIPExtension:
    register_model_folders()
    return StyleCLIPExtension()
