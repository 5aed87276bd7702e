"""docs/cli.md is generated from the argparse parser (scripts/gen_cli_reference.py) and must match it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_gen_cli_reference", REPO / "scripts" / "gen_cli_reference.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_cli_reference_is_up_to_date() -> None:
    text = _generator().render()
    current = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == text, (
        "docs/cli.md is out of date with the CLI parser: rerun "
        "`.venv/bin/python scripts/gen_cli_reference.py` and commit docs/cli.md"
    )


def test_reference_covers_every_command_and_option() -> None:
    import argparse

    from workbench.cli import build_parser

    gen = _generator()
    text = gen.render()
    parser = build_parser()
    names = [name for name, _, _ in gen._subcommands(parser)]
    assert "train" in names and "steer" in names and "data synth" in names
    for name, _, sub in gen._subcommands(parser):
        assert f"## workbench {name}\n" in text
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for opt in action.option_strings:
                assert f"`{opt}`" in text, f"workbench {name} {opt} missing from the reference"
