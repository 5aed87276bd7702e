"""The main window end to end (offscreen): defaults, opening clips, steering + undo, no-device state,
bad files, sessions, drag-and-drop, the exception hook and the smoke test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from workbench.app.main_window import MainWindow
from workbench.core.steering import Edit


def wait_steered(qtbot: Any, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: win.ws.steered_is_current and not win.steerer.busy, timeout=10_000)


def test_window_opens_with_defaults_and_every_view_is_populated(window: MainWindow) -> None:
    win = window
    assert win.ws.codec_id == "default" and win.ws.sae is not None and win.ws.sae_is_default
    a = win.ws.analysis
    assert a is not None and a.path is None and a.name == "demo clip"
    assert win.populated_views() == dict.fromkeys(win.populated_views(), True)
    assert win.table.proxy.rowCount() == win.ws.sae.d_sae
    assert win.timeline.img_latent.image.shape == (a.z.shape[1], a.z.shape[0])
    assert abs(win.timeline.duration - a.duration) < 1e-6
    assert "codec default" in win.status_info.text() and "features" in win.status_info.text()
    assert not win.errors


def test_opening_a_clip_updates_all_views(window: MainWindow, qtbot: Any, audio_file: Path) -> None:
    win = window
    old = win.ws.analysis
    old_latent = win.timeline.img_latent.image.copy()
    with qtbot.waitSignal(win.loadFinished, timeout=20_000) as sig:
        win.open_audio(str(audio_file))
    assert sig.args == [True]
    a = win.ws.analysis
    assert a is not old and a is not None and a.path == audio_file and a.name == "tones.wav"
    assert abs(win.timeline.duration - 1.5) < 0.01
    assert win.timeline.img_latent.image.shape != old_latent.shape
    assert win.timeline.img_mel_a.image.shape[1] == a.mel.db.shape[0]
    xs = win.timeline.wave_a.xData
    assert len(xs) > 100 and xs.max() <= a.duration + 1e-3 and xs.min() < 0.01
    assert win.table.model.clip_active.shape == (win.ws.sae.d_sae,)
    assert np.allclose(win.table.model.clip_active, a.summary.clip_active)
    assert "tones.wav" in win.windowTitle()
    assert str(audio_file.resolve()) in win.settings.recent_files


def test_moving_a_slider_changes_the_steered_buffer_and_undo_restores_it(window: MainWindow, qtbot: Any) -> None:
    win = window
    a = win.ws.analysis
    feat = int(np.argmax(a.summary.clip_mean))
    win.table.select_features([feat])
    win.table.steer_btn.click()
    assert [e.feature for e in win.ws.edits] == [feat]
    row = win.steering.rows[feat]
    original = a.decoded.samples.copy()
    # A drag: several value changes in one gesture → one undo step.
    for v in (0.8, 0.5, 0.2, 0.0):
        row.slider.setValue(v)
    row.slider.sliderReleased.emit()
    assert win.ws.edits == (Edit(feat, "scale", 0.0),)
    wait_steered(qtbot, win)
    steered = win.ws.steered.clip.samples
    assert steered.shape == original.shape
    assert np.abs(steered - original).max() > 1e-4
    assert win.timeline.wave_b.isVisible()
    assert win.undo.count() == 2  # add slider + one merged drag
    win.undo_action.trigger()
    assert win.ws.edits == (Edit(feat, "scale", 1.0),)
    assert row.slider.value() == pytest.approx(1.0)
    wait_steered(qtbot, win)
    assert np.array_equal(win.ws.steered.clip.samples, original)
    win.redo_action.trigger()
    wait_steered(qtbot, win)
    assert np.array_equal(win.ws.steered.clip.samples, steered)
    win.reset_action.trigger()
    assert win.ws.edits == (Edit(feat, "scale", 1.0),)


def test_modes_and_time_ranges(window: MainWindow, qtbot: Any) -> None:
    win = window
    feat = int(np.argmax(win.ws.analysis.summary.clip_mean))
    win.add_slider(feat)
    row = win.steering.rows[feat]
    row.mode.setCurrentText("add")
    assert win.ws.edits == (Edit(feat, "add", 0.0),)
    row.range_btn.click()  # no selection yet: explained, nothing changes
    assert win.ws.edits == (Edit(feat, "add", 0.0),) and not row.range_btn.isChecked()
    win.timeline.set_selection((0.5, 1.0))
    row.range_btn.click()
    assert win.ws.edits == (Edit(feat, "add", 0.0, 0.5, 1.0),)
    row.slider.setValue(1.0)
    wait_steered(qtbot, win)
    d = np.abs(win.ws.steered.clip.samples[:, 0] - win.ws.analysis.decoded.samples[:, 0])
    sr = win.ws.analysis.decoded.sample_rate
    assert d[: int(0.3 * sr)].max() < 1e-6 < d[int(0.6 * sr) : int(0.9 * sr)].max()


def test_no_output_device_disables_play_and_says_why(window: MainWindow, qtbot: Any) -> None:
    win = window
    assert win.engine is not None and not win.engine.has_device
    assert not win.transport.play.isEnabled()
    tip = win.transport.play.toolTip()
    assert "no audio output device" in tip and "Output menu" in tip
    assert "no output device" in win.device_label.text()
    win.toggle_play()  # Space on a disabled action: nothing happens, nothing breaks
    assert not win.engine.is_playing
    # Everything else works: seek moves the playhead.
    win.seek(0.7)
    assert win.timeline.playhead() == pytest.approx(0.7)
    # Silent playback is the explicit way to run the clock without a device.
    win._set_silent(True)
    assert win.transport.play.isEnabled()
    fed: list[np.ndarray] = []
    real = win.engine.set_steered
    win.engine.set_steered = lambda z: (fed.append(z), real(z))  # type: ignore[method-assign]
    win.toggle_play()
    qtbot.waitUntil(lambda: win.engine.position > 0.8, timeout=5000)
    # A slider moved while playing reaches the live engine.
    feat = int(np.argmax(win.ws.analysis.summary.clip_mean))
    win.add_slider(feat)
    win.steering.rows[feat].slider.setValue(0.0)
    qtbot.waitUntil(lambda: len(fed) > 0, timeout=5000)
    assert not np.array_equal(fed[-1], win.ws.analysis.z)
    win.toggle_play()
    assert not win.engine.is_playing
    win.stop()


def test_bad_file_gives_one_dialog_and_keeps_the_session(window: MainWindow, qtbot: Any, tmp_path: Path,
                                                          captured_dialogs: list[tuple[str, str]]) -> None:
    win = window
    win.add_slider(3)
    before = (win.ws.analysis, win.ws.edits, win.ws.sae, win.ws.codec)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bad))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(win.loadFinished, timeout=10_000) as sig:
        win.dropEvent(ev)
    assert sig.args == [False]
    crit = [t for k, t in captured_dialogs if k == "critical"]
    assert len(crit) == 1 and "broken.wav" in crit[0] and "\n" not in crit[0]
    assert (win.ws.analysis, win.ws.edits, win.ws.sae, win.ws.codec) == before
    assert win.populated_views()["heatmap"]
    # A folder that is not an SAE and a missing file: one dialog each, state kept.
    win.open_path(str(tmp_path))
    with qtbot.waitSignal(win.loadFinished, timeout=10_000):
        win.open_audio(str(tmp_path / "missing.flac"))
    assert len([k for k, _ in captured_dialogs if k == "critical"]) == 3
    assert win.ws.analysis is before[0]


def test_session_save_and_open_round_trip(window: MainWindow, qtbot: Any, tmp_path: Path, audio_file: Path) -> None:
    win = window
    with qtbot.waitSignal(win.loadFinished, timeout=20_000):
        win.open_audio(str(audio_file))
    win.add_slider(2)
    win.set_edit(Edit(2, "add", 0.5, 0.2, 0.9))
    win.add_slider(5)
    win.set_edit(Edit(5, "scale", 0.0))
    win.ws.set_selected([2, 7])
    win.transport.ab.setChecked(False)
    win.timeline.set_selection((0.25, 0.75))
    path = tmp_path / "s" / "my.wbsession.json"
    win.save_session(str(path))
    assert path.is_file()
    # Change everything, then open the session again.
    win.remove_slider(2)
    win.ws.set_selected([])
    win.transport.ab.setChecked(True)
    with qtbot.waitSignal(win.loadFinished, timeout=20_000) as sig:
        win.open_session(str(path))
    assert sig.args == [True]
    assert win.ws.edits == (Edit(2, "add", 0.5, 0.2, 0.9), Edit(5, "scale", 0.0))
    assert win.ws.selected == (2, 7)
    assert win.ws.analysis.path == audio_file
    assert not win.transport.ab.isChecked() and win.engine.ab == "A"
    assert win.timeline.selection == pytest.approx((0.25, 0.75))
    assert set(win.steering.rows) == {2, 5}
    wait_steered(qtbot, win)
    assert win.undo.count() == 0


def test_export_writes_the_steered_audio(window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    from workbench.core.audio import load_audio

    win = window
    feat = int(np.argmax(win.ws.analysis.summary.clip_mean))
    win.add_slider(feat)
    win.set_edit(Edit(feat, "scale", 0.0))
    wait_steered(qtbot, win)
    out = tmp_path / "out.wav"
    task = win.export(str(out))
    with qtbot.waitSignal(task.ended, timeout=10_000):
        pass
    clip = load_audio(out)
    assert np.abs(clip.samples - win.ws.steered.clip.samples).max() < 1e-3


def test_exception_hook_shows_one_dialog_and_logs(qtbot: Any, monkeypatch: pytest.MonkeyPatch, app_env: Path) -> None:
    import sys

    from PySide6.QtWidgets import QMessageBox

    from workbench.app.errors import ExceptionHook, setup_logging

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self.text()) or 0)
    setup_logging()
    hook = ExceptionHook()
    hook.install()
    try:
        for _ in range(3):  # a burst of the same failure gives one dialog
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())
        qtbot.waitUntil(lambda: len(shown) == 1, timeout=2000)
    finally:
        hook.uninstall()
    assert "RuntimeError: boom" in shown[0]
    qtbot.wait(600)


def test_smoke_test_entry_point(capsys: pytest.CaptureFixture[str], qapp: Any) -> None:
    from workbench.app.main import run_app

    assert run_app(smoke_test=True) == 0
    out = capsys.readouterr().out
    assert out.startswith("smoke test ok:") and "6/6 views populated" in out


def test_a_bad_file_on_the_command_line_still_opens_the_defaults(qtbot: Any, tmp_path: Path,
                                                                  captured_dialogs: list[tuple[str, str]]) -> None:
    win = MainWindow(use_audio_device=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.loadFinished, timeout=30_000) as sig:
        win.start(str(tmp_path / "nope.wav"))
    assert sig.args == [True]
    assert [k for k, _ in captured_dialogs] == ["critical"] and "nope.wav" in captured_dialogs[0][1]
    assert win.ws.analysis is not None and win.ws.analysis.name == "demo clip"
    win.close()


def test_a_too_strong_edit_is_limited_and_the_status_bar_says_so(window: MainWindow, qtbot: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny test codec cannot get loud (its output stays near -24 dBFS), so the ceiling is lowered to
    -40 dBFS instead: the limiter then works as hard as a too-strong edit would make it."""
    import functools

    import workbench.app.main_window as mw
    from workbench.core.audio import load_audio
    from workbench.core.limiter import PeakLimiter, limit

    win = window
    ceiling = 10 ** (-40 / 20)
    eng = win.engine
    eng.limiter = PeakLimiter(eng.sample_rate, eng.channels, ceiling_db=-40.0)
    monkeypatch.setattr(mw, "limit", functools.partial(limit, ceiling_db=-40.0))
    feat = int(np.argmax(win.ws.analysis.summary.clip_mean))
    win.add_slider(feat)
    win.set_edit(Edit(feat, "scale", 2.0))
    wait_steered(qtbot, win)
    steered = win.ws.steered.clip.samples
    assert np.abs(steered).max() > 4 * ceiling
    win._set_silent(True)  # no device here: the clock drives the same callback and limiter
    assert not win.limiter_label.isVisible()
    win.toggle_play()
    qtbot.waitUntil(lambda: win.limiter_label.isVisible(), timeout=5000)
    assert win.limiter_label.text().startswith("limiter: −") and win.limiter_label.text().endswith(" dB")
    assert eng.limiter_reduction_db > 3
    win.stop()
    assert not win.limiter_label.isVisible()
    out = tmp_path / "loud.wav"
    task = win.export(str(out))
    with qtbot.waitSignal(task.ended, timeout=15_000):
        pass
    y = load_audio(out).samples
    assert np.abs(y).max() <= ceiling * (1 + 1e-6) and len(y) == len(steered)
    assert task.outcome == "succeeded" and "limiter: up to" in task.result  # shown in the status bar
    assert win.statusBar().currentMessage() == task.result


