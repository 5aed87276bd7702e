"""The default codec's phase inversion (RTISI-LA): consistency gained, runs in pieces equal one run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.codecs.phase import StreamingInverter

HOP, N_FFT, SR = 320, 1280, 24000


def _mag(x: np.ndarray) -> np.ndarray:
    win = torch.hann_window(N_FFT, dtype=torch.float64)
    return torch.stft(torch.from_numpy(x), N_FFT, HOP, window=win, return_complex=True).abs().numpy().T


def _signal() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * (700 + 400 * t) * t)  # tone + glide
    x[::4800] += 0.8  # clicks
    return x + 0.003 * rng.standard_normal(len(t))


def _inconsistency(inv: StreamingInverter, mag: np.ndarray) -> float:
    """Spectral convergence between the target magnitudes and those of the signal made from them."""
    y = inv.whole(mag)
    got = _mag(y)[4:-4]
    want = mag[4 : 4 + len(got)]
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def test_lookahead_rounds_make_the_output_consistent_with_its_magnitudes() -> None:
    mag = _mag(_signal())
    plain = _inconsistency(StreamingInverter(HOP, N_FFT, 0, 0), mag)
    one = _inconsistency(StreamingInverter(HOP, N_FFT, 3, 1), mag)
    two = _inconsistency(StreamingInverter(HOP, N_FFT, 3, 2), mag)
    assert one < 0.8 * plain and two < one


@pytest.mark.parametrize("lookahead,iters", [(0, 0), (3, 1), (2, 3)])
def test_runs_in_pieces_equal_one_run(lookahead: int, iters: int) -> None:
    mag = _mag(_signal())
    t, k = mag.shape
    inv = StreamingInverter(HOP, N_FFT, lookahead, iters)
    whole = inv.whole(mag)
    assert whole.shape == (t * HOP,)
    rows = np.concatenate([np.zeros((lookahead, k)), mag, np.zeros((inv.half + lookahead, k))])
    state, parts = inv.start(0, k), []
    rng = np.random.default_rng(1)
    m_last = t - 1 + inv.half
    while state.m < m_last:
        m_end = min(m_last, state.m + int(rng.integers(1, 9)))
        a = state.m + 1 + lookahead  # row of frame state.m + 1
        y, state = inv.run(state, rows[a : m_end + 2 * lookahead + 1], m_end)
        parts.append(y)
    got = np.concatenate(parts)[(lookahead + inv.half) * HOP :][: t * HOP]
    np.testing.assert_array_equal(got, whole)


def test_silence_stays_silent_and_bad_sizes_are_refused() -> None:
    inv = StreamingInverter(HOP, N_FFT, 3, 1)
    assert not np.any(inv.whole(np.zeros((20, N_FFT // 2 + 1))))
    with pytest.raises(ValueError):
        StreamingInverter(300, 1000)  # n_fft not an even multiple of hop
    with pytest.raises(ValueError):
        inv.run(inv.start(0, N_FFT // 2 + 1), np.zeros((2, N_FFT // 2 + 1)), 5)


def test_states_after_every_step_resume_exactly() -> None:
    mag = _mag(_signal())[:60]
    t, k = mag.shape
    inv = StreamingInverter(HOP, N_FFT, 3, 1)
    rows = np.concatenate([np.zeros((3, k)), mag, np.zeros((inv.half + 3, k))])
    start = inv.start(0, k)
    m_end = t - 1 + inv.half
    states: list = []
    whole, last = inv.run(start, rows, m_end, every_step=states)
    assert [s.m for s in states] == list(range(start.m + 1, m_end + 1))
    mid = states[20]  # resume from the middle: the rest is sample-equal
    rest, last2 = inv.run(mid, rows[mid.m + 1 + 3 :], m_end)
    np.testing.assert_array_equal(rest, whole[-rest.size :])
    np.testing.assert_array_equal(last2.buf, last.buf)
