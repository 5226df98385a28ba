"""Run the pack's nodes and UI-format workflows the way ComfyUI does, without ComfyUI.

* ``load_pack()`` imports the repository as a custom-node package (as ComfyUI does: a package
  named after its folder), on top of the stand-in ComfyUI modules in ``tools/comfy_stub``.
* ``ui_to_prompt()`` converts a workflow saved by the ComfyUI frontend (nodes, links,
  widgets_values) to the API prompt the frontend queues, following the frontend's rules:
  widget values in input order, one extra value after inputs with a seed control, muted
  nodes dropped, bypassed nodes passing their inputs through.
* ``execute()`` validates and runs a prompt in dependency order, each node under
  ``torch.inference_mode()`` as ComfyUI's executor runs it.
It works from ``/object_info``-shaped node descriptions, so the same converter feeds a real
ComfyUI server (tests/test_comfyui_server.py).
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import mimetypes
import os
import sys

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository = the pack
STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "comfy_stub")
PACK = "comfyui_styleclip"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def use_stub():
    if STUB not in sys.path:
        sys.path.insert(0, STUB)
    importlib.import_module("folder_paths")  # the stub's, now first on the path


def load_pack():
    """The pack's top-level module, imported as ComfyUI imports a custom node folder: a package
    named after its folder, whose nodes import the library relatively (``PACK.styleclip_core``).
    Tests import the same files as ``styleclip_core``: two copies of the library, as a test that
    hands its own objects to nodes must expect (nodes take them by what they do, not their class)."""
    use_stub()
    if PACK in sys.modules:
        return sys.modules[PACK]
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    spec = importlib.util.spec_from_file_location(PACK, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK] = module
    spec.loader.exec_module(module)
    return module


def pack_nodes() -> dict[str, type]:
    pack = load_pack()
    extension = asyncio.run(pack.comfy_entrypoint())
    nodes = asyncio.run(extension.get_node_list())
    return {n.define_schema().node_id: n for n in nodes}


# ------------------------------------------------------------------------------------------
# VIDEO values: what ComfyUI's comfy_api VideoFromFile / VideoFromComponents do for the video
# nodes below (comfy_api/latest/_input_impl/video_types.py), with PyAV as ComfyUI uses it. PyAV
# is imported where a video is read or written, so the harness loads without it.


class VideoComponents:
    """A video's frames (IMAGE [T, H, W, 3], 0..1), frame rate (Fraction), audio (AUDIO or None)
    and container metadata (comfy_api's VideoComponents)."""

    def __init__(self, images, frame_rate, audio=None, metadata=None):
        self.images, self.frame_rate, self.audio, self.metadata = images, frame_rate, audio, metadata


class VideoStandIn:
    """A VIDEO value: a file (as Load Video makes) or components (as Create Video makes)."""

    def __init__(self, path: str | None = None, components: VideoComponents | None = None):
        if (path is None) == (components is None):
            raise ValueError("a video is either a file or components")
        self.path, self.components = path, components

    def get_components(self) -> VideoComponents:
        if self.components is not None:
            return VideoComponents(self.components.images, self.components.frame_rate, self.components.audio)
        import av

        with av.open(self.path, mode="r") as container:
            return _decode(container)

    def get_dimensions(self) -> tuple[int, int]:
        """(width, height)."""
        if self.components is not None:
            return self.components.images.shape[2], self.components.images.shape[1]
        import av

        with av.open(self.path, mode="r") as container:
            for stream in container.streams:
                if stream.type == "video":
                    return stream.width, stream.height
        raise ValueError(f"No video stream found in file '{self.path}'")

    def save_to(self, path: str, format: str = "auto", codec: str = "auto", metadata: dict | None = None):
        if self.components is None:
            import av

            with av.open(self.path, mode="r") as container:
                encoding = container.streams.video[0].codec.name if container.streams.video else None
                # as ComfyUI: a file already in the asked container and codec is remuxed (its
                # pixels untouched); otherwise decoded and encoded again
                if (format == "auto" or format in container.format.name.split(",")) and (codec == "auto" or encoding in (None, codec)):
                    return _remux(container, path, metadata)
                components = _decode(container)
            return VideoStandIn(components=components).save_to(path, format, codec, metadata)
        if format not in ("auto", "mp4"):
            raise ValueError("Only MP4 format is supported for now")
        if codec not in ("auto", "h264"):
            raise ValueError("Only H264 codec is supported for now")
        _encode(self.components, path, metadata)


def _decode(container) -> VideoComponents:
    import av
    from fractions import Fraction

    frames = [torch.from_numpy(frame.to_ndarray(format="rgb24")) / 255.0 for frame in container.decode(video=0)]
    images = torch.stack(frames) if frames else torch.zeros(0, 3, 0, 0)
    stream = next(s for s in container.streams if s.type == "video")
    frame_rate = Fraction(stream.average_rate) if stream.average_rate else Fraction(1)
    audio = None
    container.seek(0)
    for stream in container.streams:
        if stream.type != "audio":
            continue
        chunks = [frame.to_ndarray() for packet in container.demux(stream) for frame in packet.decode() if isinstance(frame, av.AudioFrame)]
        if chunks:  # (channels, samples) each
            audio = {"waveform": torch.from_numpy(np.concatenate(chunks, axis=1)).unsqueeze(0), "sample_rate": int(stream.sample_rate or 1)}
    return VideoComponents(images, frame_rate, audio, dict(container.metadata))


def _encode(components: VideoComponents, path: str, metadata: dict | None):
    """h264 in yuv420p at the frame rate rounded to 1/1000 (PyAV's libx264 defaults), audio as AAC,
    metadata as JSON tags: ComfyUI's VideoFromComponents.save_to."""
    import math
    from fractions import Fraction

    import av

    with av.open(path, mode="w", options={"movflags": "use_metadata_tags"}) as output:
        for key, value in (metadata or {}).items():
            output.metadata[key] = json.dumps(value)
        frame_rate = Fraction(round(components.frame_rate * 1000), 1000)
        video = output.add_stream("h264", rate=frame_rate)
        video.width, video.height = components.images.shape[2], components.images.shape[1]
        video.pix_fmt = "yuv420p"
        audio = components.audio
        audio_stream = output.add_stream("aac", rate=int(audio["sample_rate"])) if audio else None
        for image in components.images:
            # truncated, not rounded, to 8 bits: the real node's (frame * 255).byte()
            rgb = (image * 255).clamp(0, 255).byte().cpu().numpy()
            output.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")))
        output.mux(video.encode(None))
        if audio_stream is not None:
            rate = int(audio["sample_rate"])
            waveform = audio["waveform"][:, :, :math.ceil(rate / frame_rate * components.images.shape[0])]
            frame = av.AudioFrame.from_ndarray(waveform.movedim(2, 1).reshape(1, -1).float().numpy(), format="flt",
                                               layout="mono" if waveform.shape[1] == 1 else "stereo")
            frame.sample_rate, frame.pts = rate, 0
            output.mux(audio_stream.encode(frame))
            output.mux(audio_stream.encode(None))


def _remux(container, path: str, metadata: dict | None):
    """The file's streams copied packet by packet into ``path``, its metadata kept and ``metadata``
    added (ComfyUI's VideoFromFile.save_to when no re-encode is needed)."""
    import av

    with av.open(path, mode="w", options={"movflags": "use_metadata_tags"}) as output:
        for key, value in container.metadata.items():
            if metadata is None or key not in metadata:
                output.metadata[key] = value
        for key, value in (metadata or {}).items():
            output.metadata[key] = value if isinstance(value, str) else json.dumps(value)
        streams = {s: output.add_stream_from_template(template=s, opaque=True) for s in container.streams if s.type in ("video", "audio", "subtitle")}
        for packet in container.demux():
            if packet.stream in streams and packet.dts is not None:
                packet.stream = streams[packet.stream]
                output.mux(packet)


# ------------------------------------------------------------------------------------------
# The core ComfyUI nodes our workflows use, with the real nodes' inputs and outputs.


def _core_nodes():
    use_stub()
    import folder_paths
    from comfy_api.latest import io

    class SaveImage(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="SaveImage", category="image", is_output_node=True,
                             inputs=[io.Image.Input("images"), io.String.Input("filename_prefix", default="ComfyUI")])

        @classmethod
        def execute(cls, images, filename_prefix):
            folder, name, counter, sub, _ = folder_paths.get_save_image_path(filename_prefix, folder_paths.get_output_directory())
            saved = []
            for i, img in enumerate(images):
                file = f"{name}_{counter + i:05}_.png"
                Image.fromarray(np.clip(img.cpu().numpy() * 255, 0, 255).astype(np.uint8)).save(os.path.join(folder, file))
                saved.append({"filename": file, "subfolder": sub, "type": "output"})
            return io.NodeOutput(ui={"images": saved})

    class PreviewImage(SaveImage):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="PreviewImage", category="image", is_output_node=True, inputs=[io.Image.Input("images")])

        @classmethod
        def execute(cls, images):
            return io.NodeOutput(ui={"images": [{"shape": list(images.shape)}]})

    class LoadImage(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            files = sorted(f for f in os.listdir(folder_paths.get_input_directory())) if os.path.isdir(folder_paths.get_input_directory()) else []
            return io.Schema(node_id="LoadImage", category="image",
                             inputs=[io.Combo.Input("image", options=files, upload=io.UploadType.image)],
                             outputs=[io.Image.Output(), io.Mask.Output()])

        @classmethod
        def execute(cls, image):
            img = Image.open(folder_paths.get_annotated_filepath(image))
            rgb = torch.from_numpy(np.asarray(img.convert("RGB")).astype(np.float32) / 255)[None]
            mask = (1 - torch.from_numpy(np.asarray(img.getchannel("A")).astype(np.float32) / 255))[None] if "A" in img.getbands() else torch.zeros(1, 64, 64)
            return io.NodeOutput(rgb, mask)

    class SolidMask(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="SolidMask", category="mask", outputs=[io.Mask.Output()],
                             inputs=[io.Float.Input("value", default=1.0), io.Int.Input("width", default=512), io.Int.Input("height", default=512)])

        @classmethod
        def execute(cls, value, width, height):
            return io.NodeOutput(torch.full((1, height, width), value))

    class MaskComposite(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="MaskComposite", category="mask", outputs=[io.Mask.Output()], inputs=[
                io.Mask.Input("destination"), io.Mask.Input("source"), io.Int.Input("x", default=0), io.Int.Input("y", default=0),
                io.Combo.Input("operation", options=["multiply", "add", "subtract", "and", "or", "xor"])])

        @classmethod
        def execute(cls, destination, source, x, y, operation):
            out = destination.reshape(-1, *destination.shape[-2:]).clone()
            src = source.reshape(-1, *source.shape[-2:])
            h, w = min(src.shape[-2], out.shape[-2] - y), min(src.shape[-1], out.shape[-1] - x)
            region, s = out[:, y:y + h, x:x + w], src[:, :h, :w]
            ops = {"multiply": lambda a, b: a * b, "add": lambda a, b: a + b, "subtract": lambda a, b: a - b,
                   "and": lambda a, b: torch.logical_and(a.round().bool(), b.round().bool()).float(),
                   "or": lambda a, b: torch.logical_or(a.round().bool(), b.round().bool()).float(),
                   "xor": lambda a, b: torch.logical_xor(a.round().bool(), b.round().bool()).float()}
            out[:, y:y + h, x:x + w] = ops[operation](region, s)
            return io.NodeOutput(out.clamp(0, 1))

    class GrowMask(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="GrowMask", category="mask", outputs=[io.Mask.Output()],
                             inputs=[io.Mask.Input("mask"), io.Int.Input("expand", default=0), io.Boolean.Input("tapered_corners", default=True)])

        @classmethod
        def execute(cls, mask, expand, tapered_corners):
            m = mask.reshape(-1, 1, *mask.shape[-2:])
            for _ in range(abs(expand)):
                m = torch.nn.functional.max_pool2d(m if expand > 0 else -m, 3, 1, 1) * (1 if expand > 0 else -1)
            return io.NodeOutput(m[:, 0])

    class ImageBatch(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="ImageBatch", category="image", outputs=[io.Image.Output()],
                             inputs=[io.Image.Input("image1"), io.Image.Input("image2")])

        @classmethod
        def execute(cls, image1, image2):
            # ComfyUI's nodes.ImageBatch: image2 resized (bilinear; same aspect here, so no crop) to image1's size
            if image1.shape[1:] != image2.shape[1:]:
                image2 = torch.nn.functional.interpolate(image2.movedim(-1, 1), size=image1.shape[1:3], mode="bilinear").movedim(1, -1)
            return io.NodeOutput(torch.cat((image1, image2), dim=0))

    class PreviewAny(io.ComfyNode):
        @classmethod
        def define_schema(cls):  # comfy_extras/nodes_preview_any.py: shows any value as text on the node
            return io.Schema(node_id="PreviewAny", category="utils", inputs=[io.AnyType.Input("source")], outputs=[], is_output_node=True)

        @classmethod
        def execute(cls, source=None):
            return io.NodeOutput(ui={"text": (source if isinstance(source, str) else json.dumps(source),)})

    # comfy_extras/nodes_video.py
    class LoadVideo(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            folder = folder_paths.get_input_directory()
            files = [f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f))] if os.path.isdir(folder) else []
            # folder_paths.filter_files_content_types(files, ["video"]): the files whose MIME type is video/*
            files = [f for f in files if (mimetypes.guess_type(f, strict=False)[0] or "").split("/")[0] == "video"]
            return io.Schema(node_id="LoadVideo", display_name="Load Video", category="image/video",
                             inputs=[io.Combo.Input("file", options=sorted(files), upload=io.UploadType.video)],
                             outputs=[io.Video.Output()])

        @classmethod
        def execute(cls, file):
            return io.NodeOutput(VideoStandIn(path=folder_paths.get_annotated_filepath(file)))

        @classmethod
        def fingerprint_inputs(cls, file):
            return os.path.getmtime(folder_paths.get_annotated_filepath(file))

        @classmethod
        def validate_inputs(cls, file):
            if not folder_paths.exists_annotated_filepath(file):
                return f"Invalid video file: {file}"
            return True

    class GetVideoComponents(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="GetVideoComponents", display_name="Get Video Components", category="image/video",
                             inputs=[io.Video.Input("video")],
                             outputs=[io.Image.Output(display_name="images"), io.Audio.Output(display_name="audio"), io.Float.Output(display_name="fps")])

        @classmethod
        def execute(cls, video):
            components = video.get_components()
            return io.NodeOutput(components.images, components.audio, float(components.frame_rate))

    class CreateVideo(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="CreateVideo", display_name="Create Video", category="image/video",
                             inputs=[io.Image.Input("images"), io.Float.Input("fps", default=30.0, min=1.0, max=120.0, step=1.0),
                                     io.Audio.Input("audio", optional=True)],
                             outputs=[io.Video.Output()])

        @classmethod
        def execute(cls, images, fps, audio=None):
            from fractions import Fraction

            return io.NodeOutput(VideoStandIn(components=VideoComponents(images, Fraction(fps), audio)))

    class SaveVideo(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="SaveVideo", display_name="Save Video", category="image/video",
                             inputs=[io.Video.Input("video"), io.String.Input("filename_prefix", default="video/ComfyUI"),
                                     io.Combo.Input("format", options=["auto", "mp4"], default="auto"),
                                     io.Combo.Input("codec", options=["auto", "h264"], default="auto")],
                             outputs=[], hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo], is_output_node=True)

        @classmethod
        def execute(cls, video, filename_prefix, format, codec):
            width, height = video.get_dimensions()
            folder, name, counter, sub, _ = folder_paths.get_save_image_path(filename_prefix, folder_paths.get_output_directory(), width, height)
            metadata = {}
            hidden = cls.hidden or io.HiddenHolder()
            if hidden.extra_pnginfo is not None:
                metadata.update(hidden.extra_pnginfo)
            if hidden.prompt is not None:
                metadata["prompt"] = hidden.prompt
            file = f"{name}_{counter:05}_.mp4"  # the one container there is (VideoContainer.get_extension)
            video.save_to(os.path.join(folder, file), format=format, codec=codec, metadata=metadata or None)
            # ui.PreviewVideo([ui.SavedResult(file, subfolder, FolderType.output)]).as_dict()
            return io.NodeOutput(ui={"images": [{"filename": file, "subfolder": sub, "type": "output"}], "animated": (True,)})

    return {c.define_schema().node_id: c for c in (SaveImage, PreviewImage, LoadImage, SolidMask, MaskComposite, GrowMask, ImageBatch, PreviewAny,
                                                   LoadVideo, GetVideoComponents, CreateVideo, SaveVideo)}


