"""Time-aligned views sharing one time axis, zoom/pan, a playhead and a selection.

Rows, top to bottom: waveform (A and B), log-mel A, log-mel B, latent spectrogram, feature heatmap of
the clip's most active features, line plots of the selected features (original solid, steered
dashed), and one acoustic property over time (pitch, loudness or timbre as a probe reads it or as
measured; A and B). Click seeks; Shift+drag selects a time range (loop, edit ranges); wheel zooms time; drag
pans; double-click a heatmap row selects that feature. The window passes arrays in; nothing is
computed here beyond placing them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsView

from workbench.app.time_items import CurveLayer, TimeAxis, TimeCurve, TimeImage
from workbench.core.visuals import MelImage, hz_to_mel, symmetric_levels

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

AXIS_WIDTH = 64
COLOR_A = "#8fb3d9"
COLOR_B = "#ff9d3c"
PLAYHEAD = "#3fd0ff"
BACKGROUND = "#161616"
LINE_COLORS = ["#ff9d3c", "#58c4dd", "#9bd35a", "#e05aa0", "#f5d547", "#b48cff", "#5ad3b0", "#ff6b6b"]


def regular_times(times: np.ndarray) -> tuple[float, float]:
    """(rate, offset) of evenly spaced sample times (frame centres): sample i at offset + i / rate."""
    t = np.asarray(times, np.float64)
    if len(t) < 2 or not t[-1] > t[0]:
        return 1.0, float(t[0]) if len(t) else 0.0
    return (len(t) - 1) / float(t[-1] - t[0]), float(t[0])


class TimelineViewBox(pg.ViewBox):
    """Time-only pan/zoom; click = seek, Shift+drag = select, double-click = activate a row."""

    sigSeek = Signal(float)
    sigSelect = Signal(float, float, bool)
    sigRowActivated = Signal(float)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=True, y=False)

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802 (Qt naming)
        if ev.button() == Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            p = self.mapSceneToView(ev.scenePos())  # type: ignore[attr-defined]
            ev.accept()  # type: ignore[attr-defined]
            if ev.double():  # type: ignore[attr-defined]
                self.sigRowActivated.emit(p.y())
            else:
                self.sigSeek.emit(p.x())
            return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev: object, axis: int | None = None) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:  # type: ignore[attr-defined]
            ev.accept()  # type: ignore[attr-defined]
            a = self.mapSceneToView(ev.buttonDownScenePos()).x()  # type: ignore[attr-defined]
            b = self.mapSceneToView(ev.scenePos()).x()  # type: ignore[attr-defined]
            self.sigSelect.emit(min(a, b), max(a, b), bool(ev.isFinish()))  # type: ignore[attr-defined]
            return
        super().mouseDragEvent(ev, axis)


class SparseLabelAxis(pg.AxisItem):
    """An axis that leaves out a tick label which would overlap one already placed (pyqtgraph draws all
    labels of the first tick level): a short row keeps 100, 500, 1k… readable instead of a smudge."""

    def generateDrawSpecs(self, p: object) -> object:  # noqa: N802 (Qt naming)
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return specs
        axis, ticks, texts = specs
        kept: list[tuple[QRectF, object, str]] = []
        for rect, flags, text in texts:
            if not any(rect.adjusted(-1, -1, 1, 1).intersects(k[0]) for k in kept):
                kept.append((rect, flags, text))
        return axis, ticks, kept


class _Row:
    def __init__(self, view: TimelineView, key: str, label: str, stretch: float) -> None:
        self.key = key
        self.vb = TimelineViewBox()
        self.plot = pg.PlotItem(viewBox=self.vb, axisItems={"left": SparseLabelAxis("left"), "bottom": TimeAxis()})
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        left = self.plot.getAxis("left")
        # All four axes, hidden ones too: with an automatic SI prefix every pan re-typesets each x axis'
        # label (setHtml + resize), ten per frame in all.
        for ax in ("left", "bottom", "top", "right"):
            self.plot.getAxis(ax).enableAutoSIPrefix(False)
        left.setWidth(AXIS_WIDTH)
        # Ticks point outwards (inward ones reach into the plot, and so every pan repainted all seven
        # left axes along with the data: a seventh of the frame time) ...
        left.setStyle(tickLength=4)
        # and a 3 px gap: Qt looks for items to repaint 1 px beyond the damaged area.
        self.plot.layout.setColumnSpacing(0, 3)
        left.setLabel(label, color="#cfcfcf")
        font = QFont(left.label.font())
        font.setPointSize(8)
        left.label.setFont(font)
        self.title = label
        self.title_metrics = QFontMetrics(font)
        self.vb.sigResized.connect(lambda *_: self.fit_title())
        # Only the bottom row shows the time axis; hidden axes cost nothing when panning.
        self.plot.hideAxis("bottom")
        self.playhead = pg.InfiniteLine(0.0, angle=90, pen=pg.mkPen(PLAYHEAD, width=2))
        self.playhead.setZValue(100)
        self.plot.addItem(self.playhead, ignoreBounds=True)
        self.region = pg.LinearRegionItem((0, 0), movable=True, brush=pg.mkBrush(255, 255, 255, 28),
                                          pen=pg.mkPen("#ffffff60"), hoverBrush=pg.mkBrush(255, 255, 255, 45))
        self.region.setZValue(90)
        self.region.hide()
        self.plot.addItem(self.region, ignoreBounds=True)
        self.message = pg.TextItem("", color="#bbbbbb", anchor=(0, 0))
        self.message.setParentItem(self.vb)
        self.message.setPos(8, 4)
        self.stretch = stretch
        self.view = view

    def set_title(self, text: str) -> None:
        self.title = text
        self.fit_title()

    def fit_title(self) -> None:
        """The row's title, without its unit in parentheses when the row is too short for all of it (the
        rotated text would run into the next row's title)."""
        text = self.title
        h = self.vb.height()
        if h > 0 and self.title_metrics.horizontalAdvance(text) > h - 4 and " (" in text:
            text = text.split(" (")[0]
        axis = self.plot.getAxis("left")
        if text != axis.labelText:
            axis.setLabel(text, color="#cfcfcf")
            axis.resizeEvent(None)  # re-centres the rotated title (pyqtgraph places it only on a resize)


