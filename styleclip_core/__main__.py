"""Command line: ``python -m styleclip_core <command>``.

  convert FILE [--out OUT]     any supported generator file -> .safetensors (never overwrites)
  tiny-models --models-dir DIR write tiny random stand-ins of every model (never overwrites)
  check-models --models-dir DIR  which official files are present, missing or wrong
  relevance --generator G --clip C --cache-dir DIR   global directions' fs3 and statistics (cached, resumable)
  evaluate --config edits.yaml --generator G (--photos DIR --e4e E | --samples N --seed S) --clip C --out DIR
                               score and time edits: results.md / results.csv (never overwrites)
  edit-folder --recipe recipe.json --photos DIR --out DIR (--models-dir M | --e4e E ...)
                               edit every photo of a folder (align, e4e, [PTI], edit, paste back); resumable
"""
from __future__ import annotations

import argparse
import sys
import time

from .precision import PRECISIONS, canonical


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m styleclip_core", description="ComfyUI-StyleCLIP library tools")
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="convert a generator checkpoint (.pt, .pkl) to .safetensors")
    convert.add_argument("file")
    convert.add_argument("--out", help="output path (default: beside the input, .safetensors)")
    tiny = sub.add_parser("tiny-models", help="write tiny random-weight stand-ins under the official names")
    tiny.add_argument("--models-dir", required=True)
    check = sub.add_parser("check-models", help="check a ComfyUI models folder against the pack's model list")
    check.add_argument("--models-dir", required=True)
    check.add_argument("--quick", action="store_true", help="presence and published checksums only; do not load the files")
    add_relevance_arguments(sub.add_parser("relevance", help="compute channel relevance (fs3) and style statistics for global directions"))
    evaluate = sub.add_parser("evaluate", help="run the edits of a config on sampled faces or photos; score and time them (results.md, results.csv)")
    add_evaluate_arguments(evaluate)
    from .evaluation import edit_folder as folder_job

    folder = sub.add_parser("edit-folder", help="apply a recipe (align, e4e, optional PTI, an edit, paste back) to every photo of a folder")
    folder_job.add_arguments(folder)
    args = parser.parse_args(argv)
    if args.command == "convert":
        from .formats.generator_files import convert_to_safetensors

        print("wrote", convert_to_safetensors(args.file, args.out))
    elif args.command == "check-models":
        from .formats.model_catalog import check_models, format_report

        rows = check_models(args.models_dir, verify=not args.quick)
        print(format_report(rows))
        return 1 if any(status == "PROBLEM" for _, status, _ in rows) else 0
    elif args.command == "tiny-models":
        from .formats.tiny_models import main as tiny_main

        tiny_main(["--models-dir", args.models_dir])
    elif args.command == "relevance":
        relevance_command(args)
    elif args.command == "evaluate":
        return evaluate_command(args, evaluate)
    elif args.command == "edit-folder":
        return folder_job.command(args, folder)


# ---------------------------------------------------------------------------------------------
# relevance: what the Channel Relevance node does, from a shell


