"""Write the example workflows in workflows/ in the format the ComfyUI frontend saves.

Each workflow is described compactly below (nodes, widget values, links); this script lays
them out and fills in what the frontend stores (slots, link table, seed-control values, node
properties). Run from the repository root: ``python tools/build_workflows.py``.
It uses the stand-in ComfyUI of the tests to read the nodes' schemas.
"""
from __future__ import annotations

import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, ROOT)

import comfy_harness  # noqa: E402

# The files ComfyUI's model lists show the frontend (folder_paths.supported_pt_extensions): a
# file of another kind (fs3.npy, face_landmarker.task) would always be reported missing, so the
# workflow's note names it instead.
def _pack_version() -> str:
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


PACK_VERSION = _pack_version()  # what the frontend's node properties record (cnr_id / ver)
FRONTEND_MODEL_EXTENSIONS = (".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft")


def node_models(widgets: dict) -> list[dict]:
    """The official files a node's widgets name, with where to get them, as the frontend's
    missing-models notice reads them (``properties.models``: name, url, directory[, hash]).

    The URL is the publisher's (the model catalog's). Frontend 1.27.10's missing-models dialog
    (MissingModelsWarning) enables Download only for a URL starting with https://civitai.com/ or
    https://huggingface.co/ whose file name ends in .safetensors or .sft, or for three URLs it
    lists; every official file here is .pt/.pth/.pkl, so no mirror would be allowed either, and the
    dialog's message shows the publisher's URL it refuses."""
    from styleclip_core.formats.model_catalog import by_filename

    found = []
    for value in widgets.values():
        entry = by_filename(value) if isinstance(value, str) else None
        if entry and entry.filename.endswith(FRONTEND_MODEL_EXTENSIONS):
            found.append({"name": entry.filename, "url": entry.url, "directory": entry.folder,
                          **({"hash": entry.sha256, "hash_type": "SHA256"} if entry.sha256 else {})})
    return found


# Layout (canvas units). LiteGraph draws a node's title bar above its ``pos`` and the node's body
# from ``pos`` down ``size[1]``. A node that shows an image (a saved image, or the preview a pack
# node sends while it runs) gets an image preview widget that takes the free room in its body and
# at least PREVIEW_MIN_HEIGHT (the frontend's ImagePreviewWidget.computeLayoutSize); a body too
# short for it grows downwards over whatever is below. So such nodes are laid out with the room
# for their preview inside their size, and nothing is placed in FREE_BELOW under them.
NODE_WIDTH = 340
COLUMN_STEP = 380
TITLE_HEIGHT = 30  # LiteGraph.NODE_TITLE_HEIGHT
ROW_GAP = 40  # between one node's bottom and the next one's title bar
PREVIEW_MIN_HEIGHT = 220
FREE_BELOW = 240
TOP = 60
# Node types that show an image on the canvas: Load Image and Load Video (the chosen file), output nodes whose
# result is images, and pack nodes whose progress bar sends a preview (NodeProgress with an image:
# rendering, optimising, training, computing channel relevance). tests/test_workflows.py checks
# the list against what runs show.
IMAGE_NODES = frozenset({
    "LoadImage", "LoadVideo", "SaveImage", "PreviewImage",
    "StyleCLIP_Synthesize", "StyleCLIP_OptimizeLatents", "StyleCLIP_TrainMapper", "StyleCLIP_ChannelRelevance",
    "StyleCLIP_ProjectLatents", "StyleCLIP_PivotalTuning", "StyleCLIP_EditSliders",
    "StyleCLIP_TuneOnClip", "StyleCLIP_StitchAndPasteBack", "SaveVideo", "StyleCLIP_TrainDomain",
})


def node(id, type, widgets=None, inputs=None, title=None):
    """widgets: {name: value}; inputs: {input name: (source node id, output slot)}."""
    return {"id": id, "type": type, "widgets": widgets or {}, "inputs": inputs or {}, "title": title}


def build(spec_nodes, info, note=None):
    links, ui_nodes = [], []
    consumers: dict[tuple, list] = {}
    columns = _columns(spec_nodes)
    order = sorted(spec_nodes, key=lambda n: (columns[n["id"]], n["id"]))
    for n in order:
        for name, (src, slot) in n["inputs"].items():
            link_id = len(links) + 1
            src_type = info[next(m["type"] for m in spec_nodes if m["id"] == src)]["output"][slot]
            links.append([link_id, src, slot, n["id"], name, src_type])
            consumers.setdefault((src, slot), []).append(link_id)
    for index, n in enumerate(order):
        node_info = info[n["type"]]
        ui_inputs = []
        slot_of = {}
        for group in ("required", "optional"):
            for name in node_info["input_order"][group]:
                spec = node_info["input"][group][name]
                kind = "COMBO" if comfy_harness.combo_options(spec) is not None else spec[0]
                is_widget = kind in comfy_harness.WIDGET_TYPES and not (spec[1] if len(spec) > 1 else {}).get("forceInput")
                if is_widget and name not in n["inputs"]:
                    continue
                entry = {"name": name, "type": kind, "link": None}
                if is_widget:
                    entry["widget"] = {"name": name}
                slot_of[name] = len(ui_inputs)
                ui_inputs.append(entry)
        for link in links:
            if link[3] == n["id"]:
                ui_inputs[slot_of[link[4]]]["link"] = link[0]
        widgets_values = []
        for name, spec in comfy_harness._widget_inputs(node_info):
            opts = spec[1] if len(spec) > 1 else {}
            options = comfy_harness.combo_options(spec)
            value = n["widgets"].get(name, opts.get("default", options[0] if options else None))
            widgets_values.append(value)
            if comfy_harness._has_control(name, spec):
                widgets_values.append("fixed")
            if opts.get("image_upload"):
                widgets_values.append("image")
        outputs = [
            {"name": node_info["output_name"][i], "type": t, "links": consumers.get((n["id"], i), []), "slot_index": i}
            for i, t in enumerate(node_info["output"])
        ]
        properties = {"Node name for S&R": n["type"]}
        if n["type"].startswith("StyleCLIP_"):
            properties.update(cnr_id="comfyui-styleclip", ver=PACK_VERSION)
        models = node_models(n["widgets"])
        if models:
            properties["models"] = models
        multiline = sum(1 for _, spec in comfy_harness._widget_inputs(node_info) if (spec[1] if len(spec) > 1 else {}).get("multiline"))
        rows = max(sum(1 for i in ui_inputs if "widget" not in i), len(outputs))
        ui = {
            "id": n["id"], "type": n["type"], "pos": [0, 0], "size": [NODE_WIDTH, _node_height(n, spec_nodes, len(widgets_values), rows, multiline)],
            "flags": {}, "order": index, "mode": 0, "inputs": ui_inputs, "outputs": outputs,
            "properties": properties, "widgets_values": widgets_values,
        }
        if n["title"]:
            ui["title"] = n["title"]
        ui_nodes.append(ui)
    _place(ui_nodes, columns)
    for link in links:  # the frontend stores the target slot index, not the input name
        target = next(u for u in ui_nodes if u["id"] == link[3])
        link[4] = next(i for i, inp in enumerate(target["inputs"]) if inp["name"] == link[4])
    if note:
        ui_nodes.append({"id": max(n["id"] for n in spec_nodes) + 1, "type": "Note", "pos": [40, -160], "size": [520, 140], "flags": {},
                         "order": len(ui_nodes), "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": [note]})
    return {
        "id": "00000000-0000-4000-8000-000000000000", "revision": 0,
        "last_node_id": max(n["id"] for n in ui_nodes), "last_link_id": len(links),
        "nodes": ui_nodes, "links": links, "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4,
    }


