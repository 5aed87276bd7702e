"""What the app's views show, computed without Qt: log-mel images, latent images, feature summaries.

Kept here (not in the app) so it is tested headless and the GUI only draws arrays. Everything is
numpy: importing librosa costs seconds at start-up, and a mel filterbank is a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 30.0, fmax: float | None = None) -> np.ndarray:
    """Triangular filters [n_mels, n_fft // 2 + 1] with peak 1 (HTK mel scale): a full-scale sine at a
    filter's centre reads about 0 dB, which makes the colour scale mean something."""
    fmax = fmax or sample_rate / 2
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs[None]) / np.maximum(hi - mid, 1e-9)
    fb = np.maximum(0.0, np.minimum(up, down))
    return fb.astype(np.float32)


@dataclass(frozen=True)
class MelImage:
    db: np.ndarray  # [frames, n_mels] float32, dB re full scale, floored at `floor_db`
    hop_seconds: float
    fmin: float
    fmax: float

    @property
    def duration(self) -> float:
        return self.db.shape[0] * self.hop_seconds


def log_mel(samples: np.ndarray, sample_rate: int, n_mels: int = 80, n_fft: int = 1024, hop: int | None = None,
            floor_db: float = -90.0, chunk: int = 4096) -> MelImage:
    """Log-mel spectrogram of mono (or [n, ch] → mean) audio, frame k centred at (k + 0.5) * hop.

    Computed in chunks of frames so a 10-minute clip needs bounded memory.
    """
    x = np.asarray(samples, np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    hop = hop or max(1, sample_rate // 100)
    n_frames = max(1, -(-len(x) // hop))
    pad_l = n_fft // 2 - hop // 2
    xp = np.pad(x, (max(0, pad_l), n_fft + hop))
    win = np.hanning(n_fft).astype(np.float32)
    fb = mel_filterbank(sample_rate, n_fft, n_mels)
    out = np.empty((n_frames, n_mels), np.float32)
    # A sine of amplitude 1 has spectral peak 1 after this scaling.
    scale = 2.0 / win.sum()
    for a in range(0, n_frames, chunk):
        b = min(n_frames, a + chunk)
        idx = (np.arange(a, b) * hop)[:, None] + np.arange(n_fft)[None]
        frames = xp[idx] * win
        mag = np.abs(np.fft.rfft(frames, axis=1)) * scale
        mel = (mag**2) @ fb.T
        out[a:b] = 10.0 * np.log10(np.maximum(mel, 1e-12))
    np.maximum(out, floor_db, out=out)
    return MelImage(out, hop / sample_rate, 30.0, sample_rate / 2)


def symmetric_levels(a: np.ndarray, q: float = 99.0) -> tuple[float, float]:
    """Colour levels ±L for signed data (latents): L is a high percentile of |a|, so a few outliers do
    not wash out the image."""
    if a.size == 0:
        return (-1.0, 1.0)
    lv = float(np.percentile(np.abs(a), q))
    lv = lv if np.isfinite(lv) and lv > 0 else 1.0
    return (-lv, lv)


@dataclass(frozen=True)
class FeatureSummary:
    """Per-feature activity of one clip."""

    clip_max: np.ndarray  # [F] max activation in the clip
    clip_mean: np.ndarray  # [F] mean activation in the clip
    clip_active: np.ndarray  # [F] fraction of frames where the feature fires (> 0)


def summarize_features(f: np.ndarray) -> FeatureSummary:
    f = np.asarray(f, np.float32)
    if f.ndim != 2 or f.shape[0] == 0:
        n = f.shape[-1] if f.ndim == 2 else 0
        z = np.zeros(n, np.float32)
        return FeatureSummary(z, z, z)
    return FeatureSummary(f.max(axis=0), f.mean(axis=0), (f > 0).mean(axis=0).astype(np.float32))


def display_maxima(max_activation: np.ndarray, floor_fraction: float = 0.05) -> np.ndarray:
    """Per-feature scale for showing activations "in units of the training maximum".

    A feature that (almost) never fired in training has a maximum near zero, and dividing by it would
    blow its rare activations up by orders of magnitude, to the top of every ranking and off every
    plot. So maxima are floored at `floor_fraction` of the median maximum; unknown ones get the floor.
    """
    m = np.asarray(max_activation, np.float32)
    ok = np.isfinite(m) & (m > 0)
    floor = floor_fraction * float(np.median(m[ok])) if ok.any() else 1.0
    return np.where(ok & (m > floor), m, np.float32(floor)).astype(np.float32)


def top_features(summary: FeatureSummary, n: int, max_activation: np.ndarray | None = None) -> np.ndarray:
    """The clip's `n` most active features: by mean activation relative to each feature's training
    maximum (so features with large raw scales do not crowd out the rest), ties by raw mean; features
    that never fire in the clip are left out."""
    mean = summary.clip_mean
    rel = mean if max_activation is None else mean / np.maximum(np.asarray(max_activation, np.float32), 1e-9)
    order = np.lexsort((-mean, -rel))
    order = order[summary.clip_max[order] > 0]
    return order[:n].astype(np.int64)


def relative_activations(f: np.ndarray, features: np.ndarray, max_activation: np.ndarray | None) -> np.ndarray:
    """[len(features), T] activations in units of each feature's training maximum (the heatmap)."""
    a: np.ndarray = np.asarray(f[:, features], np.float32).T
    if max_activation is not None:
        scale = np.maximum(np.asarray(max_activation, np.float32)[features, None], np.float32(1e-9))
        a = (a / scale).astype(np.float32)
    return a


class WaveformPyramid:
    """Min/max envelopes of a regularly sampled series (a waveform, a feature's activation, a property over
    time) at bucket sizes 16, 64, 256, … samples.

    A view asks for the samples between two times at about two points per pixel and gets either the
    raw samples (zoomed in) or the interleaved min/max of the coarsest level that still has a bucket
    per pixel: O(pixels) work per pan or zoom step whatever the clip length, with every peak visible.
    Sample i sits at time `offset + i / sample_rate`. NaN (undefined, e.g. unvoiced pitch) is skipped by
    the envelopes; a bucket with nothing but NaN stays NaN, so gaps stay gaps.
    """

    BASE = 16
    FACTOR = 4

    def __init__(self, samples: np.ndarray, sample_rate: float, offset: float = 0.0) -> None:
        x = np.asarray(samples, np.float32)
        self.x = x.mean(axis=1) if x.ndim == 2 else x
        self.sample_rate = float(sample_rate)
        self.offset = float(offset)
        self.levels: list[tuple[int, np.ndarray, np.ndarray]] = []
        lo = hi = None
        bucket = self.BASE
        while len(self.x) // bucket >= 2:
            if lo is None or hi is None:
                m = len(self.x) // bucket
                blocks = self.x[: m * bucket].reshape(m, bucket)
                lo, hi = np.fmin.reduce(blocks, axis=1), np.fmax.reduce(blocks, axis=1)
            else:
                m = len(lo) // self.FACTOR
                lo = np.fmin.reduce(lo[: m * self.FACTOR].reshape(m, self.FACTOR), axis=1)
                hi = np.fmax.reduce(hi[: m * self.FACTOR].reshape(m, self.FACTOR), axis=1)
            self.levels.append((bucket, lo, hi))
            bucket *= self.FACTOR

    @property
    def peak(self) -> float:
        return float(np.nanmax(np.abs(self.x))) if np.isfinite(self.x).any() else 0.0

    @property
    def duration(self) -> float:
        return len(self.x) / self.sample_rate

    def times(self) -> np.ndarray:
        """The time of every sample (float64)."""
        return self.offset + np.arange(len(self.x), dtype=np.float64) / self.sample_rate

    def window(self, t0: float, t1: float, pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """(t, y) float32 covering [t0, t1] with at most about 2 * `pixels` points (plus the edges)."""
        sr, n = self.sample_rate, len(self.x)
        a = max(0, int(np.floor((t0 - self.offset) * sr)))
        b = min(n, int(np.ceil((t1 - self.offset) * sr)) + 1)
        if b <= a:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        want = (b - a) / max(1, pixels)
        level = None
        for lv in self.levels:
            if lv[0] <= want:
                level = lv
        if level is None:
            t = (self.offset + np.arange(a, b, dtype=np.float64) / sr).astype(np.float32)
            return t, self.x[a:b]
        bucket, lo, hi = level
        i0, i1 = a // bucket, min(len(lo), -(-b // bucket))
        y = np.empty(2 * (i1 - i0), np.float32)
        y[0::2] = lo[i0:i1]
        y[1::2] = hi[i0:i1]
        centres = self.offset + (np.arange(i0, i1, dtype=np.float64) * bucket + bucket / 2) / sr
        return np.repeat(centres, 2).astype(np.float32), y


class ColumnPyramid:
    """Column-wise pooling of an image [rows, cols] of uint8 colour indices at 1, 2, 4, … columns per
    column, for drawing a long image (a 10-minute spectrogram is 60 000 columns) at screen resolution:
    each screen pixel shows the most extreme of the columns it covers, so a short event stays visible
    when zoomed out, and the work per frame follows the pixels drawn, not the image's length.

    "Most extreme" is the maximum (colour indices rise with the value, so the maximum index is the
    index of the maximum), or with `centre` set (a diverging map, e.g. latents around 0 at index 127.5)
    the index farthest from the centre, so negative and positive excursions both survive."""

    def __init__(self, image: np.ndarray, centre: float | None = None) -> None:
        img = np.ascontiguousarray(image)
        if img.ndim != 2:
            raise ValueError(f"ColumnPyramid needs a 2-D image, got shape {img.shape}")
        self.centre = centre
        self.levels: list[np.ndarray] = [img]
        while img.shape[1] >= 4:
            m = img.shape[1] // 2
            pooled = self._pick(img[:, 0 : 2 * m : 2], img[:, 1 : 2 * m : 2])
            if img.shape[1] % 2:  # an odd last column stays on its own
                pooled = np.concatenate([pooled, img[:, -1:]], axis=1)
            img = np.ascontiguousarray(pooled)
            self.levels.append(img)

    def _pick(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.centre is None:
            return np.maximum(a, b)
        c = self.centre
        return np.where(np.abs(a.astype(np.float32) - c) >= np.abs(b.astype(np.float32) - c), a, b)

    @property
    def shape(self) -> tuple[int, int]:
        return self.levels[0].shape  # type: ignore[return-value]

    def sample(self, edges: np.ndarray, rows: np.ndarray, per_px: float | None = None) -> np.ndarray:
        """[len(rows), len(edges) - 1]: pixel j covers the base columns [edges[j], edges[j + 1]) and shows
        them pooled (or, zoomed in, the column it falls in), taking image rows `rows`. Pixels are cut from
        each edge on its own, so drawing a range in pieces gives the same pixels as drawing it whole;
        `per_px` (base columns per pixel, default from the edges) picks the pyramid level."""
        edges = np.asarray(edges, np.float64)
        width = max(1, len(edges) - 1)
        if self.shape[1] == 0 or len(rows) == 0 or len(edges) < 2:
            return np.zeros((len(rows), width), self.levels[0].dtype)
        if per_px is None:
            per_px = (edges[-1] - edges[0]) / width
        # the finest level with at least one of its columns per pixel: each pixel then covers 1 or 2 of them
        level = min(len(self.levels) - 1, max(0, int(np.floor(np.log2(max(per_px, 1.0))))))
        img, f = self.levels[level], 2 ** level
        m = img.shape[1]
        scaled = edges / f
        cuts = np.floor(scaled).astype(np.int64)
        if edges[-1] >= self.shape[1]:  # the image's last column counts even when only partly covered
            cuts[-1] = np.ceil(scaled[-1])
        start = np.clip(cuts[:-1], 0, m - 1)
        stop = np.clip(cuts[1:], start + 1, m)  # exclusive; zoomed in, a pixel inside one column gets it
        # np.take on a column slice, then on rows: several times faster than one 2-D fancy index
        lo = int(start[0])
        part = img[:, lo : int(stop[-1])]
        rows = np.asarray(rows, np.intp)

        def cols(c: np.ndarray) -> np.ndarray:
            return np.take(np.take(part, c - lo, axis=1), rows, axis=0)

        out = cols(start)
        longest = int((stop - start).max())
        for k in range(1, longest):  # 1 more column per pixel, except for a view wider than the data
            out = self._pick(out, cols(np.minimum(start + k, stop - 1)))
        return out


FEATURE_TABLE_COLUMNS = ("feature", "label", "score", "density", "max_activation", "clip_max", "clip_active",
                         "steered")


def feature_table_csv(labels: list[str], scores: np.ndarray, density: np.ndarray, max_activation: np.ndarray,
                      clip_max: np.ndarray, clip_active: np.ndarray, steered: set[int], clip: str = "") -> str:
    """The feature table as CSV, one row per feature (`FEATURE_TABLE_COLUMNS`): its label and held-out
    AUROC score, density and maximum activation over the SAE's data, and on the current clip its maximum
    (× the feature's maximum) and the share of frames it fires on; NaN is an empty cell. A first comment
    line names the clip."""
    import csv
    import io

    def cell(v: float) -> str:
        return "" if not np.isfinite(v) else f"{float(v):.6g}"

    buf = io.StringIO()
    if clip:
        buf.write(f"# clip: {clip}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FEATURE_TABLE_COLUMNS)
    for i, lab in enumerate(labels):
        w.writerow([i, lab, cell(scores[i]), cell(density[i]), cell(max_activation[i]), cell(clip_max[i]),
                    cell(clip_active[i]), int(i in steered)])
    return buf.getvalue()
