"""Windowed processing of long files (`workbench.core.longaudio`): each windowed step equals its
whole-clip counterpart, so the CLI can stream files of any length. The memory figure for a one-hour
file is measured by benchmarks/bench_long_audio.py (too slow for CI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from workbench.core.audio import load_audio
from workbench.core.codecs.default import DefaultCodec
from workbench.core.longaudio import decode_to_file, encode_file, steer_windowed, write_features_npy
from workbench.core.sae.model import SAE
from workbench.core.steering import Edit, SteeringContext, apply_edits


def noisy_tones(path: Path, seconds: float, sr: int, channels: int) -> Path:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.5 * t / seconds))[:, None] + 0.05 * rng.standard_normal((len(t), channels))
    sf.write(str(path), x.astype(np.float32), sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def sae() -> SAE:
    torch.manual_seed(0)
    m = SAE(16, 48, "topk", k=6)
    with torch.no_grad():
        m.W_enc.normal_(0, 0.25)
        m.W_dec.copy_(m.W_enc.T / m.W_enc.T.norm(dim=1, keepdim=True))
    return m.eval()


def test_windowed_encode_equals_whole_clip_encode(tmp_path: Path, tiny_codec: DefaultCodec) -> None:
    # 44.1 kHz stereo, a length that is not a multiple of anything: resampling, downmix and the last
    # partial frame all cross window borders.
    p = noisy_tones(tmp_path / "a.wav", 2.3, 44100, 2)
    whole = tiny_codec.encode(load_audio(p, 24000, 1))
    z, n = encode_file(p, tiny_codec, window_seconds=0.35)
    assert z.shape == whole.shape and n == load_audio(p, 24000, 1).num_samples
    assert np.abs(z - whole).max() < 1e-4 * max(1.0, np.abs(whole).max())
    # A file shorter than one window takes the whole-clip path (bit-identical).
    z2, _ = encode_file(p, tiny_codec, window_seconds=10.0)
    assert np.array_equal(z2, whole)


def test_windowed_steering_and_features_equal_one_pass(tmp_path: Path, tiny_codec: DefaultCodec, sae: SAE) -> None:
    z = tiny_codec.encode(load_audio(noisy_tones(tmp_path / "b.wav", 3.0, 24000, 1), 24000, 1))
    ctx = SteeringContext.from_sae(sae, tiny_codec.frame_rate)
    # Ranges that start and end inside windows of 40 frames (0.53 s), with fades across borders.
    edits = [Edit(3, "scale", 0.0, 0.5, 1.7), Edit(7, "add", 1.0, 1.05, None), Edit(11, "set", 0.5)]
    one = apply_edits(z, edits, ctx)
    win = steer_windowed(z, edits, ctx, window_frames=40)
    assert np.abs(win - one).max() < 1e-5
    assert np.abs(one - z).max() > 1e-3  # the edits did something
    out = tmp_path / "f.npy"
    n, l0 = write_features_npy(out, z, sae.encode_np, sae.d_sae, window_frames=33)
    f = np.load(out)
    assert n == len(z) and f.dtype == np.float32 and np.allclose(f, sae.encode_np(z), atol=1e-6)
    assert 0 < l0 <= 6


def test_block_decode_to_file_equals_whole_decode(tmp_path: Path, tiny_codec: DefaultCodec) -> None:
    x = load_audio(noisy_tones(tmp_path / "c.wav", 1.7, 24000, 1), 24000, 1)
    z = tiny_codec.encode(x)
    out = tmp_path / "y.wav"
    n = decode_to_file(out, tiny_codec, z, x.num_samples, block_frames=23)
    y = load_audio(out)
    assert n == x.num_samples == y.num_samples
    ref = np.clip(tiny_codec.decode(z, x.num_samples).samples, -1, 1)
    assert np.abs(y.samples - ref).max() < 1e-6
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []  # no temp file left


def test_limited_decode_to_file_carries_the_limiter_across_blocks(tmp_path: Path, tiny_codec: DefaultCodec) -> None:
    from workbench.core.limiter import PeakLimiter, limit

    x = load_audio(noisy_tones(tmp_path / "c.wav", 1.7, 24000, 1), 24000, 1)
    z = tiny_codec.encode(x)
    out = tmp_path / "y.wav"
    lim = PeakLimiter(24000, 1, ceiling_db=-30.0)  # the tiny codec is quiet: a low ceiling makes it work
    n = decode_to_file(out, tiny_codec, z, x.num_samples, block_frames=23, limiter=lim)
    y = load_audio(out)
    ref, one = limit(tiny_codec.decode(z, x.num_samples).samples, 24000, ceiling_db=-30.0)
    assert n == x.num_samples == y.num_samples
    assert one.max_reduction_db > 3 and lim.max_reduction_db == pytest.approx(one.max_reduction_db, abs=1e-6)
    assert np.abs(y.samples).max() <= 10 ** (-30 / 20)
    assert np.abs(y.samples - ref).max() < 1e-6  # 23-frame blocks = one pass over the whole decode
