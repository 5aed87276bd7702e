"""Descriptors land on the right codec frames and in the right classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import sine_burst

from workbench.core.analysis import descriptors as d
from workbench.core.analysis.corpus import cached_frame_descriptors
from workbench.core.audio import AudioClip
from workbench.core.codecs.default import DefaultCodec


def test_class_constants() -> None:
    assert d.PROPERTIES == {"pitch": 67, "loudness": 20, "timbre": 20}
    assert d.PITCH_UNVOICED == 66 and d.PITCH_MIDI_MAX - d.PITCH_MIDI_MIN + 1 == 66
    for prop, n in d.PROPERTIES.items():
        assert len(d.class_names(prop)) == n
    assert d.class_names("pitch")[69 - 24] == "A4"


def test_pitch_classes() -> None:
    hz = d.midi_to_hz(np.array([24, 57, 69, 89, 20, 100], float))
    hz = np.concatenate([hz, [np.nan, 0.0, d.midi_to_hz(69.45)]])
    assert d.pitch_classes(hz).tolist() == [0, 33, 45, 65, 0, 65, 66, 66, 45]


def test_loudness_and_timbre_bins() -> None:
    lo, hi = d.LOUDNESS_DB_RANGE
    w = (hi - lo) / 20
    assert d.loudness_classes(np.array([-120, lo, lo + w - 1e-6, lo + w, -40.0, hi - 1e-6, hi, 5.0])).tolist() == [
        0, 0, 0, 1, 10, 19, 19, 19]
    c_lo, c_hi = d.CENTROID_HZ_RANGE
    step = 2 ** (np.log2(c_hi / c_lo) / 20)
    assert d.timbre_classes(np.array([0.0, 50.0, c_lo, c_lo * step * 1.001, 1000.0, c_hi, 20000.0])).tolist() == [
        0, 0, 0, 1, int(np.log2(1000 / c_lo) / np.log2(step)), 19, 19]


def _expected_loudness_class(amp: float) -> int:
    return int(d.loudness_classes(np.array([20 * np.log10(amp / np.sqrt(2))]))[0])


@pytest.mark.parametrize(("sr", "frame_rate", "midi", "amp"), [(24000, 75.0, 57, 0.1), (16000, 50.0, 69, 0.025)])
def test_tone_lands_in_right_bins_at_right_frames(sr: int, frame_rate: float, midi: int, amp: float) -> None:
    """Levels sit in the upper part of their loudness bin, so the frame a quarter-window past the onset
    (-1.2 dB) is already in it."""
    start, stop, total = 0.4, 1.2, 1.6
    x = sine_burst(float(d.midi_to_hz(midi)), amp, start, stop, total, sr)
    T = int(np.ceil(total * frame_rate))
    desc = d.frame_descriptors(x, sr, frame_rate, T)
    assert len(desc) == T and all(a.dtype == np.float32 for a in desc.to_arrays().values())
    cls = desc.classes()
    on, off = int(round(start * frame_rate)), int(round(stop * frame_rate))  # frames centred on the edges
    pc, lc, tc = cls["pitch"], cls["loudness"], cls["timbre"]
    want_l = _expected_loudness_class(amp)
    # Steady part: exact classes. A pure sine's centroid is its frequency.
    steady = slice(on + 2, off - 2)
    assert (pc[steady] == midi - d.PITCH_MIDI_MIN).all(), pc[steady]
    assert (lc[steady] == want_l).all(), (desc.rms_db[steady], want_l)
    assert (tc[steady] == d.timbre_classes(np.array([d.midi_to_hz(midi)]))[0]).all()
    np.testing.assert_allclose(desc.pitch_hz[steady], d.midi_to_hz(midi), rtol=0.015)
    # Silence around it: unvoiced, quietest class.
    assert (pc[: on - 3] == d.PITCH_UNVOICED).all() and (pc[off + 3 :] == d.PITCH_UNVOICED).all()
    assert (lc[: on - 3] == 0).all() and (lc[off + 3 :] == 0).all()
    assert np.isnan(desc.pitch_hz[: on - 3]).all()
    # Edges within one frame: the first/last frame in the tone's loudness and pitch class.
    voiced = np.flatnonzero(pc == midi - d.PITCH_MIDI_MIN)
    loud = np.flatnonzero(lc == want_l)
    assert abs(voiced[0] - on) <= 1 and abs(loud[0] - on) <= 1, (voiced[0], loud[0], on)
    # At the release CREPE (a 64 ms window: 1.6 frames each side at 50 frames/s) may still hear the
    # last few milliseconds of the sine one frame later.
    assert abs(loud[-1] - (off - 1)) <= 1 and -1 <= voiced[-1] - (off - 1) <= 2, (voiced[-1], loud[-1], off)
    # The frame centred on the onset sees half the tone: RMS 3 dB below the steady level.
    assert abs(desc.rms_db[on] - (desc.rms_db[on + 3] - 3.01)) < 0.5


def test_alignment_matches_the_codec_frames(tiny_codec: DefaultCodec) -> None:
    """The codec's frame t is centred on sample t * hop: frame counts and centres agree."""
    sr, fr = tiny_codec.sample_rate, tiny_codec.frame_rate
    x = sine_burst(440.0, 0.1, 0.2, 0.6, 0.8, sr)
    z = tiny_codec.encode(AudioClip(x[:, None], sr))
    T = z.shape[0]
    assert T == tiny_codec.num_frames(len(x))
    desc = d.frame_descriptors(x, sr, fr, T)
    assert len(desc) == T
    # Frame 15 is centred at 0.2 s exactly (the onset): half the tone's energy.
    assert abs(desc.rms_db[15] - (desc.rms_db[20] - 3.01)) < 0.5


def test_empty_and_bad_input() -> None:
    assert len(d.frame_descriptors(np.zeros(100, np.float32), 24000, 75.0, 0)) == 0
    from workbench.core.errors import UsageError

    with pytest.raises(UsageError):
        d.frame_descriptors(np.zeros((3, 3, 3), np.float32), 24000, 75.0, 5)
    with pytest.raises(UsageError):
        d.frame_descriptors(np.zeros(100, np.float32), 24000, 0.0, 5)


def test_descriptor_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    x = sine_burst(220.0, 0.1, 0.1, 0.3, 0.4, 24000)
    a = cached_frame_descriptors(x, 24000, 75.0, 30)
    assert list((tmp_path / "cache" / "descriptors").rglob("*.npz"))

    def boom(*args: object, **kw: object) -> None:
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(d, "frame_descriptors", boom)
    b = cached_frame_descriptors(x, 24000, 75.0, 30)
    for k, v in a.to_arrays().items():
        np.testing.assert_array_equal(v, b.to_arrays()[k])
    with pytest.raises(AssertionError):  # other audio: a different key
        cached_frame_descriptors(x * 0.5, 24000, 75.0, 30)


def test_without_pitch_skips_crepe_and_keeps_level_and_centroid(monkeypatch: pytest.MonkeyPatch) -> None:
    sr, fr = 24000, 75.0
    t = np.arange(sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    full = d.frame_descriptors(x, sr, fr, 75)

    def no_crepe(*a: object, **k: object) -> None:
        raise AssertionError("CREPE ran")

    monkeypatch.setattr(d, "crepe_pitch", no_crepe)
    fast = d.frame_descriptors(x, sr, fr, 75, with_pitch=False)
    np.testing.assert_array_equal(fast.rms_db, full.rms_db)
    np.testing.assert_array_equal(fast.centroid_hz, full.centroid_hz)
    assert np.isnan(fast.pitch_hz).all() and not np.isnan(full.pitch_hz[10:-10]).any()