def all_nodes() -> dict[str, type]:
    return {**_core_nodes(), **pack_nodes()}


def object_info(nodes: dict[str, type]) -> dict:
    return {name: cls.object_info() for name, cls in nodes.items()}


# ------------------------------------------------------------------------------------------
# UI workflow -> API prompt (the frontend's graphToPrompt)


def combo_options(spec: list) -> list | None:
    """Options of a combo input in either /object_info form: [[options...], {...}] or ["COMBO", {"options": [...]}]."""
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO":
        return (spec[1] if len(spec) > 1 else {}).get("options", [])
    return None


def _widget_inputs(info: dict) -> list[tuple[str, list]]:
    """Inputs that carry a widget, in input order (required, then optional)."""
    out = []
    for group in ("required", "optional"):
        for name in info.get("input_order", {}).get(group, list(info["input"].get(group, {}))):
            spec = info["input"][group][name]
            kind = "COMBO" if combo_options(spec) is not None else spec[0]
            opts = spec[1] if len(spec) > 1 else {}
            if kind in WIDGET_TYPES and not opts.get("forceInput"):
                out.append((name, spec))
    return out


def _has_control(name: str, spec: list) -> bool:
    opts = spec[1] if len(spec) > 1 else {}
    return bool(opts.get("control_after_generate")) or name in ("seed", "noise_seed")


