"""Command line: ``python -m styleclip_core <command>``.

  convert FILE [--out OUT]     any supported generator file -> .safetensors (never overwrites)
  tiny-models --models-dir DIR write tiny random stand-ins of every model (never overwrites)
  check-models --models-dir DIR  which official files are present, missing or wrong
  relevance --generator G --clip C --cache-dir DIR   global directions' fs3 and statistics (cached, resumable;
                               under torchrun the channels are shared across the ranks)
  train-mapper --generator G --clip C --prompt TEXT --out FILE   train a latent mapper (resumable; under
                               torchrun data-parallel, the global batch split across the ranks)
  evaluate --config edits.yaml --generator G (--photos DIR --e4e E | --samples N --seed S) --clip C --out DIR
                               score and time edits: results.md / results.csv (never overwrites)
  edit-folder --recipe recipe.json --photos DIR --out DIR (--models-dir M | --e4e E ...)
                               edit every photo of a folder (align, e4e, [PTI], edit, paste back); resumable
"""
from __future__ import annotations

import argparse
import contextlib
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
    add_train_mapper_arguments(sub.add_parser("train-mapper", help="train a StyleCLIP latent mapper (as the Train Latent Mapper node does)"))
    add_adapt_domain_arguments(sub.add_parser("adapt-domain", help="move a generator to a new domain by text, StyleGAN-NADA (as the Train Domain node does)"))
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
        return relevance_command(args)
    elif args.command == "train-mapper":
        return train_mapper_command(args)
    elif args.command == "adapt-domain":
        return adapt_domain_command(args)
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
    parser.add_argument("--layers", choices=["all", "128"], default="all", help="probe every conv layer, or those up to 128 px as SingleChannel.py does (StyleGAN3: all only, every StyleSpace channel)")
    parser.add_argument("--channels-alone", action="store_true", help="change only the probed channel (the references leave earlier ones at their means, StyleGAN3's at mean + 5 std)")
    parser.add_argument("--batch-size", type=int, default=16, help="probe images rendered and encoded at once")
    parser.add_argument("--precision", choices=list(PRECISIONS), type=canonical, default="fp32", help="bf16 / fp16: autocast, a GPU speed option (float32 / bfloat16 / float16 are accepted too)")
    parser.add_argument("--statistics-samples", type=int, default=100_000)
    parser.add_argument("--max-rows", type=int, help="stop each process after about this many newly computed rows (at the end of a unit); "
                        "the rows are kept and a rerun continues (exit status 3 when stopped)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (under torchrun, cuda is each rank's GPU: LOCAL_RANK)")


STOPPED = 3  # exit status of a relevance run stopped by --max-rows (its rows are kept)


def relevance_command(args) -> int:
    """Compute (or find) fs3 and statistics as the Channel Relevance node does; Ctrl-C (or SIGTERM,
    as torchrun stops its workers) keeps the finished rows and a rerun resumes from them. Under
    ``torchrun`` every rank runs this: the channels are shared out, rank 0 writes the cache file
    and prints, the others wait for it. Returns the exit status (``STOPPED`` after --max-rows)."""
    from . import distributed
    from .edits.channel_relevance import RelevanceJob, RelevanceStopped
    from .edits.relevance_cache import relevance_for
    from .formats.clip_files import load_clip
    from .formats.generator_files import load_generator

    distributed.init(args.device)
    rank, size = distributed.world()
    device = distributed.device_for_rank(args.device)
    g = load_generator(args.generator, device)
    clip = load_clip(args.clip, args.architecture, device)
    job = RelevanceJob.for_generator(g, num_images=args.num_images, max_resolution=None if args.layers == "all" else 128, cumulative_mean=not args.channels_alone,
                                     precision=args.precision)
    phase = {"total": None, "start": 0.0, "printed": 0.0}
    who = f"rank 0 of {size}: " if size > 1 else ""

    def report(done, total, preview=None):
        now = time.monotonic()
        if total != phase["total"]:  # a new phase: statistics (samples), then fs3 (channels; of rank 0's share under torchrun)
            phase.update(total=total, start=now, printed=0.0)
        if now - phase["printed"] < 10 and done < total:
            return
        rate = (now - phase["start"]) / done if done else 0
        print(f"{who}{done}/{total}" + (f", about {_duration((total - done) * rate)} left" if 0 < done < total else ""), flush=True)
        phase["printed"] = now

    try:
        with _exit_on_sigterm():
            rel = relevance_for(g, clip, [args.cache_dir], job, args.batch_size, args.statistics_samples, report if rank == 0 else None, args.max_rows)
    except RelevanceStopped as e:
        if rank == 0:
            print(f"incomplete: {e}", flush=True)
        distributed.finish()
        return STOPPED
    if rel is not None:
        how = f"computed in {_duration(rel.info['seconds'])}" + (f" by {size} ranks" if size > 1 else "") if rel.info.get("computed") else "found in the cache"
        print(f"fs3 {list(rel.fs3.shape)} {how}: {rel.source}\nstatistics: {rel.info['statistics']}", flush=True)
    distributed.finish()
    return 0


