"""Command line (contract in DESIGN.md): exit 0 on success; exit 2 with one ``error: ...`` line for bad input.

Each subcommand lives in a module under `workbench.commands` exposing ``register(subparsers)``; the
handler gets the parsed args and returns an exit code. Heavy imports happen inside handlers so
``workbench --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence

from workbench import __version__
from workbench.core.errors import WorkbenchError

COMMAND_MODULES = [
    "workbench.commands.gui",
    "workbench.commands.codec_cmds",
    "workbench.commands.data_cmds",
    "workbench.commands.codec_train",
    "workbench.commands.sae_cmds",
    "workbench.commands.steer_cmds",
    "workbench.commands.analysis_cmds",
    "workbench.commands.report_cmds",
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


@contextlib.contextmanager
def _python_only_stderr() -> Iterator[None]:
    """Keep C libraries' chatter off stderr while a command runs, so stderr carries only our lines.

    libsndfile's MP3 decoder (libmpg123) writes notes such as "Illegal Audio-MPEG-Header" straight to
    file descriptor 2 whenever it probes a damaged or non-audio file, which would break the one-line
    error contract. Python's own stderr (errors, progress bars, warnings) moves to a duplicate of the
    real descriptor and descriptor 2 points at /dev/null until the command ends. Only done when
    sys.stderr is the process's real fd 2 (not under a test's capture); WORKBENCH_NATIVE_STDERR=1 turns
    it off for debugging native code.
    """
    old = sys.stderr
    active = False
    if not os.environ.get("WORKBENCH_NATIVE_STDERR") and old is sys.__stderr__ and old is not None:
        try:
            active = old.fileno() == 2
        except (AttributeError, OSError, ValueError):
            active = False
    if not active or old is None:
        yield
        return
    old.flush()
    saved = os.dup(2)
    python_stderr = os.fdopen(saved, "w", buffering=1, encoding=old.encoding, errors=old.errors)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = python_stderr
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            python_stderr.flush()
        os.dup2(saved, 2)
        sys.stderr = old
        with contextlib.suppress(Exception):
            python_stderr.close()


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        commands = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()  # type: ignore[union-attr,arg-type]
        top_level = ("-h", "--help", "--version")
        if not args_list or (args_list[0] not in commands and args_list[0] not in top_level):
            args_list.insert(0, "gui")
        args = parser.parse_args(args_list)
        if args.command == "gui":  # Qt's own warnings stay visible for the app
            result = args.handler(args)
        else:
            with _python_only_stderr():
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
    except OSError as exc:
        # Disk full, quota, read-only or permission problems while writing are the environment's, not
        # bugs: one line like any bad input (anything else still shows its traceback).
        from workbench.core.fileio import DISK_ERRNOS, disk_error

        if exc.errno not in DISK_ERRNOS:
            raise
        print(f"error: {disk_error(exc, exc.filename or 'a file')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
