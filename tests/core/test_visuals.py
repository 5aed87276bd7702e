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


def test_waveform_pyramid_places_samples_at_an_offset_and_keeps_nan_gaps() -> None:
    from workbench.core.visuals import WaveformPyramid

    y = np.ones(10_000, np.float32)
    y[2000:6000] = np.nan  # e.g. unvoiced: a gap, not a line through it
    y[100] = 3.0
    p = WaveformPyramid(y, 75.0, offset=0.5 / 75)
    assert abs(p.times()[0] - 0.5 / 75) < 1e-12 and abs(p.duration - 10_000 / 75) < 1e-9
    t, v = p.window(0.0, p.duration, 50)  # zoomed out: min/max buckets
    assert np.nanmax(v) == np.float32(3.0) and np.isnan(v).any() and np.isfinite(v).sum() > 10
    t, v = p.window(1.0, 2.0, 1000)  # zoomed in: raw samples, times shifted by the offset
    assert abs(t[0] - (0.5 / 75 + np.floor((1.0 - 0.5 / 75) * 75) / 75)) < 1e-5
    assert p.peak == 3.0


def test_column_pyramid_shows_the_maximum_under_each_pixel() -> None:
    from workbench.core.visuals import ColumnPyramid

    img = np.zeros((3, 60_001), np.uint8)
    img[1, 12_345] = 200  # one short event in a long image
    p = ColumnPyramid(img)
    rows = np.array([0, 1, 1, 2])
    out = p.sample(np.linspace(0.0, 60_001.0, 1001), rows)  # 60 columns per pixel
    assert out.shape == (4, 1000) and out.max() == 200
    assert set(np.nonzero(out)[0]) == {1, 2} and len(np.nonzero(out[1])[0]) == 1
    assert np.nonzero(out[1])[0][0] == 12_345 * 1000 // 60_001
    # zoomed in (0.1 column per pixel): each pixel shows the column it falls in
    out = p.sample(np.linspace(12_340.0, 12_350.0, 101), np.array([1]))
    assert list(np.nonzero(out[0])[0]) == list(range(50, 60))
    # the last (odd) column is reachable at every zoom
    img2 = np.zeros((1, 7), np.uint8)
    img2[0, 6] = 9
    assert ColumnPyramid(img2).sample(np.linspace(0.0, 7.0, 3), np.array([0]))[0, 1] == 9
    # a view wider than the data still covers every column
    assert ColumnPyramid(img2).sample(np.linspace(0.0, 7.0, 2), np.array([0]))[0, 0] == 9


def test_column_pyramid_with_a_centre_keeps_negative_and_positive_extremes() -> None:
    from workbench.core.visuals import ColumnPyramid

    img = np.full((2, 4096), 128, np.uint8)
    img[0, 1000] = 3  # a strong negative excursion (diverging map, centre 127.5)
    img[1, 3000] = 250
    out = ColumnPyramid(img, centre=127.5).sample(np.linspace(0.0, 4096.0, 17), np.array([0, 1]))
    assert out[0].min() == 3 and out[1].max() == 250
    # the plain maximum would hide the negative one
    assert ColumnPyramid(img).sample(np.linspace(0.0, 4096.0, 17), np.array([0]))[0].min() == 128


def test_column_pyramid_drawn_in_pieces_matches_drawn_whole() -> None:
    from workbench.core.visuals import ColumnPyramid

    img = np.random.default_rng(1).integers(0, 256, (5, 10_007)).astype(np.uint8)
    p = ColumnPyramid(img)
    rows = np.arange(5)
    for scale in (0.37, 1.0, 2.9, 13.3):  # screen pixels per column
        u = np.arange(100, 1401)
        edges = u / scale
        whole = p.sample(edges, rows, per_px=1 / scale)
        pieces = np.concatenate([p.sample(edges[a : b + 1], rows, per_px=1 / scale)
                                 for a, b in ((0, 333), (333, 334), (334, 1000), (1000, 1300))], axis=1)
        assert np.array_equal(whole, pieces)


def test_feature_table_csv_round_trips_through_the_csv_module() -> None:
    import csv
    import io

    from workbench.core.visuals import FEATURE_TABLE_COLUMNS, feature_table_csv

    nan = float("nan")
    text = feature_table_csv(["loud", 'say "hi", then', ""], np.array([0.91, nan, 0.5]), np.array([0.2, 0.0, 0.01]),
                             np.array([40.2, 0.0, 3.0]), np.array([0.5, nan, 1.0]), np.array([0.9, 0.0, 0.1]), {2},
                             clip="demo.wav")
    lines = text.splitlines()
    assert lines[0] == "# clip: demo.wav"
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    assert tuple(rows[0]) == FEATURE_TABLE_COLUMNS
    assert rows[1] == ["0", "loud", "0.91", "0.2", "40.2", "0.5", "0.9", "0"]
    assert rows[2][1] == 'say "hi", then' and rows[2][2] == "" and rows[2][5] == ""  # quoted; NaN is empty
    assert rows[3][-1] == "1" and len(rows) == 4