def body_height(widget_count: int, slot_rows: int = 0, multiline: int = 0) -> int:
    """A node's height without an image preview, roomier than LiteGraph's computeSize: that is a
    row of 20 per input socket or output (whichever are more) plus each widget's height (a
    multiline text box about 40 more than a line), which outgrows 110 + 26 per widget on nodes
    with many outputs (Edit Metrics' 8)."""
    return max(110 + 26 * widget_count, 30 + 20 * slot_rows + 26 * widget_count + 40 * multiline)


def _node_height(n, spec_nodes, widget_count, slot_rows=0, multiline=0):
    height = body_height(widget_count, slot_rows, multiline)
    if n["type"] in IMAGE_NODES:
        height += preview_height(n, spec_nodes)
    return height


def _place(ui_nodes, columns):
    """Columns by graph depth; in each, nodes top to bottom by id, each below the previous one's
    body (plus FREE_BELOW under a node that shows an image)."""
    bottom: dict[int, int] = {}
    for ui in sorted(ui_nodes, key=lambda u: u["id"]):
        col = columns[ui["id"]]
        y = bottom[col] + TITLE_HEIGHT + ROW_GAP if col in bottom else TOP
        ui["pos"] = [40 + COLUMN_STEP * col, y]
        bottom[col] = y + ui["size"][1] + (FREE_BELOW if ui["type"] in IMAGE_NODES else 0)


