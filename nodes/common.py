"""What every StyleCLIP node shares: socket types, model folders, device, progress."""
from __future__ import annotations

import logging
import os

import comfy.model_management as mm
import torch
import comfy.utils
import folder_paths
from comfy_api.latest import io

from ..styleclip_core.models.render import to_unit_range

# Socket types of the pack (never ComfyUI's own LATENT, which holds diffusion latents).
Generator = io.Custom("SCLIP_GENERATOR")
Latent = io.Custom("SCLIP_LATENT")
Mapper = io.Custom("SCLIP_MAPPER")
FaceParser = io.Custom("SCLIP_FACE_PARSER")
E4E = io.Custom("SCLIP_E4E")
Alignment = io.Custom("SCLIP_ALIGNMENT")  # list[styleclip_core.photos.align.FaceAlignment], one per image
Clip = io.Custom("SCLIP_CLIP")
ArcFace = io.Custom("SCLIP_ARCFACE")
Loss = io.Custom("SCLIP_LOSS")
Relevance = io.Custom("SCLIP_RELEVANCE")  # styleclip_core.edits.relevance_cache.Relevance
Direction = io.Custom("SCLIP_DIRECTION")  # styleclip_core.edits.directions.Direction (W, W+ rows or StyleSpace)
Lpips = io.Custom("SCLIP_LPIPS")  # styleclip_core.models.lpips.LPIPS

CATEGORY = "StyleCLIP"

# The trainers' choice when their checkpoint file exists (label -> training_checkpoints.checkpoint_path's if_exists).
IF_EXISTS_OPTIONS = {"new numbered file": "number", "resume": "resume", "overwrite": "overwrite"}

# Prefix of a loader's info line when the file is a tiny random stand-in (tiny_models).
TINY_STAND_IN = "TINY RANDOM STAND-IN (not the real model): "

# ComfyUI models subfolder -> file extensions that appear in its dropdowns.
MODEL_FOLDERS: dict[str, tuple[str, ...]] = {
    "stylegan": (".pt", ".pth", ".pkl", ".safetensors"),
    "styleclip_mappers": (".pt", ".pth", ".safetensors"),
    "face_parsing": (".pth", ".pt"),
    "e4e": (".pt", ".pth"),
    "mediapipe": (".task",),
    "openclip": (".pt", ".pth", ".bin", ".safetensors"),
    "arcface": (".pth", ".pt", ".safetensors"),
    "styleclip_global": (".npy", ".safetensors"),  # fs3 and style statistics (computed ones are cached here)
    "styleclip_directions": (".safetensors", ".npy", ".pt", ".pth"),  # ours, and single W / W+ arrays (InterFaceGAN boundaries, ...)
    "lpips": (".pth", ".pt", ".safetensors"),  # torchvision backbones of LPIPS (the heads ship with the lpips package)
}


def register_model_folders():
    """Add our folders under ComfyUI's models directory, keeping paths users configured
    in extra_model_paths.yaml, and filter each dropdown to the formats we read."""
    for name, extensions in MODEL_FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, name)
        paths, _ = folder_paths.folder_names_and_paths.get(name, ([], set()))
        if default not in paths:
            paths = [default, *paths]
        folder_paths.folder_names_and_paths[name] = (paths, set(extensions))


def model_files(folder: str) -> list[str]:
    return folder_paths.get_filename_list(folder)


def device():
    return mm.get_torch_device()


def managed(model: torch.nn.Module) -> torch.nn.Module:
    """Hand a freshly loaded model to ComfyUI's model management: it waits on ComfyUI's offload
    device and ``use`` brings it to the compute device, so ComfyUI can offload it when another
    model needs the memory or the user frees models, like its own checkpoints."""
    from comfy.model_patcher import ModelPatcher

    model.to(mm.unet_offload_device())
    # On the module itself (not in a registry) so that the patcher dies with the model when
    # ComfyUI's node cache drops it.
    model.comfy_patcher = ModelPatcher(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())
    return model


