"""ComfyUI-StyleCLIP: text-driven StyleGAN2 editing (StyleCLIP, ICCV 2021) as ComfyUI nodes.

ComfyUI imports this package and calls ``comfy_entrypoint`` (V3 node API). The library that
does the work is ``styleclip_core`` (usable without ComfyUI); ``nodes`` adapts it.
"""
from .nodes import comfy_entrypoint

# The frontend extension in web/: it lists the pack's workflow templates in their numbered order.
WEB_DIRECTORY = "./web"

__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