def shown_images(n, spec_nodes) -> tuple[int, float]:
    """(count, height / width of one) of the images node ``n`` puts out or passes on, from the
    workflow's sizes: a batch of sampled latents, alpha sweeps, grids, a loaded photo."""
    by_id = {m["id"]: m for m in spec_nodes}

    def upstream(*names):
        for name in names:
            if name in n["inputs"]:
                return shown_images(by_id[n["inputs"][name][0]], spec_nodes)
        return 1, 1.0

    t, w = n["type"], n["widgets"]
    if t == "LoadImage":
        return 1, 1.0
    if t == "StyleCLIP_SampleLatents":
        return int(w.get("batch_size", 1)), 1.0
    if t == "StyleCLIP_ApplyGlobalDirection":
        count, aspect = upstream("latents")
        return count * len(str(w.get("alphas", "0")).split(",")), aspect
    if t == "StyleCLIP_ImageGrid":
        count, aspect = upstream("images")
        src = by_id[n["inputs"]["columns"][0]] if "columns" in n["inputs"] else None
        cols = len(str(src["widgets"].get("alphas", "0")).split(",")) if src else int(w.get("columns", 5))
        cols = min(cols, count)
        return 1, aspect * -(-count // cols) / cols
    return upstream("images", "latents", "original", "faces", "photos")


def preview_height(n, spec_nodes) -> int:
    """Room for the image preview of node ``n`` at NODE_WIDTH: what it shows laid out in a grid
    near-square in cells (as the frontend draws a batch), at least PREVIEW_MIN_HEIGHT."""
    if n["type"] in ("LoadImage", "SaveImage", "PreviewImage"):
        count, aspect = shown_images(n, spec_nodes)
    elif n["type"] == "StyleCLIP_TrainMapper":  # the step's original faces above their edits
        count, aspect = 1, 2 / int(n["widgets"].get("batch_size", 2))
    elif n["type"] == "StyleCLIP_TrainDomain":  # 4 fixed faces (domain_nodes.PREVIEW_COUNT): frozen above trained
        count, aspect = 1, 2 / 4
    else:  # the progress preview: the first image of the batch
        count, aspect = 1, 1.0
    cols = math.ceil(math.sqrt(count))
    rows = -(-count // cols)
    return max(PREVIEW_MIN_HEIGHT + 20, min(NODE_WIDTH, round(NODE_WIDTH * aspect * rows / cols)))


def _columns(spec_nodes):
    col = {}

    def depth(n):
        if n["id"] not in col:
            col[n["id"]] = 1 + max((depth(next(m for m in spec_nodes if m["id"] == src)) for src, _ in n["inputs"].values()), default=-1)
        return col[n["id"]]

    for n in spec_nodes:
        depth(n)
    return col


GENERATOR = "stylegan2-ffhq-config-f.pt"
MAPPER = "purple_hair.pt"
PARSER = "79999_iter.pth"

WORKFLOWS = {
    "01_generate_faces": dict(
        note="Generate a batch of faces with StyleGAN2 and save the images and their latents.\n"
        "Put stylegan2-ffhq-config-f.pt in ComfyUI/models/stylegan (see the pack's README).",
        nodes=[
            node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
            node(2, "StyleCLIP_SampleLatents", {"seed": 42, "batch_size": 4, "truncation_psi": 0.7}, {"generator": (1, 0)}),
            node(3, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (2, 0)}),
            node(4, "SaveImage", {"filename_prefix": "styleclip/faces"}, {"images": (3, 0)}),
            node(5, "StyleCLIP_SaveLatents", {"filename_prefix": "styleclip/faces_latents"}, {"latents": (2, 0)}),
        ],
    ),
    "04_mapper_edit": dict(
        note="Edit sampled faces with a pretrained StyleCLIP latent mapper (one forward pass per edit).\n"
        "Put a mapper (e.g. purple_hair.pt from the StyleCLIP release) in ComfyUI/models/styleclip_mappers; "
        "official mappers bundle their 1024px FFHQ generator, used here.",
        nodes=[
            node(1, "StyleCLIP_LoadMapper", {"mapper_name": MAPPER}),
            node(2, "StyleCLIP_SampleLatents", {"seed": 7, "batch_size": 4, "truncation_psi": 0.7}, {"generator": (1, 1)}),
            node(3, "StyleCLIP_ApplyMapper", {"strength": 1.0}, {"generator": (1, 1), "mapper": (1, 0), "latents": (2, 0)}),
            node(4, "StyleCLIP_Synthesize", {}, {"generator": (1, 1), "latents": (2, 0)}, title="Original"),
            node(5, "StyleCLIP_Synthesize", {}, {"generator": (1, 1), "latents": (3, 0)}, title="Edited"),
            node(6, "SaveImage", {"filename_prefix": "styleclip/mapper_original"}, {"images": (4, 0)}),
            node(7, "SaveImage", {"filename_prefix": "styleclip/mapper_edited"}, {"images": (5, 0)}),
        ],
    ),
    "05_local_edit_face_parsing": dict(
        note="Confine an edit to the hair: the face parser makes a hair mask from the original image and "
        "Local Edit blends the edited and original renderings with it at every generator resolution.\n"
        "Needs purple_hair.pt (models/styleclip_mappers) and 79999_iter.pth (models/face_parsing).",
        nodes=[
            node(1, "StyleCLIP_LoadMapper", {"mapper_name": MAPPER}),
            node(2, "StyleCLIP_SampleLatents", {"seed": 11, "batch_size": 2, "truncation_psi": 0.7}, {"generator": (1, 1)}),
            node(3, "StyleCLIP_ApplyMapper", {"strength": 1.0}, {"generator": (1, 1), "mapper": (1, 0), "latents": (2, 0)}),
            node(4, "StyleCLIP_Synthesize", {}, {"generator": (1, 1), "latents": (2, 0)}, title="Original"),
            node(5, "StyleCLIP_LoadFaceParser", {"parser_name": PARSER}),
            node(6, "StyleCLIP_FaceParsingMask", {"parts": "hair", "dilate": 8, "feather": 0.0}, {"face_parser": (5, 0), "images": (4, 0)}),
            node(7, "StyleCLIP_LocalEdit", {"feather": 4.0, "blend_from": "8"}, {"generator": (1, 1), "original": (2, 0), "edited": (3, 0), "mask": (6, 0)}),
            node(8, "SaveImage", {"filename_prefix": "styleclip/local_hair"}, {"images": (7, 0)}),
            node(9, "SaveImage", {"filename_prefix": "styleclip/local_original"}, {"images": (4, 0)}),
        ],
    ),
    "06_local_edit_core_masks": dict(
        note="Local edit with core ComfyUI mask nodes only: the edit applies to the top 40% of the image "
        "(a box built with Solid Mask and Mask Composite). Needs only purple_hair.pt.",
        nodes=[
            node(1, "StyleCLIP_LoadMapper", {"mapper_name": MAPPER}),
            node(2, "StyleCLIP_SampleLatents", {"seed": 11, "batch_size": 2, "truncation_psi": 0.7}, {"generator": (1, 1)}),
            node(3, "StyleCLIP_ApplyMapper", {"strength": 1.5}, {"generator": (1, 1), "mapper": (1, 0), "latents": (2, 0)}),
            node(4, "SolidMask", {"value": 0.0, "width": 1024, "height": 1024}),
            node(5, "SolidMask", {"value": 1.0, "width": 1024, "height": 410}),
            node(6, "MaskComposite", {"x": 0, "y": 0, "operation": "add"}, {"destination": (4, 0), "source": (5, 0)}),
            node(7, "StyleCLIP_LocalEdit", {"feather": 8.0, "blend_from": "8"}, {"generator": (1, 1), "original": (2, 0), "edited": (3, 0), "mask": (6, 0)}),
            node(8, "SaveImage", {"filename_prefix": "styleclip/local_box"}, {"images": (7, 0)}),
        ],
    ),
    "02_text_edit_optimization": dict(
        note="Text edit by latent optimisation (StyleCLIP): a sampled face is edited toward 'a person with purple hair' "
        "by Adam on its W+ code, minimising CLIP loss + 0.008 x latent L2 + 0.005 x identity loss.\n"
        "Steps are 40 here, the value of StyleCLIP's notebook (the reference script uses 300); a 1024 px step took about 4.5 s on a 2-core CPU.\n"
        "Models: stylegan2-ffhq-config-f.pt in models/stylegan, OpenAI's ViT-B-32.pt in models/openclip, "
        "model_ir_se50.pth in models/arcface (see the pack's README). Remove the identity loss node (connect the L2 node to the CLIP loss) "
        "if you do not have model_ir_se50.pth.",
        nodes=[
            node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
            node(2, "StyleCLIP_SampleLatents", {"seed": 1, "batch_size": 1, "truncation_psi": 0.7}, {"generator": (1, 0)}),
            node(3, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
            node(4, "StyleCLIP_LoadArcFace", {"arcface_name": "model_ir_se50.pth"}),
            node(5, "StyleCLIP_CLIPLoss", {"text": "a person with purple hair", "weight": 1.0}, {"clip": (3, 0)}),
            node(6, "StyleCLIP_IdentityLoss", {"weight": 0.005}, {"arcface": (4, 0), "loss": (5, 0)}),
            node(7, "StyleCLIP_LatentL2Loss", {"weight": 0.008}, {"loss": (6, 0)}),
            node(8, "StyleCLIP_OptimizeLatents", {"steps": 40, "learning_rate": 0.1, "space": "W+", "noise": "const", "preview_every": 5},
                 {"generator": (1, 0), "latents": (2, 0), "loss": (7, 0)}),
            node(9, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (2, 0)}, title="Original image"),
            node(10, "SaveImage", {"filename_prefix": "styleclip/text_edit_original"}, {"images": (9, 0)}),
            node(11, "SaveImage", {"filename_prefix": "styleclip/text_edit"}, {"images": (8, 1)}),
            node(12, "StyleCLIP_SaveLatents", {"filename_prefix": "styleclip/text_edit_original_latents"}, {"latents": (2, 0)}),
            node(13, "StyleCLIP_SaveLatents", {"filename_prefix": "styleclip/text_edit_latents"}, {"latents": (8, 0)}),
        ],
    ),
}

# The photo workflows start from the pack's Example Portrait (scikit-image's public-domain
# astronaut.png), so they run on a fresh install: ComfyUI's input folder has no photo of ours.
PHOTO_NOTE = (
    "The photo is the Example Portrait node: NASA's public-domain photo of astronaut Eileen Collins, which comes with "
    "scikit-image (the pack's requirements). For your own photo, replace it with Load Image and connect its IMAGE output to "
    "Align Faces' images and Paste Face Back's photos."
)
DETECTOR_NOTE = (
    "Align Faces finds the face with the face mesh built into the mediapipe package (the pack's requirements, mediapipe 0.10.14 "
    "on Python 3.10 to 3.12): no model file. With mediapipe 0.10.30 or later (Python 3.13) it needs face_landmarker.task in "
    "ComfyUI/models/mediapipe instead; or set its landmarks to points and type the eye and mouth positions. See the README."
)

def photo_front(output_size: str) -> list[dict]:
    """The start of every photo workflow: nodes 1 to 4, Example Portrait -> Load e4e Encoder ->
    Align Faces (at ``output_size``) -> Invert Images (e4e)."""
    return [
        node(1, "StyleCLIP_ExamplePortrait", {}, title="Example Portrait (swap in Load Image for your photo)"),
        node(2, "StyleCLIP_LoadE4E", {"e4e_name": "e4e_ffhq_encode.pt", "ops_backend": "auto"}),
        node(3, "StyleCLIP_AlignFaces", {"landmarks": "built-in (mediapipe package)", "output_size": output_size, "points": ""}, {"images": (1, 0)}),
        node(4, "StyleCLIP_InvertImages", {"chunk_size": 4}, {"e4e": (2, 0), "images": (3, 0)}),
    ]


def pti_nodes(tuning_id: int = 6) -> list[dict]:
    """Node 5, Load LPIPS (alex), and Pivotal Tuning of the photo front's generator at e4e's codes
    (PTI's defaults): outputs (tuned generator, pivots, reconstruction)."""
    return [
        node(5, "StyleCLIP_LoadLPIPS", {"net": "alex", "backbone_name": "alexnet-owt-7be5be79.pth"}),
        node(tuning_id, "StyleCLIP_PivotalTuning", {"steps": 350, "learning_rate": 3e-4, "lpips_threshold": 0.06},
             {"generator": (2, 1), "lpips": (5, 0), "latents": (4, 0), "images": (3, 0)}),
    ]


WORKFLOWS["03_invert_photo"] = dict(
    note="Invert a real photo with e4e and paste the reconstruction back into it.\n"
    f"{PHOTO_NOTE}\n"
    "Needs e4e_ffhq_encode.pt in ComfyUI/models/e4e (it holds the generator too). " + DETECTOR_NOTE,
    nodes=[
        *photo_front("256"),
        node(5, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (2, 1), "latents": (4, 0)}),
        node(6, "StyleCLIP_PasteFaceBack", {"feather": 0.1}, {"photos": (1, 0), "faces": (5, 0), "alignment": (3, 1)}),
        node(7, "SaveImage", {"filename_prefix": "styleclip/photo_reconstructed"}, {"images": (6, 0)}),
        node(8, "PreviewImage", {}, {"images": (3, 0)}, title="Aligned face"),
        node(9, "PreviewImage", {}, {"images": (5, 0)}, title="e4e reconstruction"),
        node(10, "StyleCLIP_SaveLatents", {"filename_prefix": "styleclip/photo_latents"}, {"latents": (4, 0)}),
    ],
)

