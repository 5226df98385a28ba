"""ComfyUI adapters: each node converts ComfyUI types, calls styleclip_core, reports progress."""
from comfy_api.latest import ComfyExtension, io

from . import clip_nodes, generator_nodes, local_nodes, loss_nodes, mapper_nodes, optimize_nodes, photo_nodes
from . import mapper_training_nodes
from . import global_nodes
from . import direction_nodes
from . import inversion_nodes
from . import metrics_nodes
from . import slider_nodes, slider_server
from . import video_nodes
from . import domain_nodes
from .common import register_model_folders

NODES: list[type[io.ComfyNode]] = [
    *generator_nodes.NODES,
    *photo_nodes.NODES,
    *inversion_nodes.NODES,
    *clip_nodes.NODES,
    *loss_nodes.NODES,
    *optimize_nodes.NODES,
    *mapper_nodes.NODES,
    *mapper_training_nodes.NODES,
    *local_nodes.NODES,
    *global_nodes.NODES,
    *direction_nodes.NODES,
    *metrics_nodes.NODES,
    *slider_nodes.NODES,
    *video_nodes.NODES,
    *domain_nodes.NODES,
]


class StyleCLIPExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> StyleCLIPExtension:
    register_model_folders()
    slider_server.register_routes()  # Edit Sliders' live preview and presets (nothing without a server)
    return StyleCLIPExtension()
