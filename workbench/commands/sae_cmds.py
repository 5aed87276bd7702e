"""`workbench train` (audio corpus -> SAE folder) and `workbench activations` (audio -> SAE features)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train an SAE on a codec's latents of an audio corpus")
    p.add_argument("audio", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("--codec", default="default", help="codec id (default: the embedded codec)")
    p.add_argument("--latent", default=None, help="latent kind: continuous or quantized[:KBPS] (EnCodec)")
    p.add_argument("--weights", default=None, help="codec weights (EnCodec): a folder or a state-dict file")
    p.add_argument("--arch", default="topk", choices=["topk", "batchtopk", "relu", "relu-rmsnorm"])
    p.add_argument("--d-sae", type=int, required=True, help="number of features")
    p.add_argument("--k", type=int, default=None, help="active features per frame (topk, batchtopk; default 16)")
    p.add_argument("--l1", type=float, default=None, help="L1 coefficient (relu: 1.0, relu-rmsnorm: 0.5)")
    p.add_argument("--steps", type=int, required=True, help="training steps (the total, also when resuming)")
    p.add_argument("--batch-size", type=int, default=4096, help="frames per step (default 4096)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--loudness-weight", type=float, default=1.0,
                   help="weight of the codec's loudness channel in the loss (default 1; the default SAE uses 10: "
                        "with 1 a sparse SAE drops loudness); needs a codec with one (default, EnCodec 48 kHz)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda[:N] or mps; under torchrun: cpu (gloo) or cuda (nccl, one GPU per process)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    p.add_argument("--state", default=None, help="checkpoint folder (default: SAE_DIR.training beside it)")
    p.add_argument("--cache-dir", default=None, help="activation cache (default: $WORKBENCH_CACHE_DIR or user cache)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of clips held out (default 0.1)")
    p.add_argument("-o", "--output", required=True, help="SAE folder to write")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("activations", help="audio -> SAE features [T, d_sae] float32 (.npy)")
    p.add_argument("audio")
    p.add_argument("--sae", required=True, help="SAE folder")
    p.add_argument("--codec", default=None, help="codec id (default: the one recorded in the SAE folder)")
    p.add_argument("--latent", default=None, help="latent kind (default: the one recorded in the SAE folder)")
    p.add_argument("--weights", default=None, help="codec weights (EnCodec)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--prenorm", action="store_true", help="relu-rmsnorm: the pre-norm code instead")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(handler=cmd_activations)


def _threads(n: int | None) -> None:
    if n is None:
        return
    if n < 1:
        raise UsageError(f"--threads must be at least 1, got {n}")
    import torch

    torch.set_num_threads(n)


def cmd_train(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from workbench.core.sae.io import check_output_folder

    out = Path(args.output)
    check_output_folder(out)  # before hours of training, not after
    if args.arch in ("topk", "batchtopk"):
        if args.l1 is not None:
            raise UsageError(f"--l1 applies to relu and relu-rmsnorm, not {args.arch} (use --k)")
        k = 16 if args.k is None else args.k
    else:
        if args.k is not None:
            raise UsageError(f"--k applies to topk and batchtopk, not {args.arch} (use --l1)")
        k = None
    from workbench.core.sae.distributed import init_from_env

    dist, device = init_from_env(args.device)  # one process unless launched by torchrun
    try:
        return _train(args, out, k, dist, device)
    finally:
        dist.shutdown()


def _train(args: argparse.Namespace, out: Path, k: int | None, dist: Any, device: str) -> int:
    from tqdm import tqdm

    from workbench.core.sae.pipeline import TrainJob, summary_line, train_sae
    from workbench.core.sae.trainer import TrainControl, resolve_device

    resolve_device(device)  # no GPU: say so now, not after encoding the corpus
    train = {"architecture": args.arch, "d_sae": args.d_sae, "k": k, "l1": args.l1, "steps": args.steps,
             "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "device": device,
             "loudness_weight": args.loudness_weight,
             "checkpoint_every": args.checkpoint_every, "log_every": max(1, min(50, args.steps // 100))}
    job = TrainJob(inputs=args.audio, output=out, codec_id=args.codec, latent=args.latent, weights=args.weights,
                   train=train, resume=args.resume, state_dir=Path(args.state) if args.state else None,
                   cache_dir=args.cache_dir, val_fraction=args.val_fraction)
    control = TrainControl()
    bar: Any = None

    def on_start(trainer: Any) -> None:
        nonlocal bar
        bar = tqdm(total=trainer.cfg.steps, initial=trainer.step, desc="training SAE", unit="step",
                   file=sys.stderr, leave=False, dynamic_ncols=True)

    def on_metrics(m: dict[str, Any]) -> None:
        if bar is not None:
            bar.update(m["step"] - bar.n)
            post = {"fvu": f"{m.get('fvu', float('nan')):.3f}", "L0": f"{m.get('l0', 0):.1f}",
                    "dead": f"{100 * m.get('dead_fraction', 0):.0f}%"}
            if "val_fvu" in m:
                post["val_fvu"] = f"{m['val_fvu']:.3f}"
            bar.set_postfix(post, refresh=False)

    def on_sigint(_sig: int, _frame: Any) -> None:
        # First Ctrl-C: stop after the current step, checkpoint and save; a second one aborts.
        control.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = None
    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread
        previous = None
    try:
        summary = train_sae(job, control=control, on_metrics=on_metrics, on_start=on_start,
                            log=lambda s: print(s, file=sys.stderr, flush=True), dist=dist)
    finally:
        if bar is not None:
            bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if not dist.is_main:  # rank 0 reports and writes; the others only trained
        return 130 if summary["stopped"] and control.stopped else 0
    print(summary_line(summary))
    if summary["stopped"]:
        print(f"stopped at step {summary['step']} of {summary['steps']}; continue with --resume "
              f"(checkpoint in {summary['state_dir']})", file=sys.stderr)
        return 130 if control.stopped else 0
    return 0


def cmd_activations(args: argparse.Namespace) -> int:
    from workbench.core.codecs import get_codec
    from workbench.core.fileio import disk_error
    from workbench.core.longaudio import encode_file, write_features_npy
    from workbench.core.sae.io import load_sae

    out = Path(args.output)
    if out.suffix.lower() != ".npy":
        raise UsageError(f"{out}: features are written as .npy")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: output folder does not exist")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder")
    _threads(args.threads)
    sae = load_sae(args.sae)
    info = sae.info
    codec_id = args.codec or (info.codec_id if info is not None else None)
    if not codec_id:
        raise UsageError(f"{args.sae}: the SAE folder names no codec; pass --codec")
    latent = args.latent
    if latent is None and info is not None and info.source == "workbench" and codec_id == info.codec_id:
        latent = info.latent_kind
    codec = get_codec(codec_id, latent=latent, weights=args.weights)
    if codec.latent_dim != sae.d_in:
        raise UsageError(
            f"{args.sae}: the SAE expects {sae.d_in}-dim latents but codec '{codec.id}' has {codec.latent_dim}; "
            "use the codec it was trained on"
        )
    # Long files: encoded in windows, features computed and written 4096 frames at a time (one hour
    # at 1024 features is 1 GB of features, never in memory at once).
    z, _ = encode_file(args.audio, codec)
    encode = sae.encode_prenorm_np if args.prenorm else sae.encode_np
    try:
        n, l0 = write_features_npy(out, z, encode, sae.d_sae)
    except OSError as exc:
        raise disk_error(exc, out) from None
    print(f"{out}: {n} frames x {sae.d_sae} features (mean L0 {l0:.1f}) at {codec.frame_rate:g} frames/s")
    return 0