@contextlib.contextmanager
def _exit_on_sigterm():
    """SIGTERM (torchrun's way of stopping the other ranks when one fails) as SystemExit while the
    block runs, so the work in hand is saved as on Ctrl-C; the previous handler is put back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


# ---------------------------------------------------------------------------------------------
# train-mapper: what the Train Latent Mapper node does, from a shell (and under torchrun)


def add_train_mapper_arguments(parser):
    import torch

    from .edits.mapper_training import OPTIMIZERS, TrainingOptions
    from .edits.training_checkpoints import IF_EXISTS
    from .models.mapper import MAPPER_TYPES

    d = TrainingOptions()
    parser.add_argument("--generator", required=True, help="generator file (.pt, .pkl, .safetensors); its stored noise maps are used")
    parser.add_argument("--clip", required=True, help="CLIP weights (OpenAI's ViT-B-32.pt for StyleCLIP)")
    parser.add_argument("--architecture", default="auto", help="open_clip architecture of --clip ('auto' for OpenAI-layout files)")
    parser.add_argument("--arcface", help="ArcFace IR-SE50 (model_ir_se50.pth) for the identity loss; without it no identity loss (the coach with id_lambda 0)")
    parser.add_argument("--prompt", required=True, help="the text the mapper edits toward (CLIP Loss)")
    parser.add_argument("--clip-weight", type=float, default=1.0, help="CLIP Loss weight (StyleCLIP's clip_lambda: 1.0)")
    parser.add_argument("--id-weight", type=float, default=0.1, help="Identity Loss weight, with --arcface (StyleCLIP's id_lambda: 0.1)")
    parser.add_argument("--l2-weight", type=float, default=0.8, help="Latent L2 Loss weight, reduction 'mean' (StyleCLIP's latent_l2_lambda: 0.8); 0 leaves it out")
    codes = parser.add_argument_group("training codes (default: --sample-count faces sampled from the generator)")
    codes.add_argument("--latents", help="latent file (.safetensors, or a .pt W+ tensor such as StyleCLIP's train_faces.pt) or a folder of them")
    codes.add_argument("--sample-count", type=int, default=5000, help="faces sampled for training without --latents (StyleCLIP: 5000)")
    codes.add_argument("--truncation-psi", type=float, default=0.7, help="truncation of the sampled faces (StyleCLIP: 0.7)")
    parser.add_argument("--out", required=True, help="the checkpoint file, e.g. ComfyUI/models/styleclip_mappers/purple_hair.safetensors (.safetensors is added)")
    parser.add_argument("--if-exists", choices=list(IF_EXISTS), default="number",
                        help="when --out exists: 'number' writes NAME_00001.safetensors (the next free number), 'resume' continues its run "
                        "(any number of ranks), 'overwrite' starts afresh and replaces it")
    parser.add_argument("--steps", type=int, default=50000, help="training steps in all, resumed steps included (StyleCLIP: 50000)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="the GLOBAL batch: faces per step over all ranks, split across them (StyleCLIP: 2)")
    parser.add_argument("--learning-rate", type=float, default=d.learning_rate, help="StyleCLIP: 0.5")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=d.optimizer, help="'ranger' (StyleCLIP's default) or 'adam'")
    parser.add_argument("--mapper-type", choices=list(MAPPER_TYPES), default=d.mapper_type)
    parser.add_argument("--no-coarse", action="store_true", help="LevelsMapper: leave W+ rows 0-3 unedited")
    parser.add_argument("--no-medium", action="store_true", help="LevelsMapper: leave W+ rows 4-7 unedited")
    parser.add_argument("--no-fine", action="store_true", help="LevelsMapper: leave W+ rows 8 and up unedited")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the mapper's initial weights, the batch order and sampled training faces")
    parser.add_argument("--save-every", type=int, default=2000, help="write the checkpoint every this many steps (StyleCLIP: 2000); 0 = only at the end")
    parser.add_argument("--report-every", type=int, default=100, help="print the step and the global batch's losses every this many steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (under torchrun, cuda is each rank's GPU: LOCAL_RANK)")


def add_adapt_domain_arguments(parser):
    import torch

    from .edits.domain_adaptation import PHASES, DomainAdaptationSettings
    from .edits.training_checkpoints import IF_EXISTS

    d = DomainAdaptationSettings()
    parser.add_argument("--generator", required=True, help="the generator to adapt (.pt, .pkl, .safetensors); it is not changed")
    parser.add_argument("--clip", required=True, nargs="+", help="one or more CLIP files (NADA's README: ViT-B-32.pt ViT-B-16.pt)")
    parser.add_argument("--clip-weights", type=float, nargs="+", help="one weight per --clip (default 1 each)")
    parser.add_argument("--architecture", default="auto", help="open_clip architecture of the --clip files ('auto' for OpenAI-layout files)")
    parser.add_argument("--source", default=d.source, help="the domain the generator draws (NADA's source_class)")
    parser.add_argument("--target", default=d.target, help="the domain to move it to (NADA's target_class)")
    parser.add_argument("--out", required=True, help="the adapted generator, e.g. ComfyUI/models/stylegan/nada_sketch.safetensors (.safetensors is added)")
    parser.add_argument("--if-exists", choices=list(IF_EXISTS), default="number",
                        help="when --out exists: 'number' writes NAME_00001.safetensors, 'resume' continues its run, 'overwrite' starts afresh")
    parser.add_argument("--steps", type=int, default=300, help="training steps in all, resumed steps included (NADA's README: 301 iterations)")
    for name in ("batch_size", "learning_rate", "lambda_direction", "lambda_global", "lambda_manifold", "auto_layer_k", "auto_layer_iters", "auto_layer_batch", "seed"):
        value = getattr(d, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=f"NADA's --{name if name != 'batch_size' else 'batch'} (default {value})")
    parser.add_argument("--phase", choices=list(PHASES), default=d.phase, help="layers trained when --auto-layer-iters is 0 (NADA's --phase; 'default' is its None)")
    parser.add_argument("--save-every", type=int, default=50, help="write the checkpoint every this many steps; 0 = only at the end")
    parser.add_argument("--report-every", type=int, default=10, help="print the step and its losses every this many steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")


def adapt_domain_command(args) -> int:
    """Adapt a generator as the Train Domain node does. Returns the exit status (1: a bad file or
    setting, reported)."""
    from .edits.domain_adaptation import DomainAdaptationSettings, adapt_domain
    from .edits.training_checkpoints import checkpoint_path
    from .formats.clip_files import load_clip
    from .formats.generator_files import load_generator

    try:
        weights = tuple(args.clip_weights or [1.0] * len(args.clip))
        settings = DomainAdaptationSettings(
            source=args.source, target=args.target, batch_size=args.batch_size, learning_rate=args.learning_rate,
            lambda_direction=args.lambda_direction, lambda_global=args.lambda_global, lambda_manifold=args.lambda_manifold,
            auto_layer_k=args.auto_layer_k, auto_layer_iters=args.auto_layer_iters, auto_layer_batch=args.auto_layer_batch,
            phase=args.phase, clip_weights=weights, seed=args.seed)
        g = load_generator(args.generator, args.device)
        clips = [load_clip(path, args.architecture, args.device) for path in args.clip]
        path, resume = _checkpoint_choice(checkpoint_path, args.out, args.if_exists)
        result = adapt_domain(g, clips, settings, path, args.steps, resume=resume, overwrite=args.if_exists == "overwrite",
                              save_every=args.save_every, preview_every=max(1, args.report_every), report=lambda line: print(line, flush=True))
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"adapt-domain: error: {e}", file=sys.stderr)
        return 1
    resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from is not None else ""
    print(f"wrote {path}: {settings.source!r} -> {settings.target!r}, step {result.step}/{args.steps}{resumed}", flush=True)
    return 0


def train_mapper_command(args) -> int:
    """Train a mapper as the Train Latent Mapper node does (the coach's loss from the prompt and
    weights). Under ``torchrun`` every rank runs this: DistributedDataParallel over the global
    batch, rank 0 chooses, reads and writes the checkpoint and prints. Returns the exit status (1:
    a bad file or setting, reported)."""
    import os

    from . import distributed
    from .edits import losses
    from .edits.mapper_training import TrainingOptions, train_mapper
    from .edits.training_checkpoints import checkpoint_path
    from .formats.arcface_files import load_arcface
    from .formats.clip_files import load_clip
    from .formats.generator_files import load_generator
    from .formats.latent_files import load_latent_folder, load_latents
    from .models.latents import sample_latents

    distributed.init(args.device)
    rank, size = distributed.world()
    device = distributed.device_for_rank(args.device)
    try:
        options = TrainingOptions(args.mapper_type, not args.no_coarse, not args.no_medium, not args.no_fine, args.batch_size, args.learning_rate, args.optimizer, args.seed)
        g = load_generator(args.generator, device)
        loss = losses.LossSet().add(losses.ClipLoss(load_clip(args.clip, args.architecture, device), args.prompt, args.clip_weight))
        if args.arcface and args.id_weight:
            loss = loss.add(losses.IdentityLoss(load_arcface(args.arcface, device), args.id_weight))
        if args.l2_weight:
            loss = loss.add(losses.LatentL2Loss(args.l2_weight, "mean"))
        if args.latents:
            codes = load_latent_folder(args.latents) if os.path.isdir(args.latents) else load_latents(args.latents)
        else:
            codes = sample_latents(g, args.sample_count, args.seed, args.truncation_psi)
        path, resume = distributed.on_main(_checkpoint_choice, checkpoint_path, args.out, args.if_exists)
        result = train_mapper(g, codes, loss, path, args.steps, options, resume=resume, overwrite=args.if_exists == "overwrite",
                              save_every=args.save_every, preview_every=max(1, args.report_every),
                              report=(lambda line: print(line, flush=True)) if rank == 0 else None)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"train-mapper: error{f' (rank {rank})' if size > 1 else ''}: {e}", file=sys.stderr)
        return 1
    if rank == 0:
        resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from is not None else ""
        last = "; last step: " + ", ".join(f"{k} {v:.4f}" for k, v in result.history[-1].items()) if result.history else ""
        print(f"wrote {path}: step {result.step}/{args.steps}{resumed}" + (f", {size} ranks" if size > 1 else "") + last, flush=True)
    distributed.finish()
    return 0


def _checkpoint_choice(checkpoint_path, out, if_exists):
    import os

    folder, name = os.path.split(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    return checkpoint_path(folder, name, if_exists)


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