WORKFLOWS["09_masked_text_edit"] = dict(
    note="Text edit of the hair only: the face parser makes a hair mask of the sampled face; Optimize Latents gets it, so the CLIP loss "
    "scores the edited hair over the original face and Region Preservation Loss keeps the image outside the mask; Local Edit then "
    "renders the edit inside the mask only. 40 steps as in workflow 02 (about 4.5 s per 1024 px step on a 2-core CPU).\n"
    "Models: stylegan2-ffhq-config-f.pt (models/stylegan), ViT-B-32.pt (models/openclip), 79999_iter.pth (models/face_parsing).",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_SampleLatents", {"seed": 5, "batch_size": 1, "truncation_psi": 0.7}, {"generator": (1, 0)}),
        node(3, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (2, 0)}, title="Original"),
        node(4, "StyleCLIP_LoadFaceParser", {"parser_name": PARSER}),
        node(5, "StyleCLIP_FaceParsingMask", {"parts": "hair", "dilate": 8, "feather": 0.0}, {"face_parser": (4, 0), "images": (3, 0)}),
        node(6, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(7, "StyleCLIP_CLIPLoss", {"text": "a person with purple hair", "weight": 1.0}, {"clip": (6, 0)}),
        node(8, "StyleCLIP_RegionPreservationLoss", {"weight": 10.0, "distance": "l2"}, {"loss": (7, 0)}),
        node(9, "StyleCLIP_LatentL2Loss", {"weight": 0.008}, {"loss": (8, 0)}),
        node(10, "StyleCLIP_OptimizeLatents", {"steps": 40, "learning_rate": 0.1, "space": "W+", "noise": "const", "preview_every": 5},
             {"generator": (1, 0), "latents": (2, 0), "loss": (9, 0), "mask": (5, 0)}),
        node(11, "StyleCLIP_LocalEdit", {"feather": 4.0, "blend_from": "8"}, {"generator": (1, 0), "original": (2, 0), "edited": (10, 0), "mask": (5, 0)}),
        node(12, "SaveImage", {"filename_prefix": "styleclip/masked_text_edit"}, {"images": (11, 0)}),
        node(13, "SaveImage", {"filename_prefix": "styleclip/masked_text_edit_original"}, {"images": (3, 0)}),
        node(14, "PreviewImage", {}, {"images": (10, 1)}, title="Optimised, before Local Edit"),
    ],
)

WORKFLOWS["10_edit_photo_by_text"] = dict(
    note="Edit a real photo by text: align the face, invert it with e4e, optimise its W+ code toward the text, render, paste back.\n"
    f"{PHOTO_NOTE}\n"
    "Only 20 optimisation steps (about 1.5 minutes on a 2-core CPU at 1024 px): a light edit; use 40 (StyleCLIP's notebook) "
    "or more on a GPU for stronger ones. Add Identity Loss (model_ir_se50.pth) to the chain to keep the person recognisable.\n"
    "Models: e4e_ffhq_encode.pt (models/e4e, holds the generator), ViT-B-32.pt (models/openclip). " + DETECTOR_NOTE,
    nodes=[
        *photo_front("256"),
        node(5, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(6, "StyleCLIP_CLIPLoss", {"text": "a smiling person", "weight": 1.0}, {"clip": (5, 0)}),
        node(7, "StyleCLIP_LatentL2Loss", {"weight": 0.008}, {"loss": (6, 0)}),
        node(8, "StyleCLIP_OptimizeLatents", {"steps": 20, "learning_rate": 0.1, "space": "W+", "noise": "const", "preview_every": 5},
             {"generator": (2, 1), "latents": (4, 0), "loss": (7, 0)}),
        node(9, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (2, 1), "latents": (8, 0)}),
        node(10, "StyleCLIP_PasteFaceBack", {"feather": 0.1}, {"photos": (1, 0), "faces": (9, 0), "alignment": (3, 1)}),
        node(11, "SaveImage", {"filename_prefix": "styleclip/photo_text_edit"}, {"images": (10, 0)}),
        node(12, "PreviewImage", {}, {"images": (3, 0)}, title="Aligned face"),
        node(13, "StyleCLIP_SaveLatents", {"filename_prefix": "styleclip/photo_text_edit_latents"}, {"latents": (8, 0)}),
    ],
)

WORKFLOWS["07_mapper_train_and_apply"] = dict(
    note="Train a StyleCLIP latent mapper for 'a person with purple hair', then edit new faces with it in one step.\n"
    "Train Latent Mapper samples 5000 training faces, minimises CLIP loss + 0.1 x identity loss + 0.8 x latent L2 (mean), "
    "StyleCLIP's mapper settings, and saves models/styleclip_mappers/purple_hair_trained.safetensors (numbered if it exists; "
    "Load Latent Mapper reads it later). Steps are 20 here so the example finishes quickly: StyleCLIP trains 50000 steps "
    "(a GPU job of hours), and a 20-step mapper barely changes a face. For a real run set steps to 50000 and if_exists to "
    "'resume': a cancelled run then continues from its last checkpoint.\n"
    "Models: stylegan2-ffhq-config-f.pt (models/stylegan), ViT-B-32.pt (models/openclip), model_ir_se50.pth (models/arcface).",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(3, "StyleCLIP_LoadArcFace", {"arcface_name": "model_ir_se50.pth"}),
        node(4, "StyleCLIP_CLIPLoss", {"text": "a person with purple hair", "weight": 1.0}, {"clip": (2, 0)}),
        node(5, "StyleCLIP_IdentityLoss", {"weight": 0.1}, {"arcface": (3, 0), "loss": (4, 0)}),
        node(6, "StyleCLIP_LatentL2Loss", {"weight": 0.8, "reduction": "mean"}, {"loss": (5, 0)}),
        node(7, "StyleCLIP_TrainMapper", {"name": "purple_hair_trained", "steps": 20, "save_every": 10, "preview_every": 5},
             {"generator": (1, 0), "loss": (6, 0)}),
        node(8, "StyleCLIP_SampleLatents", {"seed": 123, "batch_size": 4, "truncation_psi": 0.7}, {"generator": (1, 0)}, title="New faces"),
        node(9, "StyleCLIP_ApplyMapper", {"strength": 1.0}, {"generator": (1, 0), "mapper": (7, 0), "latents": (8, 0)}),
        node(10, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (8, 0)}, title="Original"),
        node(11, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (9, 0)}, title="Edited"),
        node(12, "SaveImage", {"filename_prefix": "styleclip/trained_mapper_original"}, {"images": (10, 0)}),
        node(13, "SaveImage", {"filename_prefix": "styleclip/trained_mapper_edited"}, {"images": (11, 0)}),
    ],
)


