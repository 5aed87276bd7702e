"""Audio clips, loading and saving.

Samples are float32 arrays shaped ``[n_samples, channels]`` (soundfile's layout), so a mono clip is
``[n, 1]``. Loading validates everything a user can throw at it and converts to the rate and channel
count the caller (usually a codec) needs; failures are `AudioError` with one line that names the file.

Behaviour on damaged files (chosen so a user gets either usable audio or one clear line):

- Only regular files are opened. Pipes, devices and sockets are refused before any decoder sees them,
  because libsndfile and ffmpeg can block forever on a FIFO or read endlessly from ``/dev/zero``.
- A truncated file loads what can be decoded up to the cut (the header's length is an upper bound,
  as in most audio tools); if nothing at all decodes, it is an error. A WAV whose header was never
  finalised (data size 0, as left by a crashed recorder) is read by ffmpeg instead.
- Formats libsndfile cannot read (or cannot open) go to ffmpeg through audioread, streamed, so a window
  of such a file costs memory for the window only. librosa is deliberately not used here: importing it
  takes seconds, which every bad file would pay.
- NaN or infinite samples, no channels, more than `MAX_CHANNELS`, or a rate outside
  `MIN_RATE`..`MAX_RATE` are errors; nothing is silently repaired.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import AudioError

MIN_RATE = 1_000
MAX_RATE = 768_000
MAX_CHANNELS = 64
SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}

# Frames per libsndfile read: small enough that a read error mid-file loses little (we keep what came
# before it), large enough that the per-call overhead vanishes.
_READ_CHUNK = 1 << 16

_G = 1.0 / math.sqrt(2.0)  # -3 dB, the ITU-R BS.775 weight of centre and surrounds in a stereo downmix
# WAVE default channel orders (dwChannelMask order) of the usual surround layouts.
_SURROUND_ORDERS = {
    3: ("L", "R", "C"),
    4: ("L", "R", "Lb", "Rb"),
    5: ("L", "R", "C", "Lb", "Rb"),
    6: ("L", "R", "C", "LFE", "Lb", "Rb"),
    7: ("L", "R", "C", "LFE", "Cb", "Ls", "Rs"),
    8: ("L", "R", "C", "LFE", "Lb", "Rb", "Ls", "Rs"),
}
_STEREO_GAINS = {
    "L": (1.0, 0.0),
    "R": (0.0, 1.0),
    "C": (_G, _G),
    "Cb": (_G, _G),
    "LFE": (0.0, 0.0),  # dropped, as in ITU downmixes: it would only add rumble to both sides
    "Lb": (_G, 0.0),
    "Rb": (0.0, _G),
    "Ls": (_G, 0.0),
    "Rs": (0.0, _G),
}


def _stereo_matrix(channels: int) -> np.ndarray:
    """[channels, 2] downmix weights; each column sums to 1, so the result never exceeds full scale.

    3 to 8 channels are taken to be the WAVE default surround layouts (5.1 is L R C LFE Ls Rs); any
    other count folds even channels left and odd channels right.
    """
    order = _SURROUND_ORDERS.get(channels)
    if order is not None:
        m = np.array([_STEREO_GAINS[name] for name in order], dtype=np.float64)
    else:
        m = np.zeros((channels, 2))
        m[0::2, 0] = 1.0
        m[1::2, 1] = 1.0
    m /= m.sum(axis=0, keepdims=True)
    return m.astype(np.float32)


def _show(p: str | os.PathLike[str]) -> str:
    """A path as it may appear in a one-line message: control characters (newlines, escape sequences
    in hostile file names) become '?', so a name cannot break the line or the terminal."""
    return "".join(c if c.isprintable() else "?" for c in str(p))


@dataclass(frozen=True)
class AudioClip:
    samples: np.ndarray  # float32 [n, channels]
    sample_rate: int

    def __post_init__(self) -> None:
        s = np.asarray(self.samples)
        if s.ndim == 1:
            s = s[:, None]
        if s.ndim != 2:
            raise AudioError(f"audio must be [samples, channels], got shape {tuple(s.shape)}")
        if s.shape[1] < 1:
            raise AudioError("audio must have at least one channel")
        object.__setattr__(self, "samples", np.ascontiguousarray(s, dtype=np.float32))
        if not (MIN_RATE <= int(self.sample_rate) <= MAX_RATE):
            raise AudioError(f"sample rate {self.sample_rate} Hz is outside {MIN_RATE}–{MAX_RATE} Hz")
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def mono(self) -> AudioClip:
        """Average of the channels; surround layouts go through the stereo downmix first, so the
        centre is not drowned by the surrounds and the LFE is left out."""
        if self.channels == 1:
            return self
        if self.channels in _SURROUND_ORDERS:
            w = _stereo_matrix(self.channels).mean(axis=1, keepdims=True)
            return AudioClip(self.samples @ w, self.sample_rate)
        return AudioClip(self.samples.mean(axis=1, keepdims=True), self.sample_rate)

    def with_channels(self, channels: int) -> AudioClip:
        """Mix down to mono or up/down to `channels` the way codecs expect (mono is duplicated)."""
        channels = int(channels)
        if not (1 <= channels <= MAX_CHANNELS):
            raise AudioError(f"cannot convert audio to {channels} channels (1–{MAX_CHANNELS})")
        if channels == self.channels:
            return self
        if channels == 1:
            return self.mono()
        if self.channels == 1:
            return AudioClip(np.repeat(self.samples, channels, axis=1), self.sample_rate)
        if channels == 2:
            return AudioClip(self.samples @ _stereo_matrix(self.channels), self.sample_rate)
        mono = self.mono().samples
        return AudioClip(np.repeat(mono, channels, axis=1), self.sample_rate)

    def resample(self, sample_rate: int) -> AudioClip:
        if sample_rate == self.sample_rate:
            return self
        return AudioClip(resample(self.samples, self.sample_rate, sample_rate), sample_rate)

    def to(self, sample_rate: int, channels: int) -> AudioClip:
        """Convert to a codec's layout; channel change first so resampling runs on fewer channels."""
        clip = self.with_channels(channels) if channels < self.channels else self
        clip = clip.resample(sample_rate)
        return clip.with_channels(channels)

    def slice(self, start: float, stop: float | None = None) -> AudioClip:
        a = max(0, int(round(start * self.sample_rate)))
        b = self.num_samples if stop is None else min(self.num_samples, int(round(stop * self.sample_rate)))
        return AudioClip(self.samples[a:max(a, b)], self.sample_rate)


