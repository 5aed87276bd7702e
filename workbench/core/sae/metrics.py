"""SAE quality figures: reconstruction (MSE, FVU), sparsity (L0, dead fraction, firing density) and the
audio-domain cost of putting the SAE between the codec's encoder and decoder.

Definitions (so figures from different runs and tools compare):

- MSE: squared error summed over the d_in dimensions, averaged over frames (SAELens's convention).
- FVU: Σ‖z − ẑ‖² / Σ‖z − mean(z)‖² over all frames (fraction of variance unexplained; 0 is perfect).
- L0: mean number of non-zero features per frame.
- dead fraction: features that did not fire on any of the last `window` frames (training) or on any
  frame of the evaluated data (evaluation).
- density: log10 of each feature's firing rate (1e-10 for a feature that never fired, as in SAELens's
  ``sparsity.safetensors``); the histogram buckets it by half decades.
- audio cost: for a few clips, ``codec.decode(z)`` against ``codec.decode(SAE(z))``: a multi-resolution
  STFT distance (spectral convergence + mean |Δ log-magnitude|, averaged over FFT sizes 512/1024/2048)
  and the waveform SNR in dB. The STFT distance is the figure to watch; the SNR is harsh for codecs
  that rebuild phase (a small change in magnitudes can shift the phase and with it the waveform).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from workbench.core.codecs.base import Codec
    from workbench.core.sae.model import SAE

LOG_FLOOR = 1e-10
HIST_EDGES = [float(e) for e in np.arange(-8.0, 0.01, 0.5)]


class FiringTracker:
    """Frames since each feature last fired, and firing counts since the last `take_counts`."""

    def __init__(self, d_sae: int, window: int, device: torch.device | str = "cpu") -> None:
        self.window = int(window)
        self.frames_since = torch.zeros(d_sae, dtype=torch.int64, device=device)
        self.counts = torch.zeros(d_sae, dtype=torch.int64, device=device)
        self.frames = 0

    def update(self, fired: torch.Tensor, n_frames: int) -> None:
        self.frames_since += int(n_frames)
        self.frames_since[fired > 0] = 0
        self.counts += fired.to(self.counts.dtype)
        self.frames += int(n_frames)

    def dead_mask(self) -> torch.Tensor:
        return self.frames_since >= self.window

    def dead_fraction(self) -> float:
        return float(self.dead_mask().float().mean())

    def take_counts(self) -> tuple[np.ndarray, int]:
        """Firing counts and frames since the previous call (for a density histogram), then reset."""
        c = self.counts.cpu().numpy().copy()
        n = self.frames
        self.counts.zero_()
        self.frames = 0
        return c, n

    def state(self) -> dict[str, torch.Tensor]:
        return {"frames_since": self.frames_since.clone(), "counts": self.counts.clone(),
                "frames": torch.tensor([self.frames], dtype=torch.int64)}

    def load_state(self, st: dict[str, torch.Tensor]) -> None:
        self.frames_since.copy_(st["frames_since"])
        self.counts.copy_(st["counts"])
        self.frames = int(st["frames"][0])


def log10_density(fire_counts: np.ndarray, n_frames: int) -> np.ndarray:
    rate = np.asarray(fire_counts, dtype=np.float64) / max(1, int(n_frames))
    return np.log10(rate + LOG_FLOOR).astype(np.float32)


def density_histogram(log_density: np.ndarray) -> dict[str, Any]:
    """Counts of features per half decade of firing rate; ``never`` = features that never fired."""
    ld = np.asarray(log_density, dtype=np.float64)
    never = int((ld <= math.log10(2 * LOG_FLOOR)).sum())
    counts, _ = np.histogram(np.clip(ld[ld > math.log10(2 * LOG_FLOOR)], HIST_EDGES[0], 0.0), bins=HIST_EDGES)
    return {"edges": HIST_EDGES, "counts": [int(c) for c in counts], "never": never}


@torch.no_grad()
def evaluate(
    sae: SAE,
    batches: Iterable[np.ndarray | torch.Tensor],
    *,
    max_frames: int | None = None,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Reconstruction and sparsity of `sae` (inference path) over `batches` of raw latents.

    `scale` multiplies the latents first (for a model still in its training-time normalised space).
    Returns MSE, FVU, L0, dead fraction, per-feature fire counts / max activation / log10 density, and
    (relu-rmsnorm) the max of the pre-norm code.
    """
    p = next(sae.parameters())
    d_sae = sae.d_sae
    fire = torch.zeros(d_sae, dtype=torch.int64)
    fmax = torch.zeros(d_sae, dtype=torch.float64)
    umax = torch.zeros(d_sae, dtype=torch.float64)
    n = 0
    sq_err = 0.0
    sum_x = None
    sum_x2 = 0.0
    l0_sum = 0.0
    was_training = sae.training
    sae.eval()
    try:
        for batch in batches:
            x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.asarray(batch, dtype=np.float32))
            if max_frames is not None and n + x.shape[0] > max_frames:
                x = x[: max(0, max_frames - n)]
            if x.shape[0] == 0:
                break
            x = x.to(p.device, torch.float32) * scale
            if sae.architecture == "relu-rmsnorm":
                u = sae.encode_prenorm(x)
                f = sae.rms_normalize(u)
                umax = torch.maximum(umax, u.amax(dim=0).double().cpu())
            else:
                f = sae.encode(x)
            x_hat = sae.decode(f)
            on = f > 0
            fire += on.sum(dim=0).cpu()
            l0_sum += float(on.sum())
            fmax = torch.maximum(fmax, f.amax(dim=0).double().cpu())
            sq_err += float((x - x_hat).double().pow(2).sum())
            xd = x.double()
            sx = xd.sum(dim=0).cpu()
            sum_x = sx if sum_x is None else sum_x + sx
            sum_x2 += float(xd.pow(2).sum())
            n += x.shape[0]
            if max_frames is not None and n >= max_frames:
                break
    finally:
        sae.train(was_training)
    if n == 0 or sum_x is None:
        raise ValueError("no frames to evaluate")
    total_var = sum_x2 - float((sum_x * sum_x).sum()) / n
    fire_np = fire.numpy()
    out: dict[str, Any] = {
        "frames": n,
        "mse": sq_err / n,
        "fvu": sq_err / max(total_var, 1e-12),
        "l0": l0_sum / n,
        "dead_fraction": float((fire_np == 0).mean()),
        "fire_counts": fire_np,
        "max_activation": fmax.float().numpy(),
        "log10_density": log10_density(fire_np, n),
    }
    if sae.architecture == "relu-rmsnorm":
        out["max_activation_prenorm"] = umax.float().numpy()
    return out


