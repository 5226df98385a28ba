"""ComfyUI adapters: each node converts ComfyUI types, calls styleclip_core, reports progress."""
from comfy_api.latest import ComfyExtension, io

from . import generator_nodes
from .common import register_model_folders

# text edits
from . import clip_nodes, loss_nodes, optimize_nodes  # noqa: E402

NODES: list[type[io.ComfyNode]] = [
    *generator_nodes.NODES,
    # text edits
    *clip_nodes.NODES,
    *loss_nodes.NODES,
    *optimize_nodes.NODES,
]


class StyleCLIPExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> StyleCLIPExtension:
    register_model_folders()
    return StyleCLIPExtension()