def test_help_shows_the_reports_of_the_loaded_models(window: Any, tmp_path: Path, qtbot: Any) -> None:
    """Help → About the loaded models: one tab per report of the codec and the SAE folder."""
    import shutil

    win = window
    sae = win.ws.sae
    assert sae is not None and sae.folder is not None
    win.show_model_docs()
    dlg = win.model_docs
    titles = dlg.titles()
    assert titles and titles[0].startswith("Codec 'default'")
    assert any(t.startswith(f"SAE '{sae.folder.name}'") for t in titles)
    dlg.close()
    # An SAE folder with a report and probe figures: both become tabs, rendered from markdown.
    folder = Path(shutil.copytree(sae.folder, tmp_path / "mine"))
    (folder / "report.md").write_text("# My SAE\n\nFVU **0.05**\n")
    (folder / "probes-eval.md").write_text("| property | accuracy |\n|---|---:|\n| pitch | 0.9 |\n")
    with qtbot.waitSignal(win.loadFinished, timeout=30_000):
        win.open_sae(str(folder))
    win.show_model_docs()
    dlg = win.model_docs
    assert dlg.titles()[-2:] == ["SAE 'mine' report", "SAE 'mine' probes"]
    view = dlg.tabs.widget(dlg.tabs.count() - 2)
    assert "FVU 0.05" in view.toPlainText() and "#" not in view.toPlainText()
    dlg.close()


def test_the_feature_table_exports_as_csv(window: Any, tmp_path: Path) -> None:
    import csv

    win = window
    n = win.ws.sae.d_sae
    win.push_edits((Edit(3, "scale", 0.0),), "steer")
    assert win.export_table(str(tmp_path / "t.csv"))
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0].startswith("# clip: ")
    rows = list(csv.DictReader(lines[1:]))
    assert len(rows) == n and [int(r["feature"]) for r in rows] == list(range(n))
    assert rows[3]["steered"] == "1" and sum(r["steered"] == "1" for r in rows) == 1
    m = win.table.model
    assert float(rows[0]["density"]) == pytest.approx(m.density[0], rel=1e-5)
    assert any(r["clip_active"] not in ("", "0") for r in rows)  # the current clip's columns are filled
    # A place that cannot be written (below a file): one message, nothing written.
    (tmp_path / "file").write_text("x")
    assert not win.export_table(str(tmp_path / "file" / "t.csv"))
    assert "cannot write the feature table" in win.errors[-1] and (tmp_path / "file").read_text() == "x"