def add_relevance_arguments(parser):
    import torch

    parser.add_argument("--generator", required=True, help="generator file (.pt, .pkl, .safetensors)")
    parser.add_argument("--clip", required=True, help="CLIP weights (OpenAI's ViT-B-32.pt for StyleCLIP)")
    parser.add_argument("--architecture", default="auto", help="open_clip architecture of --clip ('auto' for OpenAI-layout files)")
    parser.add_argument("--cache-dir", required=True, help="the cache folder (ComfyUI/models/styleclip_global, so the nodes find the result)")
    parser.add_argument("--num-images", type=int, default=100, help="faces each channel is probed on (reference: 100)")
    parser.add_argument("--layers", choices=["all", "128"], default="all", help="probe every conv layer, or those up to 128 px as SingleChannel.py does")
    parser.add_argument("--channels-alone", action="store_true", help="reset only the probed channel to its mean (the reference leaves earlier ones there too)")
    parser.add_argument("--batch-size", type=int, default=16, help="probe images rendered and encoded at once")
    parser.add_argument("--precision", choices=list(PRECISIONS), type=canonical, default="fp32", help="bf16 / fp16: autocast, a GPU speed option (float32 / bfloat16 / float16 are accepted too)")
    parser.add_argument("--statistics-samples", type=int, default=100_000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def relevance_command(args) -> str:
    """Compute (or find) fs3 and statistics as the Channel Relevance node does; Ctrl-C keeps the
    finished rows and a rerun resumes from them. Returns the fs3 file."""
    from .edits.channel_relevance import RelevanceJob
    from .edits.relevance_cache import relevance_for
    from .formats.clip_files import load_clip
    from .formats.generator_files import load_generator

    g = load_generator(args.generator, args.device)
    clip = load_clip(args.clip, args.architecture, args.device)
    job = RelevanceJob(num_images=args.num_images, max_resolution=None if args.layers == "all" else 128, cumulative_mean=not args.channels_alone, precision=args.precision)
    phase = {"total": None, "start": 0.0, "printed": 0.0}

    def report(done, total, preview=None):
        now = time.monotonic()
        if total != phase["total"]:  # a new phase: statistics (samples), then fs3 (channels)
            phase.update(total=total, start=now, printed=0.0)
        if now - phase["printed"] < 10 and done < total:
            return
        rate = (now - phase["start"]) / done if done else 0
        print(f"{done}/{total}" + (f", about {_duration((total - done) * rate)} left" if 0 < done < total else ""), flush=True)
        phase["printed"] = now

    rel = relevance_for(g, clip, [args.cache_dir], job, args.batch_size, args.statistics_samples, report)
    how = f"computed in {_duration(rel.info['seconds'])}" if rel.info.get("computed") else "found in the cache"
    print(f"fs3 {list(rel.fs3.shape)} {how}: {rel.source}\nstatistics: {rel.info['statistics']}")
    return rel.source


# ---------------------------------------------------------------------------------------------
# evaluate: edits of a config on sampled faces or photos, scored (edits.metrics) and timed


def add_evaluate_arguments(parser):
    import torch

    parser.add_argument("--config", required=True, help="YAML or JSON list of edits {method: global|optimize|mapper, prompt, neutral, settings}")
    parser.add_argument("--generator", help="generator file (.pt, .pkl, .safetensors); with --e4e, default: the generator in the e4e file")
    faces = parser.add_argument_group("faces (one of --samples, --photos)")
    faces.add_argument("--samples", type=int, help="number of sampled faces")
    faces.add_argument("--seed", type=int, default=0, help="seed of the sampled faces (default 0)")
    faces.add_argument("--truncation", type=float, default=0.7, help="truncation psi of the sampled faces (default 0.7, as StyleCLIP)")
    faces.add_argument("--photos", help="folder of photos (one face each), aligned and inverted with --e4e")
    faces.add_argument("--e4e", help="e4e checkpoint (e4e_ffhq_encode.pt) for --photos")
    faces.add_argument("--points", help="text file: a line per photo (in name order) of 8 numbers, x y of the left eye centre, right eye centre, "
                       "left and right mouth corners (default: found by the MediaPipe face mesh)")
    faces.add_argument("--aligned", action="store_true", help="the photos are aligned crops already (no face detection)")
    parser.add_argument("--clip", required=True, help="CLIP weights (OpenAI's ViT-B-32.pt)")
    parser.add_argument("--architecture", default="auto", help="open_clip architecture of --clip ('auto' for OpenAI-layout files)")
    parser.add_argument("--arcface", help="ArcFace IR-SE50 (model_ir_se50.pth): identity metric, and the identity loss of optimize edits")
    parser.add_argument("--lpips", help="LPIPS backbone (torchvision's alexnet-owt-7be5be79.pth): LPIPS metric")
    parser.add_argument("--lpips-net", choices=["alex", "vgg"], default="alex", help="the network of --lpips (default alex)")
    parser.add_argument("--fs3", help="fs3 file for global edits whose settings name none (the official fs3.npy for FFHQ 1024 + ViT-B/32)")
    parser.add_argument("--cache-dir", help="folder of style statistics and computed fs3 (default OUT/styleclip_global; "
                        "ComfyUI/models/styleclip_global shares the nodes' cache)")
    parser.add_argument("--out", required=True, help="folder for results.md / results.csv (never overwritten: results_00001.* and so on)")
    parser.add_argument("--save-images", action="store_true", help="also write the original and edited images (PNG) to OUT/images*/")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def evaluate_command(args, parser) -> int:
    """Load the models (untimed), make the faces, run and score every edit, write the results.
    Returns 0; a bad config, file or face is a message and exit status 1."""
    import os

    from .evaluation import runner
    from .evaluation.config import read_config

    if (args.samples is None) == (args.photos is None):
        parser.error("give the faces: either --samples N (sampled faces) or --photos DIR (with --e4e)")
    if args.photos is not None and not args.e4e:
        parser.error("--photos needs --e4e (the encoder that inverts them)")
    if args.points and args.aligned:
        parser.error("--points and --aligned exclude each other")
    if (args.points or args.aligned) and args.photos is None:
        parser.error("--points and --aligned are for --photos")
    if args.generator is None and not args.e4e:
        parser.error("--generator is needed (or --e4e, whose file holds its generator)")
    try:
        edits = read_config(args.config)  # a bad config is reported before any model loads
        models, faces = _evaluation_inputs(args)
        paths = runner.output_names(args.out, images=args.save_images)
        if args.save_images:
            os.makedirs(paths["images"])
        results = runner.run_evaluation(models, faces, edits, log=lambda line: print(line, flush=True), images_dir=paths.get("images"))
    except (ValueError, FileNotFoundError) as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 1
    about = [f"generator: `{os.path.basename(models.generator.source)}` ({models.generator.size} px); device {models.device}",
             f"models: CLIP `{os.path.basename(args.clip)}`"
             + (f", ArcFace `{os.path.basename(args.arcface)}`" if args.arcface else ", no ArcFace (no identity metric)")
             + (f", LPIPS-{args.lpips_net} `{os.path.basename(args.lpips)}`" if args.lpips else ", no LPIPS (no LPIPS metric)"),
             f"config: `{os.path.basename(args.config)}`"]
    md, csv = runner.write_results(results, faces, paths, about)
    print(f"wrote {md} and {csv}" + (f" and the images in {paths['images']}" if args.save_images else ""))
    return 0


def _evaluation_inputs(args):
    import os

    from .evaluation import runner
    from .formats.arcface_files import load_arcface
    from .formats.clip_files import load_clip
    from .formats.e4e_files import check_pair, load_e4e
    from .formats.generator_files import load_generator
    from .formats.lpips_files import load_lpips

    g = load_generator(args.generator, args.device) if args.generator else None
    encoder = None
    if args.e4e:
        encoder, bundled = load_e4e(args.e4e, args.device)
        if g is None:
            g = bundled
        else:
            check_pair(encoder, g, args.generator)
    clip = load_clip(args.clip, args.architecture, args.device)
    arcface = load_arcface(args.arcface, args.device) if args.arcface else None
    lpips = load_lpips(args.lpips_net, args.lpips, device=args.device) if args.lpips else None
    cache_dir = args.cache_dir or os.path.join(args.out, "styleclip_global")
    models = runner.Models(g, clip, arcface, lpips, args.fs3, cache_dir)
    if args.photos is not None:
        landmarks, points = "detect", None
        if args.aligned:
            landmarks = "aligned"
        elif args.points:
            landmarks = "points"
            with open(args.points, encoding="utf-8") as f:
                points = f.read()
        faces = runner.photo_faces(encoder, runner.list_photos(args.photos), landmarks, points, models.device)
    else:
        faces = runner.sample_faces(g, args.samples, args.seed, args.truncation)
    return models, faces


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


if __name__ == "__main__":
    sys.exit(main())
