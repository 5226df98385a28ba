"""Command line: ``python -m styleclip_core <command>``.

  convert FILE [--out OUT]     any supported generator file -> .safetensors (never overwrites)
  tiny-models --models-dir DIR write tiny random stand-ins of every model (never overwrites)
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
    from .global_cache import add_relevance_arguments

    add_relevance_arguments(sub.add_parser("relevance", help="compute channel relevance (fs3) and style statistics for global directions"))
    args = parser.parse_args(argv)
    if args.command == "convert":
        from .checkpoints import convert_to_safetensors

        print("wrote", convert_to_safetensors(args.file, args.out))
    elif args.command == "tiny-models":
        from .tiny_models import main as tiny_main

        tiny_main(["--models-dir", args.models_dir])
    elif args.command == "relevance":
        from .global_cache import relevance_command

        relevance_command(args)


if __name__ == "__main__":
    sys.exit(main())
