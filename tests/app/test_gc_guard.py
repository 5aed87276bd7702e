"""While a window is open, Python's cycle collector runs only in the GUI thread (workbench.app.gc_guard):
a worker thread that allocates never destroys Qt objects. That once deadlocked the app (a worker's
collection ran a QMenu destructor that waited for the interpreter lock the GUI thread held)."""

from __future__ import annotations

import gc
import threading
from typing import Any

from PySide6.QtCore import QObject

from workbench.app import gc_guard


class Cyclic:
    """Garbage only the cycle collector frees, holding a Qt object; remembers the thread that freed it."""

    freed_in: list[str] = []

    def __init__(self) -> None:
        self.me = self
        self.qobj = QObject()

    def __del__(self) -> None:
        Cyclic.freed_in.append(threading.current_thread().name)


def test_cycles_are_collected_in_the_gui_thread_while_a_window_is_open(window: Any, qtbot: Any) -> None:
    assert gc_guard.active() and not gc.isenabled()
    Cyclic.freed_in.clear()
    Cyclic()  # unreachable at once, but only a cycle collection frees it

    kept: list[Any] = []

    def churn() -> None:  # far more live container allocations than the generation-0 threshold
        kept.append([[i] for i in range(50 * gc.get_threshold()[0])])

    t = threading.Thread(target=churn, name="worker-churn")
    t.start()
    t.join()
    assert Cyclic.freed_in == []  # the worker did not collect it
    qtbot.waitUntil(lambda: Cyclic.freed_in != [], timeout=5000)  # the GUI thread's timer did
    kept.clear()
    assert Cyclic.freed_in == [threading.main_thread().name]


def test_closing_the_last_window_restores_automatic_collection(qtbot: Any) -> None:
    from workbench.app.main_window import MainWindow
    from workbench.core.settings import load_settings

    was = gc.isenabled()
    a = MainWindow(load_settings(), use_audio_device=False)
    b = MainWindow(load_settings(), use_audio_device=False)
    for w in (a, b):
        qtbot.addWidget(w)
    assert not gc.isenabled()
    a.shutdown()
    assert not gc.isenabled()  # b still open
    b.shutdown()
    b.shutdown()  # twice is harmless
    assert gc.isenabled() == was and not gc_guard.active()
