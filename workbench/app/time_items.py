"""Lean graphics items for the timelines: a curve and an image over time that draw only what is in
view, at screen resolution, and pan by moving pixels already drawn.

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
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QTransform

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

    def add(self, curve: TimeCurve) -> None:
        curve.layer = self
        self.curves.append(curve)
        self.invalidate()

    def remove(self, curve: TimeCurve) -> None:
        curve.layer = None
        self.curves.remove(curve)
        self.invalidate()

    def _shown(self) -> list[TimeCurve]:
        return sorted((c for c in self.curves if c.pyramid is not None and c.isVisible()), key=lambda c: c.zValue())

    def _data_rect(self) -> QRectF:
        r = QRectF()
        for c in self._shown():
            r = r.united(c.bounds)
        return r

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> None:  # noqa: N802, N803
        return None  # the row's range is set by the timeline, never from the curves

    def boundingRect(self) -> QRectF:  # noqa: N802
        # all the row's height: the layer paints the view's height (lines may leave their data bounds)
        r = self._data_rect()
        return QRectF(r.left(), -1e9, r.width(), 2e9) if not r.isNull() else QRectF()

    def invalidate(self) -> None:
        self.prepareGeometryChange()
        super().invalidate()

    def _render(self, key: StripKey, u0: int, u1: int) -> np.ndarray:
        m11, m22, dy, y0, y1 = key
        w, h = u1 - u0, y1 - y0
        pixels = np.full((h, w), self.background, np.uint32)
        img = QImage(pixels.data, w, h, 4 * w, self.FORMAT)
        qp = QPainter(img)
        to_strip = QTransform(m11, 0.0, 0.0, m22, -u0, dy - y0)
        for c in self._shown():
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
