"""Cooperative control of long work (caching, training, analysis) run in a background thread.

The work function gets a `JobControl` and calls `progress()` / `check()` at every step: that is where a
cancel request stops it (by raising `Cancelled`) and where a pause request holds it. Nothing is ever
killed from outside, so files and models are never left half-written. The GUI wraps this in its one
worker pattern (Qt signals); the CLI can drive the same functions in the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Cancelled(Exception):
    """Raised inside a job at its next checkpoint after `JobControl.cancel()`."""


ProgressFn = Callable[[float, str], None]
PartialFn = Callable[[Any], None]


class JobControl:
    def __init__(self, on_progress: ProgressFn | None = None, on_partial: PartialFn | None = None) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.on_progress = on_progress
        self.on_partial = on_partial
        self.eta = Eta()

    # -- requests (any thread) -----------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused job must wake up to notice the cancel

    def pause(self) -> None:
        self._running.clear()
        self.eta.pause()

    def resume(self) -> None:
        self.eta.resume()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- inside the job ------------------------------------------------------------------------
    def check(self) -> None:
        """Block while paused; raise `Cancelled` if a cancel was requested."""
        while not self._running.wait(0.05):
            pass
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, fraction: float, message: str = "") -> None:
        self.check()
        fraction = min(1.0, max(0.0, float(fraction)))
        self.eta.update(fraction)
        if self.on_progress is not None:
            self.on_progress(fraction, message)

    def partial(self, data: Any) -> None:
        """Hand an intermediate result (e.g. a row of training metrics) to the caller."""
        if self.on_partial is not None:
            self.on_partial(data)


class Eta:
    """Remaining time from progress so far, not counting time spent paused."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._first: tuple[float, float] | None = None  # (elapsed, fraction) at the first report
        self.fraction = 0.0

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = self._clock()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += self._clock() - self._paused_at
            self._paused_at = None

    def elapsed(self) -> float:
        now = self._paused_at if self._paused_at is not None else self._clock()
        return max(0.0, now - self._t0 - self._paused_total)

    def update(self, fraction: float) -> None:
        if self._first is None:
            # Measure from the first report on: set-up time before it (imports, loading) says little
            # about the rate of the steps that follow.
            self._first = (self.elapsed(), fraction)
        self.fraction = fraction

    def remaining(self) -> float | None:
        if self._first is None:
            return None
        e0, f0 = self._first
        done = self.fraction - f0
        if done <= 1e-6:
            return None
        return max(0.0, (self.elapsed() - e0) * (1.0 - self.fraction) / done)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
