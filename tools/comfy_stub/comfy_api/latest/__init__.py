"""Stand-in for comfy_api.latest: the io schema classes, ui outputs and ComfyExtension."""
from abc import ABC, abstractmethod

from . import _io as io
from . import _ui as ui


class ComfyExtension(ABC):
    async def on_load(self) -> None:
        pass

    @abstractmethod
    async def get_node_list(self) -> list:
        ...


__all__ = ["ComfyExtension", "io", "ui"]
