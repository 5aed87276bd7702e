"""The bad-input corpus (tests/bad_inputs.py) through the app's open-file path, and output-device
failures mid-play, in one window each: every error is exactly one one-line dialog, the window keeps
what it had open (clip, SAE, codec, edits), and nothing is unpickled."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.app.main_window import KEEP, LoadRequest, MainWindow
from workbench.core.steering import Edit

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, rel: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / rel)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


corpus = _load("_bad_inputs", "tests/bad_inputs.py")
faults = _load("_playback_faults", "tests/core/test_playback_faults.py")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return corpus.make_env(tmp_path_factory.mktemp("bad_inputs_env"))


def critical(dialogs: list[tuple[str, str]]) -> list[str]:
    return [t for k, t in dialogs if k == "critical"]


@pytest.mark.timeout(600)
def test_every_case_gives_its_documented_outcome_in_the_app(
        window: MainWindow, qtbot: Any, env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        captured_dialogs: list[tuple[str, str]]) -> None:
    win = window
    win.add_slider(1)
    win.set_edit(Edit(1, "scale", 0.5))
    finished: list[bool] = []
    win.loadFinished.connect(finished.append)
    problems: list[str] = []
    for i, case in enumerate(corpus.CASES):
        if corpus.skip_reason(case):
            continue
        src = tmp_path / f"case{i}"
        src.mkdir()
        path = case.build(src, env)
        before = (win.ws.analysis, win.ws.sae, win.ws.codec, win.ws.edits)
        n_dialogs = len(critical(captured_dialogs))
        finished.clear()
        if case.kind == "codec":
            # The embedded codec's folder is the malformed one when the codec is (re)loaded.
            res = tmp_path / f"res{i}"
            (res / "codecs").mkdir(parents=True)
            shutil.copytree(path, res / "codecs" / "default")
            monkeypatch.setenv("WORKBENCH_RESOURCES", str(res))
            win.request_load(LoadRequest("default", KEEP, KEEP))
        else:
            win.open_path(str(path))
        qtbot.waitUntil(lambda n=n_dialogs: bool(finished) or len(critical(captured_dialogs)) > n, timeout=60_000)
        qtbot.waitUntil(lambda: not win.loading and not win.steerer.busy, timeout=60_000)
        new = critical(captured_dialogs)[n_dialogs:]
        if case.outcome == "ok":
            if new or finished != [True]:
                problems.append(f"{case.id}: expected to open, got dialogs {new} / finished {finished}")
        else:
            if len(new) != 1 or "\n" in new[0] or not re.search(case.match, new[0]):
                problems.append(f"{case.id}: expected one dialog matching {case.match!r}, got {new}")
            if (win.ws.analysis, win.ws.sae, win.ws.codec, win.ws.edits) != before:
                problems.append(f"{case.id}: the window lost what it had open")
            if finished not in ([], [False]):
                problems.append(f"{case.id}: load reported {finished}")
        if env.marker.exists():
            problems.append(f"{case.id}: a pickle was unpickled")
    assert not problems, "\n".join(problems)
    assert win.ws.analysis is not None and win.populated_views()["waveform"]


@pytest.fixture()
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> Any:
    from workbench.core import playback

    sd = faults.FakeSoundDevice()
    monkeypatch.setattr(playback, "_sounddevice", lambda: sd)
    return sd


@pytest.fixture()
def device_window(qtbot: Any, fake_sd: Any, captured_dialogs: list[tuple[str, str]]) -> Iterator[MainWindow]:
    from workbench.core.settings import load_settings

    win = MainWindow(load_settings(), use_audio_device=True)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.loadFinished, timeout=30_000):
        win.start()
    qtbot.waitUntil(lambda: win.ws.steered is not None and not win.steerer.busy, timeout=10_000)
    yield win
    win.close()


@pytest.mark.parametrize("mode", ["vanish", "stall"])
def test_output_device_lost_mid_play_gives_one_dialog_and_the_session_survives(
        device_window: MainWindow, qtbot: Any, fake_sd: Any, tmp_path: Path, mode: str,
        captured_dialogs: list[tuple[str, str]]) -> None:
    from workbench.core.session import load_session

    win = device_window
    assert win.engine is not None and win.engine.has_device and win.transport.play.isEnabled()
    win.engine.stall_seconds = 0.5
    win.add_slider(2)
    win.set_edit(Edit(2, "add", 0.5))
    edits, analysis = win.ws.edits, win.ws.analysis
    win.toggle_play()
    qtbot.waitUntil(lambda: win.engine.position > 0.2, timeout=5000)
    if mode == "vanish":
        fake_sd.unplug()
    fake_sd.streams[-1].fail(mode)
    qtbot.waitUntil(lambda: len(critical(captured_dialogs)) == 1, timeout=5000)
    qtbot.wait(300)
    errs = critical(captured_dialogs)
    assert len(errs) == 1 and "Fake USB DAC" in errs[0] and "\n" not in errs[0]
    assert not win.engine.is_playing and "Play" in win.transport.play.text()
    assert win.ws.edits == edits and win.ws.analysis is analysis
    if mode == "vanish":
        # Gone: Play is disabled and says why; the rest of the app works.
        assert not win.transport.play.isEnabled() and "no longer available" in win.transport.play.toolTip()
    else:
        assert win.transport.play.isEnabled()
        win.toggle_play()
        qtbot.waitUntil(lambda: win.engine.is_playing, timeout=2000)
        win.stop()
    path = tmp_path / "after.wbsession.json"
    win.save_session(str(path))
    assert load_session(path).edits == list(edits)
    assert len(critical(captured_dialogs)) == 1
