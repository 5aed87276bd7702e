"""Render the icon set from the SVG: packaging/icons/hicolor/<N>x<N>/apps/<id>.png for N in SIZES,
plus the SVG itself as hicolor/scalable. Run after editing the SVG (the PNGs are committed):

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icons.py
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

APP_ID = "io.github.sae_audio_workbench"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
HERE = Path(__file__).resolve().parent


def render(svg: Path, out_root: Path, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    # A QApplication (not just a QGuiApplication), so a test process can still open widgets afterwards.
    _app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    written = []
    for n in sizes:
        img = QImage(n, n, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(p)
        p.end()
        dst = out_root / "hicolor" / f"{n}x{n}" / "apps" / f"{APP_ID}.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not img.save(str(dst), "PNG"):
            raise SystemExit(f"{dst}: could not write")
        written.append(dst)
    scalable = out_root / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(svg, scalable)
    return written


if __name__ == "__main__":
    for path in render(HERE / "icons" / f"{APP_ID}.svg", HERE / "icons"):
        print(path.relative_to(HERE))
