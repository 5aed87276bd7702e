"""Held-out measurements of the default codec, and the report shipped next to its weights.

Figures (each against the input clip, on held-out synthetic clips rendered with seeds the training
corpus never used):

* pitch kept: share of voiced frames whose decoded pitch is within 50 cents of the input's pitch
  (torchcrepe 'tiny' with Viterbi decoding, 10 ms hop, 50-1500 Hz; a frame is voiced where the input's
  periodicity is >= 0.5 and a labelled note sounds);
* loudness kept: median |difference| of frame RMS in dB over frames above -40 dBFS (1280/320 frames);
* timbre kept: median relative error of the frame spectral centroid over the same frames;
* multi-resolution STFT distance (spectral convergence + log-magnitude L1 at 512/1024/2048 windows),
  against mel-spectrogram (128 bands) + Griffin-Lim (32 iterations) at the same hop as a classic peer;
* speed: encode + decode real-time factor for 30 s with 2 threads, block decoder ms per 0.1 s, 1 thread.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.audio import AudioClip


def frame_rms_db(x: np.ndarray, frame: int = 1280, hop: int = 320) -> np.ndarray:
    import librosa

    r = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop, center=True)[0]
    return 20 * np.log10(np.maximum(r, 1e-10))


def centroid(x: np.ndarray, sr: int, frame: int = 1280, hop: int = 320) -> np.ndarray:
    import librosa

    return librosa.feature.spectral_centroid(y=x, sr=sr, n_fft=frame, hop_length=hop, center=True)[0]


def mr_stft_distance(x: np.ndarray, y: np.ndarray) -> float:
    n = min(len(x), len(y))
    xt, yt = torch.from_numpy(x[:n].astype(np.float32)), torch.from_numpy(y[:n].astype(np.float32))
    total = 0.0
    for w in (512, 1024, 2048):
        win = torch.hann_window(w)
        sx = torch.stft(xt, w, w // 4, window=win, return_complex=True).abs()
        sy = torch.stft(yt, w, w // 4, window=win, return_complex=True).abs()
        sc = float(torch.linalg.norm(sx - sy) / (torch.linalg.norm(sx) + 1e-8))
        lg = float((torch.log(sx + 1e-5) - torch.log(sy + 1e-5)).abs().mean())
        total += sc + lg
    return total / 3


def crepe_pitch(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz, periodicity) at 100 frames/s with torchcrepe's tiny model (weights ship in its wheel)."""
    import torchcrepe

    audio = torch.from_numpy(x.astype(np.float32))[None]
    f0, per = torchcrepe.predict(
        audio, sr, hop_length=sr // 100, fmin=50.0, fmax=1500.0, model="tiny", batch_size=512,
        device="cpu", return_periodicity=True, decoder=torchcrepe.decode.viterbi,
    )
    return f0[0].numpy(), per[0].numpy()


def griffin_lim_baseline(x: np.ndarray, sr: int, hop: int, n_mels: int = 128) -> np.ndarray:
    import librosa

    m = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=4 * hop, hop_length=hop, n_mels=n_mels, power=1.0)
    y = librosa.feature.inverse.mel_to_audio(m, sr=sr, n_fft=4 * hop, hop_length=hop, power=1.0, n_iter=32)
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)].astype(np.float32)


