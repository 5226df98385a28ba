"""Command line: ``python -m styleclip_core <command>``.

  convert FILE [--out OUT]     any supported generator file -> .safetensors (never overwrites)
  tiny-models --models-dir DIR write tiny random stand-ins of every model (never overwrites)
  check-models --models-dir DIR  which official files are present, missing or wrong
  relevance --generator G --clip C --cache-dir DIR   global directions' fs3 and statistics (cached, resumable)
"""
from __future__ import annotations

import argparse
import sys


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
    from .global_cache import add_relevance_arguments

    add_relevance_arguments(sub.add_parser("relevance", help="compute channel relevance (fs3) and style statistics for global directions"))
    args = parser.parse_args(argv)
    if args.command == "convert":
        from .checkpoints import convert_to_safetensors

        print("wrote", convert_to_safetensors(args.file, args.out))
    elif args.command == "check-models":
        from .model_catalog import check_models, format_report

        rows = check_models(args.models_dir, verify=not args.quick)
        print(format_report(rows))
        return 1 if any(status == "PROBLEM" for _, status, _ in rows) else 0
    elif args.command == "tiny-models":
        from .tiny_models import main as tiny_main

        tiny_main(["--models-dir", args.models_dir])
    elif args.command == "relevance":
        from .global_cache import relevance_command

        relevance_command(args)


if __name__ == "__main__":
    sys.exit(main())