WORKFLOWS["08_global_direction"] = dict(
    note="StyleCLIP global direction: 'face' -> 'face with blonde hair' applied to sampled faces at five strengths "
    "(one row per face, alpha -4 to 4), and the same sweep confined to the top of the image with Local Edit.\n"
    "Needs stylegan2-ffhq-config-f.pt (models/stylegan), ViT-B-32.pt (models/openclip) and StyleCLIP's precomputed fs3.npy "
    "for FFHQ (models/styleclip_global). Without fs3.npy, set Channel Relevance to 'compute ...' (hours on a GPU, once: "
    "the result is cached). See the README, Global directions.",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(3, "StyleCLIP_ChannelRelevance", {"fs3": "fs3.npy"}, {"generator": (1, 0), "clip": (2, 0)}),
        node(4, "StyleCLIP_GlobalDirection", {"neutral": "face", "target": "face with blonde hair", "beta": 0.15}, {"relevance": (3, 0), "clip": (2, 0)}),
        node(5, "StyleCLIP_SampleLatents", {"seed": 5, "batch_size": 2, "truncation_psi": 0.7}, {"generator": (1, 0)}),
        node(6, "StyleCLIP_ApplyGlobalDirection", {"alphas": "-4, -2, 0, 2, 4"}, {"generator": (1, 0), "latents": (5, 0), "direction": (4, 0)}),
        node(7, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (6, 0)}),
        node(8, "StyleCLIP_ImageGrid", {}, {"images": (7, 0), "columns": (6, 2)}),
        node(9, "SaveImage", {"filename_prefix": "styleclip/global_blonde_sweep"}, {"images": (8, 0)}),
        node(10, "SolidMask", {"value": 0.0, "width": 1024, "height": 1024}),
        node(11, "SolidMask", {"value": 1.0, "width": 1024, "height": 410}),
        node(12, "MaskComposite", {"x": 0, "y": 0, "operation": "add"}, {"destination": (10, 0), "source": (11, 0)}),
        node(13, "StyleCLIP_LocalEdit", {"feather": 8.0, "blend_from": "8"}, {"generator": (1, 0), "original": (6, 1), "edited": (6, 0), "mask": (12, 0)}),
        node(14, "StyleCLIP_ImageGrid", {}, {"images": (13, 0), "columns": (6, 2)}, title="Image Grid (local edit)"),
        node(15, "SaveImage", {"filename_prefix": "styleclip/global_blonde_sweep_local"}, {"images": (14, 0)}),
    ],
)

PTI_NOTE = (
    "Pivotal Tuning fine-tunes a copy of the generator around e4e's codes (PTI: 350 steps of L2 + LPIPS-alex; one face stops "
    "early once LPIPS reaches 0.06). About a minute on a GPU; on a CPU at 1024 px expect well over half an hour. Save Generator "
    "writes the tuned generator to models/stylegan if you want to reuse it."
)

WORKFLOWS["11_photo_pti_global_edit"] = dict(
    note="Edit a real photo that keeps its identity: align, invert with e4e, pivotal tuning (PTI), then a global direction "
    "('face' -> 'smiling face') applied with the tuned generator, pasted back into the photo.\n"
    f"{PHOTO_NOTE}\n{PTI_NOTE}\n"
    "Models: e4e_ffhq_encode.pt (models/e4e, holds the generator), alexnet-owt-7be5be79.pth (models/lpips, torchvision's), "
    "ViT-B-32.pt (models/openclip), fs3.npy (models/styleclip_global). " + DETECTOR_NOTE,
    nodes=[
        *photo_front("1024"),
        *pti_nodes(),
        node(7, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(8, "StyleCLIP_ChannelRelevance", {"fs3": "fs3.npy"}, {"generator": (2, 1), "clip": (7, 0)}),
        node(9, "StyleCLIP_GlobalDirection", {"neutral": "face", "target": "smiling face", "beta": 0.15}, {"relevance": (8, 0), "clip": (7, 0)}),
        node(10, "StyleCLIP_ApplyGlobalDirection", {"alphas": "3"}, {"generator": (6, 0), "latents": (6, 1), "direction": (9, 0)}),
        node(11, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (6, 0), "latents": (10, 0)}),
        node(12, "StyleCLIP_PasteFaceBack", {"feather": 0.1}, {"photos": (1, 0), "faces": (11, 0), "alignment": (3, 1)}),
        node(13, "SaveImage", {"filename_prefix": "styleclip/photo_pti_global_edit"}, {"images": (12, 0)}),
        node(14, "PreviewImage", {}, {"images": (6, 2)}, title="PTI reconstruction"),
    ],
)

WORKFLOWS["12_photo_pti_text_edit"] = dict(
    note="Edit a real photo by text with pivotal tuning: align, invert with e4e, tune the generator around the codes (PTI), "
    "optimise the codes toward the text with the tuned generator, render, paste back.\n"
    f"{PHOTO_NOTE}\n{PTI_NOTE}\n"
    "Only 20 optimisation steps: a light edit (see workflow 10).\n"
    "Models: e4e_ffhq_encode.pt (models/e4e, holds the generator), alexnet-owt-7be5be79.pth (models/lpips, torchvision's), "
    "ViT-B-32.pt (models/openclip). " + DETECTOR_NOTE,
    nodes=[
        *photo_front("1024"),
        *pti_nodes(),
        node(7, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(8, "StyleCLIP_CLIPLoss", {"text": "a smiling person", "weight": 1.0}, {"clip": (7, 0)}),
        node(9, "StyleCLIP_LatentL2Loss", {"weight": 0.008}, {"loss": (8, 0)}),
        node(10, "StyleCLIP_OptimizeLatents", {"steps": 20, "learning_rate": 0.1, "space": "W+", "noise": "const", "preview_every": 5},
             {"generator": (6, 0), "latents": (6, 1), "loss": (9, 0)}),
        node(11, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (6, 0), "latents": (10, 0)}),
        node(12, "StyleCLIP_PasteFaceBack", {"feather": 0.1}, {"photos": (1, 0), "faces": (11, 0), "alignment": (3, 1)}),
        node(13, "SaveImage", {"filename_prefix": "styleclip/photo_pti_text_edit"}, {"images": (12, 0)}),
        node(14, "PreviewImage", {}, {"images": (6, 2)}, title="PTI reconstruction"),
        node(15, "StyleCLIP_SaveLatents", {"filename_prefix": "styleclip/photo_pti_text_edit_latents"}, {"latents": (10, 0)}),
    ],
)