def evaluate_clip(codec: Any, x: np.ndarray, labels: dict[str, Any], with_pitch: bool, with_baseline: bool) -> dict[str, Any]:
    sr = codec.sample_rate
    z = codec.encode(AudioClip(x, sr))
    y = codec.decode(z, num_samples=len(x)).samples[:, 0]
    out: dict[str, Any] = {"kind": labels.get("kind")}
    rx, ry = frame_rms_db(x), frame_rms_db(y)
    loud = rx > -40
    out["loud_frames"] = int(loud.sum())
    out["d_loud"] = np.abs(rx - ry)[loud].tolist()
    cx, cy = centroid(x, sr), centroid(y, sr)
    out["d_centroid"] = (np.abs(cy - cx) / np.maximum(cx, 1e-6))[loud].tolist()
    out["mrstft"] = mr_stft_distance(x, y)
    if with_baseline:
        out["mrstft_gl"] = mr_stft_distance(x, griffin_lim_baseline(x, sr, codec.hop_length))
        # The same peer with half the bands (as many numbers per frame as the previous 65-dim latent).
        out["mrstft_gl64"] = mr_stft_distance(x, griffin_lim_baseline(x, sr, codec.hop_length, n_mels=64))
    if with_pitch:
        fx, px = crepe_pitch(x, sr)
        fy, _ = crepe_pitch(y, sr)
        t = np.arange(len(fx)) / 100.0
        sounding = np.zeros(len(fx), bool)
        for note in labels.get("notes", []):
            if note.get("is_drum"):
                continue
            sounding |= (t >= note["onset"]) & (t < note["offset"])
        voiced = sounding & (px >= 0.5)
        cents = 1200 * np.abs(np.log2(np.maximum(fy[voiced], 1e-3) / np.maximum(fx[voiced], 1e-3)))
        out["cents"] = cents.tolist()
    return out


def speed(codec: Any) -> dict[str, float]:
    rng = np.random.default_rng(0)
    t = np.arange(30 * codec.sample_rate) / codec.sample_rate
    x = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    codec.decode(codec.encode(AudioClip(x[: codec.sample_rate], codec.sample_rate)))  # warm-up
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        z = codec.encode(AudioClip(x, codec.sample_rate))
        codec.decode(z)
        best = min(best, time.perf_counter() - t0)
    torch.set_num_threads(1)
    n_block = max(1, round(0.1 * codec.frame_rate))
    bd = codec.block_decoder(z)
    bd.decode(0, 100)
    times = []
    for a in range(100, min(z.shape[0] - n_block, 1100), n_block):
        t0 = time.perf_counter()
        bd.decode(a, a + n_block)
        times.append(time.perf_counter() - t0)
    torch.set_num_threads(old)
    block_ms = float(np.median(times)) * 1000 * (0.1 / (n_block / codec.frame_rate))
    return {"rtf_encode_decode_30s_2threads": best / 30.0, "block_ms_per_100ms_1thread": block_ms}