def resample(samples: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr), [n, ch] float32 in and out."""
    if sr_in == sr_out:
        return samples
    if not (MIN_RATE <= int(sr_out) <= MAX_RATE):
        raise AudioError(f"sample rate {sr_out} Hz is outside {MIN_RATE}–{MAX_RATE} Hz")
    if samples.shape[0] == 0:
        return samples.astype(np.float32)
    import soxr

    out = soxr.resample(np.ascontiguousarray(samples, dtype=np.float32), sr_in, sr_out, quality="HQ")
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 1:
        out = out[:, None]
    return out


def _check_path(path: str | os.PathLike[str]) -> Path:
    """Refuse what no decoder should be handed: missing paths, folders, pipes, devices, empty files,
    unreadable files. Pipes are refused by `stat` before anything opens them (opening a FIFO blocks)."""
    p = Path(path)
    name = _show(p)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise AudioError(f"{name}: no such file") from None
    except NotADirectoryError:
        raise AudioError(f"{name}: no such file (a parent is not a folder)") from None
    except PermissionError:
        raise AudioError(f"{name}: permission denied") from None
    except (OSError, ValueError) as exc:  # name too long, symlink loop, NUL in the name, ...
        raise AudioError(f"{name}: cannot access file ({_short(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{name}: is a folder, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{name}: not a regular file (a pipe, device or socket); save the audio to a file")
    if st.st_size == 0:
        raise AudioError(f"{name}: file is empty")
    # Open once ourselves, non-blocking (should the path have turned into a FIFO since the stat), so a
    # permission problem is reported as such rather than as a decoder's "unknown format".
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise AudioError(f"{name}: permission denied") from None
    except OSError as exc:
        raise AudioError(f"{name}: cannot open file ({_short(exc)})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AudioError(f"{name}: not a regular file (a pipe, device or socket)")
    finally:
        os.close(fd)
    return p


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    num_samples: int  # from the header; an upper bound for truncated files, an estimate via ffmpeg
    format: str  # libsndfile's format name, or "audioread" for files only ffmpeg can read

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Header facts without reading samples (libsndfile; ffmpeg via audioread for what it can't read)."""
    p = _check_path(path)
    import soundfile as sf

    try:
        info = sf.info(str(p))
        sr, ch, n, fmt = int(info.samplerate), int(info.channels), int(info.frames), str(info.format)
    except Exception:
        sr, ch, n, fmt = _fallback_info(p)
    else:
        if n <= 0 and 1 <= ch <= MAX_CHANNELS and MIN_RATE <= sr <= MAX_RATE:
            # A WAV whose sizes were never filled in (crashed recorder) says 0 frames; ffmpeg reads it.
            try:
                sr, ch, n, fmt = _fallback_info(p)
            except AudioError:
                pass
    _validate_header(p, sr, ch, n)
    return AudioInfo(str(p), sr, ch, n, fmt)