WORKFLOWS["13_compare_e4e_pti"] = dict(
    note="e4e alone against e4e + pivotal tuning on the same photo: both reconstructions and the aligned photo side by side "
    "(e4e | e4e + PTI | photo), each reconstruction scored against the photo by Edit Metrics (identity with ArcFace, LPIPS, PSNR; "
    "the two Preview Any nodes show their tables). PTI should raise identity and PSNR and lower LPIPS.\n"
    f"{PHOTO_NOTE}\n{PTI_NOTE}\n"
    "Models: e4e_ffhq_encode.pt (models/e4e, holds the generator), alexnet-owt-7be5be79.pth (models/lpips, torchvision's), "
    "model_ir_se50.pth (models/arcface). " + DETECTOR_NOTE,
    nodes=[
        *photo_front("1024"),
        *pti_nodes(tuning_id=8),
        node(6, "StyleCLIP_LoadArcFace", {"arcface_name": "model_ir_se50.pth"}),
        node(7, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (2, 1), "latents": (4, 0)}, title="e4e reconstruction"),
        node(9, "StyleCLIP_EditMetrics", {"target": "", "neutral": "a face"}, {"originals": (3, 0), "edited": (7, 0), "arcface": (6, 0), "lpips": (5, 0)},
             title="Edit Metrics: e4e alone"),
        node(10, "StyleCLIP_EditMetrics", {"target": "", "neutral": "a face"}, {"originals": (3, 0), "edited": (8, 2), "arcface": (6, 0), "lpips": (5, 0)},
             title="Edit Metrics: e4e + PTI"),
        node(11, "ImageBatch", {}, {"image1": (7, 0), "image2": (8, 2)}),
        node(12, "ImageBatch", {}, {"image1": (11, 0), "image2": (3, 0)}, title="Image Batch (photo resized to the renders)"),
        node(13, "StyleCLIP_ImageGrid", {"columns": 3}, {"images": (12, 0)}),
        node(14, "SaveImage", {"filename_prefix": "styleclip/e4e_vs_pti"}, {"images": (13, 0)}),
        node(15, "PreviewAny", {}, {"source": (9, 0)}, title="Scores: e4e alone"),
        node(16, "PreviewAny", {}, {"source": (10, 0)}, title="Scores: e4e + PTI"),
    ],
)

def text_and_mapper_directions() -> list[dict]:
    """Nodes 3 to 7 of the slider workflows: a text direction ('face' -> 'smiling face', node 5) and
    purple_hair.pt's edit of face 0 (node 7), for the generator of node 1 and the latents of node 2."""
    return [
        node(3, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(4, "StyleCLIP_ChannelRelevance", {"fs3": "fs3.npy"}, {"generator": (1, 0), "clip": (3, 0)}),
        node(5, "StyleCLIP_GlobalDirection", {"neutral": "face", "target": "smiling face", "beta": 0.15}, {"relevance": (4, 0), "clip": (3, 0)}),
        node(6, "StyleCLIP_LoadMapper", {"mapper_name": "purple_hair.pt"}),
        node(7, "StyleCLIP_MapperDirection", {"face": 0}, {"generator": (1, 0), "mapper": (6, 0), "latents": (2, 0)}),
    ]


WORKFLOWS["14_sliders_text_and_mapper"] = dict(
    note="A text direction ('face' -> 'smiling face', a global direction) and a latent mapper's edit (purple hair) on the sliders "
    "of Edit Sliders. Queue once; then drag value_1 / value_2 and the preview on the node follows at once, without queueing. "
    "Queue again to save the full-size result with the values shown. The run saves its values as the preset 'smile_purple_hair' "
    "(the node's 'load preset' button, or its preset input, brings them back).\n"
    "Models: stylegan2-ffhq-config-f.pt (models/stylegan), ViT-B-32.pt (models/openclip), fs3.npy (models/styleclip_global), "
    "purple_hair.pt (models/styleclip_mappers).",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_SampleLatents", {"seed": 7, "batch_size": 1, "truncation_psi": 0.7}, {"generator": (1, 0)}),
        *text_and_mapper_directions(),
        node(8, "StyleCLIP_EditSliders", {"value_1": 3.0, "value_2": 1.0, "save_preset_as": "smile_purple_hair"},
             {"generator": (1, 0), "latents": (2, 0), "direction_1": (5, 0), "direction_2": (7, 0)}),
        node(9, "SaveImage", {"filename_prefix": "styleclip/sliders_text_and_mapper"}, {"images": (8, 0)}),
    ],
)

WORKFLOWS["15_sliders_sefa"] = dict(
    note="Directions found in the generator's own weights, no text needed: the first three SeFa components (closed-form "
    "factorisation) on the sliders of Edit Sliders, and a strip of component 0 from -5 to 5 (grid mode) to pick a strength. "
    "Queue once, then drag the sliders: the preview on the node follows without queueing.\n"
    "Models: stylegan2-ffhq-config-f.pt (models/stylegan). SeFa needs nothing else.",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_SampleLatents", {"seed": 11, "batch_size": 1, "truncation_psi": 0.7}, {"generator": (1, 0)}),
        node(3, "StyleCLIP_SeFaDirection", {"component": 0}, {"generator": (1, 0)}),
        node(4, "StyleCLIP_SeFaDirection", {"component": 1}, {"generator": (1, 0)}),
        node(5, "StyleCLIP_SeFaDirection", {"component": 2}, {"generator": (1, 0)}),
        node(6, "StyleCLIP_EditSliders", {"value_1": 3.0, "value_2": -2.0, "value_3": 1.5},
             {"generator": (1, 0), "latents": (2, 0), "direction_1": (3, 0), "direction_2": (4, 0), "direction_3": (5, 0)}),
        node(7, "SaveImage", {"filename_prefix": "styleclip/sliders_sefa"}, {"images": (6, 0)}),
        node(8, "StyleCLIP_EditSliders", {"mode": "grid", "grid_direction": 1, "grid_range": 5.0, "grid_steps": 5},
             {"generator": (1, 0), "latents": (2, 0), "direction_1": (3, 0)}, title="Edit Sliders (grid: component 0 swept)"),
        node(9, "SaveImage", {"filename_prefix": "styleclip/sliders_sefa_strip"}, {"images": (8, 0)}),
    ],
)

WORKFLOWS["16_sliders_preset_reload"] = dict(
    note="The preset saved by workflow 14 ('smile_purple_hair': run 14 once first) reloaded by name on new faces: Edit Sliders' "
    "preset input replaces its slider values by the preset's (the node's 'load preset' button sets the sliders from a preset "
    "instead). The same text direction and mapper as in workflow 14, on four sampled faces.\n"
    "Models: stylegan2-ffhq-config-f.pt (models/stylegan), ViT-B-32.pt (models/openclip), fs3.npy (models/styleclip_global), "
    "purple_hair.pt (models/styleclip_mappers).",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_SampleLatents", {"seed": 21, "batch_size": 4, "truncation_psi": 0.7}, {"generator": (1, 0)}),
        *text_and_mapper_directions(),
        node(8, "StyleCLIP_EditSliders", {"preset": "smile_purple_hair"},
             {"generator": (1, 0), "latents": (2, 0), "direction_1": (5, 0), "direction_2": (7, 0)}),
        node(9, "SaveImage", {"filename_prefix": "styleclip/sliders_preset"}, {"images": (8, 0)}),
    ],
)


