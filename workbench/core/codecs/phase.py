"""Phase from magnitudes, frame by frame, and overlap-add synthesis.

The default codec's network predicts only STFT log-magnitudes: phase is what small networks fail to
learn on these CPUs (DESIGN.md). The phase is rebuilt here the way phase-gradient methods (PGHI/RTPGHI)
do it, in a form that runs frame by frame with a small state, so the block decoder can continue
exactly where the previous block stopped:

* every spectral peak gets its instantaneous frequency from a quadratic fit to the log-magnitude
  around it (for a Hann window that fit is close to exact), and its phase advances from the previous
  frame's phase by ``hop * (w_prev + w_now) / 2`` (trapezoidal integration of the phase time-gradient);
* the bins around a peak, up to the magnitude valley that separates it from the next peak, take the
  peak's phase (phase locking, as in Laroche & Dolson's phase vocoder; the frequency-direction
  integration of PGHI reduces to this for zero-phase windows);
* bins without a peak advance at their bin frequency.

Phases use the *centered* convention (frame ``t`` is centered on sample ``t * hop``), so a stationary
sinusoid's phase advances by ``w * hop`` per frame. The state carried from one frame to the next is the
phase and instantaneous frequency of every bin.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _phase_frames(
    mag: np.ndarray,  # [T, K] float32 magnitudes
    hop: int,
    n_fft: int,
    phase0: np.ndarray,  # [K] float64 phase of the frame before the first (state)
    omega0: np.ndarray,  # [K] float64 inst. frequency (rad/sample) of the frame before the first
    rel_floor: float,
    abs_floor: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t_count, k_count = mag.shape
    phases = np.empty((t_count, k_count), dtype=np.float64)
    omegas = np.empty((t_count, k_count), dtype=np.float64)
    prev_phase = phase0.copy()
    prev_omega = omega0.copy()
    logm = np.empty(k_count, dtype=np.float64)
    is_peak = np.zeros(k_count, dtype=np.bool_)
    owner = np.empty(k_count, dtype=np.int64)
    two_pi_over_n = 2.0 * np.pi / n_fft
    tiny = 1e-12
    for t in range(t_count):
        m = mag[t]
        mmax = 0.0
        for k in range(k_count):
            v = float(m[k])
            logm[k] = np.log(v + tiny)
            if v > mmax:
                mmax = v
        thresh = max(mmax * rel_floor, abs_floor)
        n_peaks = 0
        for k in range(k_count):
            is_peak[k] = False
            v = m[k]
            if v <= thresh:
                continue
            left = m[k - 1] if k > 0 else -1.0
            right = m[k + 1] if k + 1 < k_count else -1.0
            if v > left and v >= right:
                is_peak[k] = True
                n_peaks += 1
        cur_phase = phases[t]
        cur_omega = omegas[t]
        if n_peaks == 0:
            for k in range(k_count):
                w = k * two_pi_over_n
                cur_omega[k] = w
                cur_phase[k] = prev_phase[k] + hop * 0.5 * (prev_omega[k] + w)
        else:
            # Peak phases first.
            for k in range(k_count):
                if not is_peak[k]:
                    continue
                delta = 0.0
                if 0 < k < k_count - 1:
                    a = logm[k - 1]
                    b = logm[k]
                    c = logm[k + 1]
                    den = a - 2.0 * b + c
                    if den < -1e-12:
                        delta = 0.5 * (a - c) / den
                        if delta > 0.5:
                            delta = 0.5
                        elif delta < -0.5:
                            delta = -0.5
                w = (k + delta) * two_pi_over_n
                cur_omega[k] = w
                cur_phase[k] = prev_phase[k] + hop * 0.5 * (prev_omega[k] + w)
            # Assign every bin to a peak: walk between consecutive peaks, split at the valley.
            first = -1
            last = -1
            for k in range(k_count):
                if is_peak[k]:
                    if first < 0:
                        first = k
                    last = k
            for k in range(0, first):
                owner[k] = first
            for k in range(last, k_count):
                owner[k] = last
            p = first
            while p < last:
                q = p + 1
                while not is_peak[q]:
                    q += 1
                valley = p
                vmin = m[p]
                for j in range(p, q + 1):
                    if m[j] < vmin:
                        vmin = m[j]
                        valley = j
                for j in range(p, q + 1):
                    owner[j] = p if j < valley else q
                p = q
            for k in range(k_count):
                if not is_peak[k]:
                    o = owner[k]
                    cur_phase[k] = cur_phase[o]
                    cur_omega[k] = cur_omega[o]
        for k in range(k_count):
            # Keep the state bounded so float precision does not decay over long clips.
            ph = cur_phase[k] % (2.0 * np.pi)
            cur_phase[k] = ph
            prev_phase[k] = ph
            prev_omega[k] = cur_omega[k]
    return phases, omegas, prev_phase


class PhaseState:
    """Phase and instantaneous frequency of every bin at one frame: what the next frame continues from."""

    __slots__ = ("phase", "omega")

    def __init__(self, n_bins: int, phase: np.ndarray | None = None, omega: np.ndarray | None = None) -> None:
        self.phase = np.zeros(n_bins) if phase is None else np.asarray(phase, dtype=np.float64)
        self.omega = np.zeros(n_bins) if omega is None else np.asarray(omega, dtype=np.float64)


def rebuild_phase(
    mag: np.ndarray,
    hop: int,
    n_fft: int,
    state: PhaseState | None = None,
    rel_floor_db: float = -70.0,
    abs_floor: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Phases [T, K] (centered convention) and inst. frequencies for magnitudes [T, K]."""
    mag = np.ascontiguousarray(mag, dtype=np.float32)
    k = mag.shape[1]
    st = state or PhaseState(k)
    phases, omegas, _ = _phase_frames(
        mag, hop, n_fft, st.phase, st.omega, 10.0 ** (rel_floor_db / 20.0), abs_floor
    )
    return phases, omegas


def synthesis_window(n_fft: int, hop: int) -> np.ndarray:
    """Window that, with the periodic Hann analysis window, overlap-adds to exactly one."""
    w = np.hanning(n_fft + 1)[:-1]
    norm = np.zeros(hop)
    for i in range(n_fft // hop):
        norm += (w * w)[i * hop : (i + 1) * hop]
    return (w / np.tile(norm, n_fft // hop)).astype(np.float64)


def frames_to_audio(
    mag: np.ndarray, phase: np.ndarray, hop: int, n_fft: int, window: np.ndarray
) -> np.ndarray:
    """Inverse FFT of centered-phase frames and overlap-add.

    Returns the samples from the center of the first frame to the center of the frame after the last
    (``T * hop`` samples): frame ``t`` is centered on output sample ``t * hop``. Samples near the ends
    lack the neighbours' overlap; callers pass extra frames on both sides and crop.
    """
    t_count, k_count = mag.shape
    k_idx = np.arange(k_count)
    # Centered phase -> phase for a frame whose origin is its first sample: a shift by n_fft / 2.
    spec = mag.astype(np.float64) * np.exp(1j * (phase + np.pi * k_idx[None, :]))
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window[None, :]
    r = n_fft // hop
    # Frame t covers samples [t*hop - n_fft/2, t*hop + n_fft/2): chunk i lands at t - r/2 + i.
    out = np.zeros((t_count + r) * hop)
    half = r // 2
    for i in range(r):
        seg = frames[:, i * hop : (i + 1) * hop].reshape(-1)
        start = i * hop
        out[start : start + seg.size] += seg
    # `out` starts at sample -half*hop relative to frame 0's center.
    return out[half * hop : half * hop + t_count * hop]
