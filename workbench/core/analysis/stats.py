"""Per-feature statistics over a corpus: how often and how strongly a feature fires, where it fires most,
what it sounds like at several strengths, and what its own decoder direction sounds like.

Everything here works from a dense activation matrix ``features [N, d_sae]`` whose rows are codec frames
of a corpus (`corpus.CorpusFrames`: ``clip_ids``, ``frame_index``; frame ``t`` of a clip is centred at
``t / frame_rate`` s, see `descriptors`).

- ``density``: share of frames where the feature is > 0; ``max_activation``, ``mean_activation`` (over
  the frames where it fires).
- ``histogram``: counts of the non-zero activations in `bins` equal bins over ``(0, max]`` (zeros are
  reported as ``fires`` vs frames, not in the histogram: they would dwarf everything else).
- ``top``: the top-k activating *moments*. Neighbouring frames of one note all fire together, so a plain
  top-k would return k frames of the same note: a frame is kept only if no kept moment of the same clip
  lies within ``min_gap`` seconds, and at most ``max_per_clip`` moments per clip are kept.
- ``quantiles``: one moment at each activation quantile of the firing frames (the frame whose
  activation is nearest to that quantile), to hear the feature at typical, not only extreme, strength.

The feature's own sound (`feature_sound`): the constant latent ``z = mean_z + a · W_dec[j]`` held for
about a second and decoded by the codec, with ``a`` the feature's maximum activation (the size of the
push the feature gives z when it fires hardest) and ``mean_z`` the corpus' mean latent. Decoding
``mean_z`` alone (`reference_sound`) is the baseline to compare with.

Thumbnails (`spectrogram_png`) are log-frequency spectrograms written as PNG with numpy and zlib (no
plotting library), with the moment marked by a thin vertical line.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.core.errors import DataError, UsageError

DEFAULT_QUANTILES = (0.25, 0.5, 0.75)


@dataclass
class Moment:
    """One frame of the corpus where a feature fires."""

    clip: int
    frame: int
    time: float  # seconds from the clip's start (the frame's centre)
    activation: float

    def to_dict(self) -> dict[str, Any]:
        return {"clip": self.clip, "frame": self.frame, "time": round(self.time, 4),
                "activation": float(self.activation)}


@dataclass
class FeatureStats:
    feature: int
    frames: int  # frames looked at
    fires: int  # frames where the feature is > 0
    max_activation: float
    mean_activation: float  # over the frames where it fires (0 if it never does)
    hist_counts: np.ndarray  # [bins] int64, non-zero activations only
    hist_edges: np.ndarray  # [bins + 1] float64
    top: list[Moment] = field(default_factory=list)
    quantiles: list[tuple[float, Moment]] = field(default_factory=list)

    @property
    def density(self) -> float:
        return self.fires / self.frames if self.frames else 0.0

    @property
    def live(self) -> bool:
        return self.fires > 0

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "frames": self.frames, "fires": self.fires, "density": self.density,
                "max_activation": self.max_activation, "mean_activation": self.mean_activation,
                "histogram": {"counts": self.hist_counts.tolist(), "edges": self.hist_edges.tolist()},
                "top": [m.to_dict() for m in self.top],
                "quantiles": [{"q": q, **m.to_dict()} for q, m in self.quantiles]}


# -- statistics ---------------------------------------------------------------------------------------

def _top_moments(x: np.ndarray, nz: np.ndarray, clip_ids: np.ndarray, frame_index: np.ndarray, frame_rate: float,
                 top_k: int, min_gap: int, max_per_clip: int, max_scan: int = 50_000) -> list[Moment]:
    """Greedy non-maximum suppression over the firing frames, strongest first."""
    order = nz[np.argsort(-x[nz], kind="stable")][:max_scan]
    kept: dict[int, list[int]] = {}
    out: list[Moment] = []
    for i in order:
        c = int(clip_ids[i])
        f = int(frame_index[i])
        prev = kept.setdefault(c, [])
        if len(prev) >= max_per_clip or any(abs(f - p) < min_gap for p in prev):
            continue
        prev.append(f)
        out.append(Moment(c, f, f / frame_rate, float(x[i])))
        if len(out) >= top_k:
            break
    return out


def _quantile_moments(x: np.ndarray, nz: np.ndarray, clip_ids: np.ndarray, frame_index: np.ndarray,
                      frame_rate: float, quantiles: Sequence[float], rng: np.random.Generator,
                      avoid: set[tuple[int, int]]) -> list[tuple[float, Moment]]:
    vals = x[nz]
    out: list[tuple[float, Moment]] = []
    for q in quantiles:
        target = float(np.quantile(vals, q))
        d = np.abs(vals - target)
        best = np.flatnonzero(d <= d.min() + 1e-12 * max(1.0, abs(target)))
        cands = [int(nz[b]) for b in best if (int(clip_ids[nz[b]]), int(frame_index[nz[b]])) not in avoid]
        if not cands:  # every nearest frame is already shown: take the nearest other frame
            rest = np.argsort(d, kind="stable")
            cands = [int(nz[b]) for b in rest[:64] if (int(clip_ids[nz[b]]), int(frame_index[nz[b]])) not in avoid]
            cands = cands[:1] or [int(nz[best[0]])]
        i = cands[int(rng.integers(len(cands)))]
        m = Moment(int(clip_ids[i]), int(frame_index[i]), int(frame_index[i]) / frame_rate, float(x[i]))
        avoid.add((m.clip, m.frame))
        out.append((float(q), m))
    return out


def feature_stats(
    features: np.ndarray,
    clip_ids: np.ndarray,
    frame_index: np.ndarray,
    frame_rate: float,
    *,
    which: Sequence[int] | None = None,
    top_k: int = 8,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    bins: int = 24,
    min_gap: float = 0.5,
    max_per_clip: int = 2,
    seed: int = 0,
    block: int = 64,
) -> list[FeatureStats]:
    """Statistics of the features `which` (default all) over the frames of a corpus (module docstring)."""
    x_all = np.asarray(features)
    if x_all.ndim != 2:
        raise UsageError(f"features must be [frames, d_sae], got shape {tuple(x_all.shape)}")
    n, d_sae = x_all.shape
    clip_ids = np.asarray(clip_ids)
    frame_index = np.asarray(frame_index)
    if clip_ids.shape != (n,) or frame_index.shape != (n,):
        raise UsageError("clip_ids and frame_index must have one entry per frame")
    if frame_rate <= 0:
        raise UsageError(f"frame rate must be positive, got {frame_rate}")
    if top_k < 0 or bins < 1 or max_per_clip < 1:
        raise UsageError("top_k must be >= 0, bins and max_per_clip >= 1")
    for q in quantiles:
        if not 0.0 <= q <= 1.0:
            raise UsageError(f"quantiles must be in [0, 1], got {q}")
    idx = list(range(d_sae)) if which is None else [int(j) for j in which]
    for j in idx:
        if not 0 <= j < d_sae:
            raise UsageError(f"feature {j} is out of range (the SAE has {d_sae})")
    gap = max(1, int(round(min_gap * frame_rate)))
    rng = np.random.default_rng(seed)
    out: list[FeatureStats] = []
    for s in range(0, len(idx), block):
        cols = idx[s : s + block]
        xb = np.ascontiguousarray(x_all[:, cols].T, dtype=np.float32)  # [b, N], one contiguous row each
        for r, j in enumerate(cols):
            x = xb[r]
            nz = np.flatnonzero(x > 0)
            if nz.size == 0:
                out.append(FeatureStats(j, n, 0, 0.0, 0.0, np.zeros(bins, np.int64), np.linspace(0.0, 1.0, bins + 1)))
                continue
            vals = x[nz]
            mx = float(vals.max())
            counts, edges = np.histogram(vals, bins=bins, range=(0.0, mx if mx > 0 else 1.0))
            top = _top_moments(x, nz, clip_ids, frame_index, frame_rate, top_k, gap, max_per_clip)
            avoid = {(m.clip, m.frame) for m in top}
            qs = _quantile_moments(x, nz, clip_ids, frame_index, frame_rate, quantiles, rng, avoid)
            out.append(FeatureStats(j, n, int(nz.size), mx, float(vals.mean()), counts.astype(np.int64),
                                    edges.astype(np.float64), top, qs))
    return out


def stats_from_frames(frames: Any, **kwargs: Any) -> list[FeatureStats]:
    """`feature_stats` on a `corpus.CorpusFrames` (which must hold SAE features)."""
    if frames.features.shape[1] == 0:
        raise UsageError("these corpus frames hold no SAE features")
    return feature_stats(frames.features, frames.clip_ids, frames.frame_index, frames.frame_rate, **kwargs)


# -- audio --------------------------------------------------------------------------------------------

def fade(x: np.ndarray, sample_rate: int, seconds: float = 0.005) -> np.ndarray:
    """Short linear fade-in and fade-out (snippets cut mid-note would otherwise click)."""
    y = np.array(x, np.float32, copy=True)
    n = min(int(round(seconds * sample_rate)), y.shape[0] // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def snippet(audio: np.ndarray, sample_rate: int, time: float, before: float = 0.3,
            after: float = 0.5) -> tuple[np.ndarray, float]:
    """(samples, offset): `before` s of context before `time` and `after` s after it, cut at the clip's
    edges; `offset` is where `time` falls inside the snippet (seconds). Faded in and out."""
    a = np.asarray(audio, np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.size == 0:
        raise DataError("cannot cut a snippet from empty audio")
    c = int(round(time * sample_rate))
    lo = max(0, c - int(round(before * sample_rate)))
    hi = min(a.shape[0], c + int(round(after * sample_rate)))
    if hi <= lo:  # the moment is past the end (the codec pads its last frame): keep the tail
        lo, hi = max(0, a.shape[0] - int(round((before + after) * sample_rate))), a.shape[0]
    return fade(a[lo:hi], sample_rate), (c - lo) / sample_rate


class ClipAudio:
    """Mono audio of the corpus clips at one sample rate, loaded on demand and kept for a few clips."""

    def __init__(self, paths: Sequence[str], sample_rate: int, keep: int = 8,
                 arrays: dict[int, np.ndarray] | None = None) -> None:
        self.paths = list(paths)
        self.sample_rate = int(sample_rate)
        self.keep = max(1, int(keep))
        self._cache: dict[int, np.ndarray] = {}
        self._fixed = dict(arrays or {})  # clips given in memory (no file to read)

    def __call__(self, clip: int) -> np.ndarray:
        if clip in self._fixed:
            return self._fixed[clip]
        hit = self._cache.pop(clip, None)
        if hit is None:
            from workbench.core.audio import load_audio

            if not 0 <= clip < len(self.paths):
                raise DataError(f"clip {clip} is not in the corpus ({len(self.paths)} clips)")
            hit = load_audio(self.paths[clip], self.sample_rate, 1).samples[:, 0]
        self._cache[clip] = hit
        while len(self._cache) > self.keep:
            self._cache.pop(next(iter(self._cache)))
        return hit


def mean_latent(latents: np.ndarray) -> np.ndarray:
    z = np.asarray(latents, np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise DataError("need latents [T, D] with at least one frame for the mean latent")
    return z.mean(axis=0).astype(np.float32)


def constant_latent(z0: np.ndarray, frame_rate: float, seconds: float) -> np.ndarray:
    """One latent frame held for `seconds` (at least two frames): [T, D] float32."""
    t = max(2, int(round(seconds * float(frame_rate))))
    return np.repeat(np.asarray(z0, np.float32)[None, :], t, axis=0)


def _decode_constant(codec: Any, z0: np.ndarray, seconds: float) -> np.ndarray:
    from workbench.core.audio import AudioClip

    clip = codec.decode(constant_latent(z0, codec.frame_rate, seconds))
    y = clip.samples if isinstance(clip, AudioClip) else np.asarray(clip)
    y = np.asarray(y, np.float32)
    y = y.mean(axis=1) if y.ndim == 2 else y
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.abs(y).max()) if y.size else 0.0
    if peak > 0.99:  # a strong direction can clip; keep the shape, lose only level
        y = y * (0.99 / peak)
    return fade(y, int(codec.sample_rate), 0.02)


def feature_sound(codec: Any, mean_z: np.ndarray, w_dec_row: np.ndarray, strength: float,
                  seconds: float = 1.0) -> np.ndarray:
    """The decoder direction of one feature heard through the codec: ``mean_z + strength · W_dec[j]`` held
    constant for `seconds` and decoded (mono, codec sample rate, 20 ms fades, peak kept below 1)."""
    w = np.asarray(w_dec_row, np.float32)
    m = np.asarray(mean_z, np.float32)
    if w.shape != m.shape:
        raise UsageError(f"decoder row {w.shape} and mean latent {m.shape} differ in size")
    return _decode_constant(codec, m + float(strength) * w, seconds)


def reference_sound(codec: Any, mean_z: np.ndarray, seconds: float = 1.0) -> np.ndarray:
    """The mean latent alone, decoded: what `feature_sound` adds a direction to."""
    return _decode_constant(codec, np.asarray(mean_z, np.float32), seconds)


# -- pictures -----------------------------------------------------------------------------------------

# A perceptually ordered dark-to-bright map (anchors of matplotlib's "magma"), interpolated linearly.
_MAGMA = np.array([
    [0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122],
    [229, 80, 100], [251, 135, 97], [254, 194, 135], [252, 253, 191]], np.float64)


def colormap(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → uint8 RGB (..., 3)."""
    v = np.clip(np.nan_to_num(np.asarray(v, np.float64)), 0.0, 1.0)
    pos = v * (len(_MAGMA) - 1)
    i = np.minimum(np.floor(pos).astype(np.int64), len(_MAGMA) - 2)
    t = (pos - i)[..., None]
    rgb = _MAGMA[i] * (1 - t) + _MAGMA[i + 1] * t
    return np.rint(rgb).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB image [H, W, 3] uint8 as PNG (8-bit truecolour, no filtering)."""
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.shape[0] < 1 or img.shape[1] < 1:
        raise UsageError(f"PNG needs a non-empty uint8 [H, W, 3] image, got {img.dtype} {tuple(img.shape)}")
    h, w = img.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def spectrogram_image(audio: np.ndarray, sample_rate: int, height: int = 64, width: int | None = None,
                      fmin: float = 40.0, fmax: float | None = None, top_db: float = 70.0,
                      mark: float | None = None) -> np.ndarray:
    """Log-frequency magnitude spectrogram as an RGB image [height, width, 3] (low frequencies at the
    bottom); `mark` (seconds) draws a thin white line at that instant."""
    x = np.asarray(audio, np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    n_fft = 1024 if sample_rate >= 32000 else 512
    hop = max(1, n_fft // 4)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    n_frames = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft)[None, :], axis=1))  # [frames, bins]
    db = 20.0 * np.log10(np.maximum(spec, 1e-10))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    hi = min(fmax or sample_rate / 2, sample_rate / 2)
    grid = np.geomspace(fmin, hi, height)
    rows = np.stack([np.interp(grid, freqs, d) for d in db], axis=1)  # [height, frames]
    ref = rows.max() if rows.size else 0.0
    v = (np.maximum(rows, ref - top_db) - (ref - top_db)) / top_db
    if width is not None and width > 0 and v.shape[1] != width:
        src = np.linspace(0, v.shape[1] - 1, width)
        v = np.stack([np.interp(src, np.arange(v.shape[1]), r) for r in v])
    img = colormap(v[::-1])  # low frequencies at the bottom
    if mark is not None:
        dur = x.size / sample_rate
        col = int(round(mark / dur * (img.shape[1] - 1))) if dur > 0 else 0
        if 0 <= col < img.shape[1]:
            img[:, col] = 255
    return img


def spectrogram_png(audio: np.ndarray, sample_rate: int, height: int = 64, width: int | None = 160,
                    mark: float | None = None) -> bytes:
    return png_bytes(spectrogram_image(audio, sample_rate, height, width, mark=mark))


def wav_bytes(audio: np.ndarray, sample_rate: int, fmt: str = "wav") -> bytes:
    """16-bit PCM WAV (or FLAC, about half the size) of mono float audio (clipped to [-1, 1])."""
    import io

    import soundfile as sf

    if fmt not in ("wav", "flac"):
        raise UsageError(f"audio format must be wav or flac, got '{fmt}'")
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(audio, np.float32), -1.0, 1.0), int(sample_rate), format=fmt.upper(),
             subtype="PCM_16")
    return buf.getvalue()


AudioOf = Callable[[int], np.ndarray]
