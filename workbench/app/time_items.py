"""Lean graphics items for the timelines: a curve and an image over time that draw only what is in
view, at screen resolution, and pan by moving pixels already drawn; and the shared time axis.

pyqtgraph's PlotDataItem and ImageItem redo per-item work on every pan: clipping re-sets the curve's
data, which drops its cached bounds (recomputed with nanmin/nanmax several times per frame), and the
image is scaled from its full length by Qt's raster engine. Here the data, its bounds and a min/max
(curves) or maximum (images) pyramid are fixed when the data is set. Each item keeps a strip of
rendered screen columns (`_Strip`) reaching past the view on both sides; `paint` blits the part in
view, unscaled, and renders only the columns a pan brings into the strip: about two points per pixel
for a curve, one image pixel per screen pixel, already coloured. A pan step then costs about the pixels
it uncovers, whatever the clip's length.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QStaticText, QTransform

from workbench.core.visuals import ColumnPyramid, WaveformPyramid

StripKey = tuple[float, float, float, int, int]  # m11, m22, dy, y0, y1: the zoom and the rows' placement


class _Strip:
    """Rendered screen columns [u0, u1) for one zoom and row placement, held at buffer columns
    [off, off + u1 - u0) of a wider buffer so that a pan adds columns in place and drops them by moving
    `off`, without copying what is kept. u = item x * m11 is the screen x less the view's offset
    (rounded to a pixel), so a pan moves pixels without changing them."""

    def __init__(self, key: StripKey, u0: int, pixels: np.ndarray, capacity: int, fmt: QImage.Format) -> None:
        self.key, self.fmt = key, fmt
        self.u0, self.u1 = u0, u0 + pixels.shape[1]
        self._allocate(max(capacity, pixels.shape[1]), pixels.shape[0])
        self.off = (self.buf.shape[1] - pixels.shape[1]) // 2
        self.buf[:, self.off : self.off + pixels.shape[1]] = pixels

    def _allocate(self, capacity: int, height: int) -> None:
        self.buf = np.zeros((height, capacity), np.uint32)  # the QImage's memory: kept while it lives
        self.image = QImage(self.buf.data, capacity, height, 4 * capacity, self.fmt)

    def reserve(self, left: int, right: int) -> None:
        """Room for `left` more columns before u0 and `right` after u1: the kept columns move to the
        middle of the buffer (or of a larger one) only when an end is reached."""
        n = self.u1 - self.u0
        if self.off >= left and self.off + n + right <= self.buf.shape[1]:
            return
        kept = self.buf[:, self.off : self.off + n].copy()
        need = n + left + right
        if need > self.buf.shape[1]:
            self._allocate(2 * need, self.buf.shape[0])
        self.off = left + (self.buf.shape[1] - need) // 2
        self.buf[:, self.off : self.off + n] = kept

    def prepend(self, pixels: np.ndarray) -> None:
        k = pixels.shape[1]
        self.reserve(k, 0)
        self.buf[:, self.off - k : self.off] = pixels
        self.off -= k
        self.u0 -= k

    def append(self, pixels: np.ndarray) -> None:
        k, n = pixels.shape[1], self.u1 - self.u0
        self.reserve(0, k)
        self.buf[:, self.off + n : self.off + n + k] = pixels
        self.u1 += k

    def crop(self, u0: int, u1: int) -> None:
        u0, u1 = max(u0, self.u0), min(u1, self.u1)
        self.off += u0 - self.u0
        self.u0, self.u1 = u0, u1


class _StripItem(pg.GraphicsObject):
    """Keeps a strip of rendered columns: a new zoom renders the view; a pan that comes within a quarter
    of a view of the strip's end renders the columns up to a view beyond it, and drops (without a copy)
    all but two views of what lies more than three views behind. Most pan steps render nothing."""

    FORMAT = QImage.Format.Format_RGB32

    def __init__(self) -> None:
        super().__init__()
        self._strip: _Strip | None = None

    def _render(self, key: StripKey, u0: int, u1: int) -> np.ndarray:
        """[y1 - y0, u1 - u0] uint32 pixels of screen columns u0..u1 (subclasses)."""
        raise NotImplementedError

    def _data_rect(self) -> QRectF:
        return self.boundingRect()

    def invalidate(self) -> None:
        self._strip = None
        self.update()

    def _paint_strip(self, p: QPainter, vis: QRectF) -> None:
        tr = p.transform()
        if vis.isEmpty() or tr.m11() <= 0 or tr.m12() or tr.m21():  # time runs left to right, unrotated
            return
        dev = tr.mapRect(vis)
        x0, x1 = math.floor(dev.left()), math.ceil(dev.right())
        y0, y1 = math.floor(dev.top()), math.ceil(dev.bottom())
        if x1 <= x0 or y1 <= y0:
            return
        shift = round(tr.dx())
        u0, u1 = x0 - shift, x1 - shift
        key: StripKey = (tr.m11(), tr.m22(), tr.dy(), y0, y1)
        data = self._data_rect()
        lo, hi = math.floor(data.left() * tr.m11()) - 2, math.ceil(data.right() * tr.m11()) + 2
        w = u1 - u0
        st = self._strip
        if st is None or st.key != key or u0 >= st.u1 or u1 <= st.u0:
            st = self._strip = _Strip(key, u0, self._render(key, u0, u1), 7 * w, self.FORMAT)
        else:
            if u0 - w // 4 < max(lo, st.u0):  # near the strip's left end: a view more to the left
                a = max(lo, u0 - w)
                if a < st.u0:
                    st.prepend(self._render(key, a, st.u0))
            if u1 + w // 4 > min(hi, st.u1):
                b = min(hi, u1 + w)
                if b > st.u1:
                    st.append(self._render(key, st.u1, b))
            if st.u0 < u0 - 3 * w or st.u1 > u1 + 3 * w:
                st.crop(u0 - 2 * w, u1 + 2 * w)
        p.save()
        p.resetTransform()
        p.drawImage(QPointF(x0, y0), st.image, QRectF(st.off + u0 - st.u0, 0, w, y1 - y0))
        p.restore()


class TimeCurve(pg.GraphicsObject):
    """A regularly sampled series over time (waveform, feature activation, property; NaN = gap), drawn by
    the `CurveLayer` of its row, not by itself (it is not added to the scene).

    `opts` carries the pen for pyqtgraph's legend sample (whose click toggles the curve's visibility);
    `xData`/`yData` give the whole series."""

    def __init__(self, pen: Any, name: str = "") -> None:
        super().__init__()
        self.setFlag(self.GraphicsItemFlag.ItemHasNoContents)
        self.opts: dict[str, Any] = {"pen": pg.mkPen(pen), "name": name, "antialias": False}
        # A dashed pen's pattern runs along the path from its start, which differs between the strips a
        # pan draws; the line is drawn solid and cut into dashes by screen column instead.
        self.dashed = self.opts["pen"].style() != Qt.PenStyle.SolidLine
        self.solid_pen = QPen(self.opts["pen"])
        self.solid_pen.setStyle(Qt.PenStyle.SolidLine)
        self.pyramid: WaveformPyramid | None = None
        self.bounds = QRectF()
        self.layer: CurveLayer | None = None

    def name(self) -> str:
        return str(self.opts["name"])

    def _changed(self) -> None:
        if self.layer is not None:
            self.layer.invalidate()

    def set_series(self, y: np.ndarray, rate: float, offset: float = 0.0) -> None:
        """Sample i of `y` at time offset + i / rate."""
        pyr = WaveformPyramid(np.asarray(y, np.float32), rate, offset)
        finite = pyr.x[np.isfinite(pyr.x)]
        self.pyramid = pyr if len(pyr.x) else None
        if self.pyramid is None:
            self.bounds = QRectF()
        else:
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            self.bounds = QRectF(offset, lo, max(pyr.duration, 1e-9), max(hi - lo, 1e-9))
        self._changed()

    def clear(self) -> None:
        self.pyramid = None
        self.bounds = QRectF()
        self._changed()

    def setVisible(self, visible: bool) -> None:  # noqa: N802 (Qt naming)
        super().setVisible(visible)
        self._changed()

    def setZValue(self, z: float) -> None:  # noqa: N802
        super().setZValue(z)
        self._changed()

    @property
    def xData(self) -> np.ndarray | None:  # noqa: N802 (pyqtgraph naming)
        return None if self.pyramid is None else self.pyramid.times()

    @property
    def yData(self) -> np.ndarray | None:  # noqa: N802
        return None if self.pyramid is None else self.pyramid.x

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(self.bounds)

    def paint(self, p: QPainter, *args: Any) -> None:
        pass

    def draw(self, qp: QPainter, key: StripKey, u0: int, u1: int) -> None:
        """Stroke the columns u0..u1 of this curve with `qp` (set up for those columns by the layer)."""
        assert self.pyramid is not None
        # a pixel beyond each end, so a line crossing into the next columns is drawn the same in both
        t, y = self.pyramid.window((u0 - 1) / key[0], (u1 + 1) / key[0], (u1 - u0 + 2) // 2)
        if len(t):
            qp.setPen(self.solid_pen)
            qp.drawPath(pg.arrayToQPath(t, y, connect="finite"))


class CurveLayer(_StripItem):
    """The curves of one row, drawn into one opaque strip on the row's background colour: a pan step
    blits one image per row instead of blending one per curve, which costs as much as stroking it."""

    def __init__(self, background: str) -> None:
        super().__init__()
        self.background = int(QColor(background).rgb())
        self.curves: list[TimeCurve] = []
        self._shown_curves: list[TimeCurve] = []  # visible, with data, in z order: set by invalidate
        self._rect = QRectF()  # their data bounds united

    def add(self, curve: TimeCurve) -> None:
        curve.layer = self
        self.curves.append(curve)
        self.invalidate()

    def remove(self, curve: TimeCurve) -> None:
        curve.layer = None
        self.curves.remove(curve)
        self.invalidate()

    def _data_rect(self) -> QRectF:
        return self._rect

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> None:  # noqa: N802, N803
        return None  # the row's range is set by the timeline, never from the curves

    def boundingRect(self) -> QRectF:  # noqa: N802
        # all the row's height: the layer paints the view's height (lines may leave their data bounds)
        r = self._data_rect()
        return QRectF(r.left(), -1e9, r.width(), 2e9) if not r.isNull() else QRectF()

    def invalidate(self) -> None:
        """A curve's data, visibility or z order changed: Qt asks for the bounds many times a frame, so
        they are worked out here, once."""
        self.prepareGeometryChange()
        self._shown_curves = sorted((c for c in self.curves if c.pyramid is not None and c.isVisible()),
                                    key=lambda c: c.zValue())
        r = QRectF()
        for c in self._shown_curves:
            r = r.united(c.bounds)
        self._rect = r
        super().invalidate()

    def _render(self, key: StripKey, u0: int, u1: int) -> np.ndarray:
        m11, m22, dy, y0, y1 = key
        w, h = u1 - u0, y1 - y0
        pixels = np.full((h, w), self.background, np.uint32)
        img = QImage(pixels.data, w, h, 4 * w, self.FORMAT)
        qp = QPainter(img)
        to_strip = QTransform(m11, 0.0, 0.0, m22, -u0, dy - y0)
        for c in self._shown_curves:
            if not c.dashed:
                qp.setTransform(to_strip)
                c.draw(qp, key, u0, u1)
                continue
            # dashes counted from screen columns, so strips drawn apart still line up
            line = np.zeros((h, w), np.uint32)
            limg = QImage(line.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
            lp = QPainter(limg)
            lp.setTransform(to_strip)
            c.draw(lp, key, u0, u1)
            lp.end()
            line[:, np.arange(u0, u1) % 8 >= 5] = 0
            qp.resetTransform()
            qp.drawImage(0, 0, limg)
        qp.end()
        return pixels

    def paint(self, p: QPainter, *args: Any) -> None:
        vr = self.viewRect()
        r = self._data_rect()
        if vr is not None and not r.isNull():
            left, right = max(vr.left(), r.left()), min(vr.right(), r.right())
            self._paint_strip(p, QRectF(left, vr.top(), right - left, vr.height()))


def lookup_table(cmap: pg.ColorMap) -> np.ndarray:
    """256 opaque colours of `cmap` as 0xAARRGGBB (QImage's Format_RGB32 in memory)."""
    rgb = np.asarray(cmap.getLookupTable(0.0, 1.0, 256, alpha=False), np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


class TimeImage(_StripItem):
    """An image [rows, cols] placed on a rectangle (x = time), coloured once through a 256-colour map
    and drawn by sampling, for each screen pixel in view, the most extreme of the columns under it."""

    def __init__(self, cmap: pg.ColorMap, diverging: bool = False) -> None:
        super().__init__()
        self.lut = lookup_table(cmap)
        self.diverging = diverging  # zoomed out, keep the value farthest from the middle colour, not the largest
        self.image: np.ndarray | None = None
        self.levels = (0.0, 1.0)
        self.pyramid: ColumnPyramid | None = None
        self._rect = QRectF()

    def setImage(self, image: np.ndarray, levels: tuple[float, float], rect: QRectF) -> None:  # noqa: N802
        """`image` [rows, cols]: row 0 at the rect's top (y = rect.top()), columns across its width."""
        img = np.asarray(image, np.float32)
        lo, hi = float(levels[0]), float(levels[1])
        scale = 255.0 / max(hi - lo, 1e-12)
        idx = np.clip((np.nan_to_num(img, nan=lo) - lo) * scale, 0, 255).astype(np.uint8)
        self.prepareGeometryChange()
        self.image = img
        self.levels = (lo, hi)
        self.pyramid = ColumnPyramid(idx, centre=127.5 if self.diverging else None)
        self._rect = QRectF(rect)
        self.invalidate()

    def clear(self) -> None:
        self.prepareGeometryChange()
        self.image = None
        self.pyramid = None
        self._rect = QRectF()
        self.invalidate()

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> tuple[float, float] | None:  # noqa: N802, N803
        if self.pyramid is None:
            return None
        r = self._rect
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(self._rect)

    def _render(self, key: StripKey, u0: int, u1: int) -> np.ndarray:
        assert self.pyramid is not None
        m11, m22, dy, y0, y1 = key
        r = self._rect
        n_rows, n_cols = self.pyramid.shape
        # each screen column's edges from its own u: the same pixels whatever piece of the strip is drawn
        edges = (np.arange(u0, u1 + 1) / m11 - r.left()) / r.width() * n_cols
        iy = (np.arange(y0, y1) + 0.5 - dy) / m22
        rows = np.clip(np.floor((iy - r.top()) / r.height() * n_rows), 0, n_rows - 1).astype(np.intp)
        idx = self.pyramid.sample(edges, rows, per_px=n_cols / (r.width() * m11))
        return np.take(self.lut, idx)  # faster than self.lut[idx]

    def paint(self, p: QPainter, *args: Any) -> None:
        vr = self.viewRect()
        if self.pyramid is not None and vr is not None and not self._rect.isEmpty():
            self._paint_strip(p, vr.intersected(self._rect))


def nice_step(x: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is >= x."""
    if not x > 0 or not math.isfinite(x):
        return 1.0
    e = 10.0 ** math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * e >= x * (1 - 1e-9):
            return m * e
    return 10.0 * e


class TimeAxis(pg.AxisItem):
    """The timelines' shared time axis (bottom row): a label about every 100 px on a 1-2-5 step, minor
    ticks between. pyqtgraph's general axis measures every label of up to three tick levels through a
    painter and records them in a QPicture on each pan step, a tenth of a frame; this one lays out each
    distinct label once (QStaticText) and draws straight to the screen."""

    MAJOR_PX = 100.0

    def __init__(self) -> None:
        super().__init__("bottom")
        self._font = QFont()
        self._metrics = QFontMetrics(self._font)
        self._text_size: dict[str, tuple[float, float]] = {}
        self._static: dict[str, QStaticText] = {}

    def _size(self, text: str) -> tuple[float, float]:
        size = self._text_size.get(text)
        if size is None:
            r = self._metrics.boundingRect(text)
            size = self._text_size[text] = (float(r.width() + 2), float(r.height()))
        return size

    def paint(self, p: QPainter, *args: object) -> None:
        laid = self._layout()
        if laid is None:
            return
        (pen, a, b), tick_groups, texts = laid
        p.setPen(pen)
        p.drawLine(a, b)
        for tick_pen, lines in tick_groups:
            p.setPen(tick_pen)
            p.drawLines(lines)
        p.setPen(self.textPen())
        p.setFont(self._font)
        for rect, _, text in texts:
            st = self._static.get(text)
            if st is None:
                st = self._static[text] = QStaticText(text)
                st.prepare(QTransform(), self._font)
            p.drawStaticText(rect.topLeft() + QPointF(1, 0), st)

    def generateDrawSpecs(self, p: object) -> object:  # noqa: N802 (Qt naming)
        """pyqtgraph's form of the layout: (axis line, [(pen, p1, p2) per tick], [(rect, flags, text)])."""
        laid = self._layout()
        if laid is None:
            return None
        axis_spec, tick_groups, texts = laid
        return axis_spec, [(pen, ln.p1(), ln.p2()) for pen, lines in tick_groups for ln in lines], texts

    def _layout(self) -> tuple[tuple[QPen, QPointF, QPointF], list[tuple[QPen, list[QLineF]]],
                               list[tuple[QRectF, Qt.AlignmentFlag, str]]] | None:
        bounds = self.mapRectFromParent(self.geometry())
        (v0, v1), width = self.range, bounds.width()
        if not v1 > v0 or width <= 0:
            return None
        font = self.style["tickFont"] or self.font()
        if font != self._font:
            self._font, self._metrics = QFont(font), QFontMetrics(font)
            self._text_size.clear()
            self._static.clear()
        scale = width / (v1 - v0)
        major = nice_step(self.MAJOR_PX / scale)
        minor = major / (4 if round(major / 10 ** math.floor(math.log10(major))) == 2 else 5)
        top, length = bounds.top(), float(self.style["tickLength"])
        axis_spec = (self.pen(), QPointF(bounds.left(), top), QPointF(bounds.right(), top))
        major_pen, minor_pen = self.tickPen(), QPen(self.tickPen())
        faded = QColor(minor_pen.color())
        faded.setAlpha(110)
        minor_pen.setColor(faded)
        ks = np.arange(math.ceil(v0 / minor - 1e-9), math.floor(v1 / minor + 1e-9) + 1)
        values = ks * minor
        xs = bounds.left() + (values - v0) * scale
        is_major = np.abs(values / major - np.round(values / major)) < 1e-6
        ticks = [(major_pen, [QLineF(x, top, x, top + length) for x in xs[is_major].tolist()]),
                 (minor_pen, [QLineF(x, top, x, top + length / 2) for x in xs[~is_major].tolist()])]
        decimals = max(0, -math.floor(math.log10(major) + 1e-9))
        texts: list[tuple[QRectF, Qt.AlignmentFlag, str]] = []
        gap = length + self.style["tickTextOffset"][1]
        flags = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        for x, v in zip(xs[is_major].tolist(), values[is_major].tolist(), strict=True):
            text = f"{round(v / major) * major:.{decimals}f}"
            w, h = self._size(text)
            # centred on its tick, or moved inside the axis at either end (0 stays labelled)
            left = min(max(x - w / 2, bounds.left()), bounds.right() - w)
            rect = QRectF(left, top + gap, w, h)
            if not texts or texts[-1][0].right() < rect.left():
                texts.append((rect, flags, text))
        return axis_spec, ticks, texts
