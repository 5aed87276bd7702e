"""The one worker pattern: results, errors and cancel of `Task`; newest-wins of `LatestWins`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from workbench.app.worker import LatestWins, Task, live_tasks
from workbench.core.errors import UsageError
from workbench.core.jobs import JobControl


def test_task_reports_progress_partials_and_result(qtbot: Any) -> None:
    def work(job: JobControl) -> int:
        for i in range(5):
            job.progress(i / 5, f"step {i}")
            job.partial(i)
            time.sleep(0.06)
        return 42

    t = Task(work, "unit")
    got: dict[str, list[Any]] = {"progress": [], "partial": []}
    t.progress.connect(lambda f, m: got["progress"].append(f))
    t.partial.connect(got["partial"].append)
    with qtbot.waitSignal(t.succeeded, timeout=5000) as sig:
        t.start_task()
        assert t in live_tasks()
    assert sig.args == [42]
    assert got["partial"] == [0, 1, 2, 3, 4] and len(got["progress"]) >= 3
    qtbot.waitUntil(lambda: not live_tasks(), timeout=2000)


@pytest.mark.parametrize(("exc", "expected"), [(UsageError("bad   input\nhere"), "bad input here"),
                                               (ValueError("oops"), "ValueError: oops")])
def test_task_failures_become_one_line(qtbot: Any, exc: Exception, expected: str) -> None:
    def work(job: JobControl) -> None:
        raise exc

    t = Task(work, "fail")
    with qtbot.waitSignal(t.failed, timeout=5000) as sig:
        t.start_task()
    assert sig.args == [expected]


def test_task_cancel_stops_at_the_next_check(qtbot: Any) -> None:
    def work(job: JobControl) -> None:
        while True:
            job.progress(0.5)
            time.sleep(0.01)

    t = Task(work, "forever")
    t.start_task()
    qtbot.wait(50)
    with qtbot.waitSignal(t.cancelled, timeout=1000):
        t.cancel()


def test_latest_wins_cancels_stale_requests_and_delivers_only_the_newest(qtbot: Any) -> None:
    started: list[int] = []

    def compute(req: int, job: JobControl) -> int:
        started.append(req)
        for _ in range(20):
            job.check()
            time.sleep(0.01)
        return req * 10

    lw = LatestWins(compute, "unit")
    results: list[tuple[int, int]] = []
    lw.result.connect(lambda r, v: results.append((r, v)))
    with qtbot.waitSignal(lw.idle, timeout=5000):
        for i in range(1, 6):
            lw.submit(i)
    assert results == [(5, 50)]
    assert started[-1] == 5 and len(started) <= 2  # stale ones were cancelled, most before they began


def test_signals_queued_for_a_deleted_owner_are_dropped(qtbot: Any) -> None:
    """A result that arrives after its owner (a closed window) was deleted raises nothing in the event
    loop (pytest-qt fails a test on any exception there)."""
    import shiboken6
    from PySide6.QtCore import QObject

    owner = QObject()
    lw = LatestWins(lambda req, job: req * 2, "test-owner-deleted", owner)
    got: list[Any] = []
    lw.result.connect(lambda r, v: got.append(v))
    lw.submit(3)
    deadline = time.monotonic() + 5.0
    while lw._task is not None and lw._task.isRunning() and time.monotonic() < deadline:
        time.sleep(0.01)  # the task finishes; its signals wait in the queue, undelivered
    shiboken6.delete(owner)  # deletes lw's Qt object too
    qtbot.waitUntil(lambda: not live_tasks(), timeout=5000)
    qtbot.wait(50)
    assert got == []
