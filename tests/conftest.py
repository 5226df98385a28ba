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
    "StyleCLIP_SaveLatents", "StyleCLIP_LoadLatents", "StyleCLIP_LoadLatentFolder", "StyleCLIP_ConvertGenerator", "StyleCLIP_TransformStyleGAN3",
    "StyleCLIP_ChannelRelevance", "StyleCLIP_GlobalDirection", "StyleCLIP_ApplyGlobalDirection",  # global_nodes
    "StyleCLIP_CombineDirections", "StyleCLIP_SaveDirection", "StyleCLIP_LoadDirection", "StyleCLIP_ImageGrid",
    "StyleCLIP_SeFaDirection", "StyleCLIP_GANSpaceDirection",  # direction_nodes
    "StyleCLIP_LocalEdit", "StyleCLIP_LoadFaceParser", "StyleCLIP_FaceParsingMask",  # local_nodes
    "StyleCLIP_CLIPLoss", "StyleCLIP_DirectionalCLIPLoss", "StyleCLIP_IdentityLoss", "StyleCLIP_LatentL2Loss",  # loss_nodes
    "StyleCLIP_RegionPreservationLoss",
    "StyleCLIP_LoadMapper", "StyleCLIP_ApplyMapper",  # mapper_nodes
    "StyleCLIP_TrainMapper",  # mapper_training_nodes
    "StyleCLIP_OptimizeLatents",  # optimize_nodes
    "StyleCLIP_LoadE4E", "StyleCLIP_InvertImages", "StyleCLIP_ExamplePortrait", "StyleCLIP_AlignFaces", "StyleCLIP_PasteFaceBack",  # photo_nodes
    "StyleCLIP_LoadLPIPS", "StyleCLIP_ProjectLatents", "StyleCLIP_PivotalTuning", "StyleCLIP_SaveGenerator",  # inversion_nodes
    "StyleCLIP_EditMetrics",  # metrics_nodes
    "StyleCLIP_EditSliders", "StyleCLIP_MapperDirection",  # slider_nodes
    "StyleCLIP_ExampleClip", "StyleCLIP_AlignVideoFaces", "StyleCLIP_InvertFrames", "StyleCLIP_TuneOnClip", "StyleCLIP_EditFrames",
    "StyleCLIP_StitchAndPasteBack", "StyleCLIP_VideoConsistency",  # video_nodes
    "StyleCLIP_TrainDomain", "StyleCLIP_LoadAdaptedGenerator",  # domain_nodes
})

# ---- thread count ------------------------------------------------------------------------------
# STYLECLIP_TEST_THREADS=N runs the session with torch.set_num_threads(N) (float32 sums are split
# and ordered by the thread count, so every tolerance must hold at 1 thread and at many), e.g.
#   STYLECLIP_TEST_THREADS=1 python -m pytest tests -q -x -p no:randomly
# Unset: torch's default (one thread per core). OMP_NUM_THREADS / MKL_NUM_THREADS are set to N as
# well (unless already set) so that subprocesses the tests start (ComfyUI servers) use N too.
#
# Tolerances: where a comparison runs the same code on the same inputs it asserts equality; every
# other float bound says at its assertion where it comes from. "Measured" figures there are the
# largest over these set-ups (an Intel Xeon with AVX512, torch 2.14.1): 1 and 4 threads; 1 thread
# with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2; 4 threads
# with ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 (other
# kernels and summation orders, as another CPU would use).
TEST_THREADS = os.environ.get("STYLECLIP_TEST_THREADS", "").strip()
if TEST_THREADS:
    if not TEST_THREADS.isdigit() or int(TEST_THREADS) < 1:
        raise ValueError(f"STYLECLIP_TEST_THREADS must be a positive integer, found {TEST_THREADS!r}")
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, TEST_THREADS)


def pytest_configure(config):
    if TEST_THREADS:
        import torch

        torch.set_num_threads(int(TEST_THREADS))