def _audioread_backends() -> list[Any]:
    """audioread's decoders minus its stdlib WAV/AIFF reader: libsndfile already read those better, and
    the stdlib reader accepts a zero-size data chunk as "no audio" where ffmpeg reads what is there."""
    import audioread

    backends = list(audioread.available_backends())
    return [b for b in backends if b.__name__ != "RawAudioFile"] or backends


def _audioread_open(p: Path) -> Any:
    import audioread

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return audioread.audio_open(str(p), backends=_audioread_backends())
        except Exception as exc:
            why = "unknown or damaged format" if type(exc).__name__ == "NoBackendError" else _short(exc)
            raise AudioError(f"{_show(p)}: not a readable audio file ({why})") from None


def _fallback_info(p: Path) -> tuple[int, int, int, str]:
    f = _audioread_open(p)
    try:
        with f:
            sr, ch = int(f.samplerate), int(f.channels)
            n = int(round(float(f.duration or 0.0) * sr))
    except Exception as exc:
        raise AudioError(f"{_show(p)}: not a readable audio file ({_short(exc)})") from None
    return sr, ch, n, "audioread"


def _validate_header(p: Path, sr: int, ch: int, n: int) -> None:
    if ch < 1:
        raise AudioError(f"{_show(p)}: audio has no channels")
    if ch > MAX_CHANNELS:
        raise AudioError(f"{_show(p)}: {ch} channels is more than the {MAX_CHANNELS} supported")
    if not (MIN_RATE <= sr <= MAX_RATE):
        raise AudioError(f"{_show(p)}: sample rate {sr} Hz is outside {MIN_RATE}–{MAX_RATE} Hz")
    if n <= 0:
        raise AudioError(f"{_show(p)}: audio contains no samples")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _show(text[:160])


def _check_target(sample_rate: int | None, channels: int | None) -> None:
    if sample_rate is not None and not (MIN_RATE <= int(sample_rate) <= MAX_RATE):
        raise AudioError(f"sample rate {sample_rate} Hz is outside {MIN_RATE}–{MAX_RATE} Hz")
    if channels is not None and not (1 <= int(channels) <= MAX_CHANNELS):
        raise AudioError(f"cannot convert audio to {channels} channels (1–{MAX_CHANNELS})")


class _Undecodable(Exception):
    """libsndfile opened the header but could not decode a single frame: worth asking ffmpeg."""


def _sndfile_chunks(p: Path, a: int, b: int) -> Iterator[np.ndarray]:
    """Frames [a, b) in chunks. Raises `_Undecodable` before the first chunk if nothing decodes; after
    that a decode error ends the stream (a truncated or damaged tail: keep what came before it)."""
    import soundfile as sf

    try:
        f = sf.SoundFile(str(p))
    except Exception as exc:
        raise _Undecodable(_short(exc)) from None
    try:
        if a:
            f.seek(a)
        first = f.read(min(_READ_CHUNK, b - a), dtype="float32", always_2d=True)
    except Exception as exc:
        f.close()
        raise _Undecodable(_short(exc)) from None
    if len(first) == 0:
        f.close()
        raise _Undecodable("no frames decoded")
    return _sndfile_rest(f, first, a, b)