# The video workflows: the clip's frames through STIT's chain. 17 starts from the pack's Example
# Clip (the Example Portrait moving and turning), so it runs on a fresh install; 18 is the same
# chain from core ComfyUI's Load Video, for the user's own clip.
VIDEO_NOTE = (
    "STIT (Stitch it in Time): the crops are aligned with their centre and axes smoothed over time, one generator is tuned on "
    "all the frames (Tune on Clip), the same text direction is added to every frame's code (strength keyframed 0 -> 3), and "
    "each edited face is stitched into its frame (Stitch and Paste Back: a few steps of tuning so the ring around the face "
    "matches the frame, then a feathered paste). Video Consistency scores flicker and identity across frames.\n"
    "The tuning and stitching steps here are a light run (STIT: 300 tuning steps, 100 stitching steps per frame); on a GPU "
    "raise them. Models: e4e_ffhq_encode.pt (models/e4e, holds the generator), alexnet-owt-7be5be79.pth (models/lpips), "
    "ViT-B-32.pt (models/openclip), fs3.npy (models/styleclip_global), 79999_iter.pth (models/face_parsing), "
    "model_ir_se50.pth (models/arcface). Faces are found with the face mesh of the mediapipe package (see Align Faces)."
)


def video_chain(frames: tuple, fps: tuple) -> list[dict]:
    """Nodes 3 to 17: align, invert, tune, edit, stitch, save, score (``frames``/``fps``: their source slots)."""
    return [
        node(3, "StyleCLIP_LoadE4E", {"e4e_name": "e4e_ffhq_encode.pt", "ops_backend": "auto"}),
        node(4, "StyleCLIP_AlignVideoFaces", {"landmarks": "built-in (mediapipe package)", "output_size": "256", "center_sigma": 1.0,
                                              "xy_sigma": 3.0, "scale": 1.0, "no_face": "pass through unedited", "points": ""}, {"frames": frames}),
        node(5, "StyleCLIP_InvertFrames", {"smoothing": 0.0, "chunk_size": 4}, {"e4e": (3, 0), "crops": (4, 0)}),
        node(6, "StyleCLIP_LoadLPIPS", {"net": "alex", "backbone_name": "alexnet-owt-7be5be79.pth"}),
        node(7, "StyleCLIP_TuneOnClip", {"steps": 20, "learning_rate": 3e-5, "l2_weight": 10.0, "lpips_weight": 1.0},
             {"generator": (3, 1), "lpips": (6, 0), "latents": (5, 0), "crops": (4, 0)}),
        node(8, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(9, "StyleCLIP_ChannelRelevance", {"fs3": "fs3.npy"}, {"generator": (3, 1), "clip": (8, 0)}),
        node(10, "StyleCLIP_GlobalDirection", {"neutral": "face", "target": "smiling face", "beta": 0.15}, {"relevance": (9, 0), "clip": (8, 0)}),
        node(11, "StyleCLIP_EditFrames", {"strength": 3.0, "keyframes": "0: 0, 8: 3"},
             {"generator": (7, 0), "latents": (7, 1), "direction": (10, 0), "alignment": (4, 1)}),
        node(12, "StyleCLIP_LoadFaceParser", {"parser_name": PARSER}),
        node(13, "StyleCLIP_StitchAndPasteBack", {"steps": 10, "learning_rate": 3e-4, "content_weight": 0.01, "loss": "l2", "outer_dilation": 50,
                                                  "inner_dilation": 0, "whole_image_border": False, "feather": True},
             {"generator": (7, 0), "face_parser": (12, 0), "frames": frames, "alignment": (4, 1), "crops": (4, 0), "latents": (11, 0)}),
        node(14, "CreateVideo", {"fps": 16.0}, {"images": (13, 0), "fps": fps}),
        node(15, "SaveVideo", {"filename_prefix": "styleclip/video_edit", "format": "auto", "codec": "auto"}, {"video": (14, 0)}),
        node(16, "StyleCLIP_LoadArcFace", {"arcface_name": "model_ir_se50.pth"}),
        node(17, "StyleCLIP_VideoConsistency", {}, {"frames_in": frames, "frames_out": (13, 0), "masks": (13, 1), "arcface": (16, 0),
                                                    "crops_out": (13, 2), "crops_in": (4, 0)}),
        node(18, "PreviewAny", {}, {"source": (17, 0)}, title="Video Consistency"),
        node(19, "PreviewImage", {}, {"images": (13, 2)}, title="Stitched faces"),
    ]


WORKFLOWS["17_video_edit_example_clip"] = dict(
    note="Edit a face through a video ('face' -> 'smiling face'), consistently from frame to frame.\n" + VIDEO_NOTE + "\n"
    "The clip is the Example Clip node (the Example Portrait moving, rolling and turning over 16 frames). For your own video "
    "see workflow 18 (core Load Video -> Get Video Components).",
    nodes=[
        node(1, "StyleCLIP_ExampleClip", {"frames": 16}, title="Example Clip (see workflow 18 for your own video)"),
        *video_chain((1, 0), (1, 1)),
    ],
)

WORKFLOWS["18_video_edit_your_clip"] = dict(
    note="Workflow 17's chain on your own clip: core ComfyUI's Load Video (pick or upload a clip; short ones first: every frame "
    "is tuned and stitched) -> Get Video Components, and Create Video -> Save Video at the clip's frame rate.\n" + VIDEO_NOTE,
    nodes=[
        node(1, "LoadVideo", {"file": "styleclip_example_clip.mp4"}, title="Load Video (your clip)"),
        node(2, "GetVideoComponents", {}, {"video": (1, 0)}),
        *video_chain((2, 0), (2, 2)),
    ],
)


# StyleGAN-NADA: 19 adapts the generator from 'photo' to 'sketch' and shows sampled faces before and
# after; 20 renders a real photo with the same adapted generator (the same Train Domain run, resumed:
# a run of 19 is loaded, on a fresh install it trains).
NADA_TRAINING = {"source_text": "photo", "target_text": "sketch", "name": "nada_photo_to_sketch", "steps": 20, "save_every": 10, "preview_every": 5}
NADA_NOTE = (
    "Train Domain (StyleGAN-NADA) fine-tunes a copy of the generator so that, for the same codes, the CLIP-space change from "
    "the original's image to the copy's follows the text direction 'photo' -> 'sketch' (79 ImageNet templates). Only 20 steps "
    "here, a light run that finishes in seconds with the tiny stand-ins: StyleGAN-NADA's README command trains 301 "
    "iterations (Train Domain's default: 300 steps) at 1024 px, batch 2, lr 0.002, with two CLIPs (ViT-B/32 and ViT-B/16, weights 1 and 1: connect a second "
    "Load CLIP to clip_2); on a GPU raise steps. The checkpoint is models/stylegan/nada_photo_to_sketch.safetensors: an "
    "ordinary generator file that Load StyleGAN2 Generator and Load Adapted Generator (NADA) read."
)

WORKFLOWS["19_nada_photo_to_sketch"] = dict(
    note="Change the whole domain by text: the generator itself moves from 'photo' to 'sketch', so every face it renders is a "
    "sketch. Four sampled faces are rendered by the original generator (top row) and by the adapted one (bottom row), from the "
    "same latents.\n" + NADA_NOTE + " A run of this workflow writes a new numbered file when the name is taken "
    "(if_exists); workflow 20 resumes the first one.\n"
    "Models: stylegan2-ffhq-config-f.pt (models/stylegan), ViT-B-32.pt (models/openclip).",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "nada"}),
        node(3, "StyleCLIP_SampleLatents", {"seed": 5, "batch_size": 4, "truncation_psi": 0.7}, {"generator": (1, 0)}),
        node(4, "StyleCLIP_TrainDomain", NADA_TRAINING, {"generator": (1, 0), "clip": (2, 0)}),
        node(5, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (3, 0)}, title="Original generator"),
        node(6, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (4, 0), "latents": (3, 0)}, title="Adapted generator (sketch)"),
        node(7, "ImageBatch", {}, {"image1": (5, 0), "image2": (6, 0)}),
        node(8, "StyleCLIP_ImageGrid", {"columns": 4}, {"images": (7, 0)}, title="Image Grid (original above, adapted below)"),
        node(9, "SaveImage", {"filename_prefix": "styleclip/nada_photo_to_sketch"}, {"images": (8, 0)}),
    ],
)

