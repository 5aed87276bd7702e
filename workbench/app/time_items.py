"""Lean graphics items for the timelines: a curve and an image over time that draw only what is in
view, at screen resolution.

pyqtgraph's PlotDataItem and ImageItem redo per-item work on every pan: clipping re-sets the curve's
data, which drops its cached bounds (recomputed with nanmin/nanmax several times per frame), and the
image is scaled from its full length by Qt's raster engine. Here the data, its bounds and a min/max
(curves) or maximum (images) pyramid are fixed when the data is set, and `paint` takes from the pyramid
just the samples the view needs: about two points per pixel for a curve; one image pixel per screen
pixel, already coloured, blitted without scaling. Panning then costs the pixels drawn, not the clip's
length, and changes nothing but the view's transform.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QImage, QPainter

from workbench.core.visuals import ColumnPyramid, WaveformPyramid


class TimeCurve(pg.GraphicsObject):
    """A regularly sampled series over time (waveform, feature activation, property; NaN = gap).

    `opts` carries the pen for pyqtgraph's legend sample; `xData`/`yData` give the whole series."""

    def __init__(self, pen: Any, name: str = "") -> None:
        super().__init__()
        self.opts: dict[str, Any] = {"pen": pg.mkPen(pen), "name": name, "antialias": False}
        self.pyramid: WaveformPyramid | None = None
        self._bounds = QRectF()
        self._path_key: tuple[float, float, int] | None = None
        self._path: Any = None

    def name(self) -> str:
        return str(self.opts["name"])

    def set_series(self, y: np.ndarray, rate: float, offset: float = 0.0) -> None:
        """Sample i of `y` at time offset + i / rate."""
        self.prepareGeometryChange()
        pyr = WaveformPyramid(np.asarray(y, np.float32), rate, offset)
        finite = pyr.x[np.isfinite(pyr.x)]
        self.pyramid = pyr if len(pyr.x) else None
        if self.pyramid is None:
            self._bounds = QRectF()
        else:
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            self._bounds = QRectF(offset, lo, max(pyr.duration, 1e-9), max(hi - lo, 1e-9))
        self._path_key = None
        self.update()

    def clear(self) -> None:
        self.prepareGeometryChange()
        self.pyramid = None
        self._bounds = QRectF()
        self._path_key = None
        self.update()

    @property
    def xData(self) -> np.ndarray | None:  # noqa: N802 (pyqtgraph naming)
        return None if self.pyramid is None else self.pyramid.times()

    @property
    def yData(self) -> np.ndarray | None:  # noqa: N802
        return None if self.pyramid is None else self.pyramid.x

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> tuple[float, float] | None:  # noqa: N802, N803
        if self.pyramid is None:
            return None
        b = self._bounds
        return (b.left(), b.right()) if ax == 0 else (b.top(), b.bottom())

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(self._bounds)

    def paint(self, p: QPainter, *args: Any) -> None:
        if self.pyramid is None:
            return
        vr = self.viewRect()
        if vr is None:
            return
        pixels = max(16, int(abs(p.transform().m11()) * vr.width()))
        key = self._path_key
        # The path covers the view and one view-width each side: pan steps within that reuse it.
        if key is None or key[2] != pixels or not (key[0] <= vr.left() and vr.right() <= key[1]):
            w = vr.width()
            key = (vr.left() - w, vr.right() + w, pixels)
            t, y = self.pyramid.window(key[0], key[1], 3 * pixels // 2)
            self._path = pg.arrayToQPath(t, y, connect="finite") if len(t) else None
            self._path_key = key
        if self._path is not None:
            p.setPen(self.opts["pen"])
            p.drawPath(self._path)


def lookup_table(cmap: pg.ColorMap) -> np.ndarray:
    """256 opaque colours of `cmap` as 0xAARRGGBB (QImage's Format_RGB32 in memory)."""
    rgb = np.asarray(cmap.getLookupTable(0.0, 1.0, 256, alpha=False), np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


class TimeImage(pg.GraphicsObject):
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
        self._cache_key: tuple[Any, ...] | None = None
        self._cache: tuple[QImage, np.ndarray, QPointF] | None = None

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
        self._cache_key = None
        self.update()

    def clear(self) -> None:
        self.prepareGeometryChange()
        self.image = None
        self.pyramid = None
        self._rect = QRectF()
        self._cache_key = None
        self._cache = None
        self.update()

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> tuple[float, float] | None:  # noqa: N802, N803
        if self.pyramid is None:
            return None
        r = self._rect
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(self._rect)

    def _render(self, tr: Any, vis: QRectF) -> tuple[QImage, np.ndarray, QPointF] | None:
        assert self.pyramid is not None
        dev = tr.mapRect(vis)
        x0, x1 = math.floor(dev.left()), math.ceil(dev.right())
        y0, y1 = math.floor(dev.top()), math.ceil(dev.bottom())
        w, h = x1 - x0, y1 - y0
        if w <= 0 or h <= 0:
            return None
        r = self._rect
        n_rows, n_cols = self.pyramid.shape
        # device pixel -> item coordinate (an axis-aligned transform: scale and offset per axis)
        ix0 = (x0 - tr.dx()) / tr.m11()
        ix1 = (x1 - tr.dx()) / tr.m11()
        c0, c1 = sorted(((ix0 - r.left()) / r.width() * n_cols, (ix1 - r.left()) / r.width() * n_cols))
        iy = (np.arange(y0, y1) + 0.5 - tr.dy()) / tr.m22()
        rows = np.clip(np.floor((iy - r.top()) / r.height() * n_rows), 0, n_rows - 1).astype(np.intp)
        idx = self.pyramid.sample(c0, c1, w, rows)
        if tr.m11() < 0:
            idx = idx[:, ::-1]
        argb = np.ascontiguousarray(self.lut[idx])
        img = QImage(argb.data, w, h, 4 * w, QImage.Format.Format_RGB32)
        return img, argb, QPointF(x0, y0)

    def paint(self, p: QPainter, *args: Any) -> None:
        if self.pyramid is None or self._rect.isEmpty():
            return
        vr = self.viewRect()
        if vr is None:
            return
        vis = vr.intersected(self._rect)
        if vis.isEmpty():
            return
        tr = p.transform()
        key = (tr.m11(), tr.m22(), tr.dx(), tr.dy(), vis.left(), vis.top(), vis.width(), vis.height())
        if key != self._cache_key:  # a repaint with the view unchanged (playhead moving) reuses the pixels
            self._cache = self._render(tr, vis)
            self._cache_key = key
        if self._cache is None:
            return
        img, _, at = self._cache
        p.save()
        p.resetTransform()
        p.drawImage(at, img)
        p.restore()
