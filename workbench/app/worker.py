"""The app's one background-work pattern (Orange-style): a `Task` runs `fn(job)` in its own QThread.

`fn` is plain Python from the core; it reports through its `JobControl` (progress, partial results)
and checks for pause/cancel at every step. The task turns those reports into Qt signals, which Qt
delivers queued on the GUI thread, where all widgets and the model are touched. Training, caching,
clip analysis, re-steering and export all use it.

`LatestWins` adds napari's slicer rule on top: snapshot a request on the GUI thread, compute off-thread,
apply on the GUI thread, and when requests arrive faster than they compute, cancel the stale one and
run only the newest.

Every live task is in `live_tasks()` so a window can cancel and join them on close, and the tests can
fail when one is left behind.

Lifetime: tasks have no Qt parent and are never `deleteLater`-ed (PySide crashes when a parent that
owns a deleteLater-ed child is collected). The module keeps a reference while a task runs and until
one event-loop turn after its last signal, so Python never frees a QThread that is still running or
inside its own slot.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QThread, QTimer, Signal

from workbench.core.errors import WorkbenchError
from workbench.core.jobs import Cancelled, JobControl

log = logging.getLogger(__name__)

_LIVE: set[Task] = set()
_RETIRED: set[Task] = set()


def live_tasks() -> list[Task]:
    return list(_LIVE)


class Task(QThread):
    progress = Signal(float, str)
    partial = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)  # one line for the user; the traceback of a bug goes to the log
    cancelled = Signal()
    ended = Signal()  # after exactly one of succeeded / failed / cancelled

    PROGRESS_INTERVAL = 0.05  # seconds: progress signals are thinned so a fast loop cannot flood the GUI

    def __init__(self, fn: Callable[[JobControl], Any], name: str = "task") -> None:
        super().__init__()
        self.fn = fn
        self.name = name
        self.setObjectName(f"task-{name}")
        self.job = JobControl(on_progress=self._on_progress, on_partial=self.partial.emit)
        self._last_progress = 0.0
        self.result: Any = None
        self.error: str | None = None
        self.outcome: str | None = None  # "succeeded" / "failed" / "cancelled"
        self.finished.connect(self._on_thread_finished)

    # -- control (GUI thread) --------------------------------------------------------------------
    def cancel(self) -> None:
        self.job.cancel()

    def pause(self) -> None:
        self.job.pause()

    def resume(self) -> None:
        self.job.resume()

    def start_task(self) -> Task:
        _LIVE.add(self)
        self.start()
        return self

    # -- worker thread ---------------------------------------------------------------------------
    def _on_progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_progress >= self.PROGRESS_INTERVAL:
            self._last_progress = now
            self.progress.emit(fraction, message)

    def run(self) -> None:
        try:
            self.job.check()
            self.result = self.fn(self.job)
            self.outcome = "succeeded"
        except Cancelled:
            self.outcome = "cancelled"
        except WorkbenchError as exc:
            self.error, self.outcome = exc.message, "failed"
        except MemoryError:
            self.error, self.outcome = "out of memory: try a shorter clip or a smaller model", "failed"
            log.exception("task %s ran out of memory", self.name)
        except Exception as exc:
            self.error, self.outcome = f"{type(exc).__name__}: {exc}".splitlines()[0][:300], "failed"
            log.error("task %s failed:\n%s", self.name, traceback.format_exc())

    # -- back on the GUI thread -----------------------------------------------------------------
    def _on_thread_finished(self) -> None:
        self.wait()
        _LIVE.discard(self)
        if self.outcome == "succeeded":
            self.succeeded.emit(self.result)
        elif self.outcome == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(self.error or "failed")
        self.ended.emit()
        _RETIRED.add(self)
        QTimer.singleShot(0, lambda t=self: _RETIRED.discard(t))


def start_task(fn: Callable[[JobControl], Any], name: str,
               on_done: Callable[[Any], None] | None = None, on_error: Callable[[str], None] | None = None,
               on_progress: Callable[[float, str], None] | None = None) -> Task:
    t = Task(fn, name)
    if on_done is not None:
        t.succeeded.connect(on_done)
    if on_error is not None:
        t.failed.connect(on_error)
    if on_progress is not None:
        t.progress.connect(on_progress)
    return t.start_task()


def shutdown_tasks(tasks: list[Task] | None = None, timeout: float = 5.0) -> bool:
    """Cancel and join tasks (all live ones by default); True if all stopped in time."""
    tasks = live_tasks() if tasks is None else tasks
    for t in tasks:
        t.cancel()
    ok = True
    end = time.monotonic() + timeout
    for t in tasks:
        ms = max(0, int((end - time.monotonic()) * 1000))
        if t.isRunning() and not t.wait(ms):
            ok = False
            log.warning("task %s did not stop within %.1f s", t.name, timeout)
        else:
            _LIVE.discard(t)
    return ok


class LatestWins(QObject):
    """Newest-request-wins recompute: at most one task runs; a newer request cancels it.

    `compute(request, job)` runs off-thread; `partial` and `result` signals carry (request, value) and
    are emitted only for the newest request, so a view never shows a stale result over a fresh one.
    """

    partial = Signal(object, object)
    progress = Signal(float, str)
    result = Signal(object, object)
    error = Signal(object, str)
    idle = Signal()

    def __init__(self, compute: Callable[[Any, JobControl], Any], name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.compute = compute
        self.name = name
        self._task: Task | None = None
        self._pending: Any = None
        self._has_pending = False

    @property
    def busy(self) -> bool:
        return self._task is not None or self._has_pending

    def submit(self, request: Any) -> None:
        self._pending, self._has_pending = request, True
        if self._task is None:
            self._start_next()
        else:
            self._task.cancel()

    def cancel(self) -> None:
        self._has_pending, self._pending = False, None
        if self._task is not None:
            self._task.cancel()

    def _start_next(self) -> None:
        req, self._pending, self._has_pending = self._pending, None, False
        compute = self.compute
        task = Task(lambda job: compute(req, job), self.name)
        task.partial.connect(lambda v, r=req: self._on_partial(r, v))
        task.progress.connect(self._on_progress)
        task.succeeded.connect(lambda v, r=req: self._on_result(r, v))
        task.failed.connect(lambda m, r=req: self._on_error(r, m))
        task.ended.connect(self._on_ended)
        self._task = task
        task.start_task()

    def _on_partial(self, req: Any, value: Any) -> None:
        if not self._has_pending and self._alive():
            self.partial.emit(req, value)

    def _on_progress(self, fraction: float, message: str) -> None:
        if not self._has_pending and self._alive():
            self.progress.emit(fraction, message)

    def _on_result(self, req: Any, value: Any) -> None:
        if not self._has_pending and self._alive():
            self.result.emit(req, value)

    def _on_error(self, req: Any, message: str) -> None:
        if not self._has_pending and self._alive():
            self.error.emit(req, message)

    def _alive(self) -> bool:
        # A task that finished just before its owner (a window) was deleted still delivers its signals,
        # queued, afterwards: the owner's Python side outlives the Qt object it can no longer emit from.
        return shiboken6.isValid(self)

    def _on_ended(self) -> None:
        self._task = None
        if not self._alive():
            return
        if self._has_pending:
            self._start_next()
        else:
            self.idle.emit()