def _sndfile_rest(f: Any, first: np.ndarray, a: int, b: int) -> Iterator[np.ndarray]:
    with f:
        yield first
        pos = a + len(first)
        if len(first) < min(_READ_CHUNK, b - a):
            return
        while pos < b:
            want = min(_READ_CHUNK, b - pos)
            try:
                data = f.read(want, dtype="float32", always_2d=True)
            except Exception:
                return  # damaged or cut off here: the frames so far stand
            if len(data):
                yield data
            pos += len(data)
            if len(data) < want:
                return


def _audioread_chunks(p: Path, a_sec: float, b_sec: float | None) -> tuple[int, int, Iterator[np.ndarray]]:
    """ffmpeg's decode of [a_sec, b_sec) streamed as float32 chunks (int16 underneath)."""
    f = _audioread_open(p)
    try:
        sr, ch = int(f.samplerate), int(f.channels)
    except Exception as exc:
        f.close()
        raise AudioError(f"{_show(p)}: not a readable audio file ({_short(exc)})") from None
    if ch < 1 or ch > MAX_CHANNELS or not (MIN_RATE <= sr <= MAX_RATE):
        f.close()
        _validate_header(p, sr, ch, 1)
    a = int(round(a_sec * sr))
    b = None if b_sec is None else int(round(b_sec * sr))

    def chunks() -> Iterator[np.ndarray]:
        frame_bytes = 2 * ch
        carry = b""
        pos = 0
        with f:
            try:
                for buf in f:
                    data = carry + bytes(buf)
                    usable = len(data) - len(data) % frame_bytes
                    carry = data[usable:]
                    x = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, ch)
                    lo = max(a - pos, 0)
                    hi = len(x) if b is None else min(len(x), b - pos)
                    if hi > lo:
                        yield x[lo:hi].astype(np.float32) * np.float32(1.0 / 32768.0)
                    pos += len(x)
                    if b is not None and pos >= b:
                        return
            except Exception:
                return  # decoder gave up mid-stream: keep what came before, as with libsndfile

    return sr, ch, chunks()


def _open_chunks(p: Path, info: AudioInfo, a: int, b: int | None) -> tuple[int, int, Iterator[np.ndarray]]:
    """(rate, channels, chunks) of frames [a, b) (b=None: to the end), libsndfile first, then ffmpeg."""
    if info.format != "audioread":
        end = info.num_samples if b is None else min(b, info.num_samples)
        try:
            return info.sample_rate, info.channels, _sndfile_chunks(p, a, end)
        except _Undecodable:
            pass  # e.g. a FLAC damaged at its first frame: ffmpeg resynchronises where libsndfile stops
    sr = info.sample_rate
    return _audioread_chunks(p, a / sr, None if b is None else b / sr)


def _gather(p: Path, chunks: Iterator[np.ndarray], size_hint: int | None, channels: int) -> np.ndarray:
    """Concatenate chunks; with a reliable size (libsndfile), fill one preallocated array instead, so a
    long file needs its own size in memory, not twice that."""
    if size_hint is None:
        parts = list(chunks)
        if not parts:
            return np.zeros((0, channels), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    try:
        out = np.empty((size_hint, channels), dtype=np.float32)
    except MemoryError:
        raise AudioError(f"{_show(p)}: too long to load at once; load a window (start/duration)") from None
    pos = 0
    for x in chunks:
        k = min(len(x), size_hint - pos)
        out[pos : pos + k] = x[:k]
        pos += k
        if pos >= size_hint:
            break
    return out[:pos] if pos > size_hint // 2 else out[:pos].copy()


def _check_window(p: Path, start: float, duration: float | None) -> None:
    ok = isinstance(start, (int, float)) and math.isfinite(start) and start >= 0
    if duration is not None:
        ok = ok and isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0
    if not ok:
        raise AudioError(f"{_show(p)}: invalid window start={start} duration={duration}")


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    channels: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
) -> AudioClip:
    """Load a file (or a window of it) as float32 at `sample_rate` with `channels`.

    Only the requested window is read from disk when the format allows seeking (WAV/FLAC/OGG/MP3
    through libsndfile), so a one-hour file costs only what is asked for. A truncated file gives what
    decodes before the cut (see the module docstring).
    """
    _check_target(sample_rate, channels)
    info = audio_info(path)
    p = Path(info.path)
    _check_window(p, start, duration)
    sr = info.sample_rate
    a = int(round(start * sr))
    if a >= info.num_samples:
        raise AudioError(f"{_show(p)}: start {start:.2f} s is past the end ({info.duration:.2f} s)")
    b = None if duration is None else a + max(1, int(round(duration * sr)))
    src_sr, src_ch, chunks = _open_chunks(p, info, a, b)
    size = None
    if info.format != "audioread":
        size = (info.num_samples if b is None else min(b, info.num_samples)) - a
    data = _gather(p, chunks, size, src_ch)
    if data.shape[0] == 0:
        where = f" from {start:.2f} s" if a else ""
        raise AudioError(f"{_show(p)}: no audio could be decoded{where} (file truncated or corrupt)")
    if not np.isfinite(data).all():
        raise AudioError(f"{_show(p)}: audio contains NaN or infinite samples")
    clip = AudioClip(data, src_sr)
    return clip.to(sample_rate or clip.sample_rate, channels or clip.channels)