def pytest_report_header(config):
    import torch

    source = "STYLECLIP_TEST_THREADS" if TEST_THREADS else "torch default; set STYLECLIP_TEST_THREADS to choose"
    return f"torch {torch.__version__}: {torch.get_num_threads()} threads ({source}), CPU capability {torch.backends.cpu.get_cpu_capability()}"


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

    def run(node_id, /, *, unvalidated=False, unique_id="1", **inputs):
        """One node run as ComfyUI runs a queued node, the one way tests run a node: its inputs
        by name, checked against the node's schema as ComfyUI validates a prompt (required
        inputs present, combo values among the options, numbers within min and max), then
        ``execute`` called by keyword under torch.inference_mode() by the harness executor's
        own call (comfy_harness.run_node). Returns the NodeOutput (``.args``, ``.ui``).
        ``unvalidated=True`` skips the check, for a value ComfyUI's validation would refuse
        that the node must still handle itself (a model file gone since the list was made).
        ``unique_id``: the node's id in the graph, for nodes that ask for it (hidden inputs)."""
        cls = nodes[node_id]
        info = cls.object_info()
        unknown = set(inputs) - set(info["input"]["required"]) - set(info["input"]["optional"])
        if unknown:
            raise TypeError(f"{node_id} has no input {sorted(unknown)}")
        if not unvalidated:
            comfy_harness.validate({node_id: {"class_type": node_id, "inputs": inputs}}, {node_id: info}, {node_id: cls})
        return comfy_harness.run_node(cls, inputs, unique_id)

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
    """Images the node tests load from ComfyUI's input folder (made here, never committed); of the
    shipped workflows only 18 loads one: the clip a user picks for core Load Video."""
    import example_video
    import synthetic_face

    synthetic_face.write_portrait(input_dir)
    if example_video.can_write():  # workflow 18's clip for core Load Video
        example_video.write_example_clip(input_dir)


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


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's tests: tiny models are all per-op overhead, and a second
    thread only adds synchronisation (use with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- fixture parity figures ----------------------------------------------------------------------
# Every comparison of ours against a reference fixture goes through the `parity` fixture, which
# asserts it and records its figure; the end of the run prints them all as a table (and writes it
# to the file named by STYLECLIP_PARITY_REPORT), so that a refactor can list every parity figure
# before and after:
#   STYLECLIP_PARITY_REPORT=/tmp/parity.txt python -m pytest tests -q -p no:randomly
#
#   parity(name, measured_error, bound)        asserts measured_error <= bound
#   parity.close(name, ours, reference, atol=, rtol=)
#       the torch.testing.assert_close criterion |ours - ref| <= atol + rtol * |ref| (elementwise,
#       shapes and dtypes equal, NaN fails), recorded as the single figure
#       max |ours - ref| * atol / (atol + rtol * |ref|) against the bound atol (only rtol: the
#       largest relative error against rtol), alongside the plain max |ours - ref|.
# Names are unique in a session (fixture and key, plus what differs between parametrisations).

PARITY_RECORDS = {}  # name -> dict(test, measured, bound, max_abs, rtol)


class Parity:
    def __init__(self, nodeid, records=PARITY_RECORDS):
        self.nodeid, self.records = nodeid, records

    def _record(self, name, measured, bound, max_abs=None, rtol=None):
        previous = self.records.get(name)
        if previous is not None and previous["test"] != self.nodeid:
            raise AssertionError(f"parity figure {name!r} is recorded by two tests: {previous['test']} and {self.nodeid}")
        self.records[name] = dict(test=self.nodeid, measured=measured, bound=bound, max_abs=measured if max_abs is None else max_abs, rtol=rtol)

    def __call__(self, name, measured, bound):
        measured, bound = float(measured), float(bound)
        self._record(name, measured, bound)
        assert measured <= bound, f"parity {name}: measured {measured:.3e} exceeds its bound {bound:.3e}"  # NaN fails too
        return measured

    def close(self, name, actual, expected, *, atol, rtol):
        import torch

        assert isinstance(actual, torch.Tensor) and isinstance(expected, torch.Tensor), name
        assert actual.shape == expected.shape, f"parity {name}: shape {list(actual.shape)} != reference {list(expected.shape)}"
        assert actual.dtype == expected.dtype, f"parity {name}: dtype {actual.dtype} != reference {expected.dtype}"
        a, b = actual.detach().cpu().double(), expected.detach().cpu().double()
        diff = (a - b).abs()
        max_abs = diff.max().item() if diff.numel() else 0.0
        if diff.isnan().any():
            max_abs = float("nan")
        if atol > 0:
            scaled, bound = (diff if rtol == 0 else diff * atol / (atol + rtol * b.abs())), atol
        elif rtol > 0:
            scaled, bound = torch.where(diff == 0, 0.0, diff / b.abs()), rtol
        else:
            scaled, bound = diff, 0.0
        measured = float("nan") if scaled.isnan().any() else (scaled.max().item() if scaled.numel() else 0.0)
        self._record(name, measured, bound, max_abs, rtol)
        assert measured <= bound, (
            f"parity {name}: |ours - reference| exceeds atol {atol:.1e} + rtol {rtol:.1e} * |reference|"
            f" (figure {measured:.3e} > {bound:.1e}; max |diff| {max_abs:.3e})"
        )
        return measured


@pytest.fixture
def parity(request):
    """``parity(name, measured, bound)`` / ``parity.close(name, ours, ref, atol=, rtol=)``: assert a
    fixture parity figure and record it for the end-of-run table (see above)."""
    return Parity(request.node.nodeid)


def parity_table(records=PARITY_RECORDS):
    import torch

    lines = [
        f"# fixture parity figures: torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}",
        f"# {len(records)} figures; measured <= bound passes; ratio = measured / bound",
        f"{'parity:':8} {'name':68} {'measured':>10} {'bound':>9} {'ratio':>7} {'max|diff|':>10} {'rtol':>7}",
    ]
    for name in sorted(records):
        r = records[name]
        ratio = r["measured"] / r["bound"] if r["bound"] > 0 else (0.0 if r["measured"] == 0 else float("inf"))
        rtol = "" if not r["rtol"] else f"{r['rtol']:.2g}"
        lines.append(f"{'parity:':8} {name:68} {r['measured']:10.3e} {r['bound']:9.1e} {ratio:7.3f} {r['max_abs']:10.3e} {rtol:>7}")
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not PARITY_RECORDS:
        return
    table = parity_table()
    terminalreporter.section("fixture parity figures")
    terminalreporter.write(table)
    path = os.environ.get("STYLECLIP_PARITY_REPORT")
    if path:
        with open(path, "w") as f:
            f.write(table)
        terminalreporter.write_line(f"parity report written to {path}")
