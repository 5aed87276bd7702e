"""Audio clips, loading and saving.

Samples are float32 arrays shaped ``[n_samples, channels]`` (soundfile's layout), so a mono clip is
``[n, 1]``. Loading validates everything a user can throw at it and converts to the rate and channel
count the caller (usually a codec) needs; failures are `AudioError` with one line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.core.errors import AudioError

MIN_RATE = 1_000
MAX_RATE = 768_000
MAX_CHANNELS = 64
SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


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
        if self.channels == 1:
            return self
        return AudioClip(self.samples.mean(axis=1, keepdims=True), self.sample_rate)

    def with_channels(self, channels: int) -> AudioClip:
        """Mix down to mono or up/down to `channels` the way codecs expect (mono is duplicated)."""
        if channels == self.channels:
            return self
        if channels == 1:
            return self.mono()
        if self.channels == 1:
            return AudioClip(np.repeat(self.samples, channels, axis=1), self.sample_rate)
        if channels == 2:
            # Fold extra channels into a stereo pair: even channels left, odd right.
            left = self.samples[:, 0::2].mean(axis=1)
            right = self.samples[:, 1::2].mean(axis=1)
            return AudioClip(np.stack([left, right], axis=1), self.sample_rate)
        mono = self.samples.mean(axis=1, keepdims=True)
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
    if samples.shape[0] == 0:
        return samples.astype(np.float32)
    import soxr

    out = soxr.resample(np.ascontiguousarray(samples, dtype=np.float32), sr_in, sr_out, quality="HQ")
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 1:
        out = out[:, None]
    return out


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, not an audio file")
    if not p.is_file():
        raise AudioError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: file is empty")
    return p


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    num_samples: int
    format: str

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Header facts without reading samples (soundfile; librosa/audioread for what it can't read)."""
    p = _check_path(path)
    import soundfile as sf

    try:
        info = sf.info(str(p))
        sr, ch, n, fmt = int(info.samplerate), int(info.channels), int(info.frames), str(info.format)
    except Exception:
        sr, ch, n, fmt = _fallback_info(p)
    _validate_header(p, sr, ch, n)
    return AudioInfo(str(p), sr, ch, n, fmt)


def _fallback_info(p: Path) -> tuple[int, int, int, str]:
    try:
        import audioread

        with audioread.audio_open(str(p)) as f:
            sr, ch = int(f.samplerate), int(f.channels)
            n = int(round(float(f.duration) * sr))
        return sr, ch, n, "audioread"
    except Exception as exc:
        raise AudioError(f"{p}: not a readable audio file ({_short(exc)})") from None


def _validate_header(p: Path, sr: int, ch: int, n: int) -> None:
    if ch < 1:
        raise AudioError(f"{p}: audio has no channels")
    if ch > MAX_CHANNELS:
        raise AudioError(f"{p}: {ch} channels is more than the {MAX_CHANNELS} supported")
    if not (MIN_RATE <= sr <= MAX_RATE):
        raise AudioError(f"{p}: sample rate {sr} Hz is outside {MIN_RATE}–{MAX_RATE} Hz")
    if n <= 0:
        raise AudioError(f"{p}: audio contains no samples")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    channels: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
) -> AudioClip:
    """Load a file (or a window of it) as float32 at `sample_rate` with `channels`.

    Only the requested window is read from disk when the format allows seeking (WAV/FLAC/OGG/MP3
    through libsndfile), so a one-hour file costs only what is asked for.
    """
    info = audio_info(path)
    p = Path(info.path)
    if start < 0 or (duration is not None and duration <= 0):
        raise AudioError(f"{p}: invalid window start={start} duration={duration}")
    a = int(round(start * info.sample_rate))
    if a >= info.num_samples:
        raise AudioError(f"{p}: start {start:.2f} s is past the end ({info.duration:.2f} s)")
    b = info.num_samples if duration is None else min(info.num_samples, a + int(round(duration * info.sample_rate)))
    data = _read(p, info, a, b)
    if data.shape[0] == 0:
        raise AudioError(f"{p}: audio contains no samples (truncated?)")
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: audio contains NaN or infinite samples")
    clip = AudioClip(data, info.sample_rate)
    sr = sample_rate or clip.sample_rate
    ch = channels or clip.channels
    return clip.to(sr, ch)


def _read(p: Path, info: AudioInfo, a: int, b: int) -> np.ndarray:
    import soundfile as sf

    if info.format != "audioread":
        try:
            with sf.SoundFile(str(p)) as f:
                if a:
                    f.seek(a)
                data = f.read(b - a, dtype="float32", always_2d=True)
            return np.asarray(data, dtype=np.float32)
        except AudioError:
            raise
        except Exception as exc:
            # A truncated or corrupt body: try the slower decoder before giving up.
            try:
                return _read_librosa(p, info, a, b)
            except AudioError:
                raise AudioError(f"{p}: cannot decode audio ({_short(exc)})") from None
    return _read_librosa(p, info, a, b)


def _read_librosa(p: Path, info: AudioInfo, a: int, b: int) -> np.ndarray:
    import warnings

    try:
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y, _ = librosa.load(
                str(p), sr=None, mono=False, offset=a / info.sample_rate, duration=(b - a) / info.sample_rate
            )
    except Exception as exc:
        raise AudioError(f"{p}: cannot decode audio ({_short(exc)})") from None
    y = np.asarray(y, dtype=np.float32)
    return y[:, None] if y.ndim == 1 else y.T.copy()


def iter_blocks(
    path: str | os.PathLike[str], block_seconds: float, sample_rate: int | None = None, channels: int | None = None
) -> Iterator[AudioClip]:
    """Stream a long file in windows, so memory stays bounded whatever its length."""
    info = audio_info(path)
    t = 0.0
    while t < info.duration - 1e-9:
        yield load_audio(path, sample_rate, channels, start=t, duration=block_seconds)
        t += block_seconds


def save_audio(path: str | os.PathLike[str], clip: AudioClip, subtype: str | None = None) -> Path:
    """Write WAV/FLAC/OGG atomically: a temp file in the same folder, fsync, then rename."""
    import soundfile as sf

    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise AudioError(f"{p}: cannot write '{p.suffix or 'no extension'}'; use .wav, .flac or .ogg")
    if not p.parent.exists():
        raise AudioError(f"{p.parent}: output folder does not exist")
    if not np.isfinite(clip.samples).all():
        raise AudioError(f"{p}: refusing to write NaN or infinite samples")
    data = np.clip(clip.samples, -1.0, 1.0)
    if subtype is None:
        subtype = "FLOAT" if fmt == "WAV" else ("PCM_24" if fmt == "FLAC" else "VORBIS")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=str(p.parent))
    os.close(fd)
    try:
        sf.write(tmp, data, clip.sample_rate, format=fmt, subtype=subtype)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, AudioError):
            raise
        raise AudioError(f"{p}: cannot write audio ({_short(exc)})") from None
    return p
