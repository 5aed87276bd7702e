"""Layout rules found by looking at the screenshots: the first-launch size and dock places by window width,
tick labels that never overlap, latent ticks inside their row, and the training panel's live plots
keeping their room in a short dock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter

from workbench.app.insight import WIDE_WINDOW
from workbench.app.main_window import MainWindow, first_size
from workbench.app.timeline import SparseLabelAxis, TimelineView
from workbench.app.training_panel import PLOTS_ROOM, QWIDGETSIZE_MAX, TrainingPanel


def test_first_size_fills_a_large_screen_and_keeps_1440x900_on_small_ones() -> None:
    assert first_size((800, 600)) == (1440, 900)
    assert first_size((1440, 900)) == (1440, 900)
    w, h = first_size((1920, 1080))
    assert (w, h) == (1728, 972) and w >= WIDE_WINDOW  # a 1920 px screen gets the wide layout
    assert first_size((3840, 2160)) == (2400, 1400)


def test_the_dashboard_is_a_column_in_a_wide_window_and_a_tab_in_a_narrow_one(window: MainWindow) -> None:
    win, ins = window, window.insight
    ins.arrange(1440)
    assert win.dockWidgetArea(ins.dashboard_dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert ins.dashboard_dock in win.tabifiedDockWidgets(win.steering_dock)
    ins.arrange(WIDE_WINDOW)
    assert win.dockWidgetArea(ins.dashboard_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert ins.dashboard_dock not in win.tabifiedDockWidgets(win.steering_dock)
    assert ins.probes_dock in win.tabifiedDockWidgets(win.features_dock)
    ins.arrange(1000)
    assert ins.dashboard_dock in win.tabifiedDockWidgets(win.steering_dock)


def _label_rects(qtbot: Any, height: int) -> list[QRectF]:
    """The tick labels a left axis of `height` px draws for ticks at 0, 2, 4, 50, 52, 100 of 0..100."""
    axis = SparseLabelAxis("left")
    w = pg.PlotWidget(axisItems={"left": axis})
    qtbot.addWidget(w)
    w.setYRange(0, 100, padding=0)
    axis.setTicks([[(float(v), str(v)) for v in (0, 2, 4, 50, 52, 100)], []])
    w.resize(200, height)
    w.show()
    qtbot.waitExposed(w)
    img = QImage(200, height, QImage.Format.Format_ARGB32)
    p = QPainter(img)
    try:
        specs = axis.generateDrawSpecs(p)
    finally:
        p.end()
    assert specs is not None
    return [r for r, _flags, _text in specs[2]]


def test_tick_labels_that_would_overlap_are_left_out(qtbot: Any) -> None:
    tall = _label_rects(qtbot, 900)
    short = _label_rects(qtbot, 90)
    assert len(tall) == 6  # room for all
    assert 2 <= len(short) < 6
    for i, a in enumerate(short):
        assert not any(a.intersects(b) for b in short[i + 1:])


def test_latent_ticks_stay_inside_their_row(qtbot: Any) -> None:
    tl = TimelineView()
    qtbot.addWidget(tl)
    for d, want in ((65, ["0", "16", "32", "48"]), (64, ["0", "16", "32", "48"]), (8, ["0", "2", "4", "6"])):
        tl.set_latents(np.zeros((20, d), np.float32), 75.0)
        ticks = tl.rows["latent"].plot.getAxis("left")._tickLevels[0]
        assert [t for _, t in ticks] == want
        assert all(v <= 0.92 * d for v, _ in ticks)


def test_training_plots_get_their_room_once_a_run_draws_metrics(qtbot: Any) -> None:
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.resize(540, 480)
    p.show()
    p.ensure_plots()
    qtbot.waitExposed(p)
    assert p.settings_area.maximumHeight() == QWIDGETSIZE_MAX  # before a run the settings take what they need
    p.history = {"step": [], "loss": [], "fvu": [], "l0": [], "dead_fraction": []}
    p._on_metrics({"step": 1, "loss": 1.0, "fvu": 0.5, "l0": 8.0, "dead_fraction": 0.0})
    assert p.settings_area.maximumHeight() == max(p.settings_area.minimumHeight(), 480 - PLOTS_ROOM - 100)
    qtbot.waitUntil(lambda: p.plots is not None and p.plots.height() >= PLOTS_ROOM - 40, timeout=2000)
    p.resize(540, 1000)
    qtbot.waitUntil(lambda: p.settings_area.maximumHeight() == 1000 - PLOTS_ROOM - 100, timeout=2000)


def test_a_row_too_short_for_its_title_drops_the_unit(qtbot: Any) -> None:
    tl = TimelineView()
    qtbot.addWidget(tl)
    row = tl.rows["lines"]
    axis = row.plot.getAxis("left")
    tl.resize(900, 1400)
    tl.show()
    qtbot.waitExposed(tl)
    qtbot.waitUntil(lambda: row.vb.height() > 150, timeout=2000)
    assert axis.labelText == "Selected (× max)"
    tl.resize(900, 420)
    qtbot.waitUntil(lambda: axis.labelText == "Selected", timeout=2000)
    row.set_title("Loudness (dB)")  # a new title is fitted at once
    assert axis.labelText in ("Loudness", "Loudness (dB)")
    assert row.title_metrics.horizontalAdvance(axis.labelText) <= row.vb.height() or " (" not in axis.labelText
    tl.resize(900, 1400)
    qtbot.waitUntil(lambda: axis.labelText == "Loudness (dB)", timeout=2000)


def test_a_new_title_is_centred_on_its_row(qtbot: Any) -> None:
    tl = TimelineView()
    qtbot.addWidget(tl)
    tl.resize(900, 1200)
    tl.show()
    qtbot.waitExposed(tl)
    axis = tl.rows["prop"].plot.getAxis("left")
    tl.set_property_curves(np.arange(10) / 75.0, np.linspace(500.0, 900.0, 10), None, "Centroid (Hz)")
    span = axis.mapRectToParent(axis.label.mapRectToParent(axis.label.boundingRect()))
    mid = axis.mapRectToParent(axis.boundingRect()).center().y()
    assert abs(span.center().y() - mid) < 6