def iter_blocks(
    path: str | os.PathLike[str],
    block_seconds: float,
    sample_rate: int | None = None,
    channels: int | None = None,
) -> Iterator[AudioClip]:
    """Stream a long file in consecutive blocks of `block_seconds` (the last may be shorter).

    The file is opened once and resampled as one stream, so memory stays bounded whatever its length,
    formats without seeking are decoded once (not once per block), and blocks join without the edge
    effects of resampling each block on its own: concatenated, they match `load_audio` of the file.
    """
    _check_target(sample_rate, channels)
    info = audio_info(path)
    p = Path(info.path)
    if not (isinstance(block_seconds, (int, float)) and math.isfinite(block_seconds) and block_seconds > 0):
        raise AudioError(f"{_show(p)}: invalid block length {block_seconds} s")
    src_sr, src_ch, chunks = _open_chunks(p, info, 0, None)
    sr_out = int(sample_rate or src_sr)
    ch_out = int(channels or src_ch)
    mid = min(src_ch, ch_out)  # mix down before resampling, up after, as AudioClip.to does
    block = max(1, int(round(block_seconds * sr_out)))
    stream: Any = None
    if sr_out != src_sr:
        import soxr

        stream = soxr.ResampleStream(src_sr, sr_out, mid, dtype="float32", quality="HQ")
    pending: list[np.ndarray] = []
    n_pending = 0
    n_read = 0

    def take(n: int) -> AudioClip:
        nonlocal n_pending
        joined = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=0)
        pending.clear()
        if len(joined) > n:
            pending.append(joined[n:])
        n_pending = len(joined) - min(n, len(joined))
        return AudioClip(joined[:n], sr_out).with_channels(ch_out)

    for raw in chunks:
        if not np.isfinite(raw).all():
            raise AudioError(f"{_show(p)}: audio contains NaN or infinite samples")
        n_read += len(raw)
        x = AudioClip(raw, src_sr).with_channels(mid).samples
        if stream is not None:
            x = np.asarray(stream.resample_chunk(x, last=False), dtype=np.float32).reshape(-1, mid)
        pending.append(x)
        n_pending += len(x)
        while n_pending >= block:
            yield take(block)
    if n_read == 0:
        raise AudioError(f"{_show(p)}: no audio could be decoded (file truncated or corrupt)")
    if stream is not None:
        tail = stream.resample_chunk(np.zeros((0, mid), np.float32), last=True)
        tail = np.asarray(tail, dtype=np.float32).reshape(-1, mid)
        pending.append(tail)
        n_pending += len(tail)
    while n_pending > 0:
        yield take(min(block, n_pending))


