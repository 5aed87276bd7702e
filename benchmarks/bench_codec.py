"""Codec speed: encode/decode real-time factors and block-decoder latency, against EnCodec 24 kHz.

    python benchmarks/bench_codec.py [--codecs ID ...] [--seconds 30] [--repeats 3] [--measure-context]

For each codec: encode and decode a synthetic clip (harmonic tone with vibrato and a little noise) with 1
and 2 torch threads, as real-time factors (seconds of compute per second of audio; lower is faster),
and the block decoder's time for 0.1 s of audio on 1 thread (median over random positions): "cold" is a
block decoded with no history (nothing cached: after a seek), "stream" is the mean over consecutive blocks
of one block decoder, as live playback asks for them. Ratios are against EnCodec 24 kHz measured in the same run, so a loaded
machine affects both sides alike (the load average is printed). On a busy machine run it with
``OMP_WAIT_POLICY=PASSIVE``: with the default spin-waiting, two OpenMP threads that lose their cores to
other processes were 7x slower than one thread here.

EnCodec weights are taken where the workbench finds them; when there are none (offline), random-init
weights of the same architecture are written to a temporary folder — the cost of running the network
does not depend on the values of its weights, and the output says so. ``default`` (the embedded codec) is
measured if the registry can load it and skipped with the reason otherwise.

``--measure-context`` also measures, for EnCodec 24 kHz with the weights in use, how much left context
the block decoder needs to match the whole-clip decode within 1e-4 RMS (audio normalized to peak 0.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.audio import AudioClip
from workbench.core.codecs import encodec_adapter as ea
from workbench.core.codecs import get_codec
from workbench.core.codecs.base import Codec

PEER = "encodec-24khz"


def synth_clip(seconds: float, sr: int, channels: int, seed: int = 0) -> AudioClip:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    cols = []
    for c in range(channels):
        ph = 2 * np.pi * 196.0 * (1 + 0.2 * c) * (t + 0.02 * np.sin(2 * np.pi * 5.0 * t))
        x = sum(np.sin(k * ph) / k for k in range(1, 10)) * (0.55 + 0.45 * np.sin(2 * np.pi * 0.4 * t + c))
        cols.append(x + 0.02 * rng.standard_normal(t.shape))
    x = np.stack(cols, axis=1)
    return AudioClip((0.5 * x / np.abs(x).max()).astype(np.float32), sr)


def random_encodec_weights(codec_id: str, folder: Path, seed: int = 0) -> None:
    """Random-init EnCodec saved under its standard name (codebooks filled so quantization is real)."""
    from encodec import EncodecModel

    spec = ea.SPECS[codec_id]
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(EncodecModel, spec.builder)(pretrained=False)
    with torch.no_grad():
        for i, layer in enumerate(model.quantizer.vq.layers):
            layer._codebook.embed.normal_(0.0, 0.03 * 0.7**i)
            layer._codebook.inited.fill_(1.0)
    torch.save(model.state_dict(), folder / spec.checkpoint)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall time and median process CPU time of `repeats` calls.

    With one thread, CPU time is what the call costs on an idle machine even when other processes share
    the cores, so it is the figure to compare across runs on a busy machine.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def load_codec(codec_id: str, latent: str | None, tmp: Path) -> tuple[Codec | None, str]:
    """The codec and where its weights came from, or None and why it was skipped."""
    try:
        if codec_id in ea.SPECS:
            spec = ea.SPECS[codec_id]
            found = ea.find_weights(spec, None, strict=False)
            if found is None:
                random_encodec_weights(codec_id, tmp)
                return get_codec(codec_id, latent=latent, weights=tmp), "random init (no real weights found)"
            return get_codec(codec_id, latent=latent), f"{found.source}: {found.path.name}"
        return get_codec(codec_id), "registry"
    except Exception as exc:  # a missing or broken codec is reported, not fatal
        return None, " ".join(str(exc).split())[:200] or type(exc).__name__


def bench_codec(codec: Codec, seconds: float, repeats: int, block_repeats: int) -> dict[str, float]:
    clip = synth_clip(seconds, codec.sample_rate, codec.channels)
    codec.decode(codec.encode(clip.slice(0, 1.0)))  # warm-up: first calls allocate and pick kernels
    out: dict[str, float] = {}
    z = codec.encode(clip)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, fn in (("enc", lambda: codec.encode(clip)), ("dec", lambda: codec.decode(z, clip.num_samples))):
            wall, cpu = timed(fn, repeats)
            out[f"{name}_rtf_{threads}t"] = wall / clip.duration
            if threads == 1:
                out[f"{name}_cpu_1t"] = cpu / clip.duration

    torch.set_num_threads(1)
    n = max(1, round(0.1 * codec.frame_rate))
    out["block_frames"] = n
    t = z.shape[0]
    rng = np.random.default_rng(1)
    clear = getattr(codec, "clear_cache", None)
    starts = rng.integers(t // 4, 3 * t // 4, size=block_repeats + 2)
    cold, cold_cpu = [], []
    for i, a in enumerate(starts):
        if clear is not None:
            clear()
        t0, c0 = time.perf_counter(), time.process_time()
        codec.decode_block(z, int(a), int(a) + n)
        if i >= 2:  # the first two warm up the block shapes
            cold.append(time.perf_counter() - t0)
            cold_cpu.append(time.process_time() - c0)
    out["block_cold_ms"] = 1000 * statistics.median(cold)
    out["block_cpu_ms"] = 1000 * statistics.median(cold_cpu)
    if clear is not None:
        clear()
    a0 = t // 3
    k = max(1, min(block_repeats * 2, (t - a0) // n))
    # As live playback asks: one block decoder per clip, blocks in order (a stateful decoder continues).
    bd = codec.block_decoder(z)
    bd.decode(a0 - n, a0)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(k):
        bd.decode(a0 + i * n, a0 + (i + 1) * n)
    out["block_stream_ms"] = 1000 * (time.perf_counter() - t0) / k
    out["block_stream_cpu_ms"] = 1000 * (time.process_time() - c0) / k
    return out


def measure_context(codec: Codec, seconds: float = 4.0) -> None:
    """Smallest left context at which every block size matches the whole-clip decode within 1e-4 RMS."""
    torch.set_num_threads(2)
    clip = synth_clip(seconds, codec.sample_rate, codec.channels, seed=3)
    z = codec.encode(clip)
    whole = codec.decode_samples(z)
    t, hop = z.shape[0], codec.hop_length
    original = codec.context_frames
    print(f"\nblock-decoder context for {codec.id} ({codec.describe().get('weights_source')}), "
          f"{t} frames, output RMS {np.sqrt(np.mean(whole**2)):.3g}:")
    print(f"  {'context':>7}  {'worst RMS diff':>14}")
    enough = None
    try:
        for ctx in (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96):
            codec.context_frames = ctx
            worst = 0.0
            for bs in (1, 2, 3, 7, 16):
                for a in (ctx + 5, t // 3, t // 2, t - bs - 1):
                    if a < 0 or a + bs > t:
                        continue
                    d = codec.decode_block(z, a, a + bs) - whole[a * hop : (a + bs) * hop]
                    worst = max(worst, float(np.sqrt(np.mean(d.astype(np.float64) ** 2))))
            print(f"  {ctx:>7}  {worst:>14.2e}")
            if enough is None and worst < 1e-4:
                enough = ctx
    finally:
        codec.context_frames = original
    print(f"  needed for < 1e-4: {enough} frames; the codec uses {original}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codecs", nargs="+", default=["encodec-24khz", "encodec-48khz", "default"])
    p.add_argument("--seconds", type=float, default=30.0, help="clip length (default 30)")
    p.add_argument("--repeats", type=int, default=3, help="runs per encode/decode figure (median)")
    p.add_argument("--block-repeats", type=int, default=15, help="blocks per block figure (median)")
    p.add_argument("--latent", default=None, help="EnCodec latent kind (default continuous)")
    p.add_argument("--measure-context", action="store_true", help="also measure EnCodec 24 kHz block context")
    args = p.parse_args(argv)
    codecs = list(dict.fromkeys(args.codecs))
    if PEER not in codecs:
        codecs.insert(0, PEER)

    threads0 = torch.get_num_threads()
    load = os.getloadavg()[0]
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load:.2f} at start, "
          f"OMP_WAIT_POLICY={policy}; {args.seconds:g} s clip, median of {args.repeats} runs")
    rows: dict[str, dict[str, float]] = {}
    sources: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-codec-") as tmp:
        for cid in codecs:
            codec, source = load_codec(cid, args.latent, Path(tmp))
            if codec is None:
                print(f"skip {cid}: {source}")
                continue
            sources[cid] = source
            print(f"{cid}: {codec.sample_rate} Hz x{codec.channels}, {codec.frame_rate:g} frames/s, "
                  f"latent {codec.latent_kind} [T, {codec.latent_dim}], weights: {source}", flush=True)
            rows[cid] = bench_codec(codec, args.seconds, args.repeats, args.block_repeats)
            if args.measure_context and cid == PEER:
                measure_context(codec)
            torch.set_num_threads(threads0)
            del codec

    cols = [
        ("enc_rtf_1t", "enc RTF 1t", "{:.3f}"),
        ("enc_rtf_2t", "enc RTF 2t", "{:.3f}"),
        ("enc_cpu_1t", "enc CPU 1t", "{:.3f}"),
        ("dec_rtf_1t", "dec RTF 1t", "{:.3f}"),
        ("dec_rtf_2t", "dec RTF 2t", "{:.3f}"),
        ("dec_cpu_1t", "dec CPU 1t", "{:.3f}"),
        ("block_cold_ms", "block cold ms", "{:.1f}"),
        ("block_cpu_ms", "block CPU ms", "{:.1f}"),
        ("block_stream_ms", "block strm ms", "{:.1f}"),
        ("block_stream_cpu_ms", "strm CPU ms", "{:.1f}"),
    ]
    print("\nRTF = wall seconds per second of audio; CPU = process CPU seconds per second (1 thread: load-proof)")
    print(f"{'codec':<15} " + " ".join(f"{h:>13}" for _, h, _ in cols) + "  weights")
    for cid, r in rows.items():
        print(f"{cid:<15} " + " ".join(f"{f.format(r[k]):>13}" for k, _, f in cols) + f"  {sources[cid]}")
    print("(block = 0.1 s of audio on 1 thread: " + ", ".join(
        f"{cid} {int(r['block_frames'])} frames" for cid, r in rows.items()) + ")")
    if PEER in rows:
        print(f"\nratio to {PEER} (< 1 = faster)")
        for cid, r in rows.items():
            if cid != PEER:
                print(f"{cid:<15} " + " ".join(f"{r[k] / rows[PEER][k]:>13.2f}" for k, _, _ in cols))
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
