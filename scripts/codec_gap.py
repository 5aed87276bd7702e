"""Where the default codec's multi-resolution STFT distance comes from: magnitudes or phase (issue 3).

    python scripts/codec_gap.py [--weights DIR] [--n 3] [--seed 900000] [--threads 2]

For held-out synthetic clips (the report's seeds: notes and melodies from SEED, chords, drums and
textures from SEED + 10000), the distance of `workbench codec-report` (spectral convergence + log-
magnitude L1 at 512/1024/2048 windows) between the input and each of:

- ``codec``: the codec's decode (its magnitudes, its streaming phase rebuild): the reported figure;
- ``codec mag + GL``: the codec's magnitudes with 32 Griffin-Lim iterations instead of its phase;
- ``true mag + phase``: the input's own STFT magnitudes (the codec's 1280/320 frames) through the
  codec's phase rebuild: what the phase rebuild alone costs;
- ``true mag + GL``: the same magnitudes with Griffin-Lim;
- ``mel128 inv + phase``: 128 mel bands, inverted to magnitudes (librosa's NNLS), through the codec's
  phase rebuild: a codec that kept exactly what 128 mel bands keep, decoded the codec's way;
- ``mel128 + GL``: the peer of the report.

Reading: ``codec`` - ``codec mag + GL`` is what the streaming phase costs on the codec's magnitudes;
``codec mag + GL`` - ``true mag + GL`` is what the magnitudes lose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ("codec", "codec mag + GL", "true mag + phase", "true mag + GL", "mel128 inv + phase", "mel128 + GL")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="default-codec weights folder (default: the shipped one)")
    p.add_argument("--n", type=int, default=3, help="held-out clips per kind")
    p.add_argument("--seed", type=int, default=900_000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import librosa
    import numpy as np
    import torch

    from workbench.core.audio import AudioClip
    from workbench.core.codecs.default import DefaultCodec
    from workbench.core.codecs.default_eval import griffin_lim_baseline, mr_stft_distance
    from workbench.core.codecs.default_model import stft_mag
    from workbench.core.data.synth import render_clip

    torch.set_num_threads(args.threads)
    codec = DefaultCodec(args.weights)
    hop, n_fft, sr = codec.hop_length, codec.cfg.n_fft, codec.sample_rate

    def own_phase(mag: np.ndarray) -> np.ndarray:
        padded = np.concatenate([mag, np.zeros((2, mag.shape[1]), np.float32)])  # as decode_samples does
        return codec.synthesize(padded)[0][: mag.shape[0] * hop].astype(np.float32)

    def griffin_lim(mag: np.ndarray) -> np.ndarray:
        y = librosa.griffinlim(mag.T, n_iter=32, hop_length=hop, n_fft=n_fft, center=True,
                               length=(mag.shape[0] - 1) * hop)
        return y.astype(np.float32)

    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=128)
    rows: dict[str, list[list[float]]] = {}
    for kind in ("note", "melody", "chord", "drums", "texture"):
        base = args.seed if kind in ("note", "melody") else args.seed + 10_000
        for i in range(args.n):
            x = render_clip(kind, base + i, sample_rate=sr).audio
            n = codec.num_frames(len(x)) * hop
            with torch.inference_mode():
                true_mag = stft_mag(torch.from_numpy(np.pad(x, (0, n - len(x))))[None], codec.cfg)[0].numpy()
            codec_mag = codec.magnitudes(codec.encode(AudioClip(x, sr)))
            mel_inv = librosa.feature.inverse.mel_to_stft((true_mag @ mel.T).T, sr=sr, n_fft=n_fft, power=1.0).T
            outs = [
                codec.decode(codec.encode(AudioClip(x, sr)), num_samples=len(x)).samples[:, 0],
                griffin_lim(codec_mag), own_phase(true_mag), griffin_lim(true_mag),
                own_phase(mel_inv.astype(np.float32)), griffin_lim_baseline(x, sr, hop),
            ]
            d = [mr_stft_distance(x, np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]) for y in outs]
            rows.setdefault(kind, []).append(d)
            print(f"{kind} {i}: " + ", ".join(f"{c} {v:.3f}" for c, v in zip(COLUMNS, d, strict=True)),
                  file=sys.stderr, flush=True)
    print(f"Multi-resolution STFT distance to the input, weights {args.weights or 'shipped'}, {args.n} held-out clips per kind\n")
    print("| kind | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    everything = [d for per_kind in rows.values() for d in per_kind]
    for kind, dists in [*rows.items(), ("all", everything)]:
        m = np.mean(np.asarray(dists), axis=0)
        print(f"| {kind} | " + " | ".join(f"{v:.3f}" for v in m) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