# -- audio-domain cost --------------------------------------------------------------------------------

def _log_mag(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    w = torch.hann_window(n_fft, dtype=x.dtype)
    s = torch.stft(x, n_fft, hop_length=n_fft // 4, window=w, center=True, return_complex=True)
    return s.abs()


def mr_stft_distance(ref: np.ndarray, est: np.ndarray, ffts: Sequence[int] = (512, 1024, 2048)) -> float:
    """Mean over FFT sizes of spectral convergence + mean |log10 magnitude difference| (floor 1e-5)."""
    a = torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float32).reshape(-1))
    b = torch.from_numpy(np.ascontiguousarray(est, dtype=np.float32).reshape(-1))
    m = min(len(a), len(b))
    a, b = a[:m], b[:m]
    vals = []
    for n_fft in ffts:
        if m < n_fft:
            continue
        ma, mb = _log_mag(a, n_fft), _log_mag(b, n_fft)
        sc = float(torch.linalg.vector_norm(ma - mb) / torch.linalg.vector_norm(ma).clamp_min(1e-8))
        lm = float((torch.log10(ma + 1e-5) - torch.log10(mb + 1e-5)).abs().mean())
        vals.append(sc + lm)
    return float(np.mean(vals)) if vals else float("nan")


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    a = np.asarray(ref, dtype=np.float64).reshape(-1)
    b = np.asarray(est, dtype=np.float64).reshape(-1)
    m = min(len(a), len(b))
    num = float((a[:m] ** 2).sum())
    den = float(((a[:m] - b[:m]) ** 2).sum())
    if den <= 0.0:
        return 200.0
    return 10.0 * math.log10(max(num, 1e-20) / den)


def audio_cost(codec: Codec, sae: SAE, clips: Sequence[np.ndarray], max_frames: int | None = None) -> dict[str, Any]:
    """Distance between ``codec.decode(z)`` and ``codec.decode(SAE(z))`` over a few clips' latents.

    `max_frames` crops each clip (decoding is the slow part). Returns the mean STFT distance and SNR
    and the number of clips used; empty input gives an empty dict.
    """
    dists, snrs = [], []
    for z in clips:
        z = np.asarray(z, dtype=np.float32)
        if max_frames is not None:
            z = z[:max_frames]
        if z.shape[0] < 4:
            continue
        ref = codec.decode(z).samples[:, 0]
        est = codec.decode(sae.reconstruct_np(z)).samples[:, 0]
        dists.append(mr_stft_distance(ref, est))
        snrs.append(snr_db(ref, est))
    if not dists:
        return {}
    finite = [d for d in dists if math.isfinite(d)]
    return {
        "clips": len(dists),
        "stft_distance": float(np.mean(finite)) if finite else None,
        "snr_db": float(np.mean(snrs)),
    }
