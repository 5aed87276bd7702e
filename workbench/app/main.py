"""`workbench gui`: start the app (or, with --smoke-test, open it, exercise it, and exit).

The smoke test opens the real main window with the defaults, waits for every view to fill, applies an
edit to the clip's most active feature, waits for the steered clip to be decoded, prints one summary
line and exits 0; any failure prints one ``error: …`` line and exits 2 (the CLI contract).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def _style(app: object) -> None:
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    p = QPalette()
    base, window, text = QColor(30, 30, 30), QColor(42, 42, 42), QColor(225, 225, 225)
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor(36, 36, 36))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor(50, 50, 50))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, window)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.Highlight, QColor(230, 130, 40))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(0, 0, 0))
    p.setColor(QPalette.ColorRole.Link, QColor(255, 160, 70))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    app.setPalette(p)


def make_app() -> object:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("SAE Audio Workbench")
        app.setOrganizationName("sae-audio-workbench")
        _style(app)
    return app


def _route_qt_messages() -> object:
    """Qt's own warnings (e.g. the offscreen platform's "does not support propagateSizeHints") go to
    the log file, not the terminal, so stderr carries only our lines."""
    import logging

    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qlog = logging.getLogger("workbench.qt")
    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}

    def handler(kind: QtMsgType, _ctx: object, msg: str) -> None:
        qlog.log(levels.get(kind, logging.WARNING), "%s", msg)

    return qInstallMessageHandler(handler)


def _wait(app: object, cond: object, timeout: float) -> bool:
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication) and callable(cond)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if cond():
            return True
        time.sleep(0.01)
    return False


def run_app(audio: str | None = None, codec: str | None = None, sae: str | None = None, smoke_test: bool = False) -> int:
    if smoke_test and not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from workbench.app.errors import ExceptionHook, setup_logging
    from workbench.app.main_window import MainWindow
    from workbench.core.settings import load_settings

    setup_logging()
    app = make_app()
    previous_handler = _route_qt_messages()
    settings = load_settings()
    win = MainWindow(settings, use_audio_device=not smoke_test, dialogs=not smoke_test, warm_up=not smoke_test)
    hook = ExceptionHook(win)
    hook.install()
    try:
        win.show()
        if settings.problem:
            win.statusBar().showMessage(settings.problem, 15000)
        win.start(audio, codec, sae)
        if smoke_test:
            return _smoke(app, win)
        return int(app.exec())  # type: ignore[attr-defined]
    finally:
        hook.uninstall()
        from PySide6.QtCore import qInstallMessageHandler

        qInstallMessageHandler(previous_handler)  # type: ignore[arg-type]
        if win.isVisible():
            win.close()
        else:
            win.shutdown()


def _smoke(app: object, win: object) -> int:
    from workbench.app.main_window import MainWindow
    from workbench.core.steering import Edit

    assert isinstance(win, MainWindow)
    t0 = time.monotonic()

    def fail(msg: str) -> int:
        print(f"error: smoke test: {msg}", file=sys.stderr)
        return 2

    if not _wait(app, lambda: not win.loading, 300):
        return fail("loading did not finish within 300 s")
    if win.errors or win.ws.analysis is None:
        return fail(win.errors[-1] if win.errors else "nothing was loaded")
    load_s = time.monotonic() - t0
    views = win.populated_views()
    if win.ws.sae is None:
        return fail(f"no SAE loaded ({win.statusBar().currentMessage() or 'see the log'})")
    missing = [k for k, v in views.items() if not v]
    if missing:
        return fail(f"views not populated: {', '.join(missing)}")
    a = win.ws.analysis
    assert a.summary is not None
    feat = int(np.argmax(a.summary.clip_mean))
    win.add_slider(feat)
    win.set_edit(Edit(feat, "scale", 0.0))
    if not _wait(app, lambda: win.ws.steered_is_current, 120):
        return fail("the steered clip was not decoded within 120 s")
    st = win.ws.steered
    assert st is not None
    diff = st.clip.samples - a.decoded.samples
    rms = float(np.sqrt(np.mean(diff**2)) + 1e-12)
    ref = float(np.sqrt(np.mean(a.decoded.samples**2)) + 1e-12)
    if win.errors:
        return fail(win.errors[-1])
    print(f"smoke test ok: codec {win.ws.codec_id}, SAE {win.ws.sae.name} ({win.ws.sae.d_sae} features), "
          f"clip '{a.name}' {a.duration:.1f} s, {sum(views.values())}/{len(views)} views populated, "
          f"feature {feat} scale=0 gave a difference of {20 * np.log10(rms / ref):.1f} dB re the clip, "
          f"ready in {load_s:.1f} s")
    return 0