def evaluate(codec: Any, n_per_kind: int = 40, seed: int = 900_000, kinds: tuple[str, ...] = ("note", "melody"),
             baseline_every: int = 4) -> dict[str, Any]:
    from workbench.core.data.synth import render_clip

    rows = []
    for kind in kinds:
        for i in range(n_per_kind):
            clip = render_clip(kind, seed + i, sample_rate=codec.sample_rate)
            rows.append(evaluate_clip(codec, clip.audio, clip.labels, True, i % baseline_every == 0))
    for kind in ("chord", "drums", "texture"):
        for i in range(max(1, n_per_kind // 4)):
            clip = render_clip(kind, seed + 10_000 + i, sample_rate=codec.sample_rate)
            rows.append(evaluate_clip(codec, clip.audio, clip.labels, False, True))
    cents = np.concatenate([np.asarray(r["cents"]) for r in rows if "cents" in r])
    d_loud = np.concatenate([np.asarray(r["d_loud"]) for r in rows])
    d_cent = np.concatenate([np.asarray(r["d_centroid"]) for r in rows])
    paired = [r for r in rows if "mrstft_gl" in r]
    figures = {
        "pitch_within_50c": float(np.mean(cents < 50)) if len(cents) else float("nan"),
        "voiced_frames": int(len(cents)),
        "loudness_median_abs_db": float(np.median(d_loud)),
        "centroid_median_rel_err": float(np.median(d_cent)),
        "mrstft_codec": float(np.mean([r["mrstft"] for r in paired])),
        "mrstft_mel_griffinlim32": float(np.mean([r["mrstft_gl"] for r in paired])),
        "mrstft_mel64_griffinlim32": float(np.mean([r["mrstft_gl64"] for r in paired])),
        "clips": len(rows),
        "seed": seed,
    }
    figures.update(speed(codec))
    return figures


def write_report(weights: str | None = None, n_per_kind: int = 40, seed: int = 900_000) -> Path:
    from workbench.core.codecs.default import DefaultCodec
    from workbench.core.codecs.default_train import atomic_write_json
    from workbench.core.fileio import atomic_write_text
    from workbench.core.resources import default_codec_dir

    folder = Path(weights) if weights else default_codec_dir()
    codec = DefaultCodec(folder)
    figs = evaluate(codec, n_per_kind=n_per_kind, seed=seed)
    meta = json.loads((folder / "config.json").read_text())
    meta["report"] = {
        "pitch_within_50c": round(figs["pitch_within_50c"], 4),
        "loudness_db": round(figs["loudness_median_abs_db"], 3),
        "centroid_err": round(figs["centroid_median_rel_err"], 4),
        "mrstft": round(figs["mrstft_codec"], 4),
        "mrstft_gl32": round(figs["mrstft_mel_griffinlim32"], 4),
        "mrstft_gl32_mel64": round(figs["mrstft_mel64_griffinlim32"], 4),
    }
    atomic_write_json(folder / "config.json", meta)
    n_params = sum(p.numel() for p in codec.model.parameters())
    ok = {
        "pitch": figs["pitch_within_50c"] >= 0.90,
        "loudness": figs["loudness_median_abs_db"] <= 1.5,
        "timbre": figs["centroid_median_rel_err"] <= 0.10,
        "beats Griffin-Lim": figs["mrstft_codec"] < figs["mrstft_mel_griffinlim32"],
        "speed (<= 1/50 RT)": figs["rtf_encode_decode_30s_2threads"] <= 0.02,
        "block (<= 10 ms)": figs["block_ms_per_100ms_1thread"] <= 10,
    }
    lines = [
        "# Default codec: held-out report",
        "",
        f"Weights: `model.safetensors` ({n_params / 1e6:.2f} M parameters), step {meta.get('step')}; "
        f"24 kHz mono, hop {codec.hop_length} ({codec.frame_rate:g} frames/s), latent dim {codec.latent_dim}.",
        f"Held-out synthetic clips: {figs['clips']} (seeds from {seed}; notes and melodies for pitch, plus chords, "
        "drums and textures for level, timbre and distance). Reproduce: `workbench codec-report`.",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        f"| pitch within 50 cents (voiced frames: {figs['voiced_frames']}) | {figs['pitch_within_50c']:.1%} | >= 90% | {ok['pitch']} |",
        f"| loudness, median abs frame-RMS error (frames > -40 dBFS) | {figs['loudness_median_abs_db']:.2f} dB | <= 1.5 dB | {ok['loudness']} |",
        f"| timbre, median rel. centroid error | {figs['centroid_median_rel_err']:.1%} | <= 10% | {ok['timbre']} |",
        f"| multi-resolution STFT distance, codec | {figs['mrstft_codec']:.3f} | < peer | {ok['beats Griffin-Lim']} |",
        f"| same, mel (128 bands) + Griffin-Lim (32 it.) peer | {figs['mrstft_mel_griffinlim32']:.3f} | | |",
        f"| same, mel (64 bands) + Griffin-Lim (32 it.) | {figs['mrstft_mel64_griffinlim32']:.3f} | | |",
        f"| encode + decode 30 s, 2 threads (RTF) | {figs['rtf_encode_decode_30s_2threads']:.4f} | <= 0.02 | {ok['speed (<= 1/50 RT)']} |",
        f"| block decoder, 0.1 s of audio, 1 thread | {figs['block_ms_per_100ms_1thread']:.1f} ms | <= 10 ms | {ok['block (<= 10 ms)']} |",
        "",
        "Training history (validation losses at checkpoints) is in `training/default_codec/training.json`.",
        "",
    ]
    # How the weights were made and why (hand-written, kept beside the weights): appended as it is.
    design = folder / "design.md"
    if design.is_file():
        lines += [design.read_text().strip(), ""]
    atomic_write_text(folder / "report.md", "\n".join(lines))
    atomic_write_json(folder / "report.json", figs)
    return folder / "report.md"
