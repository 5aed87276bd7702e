"""Cooperative job control: cancel raises at the next check, pause holds, ETA ignores paused time."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.core.jobs import Cancelled, Eta, JobControl, format_seconds


def test_cancel_and_pause() -> None:
    job = JobControl()
    job.check()
    job.pause()
    assert job.paused
    done = threading.Event()

    def worker() -> None:
        job.check()  # blocks while paused
        done.set()

    th = threading.Thread(target=worker)
    th.start()
    time.sleep(0.15)
    assert not done.is_set()
    job.resume()
    th.join(2)
    assert done.is_set()
    job.pause()
    job.cancel()  # a paused job wakes up to notice the cancel
    with pytest.raises(Cancelled):
        job.check()


def test_progress_and_partials_reach_the_callbacks() -> None:
    seen: list[object] = []
    job = JobControl(on_progress=lambda f, m: seen.append((f, m)), on_partial=seen.append)
    job.progress(1.7, "x")
    job.partial({"loss": 1})
    assert seen == [(1.0, "x"), {"loss": 1}]


def test_eta_counts_only_running_time() -> None:
    now = [0.0]
    eta = Eta(clock=lambda: now[0])
    assert eta.remaining() is None
    now[0] = 1.0
    eta.update(0.0)
    now[0] = 11.0
    eta.update(0.5)
    assert eta.remaining() == pytest.approx(10.0)
    eta.pause()
    now[0] = 100.0
    assert eta.remaining() == pytest.approx(10.0)
    eta.resume()
    now[0] = 105.0
    eta.update(0.75)
    assert eta.elapsed() == pytest.approx(16.0)
    assert eta.remaining() == pytest.approx(5.0)
    assert format_seconds(3725) == "1:02:05" and format_seconds(65) == "1:05" and format_seconds(None) == "–"