def use(*models: torch.nn.Module | None) -> None:
    """Load the models a node is about to run onto ComfyUI's device, all of them at once so
    that freeing memory for one never offloads another."""
    patchers = [m.comfy_patcher for m in models if m is not None and getattr(m, "comfy_patcher", None) is not None]
    if patchers:
        with torch.inference_mode(False):  # weights moved here must stay usable by autograd
            mm.load_models_gpu(patchers, force_full_load=True)


def gradient_capable():
    """ComfyUI runs nodes under torch.inference_mode; tensors made there can never take part in
    autograd. Models that gradient-based nodes differentiate through (generator, CLIP, ArcFace)
    are loaded, and those nodes run, inside this context instead."""
    return torch.inference_mode(False)


class NodeProgress:
    """ComfyUI progress bar + interruption check, passed to the library as ``progress(done, total, preview)``.

    ``preview`` is a generator image batch in [-1, 1]; its first image is shown on the node.
    """

    def __init__(self, total: int):
        self.bar = comfy.utils.ProgressBar(total)

    def __call__(self, done: int, total: int, preview=None):
        mm.throw_exception_if_processing_interrupted()
        shown = None
        if preview is not None:
            from PIL import Image

            pixels = (to_unit_range(preview[:1].detach())[0].cpu().numpy() * 255).round().astype("uint8")
            shown = ("JPEG", Image.fromarray(pixels), 512)
        self.bar.update_absolute(done, total, shown)
        mm.throw_exception_if_processing_interrupted()


def show_text(text: str):
    """A status line under the running node (ComfyUI's progress text) and in the console log."""
    logging.info("StyleCLIP: %s", text)
    try:
        from comfy_execution.utils import get_executing_context
        from server import PromptServer
    except ImportError:  # the stand-in ComfyUI of the tests has no server
        return
    context = get_executing_context()
    if context is not None and PromptServer.instance is not None:
        PromptServer.instance.send_progress_text(text, context.node_id)


def unique_output_path(filename_prefix: str, extension: str) -> tuple[str, str]:
    """A new file under ComfyUI's output folder, numbered like its image savers; never an existing one."""
    out_dir = folder_paths.get_output_directory()
    full_folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, out_dir)
    while True:
        name = f"{filename}_{counter:05}_{extension}"
        path = os.path.join(full_folder, name)
        if not os.path.exists(path):
            return path, os.path.join(subfolder, name) if subfolder else name
        counter += 1


def unique_model_path(folder: str, name: str, extension: str, what: str) -> str:
    """A new file ``name`` + ``extension`` in the first path of a models folder (``name_00001`` ... when
    taken): never an existing file. ``name`` is letters, digits, '-', '_', '.' and spaces."""
    import re

    name = name.strip()
    if not re.fullmatch(r"[\w\-. ]+", name) or name.startswith("."):
        raise ValueError(f"{what} name {name!r}: use letters, digits, '-', '_', '.' and spaces only")
    directory = folder_paths.get_folder_paths(folder)[0]
    os.makedirs(directory, exist_ok=True)
    path, counter = os.path.join(directory, name + extension), 1
    while os.path.exists(path):
        path, counter = os.path.join(directory, f"{name}_{counter:05}{extension}"), counter + 1
    return path


# ---- text edits: model files users download themselves ----------------------------------

MODEL_HINTS = {
    "openclip": "OpenAI's CLIP ViT-B/32 (ViT-B-32.pt from OpenAI's CLIP release) or other open_clip weights",
    "arcface": "the ArcFace IR-SE50 identity network (model_ir_se50.pth from the pSp / e4e release)",
    "lpips": "torchvision's alexnet-owt-7be5be79.pth (LPIPS-alex) or vgg16-397923af.pth (LPIPS-vgg, the projector's)",
}


def model_path(folder: str, filename: str) -> str:
    """Full path of a model file; a missing one is an error that says which file goes where."""
    path = folder_paths.get_full_path(folder, filename) if filename else None
    if path is None:
        places = ", ".join(folder_paths.get_folder_paths(folder)) or os.path.join(folder_paths.models_dir, folder)
        raise FileNotFoundError(
            f"model file {filename or '(none selected)'!r} not found in the '{folder}' model folder ({places}); "
            f"put {MODEL_HINTS.get(folder, 'the file')} there and refresh (see the StyleCLIP README, Models)"
        )
    return path
