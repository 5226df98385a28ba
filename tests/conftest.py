import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

REFERENCE = os.environ.get("STYLECLIP_REFERENCE", os.path.join(os.path.dirname(ROOT), "shared", "reference"))
FIXTURES = os.path.join(REFERENCE, "fixtures")
MANIFESTS = os.path.join(REFERENCE, "manifests")

# Every node the pack registers (comfy_entrypoint), by node id, grouped by nodes/ module.
PACK_NODE_IDS = frozenset({
    "StyleCLIP_LoadCLIP", "StyleCLIP_LoadArcFace", "StyleCLIP_CLIPScore",  # clip_nodes
    "StyleCLIP_LoadGenerator", "StyleCLIP_SampleLatents", "StyleCLIP_Synthesize", "StyleCLIP_MixLatents",  # generator_nodes
    "StyleCLIP_SaveLatents", "StyleCLIP_LoadLatents", "StyleCLIP_LoadLatentFolder", "StyleCLIP_ConvertGenerator",
    "StyleCLIP_ChannelRelevance", "StyleCLIP_GlobalDirection", "StyleCLIP_ApplyGlobalDirection",  # global_nodes
    "StyleCLIP_CombineDirections", "StyleCLIP_SaveDirection", "StyleCLIP_LoadDirection", "StyleCLIP_ImageGrid",
    "StyleCLIP_LocalEdit", "StyleCLIP_LoadFaceParser", "StyleCLIP_FaceParsingMask",  # local_nodes
    "StyleCLIP_CLIPLoss", "StyleCLIP_DirectionalCLIPLoss", "StyleCLIP_IdentityLoss", "StyleCLIP_LatentL2Loss",  # loss_nodes
    "StyleCLIP_RegionPreservationLoss",
    "StyleCLIP_LoadMapper", "StyleCLIP_ApplyMapper",  # mapper_nodes
    "StyleCLIP_TrainMapper",  # mapper_training_nodes
    "StyleCLIP_OptimizeLatents",  # optimize_nodes
    "StyleCLIP_LoadE4E", "StyleCLIP_InvertImages", "StyleCLIP_ExamplePortrait", "StyleCLIP_AlignFaces", "StyleCLIP_PasteFaceBack",  # photo_nodes
})


@pytest.fixture(scope="session")
def comfyui_server(tmp_path_factory):
    """(url, base dir) of a real ComfyUI running the pack; skips without COMFYUI_PATH."""
    import real_comfyui

    if not real_comfyui.COMFYUI:
        pytest.skip("COMFYUI_PATH is not set")
    base = tmp_path_factory.mktemp("comfyui_base")
    with real_comfyui.running_comfyui(str(base), ROOT) as url:
        yield url, base


def load_fixture(name):
    """(tensors, json) of a golden fixture; fails (never skips) when the reference folder is absent."""
    import json

    from safetensors.torch import load_file

    base = os.path.join(FIXTURES, name)
    if not os.path.exists(base + ".json"):
        pytest.fail(f"fixture {base}.json not found: ../shared/reference must sit beside the repository")
    with open(base + ".json") as f:
        meta = json.load(f)
    return load_file(base + ".safetensors"), meta


def load_manifest(name):
    import json

    with open(os.path.join(MANIFESTS, name + ".json")) as f:
        return json.load(f)


def strip(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """A stand-in ComfyUI home (models with the tiny stand-ins, input, output) and the pack's nodes."""
    import comfy_harness
    from styleclip_core.formats import tiny_models

    comfy_harness.use_stub()
    import folder_paths

    base = tmp_path_factory.mktemp("comfy_home")
    folder_paths.set_base(str(base))
    tiny_models.write_models_folder(os.path.join(str(base), "models"))
    write_test_inputs(os.path.join(str(base), "input"))
    nodes = comfy_harness.all_nodes()

    def run(node_id, /, *, unvalidated=False, **inputs):
        """One node run as ComfyUI runs a queued node, the one way tests run a node: its inputs
        by name, checked against the node's schema as ComfyUI validates a prompt (required
        inputs present, combo values among the options, numbers within min and max), then
        ``execute`` called by keyword under torch.inference_mode() by the harness executor's
        own call (comfy_harness.run_node). Returns the NodeOutput (``.args``, ``.ui``).
        ``unvalidated=True`` skips the check, for a value ComfyUI's validation would refuse
        that the node must still handle itself (a model file gone since the list was made)."""
        cls = nodes[node_id]
        info = cls.object_info()
        unknown = set(inputs) - set(info["input"]["required"]) - set(info["input"]["optional"])
        if unknown:
            raise TypeError(f"{node_id} has no input {sorted(unknown)}")
        if not unvalidated:
            comfy_harness.validate({node_id: {"class_type": node_id, "inputs": inputs}}, {node_id: info}, {node_id: cls})
        return comfy_harness.run_node(cls, inputs)

    def library(module):
        """The pack's own copy of a library module (``library("photos.align")``), as its nodes
        import it: what a test patches to change what a node does."""
        import importlib

        return importlib.import_module(f"{comfy_harness.PACK}.styleclip_core.{module}")

    return type("ComfyHome", (), {"base": base, "nodes": nodes, "folder_paths": folder_paths, "harness": comfy_harness, "run": staticmethod(run),
                                  "library": staticmethod(library)})


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    """A models folder with every tiny stand-in, written once per test session."""
    from styleclip_core.formats import tiny_models

    base = str(tmp_path_factory.mktemp("tiny_models"))
    tiny_models.write_models_folder(base)
    return base


# ---- photos ----------------------------------------------------------------------------------


def write_test_inputs(input_dir):
    """Images the node tests load from ComfyUI's input folder (made here, never committed); the
    shipped workflows load none."""
    import synthetic_face

    synthetic_face.write_portrait(input_dir)


def photo_deps_missing() -> str | None:
    """Why the built-in face detector (mediapipe's own face mesh) or the Example Portrait
    (scikit-image's astronaut.png) cannot run here, or None. The pack's requirements install both,
    so in CI they run."""
    import importlib.util

    if importlib.util.find_spec("skimage") is None:
        return "scikit-image is not installed"
    if importlib.util.find_spec("mediapipe") is None:
        return "mediapipe is not installed"
    import mediapipe

    if getattr(getattr(mediapipe, "solutions", None), "face_mesh", None) is None:
        return f"mediapipe {getattr(mediapipe, '__version__', '?')} has no built-in face mesh (0.10.30 and later)"
    return None


def skip_without_photo_deps(workflow):
    """A workflow that starts from the Example Portrait or finds faces with Align Faces runs as
    shipped (no detector stand-in, no photo in the input folder); skip it only where the
    requirements behind those nodes are not installed."""
    types = {n["type"] for n in workflow["nodes"]}
    why = photo_deps_missing() if types & {"StyleCLIP_ExamplePortrait", "StyleCLIP_AlignFaces"} else None
    if why:
        pytest.skip(f"{why}: the photo workflows need the pack's requirements")
    return workflow
