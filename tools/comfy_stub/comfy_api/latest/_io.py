"""The subset of comfy_api.latest.io the pack uses, with the same constructor signatures."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class UploadType(str, Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"


class HiddenHolder:
    """What ComfyUI hands a V3 node as ``cls.hidden`` (only ``unique_id`` here; the rest None)."""

    def __init__(self, unique_id=None):
        self.unique_id = unique_id

    def __getattr__(self, key):
        return None


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"


class Input:
    io_type = None

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, extra_dict=None):
        self.id, self.display_name, self.optional, self.tooltip, self.lazy = id, display_name, optional, tooltip, lazy
        self.extra_dict = extra_dict or {}

    def options(self) -> dict:
        d = {"tooltip": self.tooltip, "display_name": self.display_name, "lazy": self.lazy}
        return {k: v for k, v in {**d, **self.extra_dict}.items() if v is not None}


class WidgetInput(Input):
    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, socketless=None, widget_type=None, force_input=None, extra_dict=None):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
        self.default, self.socketless, self.force_input = default, socketless, force_input

    def options(self):
        d = super().options()
        d.update({k: v for k, v in {"default": self.default, "forceInput": self.force_input}.items() if v is not None})
        return d


class Output:
    io_type = None

    def __init__(self, id=None, display_name=None, tooltip=None, is_output_list=False):
        self.id, self.display_name, self.tooltip, self.is_output_list = id, display_name, tooltip, is_output_list


def _type(name, widget=None):
    class T:
        io_type = name

        class Input(widget or globals()["Input"]):
            io_type = name

        class Output(globals()["Output"]):
            io_type = name

    T.__name__ = name
    return T


class _Int(WidgetInput):
    io_type = "INT"

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, min=None, max=None, step=None, control_after_generate=None, display_mode=None, socketless=None, force_input=None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input)
        self.min, self.max, self.step, self.control_after_generate = min, max, step, control_after_generate

    def options(self):
        d = super().options()
        d.update({k: v for k, v in {"min": self.min, "max": self.max, "step": self.step, "control_after_generate": self.control_after_generate}.items() if v is not None})
        return d


class _Float(WidgetInput):
    io_type = "FLOAT"

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, min=None, max=None, step=None, round=None, display_mode=None, socketless=None, force_input=None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input)
        self.min, self.max, self.step, self.display_mode = min, max, step, display_mode

    def options(self):
        d = super().options()
        display = self.display_mode.value if self.display_mode else None
        d.update({k: v for k, v in {"min": self.min, "max": self.max, "step": self.step, "display": display}.items() if v is not None})
        return d


class _String(WidgetInput):
    io_type = "STRING"

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, multiline=False, placeholder=None, default=None, dynamic_prompts=None, socketless=None, force_input=None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input)
        self.multiline = multiline


class _Boolean(WidgetInput):
    io_type = "BOOLEAN"

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, label_on=None, label_off=None, socketless=None, force_input=None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input)


class _Combo(WidgetInput):
    io_type = "COMBO"

    def __init__(self, id, options=None, display_name=None, optional=False, tooltip=None, lazy=None, default=None, control_after_generate=None, upload=None, image_folder=None, remote=None, socketless=None):
        if isinstance(options, type) and issubclass(options, Enum):
            options = [v.value for v in options]
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless)
        self.choices, self.upload, self.control_after_generate = list(options or []), upload, control_after_generate

    def options(self):
        d = super().options()
        d["options"] = self.choices
        if self.upload is not None:
            d[self.upload.value] = True
        if self.control_after_generate:
            d["control_after_generate"] = True
        return d


Int = _type("INT", _Int)
Float = _type("FLOAT", _Float)
String = _type("STRING", _String)
Boolean = _type("BOOLEAN", _Boolean)
Combo = _type("COMBO", _Combo)
Image = _type("IMAGE")
Mask = _type("MASK")
Latent = _type("LATENT")
Audio = _type("AUDIO")  # {"waveform": [B, channels, samples], "sample_rate": int}
Video = _type("VIDEO")  # an object with get_components(), get_dimensions(), save_to(...) (the harness's VideoStandIn)
AnyType = _type("*")


def Custom(io_type: str):
    return _type(io_type)


@dataclass
class Schema:
    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def validate(self):
        ids = [i.id for i in self.inputs or []] + [o.id for o in self.outputs or [] if o.id]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{self.node_id}: input/output ids must be unique: {ids}")


class NodeOutput:
    def __init__(self, *args: Any, ui=None, expand=None, block_execution=None):
        self.args, self.ui = args, ui

    @property
    def result(self):
        return self.args if self.args else None

    def __getitem__(self, i):
        return self.args[i]


class ComfyNode:
    hidden = None

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def object_info(cls) -> dict:
        """The node's entry of ComfyUI's /object_info, as the frontend consumes it."""
        s = cls.define_schema()
        s.validate()
        info = {"input": {"required": {}, "optional": {}}, "input_order": {"required": [], "optional": []}}
        for i in s.inputs or []:
            group = "optional" if i.optional else "required"
            info["input"][group][i.id] = [i.io_type, i.options()]
            info["input_order"][group].append(i.id)
        info.update(
            output=[o.io_type for o in s.outputs or []],
            output_name=[o.display_name or o.id or o.io_type for o in s.outputs or []],
            output_tooltips=[o.tooltip for o in s.outputs or []],
            output_is_list=[o.is_output_list for o in s.outputs or []],
            name=s.node_id, display_name=s.display_name, description=s.description, category=s.category,
            output_node=s.is_output_node,
        )
        return info
