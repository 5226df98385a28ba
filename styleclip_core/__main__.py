"""Command line: ``python -m styleclip_core <command>``.

  convert FILE [--out OUT]     any supported generator file -> .safetensors (never overwrites)
  tiny-models --models-dir DIR write tiny random stand-ins of every model (never overwrites)
  check-models --models-dir DIR  which official files are present, missing or wrong
  relevance --generator G --clip C --cache-dir DIR   global directions' fs3 and statistics (cached, resumable)
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


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


if __name__ == "__main__":
    sys.exit(main())
