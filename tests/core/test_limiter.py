"""The output limiter (workbench/core/limiter.py): ceiling, pitch, transparency, block invariance, NaN."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.core.limiter import PeakLimiter, limit, summary

SR = 24000
CEILING = 10 ** (-1 / 20)  # -1 dBFS, the default


def sine(freq: float, seconds: float, db: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (10 ** (db / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[int(np.argmax(spec))])


def bursty_noise(seconds: float, channels: int, seed: int = 0) -> np.ndarray:
    """Noise whose level jumps every 10 ms between -40 and +14 dBFS: attack, hold and release all work."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    level = np.repeat(rng.uniform(0.01, 5.0, n // 240 + 1), 240)[:n, None]
    return (rng.standard_normal((n, channels)) * level).astype(np.float32)


@pytest.mark.parametrize("freq", [110.0, 440.0, 1000.0])
def test_a_sine_at_plus_30_dbfs_comes_out_below_the_ceiling_at_the_same_pitch(freq: float) -> None:
    x = sine(freq, 2.0, 30.0)
    y, lim = limit(x, SR)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y).max() <= CEILING
    assert lim.max_reduction_db == pytest.approx(31.0, abs=0.2)
    settled = y[SR // 2 :]
    assert dominant_hz(settled) == pytest.approx(freq, abs=1.0)
    # Held at one gain, not clipped: the settled output is the sine scaled, with no new harmonics.
    ref = x[SR // 2 :] * (CEILING / 10 ** 1.5)
    assert np.abs(settled - ref).max() < 1e-3
    assert np.abs(settled).max() > 0.99 * CEILING  # and not turned down further than needed


def test_audio_below_the_ceiling_passes_bit_exact() -> None:
    x = np.stack([sine(220, 1.0, -1.5), sine(330, 1.0, -6.0)], axis=1)
    y, lim = limit(x, SR)
    assert np.array_equal(y, x)
    assert lim.max_reduction_db == 0.0 and summary(lim) is None
    # ... also right after a loud passage has been released
    loud_then_quiet = np.concatenate([sine(220, 0.3, 20.0), sine(220, 1.5, -3.0)])
    y2, _ = limit(loud_then_quiet, SR)
    tail = slice(int(1.2 * SR), None)
    assert np.abs(y2[tail] - loud_then_quiet[tail]).max() < 1e-6


@pytest.mark.parametrize("channels", [1, 2])
def test_blockwise_processing_equals_one_pass(channels: int) -> None:
    x = bursty_noise(3.0, channels)
    one, lim = limit(x, SR)
    assert np.abs(one).max() <= CEILING and lim.max_reduction_db > 10
    rng = np.random.default_rng(1)
    # zero-latency mode, as playback drives it: each block with the samples that follow it
    stream = PeakLimiter(SR, channels)
    parts, i = [], 0
    while i < len(x):
        k = int(rng.integers(1, 3000))
        parts.append(stream.process(x[i : i + k], ahead=x[i + k : i + k + stream.latency]))
        i += k
    assert np.abs(np.concatenate(parts) - one).max() < 1e-6
    # file mode: feed blocks, flush at the end
    fed = PeakLimiter(SR, channels)
    parts, i = [], 0
    while i < len(x):
        k = int(rng.integers(1, 3000))
        parts.append(fed.feed(x[i : i + k]))
        i += k
    parts.append(fed.flush())
    y = np.concatenate(parts)
    assert y.shape == x.shape and np.abs(y - one).max() < 1e-6
    assert fed.max_reduction_db == pytest.approx(lim.max_reduction_db, abs=1e-6)


def test_without_look_ahead_the_attack_is_instant_but_the_ceiling_still_holds() -> None:
    x = np.concatenate([sine(220, 0.2, -20.0), sine(220, 0.5, 25.0)])
    lim = PeakLimiter(SR)
    y = np.concatenate([lim.process(x[i : i + 100]) for i in range(0, len(x), 100)])  # never told the future
    assert np.abs(y).max() <= CEILING


def test_gain_moves_smoothly_into_a_loud_onset() -> None:
    x = np.concatenate([np.full(2000, 0.5, np.float32), np.full(2000, 8.0, np.float32)])
    y, lim = limit(x, SR)
    g = y / x
    assert np.abs(y).max() <= CEILING
    ramp = g[2000 - lim.latency - 1 : 2001]
    assert np.all(np.diff(ramp) <= 0) and g[1900] == 1.0
    assert np.abs(np.diff(g)).max() < 1.0 / lim.latency  # a glide over the look-ahead, not a step


def test_nan_and_inf_come_out_as_silence_with_fades() -> None:
    x = sine(220, 1.0, -6.0)
    x[10000:10100] = np.nan
    x[15000] = np.inf
    x[15001] = -np.inf
    y, lim = limit(x, SR)
    assert np.isfinite(y).all()
    assert np.all(y[10000:10100] == 0) and np.all(y[15000:15002] == 0)
    assert lim.nonfinite == 102
    assert "102 non-finite" in (summary(lim) or "")
    lat = lim.latency
    # faded out before and back in after (no step), untouched further away
    assert np.abs(np.diff(y[10000 - lat - 5 : 10000])).max() < 0.05
    assert np.array_equal(y[: 10000 - lat - 1], x[: 10000 - lat - 1])
    assert np.array_equal(y[10100 + 2 * lat + 1 : 15000 - lat - 1], x[10100 + 2 * lat + 1 : 15000 - lat - 1])
    everything_bad = np.full((4096, 2), np.nan, np.float32)
    z, _ = limit(everything_bad, SR)
    assert np.array_equal(z, np.zeros_like(z))


def test_reset_forgets_a_loud_past_and_stats_are_kept_apart() -> None:
    lim = PeakLimiter(SR)
    lim.process(sine(220, 0.3, 20.0))
    assert lim.reduction_db > 19
    quiet = sine(220, 0.2, -3.0)
    assert not np.array_equal(lim.process(quiet), quiet)  # still releasing
    lim.reset()
    assert lim.reduction_db == 0.0
    assert np.array_equal(lim.process(quiet), quiet)
    assert lim.max_reduction_db > 19
    lim.reset_stats()
    assert lim.max_reduction_db == 0.0 and lim.nonfinite == 0


def test_in_place_and_one_dimensional_use() -> None:
    x = sine(440, 0.5, 12.0)
    y1, _ = limit(x, SR)
    buf = x[:, None].copy()
    lim = PeakLimiter(SR)
    lim.process(buf, out=buf)
    assert y1.ndim == 1 and np.array_equal(buf[:, 0], y1)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        PeakLimiter(SR, ceiling_db=3.0)
    with pytest.raises(ValueError):
        PeakLimiter(SR, release=0.0)
    with pytest.raises(ValueError):
        PeakLimiter(SR, channels=2).process(np.zeros((10, 3), np.float32))