def _save_target(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Checks shared by `save_audio` and `open_audio_writer`: (path, libsndfile format)."""
    p = Path(path)
    name = _show(p)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        ext = _show(p.suffix) or "no extension"
        raise AudioError(f"{name}: cannot write '{ext}'; use .wav, .flac or .ogg")
    if not p.parent.is_dir():
        raise AudioError(f"{_show(p.parent)}: output folder does not exist")
    if p.is_dir():
        raise AudioError(f"{name}: is a folder")
    return p, fmt


def _default_subtype(fmt: str) -> str:
    return "FLOAT" if fmt == "WAV" else ("PCM_24" if fmt == "FLAC" else "VORBIS")


def _clips(subtype: str) -> bool:
    """Integer and lossy encodings hold [-1, 1] only, so samples are clipped to it; float WAV keeps any
    level (a `--no-limit` export is the raw decode, however loud)."""
    return subtype.upper() not in ("FLOAT", "DOUBLE")


def save_audio(path: str | os.PathLike[str], clip: AudioClip, subtype: str | None = None) -> Path:
    """Write WAV/FLAC/OGG atomically (`workbench.core.fileio.atomic_path`: temp file, fsync, rename).

    The target is never left half-written: on any failure it keeps its old content (or stays absent)
    and the temp file is removed. The temp file is created with the usual umask-governed permissions
    (not mkstemp's 0600), so an exported file is as readable as any other the user creates.
    """
    import soundfile as sf

    from workbench.core.fileio import atomic_path

    p, fmt = _save_target(path)
    name = _show(p)
    if clip.num_samples == 0:
        raise AudioError(f"{name}: nothing to write (the audio has no samples)")
    if not np.isfinite(clip.samples).all():
        raise AudioError(f"{name}: refusing to write NaN or infinite samples")
    st = subtype or _default_subtype(fmt)
    data = np.clip(clip.samples, -1.0, 1.0) if _clips(st) else clip.samples
    try:
        with atomic_path(p) as tmp:
            sf.write(str(tmp), data, clip.sample_rate, format=fmt, subtype=st)
    except Exception as exc:
        if isinstance(exc, AudioError):
            raise
        raise AudioError(f"{name}: cannot write audio ({_short(exc)})") from None
    return p


class AudioWriter:
    """Blocks appended to an audio file being written by `open_audio_writer`."""

    def __init__(self, f: Any, path: Path, channels: int, clip: bool = True) -> None:
        self._f = f
        self.path = path
        self.channels = channels
        self.clip = clip
        self.frames = 0

    def write(self, block: AudioClip | np.ndarray) -> None:
        x = block.samples if isinstance(block, AudioClip) else np.asarray(block, np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise AudioError(f"{_show(self.path)}: block of shape {tuple(x.shape)} does not fit {self.channels} channel(s)")
        if not np.isfinite(x).all():
            raise AudioError(f"{_show(self.path)}: refusing to write NaN or infinite samples")
        try:
            self._f.write(np.clip(x, -1.0, 1.0) if self.clip else x)
        except Exception as exc:
            raise AudioError(f"{_show(self.path)}: cannot write audio ({_short(exc)})") from None
        self.frames += int(x.shape[0])


@contextlib.contextmanager
def open_audio_writer(
    path: str | os.PathLike[str], sample_rate: int, channels: int, subtype: str | None = None
) -> Iterator[AudioWriter]:
    """``with open_audio_writer(p, sr, ch) as w: w.write(block) ...``: a long output written block by
    block (bounded memory), atomically like `save_audio`: the target appears only when the block
    ends without an error, complete; an exception (or a kill) leaves the old file as it was."""
    import soundfile as sf

    from workbench.core.fileio import atomic_path

    p, fmt = _save_target(path)
    name = _show(p)
    if not (MIN_RATE <= int(sample_rate) <= MAX_RATE) or not (1 <= int(channels) <= MAX_CHANNELS):
        raise AudioError(f"{name}: cannot write {channels} channel(s) at {sample_rate} Hz")
    st = subtype or _default_subtype(fmt)
    try:
        with atomic_path(p) as tmp:
            try:
                f = sf.SoundFile(str(tmp), "w", int(sample_rate), int(channels), st, format=fmt)
            except Exception as exc:
                raise AudioError(f"{name}: cannot write audio ({_short(exc)})") from None
            with f:
                w = AudioWriter(f, p, int(channels), clip=_clips(st))
                yield w
            if w.frames == 0:
                raise AudioError(f"{name}: nothing to write (the audio has no samples)")
    except OSError as exc:
        raise AudioError(f"{name}: cannot write audio ({_short(exc)})") from None