class TimelineView(pg.GraphicsLayoutWidget):
    seekRequested = Signal(float)
    selectionChanged = Signal(object)  # (t0, t1) or None
    featureActivated = Signal(int)

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        # Qt widens every repainted area by 2 px for antialiasing: panning then reached into the seven
        # axes beside the plots and repainted all of them each frame. Nothing here is antialiased.
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.ci.layout.setSpacing(2)
        self.ci.setContentsMargins(4, 4, 8, 4)
        specs = [("wave", "Waveform", 1.0), ("mel_a", "Log-mel A (Hz)", 1.3), ("mel_b", "Log-mel B (Hz)", 1.3),
                 ("latent", "Latents (dim)", 1.3), ("heat", "Top features", 2.0), ("lines", "Selected (× max)", 1.3),
                 ("prop", "Property", 1.3)]
        self.rows: dict[str, _Row] = {}
        for i, (key, label, stretch) in enumerate(specs):
            r = _Row(self, key, label, stretch)
            self.addItem(r.plot, row=i, col=0)
            self.ci.layout.setRowStretchFactor(i, int(stretch * 10))
            if i > 0:
                r.plot.setXLink(self.rows["wave"].plot)
            r.vb.sigSeek.connect(self._seek)
            r.vb.sigSelect.connect(self._select)
            r.region.sigRegionChanged.connect(lambda _=None, row=r: self._region_moved(row))
            self.rows[key] = r
        self.rows["prop"].plot.showAxis("bottom")
        last = self.rows["prop"].plot.getAxis("bottom")
        last.setHeight(36)
        last.setLabel("time (s)", color="#cfcfcf")
        self.rows["heat"].vb.sigRowActivated.connect(self._heat_row)
        self.rows["heat"].vb.invertY(True)
        self.rows["latent"].vb.invertY(False)

        # Items: curves and images that draw only what is in view, at screen resolution (time_items),
        # so a pan step costs the pixels drawn whatever the clip's length.
        self.wave_a = TimeCurve(pg.mkPen(COLOR_A, width=1), "A: codec output")
        self.wave_b = TimeCurve(pg.mkPen(COLOR_B, width=1), "B: steered")
        wp = self.rows["wave"].plot
        self.wave_legend = wp.addLegend(offset=(-4, 2), labelTextColor="#dddddd", labelTextSize="8pt",
                                        brush=pg.mkBrush(16, 16, 16, 210))
        # each curve row draws its curves in one layer (time_items.CurveLayer), on the view's background
        self.layers = {key: CurveLayer(BACKGROUND) for key in ("wave", "lines", "prop")}
        for key, layer in self.layers.items():
            self.rows[key].plot.addItem(layer)
        for c in (self.wave_a, self.wave_b):
            self.layers["wave"].add(c)
            self.wave_legend.addItem(c, c.name())
        wp.setYRange(-1, 1, padding=0.02)
        self.wave_b.setZValue(5)
        self.img_mel_a = TimeImage(pg.colormap.get("magma"))
        self.img_mel_b = TimeImage(pg.colormap.get("magma"))
        self.img_latent = TimeImage(pg.colormap.get("CET-D1A"), diverging=True)
        self.img_heat = TimeImage(pg.colormap.get("viridis"))
        for img, key in ((self.img_mel_a, "mel_a"), (self.img_mel_b, "mel_b"), (self.img_latent, "latent"),
                         (self.img_heat, "heat")):
            self.rows[key].plot.addItem(img)
        lp = self.rows["lines"].plot
        self.lines_legend = lp.addLegend(offset=(-4, 2), labelTextColor="#dddddd", labelTextSize="8pt",
                                         brush=pg.mkBrush(16, 16, 16, 210))
        self.line_items: list[TimeCurve] = []
        pp = self.rows["prop"].plot
        self.prop_legend = pp.addLegend(offset=(-4, 2), labelTextColor="#dddddd", labelTextSize="8pt",
                                        brush=pg.mkBrush(16, 16, 16, 210))
        # 1 px pens only: Qt's raster engine strokes a wider pen about 150x slower (16 ms for 750 points)
        self.prop_a = TimeCurve(pg.mkPen(COLOR_A, width=1), "A: original")
        self.prop_b = TimeCurve(pg.mkPen(COLOR_B, width=1), "B: steered")
        for c in (self.prop_a, self.prop_b):
            self.layers["prop"].add(c)
        self.prop_b.setZValue(5)
        self.prop_b.hide()
        self.prop_name = ""
        self.heat_features: np.ndarray = np.zeros(0, np.int64)
        self.duration = 0.0
        self._syncing = False
        self.selection: tuple[float, float] | None = None
        self.set_message("wave", "loading… (open audio with File → Open, or drop a file on the window)")
        self.set_message("heat", "no SAE loaded: open or train one to see features")
        self.set_message("lines", "select features in the table to plot them")
        self.set_message("prop", "property over time: choose one in the steering panel")

    # -- content ---------------------------------------------------------------------------------
    def set_message(self, key: str, text: str) -> None:
        m = self.rows[key].message
        m.setText(text)
        m.setVisible(bool(text))  # an empty TextItem still re-computes its transform on every pan

    def set_duration(self, duration: float) -> None:
        self.duration = max(duration, 1e-3)
        for r in self.rows.values():
            r.vb.setLimits(xMin=-0.02 * self.duration, xMax=self.duration * 1.02, minXRange=0.02)
        self.rows["wave"].plot.setXRange(0, self.duration, padding=0.0)

    def set_waveforms(self, a: np.ndarray, b: np.ndarray | None, sample_rate: int) -> None:
        self.set_message("wave", "")
        self.wave_a.set_series(a, sample_rate)
        has_b = b is not None and b is not a
        if has_b:
            self.wave_b.set_series(b, sample_rate)  # type: ignore[arg-type]
        else:
            self.wave_b.clear()
        self.wave_b.setVisible(has_b)
        peaks = [c.pyramid.peak for c in (self.wave_a, self.wave_b) if c.pyramid is not None and c.isVisible()]
        lim = max(0.05, 1.1 * max(peaks, default=0.0))
        self.rows["wave"].plot.setYRange(-lim, lim, padding=0.0)

    def _set_mel(self, img: TimeImage, key: str, mel: MelImage) -> None:
        db = mel.db
        hi = float(np.percentile(db, 99.5)) if db.size else 0.0
        n_mels = db.shape[1]
        img.setImage(db.T, (hi - 80.0, hi), QRectF(0.0, 0.0, mel.duration, float(n_mels)))
        r = self.rows[key]
        r.plot.setYRange(0, n_mels, padding=0)
        lo_m, hi_m = float(hz_to_mel(mel.fmin)), float(hz_to_mel(mel.fmax))
        ticks = []
        for hz in (100, 250, 500, 1000, 2000, 4000, 8000, 16000):
            if mel.fmin < hz < mel.fmax:
                # filter i is centred on mel edge i + 1 of n_mels + 2 evenly spaced edges
                pos = (float(hz_to_mel(hz)) - lo_m) / (hi_m - lo_m) * (n_mels + 1) - 0.5
                ticks.append((pos, f"{hz // 1000}k" if hz >= 1000 else str(hz)))
        r.plot.getAxis("left").setTicks([ticks, []])

    def set_mels(self, a: MelImage, b: MelImage | None) -> None:
        self._set_mel(self.img_mel_a, "mel_a", a)
        self._set_mel(self.img_mel_b, "mel_b", b if b is not None else a)

    def set_latents(self, z: np.ndarray, frame_rate: float) -> None:
        lv = symmetric_levels(z)
        self.img_latent.setImage(z.T, lv, QRectF(0.0, 0.0, z.shape[0] / frame_rate, float(z.shape[1])))
        r = self.rows["latent"]
        r.plot.setYRange(0, z.shape[1], padding=0)
        d = z.shape[1]
        step = max(1, int(2 ** round(math.log2(max(1, d / 4)))))
        # no label in the top 8% of the row: it would stick out into the row above
        r.plot.getAxis("left").setTicks([[(i + 0.5, str(i)) for i in range(0, d, step) if i + 0.5 <= 0.92 * d], []])

    def set_heatmap(self, features: np.ndarray, rel: np.ndarray, frame_rate: float,
                    labels: dict[int, str] | None = None) -> None:
        """rel: [len(features), T] activations in units of each feature's training maximum."""
        self.heat_features = np.asarray(features, np.int64)
        r = self.rows["heat"]
        if len(features) == 0:
            self.img_heat.clear()
            self.set_message("heat", "no feature fires in this clip" if rel.size == 0 else "")
            r.plot.getAxis("left").setTicks([[], []])
            return
        self.set_message("heat", "")
        hi = float(np.percentile(rel[rel > 0], 99)) if (rel > 0).any() else 1.0
        self.img_heat.setImage(rel, (0.0, max(hi, 1e-3)), QRectF(0.0, 0.0, rel.shape[1] / frame_rate, float(len(features))))
        r.plot.setYRange(0, len(features), padding=0)
        n = len(features)
        every = max(1, math.ceil(n / 16))
        r.plot.getAxis("left").setTicks([[(i + 0.5, f"#{int(features[i])}") for i in range(0, n, every)], []])
        r.set_title(f"Top {n} features")

    def set_feature_lines(self, times: np.ndarray, series: Sequence[tuple[int, str, np.ndarray, np.ndarray | None]]) -> None:
        """series: (feature, name, original, steered or None), in units of the feature's maximum."""
        p = self.rows["lines"].plot
        for it in self.line_items:
            self.layers["lines"].remove(it)
        self.line_items = []
        self.lines_legend.clear()
        rate, offset = regular_times(times)
        for i, (_, name, orig, steered) in enumerate(series):
            col = LINE_COLORS[i % len(LINE_COLORS)]
            c = TimeCurve(pg.mkPen(col, width=1), name)
            c.set_series(orig, rate, offset)
            self.layers["lines"].add(c)
            self.lines_legend.addItem(c, name)
            self.line_items.append(c)
            if steered is not None and not np.array_equal(steered, orig):
                d = TimeCurve(pg.mkPen(col, width=1, style=Qt.PenStyle.DashLine))
                d.set_series(steered, rate, offset)
                self.layers["lines"].add(d)
                self.line_items.append(d)
        if series:
            top = max(float(max(np.max(s[2]) if len(s[2]) else 0, np.max(s[3]) if s[3] is not None and len(s[3]) else 0))
                      for s in series)
            p.setYRange(0, max(0.1, top * 1.1), padding=0)
        self.set_message("lines", "" if series else "select features in the table to plot them")

    def set_property_curves(self, times: np.ndarray, a: np.ndarray, b: np.ndarray | None, label: str,
                            ticks: list[list[tuple[float, str]]] | None = None, how: str = "") -> None:
        """One property over time: A (original) and, when there are edits, B (steered); NaN = undefined
        (unvoiced, silent). `a`/`b` are already on the row's scale; `ticks` (levels) label the left axis; `how`
        (e.g. "probe", "measured") goes into the legend."""
        r = self.rows["prop"]
        self.prop_name = label
        r.set_title(label)
        r.plot.getAxis("left").setTicks(ticks)
        rate, offset = regular_times(times)
        self.prop_a.set_series(a, rate, offset)
        show_b = b is not None
        if show_b:
            self.prop_b.set_series(b, rate, offset)  # type: ignore[arg-type]
        else:
            self.prop_b.clear()
        self.prop_b.setVisible(show_b)
        self.prop_legend.clear()
        suffix = f" ({how})" if how else ""
        self.prop_legend.addItem(self.prop_a, "A: original" + suffix)
        if show_b:
            self.prop_legend.addItem(self.prop_b, "B: steered" + suffix)
        vals = np.concatenate([a, b]) if show_b else np.asarray(a)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            lo, hi = float(vals.min()), float(vals.max())
            pad = max(0.5, 0.08 * (hi - lo))
            r.plot.setYRange(lo - pad, hi + pad, padding=0)
            self.set_message("prop", "")
        else:
            self.set_message("prop", f"{label}: undefined in this clip (silent or unvoiced)")

    def clear_property(self, message: str) -> None:
        self.prop_a.clear()
        self.prop_b.clear()
        self.prop_b.hide()
        self.prop_legend.clear()
        self.set_message("prop", message)

    def clear_features(self, message: str) -> None:
        self.img_heat.clear()
        self.heat_features = np.zeros(0, np.int64)
        self.rows["heat"].plot.getAxis("left").setTicks([[], []])
        self.set_message("heat", message)
        self.set_feature_lines(np.zeros(0), [])

    # -- playhead and selection --------------------------------------------------------------------
    def set_playhead(self, t: float, follow: bool = False) -> None:
        for r in self.rows.values():
            r.playhead.setValue(t)
        if follow:
            x0, x1 = self.rows["wave"].vb.viewRange()[0]
            if not (x0 <= t <= x1):
                w = x1 - x0
                self.rows["wave"].plot.setXRange(t - 0.05 * w, t + 0.95 * w, padding=0)

    def playhead(self) -> float:
        return float(self.rows["wave"].playhead.value())

    def set_selection(self, sel: tuple[float, float] | None, notify: bool = True) -> None:
        if sel is not None and sel[1] - sel[0] < 1e-3:
            sel = None
        self.selection = sel
        self._syncing = True
        try:
            for r in self.rows.values():
                if sel is None:
                    r.region.hide()
                else:
                    r.region.setRegion(sel)
                    r.region.show()
        finally:
            self._syncing = False
        if notify:
            self.selectionChanged.emit(sel)

    def _region_moved(self, row: _Row) -> None:
        if self._syncing or not row.region.isVisible():
            return
        a, b = row.region.getRegion()
        self.set_selection((max(0.0, float(a)), min(self.duration, float(b))))

    def _seek(self, t: float) -> None:
        self.seekRequested.emit(float(min(max(t, 0.0), self.duration)))

    def _select(self, a: float, b: float, finished: bool) -> None:
        self.set_selection((max(0.0, a), min(self.duration, b)), notify=finished)

    def _heat_row(self, y: float) -> None:
        i = int(math.floor(y))
        if 0 <= i < len(self.heat_features):
            self.featureActivated.emit(int(self.heat_features[i]))

    def zoom_all(self) -> None:
        self.rows["wave"].plot.setXRange(0, self.duration, padding=0)

