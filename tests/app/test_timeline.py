"""The timelines draw only what is in view, at screen resolution: a short event stays visible zoomed out,
images land on the right pixels in both y directions, curves keep their peaks, and the time axis labels
a 1-2-5 step without overlap."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage

from workbench.app.time_items import TimeAxis, lookup_table, nice_step
from workbench.app.timeline import TimelineView

FR = 75.0


def _view(qtbot: Any, seconds: float = 120.0) -> TimelineView:
    view = TimelineView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    view.set_duration(seconds)
    return view


def _grab(view: TimelineView, app: Any) -> QImage:
    for _ in range(3):
        app.processEvents()
    return view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def _pixel(view: TimelineView, key: str, t: float, y: float) -> tuple[int, int]:
    scene = view.rows[key].vb.mapViewToScene(QPointF(t, y))
    p = view.mapFromScene(scene)
    return p.x(), p.y()


def _colours_near(img: QImage, x: int, y: int, r: int = 1) -> set[int]:
    return {img.pixel(x + dx, y + dy) & 0xFFFFFF for dx in range(-r, r + 1) for dy in range(-r, r + 1)}


def test_a_one_frame_feature_stays_visible_zoomed_out_and_lands_on_its_row(qtbot: Any, qapp: Any) -> None:
    seconds = 120.0
    view = _view(qtbot, seconds)
    n = int(seconds * FR)
    rel = np.zeros((8, n), np.float32)
    rel[2, 4321] = 1.0  # feature row 2 fires in one frame of 9000
    rel[5, :] = 0.2  # a second row, on everywhere, keeps the colour levels honest
    view.set_heatmap(np.arange(8), rel, FR)
    view.zoom_all()
    img = _grab(view, qapp)
    top = int(lookup_table(pg.colormap.get("viridis"))[-1]) & 0xFFFFFF
    t = (4321 + 0.5) / FR
    x, y = _pixel(view, "heat", t, 2.5)  # the heat row is drawn top-down: row 2 is the third from the top
    assert top in _colours_near(img, x, y)
    # nowhere else in that row, nor in the rows beside it
    xs = [_pixel(view, "heat", s, 2.5)[0] for s in (10.0, 30.0, 90.0)]
    assert all(top not in _colours_near(img, xx, y) for xx in xs)
    assert top not in _colours_near(img, x, _pixel(view, "heat", t, 4.5)[1])
    # zoomed in around it, the frame spans many pixels
    view.rows["wave"].plot.setXRange(t - 0.2, t + 0.2, padding=0)
    img = _grab(view, qapp)
    x0, x1 = _pixel(view, "heat", 4321 / FR, 2.5)[0], _pixel(view, "heat", 4322 / FR, 2.5)[0]
    assert x1 - x0 > 20
    assert all(img.pixel(xx, y) & 0xFFFFFF == top for xx in range(x0 + 1, x1))
    assert img.pixel(x0 - 2, y) & 0xFFFFFF != top and img.pixel(x1 + 2, y) & 0xFFFFFF != top


def test_latents_are_drawn_bottom_up_and_keep_negative_spikes(qtbot: Any, qapp: Any) -> None:
    seconds = 60.0
    view = _view(qtbot, seconds)
    n = int(seconds * FR)
    z = np.zeros((n, 4), np.float32)
    z[:, 3] = 0.1
    z[1234, 0] = -5.0  # dimension 0 (bottom row) dips once
    z[2000, 3] = 5.0
    view.set_latents(z, FR)
    view.zoom_all()
    img = _grab(view, qapp)
    lut = lookup_table(pg.colormap.get("CET-D1A"))
    lo, hi = int(lut[0]) & 0xFFFFFF, int(lut[-1]) & 0xFFFFFF
    x, y = _pixel(view, "latent", (1234 + 0.5) / FR, 0.5)
    assert lo in _colours_near(img, x, y)
    x, y = _pixel(view, "latent", (2000 + 0.5) / FR, 3.5)
    assert hi in _colours_near(img, x, y)
    assert _pixel(view, "latent", 1.0, 0.5)[1] > _pixel(view, "latent", 1.0, 3.5)[1]  # dim 0 at the bottom


def test_the_waveform_keeps_a_one_sample_click_zoomed_out(qtbot: Any, qapp: Any) -> None:
    sr, seconds = 24000, 120.0
    view = _view(qtbot, seconds)
    wave = np.zeros(int(sr * seconds), np.float32)
    wave[1_000_003] = 0.9  # one sample
    wave[2_000_000:2_000_010] = 0.1
    view.set_waveforms(wave, None, sr)
    view.zoom_all()
    img = _grab(view, qapp)
    x, y = _pixel(view, "wave", 1_000_003 / sr, 0.85)
    colour = QColor("#8fb3d9").rgb() & 0xFFFFFF
    assert colour in _colours_near(img, x, y, 2)
    assert view.wave_a.xData is not None and len(view.wave_a.xData) == len(wave)


def test_time_axis_labels_a_1_2_5_step_without_overlap(qtbot: Any, qapp: Any) -> None:
    assert [nice_step(x) for x in (0.7, 1.0, 1.3, 3.0, 7.0, 0.013)] == [1.0, 1.0, 2.0, 5.0, 10.0, 0.02]
    view = _view(qtbot, 600.0)
    axis = view.rows["prop"].plot.getAxis("bottom")
    assert isinstance(axis, TimeAxis)
    for x0, x1 in ((0.0, 10.0), (123.4, 125.9), (0.0, 600.0)):
        view.rows["wave"].plot.setXRange(x0, x1, padding=0)
        _grab(view, qapp)
        _, ticks, texts = axis.generateDrawSpecs(None)
        assert len(texts) >= 4 and len(ticks) > len(texts)
        values = [float(t) for _, _, t in texts]
        steps = np.diff(values)
        assert np.allclose(steps, steps[0]) and nice_step(steps[0]) == steps[0]
        assert x0 - 1e-9 <= values[0] and values[-1] <= x1 + 1e-9
        assert values[0] == 0.0 or x0 > 0  # the origin keeps its label, moved inside the axis
        rects = [r for r, _, _ in texts]
        assert all(a.right() < b.left() for a, b in zip(rects, rects[1:], strict=False))


def _filled(qtbot: Any, seconds: float = 120.0) -> TimelineView:
    view = _view(qtbot, seconds)
    rng = np.random.default_rng(0)
    sr, n = 8000, int(FR * seconds)
    t = np.arange(int(sr * seconds)) / sr
    wave = (0.5 * np.sin(2 * np.pi * 3 * t) * np.sin(2 * np.pi * 0.05 * t)).astype(np.float32)
    view.set_waveforms(wave, 0.5 * wave, sr)
    rel = np.maximum(0, rng.standard_normal((16, n))).astype(np.float32)
    view.set_heatmap(np.arange(16), rel, FR)
    view.set_latents(rng.standard_normal((n, 8)).astype(np.float32), FR)
    tt = (np.arange(n) + 0.5) / FR
    view.set_feature_lines(tt, [(i, f"#{i}", rel[i], 0.5 * rel[i]) for i in range(3)])
    prop = np.where(np.sin(tt) > 0, 50 + 5 * np.sin(3 * tt), np.nan).astype(np.float32)
    view.set_property_curves(tt, prop, prop + 2, "Loudness (dB)")
    return view


def test_a_pan_shows_the_same_pixels_as_a_fresh_draw(qtbot: Any, qapp: Any) -> None:
    """Panned views reuse columns drawn before; they must match drawing the final view afresh."""
    panned, fresh = _filled(qtbot), _filled(qtbot)
    panned.rows["wave"].plot.setXRange(20.0, 30.0, padding=0)
    _grab(panned, qapp)
    for k in range(1, 25):  # right in steps of 0.83 s, then back a little
        x = 20.0 + 0.83 * k if k < 20 else 20.0 + 0.83 * 19 - 0.61 * (k - 19)
        panned.rows["wave"].plot.setXRange(x, x + 10.0, padding=0)
        _grab(panned, qapp)
    fresh.rows["wave"].plot.setXRange(x, x + 10.0, padding=0)
    a = _grab(panned, qapp)
    b = _grab(fresh, qapp)
    assert a.size() == b.size()
    pa = np.frombuffer(a.constBits(), np.uint32).reshape(a.height(), -1)
    pb = np.frombuffer(b.constBits(), np.uint32).reshape(b.height(), -1)
    differ = pa != pb
    assert not differ.any(), f"{differ.sum()} pixels differ"
