"""`workbench probe`: acoustic probes of an SAE's features, written into its folder (DESIGN.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        help="train pitch/loudness/timbre probes on SAE features (vs raw latents and a random SAE); "
             "writes probes.safetensors + probes.json into the SAE folder",
        description="Per-frame pitch (CREPE, 66 semitones + unvoiced), loudness (RMS, 20 bins) and timbre "
                    "(spectral centroid, 20 bins) classes; one softmax probe per property, trained and "
                    "scored on disjoint clips. Folders are searched recursively; a synthetic corpus "
                    "(labels.jsonl) is recognised, and its single notes, melodies and scales are also scored "
                    "on their own (\"monophonic\": CREPE's pitch of a chord is one of its voices). The probes "
                    "enable --edit probe:PROPERTY=TARGET[:ALPHA] in `workbench steer`.",
    )
    p.add_argument("audio", nargs="+", help="audio files and/or folders")
    p.add_argument("--sae", required=True, help="SAE folder (probes are written into it)")
    p.add_argument("--codec", default=None, help="codec id (default: the one recorded in the SAE folder)")
    p.add_argument("--latent", default=None, help="latent kind (default: the SAE's)")
    p.add_argument("--weights", default=None, help="codec weights (EnCodec)")
    p.add_argument("--max-clips", type=int, default=None, help="use at most N clips (a seeded random choice)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of clips held out (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=1e-4, help="L2 on the probe weights (default 1e-4)")
    p.add_argument("--crepe", default="tiny", choices=["tiny", "full"], help="CREPE model (default tiny)")
    p.add_argument("--no-baselines", action="store_true", help="skip the raw-latent and random-SAE probes")
    p.add_argument("--no-cache", action="store_true", help="recompute descriptors (no descriptor cache)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.set_defaults(handler=cmd_probe)


def cmd_probe(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from workbench.core.analysis.corpus import ClipList, collect_frames, load_clips
    from workbench.core.analysis.probes import fit_probes, format_table, kind_subsets, save_probes
    from workbench.core.codecs import get_codec
    from workbench.core.data.synth import corpus_recipes
    from workbench.core.sae.io import load_sae

    if not (0.0 < args.test_fraction < 1.0):
        raise UsageError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
    if args.max_clips is not None and args.max_clips < 2:
        raise UsageError("--max-clips must be at least 2 (clips are split into train and test)")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    sae = load_sae(args.sae)
    folder = Path(sae.info.folder) if sae.info is not None else Path(args.sae)
    info = sae.info
    codec_id = args.codec or (info.codec_id if info is not None else None)
    if not codec_id:
        raise UsageError(f"{args.sae}: the SAE folder names no codec; pass --codec")
    latent = args.latent
    if latent is None and info is not None and info.source == "workbench" and codec_id == info.codec_id:
        latent = info.latent_kind
    codec = get_codec(codec_id, latent=latent, weights=args.weights)
    if codec.latent_dim != sae.d_in:
        raise UsageError(f"{args.sae}: the SAE expects {sae.d_in}-dim latents but codec '{codec.id}' has "
                         f"{codec.latent_dim}; use the codec it was trained on")
    clips = load_clips(args.audio, codec.sample_rate)
    if args.max_clips is not None and len(clips) > args.max_clips:
        idx = np.sort(np.random.default_rng(args.seed).choice(len(clips), args.max_clips, replace=False))
        clips = ClipList([clips.entries[i] for i in idx], clips.sample_rate)
    if len(clips) < 2:
        raise UsageError("probes need at least two clips (some are held out for testing)")

    bar = tqdm(total=len(clips), desc="describing clips", unit="clip", file=sys.stderr, leave=False,
               dynamic_ncols=True)
    try:
        frames = collect_frames(codec, sae, clips, progress=lambda i, n, name: bar.update(1),
                                crepe_model=args.crepe, cache=not args.no_cache)
    finally:
        bar.close()
    n_fits = 3 * (1 if args.no_baselines else 3)
    bar = tqdm(total=n_fits, desc="training probes", unit="probe", file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        ps = fit_probes(frames, sae, test_fraction=args.test_fraction, seed=args.seed,
                        weight_decay=args.weight_decay, baselines=not args.no_baselines,
                        subsets=kind_subsets(frames, clips), step=lambda name: bar.update(1))
    finally:
        bar.close()
    save_probes(ps, folder, extra={"codec": codec.id, "inputs": [str(a) for a in args.audio],
                                   "synth_recipes": corpus_recipes(args.audio)})
    c = ps.meta["corpus"]
    print(f"probes on {c['frames']} frames of {c['clips']} clips ({c['train_clips']} train / "
          f"{c['test_clips']} held-out clips); accuracy / balanced accuracy / macro-F1 on held-out clips:")
    print(format_table(ps))
    print(f"wrote {folder / 'probes.safetensors'} and {folder / 'probes.json'}")
    return 0
