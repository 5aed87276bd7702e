"""`workbench train-codec`: reproduce (or continue) the embedded default codec's weights.

    workbench train-codec [AUDIO_DIR ...] [--synth N] [--minutes M] [--resume] [-o OUT] [--state DIR]

The synthetic corpus (N clips, rendered once into a cache folder) plus any extra audio folders feed
the trainer of `workbench.core.codecs.default_train`; checkpoints go to --state every few minutes and
the loadable weights to -o (default: resources/codecs/default). Then `workbench codec-report` measures
the result on held-out clips and writes report.md next to the weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError

# The shipped default codec's recipe (resources/codecs/default/report.md): what a plain
# `workbench train-codec` trains. Flags override each part.
RECIPE: dict[str, Any] = {"steps": 24_000, "latent_dim": 127, "energy_latent": True, "loss_floor": 3e-5, "w_band": 3.0}


def recipe_model(args: argparse.Namespace, resuming: bool) -> dict[str, Any]:
    """The model part of the run: the recipe's for a new run; when resuming a checkpoint, only what is
    asked for explicitly (an upgrade: the energy channel, a wider latent)."""
    latent = args.latent_dim if args.latent_dim is not None else (0 if resuming else RECIPE["latent_dim"])
    energy = args.energy_latent if args.energy_latent is not None else (not resuming and RECIPE["energy_latent"])
    if (latent or not resuming) and not 1 <= latent <= 127:
        raise UsageError(f"--latent-dim must be between 1 and 127 (the energy channel makes 128), got {latent}")
    return {"channels": 192, "enc_blocks": 3, "dec_blocks": 5, "latent_dim": latent, "head_hidden": args.head_hidden,
            "energy_latent": bool(energy), "encoder": args.encoder}


def register(sub: Any) -> None:
    p = sub.add_parser("train-codec", help="train the embedded default codec (checkpointed, resumable)")
    p.add_argument("audio", nargs="*", help="extra audio files/folders")
    p.add_argument("--synth", type=int, default=3000, help="synthetic clips to render (0 = none)")
    p.add_argument("--synth-dir", default="runs/synth-codec", help="cache folder of the synthetic corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="planned total steps (LR schedule; default 24000, the shipped run's)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this long (resume later)")
    p.add_argument("--until-step", type=int, default=None,
                   help="stop at this step (the LR schedule still spans --steps): reproduces a stopped run")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--energy-latent", action=argparse.BooleanOptionalAction, default=None,
                   help="the measured log-energy as a latent channel (new runs: on unless --no-energy-latent; "
                        "with --resume, --energy-latent upgrades a checkpoint without it)")
    p.add_argument("--latent-dim", type=int, default=None,
                   help="learned latent channels, the energy channel on top (new runs: default 127); with "
                        "--resume, a larger value widens a conv checkpoint's latent (new channels start unused)")
    p.add_argument("--encoder", choices=("conv", "filterbank"), default="filterbank",
                   help="conv: ConvNeXt blocks -> linear latent; filterbank: each latent channel the log of a "
                        "learned band (mel-spaced init), trained with the decoder (new runs only)")
    p.add_argument("--head-hidden", type=int, default=1024, help="decoder MLP head width (0 = linear head)")
    p.add_argument("--output-eq", type=float, default=0.0, metavar="S",
                   help="fold S x a per-bin output gain fitted on training clips into the shipped weights "
                        "(0..1; brighter output, less pitch accuracy; default 0)")
    p.add_argument("--decoder-only", action="store_true",
                   help="train only the decoder (latents unchanged: SAEs trained on them stay valid)")
    p.add_argument("--loss-floor", type=float, default=None,
                   help=f"magnitude floor of the log-spectral loss (default {RECIPE['loss_floor']:g}; lower = quiet bins count)")
    p.add_argument("--band-loss", type=float, default=None, metavar="W",
                   help=f"weight of the band-energy loss (keeps high partials' power: brighter output; default {RECIPE['w_band']:g})")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-o", "--output", default=None,
                   help="weights folder (default: resources/codecs/default); the decode settings already in its "
                        "config.json (peak_floor_db, phase_lookahead, phase_iters) are kept")
    p.add_argument("--state", default="training/default_codec", help="checkpoint folder")
    p.set_defaults(handler=cmd_train_codec)

    p = sub.add_parser("codec-report", help="measure the default codec on held-out clips, write report.md")
    p.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    p.add_argument("--n", type=int, default=40, help="held-out clips per kind")
    p.add_argument("--seed", type=int, default=900_000)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(handler=cmd_codec_report)


def cmd_train_codec(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from workbench.core.codecs.default_train import AudioPool, TrainConfig, load_audio_dirs, train
    from workbench.core.resources import default_codec_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    tc = TrainConfig(seed=args.seed, steps=RECIPE["steps"], loss_floor=RECIPE["loss_floor"], w_band=RECIPE["w_band"])
    tc.model = recipe_model(args, resuming=args.resume and (Path(args.state) / "training.json").is_file())
    if args.steps:
        tc.steps = args.steps
    if args.batch_size:
        tc.batch_size = args.batch_size
    if not 0.0 <= args.output_eq <= 1.0:
        raise UsageError(f"--output-eq must be between 0 and 1, got {args.output_eq}")
    tc.output_eq = args.output_eq
    tc.decoder_only = args.decoder_only
    if args.band_loss is not None:
        if args.band_loss < 0:
            raise UsageError(f"--band-loss must be >= 0, got {args.band_loss}")
        tc.w_band = args.band_loss
    if args.loss_floor is not None:
        if not 0.0 < args.loss_floor < 1.0:
            raise UsageError(f"--loss-floor must be between 0 and 1, got {args.loss_floor}")
        tc.loss_floor = args.loss_floor
    dirs: list[str] = list(args.audio)
    if args.synth > 0:
        from workbench.core.data.synth import generate_corpus

        synth_dir = Path(args.synth_dir)
        if not (synth_dir / "labels.jsonl").is_file():
            print(f"rendering {args.synth} synthetic clips into {synth_dir} ...", file=sys.stderr)
            generate_corpus(synth_dir, n=args.synth, seed=args.seed, workers=2)
        dirs.append(str(synth_dir / "audio"))
    clips = load_audio_dirs(dirs, 24000)
    pool = AudioPool(clips, 24000)
    print(f"training audio: {len(clips)} clips, {pool.seconds / 60:.1f} min", file=sys.stderr)
    val = AudioPool(clips[-64:], 24000).batch(np.random.default_rng(12345), 32, 24000, (-12.0, -12.0))
    out = Path(args.output) if args.output else default_codec_dir()
    result = train(
        pool, out, Path(args.state), tc, minutes=args.minutes, resume=args.resume,
        ckpt_minutes=args.ckpt_minutes, log=lambda s: print(s, file=sys.stderr, flush=True), val=val,
        until_step=args.until_step,
    )
    print(f"stopped at step {result['step']}; weights in {out}")
    return 0


def cmd_codec_report(args: argparse.Namespace) -> int:
    import torch

    from workbench.core.codecs.default_eval import write_report

    torch.set_num_threads(args.threads)
    path = write_report(args.weights, n_per_kind=args.n, seed=args.seed)
    print(path)
    return 0
