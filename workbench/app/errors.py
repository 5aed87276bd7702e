"""Logging to a file in the platform's log folder, one-line error dialogs, and an exception hook.

A user should see one clear dialog for a problem, never a stack of them, and the details should be
somewhere they can send: the hook logs the full traceback and shows a single message box naming the
log file. WorkbenchErrors (bad input) show their own one-line message; anything else is a bug.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from workbench.core.errors import WorkbenchError
from workbench.core.userdirs import log_dir

log = logging.getLogger("workbench.app")
_log_file: Path | None = None


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Rotating log file (1 MB × 3); returns its path, or None if the folder is not writable."""
    global _log_file
    if _log_file is not None:
        return _log_file
    root = logging.getLogger("workbench")
    root.setLevel(level)
    try:
        d = log_dir()
        d.mkdir(parents=True, exist_ok=True)
        path = d / "workbench.log"
        h = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return None
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    root.addHandler(h)
    _log_file = path
    return path


def log_file() -> Path | None:
    return _log_file


def show_error(parent: QWidget | None, message: str, title: str = "Error") -> None:
    """The one way the app shows a user-facing error (tests monkeypatch QMessageBox to capture it)."""
    log.warning("%s: %s", title, message)
    QMessageBox.critical(parent, title, message)


class ExceptionHook(QObject):
    """Installed as sys.excepthook and threading.excepthook while the app runs."""

    caught = Signal(str, str)  # (one-line message, details)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self.parent_widget = parent_widget
        self._showing = False
        self._suppressed = 0
        self._prev_hook = sys.excepthook
        self._prev_thread_hook = threading.excepthook
        self.caught.connect(self._show)
        self.count = 0

    def install(self) -> None:
        sys.excepthook = self._hook
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        sys.excepthook = self._prev_hook
        threading.excepthook = self._prev_thread_hook

    def _hook(self, et: type[BaseException], ev: BaseException, tb: TracebackType | None) -> None:
        if issubclass(et, KeyboardInterrupt):
            app = QApplication.instance()
            if app is not None:
                app.quit()
            return
        self.count += 1
        details = "".join(traceback.format_exception(et, ev, tb))
        if isinstance(ev, WorkbenchError):
            msg = ev.message
            log.warning("unhandled user error: %s", msg)
        else:
            msg = f"Unexpected error: {et.__name__}: {ev}".splitlines()[0][:300]
            log.error("unhandled exception:\n%s", details)
        self.caught.emit(msg, details)  # queued to the GUI thread if raised elsewhere

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self._hook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)

    def _show(self, msg: str, details: str) -> None:
        if self._showing:  # one dialog at a time; the rest are in the log
            self._suppressed += 1
            return
        self._showing = True
        try:
            lf = log_file()
            text = msg + (f"\n\nDetails were written to {lf}" if lf else "")
            box = QMessageBox(QMessageBox.Icon.Critical, "Something went wrong", text,
                              QMessageBox.StandardButton.Ok, self.parent_widget)
            box.setDetailedText(details[-8000:])
            box.exec()
        finally:
            # Let errors raised while the dialog was up (often the same cause) go by quietly.
            QTimer.singleShot(500, self._reset)

    def _reset(self) -> None:
        self._showing = False
