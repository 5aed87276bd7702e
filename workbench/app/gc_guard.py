"""Python's cyclic garbage collector, run only in the GUI thread while a window is open.

Python collects cycles in whatever thread happens to allocate when a generation fills up. If that is a
worker thread (training, decoding) and the garbage holds Qt objects (a closed dialog, a replaced menu),
their C++ destructors run in the worker: one takes a Qt lock and then waits for the interpreter lock,
which the GUI thread holds while it waits for that Qt lock. The app froze that way (a training run
started after a window had dropped a menu). So while a window is open, automatic collection is off and
a timer in the GUI thread collects instead, generation by generation, as the interpreter would (the
practice of pyqtgraph's GarbageCollector). Closing the last window turns automatic collection back on
after one full collection in the GUI thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500

_guard: _MainThreadGC | None = None
_users = 0


class _MainThreadGC(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.was_enabled = gc.isenabled()
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        gc.disable()
        self.timer.start()

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds (what the interpreter does)."""
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if c0 <= t0:
            return
        gen = 2 if (c1 > t1 and c2 > t2) else 1 if c1 > t1 else 0
        gc.collect(gen)

    def stop(self) -> None:
        self.timer.stop()
        gc.collect()
        if self.was_enabled:
            gc.enable()


def acquire() -> None:
    """A window opened: collect in the GUI thread from now on (call from the GUI thread)."""
    global _guard, _users
    _users += 1
    if _guard is None:
        _guard = _MainThreadGC()


def release() -> None:
    """A window closed; the last one collects everything once here and restores automatic collection."""
    global _guard, _users
    _users = max(0, _users - 1)
    if _users == 0 and _guard is not None:
        guard, _guard = _guard, None
        guard.stop()
        guard.deleteLater()


def active() -> bool:
    return _guard is not None
