"""`workbench label` (automatic feature labels → labels.json in the SAE folder) and `workbench report`
(static HTML feature report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "label",
        help="label every SAE feature with the concept it detects best (held-out AUROC); writes labels.json "
             "into the SAE folder",
        description="Concepts per frame: pitch class, register, loudness, brightness, silence, pitched, onsets, "
                    "drums, sustained, polyphony, chord root and quality, instrument family (exact labels of a "
                    "synthetic corpus where present, descriptors otherwise). Each feature's best concept is chosen "
                    "on train clips and scored (AUROC) on held-out clips; below 0.75 it is 'unexplained'. A random "
                    "encoder of the same size is scored the same way as a control.",
    )
    _common(p)
    p.add_argument("--test-fraction", type=float, default=0.3, help="share of clips held out (default 0.3)")
    p.add_argument("--min-positives", type=int, default=20,
                   help="frames a concept needs on each side of the split to be scored (default 20)")
    p.add_argument("--crepe", default="tiny", choices=["tiny", "full"], help="CREPE model (default tiny)")
    p.add_argument("--no-cache", action="store_true", help="recompute descriptors (no descriptor cache)")
    p.add_argument("--no-control", action="store_true", help="skip the random-encoder control")
    p.add_argument("--select", default="correlation", choices=["correlation", "auroc"],
                   help="how each feature's best concept is chosen on the train clips (default correlation; "
                        "the score is always the held-out AUROC)")
    p.set_defaults(handler=cmd_label)

    p = sub.add_parser(
        "report",
        help="write a static HTML feature report (index, one page per feature, audio snippets, labels, probes)",
        description="Opens from disk in a browser. Without AUDIO, the clips named in the SAE folder's labels.json "
                    "(or its training provenance) are used; a synthetic corpus that is not on this machine is "
                    "rendered again from the recipe labels.json records (into the user cache). Labels and probes "
                    "come from labels.json / probes.json in the SAE folder when present.",
    )
    p.add_argument("audio", nargs="*", help="audio files and/or folders (default: the clips labels.json names)")
    p.add_argument("--sae", required=True, help="SAE folder")
    p.add_argument("--codec", default=None, help="codec id (default: the one recorded in the SAE folder)")
    p.add_argument("--latent", default=None, help="latent kind (default: the SAE's)")
    p.add_argument("--weights", default=None, help="codec weights (EnCodec)")
    p.add_argument("--max-clips", type=int, default=None, help="use at most N clips (a seeded random choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--max-features", type=int, default=256,
                   help="features that get a page (labelled ones first, then the most active; default 256)")
    p.add_argument("--top-k", type=int, default=6, help="top activating moments per feature (default 6)")
    p.add_argument("--title", default=None)
    p.add_argument("--audio-format", default="wav", choices=["wav", "flac"],
                   help="snippet files (default wav; flac is about half the size)")
    p.add_argument("-o", "--output", default=None, help="report folder (default: ./<SAE name>-report)")
    p.set_defaults(handler=cmd_report)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", nargs="+", help="audio files and/or folders (a synthetic corpus folder is recognised)")
    p.add_argument("--sae", required=True, help="SAE folder (labels.json is written into it)")
    p.add_argument("--codec", default=None, help="codec id (default: the one recorded in the SAE folder)")
    p.add_argument("--latent", default=None, help="latent kind (default: the SAE's)")
    p.add_argument("--weights", default=None, help="codec weights (EnCodec)")
    p.add_argument("--max-clips", type=int, default=None, help="use at most N clips (a seeded random choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")


def _threads(n: int | None) -> None:
    if n is None:
        return
    if n < 1:
        raise UsageError(f"--threads must be at least 1, got {n}")
    import torch

    torch.set_num_threads(n)


def open_sae_and_codec(sae_path: str, codec_id: str | None, latent: str | None, weights: str | None) -> tuple[Any, Any]:
    """The SAE and the codec it reads (the one recorded in its folder unless given)."""
    from workbench.core.codecs import get_codec
    from workbench.core.sae.io import load_sae

    sae = load_sae(sae_path)
    info = sae.info
    cid = codec_id or (info.codec_id if info is not None else None)
    if not cid:
        raise UsageError(f"{sae_path}: the SAE folder names no codec; pass --codec")
    if latent is None and info is not None and info.source == "workbench" and cid == info.codec_id:
        latent = info.latent_kind
    codec = get_codec(cid, latent=latent, weights=weights)
    if codec.latent_dim != sae.d_in:
        raise UsageError(f"{sae_path}: the SAE expects {sae.d_in}-dim latents but codec '{codec.id}' has "
                         f"{codec.latent_dim}; use the codec it was trained on")
    return sae, codec


def pick_clips(inputs: list[str], sample_rate: int, max_clips: int | None, seed: int) -> Any:
    from workbench.core.analysis.corpus import ClipList, load_clips
    from workbench.core.analysis.explore import choose_indices

    if max_clips is not None and max_clips < 2:
        raise UsageError("--max-clips must be at least 2")
    clips = load_clips(inputs, sample_rate)
    if max_clips is not None:
        clips = ClipList([clips.entries[i] for i in choose_indices(len(clips), max_clips, seed)], clips.sample_rate)
    return clips


def _collect(codec: Any, sae: Any, clips: Any, what: str, **kw: Any) -> Any:
    from tqdm import tqdm

    from workbench.core.analysis.corpus import collect_frames

    bar = tqdm(total=len(clips), desc=what, unit="clip", file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        return collect_frames(codec, sae, clips, progress=lambda i, n, name: bar.update(1), **kw)
    finally:
        bar.close()


def cmd_label(args: argparse.Namespace) -> int:
    from workbench.core.analysis.labels import format_summary, label_features, save_labels
    from workbench.core.data.synth import corpus_recipes

    if not (0.0 < args.test_fraction < 1.0):
        raise UsageError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
    if args.min_positives < 1:
        raise UsageError(f"--min-positives must be at least 1, got {args.min_positives}")
    _threads(args.threads)
    sae, codec = open_sae_and_codec(args.sae, args.codec, args.latent, args.weights)
    folder = Path(sae.info.folder) if sae.info is not None else Path(args.sae)
    clips = pick_clips(args.audio, codec.sample_rate, args.max_clips, args.seed)
    if len(clips) < 2:
        raise UsageError("labels need at least two clips (some are held out for scoring)")
    frames = _collect(codec, sae, clips, "describing clips", crepe_model=args.crepe, cache=not args.no_cache)
    res = label_features(frames, test_fraction=args.test_fraction, seed=args.seed, min_positives=args.min_positives,
                         control=not args.no_control, select=args.select)
    path = save_labels(res, folder, extra={"codec": codec.id, "inputs": [str(a) for a in args.audio],
                                           "synth_recipes": corpus_recipes(args.audio),
                                           "max_clips": args.max_clips, "clip_paths": frames.clip_paths})
    c = res.meta["corpus"]
    print(f"labels from {c['frames']} frames of {c['clips']} clips ({c['train_clips']} train / {c['test_clips']} "
          f"held-out clips), {int(res.eligible.sum())} concepts scored")
    print(format_summary(res.summary))
    print(f"wrote {path}")
    return 0


def _recorded_inputs(folder: Path, labels: dict[str, Any] | None) -> list[str]:
    if labels and isinstance(labels.get("inputs"), list) and labels["inputs"]:
        return [str(x) for x in labels["inputs"]]
    import json

    try:
        wb = json.loads((folder / "workbench.json").read_text(encoding="utf-8"))
        ins = (wb.get("provenance") or {}).get("inputs")
        if isinstance(ins, list) and ins:
            return [str(x) for x in ins]
    except (OSError, ValueError, AttributeError):
        pass
    return []


def cmd_report(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from workbench.core.analysis.explore import recorded_recipes, render_examples
    from workbench.core.analysis.labels import read_labels_doc
    from workbench.core.analysis.report import write_report
    from workbench.core.analysis.stats import ClipAudio, stats_from_frames

    if args.max_features < 0:
        raise UsageError(f"--max-features must be >= 0, got {args.max_features}")
    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0, got {args.top_k}")
    _threads(args.threads)
    sae, codec = open_sae_and_codec(args.sae, args.codec, args.latent, args.weights)
    folder = Path(sae.info.folder) if sae.info is not None else Path(args.sae)
    labels = read_labels_doc(folder)
    inputs = list(args.audio) or _recorded_inputs(folder, labels)
    if not inputs:
        raise UsageError("no audio given and none recorded in the SAE folder; pass audio files or folders")
    out = Path(args.output) if args.output else Path.cwd() / f"{folder.name}-report"
    if out.resolve() == folder.resolve():
        raise UsageError(f"{out}: the report cannot replace the SAE folder; choose another -o")
    missing = [i for i in inputs if not Path(i).exists()]
    max_clips = args.max_clips
    if missing and not args.audio:
        recipes = recorded_recipes(folder)
        if not recipes:
            raise UsageError(f"the recorded clips are gone ({missing[0]}…); pass audio files or folders")
        # A synthetic corpus that is not on this machine (e.g. the embedded SAE's): render the clips the
        # report would take again from its recipe, into the user cache (kept for the next run and the app).
        if max_clips is not None and max_clips < 2:
            raise UsageError("--max-clips must be at least 2")
        print(f"{missing[0]} is not here; rendering its clips again from the corpus recipe in the SAE folder",
              file=sys.stderr)
        from tqdm import tqdm

        bar = tqdm(desc="rendering clips", unit="clip", file=sys.stderr, leave=False, dynamic_ncols=True)

        def step(i: int, n: int) -> None:
            bar.total, bar.n = n, i
            bar.refresh()

        try:
            inputs = render_examples(recipes[0], max_clips=max_clips or 10**9, seed=args.seed, progress=step)
        finally:
            bar.close()
        max_clips = None  # already chosen, as pick_clips would have
    probes = None
    pj = folder / "probes.json"
    if pj.is_file():
        try:
            probes = json.loads(pj.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            print(f"warning: {pj} is unreadable; the report has no probe tables", file=sys.stderr)
    clips = pick_clips(inputs, codec.sample_rate, max_clips, args.seed)
    frames = _collect(codec, sae, clips, "encoding clips", with_descriptors=False)
    stats = stats_from_frames(frames, top_k=args.top_k)
    info = sae.info
    strength = None
    if info is not None and info.max_activation is not None:
        strength = np.where(np.asarray(info.max_activation) > 0, info.max_activation,
                            [s.max_activation for s in stats]).astype(np.float32)
    sae_facts = {"SAE": str(folder), "architecture": getattr(sae, "architecture", "?"), "d_in": sae.d_in,
                 "d_sae": sae.d_sae, "k": getattr(sae, "k", None), "codec": codec.id}
    secs = len(frames) / float(frames.frame_rate)
    corpus_facts = {"clips": frames.num_clips, "frames": len(frames), "audio": f"{secs / 60:.1f} min",
                    "live features (fire on these clips)": int(sum(s.live for s in stats))}
    from tqdm import tqdm

    bar = tqdm(total=1, desc="writing pages", unit="page", file=sys.stderr, leave=False, dynamic_ncols=True)

    def prog(i: int, n: int, what: str) -> None:
        bar.total = n
        bar.n = i
        bar.refresh()

    try:
        write_report(out, stats=stats, clip_names=frames.clip_paths, sample_rate=codec.sample_rate,
                     frame_rate=frames.frame_rate, audio_of=ClipAudio(frames.clip_paths, codec.sample_rate),
                     codec=codec, latents=frames.latents, w_dec=sae.W_dec_np, strength=strength, labels=labels,
                     probes=probes, sae_facts=sae_facts, corpus_facts=corpus_facts, max_features=args.max_features,
                     title=args.title or f"SAE feature report: {folder.name}", audio_format=args.audio_format,
                     progress=prog)
    finally:
        bar.close()
    print(f"wrote {out / 'index.html'} ({min(args.max_features, corpus_facts['live features (fire on these clips)'])} "
          f"feature pages)")
    return 0
