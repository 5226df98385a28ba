"""Thumbnails of the example workflows for ComfyUI's template browser: workflows/NAME.jpg beside
workflows/NAME.json.

For a custom node's templates, ComfyUI 0.3.64 lists the .json files of its workflows folder and
serves the folder as /api/workflow_templates/PACK/; frontend 1.27.10 shows each as a card titled
with the file name, described by the file name with '_' and '-' read as spaces, and pictured by
the same-name .jpg (no other extension, no title or description of the pack's own). So each
thumbnail carries the template's title and one-line description, above a drawing of the
workflow's graph (its nodes where the canvas places them, with their links; nodes that show
an image in blue-green). Run after tools/build_workflows.py: ``python tools/make_thumbnails.py``.
Each file records the layout it was drawn from (its JPEG comment), so tests/test_templates.py
reports a thumbnail that is out of date.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

WORKFLOWS = os.path.join(ROOT, "workflows")
SIZE = (512, 384)  # the card's picture is 4:3 (16rem x 12rem)
MAX_BYTES = 100_000
HEADER = 124
PAD = 14
BACKGROUND, HEADER_BG, TEXT, MUTED = (32, 32, 32), (24, 24, 28), (235, 235, 235), (170, 170, 178)
PACK_NODE, CORE_NODE, IMAGE_NODE, LINK = (58, 78, 120), (78, 78, 84), (34, 128, 118), (150, 150, 150)

# title, one-line description (what the template browser of later frontends could show; here drawn in)
TEMPLATES = {
    "01_generate_faces": ("Generate faces", "Sample StyleGAN2 faces, render them, save the images and their latents."),
    "02_text_edit_optimization": ("Text edit by optimisation", "Edit a face toward a text by optimising its latent code: CLIP, identity and L2 losses."),
    "03_invert_photo": ("Invert a photo", "Align a photo's face, invert it with e4e, reconstruct it and paste it back."),
    "04_mapper_edit": ("Edit with a latent mapper", "Edit sampled faces with a pretrained StyleCLIP mapper in one forward pass."),
    "05_local_edit_face_parsing": ("Local edit: face parsing", "A mapper edit confined to the hair by a face-parsing mask."),
    "06_local_edit_core_masks": ("Local edit: core masks", "A mapper edit confined to the top of the image by core mask nodes."),
    "07_mapper_train_and_apply": ("Train a latent mapper", "Train a mapper for a text, then edit new faces with it."),
    "08_global_direction": ("Global direction", "A text direction in StyleSpace swept over five strengths, globally and locally."),
    "09_masked_text_edit": ("Masked text edit", "A text edit of the hair only: masked losses and Local Edit."),
    "10_edit_photo_by_text": ("Edit a photo by text", "Align, invert and edit a real photo toward a text, then paste it back."),
    "11_photo_pti_global_edit": ("Photo edit that keeps identity", "e4e, then pivotal tuning (PTI), then a global direction, pasted back."),
    "12_photo_pti_text_edit": ("Photo text edit with PTI", "e4e, pivotal tuning, then a text optimisation with the tuned generator."),
    "14_sliders_text_and_mapper": ("Sliders: text + mapper", "A text direction and a mapper's edit on live sliders; values saved as a preset."),
    "15_sliders_sefa": ("Sliders: SeFa components", "Three closed-form directions on live sliders, and a strip of one to pick a strength."),
    "16_sliders_preset_reload": ("Sliders: a preset reloaded", "Workflow 14's saved slider values applied by name to new faces."),
    "13_compare_e4e_pti": ("e4e alone vs e4e + PTI", "Reconstructions side by side, scored by Edit Metrics (identity, LPIPS, PSNR)."),
    "17_video_edit_example_clip": ("Edit a face through a video", "STIT on the Example Clip: smoothed crops, one tuned generator, stitched edits."),
    "18_video_edit_your_clip": ("Edit your own video", "Workflow 17's chain from core Load Video to Save Video, at the clip's frame rate."),
    "19_nada_photo_to_sketch": ("Change the domain by text", "StyleGAN-NADA: the generator moved from 'photo' to 'sketch'; faces before and after."),
    "20_nada_photo_edit": ("A photo in the new domain", "A photo inverted with e4e, rendered by workflow 19's sketch generator, pasted back."),
    "21_stylegan3_sample_and_edit": ("StyleGAN3: sample and edit", "StyleGAN3-T faces edited by text and along a SeFa direction at five strengths."),
}


def layout_key(workflow: dict) -> str:
    """What a thumbnail is drawn from: node types, boxes and links."""
    nodes = sorted((n["id"], n["type"], n["pos"], n["size"]) for n in workflow["nodes"])
    links = sorted(tuple(link[:4]) for link in workflow["links"])
    return hashlib.sha256(json.dumps([nodes, links]).encode()).hexdigest()[:16]


def _font(size, bold=False):
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/Library/Fonts", "C:/Windows/Fonts"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def draw(name: str, workflow: dict):
    from PIL import Image, ImageDraw

    from build_workflows import IMAGE_NODES, TITLE_HEIGHT, body_height

    title, description = TEMPLATES[name]
    img = Image.new("RGB", SIZE, BACKGROUND)
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, SIZE[0], HEADER], fill=HEADER_BG)
    d.text((PAD, PAD - 2), name[:2], font=_font(40, bold=True), fill=IMAGE_NODE)
    d.text((PAD + 64, PAD + 2), title, font=_font(26, bold=True), fill=TEXT)
    for i, line in enumerate(textwrap.wrap(description, 44)[:2]):
        d.text((PAD, 66 + 24 * i), line, font=_font(17), fill=MUTED)

    nodes = [n for n in workflow["nodes"] if n["type"] not in ("Note", "MarkdownNote")]
    x0 = min(n["pos"][0] for n in nodes)
    y0 = min(n["pos"][1] - TITLE_HEIGHT for n in nodes)
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes)
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes)
    area = (PAD, HEADER + PAD, SIZE[0] - PAD, SIZE[1] - PAD)
    scale = min((area[2] - area[0]) / (x1 - x0), (area[3] - area[1]) / (y1 - y0))
    ox = area[0] + ((area[2] - area[0]) - scale * (x1 - x0)) / 2
    oy = area[1] + ((area[3] - area[1]) - scale * (y1 - y0)) / 2

    def at(x, y):
        return ox + (x - x0) * scale, oy + (y - y0) * scale

    by_id = {n["id"]: n for n in nodes}
    for _, src, src_slot, dst, dst_slot, *_ in workflow["links"]:
        a, b = by_id[src], by_id[dst]
        start = at(a["pos"][0] + a["size"][0], a["pos"][1] + 14 + 20 * src_slot)
        end = at(b["pos"][0], b["pos"][1] + 14 + 20 * dst_slot)
        mid = (start[0] + end[0]) / 2
        d.line([start, (mid, start[1]), (mid, end[1]), end], fill=LINK, width=1)
    for n in nodes:
        left, top = at(n["pos"][0], n["pos"][1] - TITLE_HEIGHT)
        right, bottom = at(n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
        body = PACK_NODE if n["type"].startswith("StyleCLIP_") else CORE_NODE
        d.rounded_rectangle([left, top, right, bottom], radius=3, fill=body, outline=(20, 20, 20))
        d.rectangle([left + 1, top + 1, right - 1, top + TITLE_HEIGHT * scale], fill=tuple(c + 30 for c in body))
        if n["type"] in IMAGE_NODES:  # the room its image preview takes, at the bottom of its body
            preview = (n["size"][1] - body_height(len(n["widgets_values"]))) * scale
            d.rectangle([left + 3, bottom - preview, right - 3, bottom - 3], fill=IMAGE_NODE)
    return img


def write(name: str) -> str:
    with open(os.path.join(WORKFLOWS, name + ".json")) as f:
        workflow = json.load(f)
    path = os.path.join(WORKFLOWS, name + ".jpg")
    img = draw(name, workflow)
    for quality in (88, 80, 70, 60):
        img.save(path, "JPEG", quality=quality, optimize=True, comment=("layout " + layout_key(workflow)).encode())
        if os.path.getsize(path) <= MAX_BYTES:
            break
    return path


def main():
    names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(WORKFLOWS, "*.json")))
    missing = [n for n in names if n not in TEMPLATES]
    if missing:
        raise SystemExit(f"no title and description in TEMPLATES for {missing}")
    for name in names:
        path = write(name)
        print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
