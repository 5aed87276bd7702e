"""`workbench data synth`: render a labeled synthetic music corpus (see workbench.core.data.synth)."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.core.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="datasets: labeled synthetic music")
    data_sub = p.add_subparsers(dest="data_command", parser_class=type(p), metavar="{synth}")
    p.set_defaults(handler=_missing_subcommand)

    s = data_sub.add_parser(
        "synth",
        help="render labeled synthetic music (notes, chords, scales, melodies, drums, textures, pieces)",
        description="Render MIDI material through a General MIDI SoundFont: DIR/audio/*.flac, "
        "DIR/labels.jsonl (exact notes, chords, keys), DIR/corpus.json.",
    )
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if needed)")
    s.add_argument("--n", type=int, default=100, help="number of clips (default 100)")
    s.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    s.add_argument(
        "--kinds",
        default=None,
        help="comma-separated kinds: note,chord,scale,arpeggio,melody,drums,texture,piece (default: all, mixed)",
    )
    s.add_argument("--sample-rate", type=int, default=24000, help="Hz (default 24000)")
    s.add_argument("--soundfont", default=None, metavar="PATH", help="a .sf2 file (default: TimGM6mb)")
    s.add_argument("--workers", type=int, default=1, help="render in N processes (default 1)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(handler=cmd_synth)


def _missing_subcommand(args: argparse.Namespace) -> int:
    raise UsageError("workbench data: choose a subcommand: synth")


def cmd_synth(args: argparse.Namespace) -> int:
    from workbench.core.data.synth import generate_corpus

    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    kinds = None
    if args.kinds is not None:
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        if not kinds:
            raise UsageError("--kinds is empty")
    out = generate_corpus(
        args.output,
        n=args.n,
        seed=args.seed,
        kinds=kinds,
        sample_rate=args.sample_rate,
        soundfont=args.soundfont,
        progress=not args.no_progress,
        workers=args.workers,
    )
    import json

    info = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(info["counts"].items()))
    minutes = info["total_seconds"] / 60
    print(f"{out}: {info['n']} clips, {minutes:.1f} min at {info['sample_rate']} Hz ({counts})")
    return 0
