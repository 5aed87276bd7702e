"""Cost of the output limiter in the audio callback (workbench/core/limiter.py).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_limiter.py [--block 1024] [--blocks 2000]

Times `PeakLimiter.process` on one block at a time, as `PlaybackEngine._callback` calls it (in place,
with the block's look-ahead), for quiet audio (below the ceiling: the copy-through path), a sine 30 dB
over full scale, bursty noise (level jumping every 10 ms: attack, hold and release all busy) and a block
with NaNs, at 24 kHz mono (the default codec) and 48 kHz stereo. Prints median / 99th percentile /
maximum microseconds per block and the median as a share of the block's duration. One thread, no
other work in the process: the figure is the limiter's own cost (the callback adds a ring copy).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench.core.limiter import PeakLimiter


def signals(n: int, sr: int, ch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(n) / sr
    s = np.sin(2 * np.pi * 220 * t)[:, None].repeat(ch, axis=1)
    level = np.repeat(rng.uniform(0.01, 5.0, n // (sr // 100) + 1), sr // 100)[:n, None]
    nan = 0.5 * s.copy()
    nan[:: sr // 2] = np.nan  # a NaN every half second: the gate busy now and then
    return {
        "quiet (-6 dBFS sine)": (0.5 * s).astype(np.float32),
        "+30 dBFS sine": (10**1.5 * s).astype(np.float32),
        "bursty noise": (rng.standard_normal((n, ch)) * level).astype(np.float32),
        "NaN every 0.5 s": nan.astype(np.float32),
    }


def bench(x: np.ndarray, sr: int, block: int) -> np.ndarray:
    ch = x.shape[1]
    lim = PeakLimiter(sr, ch)
    buf = np.zeros((block, ch), np.float32)
    took = []
    for i in range(0, len(x) - block - lim.latency, block):
        buf[:] = x[i : i + block]
        ahead = x[i + block : i + block + lim.latency]
        t0 = time.perf_counter()
        lim.process(buf, ahead, out=buf)
        took.append(time.perf_counter() - t0)
    return np.array(took) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--blocks", type=int, default=2000)
    a = ap.parse_args()
    print("| rate, channels | signal | median µs | p99 µs | max µs | median / block duration |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for sr, ch in ((24000, 1), (48000, 2)):
        for name, x in signals(a.block * a.blocks, sr, ch).items():
            us = bench(x, sr, a.block)
            dur = a.block / sr * 1e6
            print(f"| {sr // 1000} kHz, {ch} ch | {name} | {np.median(us):.0f} | {np.percentile(us, 99):.0f} | "
                  f"{us.max():.0f} | {np.median(us) / dur:.2%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
