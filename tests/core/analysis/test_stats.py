"""Feature statistics: known top moments, quantile samples, snippets, thumbnails, the feature's own sound."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from workbench.core.analysis.stats import (
    ClipAudio,
    feature_sound,
    feature_stats,
    png_bytes,
    reference_sound,
    snippet,
    spectrogram_image,
    spectrogram_png,
    wav_bytes,
)
from workbench.core.codecs.default import DefaultCodec
from workbench.core.errors import UsageError

FR = 75.0


def _corpus() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3 clips × 200 frames, 3 features: 0 has planted peaks, 1 never fires, 2 fires everywhere with a ramp."""
    n_clips, t = 3, 200
    clip_ids = np.repeat(np.arange(n_clips), t)
    frame_index = np.tile(np.arange(t), n_clips)
    f = np.zeros((n_clips * t, 3), np.float32)
    # Feature 0: a broad bump around each peak (neighbours fire a little less), peaks of known height.
    peaks = [(0, 50, 9.0), (0, 52, 8.9), (0, 150, 7.0), (1, 20, 8.0), (1, 100, 6.5), (1, 180, 5.0), (2, 10, 3.0)]
    for c, fr, h in peaks:
        for dt in range(-3, 4):
            i = c * t + fr + dt
            f[i, 0] = max(f[i, 0], h - 0.5 * abs(dt))
    f[:, 2] = np.linspace(0.01, 1.0, n_clips * t)
    return f, clip_ids, frame_index


def test_top_moments_are_the_planted_peaks_without_neighbours() -> None:
    f, clip_ids, frame_index = _corpus()
    s0, s1, s2 = feature_stats(f, clip_ids, frame_index, FR, top_k=4, min_gap=0.5, max_per_clip=2)
    got = [(m.clip, m.frame, m.activation) for m in s0.top]
    # 52 is within 0.5 s of 50 (same note): suppressed; clip 0's third peak is over max_per_clip.
    assert got == [(0, 50, 9.0), (1, 20, 8.0), (0, 150, 7.0), (1, 100, 6.5)]
    assert s0.top[0].time == pytest.approx(50 / FR)
    assert s0.fires == 9 + 5 * 7 and s0.frames == 600  # bumps at 50 and 52 overlap: frames 47..55
    assert s0.density == pytest.approx(s0.fires / 600)
    assert s0.max_activation == pytest.approx(9.0)
    assert s0.hist_counts.sum() == s0.fires and s0.hist_edges[-1] == pytest.approx(9.0)
    # Never fires: dead, empty moments.
    assert not s1.live and s1.top == [] and s1.quantiles == [] and s1.density == 0.0
    # Everywhere, a ramp: quantile samples land at the matching ranks of the ramp.
    assert s2.density == 1.0
    for q, m in s2.quantiles:
        row = m.clip * 200 + m.frame
        assert abs(row / 599 - q) < 0.01, (q, row)
    assert [q for q, _ in s2.quantiles] == [0.25, 0.5, 0.75]


def test_top_k_without_suppression_and_subset() -> None:
    f, clip_ids, frame_index = _corpus()
    (s,) = feature_stats(f, clip_ids, frame_index, FR, which=[0], top_k=3, min_gap=0.0, max_per_clip=10)
    # Neighbours are allowed now; the two frames at 8.5 (49 and 51) tie and the earlier one comes first.
    assert [(m.clip, m.frame) for m in s.top] == [(0, 50), (0, 52), (0, 49)]
    with pytest.raises(UsageError):
        feature_stats(f, clip_ids, frame_index, FR, which=[5])
    with pytest.raises(UsageError):
        feature_stats(f[:, 0], clip_ids, frame_index, FR)
    with pytest.raises(UsageError):
        feature_stats(f, clip_ids[:-1], frame_index, FR)


def test_snippet_context_and_edges() -> None:
    sr = 1000
    x = np.arange(5000, dtype=np.float32) / 5000
    s, off = snippet(x, sr, 2.0, before=0.3, after=0.5)
    assert s.shape == (800,) and off == pytest.approx(0.3)
    assert s[300] == pytest.approx(x[2000])  # the moment sits at `off` (no fade in the middle)
    assert s[0] == 0.0 and s[-1] == 0.0  # faded
    s, off = snippet(x, sr, 0.1)  # cut at the start
    assert s.shape == (600,) and off == pytest.approx(0.1)
    s, off = snippet(x, sr, 4.9)  # cut at the end
    assert s.shape == (400,) and off == pytest.approx(0.3)


def _read_png(data: bytes) -> tuple[int, int, np.ndarray]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    w = h = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x02"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert np.all(raw[:, 0] == 0)
    return w, h, raw[:, 1:].reshape(h, w, 3)


def test_png_round_trip_and_spectrogram() -> None:
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    w, h, back = _read_png(png_bytes(img))
    assert (w, h) == (7, 5) and np.array_equal(back, img)
    sr = 24000
    t = np.arange(sr) / sr
    low = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    high = np.sin(2 * np.pi * 5000 * t).astype(np.float32)
    a = spectrogram_image(low, sr, height=64, width=100)
    b = spectrogram_image(high, sr, height=64, width=100)
    # Brightness (sum of RGB) peaks lower in the picture for the low tone (row 0 = top = high freq).
    row_a = int(np.argmax(a.astype(int).sum(axis=(1, 2))))
    row_b = int(np.argmax(b.astype(int).sum(axis=(1, 2))))
    assert row_a > row_b
    marked = spectrogram_image(low, sr, height=64, width=100, mark=0.5)
    assert np.all(marked[:, 50] == 255)
    w, h, _ = _read_png(spectrogram_png(low, sr, height=64, width=160))
    assert (w, h) == (160, 64)
    with pytest.raises(UsageError):
        png_bytes(np.zeros((0, 4, 3), np.uint8))


def test_wav_bytes_and_clip_audio(tmp_path: Path) -> None:
    import io

    import soundfile as sf

    x = (0.5 * np.sin(np.arange(2400) / 10)).astype(np.float32)
    y, sr = sf.read(io.BytesIO(wav_bytes(x, 24000)), dtype="float32")
    assert sr == 24000 and np.allclose(y, x, atol=1e-4)
    p = tmp_path / "a.wav"
    sf.write(str(p), x, 24000)
    audio = ClipAudio([str(p)], 24000, arrays={1: np.ones(10, np.float32)})
    assert np.allclose(audio(0), x, atol=1e-4) and audio(1).shape == (10,)


def test_feature_sound_is_the_decoded_direction(tiny_codec: DefaultCodec) -> None:
    rng = np.random.default_rng(0)
    mz = rng.normal(size=tiny_codec.latent_dim).astype(np.float32)
    w = rng.normal(size=tiny_codec.latent_dim).astype(np.float32)
    y = feature_sound(tiny_codec, mz, w, 2.0, seconds=0.5)
    ref = reference_sound(tiny_codec, mz, seconds=0.5)
    hop = tiny_codec.sample_rate / tiny_codec.frame_rate
    assert abs(y.shape[0] - round(0.5 * tiny_codec.frame_rate) * hop) <= hop
    assert np.isfinite(y).all() and np.abs(y).max() <= 0.99 + 1e-6
    assert y.shape == ref.shape and not np.allclose(y, ref)  # the direction changes the sound
    same = feature_sound(tiny_codec, mz, w, 0.0, seconds=0.5)
    assert np.allclose(same, ref, atol=1e-6)  # strength 0 = the mean latent alone
    with pytest.raises(UsageError):
        feature_sound(tiny_codec, mz, w[:-1], 1.0)
