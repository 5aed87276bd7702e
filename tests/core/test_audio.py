"""Audio I/O: formats, rates, channel layouts, windows, atomic saves, and a table of bad inputs.

Every file is generated here (nothing downloaded). The bad-input table `BAD_INPUTS` is also driven
through the CLI by tests/test_cli.py, which loads this module by path.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from workbench.core import audio as audio_mod
from workbench.core.audio import (
    MAX_CHANNELS,
    AudioClip,
    audio_info,
    iter_blocks,
    load_audio,
    open_audio_writer,
    resample,
    save_audio,
)
from workbench.core.errors import AudioError, WorkbenchError

# --------------------------------------------------------------------------------------------------
# helpers


def tone(seconds: float, sr: int, channels: int = 1, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """[n, channels] float32 sine; channel k is detuned a little so channels are distinguishable."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    cols = [amp * np.sin(2 * np.pi * freq * (1 + 0.01 * k) * t) for k in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def wav_bytes(
    channels: int,
    rate: int,
    data: bytes = b"",
    bits: int = 16,
    data_size: int | None = None,
    fmt_tag: int = 1,
) -> bytes:
    """A canonical RIFF/WAVE file written by hand, so headers can lie (0 channels, 1 Hz, sizes)."""
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block_align, block_align, bits)
    size = len(data) if data_size is None else data_size
    riff = 4 + (8 + len(fmt)) + (8 + size)
    return (
        b"RIFF" + struct.pack("<I", riff & 0xFFFFFFFF) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data
    )


def int16_bytes(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def mp3_writable() -> bool:
    return "MP3" in sf.available_formats()


def write_mp3(path: Path, x: np.ndarray, sr: int) -> None:
    """MP3 through libsndfile (>= 1.1) if it can, else the ffmpeg binary, else skip the test."""
    if mp3_writable():
        sf.write(str(path), x, sr, format="MP3")
        return
    if shutil.which("ffmpeg") is None:
        pytest.skip("cannot make an MP3: libsndfile < 1.1 and no ffmpeg binary")
    wav = path.with_suffix(".src.wav")
    sf.write(str(wav), x, sr, subtype="PCM_16")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), str(path)], check=True, timeout=60
    )
    wav.unlink()


def write_audio(path: Path, x: np.ndarray, sr: int) -> Path:
    if path.suffix == ".mp3":
        write_mp3(path, x, sr)
    elif path.suffix == ".wav":
        sf.write(str(path), x, sr, subtype="PCM_16")
    else:
        sf.write(str(path), x, sr)
    return path