WORKFLOWS["20_nada_photo_edit"] = dict(
    note="A real photo in the new domain: align the face, invert it with e4e, render its code with the generator adapted to "
    "'sketch' and paste it back into the photo.\n"
    f"{PHOTO_NOTE}\n" + NADA_NOTE + " Train Domain here has workflow 19's generator, CLIP, name and settings with if_exists "
    "'resume': after a run of workflow 19 it loads that checkpoint (nothing left to train); on a fresh install it trains it. "
    "e4e's codes are codes of the FFHQ generator (e4e_ffhq_encode.pt bundles it), so they render with its adapted copy.\n"
    "Models: e4e_ffhq_encode.pt (models/e4e), stylegan2-ffhq-config-f.pt (models/stylegan), ViT-B-32.pt (models/openclip). "
    + DETECTOR_NOTE,
    nodes=[
        *photo_front("256"),
        node(5, "StyleCLIP_LoadGenerator", {"generator_name": GENERATOR, "ops_backend": "auto"}),
        node(6, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "nada"}),
        node(7, "StyleCLIP_TrainDomain", {**NADA_TRAINING, "if_exists": "resume"}, {"generator": (5, 0), "clip": (6, 0)}),
        node(8, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (7, 0), "latents": (4, 0)}, title="Adapted generator (sketch)"),
        node(9, "StyleCLIP_PasteFaceBack", {"feather": 0.1}, {"photos": (1, 0), "faces": (8, 0), "alignment": (3, 1)}),
        node(10, "SaveImage", {"filename_prefix": "styleclip/nada_photo_edit"}, {"images": (9, 0)}),
        node(11, "PreviewImage", {}, {"images": (3, 0)}, title="Aligned face"),
    ],
)



# StyleGAN3: NVIDIA's FFHQ StyleGAN3-T through the edits that carry over (the tiny-models command
# writes a 64 px stand-in under the same name, so the workflow runs on a fresh install).
SG3_GENERATOR = "stylegan3-t-ffhq-1024x1024.pkl"

WORKFLOWS["21_stylegan3_sample_and_edit"] = dict(
    note="Sample and edit a StyleGAN3: faces drawn from NVIDIA's StyleGAN3-T for FFHQ (stylegan3-t-ffhq-1024x1024.pkl), "
    "edited by text (Optimize Latents toward 'a smiling person': CLIP loss + 0.008 x latent L2, 20 steps, a light edit; "
    "original faces above, edited below) and along SeFa component 0 at five strengths (one row per face, alpha -4 to 4). "
    "stylegan3-r-ffhq-1024x1024.pkl (StyleGAN3-R) works the same: pick it in Load StyleGAN2 Generator, which reads either "
    "from NVIDIA's pickle without running code from it.\n"
    "Models: stylegan3-t-ffhq-1024x1024.pkl (models/stylegan; from NVIDIA's NGC catalog, nvidia/research/stylegan3), "
    "ViT-B-32.pt (models/openclip). On a fresh install the tiny-models command's 64 px random stand-in of that file is what "
    "runs (its images are noise).\n"
    "What does not carry over to StyleGAN3: e4e photo inversion (Invert Images) and the video chain (Invert Frames and the "
    "nodes after it) need e4e's StyleGAN2 encoder and the StyleGAN2 generator it bundles; e4e's codes do not fit a StyleGAN3. "
    "StyleGAN3 runs in fp32 only, and the noise setting has no effect (it has no noise inputs). See the README, StyleGAN3 generators.",
    nodes=[
        node(1, "StyleCLIP_LoadGenerator", {"generator_name": SG3_GENERATOR, "ops_backend": "auto"}),
        node(2, "StyleCLIP_SampleLatents", {"seed": 8, "batch_size": 2, "truncation_psi": 0.7}, {"generator": (1, 0)}),
        node(3, "StyleCLIP_LoadCLIP", {"clip_name": "ViT-B-32.pt", "architecture": "auto", "image_preprocessing": "styleclip"}),
        node(4, "StyleCLIP_CLIPLoss", {"text": "a smiling person", "weight": 1.0}, {"clip": (3, 0)}),
        node(5, "StyleCLIP_LatentL2Loss", {"weight": 0.008}, {"loss": (4, 0)}),
        node(6, "StyleCLIP_OptimizeLatents", {"steps": 20, "learning_rate": 0.1, "space": "W+", "noise": "const", "preview_every": 5},
             {"generator": (1, 0), "latents": (2, 0), "loss": (5, 0)}),
        node(7, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (2, 0)}, title="Original"),
        node(8, "ImageBatch", {}, {"image1": (7, 0), "image2": (6, 1)}),
        node(9, "StyleCLIP_ImageGrid", {"columns": 2}, {"images": (8, 0)}, title="Image Grid (original above, text edit below)"),
        node(10, "SaveImage", {"filename_prefix": "styleclip/sg3_text_edit"}, {"images": (9, 0)}),
        node(11, "StyleCLIP_SeFaDirection", {"component": 0}, {"generator": (1, 0)}),
        node(12, "StyleCLIP_ApplyGlobalDirection", {"alphas": "-4, -2, 0, 2, 4"}, {"generator": (1, 0), "latents": (2, 0), "direction": (11, 0)}),
        node(13, "StyleCLIP_Synthesize", {"noise": "const"}, {"generator": (1, 0), "latents": (12, 0)}, title="Synthesize Images (SeFa sweep)"),
        node(14, "StyleCLIP_ImageGrid", {}, {"images": (13, 0), "columns": (12, 2)}, title="Image Grid (SeFa component 0, one row per face)"),
        node(15, "SaveImage", {"filename_prefix": "styleclip/sg3_sefa_sweep"}, {"images": (14, 0)}),
    ],
)

def main():
    import tempfile

    from styleclip_core.formats import tiny_models

    comfy_harness.use_stub()
    import folder_paths

    with tempfile.TemporaryDirectory() as base:
        folder_paths.set_base(base)
        tiny_models.write_models_folder(os.path.join(base, "models"))
        os.makedirs(os.path.join(base, "input"), exist_ok=True)
        info = comfy_harness.object_info(comfy_harness.all_nodes())
        for name, spec in WORKFLOWS.items():
            path = os.path.join(ROOT, "workflows", name + ".json")
            with open(path, "w") as f:
                json.dump(build(spec["nodes"], info, spec.get("note")), f, indent=2)
                f.write("\n")
            print("wrote", path)


if __name__ == "__main__":
    main()
