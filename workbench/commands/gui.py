"""`workbench [gui] [AUDIO] [--codec ID] [--sae DIR]`: the desktop app."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("gui", help="open the desktop app (default command)")
    p.add_argument("audio", nargs="?", help="audio file to open")
    p.add_argument("--codec", default=None, help="codec id (default: the embedded codec)")
    p.add_argument("--sae", default=None, help="SAE folder (default: the embedded SAE)")
    p.add_argument("--smoke-test", action="store_true", help="open the window offscreen, check it, exit")
    p.set_defaults(handler=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from workbench.app.main import run_app

    return run_app(audio=args.audio, codec=args.codec, sae=args.sae, smoke_test=args.smoke_test)
