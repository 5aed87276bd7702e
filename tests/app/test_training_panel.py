"""Training in the worker thread: progress + live metrics while the event loop keeps running; pause,
resume and cancel; the finished SAE loads into the window."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer

from workbench.app.main_window import MainWindow


def configure(win: MainWindow, audio: Path, out: Path, steps: int) -> None:
    p = win.training
    p.inputs.addItem(str(audio))
    p.synthetic.setValue(0)
    p.arch.setCurrentText("topk")
    p.d_sae.setValue(16)
    p.k.setValue(4)
    p.steps.setValue(steps)
    p.batch.setValue(32)
    p.out.setText(str(out))


def test_training_reports_progress_keeps_gui_responsive_and_loads(window: MainWindow, qtbot: Any, audio_file: Path,
                                                                   tmp_path: Path, captured_dialogs: list[Any]) -> None:
    win = window
    configure(win, audio_file, tmp_path / "new_sae", steps=120)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    progress: list[float] = []
    win.training.progress.valueChanged.connect(progress.append)
    import workbench.core.codecs as codecs  # train_sae imports get_codec from here when it needs one

    used: list[Any] = []
    orig = codecs.get_codec
    codecs.get_codec = lambda *a, **k: used.append(a) or orig(*a, **k)  # type: ignore[assignment]
    try:
        with qtbot.waitSignal(win.loadFinished, timeout=60_000) as sig:  # "Load it now?" → Yes → loaded
            win.training.start()
            assert win.training.running
            # The run encodes with the window's codec (the same one the panel asks for): no second load.
            assert win.training.task is not None
    finally:
        timer.stop()
        codecs.get_codec = orig  # type: ignore[assignment]
    assert used == [], used
    assert sig.args == [True]
    assert any(k == "question" for k, _ in captured_dialogs)
    assert win.ws.sae is not None and win.ws.sae.d_sae == 16 and not win.ws.sae_is_default
    assert win.ws.sae.folder == tmp_path / "new_sae"
    assert win.table.model.n == 16 and win.populated_views()["heatmap"]
    # Progress went up in several steps to the end; metrics were plotted live.
    assert len(progress) >= 3 and progress[-1] == 1000 and progress == sorted(progress)
    steps = win.training.history["step"]
    assert len(steps) >= 3 and steps[-1] == 120
    assert len(win.training.curves["fvu"].xData) == len(steps)
    # The event loop kept running: the 10 ms timer kept firing throughout. (The worst stall is a figure
    # for benchmarks/bench_gui.py on a quiet machine; here other jobs share the 2 cores, so the bound
    # only catches a GUI thread that waits for the training.)
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    span = ticks[-1] - ticks[0]
    assert len(ticks) > 0.25 * span / 0.010, f"{len(ticks)} timer ticks in {span:.1f} s"
    assert max(gaps) < 3.0, f"worst event-loop stall {max(gaps):.3f} s"
    assert sorted(gaps)[len(gaps) // 2] < 0.05
    assert not win.training.running and "done" in win.training.status.text()


def test_training_pauses_resumes_and_cancels_within_a_second(window: MainWindow, qtbot: Any, audio_file: Path,
                                                              tmp_path: Path) -> None:
    win = window
    p = win.training
    configure(win, audio_file, tmp_path / "never", steps=1_000_000)
    p.start()
    qtbot.waitUntil(lambda: len(p.history.get("step", [])) >= 2, timeout=30_000)
    p.pause_btn.click()
    assert p.pause_btn.text() == "Resume" and p.task is not None and p.task.job.paused
    qtbot.wait(300)
    n = len(p.history["step"])
    qtbot.wait(400)
    assert len(p.history["step"]) <= n + 1  # at most a step that was already under way
    p.pause_btn.click()
    qtbot.waitUntil(lambda: len(p.history["step"]) > n + 1, timeout=10_000)
    t0 = time.monotonic()
    with qtbot.waitSignal(p.task.ended, timeout=5_000):
        p.cancel_btn.click()
    assert time.monotonic() - t0 < 1.0
    assert p.status.text() == "cancelled" and not p.running
    assert not (tmp_path / "never" / "cfg.json").exists()


def test_bad_training_settings_are_explained(window: MainWindow, captured_dialogs: list[Any]) -> None:
    p = window.training
    p.synthetic.setValue(0)  # and no inputs
    p.start()
    assert not p.running
    assert any("choose audio files" in t for k, t in captured_dialogs if k == "critical")


def test_first_load_can_warm_up_the_training_engine(qtbot: Any, monkeypatch: Any) -> None:
    import workbench.core.sae.pipeline as pipeline

    calls: list[int] = []
    monkeypatch.setattr(pipeline, "warm_up", lambda: calls.append(1))
    win = MainWindow(use_audio_device=False, dialogs=False, warm_up=True)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.loadFinished, timeout=60_000):
        win.start()
    assert calls == [1]
    with qtbot.waitSignal(win.loadFinished, timeout=60_000):  # later loads do not
        win.open_audio(str(Path(__file__).parent / "missing.wav"))  # fails: nothing else changes
    assert calls == [1]
    win.shutdown()
    win.close()


def test_the_live_plots_are_built_hidden_after_a_load_and_shown_at_train(window: MainWindow, qtbot: Any) -> None:
    """Building pyqtgraph's four plots takes ~90 ms: done when Train is pressed, it froze the window and
    was the worst event-loop stall of a run (bench_gui), so it happens after a clip loads instead."""
    p = window.training
    qtbot.waitUntil(lambda: p.plots is not None, timeout=5000)
    assert p.plots is not None and not p.plots.isVisibleTo(p)
    built = p.plots
    p.ensure_plots()
    assert p.plots is built and p.plots.isVisibleTo(p)
