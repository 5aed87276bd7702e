"""The bad-input corpus (tests/bad_inputs.py) through the CLI entry point `workbench.cli.main`: each
case gives its documented outcome (docs/bad-inputs.md), and no pickle is ever unpickled. The same
table runs through the app in tests/app/test_bad_inputs_app.py."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.cli import main

REPO = Path(__file__).resolve().parents[1]


def _corpus() -> Any:
    spec = importlib.util.spec_from_file_location("_bad_inputs", REPO / "tests" / "bad_inputs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_bad_inputs"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


corpus = _corpus()
Cap = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    e = corpus.make_env(tmp_path_factory.mktemp("bad_inputs_env"))
    res = e.root / "resources"
    shutil.copytree(e.codec_dir, res / "codecs" / "default")
    return e


@pytest.fixture(autouse=True)
def resources(env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_RESOURCES", str(env.root / "resources"))
    for kind in ("CONFIG", "CACHE", "LOG"):
        monkeypatch.setenv(f"WORKBENCH_{kind}_DIR", str(tmp_path / kind.lower()))


def commands(case: Any, path: Path, env: Any, out: Path) -> list[tuple[list[Any], Path]]:
    if case.kind == "audio":
        cmds = [(["encode", path, "-o", out / "z.npy"], out / "z.npy")]
        if case.outcome == "ok":
            cmds.append((["steer", path, "--sae", env.good_sae, "--edit", "1:scale=0", "--edit", "2:add=0.5@0-0.2",
                          "-o", out / "y.wav"], out / "y.wav"))
        return cmds
    if case.kind == "sae":
        return [(["activations", env.good_wav, "--sae", path, "-o", out / "f.npy"], out / "f.npy")]
    return [(["encode", env.good_wav, "--weights", path, "-o", out / "z.npy"], out / "z.npy")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", corpus.CASES, ids=[c.id for c in corpus.CASES])
def test_cli_outcome(case: Any, env: Any, tmp_path: Path, capsys: Cap) -> None:
    if corpus.skip_reason(case):
        pytest.skip(corpus.skip_reason(case))
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    path = case.build(src, env)
    for argv, target in commands(case, path, env, out):
        rc = main([str(a) for a in argv])
        stdout, err = capsys.readouterr()
        if case.outcome == "ok":
            assert rc == 0, f"{case.id}: {argv[0]}: {err}"
            assert "error:" not in err and target.is_file()
            if target.suffix == ".npy":
                arr = np.load(target)
                assert arr.ndim == 2 and np.isfinite(arr).all() and len(arr) >= 1
            else:
                import soundfile as sf

                y, sr = sf.read(str(target), always_2d=True)
                assert sr == 24000 and len(y) >= 1 and np.isfinite(y).all() and np.abs(y).max() <= 1.0
        else:
            assert rc == 2, f"{case.id}: exit {rc}: {err}"
            assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, repr(err)
            assert re.search(case.match, err), f"{case.id}: {err!r} does not match {case.match!r}"
            assert stdout == "" and list(out.iterdir()) == [], "nothing may be written on an error"
    assert not env.marker.exists(), "a pickle was unpickled"


def test_docs_table_is_current() -> None:
    doc = (REPO / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    assert corpus.markdown_table() in doc, "regenerate the table: python tests/bad_inputs.py"
    assert len(corpus.CASES) >= 30
