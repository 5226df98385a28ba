"""Run an example workflow headless, without a ComfyUI server.

    python tools/run_workflow.py workflows/01_generate_faces.json [--models-dir DIR] [--output DIR]

Models are looked up in ``--models-dir`` (a ComfyUI ``models`` folder, default ``./models``)
first; any the workflow needs that are missing there are replaced by tiny random-weight
stand-ins written to ``.cache/tiny_models`` (never into your models folder), and the run says
which. Images and other outputs go to ``--output`` (default ``./output``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, ROOT)

import comfy_harness  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workflow", help="workflow JSON saved by the ComfyUI frontend")
    parser.add_argument("--models-dir", default=os.path.join(ROOT, "models"), help="ComfyUI models folder (read only)")
    parser.add_argument("--output", default=os.path.join(ROOT, "output"), help="output folder")
    parser.add_argument("--input", default=os.path.join(ROOT, "input"), help="input folder (images for Load Image)")
    args = parser.parse_args(argv)

    comfy_harness.use_stub()
    import folder_paths

    from styleclip_core.formats import tiny_models

    folder_paths.set_base(os.path.join(ROOT, ".cache", "headless"))
    folder_paths.models_dir = os.path.abspath(args.models_dir)
    folder_paths.output_directory = os.path.abspath(args.output)
    folder_paths.input_directory = os.path.abspath(args.input)
    os.makedirs(folder_paths.input_directory, exist_ok=True)
    nodes = comfy_harness.all_nodes()  # registers the pack's model folders under models_dir

    stand_ins = os.path.join(ROOT, ".cache", "tiny_models")
    used = []
    for kind, (folder, filename, _) in tiny_models.WRITERS.items():
        if folder in folder_paths.folder_names_and_paths and folder_paths.get_full_path(folder, filename) is None:
            tiny_models.write_models_folder(stand_ins, kinds=[kind])
            folder_paths.add_model_folder_path(folder, os.path.join(stand_ins, folder))
            used.append(f"{folder}/{filename}")
    if used:
        print("using tiny random-weight stand-ins (images will be noise-like) for:", ", ".join(used))

    import json

    with open(args.workflow) as f:
        workflow = json.load(f)
    start = time.perf_counter()
    prompt = comfy_harness.ui_to_prompt(workflow, comfy_harness.object_info(nodes))
    results = comfy_harness.execute(prompt, nodes)
    for node_id, (_, ui) in sorted(results.items()):
        for item in (ui or {}).get("images", []):
            if "filename" in item:
                print("wrote", os.path.join(folder_paths.get_output_directory(), item["subfolder"], item["filename"]))
        for text in (ui or {}).get("text", []):
            print(f"[{prompt[node_id]['class_type']}] {text}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
