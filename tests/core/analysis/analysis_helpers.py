"""Helpers shared by the analysis tests (signals of known pitch and level)."""

from __future__ import annotations

import numpy as np


def sine_burst(freq: float, amp: float, start: float, stop: float, seconds: float, sr: int) -> np.ndarray:
    """A pure sine from `start` to `stop` seconds (hard edges), silence elsewhere."""
    n = np.arange(int(round(seconds * sr)))
    x = amp * np.sin(2 * np.pi * freq * n / sr)
    on = (n >= round(start * sr)) & (n < round(stop * sr))
    return np.where(on, x, 0.0).astype(np.float32)
