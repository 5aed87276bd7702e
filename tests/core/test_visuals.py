"""What the views draw: mel frames aligned in time and frequency, envelopes, feature summaries."""

from __future__ import annotations

import numpy as np

from workbench.core.visuals import (
    hz_to_mel,
    log_mel,
    mel_filterbank,
    relative_activations,
    summarize_features,
    symmetric_levels,
    top_features,
)


def test_a_tone_lands_in_the_right_mel_band_and_frames() -> None:
    sr, f0 = 24000, 1000.0
    t = np.arange(sr) / sr
    x = np.where(t >= 0.5, np.sin(2 * np.pi * f0 * t), 0.0).astype(np.float32)
    m = log_mel(x, sr, n_mels=64, n_fft=1024, hop=240)
    assert m.db.shape == (100, 64) and abs(m.hop_seconds - 0.01) < 1e-9
    peak_band = int(np.argmax(m.db[80]))
    lo, hi = hz_to_mel(m.fmin), hz_to_mel(m.fmax)
    centre = (peak_band + 1) / 65 * (hi - lo) + lo
    assert abs(centre - hz_to_mel(f0)) < (hi - lo) / 65 * 1.5
    assert m.db[20].max() <= -80 and m.db[80].max() > -10  # silent, then near full scale
    onset = int(np.argmax(m.db.max(axis=1) > -40))
    assert 48 <= onset <= 51


def test_filterbank_rows_peak_at_one() -> None:
    fb = mel_filterbank(24000, 1024, 40)
    assert fb.shape == (40, 513) and np.all(fb >= 0) and np.all(fb.max(axis=1) > 0.5)


def test_feature_summary_and_top_features() -> None:
    f = np.zeros((10, 5), np.float32)
    f[:, 0] = 1.0  # always on, but small relative to its maximum
    f[:2, 3] = 4.0
    f[:, 4] = 0.5
    s = summarize_features(f)
    assert np.allclose(s.clip_active, [1.0, 0.0, 0.0, 0.2, 1.0])
    mx = np.array([10.0, 1.0, 1.0, 4.0, 1.0], np.float32)
    top = top_features(s, 3, mx)
    assert top.tolist() == [4, 3, 0]  # by activity relative to each feature's max; silent ones left out
    rel = relative_activations(f, top, mx)
    assert rel.shape == (3, 10) and rel[1, 0] == 1.0
    assert summarize_features(np.zeros((0, 3))).clip_max.shape == (3,)


def test_symmetric_levels_ignore_outliers() -> None:
    a = np.concatenate([np.linspace(-1, 1, 1000), [100.0]])
    lo, hi = symmetric_levels(a)
    assert lo == -hi and 0.9 < hi < 2
    assert symmetric_levels(np.zeros(4)) == (-1.0, 1.0)


def test_display_maxima_floor_near_dead_features() -> None:
    from workbench.core.visuals import display_maxima

    mx = np.array([2.0, 4.0, 6.0, 1e-9, 0.0, np.nan], np.float32)
    d = display_maxima(mx)
    assert d[:3].tolist() == [2.0, 4.0, 6.0]
    assert np.allclose(d[3:], 0.05 * 3.0)  # median of the positive maxima (2, 4, 6, 1e-9) is 3


def test_waveform_pyramid_keeps_peaks_and_bounds_points() -> None:
    from workbench.core.visuals import WaveformPyramid

    sr = 1000
    x = np.zeros(600_000, np.float32)
    x[123_457] = 0.9
    x[400_001] = -0.8
    p = WaveformPyramid(x, sr)
    t, y = p.window(0.0, 600.0, 1000)
    assert len(t) <= 2 * 1000 * 4 + 4 and y.max() == np.float32(0.9) and y.min() == np.float32(-0.8)
    t, y = p.window(123.0, 124.0, 1000)  # zoomed in: raw samples
    assert len(t) == 1001 and y.max() == np.float32(0.9) and abs(t[0] - 123.0) < 1e-3
    t, y = p.window(120.0, 130.0, 100)
    assert 0 < len(t) <= 2 * 100 * 4 + 4 and y.max() == np.float32(0.9)
    assert p.window(700.0, 800.0, 10)[0].size == 0
    assert p.peak == np.float32(0.9)