def shown(text: str) -> str:
    """How a name appears in a one-line message (control characters replaced)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def assert_one_line(exc: BaseException, path: Path | str) -> None:
    assert isinstance(exc, WorkbenchError), type(exc)
    msg = str(exc)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    assert shown(Path(path).name) in msg, f"message does not name the file: {msg!r}"


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


LOSSLESS = [".wav", ".flac"]
ALL_FORMATS = [".wav", ".flac", ".ogg", ".mp3"]

# --------------------------------------------------------------------------------------------------
# formats, rates and channel layouts


@pytest.mark.parametrize(
    "ext, rate, channels",
    [(ext, rate, ch) for ext in ALL_FORMATS for rate, ch in [(44100, 2), (22050, 1), (48000, 6)]
     if not (ext == ".mp3" and ch > 2)],  # MP3 holds at most 2 channels
)
def test_load_any_format_to_codec_layout(tmp_path: Path, ext: str, rate: int, channels: int) -> None:
    x = tone(1.0, rate, channels)
    p = write_audio(tmp_path / f"a{ext}", x, rate)
    clip = load_audio(p, 24000, 1)
    assert clip.sample_rate == 24000 and clip.channels == 1
    assert clip.samples.dtype == np.float32 and clip.samples.flags.c_contiguous
    assert abs(clip.num_samples - 24000) <= 1, clip.num_samples
    # The tone survives the conversion (channel k carries 440 Hz detuned by k %).
    assert 435 < peak_hz(clip.samples, 24000) < 440 * (1 + 0.01 * (channels - 1)) + 5
    assert np.isfinite(clip.samples).all() and np.abs(clip.samples).max() <= 1.0
    stereo = load_audio(p, 48000, 2)
    assert stereo.channels == 2 and abs(stereo.num_samples - 48000) <= 1


@pytest.mark.parametrize("sr_in", [8000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("sr_out", [16000, 24000, 48000])
def test_resample_length(sr_in: int, sr_out: int) -> None:
    x = tone(1.0, sr_in, 2)
    y = resample(x, sr_in, sr_out)
    assert y.dtype == np.float32 and y.shape[1] == 2
    assert abs(y.shape[0] - sr_out) <= 1
    clip = AudioClip(x, sr_in).resample(sr_out)
    assert abs(clip.num_samples - sr_out) <= 1


def test_resample_44k1_file_to_24k(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    sf.write(str(p), tone(1.0, 44100), 44100, subtype="PCM_16")
    assert abs(load_audio(p, 24000).num_samples - 24000) <= 1


def test_stereo_to_mono_is_the_mean() -> None:
    x = np.array([[1.0, 0.0], [0.5, -0.5], [0.2, 0.4]], np.float32)
    mono = AudioClip(x, 16000).with_channels(1)
    np.testing.assert_allclose(mono.samples[:, 0], x.mean(axis=1), atol=1e-7)


def test_mono_to_stereo_duplicates() -> None:
    x = tone(0.1, 16000)
    st = AudioClip(x, 16000).with_channels(2)
    assert st.channels == 2
    np.testing.assert_array_equal(st.samples[:, 0], x[:, 0])
    np.testing.assert_array_equal(st.samples[:, 1], x[:, 0])


def test_six_channels_fold_to_stereo_as_5_1() -> None:
    n = 100
    chans = {name: np.zeros(n, np.float32) for name in ("L", "R", "C", "LFE", "Ls", "Rs")}

    def down(**levels: float) -> np.ndarray:
        x = np.stack([np.full(n, levels.get(k, 0.0), np.float32) for k in chans], axis=1)
        return AudioClip(x, 48000).with_channels(2).samples[0]

    left_only, right_only = down(L=1.0), down(R=1.0)
    assert left_only[0] > 0 and left_only[1] == 0
    assert right_only[1] > 0 and right_only[0] == 0
    centre = down(C=1.0)
    assert centre[0] == pytest.approx(centre[1]) and centre[0] > 0
    assert np.all(down(LFE=1.0) == 0)  # ITU downmix leaves the LFE out
    ls, rs = down(Ls=1.0), down(Rs=1.0)
    assert ls[0] > 0 and ls[1] == 0 and rs[1] > 0 and rs[0] == 0
    full = down(L=1.0, R=1.0, C=1.0, LFE=1.0, Ls=1.0, Rs=1.0)
    assert np.all(full <= 1.0 + 1e-6)  # a weighted mean: never louder than full scale


def test_six_channel_file_loads_as_stereo(tmp_path: Path) -> None:
    x = tone(0.5, 48000, 6)
    p = tmp_path / "surround.wav"
    sf.write(str(p), x, 48000, subtype="FLOAT")
    clip = load_audio(p, 48000, 2)
    assert clip.channels == 2 and clip.num_samples == x.shape[0]
    np.testing.assert_allclose(clip.samples, x @ audio_mod._stereo_matrix(6), atol=1e-6)
    assert load_audio(p, 16000, 1).channels == 1


@pytest.mark.parametrize("channels", [3, 4, 5, 7, 8, 10, 64])
def test_any_channel_count_folds_within_full_scale(channels: int) -> None:
    x = np.ones((10, channels), np.float32)
    st = AudioClip(x, 16000).with_channels(2).samples
    mono = AudioClip(x, 16000).with_channels(1).samples
    assert st.shape == (10, 2) and mono.shape == (10, 1)
    assert np.all(st <= 1 + 1e-6) and np.all(st > 0)
    assert np.all(mono <= 1 + 1e-6) and np.all(mono > 0)


# --------------------------------------------------------------------------------------------------
# windows


@pytest.mark.parametrize("ext", ALL_FORMATS)
def test_window_reads_the_same_samples_as_slicing(tmp_path: Path, ext: str) -> None:
    sr = 22050
    x = (np.random.default_rng(0).standard_normal((3 * sr, 2)) * 0.1).astype(np.float32)
    p = write_audio(tmp_path / f"a{ext}", x, sr)
    whole = load_audio(p)
    win = load_audio(p, start=1.25, duration=0.5)
    a = int(round(1.25 * sr))
    expected = whole.samples[a : a + sr // 2]
    assert win.samples.shape == expected.shape
    if ext in LOSSLESS:
        np.testing.assert_array_equal(win.samples, expected)
    else:
        np.testing.assert_allclose(win.samples, expected, atol=1e-4)
    # A window running past the end is cut at the end.
    tail = load_audio(p, start=2.5, duration=10.0)
    assert tail.num_samples == whole.num_samples - int(round(2.5 * sr))


def _sparse_long_wav(path: Path, minutes: float, sr: int, marker_at: float) -> np.ndarray:
    """A long int16 mono WAV that costs nothing to make: a sparse file of zeros with one second of
    ramp written at `marker_at` seconds. Returns the marker as float32."""
    n = int(minutes * 60 * sr)
    header = wav_bytes(1, sr, data_size=2 * n)
    marker = ((np.arange(sr) % 2000) - 1000).astype("<i2")
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + 2 * n)
        f.seek(len(header) + 2 * int(marker_at * sr))
        f.write(marker.tobytes())
    return marker.astype(np.float32) / 32768.0


def test_window_of_long_file_reads_only_the_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sr = 44100
    p = tmp_path / "ten_minutes.wav"
    marker = _sparse_long_wav(p, 10, sr, marker_at=300.0)
    assert audio_info(p).num_samples == 10 * 60 * sr

    requested: list[int] = []
    real_read = sf.SoundFile.read

    def spy(self: sf.SoundFile, frames: int = -1, *args: Any, **kwargs: Any) -> Any:
        requested.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    tracemalloc.start()
    try:
        clip = load_audio(p, start=300.0, duration=1.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(clip.samples[:, 0], marker)
    assert requested and all(0 <= f <= sr for f in requested) and sum(requested) == sr
    whole_bytes = 10 * 60 * sr * 4
    assert peak < whole_bytes / 50, f"peak {peak} bytes for a 1 s window"


def test_iter_blocks_join_into_the_whole_file(tmp_path: Path) -> None:
    x = tone(2.3, 44100, 2)
    p = tmp_path / "a.flac"
    sf.write(str(p), x, 44100)
    blocks = list(iter_blocks(p, 0.5, 24000, 1))
    assert [b.num_samples for b in blocks[:-1]] == [12000] * (len(blocks) - 1)
    assert 0 < blocks[-1].num_samples <= 12000
    joined = np.concatenate([b.samples for b in blocks])
    whole = load_audio(p, 24000, 1).samples
    assert abs(len(joined) - len(whole)) <= 1
    k = min(len(joined), len(whole))
    np.testing.assert_allclose(joined[:k], whole[:k], atol=1e-5)


def test_iter_blocks_without_resampling(tmp_path: Path) -> None:
    x = tone(1.0, 16000, 1)
    p = tmp_path / "a.wav"
    sf.write(str(p), x, 16000, subtype="FLOAT")
    blocks = list(iter_blocks(p, 0.3))
    assert [b.num_samples for b in blocks] == [4800, 4800, 4800, 1600]
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), x)


# --------------------------------------------------------------------------------------------------
# truncated and unfinished files (policy: keep what decodes before the damage; nothing -> error)


def test_truncated_wav_loads_what_is_there(tmp_path: Path) -> None:
    x = tone(1.0, 16000)
    p = tmp_path / "cut.wav"
    full = wav_bytes(1, 16000, int16_bytes(x))
    p.write_bytes(full[: 44 + 2 * 6000 + 1])  # cut mid-sample too
    clip = load_audio(p)
    assert clip.num_samples == 6000
    np.testing.assert_allclose(clip.samples[:, 0], x[:6000, 0], atol=1 / 16000)


def test_truncated_flac_keeps_the_frames_before_the_cut(tmp_path: Path) -> None:
    x = (np.random.default_rng(1).standard_normal((10 * 8000, 2)) * 0.1).astype(np.float32)
    good = tmp_path / "good.flac"
    sf.write(str(good), x, 8000, subtype="PCM_16")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    clip = load_audio(cut)
    assert 0.25 * len(x) < clip.num_samples < 0.75 * len(x)
    np.testing.assert_allclose(clip.samples, x[: clip.num_samples], atol=1 / 16000)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary (audioread fallback)")
def test_unfinalised_wav_is_read_by_ffmpeg(tmp_path: Path) -> None:
    """A recorder that crashed leaves the sizes at 0; libsndfile sees no frames, ffmpeg reads them."""
    x = tone(0.5, 16000)
    p = tmp_path / "crashed.wav"
    data = wav_bytes(1, 16000, int16_bytes(x), data_size=0)
    p.write_bytes(b"RIFF" + struct.pack("<I", 0) + data[8:])
    clip = load_audio(p)
    assert abs(clip.num_samples - 8000) <= 1
    np.testing.assert_allclose(clip.samples[:8000, 0], x[: clip.num_samples, 0], atol=1 / 16000)


# --------------------------------------------------------------------------------------------------
# saving


@pytest.mark.parametrize(
    "ext, subtype, bits",
    [(".wav", "PCM_16", 16), (".wav", "PCM_24", 24), (".wav", "FLOAT", None), (".flac", "PCM_16", 16),
     (".flac", "PCM_24", 24), (".flac", None, 24), (".wav", None, None)],
)
def test_save_round_trip(tmp_path: Path, ext: str, subtype: str | None, bits: int | None) -> None:
    x = tone(0.5, 24000, 2, amp=0.9)
    p = save_audio(tmp_path / f"out{ext}", AudioClip(x, 24000), subtype=subtype)
    back = load_audio(p)
    assert back.sample_rate == 24000 and back.samples.shape == x.shape
    tol = 1e-7 if bits is None else 1.0 / 2 ** (bits - 1)
    assert np.abs(back.samples - x).max() <= tol
    assert [q.name for q in tmp_path.iterdir()] == [p.name]  # no .part left behind


def test_save_ogg(tmp_path: Path) -> None:
    x = tone(0.5, 24000, 1)
    p = save_audio(tmp_path / "out.ogg", AudioClip(x, 24000))
    back = load_audio(p)
    assert abs(back.num_samples - x.shape[0]) <= 1
    assert abs(peak_hz(back.samples, 24000) - 440) < 5


def test_saved_file_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        p = save_audio(tmp_path / "out.wav", AudioClip(tone(0.1, 16000), 16000))
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


def test_failed_save_leaves_existing_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "out.wav"
    save_audio(p, AudioClip(tone(0.2, 16000), 16000))
    before = p.read_bytes()

    bad = tone(0.2, 16000)
    bad[10, 0] = np.nan
    with pytest.raises(AudioError) as err:
        save_audio(p, AudioClip(bad, 16000))
    assert_one_line(err.value, p)
    assert p.read_bytes() == before

    def broken_write(file: Any, *args: Any, **kwargs: Any) -> None:
        Path(file).write_bytes(b"RIFF partial")  # the writer dies halfway
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sf, "write", broken_write)
    with pytest.raises(AudioError) as err:
        save_audio(p, AudioClip(tone(0.3, 16000), 16000))
    assert_one_line(err.value, p)
    assert "No space left" in str(err.value)
    assert p.read_bytes() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out.wav"]


@pytest.mark.parametrize("name", ["out.mp3", "out", "missing_dir/out.wav", "a_folder", "empty.wav"])
def test_save_refuses_bad_targets(tmp_path: Path, name: str) -> None:
    (tmp_path / "a_folder").mkdir()
    clip = AudioClip(np.zeros((0, 1), np.float32) if name == "empty.wav" else tone(0.1, 16000), 16000)
    with pytest.raises(AudioError) as err:
        save_audio(tmp_path / name, clip)
    msg = str(err.value)
    assert "\n" not in msg
    assert not any(q.name.endswith(".part") for q in tmp_path.iterdir())


# --------------------------------------------------------------------------------------------------
# bad inputs: each must raise AudioError with one line naming the file, quickly, and nothing else


Builder = Callable[[Path], tuple[Path, dict[str, Any]]]


def _good_wav(d: Path, seconds: float = 1.0, sr: int = 16000) -> Path:
    p = d / "good.wav"
    if not p.exists():
        p.write_bytes(wav_bytes(1, sr, int16_bytes(tone(seconds, sr))))
    return p


def _missing(d: Path) -> tuple[Path, dict[str, Any]]:
    return d / "nope.wav", {}


def _directory(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "folder.wav"
    p.mkdir()
    return p, {}


def _empty(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "empty.wav"
    p.write_bytes(b"")
    return p, {}


def _cut_mid_header(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "cut_header.wav"
    p.write_bytes(_good_wav(d).read_bytes()[:30])
    return p, {}


def _header_claims_data_absent(d: Path) -> tuple[Path, dict[str, Any]]:
    """Header says 1 s of samples follow; the file ends right after the header."""
    p = d / "cut_after_header.wav"
    p.write_bytes(wav_bytes(1, 16000, data_size=32000))
    return p, {}


def _header_only(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "header_only.wav"
    p.write_bytes(wav_bytes(1, 16000))
    return p, {}


def _random_wav(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "random.wav"
    p.write_bytes(np.random.default_rng(0).bytes(8000))
    return p, {}


def _text_mp3(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "notes.mp3"
    p.write_text("these are my notes, not a song\n" * 40)
    return p, {}


def _random_flac(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "random.flac"
    p.write_bytes(b"fLaC" + np.random.default_rng(1).bytes(4000))
    return p, {}


def _float_wav_with(value: float, name: str) -> Builder:
    def build(d: Path) -> tuple[Path, dict[str, Any]]:
        x = tone(1.0, 16000)
        x[4000:4010] = value
        p = d / name
        sf.write(str(p), x, 16000, subtype="FLOAT")
        return p, {}

    return build


def _zero_channels(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "zero_channels.wav"
    p.write_bytes(wav_bytes(0, 16000, b"\0" * 400))
    return p, {}


def _rate(rate: int) -> Builder:
    def build(d: Path) -> tuple[Path, dict[str, Any]]:
        p = d / f"rate_{rate}.wav"
        p.write_bytes(wav_bytes(1, rate, b"\0" * 400))
        return p, {}

    return build


def _fifo(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "pipe.wav"
    os.mkfifo(p)  # nobody writes: opening it for reading would block forever
    return p, {}


def _dev_null(d: Path) -> tuple[Path, dict[str, Any]]:
    return Path(os.devnull), {}


def _no_permission(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "secret.wav"
    shutil.copy(_good_wav(d), p)
    p.chmod(0)
    return p, {}


def _corrupt_flac(d: Path) -> tuple[Path, dict[str, Any]]:
    """A real FLAC header (STREAMINFO and all) followed by garbage instead of frames."""
    good = d / "ok.flac"
    sf.write(str(good), tone(1.0, 16000), 16000)
    raw = good.read_bytes()
    p = d / "corrupt.flac"
    p.write_bytes(raw[:42] + np.random.default_rng(2).bytes(len(raw) - 42))
    return p, {}


def _flac_cut_in_first_frame(d: Path) -> tuple[Path, dict[str, Any]]:
    good = d / "ok2.flac"
    x = (np.random.default_rng(3).standard_normal((8000, 1)) * 0.3).astype(np.float32)
    sf.write(str(good), x, 8000, subtype="PCM_16")
    p = d / "cut_first_frame.flac"
    p.write_bytes(good.read_bytes()[:200])
    return p, {}


def _start_past_end(d: Path) -> tuple[Path, dict[str, Any]]:
    return _good_wav(d), {"start": 5.0}


def _bad_window(d: Path) -> tuple[Path, dict[str, Any]]:
    return _good_wav(d), {"start": float("nan"), "duration": float("inf")}


def _hundred_channels(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "hundred.wav"
    sf.write(str(p), np.zeros((100, 100), np.float32), 16000, subtype="PCM_16")
    assert sf.info(str(p)).channels == 100 > MAX_CHANNELS
    return p, {}


def _name_too_long(d: Path) -> tuple[Path, dict[str, Any]]:
    return d / ("x" * 300 + ".wav"), {}


def _dangling_symlink(d: Path) -> tuple[Path, dict[str, Any]]:
    p = d / "link.wav"
    p.symlink_to(d / "gone" / "target.wav")
    return p, {}


def _parent_is_a_file(d: Path) -> tuple[Path, dict[str, Any]]:
    return _good_wav(d) / "inside.wav", {}


def _hostile_name(d: Path) -> tuple[Path, dict[str, Any]]:
    """Garbage under a name with a newline and an escape sequence: the message must stay one line."""
    p = d / "evil\n\x1b[31mname.wav"
    p.write_bytes(b"not audio at all" * 10)
    return p, {}


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


_skip_root = pytest.mark.skipif(_running_as_root(), reason="root can read any file (see the simulated test)")

# (id, builder) pairs as pytest params; tests/test_cli.py runs the same table through the CLI.
BAD_INPUTS = [
    pytest.param(_missing, id="missing file"),
    pytest.param(_directory, id="directory"),
    pytest.param(_empty, id="empty file"),
    pytest.param(_cut_mid_header, id="WAV cut mid-header"),
    pytest.param(_header_claims_data_absent, id="WAV header claims data that is absent"),
    pytest.param(_header_only, id="header-only WAV (0 frames)"),
    pytest.param(_random_wav, id="random bytes as .wav"),
    pytest.param(_text_mp3, id="text file renamed .mp3"),
    pytest.param(_random_flac, id="fLaC magic then random bytes"),
    pytest.param(_float_wav_with(float("nan"), "nan.wav"), id="NaN samples"),
    pytest.param(_float_wav_with(float("inf"), "inf.wav"), id="inf samples"),
    pytest.param(_zero_channels, id="zero channels"),
    pytest.param(_rate(1), id="rate 1 Hz"),
    pytest.param(_rate(4_000_000), id="rate 4 MHz"),
    pytest.param(_fifo, id="FIFO", marks=pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")),
    pytest.param(_dev_null, id="/dev/null", marks=pytest.mark.skipif(os.name != "posix", reason="POSIX")),
    pytest.param(_no_permission, id="no read permission", marks=_skip_root),
    pytest.param(_corrupt_flac, id="corrupt FLAC body"),
    pytest.param(_flac_cut_in_first_frame, id="FLAC cut inside its first frame"),
    pytest.param(_start_past_end, id="start past the end"),
    pytest.param(_bad_window, id="NaN start, inf duration"),
    pytest.param(_hundred_channels, id="100 channels"),
    pytest.param(_name_too_long, id="name too long"),
    pytest.param(_dangling_symlink, id="dangling symlink"),
    pytest.param(_parent_is_a_file, id="parent is a file"),
    pytest.param(_hostile_name, id="newline and escape in name"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("build", BAD_INPUTS)
def test_bad_input_raises_one_line_audio_error(tmp_path: Path, build: Builder) -> None:
    path, kwargs = build(tmp_path)
    with pytest.raises(AudioError) as err:
        load_audio(path, 24000, 1, **kwargs)
    assert_one_line(err.value, path)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("build", BAD_INPUTS)
def test_bad_input_never_escapes_info_or_blocks(tmp_path: Path, build: Builder) -> None:
    """audio_info may succeed (the header can be fine), but only WorkbenchError may escape."""
    path, kwargs = build(tmp_path)
    try:
        audio_info(path)
    except WorkbenchError as exc:
        assert_one_line(exc, path)
    if not kwargs:
        with pytest.raises(AudioError) as err:
            list(iter_blocks(path, 0.25, 24000, 1))
        assert_one_line(err.value, path)


def test_no_read_permission_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The permission case even as root: the open is made to fail the way it would for a user."""
    p = _good_wav(tmp_path)
    real_open = os.open

    def deny(path: Any, *args: Any, **kwargs: Any) -> int:
        if Path(path) == p:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(audio_mod.os, "open", deny)
    with pytest.raises(AudioError, match="permission denied") as err:
        load_audio(p)
    assert_one_line(err.value, p)


