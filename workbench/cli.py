"""Command line (contract in DESIGN.md): exit 0 on success; exit 2 with one ``error: ...`` line for bad input.

Each subcommand lives in a module under `workbench.commands` exposing ``register(subparsers)``; the
handler gets the parsed args and returns an exit code. Heavy imports happen inside handlers so
``workbench --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workbench import __version__
from workbench.core.errors import WorkbenchError

COMMAND_MODULES = [
    "workbench.commands.gui",
    "workbench.commands.codec_cmds",
    "workbench.commands.data_cmds",
    "workbench.commands.codec_train",
]


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage + exiting, so errors stay one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise WorkbenchError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description="SAE Audio Workbench")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        commands = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()  # type: ignore[union-attr]
        if not args_list or (args_list[0] not in commands and args_list[0] not in ("-h", "--help", "--version")):
            args_list.insert(0, "gui")
        args = parser.parse_args(args_list)
        result = args.handler(args)
        return int(result or 0)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