def _has_upload_button(spec: list) -> bool:
    """An image or video upload combo: the frontend adds an upload button widget after it and
    saves its value too (Load Image's and Load Video's widgets_values: ["name", "image"])."""
    opts = spec[1] if len(spec) > 1 else {}
    return bool(opts.get("image_upload") or opts.get("video_upload"))


def ui_to_prompt(workflow: dict, info: dict) -> dict:
    nodes = {str(n["id"]): n for n in workflow["nodes"]}
    links = {}
    for link in workflow.get("links", []):
        link_id, src, src_slot, dst, dst_slot = (link["id"], link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"]) if isinstance(link, dict) else link[:5]
        links[link_id] = (str(src), src_slot)

    def resolve(src_id, slot):
        """Follow bypassed nodes and reroutes back to a real output."""
        node = nodes[src_id]
        if node["type"] == "Reroute" or node.get("mode") == 4:
            out_type = node["outputs"][slot]["type"] if node.get("outputs") else None
            for inp in node.get("inputs", []):
                if inp.get("link") is not None and (node["type"] == "Reroute" or inp.get("type") == out_type):
                    return resolve(*links[inp["link"]])
            return None
        return [src_id, slot]

    prompt = {}
    for node_id, node in nodes.items():
        if node.get("mode") in (2, 4) or node["type"] in ("Reroute", "Note", "MarkdownNote"):
            continue
        if node["type"] not in info:
            raise KeyError(f"workflow node {node_id} has unknown type {node['type']!r} (missing node)")
        node_info = info[node["type"]]
        inputs = {}
        values = list(node.get("widgets_values") or [])
        if isinstance(node.get("widgets_values"), dict):
            values_by_name = node["widgets_values"]
            for name, _ in _widget_inputs(node_info):
                if name in values_by_name:
                    inputs[name] = values_by_name[name]
        else:
            i = 0
            for name, spec in _widget_inputs(node_info):
                if i >= len(values):
                    break
                inputs[name] = values[i]
                i += 2 if _has_control(name, spec) else 1
                if _has_upload_button(spec):
                    i += 1  # the upload button's own value
        for inp in node.get("inputs", []):
            if inp.get("link") is not None:
                source = resolve(*links[inp["link"]])
                if source is not None:
                    inputs[inp["name"]] = source
        prompt[node_id] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def set_widgets(workflow: dict, info: dict, node_type: str, **values) -> dict:
    """A copy of a UI workflow with widget values of every ``node_type`` node replaced by name."""
    import copy

    workflow = copy.deepcopy(workflow)
    for node in workflow["nodes"]:
        if node["type"] != node_type:
            continue
        i = 0
        for name, spec in _widget_inputs(info[node_type]):
            if name in values:
                node["widgets_values"][i] = values[name]
            i += 2 if _has_control(name, spec) else 1
            i += 1 if _has_upload_button(spec) else 0
    return workflow


# ------------------------------------------------------------------------------------------
# Execution


def custom_validated(node_class) -> list[str]:
    """Inputs a node validates itself (its ``validate_inputs`` names them): ComfyUI then skips its
    own list and range checks for them (execution.validate_inputs) and asks the node instead."""
    import inspect

    from comfy_api.latest import io

    own = getattr(node_class, "validate_inputs", None)
    if own is None or getattr(own, "__func__", own) is getattr(getattr(io.ComfyNode, "validate_inputs", None), "__func__", None):
        return []

    return [p for p in inspect.signature(getattr(node_class, "validate_inputs")).parameters if p != "kwargs"]


def validate(prompt: dict, info: dict, nodes: dict[str, type] | None = None):
    for node_id, node in prompt.items():
        node_info = info[node["class_type"]]
        node_class = (nodes or {}).get(node["class_type"])
        own = custom_validated(node_class)
        if own:
            verdict = node_class.validate_inputs(**{k: node["inputs"][k] for k in own if k in node["inputs"]})
            if verdict is not True:
                raise ValueError(f"node {node_id} ({node['class_type']}): custom validation failed: {verdict}")
        for group in ("required", "optional"):
            for name, spec in node_info["input"].get(group, {}).items():
                if name not in node["inputs"]:
                    if group == "required":
                        raise ValueError(f"node {node_id} ({node['class_type']}): required input {name!r} is missing")
                    continue
                value = node["inputs"][name]
                if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                    continue  # a link
                if name in own:
                    continue
                options = combo_options(spec)
                if options is not None and value not in options:
                    raise ValueError(f"node {node_id} ({node['class_type']}): value {value!r} for {name!r} is not among the options {options[:5]}")
                opts = spec[1] if len(spec) > 1 else {}
                if spec[0] in ("INT", "FLOAT"):
                    if "min" in opts and value < opts["min"] or "max" in opts and value > opts["max"]:
                        raise ValueError(f"node {node_id} ({node['class_type']}): {name}={value} outside [{opts.get('min')}, {opts.get('max')}]")


def execute(prompt: dict, nodes: dict[str, type]) -> dict:
    """Run every output node's dependencies; returns {node_id: (outputs tuple, ui dict)}."""
    info = object_info(nodes)
    validate(prompt, info, nodes)
    done: dict[str, tuple] = {}

    def run(node_id):
        if node_id in done:
            return done[node_id]
        node = prompt[node_id]
        kwargs = {}
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0] in prompt:
                kwargs[name] = run(value[0])[0][value[1]]
            else:
                kwargs[name] = value
        result = run_node(nodes[node["class_type"]], kwargs, unique_id=node_id)
        done[node_id] = (tuple(result.args), result.ui)
        return done[node_id]

    for node_id, node in prompt.items():
        if info[node["class_type"]].get("output_node"):
            run(node_id)
    return done


def run_node(cls: type, inputs: dict, unique_id: str | None = None):
    """One node run as ComfyUI's executor runs a V3 node: ``execute`` called with every input by
    its name (the prompt's inputs only: an optional input left unconnected is not passed), under
    ``torch.inference_mode()``, on a copy of the class whose ``hidden`` holds the node's id when
    its schema asks for hidden inputs (ComfyUI's PREPARE_CLASS_CLONE). Returns the ``NodeOutput``."""
    from comfy_api.latest import io

    if cls.define_schema().hidden:
        holder = io.HiddenHolder(unique_id)
        # a wrapper a test put in the class's place (not a class) makes the copy itself
        cls = type(cls.__name__, (cls,), {"hidden": holder}) if isinstance(cls, type) else cls.with_hidden(holder)
    with torch.inference_mode():
        return cls.execute(**inputs)


def run_workflow(path: str) -> dict:
    with open(path) as f:
        workflow = json.load(f)
    nodes = all_nodes()
    prompt = ui_to_prompt(workflow, object_info(nodes))
    return execute(prompt, nodes)