def test_bad_target_layout_is_an_audio_error(tmp_path: Path) -> None:
    p = _good_wav(tmp_path)
    for kwargs in ({"sample_rate": 10}, {"channels": -1}, {"channels": MAX_CHANNELS + 1}):
        with pytest.raises(AudioError):
            load_audio(p, **kwargs)
    with pytest.raises(AudioError):
        list(iter_blocks(p, 0.0))


def test_float_wav_keeps_any_level_and_integer_formats_clip(tmp_path: Path) -> None:
    x = (3.0 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)[:, None]
    save_audio(tmp_path / "f.wav", AudioClip(x, 16000))  # FLOAT by default: the samples as they are
    y, _ = sf.read(str(tmp_path / "f.wav"), dtype="float32")
    np.testing.assert_array_equal(y, x[:, 0])
    save_audio(tmp_path / "i.wav", AudioClip(x, 16000), subtype="PCM_16")
    save_audio(tmp_path / "c.flac", AudioClip(x, 16000))
    for name in ("i.wav", "c.flac"):
        y, _ = sf.read(str(tmp_path / name), dtype="float32")
        assert np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.99, name
    with open_audio_writer(tmp_path / "s.wav", 16000, 1) as w:
        w.write(x[:8000])
        w.write(x[8000:])
    y, _ = sf.read(str(tmp_path / "s.wav"), dtype="float32")
    np.testing.assert_array_equal(y, x[:, 0])
    with open_audio_writer(tmp_path / "s.flac", 16000, 1) as w:
        w.write(x)
    y, _ = sf.read(str(tmp_path / "s.flac"), dtype="float32")
    assert np.abs(y).max() <= 1.0
