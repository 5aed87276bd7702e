"""Output safety: a look-ahead peak limiter on everything steered or decoded audio reaches (a speaker
or a file).

Steering can make the decode far louder than the input: on the shipped codec + SAE the probe edit
``probe:loudness=+3`` at α = 1 raised the level by ~43 dB with peaks ~30× full scale, and large
``add``/``scale`` edits do the same. Live playback (`playback.PlaybackEngine`) always passes its
output through a `PeakLimiter`; the exports (``workbench steer``/``decode``, the app's Export) do so
unless asked not to (``--no-limit``).

What it does, per sample ``i`` (stereo is linked: the peak over channels sets one gain):

1. required gain ``r[i] = min(1, ceiling / |x[i]|)``;
2. look-ahead and hold: ``m[i] = min(r[i - hold .. i + lookahead])``;
3. release: ``e[i] = min(m[i], e[i-1] released)``, a one-pole in dB with time constant `release`
   heading for +3 dB and capped at 0 dB, so it is back at unity (exactly) in finite time: 21 dB of
   reduction is gone ~0.3 s after the hold (``e_dB[i] = min(0, m_dB[i], T + a (e_dB[i-1] - T))``,
   ``a = exp(-1 / (release · rate))``, ``T = 3``);
4. attack: ``g[i] = min(mean(e[i - lookahead .. i]), r[i])``. Every ``e`` in that window is at most
   ``r[i]`` (each one's look-ahead reaches ``i``), so the mean is too: the gain glides down over the
   look-ahead before a peak instead of jumping, and ``|x[i]| · g[i] <= ceiling`` always. When the
   future was not known (the caller had no look-ahead to give) ``r[i]`` still bounds the gain: the
   attack is then instant, never late. A final clip at the ceiling catches float rounding.

Samples that are NaN or infinite are replaced by silence, with a fade over the look-ahead on both
sides (a gate that does not feed the release, so the level comes back as soon as they end).

Everything is vectorised per block (step 3 has a closed form with a running minimum, step 2 is a van
Herk/Gil-Werman sliding minimum), so a 1024-sample block costs tens of microseconds (see
benchmarks/bench_limiter.py), and the state carried between blocks makes block-wise processing equal
one pass over the whole signal. Audio that never exceeds the ceiling passes bit-exact.

Two ways to drive it:

- `PeakLimiter.process` (zero latency): the caller passes the samples that will follow the block as
  `ahead` (playback reads them from its ring buffer); without them the attack is instant.
- `PeakLimiter.feed` / `PeakLimiter.flush` (files): the limiter keeps the last `latency` samples back
  as its own look-ahead; concatenated, the outputs are the input limited, sample for sample.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_CEILING_DB = -1.0  # dBFS
LOOKAHEAD_SECONDS = 0.002
HOLD_SECONDS = 0.05
RELEASE_SECONDS = 0.15  # time constant of the release, in dB
RELEASE_TARGET_DB = 3.0  # the release heads for this, so it reaches 0 dB (unity) in finite time
MIN_GAIN = 1e-6  # -120 dB: the deepest reduction (a larger overshoot is still clipped at the ceiling)
NOTICE_DB = 1.0  # exports say on stderr when the limiter took away more than this


def _sliding_min(a: np.ndarray, w: int) -> np.ndarray:
    """``out[i] = min(a[i : i + w])`` for the ``len(a) - w + 1`` full windows (van Herk/Gil-Werman)."""
    if w <= 1:
        return a.copy()
    n = len(a)
    padded = np.full(-(-n // w) * w, np.inf)
    padded[:n] = a
    b = padded.reshape(-1, w)
    pre = np.minimum.accumulate(b, axis=1).ravel()
    suf = np.minimum.accumulate(b[:, ::-1], axis=1)[:, ::-1].ravel()
    k = n - w + 1
    return np.minimum(suf[:k], pre[w - 1 : w - 1 + k])


def _ceiling_f32(ceiling_db: float) -> float:
    """The ceiling as the largest float32 not above 10^(dB/20), so float32 output honours it exactly."""
    c = 10.0 ** (ceiling_db / 20.0)
    c32 = np.float32(c)
    if float(c32) > c:
        c32 = np.nextafter(c32, np.float32(0))
    return float(c32)


class PeakLimiter:
    """A streaming peak limiter (see the module doc). Not thread-safe: one caller at a time.

    Read-outs: `reduction_db` (deepest gain reduction in the last block, dB, >= 0),
    `max_reduction_db` (deepest since construction or `reset_stats`), `nonfinite` (frames muted
    because they held NaN or infinity).
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int = 1,
        ceiling_db: float = DEFAULT_CEILING_DB,
        lookahead: float = LOOKAHEAD_SECONDS,
        hold: float = HOLD_SECONDS,
        release: float = RELEASE_SECONDS,
    ) -> None:
        if sample_rate <= 0 or channels < 1:
            raise ValueError(f"limiter needs a positive rate and channels, got {sample_rate} Hz, {channels}")
        if not (math.isfinite(ceiling_db) and ceiling_db <= 0.0):
            raise ValueError(f"limiter ceiling {ceiling_db} dBFS must be a finite number <= 0")
        if lookahead < 0 or hold < 0 or not release > 0:
            raise ValueError("limiter look-ahead and hold must be >= 0 and release > 0 seconds")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.ceiling_db = float(ceiling_db)
        self.ceiling = _ceiling_f32(ceiling_db)
        self.latency = int(round(lookahead * sample_rate))  # look-ahead, samples
        self.hold_samples = int(round(hold * sample_rate))
        self._alpha = math.exp(-1.0 / (release * sample_rate))
        # Blocks are processed in chunks short enough that alpha^-chunk stays far from overflow.
        self._chunk = int(max(256, min(8192, 200.0 * release * sample_rate)))
        self.reduction_db = 0.0
        self.max_reduction_db = 0.0
        self.nonfinite = 0
        self.reset()

    # -- state --------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the signal (a seek, a new clip): the next block starts from unity gain."""
        self._req_tail = np.ones(self.hold_samples, np.float64)  # required gains of the last `hold` samples
        self._env_tail = np.ones(self.latency, np.float64)  # gains e of the last `latency` samples
        self._env_db = 0.0  # e of the last sample, dB
        self._nf_tail = np.zeros(self.latency, bool)  # non-finite frames among the last `latency`
        self._pending = np.zeros((0, self.channels), np.float32)  # feed(): held back as look-ahead
        self._idle = True  # all of the above at rest: a quiet block can be copied as it is
        self.reduction_db = 0.0

    def reset_stats(self) -> None:
        self.max_reduction_db = 0.0
        self.nonfinite = 0

    # -- streaming ------------------------------------------------------------------------------------
    def process(self, x: np.ndarray, ahead: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Limit block `x` ([n, channels] or [n] float) with no latency; returns float32 of x's shape.

        `ahead`: the samples that will follow `x` (up to `latency` of them are used); missing ones are
        taken as silence. `out` may be `x` itself (in-place, as the audio callback does)."""
        x2 = np.asarray(x)
        one_d = x2.ndim == 1
        if one_d:
            x2 = x2[:, None]
        if x2.ndim != 2 or x2.shape[1] != self.channels:
            raise ValueError(f"limiter expects [n, {self.channels}] samples, got {tuple(np.shape(x))}")
        if out is None:
            out = np.empty(np.shape(x), np.float32)
        o2 = out[:, None] if out.ndim == 1 else out
        ah = None
        if ahead is not None:
            ah = np.asarray(ahead)
            ah = ah[:, None] if ah.ndim == 1 else ah
            ah = ah[: self.latency]
        n = x2.shape[0]
        red = 0.0
        for s in range(0, n, self._chunk):
            e = min(n, s + self._chunk)
            nxt = ah
            if e < n:
                nxt = x2[e : e + self.latency]
                if len(nxt) < self.latency and ah is not None and len(ah):
                    nxt = np.concatenate([nxt, ah])[: self.latency]
            red = max(red, self._process_chunk(x2[s:e], nxt, o2[s:e]))
        self.reduction_db = red
        self.max_reduction_db = max(self.max_reduction_db, red)
        return out

    def feed(self, x: np.ndarray) -> np.ndarray:
        """File mode: take block `x`, return what is ready (all but the last `latency` samples so far,
        limited with the true look-ahead). `flush` returns the rest at the end."""
        x2 = np.asarray(x, np.float32)
        x2 = x2[:, None] if x2.ndim == 1 else x2
        data = np.concatenate([self._pending, x2]) if len(self._pending) else x2
        k = len(data) - self.latency
        if k <= 0:
            self._pending = np.array(data, np.float32, copy=True)
            return np.zeros((0, self.channels), np.float32)
        body = data[:k]
        self._pending = np.array(data[k:], np.float32, copy=True)
        return self.process(body, ahead=self._pending)

    def flush(self) -> np.ndarray:
        """File mode: the samples `feed` still holds, limited (the signal ends here)."""
        data, self._pending = self._pending, np.zeros((0, self.channels), np.float32)
        if not len(data):
            return data
        return self.process(data)

    # -- the work -------------------------------------------------------------------------------------
    def _process_chunk(self, x: np.ndarray, ahead: np.ndarray | None, out: np.ndarray) -> float:
        n, lat, hold = x.shape[0], self.latency, self.hold_samples
        if n == 0:
            return 0.0
        a = 0 if ahead is None else len(ahead)
        xa = x if a == 0 else np.concatenate([x, np.asarray(ahead, x.dtype)])
        peak = np.abs(xa).max(axis=1)
        finite = np.isfinite(peak)
        all_finite = bool(finite.all())
        if self._idle and all_finite and float(peak.max()) <= self.ceiling:
            if out is not x:
                out[...] = x
            return 0.0
        # 1. required gain (non-finite frames are handled by the gate below, not here)
        p = np.where(finite, peak, 0.0).astype(np.float64)
        req = np.maximum(self.ceiling / np.maximum(p, self.ceiling), MIN_GAIN)
        # 2. look-ahead and hold: the unknown future counts as silence
        hist = np.concatenate([self._req_tail, req, np.ones(lat - a)])
        m = _sliding_min(hist, hold + lat + 1)
        # 3. release: e_dB[i] = min(0, m_dB[i], T + a (e_dB[i-1] - T)), a one-pole heading for T > 0 dB,
        # so it reaches unity in finite time. In u = e_dB - T the recursion is u[i] = min(u_m[i], a u[i-1]),
        # whose closed form over a block is u[j] = a^j min(a u_prev, min_{q<=j} u_m[q] a^-q).
        top = RELEASE_TARGET_DB
        inv = np.power(self._alpha, -np.arange(n, dtype=np.float64))
        run = np.minimum.accumulate((20.0 * np.log10(m) - top) * inv)
        np.minimum(run, (self._env_db - top) * self._alpha, out=run)
        env_db = run / inv + top
        env_db[env_db > -1e-9] = 0.0  # unity, exactly (rounding of u + T)
        env = np.power(10.0, env_db / 20.0)
        # the gate: silence where a frame within `latency` is NaN/inf (outside the release)
        nf = ~finite
        e2 = env
        if not all_finite or self._nf_tail.any():
            nfh = np.concatenate([self._nf_tail, nf, np.zeros(lat - a, bool)])
            gate = _sliding_min(1.0 - nfh, 2 * lat + 1)
            e2 = np.minimum(env, gate)
        # 4. attack: moving average of e over the look-ahead; never above the sample's own required gain
        # (a no-op when the look-ahead was known, an instant attack when it was not)
        eh = np.concatenate([self._env_tail, e2])
        cs = np.concatenate([[0.0], np.cumsum(eh)])
        g = np.minimum((cs[lat + 1 :] - cs[: len(cs) - lat - 1]) / (lat + 1), req[:n])
        xs = x if all_finite else np.where(np.isfinite(x), x, 0.0)
        np.multiply(xs, g[:, None], out=out, casting="unsafe")
        np.clip(out, -self.ceiling, self.ceiling, out=out)
        # carry the state
        self._req_tail = hist[n : n + hold].copy()
        self._env_tail = eh[n : n + lat].copy()
        self._env_db = float(env_db[-1])
        self._nf_tail = np.concatenate([self._nf_tail, nf[:n]])[n:]
        self._idle = (self._env_db == 0.0 and bool(self._req_tail.min(initial=1.0) == 1.0)
                      and bool(self._env_tail.min(initial=1.0) == 1.0) and not self._nf_tail.any())
        self.nonfinite += int(nf[:n].sum())
        return float(-20.0 * math.log10(max(float(env.min()), MIN_GAIN)))


def limit(samples: np.ndarray, sample_rate: int, ceiling_db: float = DEFAULT_CEILING_DB,
          **kw: float) -> tuple[np.ndarray, PeakLimiter]:
    """One pass over a whole signal ([n, channels] or [n]): (limited float32 copy, the limiter, whose
    `max_reduction_db` and `nonfinite` say what it did)."""
    x = np.asarray(samples)
    ch = 1 if x.ndim == 1 else int(x.shape[1])
    lim = PeakLimiter(sample_rate, ch, ceiling_db, **kw)
    return lim.process(x), lim


def summary(lim: PeakLimiter) -> str | None:
    """One line on what the limiter did to an export, or None when it took away at most `NOTICE_DB`
    and muted nothing."""
    parts = []
    if lim.max_reduction_db > NOTICE_DB:
        parts.append(f"up to {lim.max_reduction_db:.1f} dB of gain reduction kept the peaks at "
                     f"{lim.ceiling_db:g} dBFS")
    if lim.nonfinite:
        parts.append(f"{lim.nonfinite} non-finite sample(s) muted")
    return "; ".join(parts) if parts else None
