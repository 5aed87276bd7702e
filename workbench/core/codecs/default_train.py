"""Training of the embedded default codec: reproducible, checkpointed, resumable.

``workbench train-codec`` drives `train()`. The corpus is the project's synthetic music (rendered on the
fly into a cache folder) plus any extra audio folders. Losses act on STFT magnitudes only (the phase
is rebuilt at decode time): L1 on log-magnitudes with a floor that keeps near-silent bins from
dominating, spectral convergence (weights loud partials), and a per-frame log-energy term that holds
the level (the loudness error a plain log-L1 left at 4-5 dB in an earlier probe).

State is written as safetensors + JSON only (model, AdamW moments in bfloat16, step, RNG seeds), every
few minutes, atomically, so a run killed at any time resumes from its last checkpoint.
"""

from __future__ import annotations

import functools
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.codecs.default_model import (
    DefaultCodecConfig,
    SpectralAutoencoder,
    load_weights_upgrading,
    stft_mag,
)
from workbench.core.errors import DataError
from workbench.core.fileio import atomic_write_bytes


@dataclass
class TrainConfig:
    steps: int = 60_000  # planned total: the LR schedule spans it, across resumed sessions
    batch_size: int = 16
    crop_seconds: float = 1.0
    lr: float = 1e-3
    lr_min: float = 5e-5
    warmup: int = 300
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    loss_floor: float = 1e-3  # log-magnitude floor in the loss
    w_log: float = 1.0
    w_sc: float = 1.0
    w_energy: float = 0.3
    w_latent: float = 1e-4  # keeps latent scale moderate (helps SAEs later)
    # Band-energy term: |log10 band power, decoded vs input| over BANDS mel-spaced bands (loud frames).
    # The log-magnitude loss alone shrinks partials the decoder is unsure of (it predicts their
    # log-mean), and high partials are the uncertain ones, so the decoded audio came out darker;
    # power summed per band does not care where in the band a partial sits.
    w_band: float = 0.0
    gain_db: tuple[float, float] = (-36.0, -1.0)  # crop peak level range, dBFS
    # Strength (0..1) of the output calibration folded into the shipped weights (`output_eq`); 0 = none.
    # Measured at step 21500 (80 held-out notes/melodies + 30 others): 0 -> pitch 91.2%, centroid error
    # 13.5%; 0.5 -> 90.0%, 11.2%; 1 -> 89.1%, 9.1%. Brighter output costs pitch accuracy, so the
    # shipped weights use 0.
    output_eq: float = 0.0
    # Train only the decoder: the encoder (and so every latent, and any SAE trained on them) stays as it is.
    decoder_only: bool = False
    seed: int = 0
    model: dict[str, Any] = field(default_factory=dict)


def atomic_save_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


class AudioPool:
    """All training audio in RAM (mono float32 at the codec rate) with random crops."""

    def __init__(self, clips: list[np.ndarray], sample_rate: int) -> None:
        if not clips:
            raise DataError("no training audio found")
        self.clips = clips
        self.sample_rate = sample_rate
        lengths = np.array([len(c) for c in clips], dtype=np.float64)
        self.p = lengths / lengths.sum()

    @property
    def seconds(self) -> float:
        return float(sum(len(c) for c in self.clips)) / self.sample_rate

    def batch(self, rng: np.random.Generator, n: int, length: int, gain_db: tuple[float, float]) -> np.ndarray:
        out = np.zeros((n, length), np.float32)
        for i in range(n):
            for _attempt in range(8):
                c = self.clips[rng.choice(len(self.clips), p=self.p)]
                if len(c) <= length:
                    seg = np.pad(c, (0, length - len(c)))
                else:
                    a = int(rng.integers(0, len(c) - length))
                    seg = c[a : a + length]
                # Mostly skip near-silent crops: they teach nothing but still cost a step.
                if np.sqrt(np.mean(seg**2)) > 1e-3 or rng.random() < 0.1:
                    break
            # Level augmentation: each crop gets a random peak level, so the codec sees every level
            # whatever the corpus' own mix (single notes there peak near -22 dBFS).
            peak = float(np.abs(seg).max())
            if peak > 1e-4:
                out[i] = seg * (10 ** (rng.uniform(*gain_db) / 20) / peak)
            else:
                out[i] = seg
        return out


def load_audio_dirs(dirs: Sequence[str | Path], sample_rate: int, max_seconds: float | None = None) -> list[np.ndarray]:
    from workbench.core.audio import load_audio

    exts = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
    files: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in exts))
        else:
            raise DataError(f"{p}: no such file or folder")
    clips, total = [], 0.0
    for f in files:
        clip = load_audio(f, sample_rate, 1)
        clips.append(clip.samples[:, 0].copy())
        total += clip.duration
        if max_seconds and total >= max_seconds:
            break
    return clips


BANDS = 32


@functools.lru_cache(maxsize=4)
def band_matrix(sample_rate: int, n_fft: int, n_bands: int = BANDS, fmin: float = 40.0) -> torch.Tensor:
    """[n_bins, n_bands] 0/1: each STFT bin from `fmin` up belongs to one of `n_bands` mel-spaced bands."""
    from workbench.core.visuals import hz_to_mel, mel_to_hz

    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(sample_rate / 2), n_bands + 1))
    idx = np.clip(np.searchsorted(edges, freqs, side="right") - 1, 0, n_bands - 1)
    m = np.zeros((len(freqs), n_bands), np.float32)
    keep = freqs >= fmin
    m[np.flatnonzero(keep), idx[keep]] = 1.0
    return torch.from_numpy(m)


def spectral_losses(
    model: SpectralAutoencoder, x: torch.Tensor, tc: TrainConfig, window: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    cfg = model.cfg
    mag = stft_mag(x, cfg, window)
    z = model.encode_mag(mag)
    lm = model.decode_logmag(z)
    pm = torch.exp(lm)
    eps = tc.loss_floor
    l_log = (torch.log(pm + eps) - torch.log(mag + eps)).abs().mean()
    # Spectral convergence over the whole batch: per-crop ratios explode on near-silent crops.
    l_sc = torch.linalg.vector_norm(mag - pm) / (torch.linalg.vector_norm(mag) + 1e-6)
    e_t = torch.log10((mag**2).sum(-1) + 1e-4)
    e_p = torch.log10((pm**2).sum(-1) + 1e-4)
    loud = (e_t > e_t.amax(dim=1, keepdim=True) - 4.0).float()  # frames within 40 dB of the crop's peak
    l_energy = ((e_p - e_t).abs() * loud).sum() / loud.sum().clamp_min(1.0)
    l_lat = (z**2).mean()
    loss = tc.w_log * l_log + tc.w_sc * l_sc + tc.w_energy * l_energy + tc.w_latent * l_lat
    l_band = torch.zeros(())
    if tc.w_band > 0:
        bands = band_matrix(cfg.sample_rate, cfg.n_fft).to(mag.dtype)
        b_t = torch.log10((mag**2) @ bands + 1e-6)
        b_p = torch.log10((pm**2) @ bands + 1e-6)
        l_band = ((b_p - b_t).abs().mean(-1) * loud).sum() / loud.sum().clamp_min(1.0)
        loss = loss + tc.w_band * l_band
    stats = {
        "loss": float(loss.detach()),
        "log_l1": float(l_log.detach()),
        "sc": float(l_sc.detach()),
        "energy_db": float(l_energy.detach()) * 10.0,
        "latent_rms": float(l_lat.detach().sqrt()),
    }
    if tc.w_band > 0:
        stats["band_db"] = float(l_band.detach()) * 10.0
    return loss, stats


def lr_at(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    frac = min(1.0, (step - tc.warmup) / max(1, tc.steps - tc.warmup))
    return tc.lr_min + 0.5 * (tc.lr - tc.lr_min) * (1 + math.cos(math.pi * frac))


EQ_CLIPS = 64  # training clips the output calibration is fitted on
EQ_LIMIT_DB = 12.0


def output_eq(model: SpectralAutoencoder, clips: Sequence[np.ndarray], max_clips: int = EQ_CLIPS) -> torch.Tensor:
    """Per-bin log-gain [K] that makes the decoder's mean power per frequency bin equal the input's.

    The spectral losses are in the log domain (and spectral convergence), whose optimum under-shoots the
    strong high partials that the model cannot place exactly: measured at step 21500, decoded frames were
    ~13% darker (spectral centroid) than their inputs on every kind of clip. The calibration is the
    closed-form least-squares fit of the output layer's bias for the power per bin, over `max_clips`
    evenly spaced training clips (never the held-out ones), clamped to +-12 dB. With the energy latent
    the decoder rescales each frame to its measured energy afterwards, so only the shape of the gain
    matters (the tilt), not its level.
    """
    cfg = model.cfg
    window = torch.hann_window(cfg.n_fft)
    num = torch.zeros(cfg.n_bins, dtype=torch.float64)
    den = torch.zeros(cfg.n_bins, dtype=torch.float64)
    every = max(1, len(clips) // max(1, max_clips))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for x in list(clips)[::every][:max_clips]:
            n = len(x) // cfg.hop * cfg.hop
            if n < cfg.n_fft:
                continue
            mag = stft_mag(torch.from_numpy(np.ascontiguousarray(x[:n], dtype=np.float32))[None], cfg, window)
            y = torch.exp(model.decode_logmag(model.encode_mag(mag)))
            num += (mag[0].double() ** 2).sum(0)
            den += (y[0].double() ** 2).sum(0)
    model.train(was_training)
    gain = 0.5 * torch.log(num.clamp_min(1e-20) / den.clamp_min(1e-20))
    lim = EQ_LIMIT_DB / 20 * math.log(10)
    return gain.clamp(-lim, lim).float()


def calibrated_weights(
    model: SpectralAutoencoder, clips: Sequence[np.ndarray] | None, strength: float = 1.0,
    weights: dict[str, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The model's weights with `strength` x the output calibration folded into ``dec_out.bias`` (the
    checkpoint keeps the raw weights; the shipped copy gets these), and a summary for config.json.
    `weights`: a detached copy of the model's state already made (it is not modified)."""
    if weights is None:
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if not clips or strength <= 0:
        return weights, None
    g = strength * output_eq(model, clips)
    weights = dict(weights, **{"dec_out.bias": weights["dec_out.bias"] + g})
    db = g * (20 / math.log(10))
    info = {"clips": min(len(clips), EQ_CLIPS), "strength": strength, "db_min": round(float(db.min()), 2), "db_max": round(float(db.max()), 2),
            "note": "per-bin output gain fitted on training clips, folded into dec_out.bias"}
    return weights, info


# Config fields that only change how latents are decoded to audio, not the network: no training involved.
DECODE_SETTINGS = ("peak_floor_db", "phase_lookahead", "phase_iters")


def save_checkpoint(
    state_dir: Path, out_dir: Path, model: SpectralAutoencoder, opt: torch.optim.Optimizer, step: int,
    tc: TrainConfig, extra: dict[str, Any], eq_clips: Sequence[np.ndarray] | None = None,
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {id(p): n for n, p in model.named_parameters()}
    moments: dict[str, torch.Tensor] = {}
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            if "exp_avg" in st:
                moments[f"exp_avg/{names[id(p)]}"] = st["exp_avg"].to(torch.bfloat16)
                moments[f"exp_avg_sq/{names[id(p)]}"] = st["exp_avg_sq"].to(torch.bfloat16)
    atomic_save_safetensors(state_dir / "optimizer.safetensors", moments)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    atomic_save_safetensors(state_dir / "model.safetensors", weights)
    atomic_write_json(state_dir / "training.json", {"step": step, "train": _tc_dict(tc), **extra})
    # The shipped pair (what `Codec('default')` loads) is refreshed at every checkpoint too, with the
    # output calibration folded in.
    shipped, eq = calibrated_weights(model, eq_clips, tc.output_eq, weights)
    atomic_save_safetensors(out_dir / "model.safetensors", shipped)
    cfg_path = out_dir / "config.json"
    meta: dict[str, Any] = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    model_cfg = model.cfg.to_dict()
    # Decode-time settings chosen after training (measured on held-out clips) stay as the folder has them.
    old = meta.get("model")
    old_model: dict[str, Any] = old if isinstance(old, dict) else {}
    for key in DECODE_SETTINGS:
        if key in old_model:
            model_cfg[key] = old_model[key]
    meta.update({"format": "workbench-default-codec", "version": 1, "model": model_cfg, "step": step})
    meta.pop("output_eq", None)
    if eq is not None:
        meta["output_eq"] = eq
    atomic_write_json(cfg_path, meta)


def _tc_dict(tc: TrainConfig) -> dict[str, Any]:
    d = dict(tc.__dict__)
    d["gain_db"] = list(tc.gain_db)
    return d


def load_checkpoint(state_dir: Path, model: SpectralAutoencoder, opt: torch.optim.Optimizer) -> dict[str, Any]:
    from safetensors.torch import load_file

    info = json.loads((state_dir / "training.json").read_text())
    load_weights_upgrading(model, load_file(str(state_dir / "model.safetensors")))
    moments = load_file(str(state_dir / "optimizer.safetensors"))
    step = int(info["step"])
    for n, p in model.named_parameters():
        if f"exp_avg/{n}" in moments and moments[f"exp_avg/{n}"].shape == p.shape:
            opt.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": moments[f"exp_avg/{n}"].float(),
                "exp_avg_sq": moments[f"exp_avg_sq/{n}"].float(),
            }
    return info


def train(
    pool: AudioPool,
    out_dir: Path,
    state_dir: Path,
    tc: TrainConfig,
    minutes: float | None = None,
    resume: bool = False,
    ckpt_minutes: float = 5.0,
    log: Callable[[str], None] = print,
    val: np.ndarray | None = None,
    stop_flag: Callable[[], bool] | None = None,
    until_step: int | None = None,
) -> dict[str, Any]:
    torch.manual_seed(tc.seed)
    upgrades: list[dict[str, Any]] = []
    if resume and (state_dir / "training.json").is_file():
        # The architecture is the checkpoint's, whatever the command line says now, except for the
        # upgrades a checkpoint can take: adding the energy latent channel, and a wider learned latent
        # (both enter the decoder with zero weights; see load_weights_upgrading).
        saved = json.loads((state_dir / "training.json").read_text())
        wanted_energy = bool(tc.model.get("energy_latent", False))
        wanted_latent = int(tc.model.get("latent_dim", 0))
        tc.model = dict(saved["train"].get("model", tc.model))
        upgrades = list(saved.get("upgrades", []))
        if wanted_energy and not tc.model.get("energy_latent", False):
            tc.model["energy_latent"] = True
            upgrades.append({"step": int(saved["step"]), "change": "energy_latent"})
        if wanted_latent > int(tc.model["latent_dim"]):
            if tc.model.get("encoder", "conv") == "filterbank":
                raise DataError("a filterbank checkpoint cannot be widened (--latent-dim): its channels are bands "
                                "laid out for their number; start a new run")
            upgrades.append({"step": int(saved["step"]), "change": f"latent_dim {tc.model['latent_dim']} -> {wanted_latent}"})
            tc.model["latent_dim"] = wanted_latent
    cfg = DefaultCodecConfig(**tc.model)
    if cfg.code_dim > 128:
        raise DataError(f"the latent would have {cfg.code_dim} channels; at most 128")
    model = SpectralAutoencoder(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=(0.9, 0.99), weight_decay=tc.weight_decay)
    if tc.decoder_only:  # no gradient, so AdamW leaves these untouched (not even weight decay)
        for name, p in model.named_parameters():
            if name.startswith("enc_"):
                p.requires_grad_(False)
    step = 0
    history: list[dict[str, Any]] = []
    if resume and (state_dir / "training.json").is_file():
        info = load_checkpoint(state_dir, model, opt)
        step = int(info["step"])
        history = list(info.get("history", []))
        log(f"resumed at step {step}")
    extra_info: dict[str, Any] = {"upgrades": upgrades} if upgrades else {}
    rng = np.random.default_rng(tc.seed * 1_000_003 + step)
    window = torch.hann_window(cfg.n_fft)
    length = int(tc.crop_seconds * cfg.sample_rate) // cfg.hop * cfg.hop
    t0 = last_ckpt = time.monotonic()
    bad = 0
    running: dict[str, float] = {}
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    while step < (tc.steps if until_step is None else min(tc.steps, until_step)):
        if minutes is not None and time.monotonic() - t0 > minutes * 60:
            break
        if stop_flag is not None and stop_flag():
            break
        x = torch.from_numpy(pool.batch(rng, tc.batch_size, length, tc.gain_db))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc)
        loss, stats = spectral_losses(model, x, tc, window)
        if not torch.isfinite(loss):
            bad += 1
            log(f"step {step}: non-finite loss, restoring last good weights ({bad})")
            model.load_state_dict(last_good)
            opt.state.clear()
            if bad >= 5:
                raise DataError("training diverged (NaN/inf loss five times); last checkpoint kept")
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        step += 1
        for k, v in stats.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        if step % 100 == 0:
            last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            rate = step / max(1e-9, time.monotonic() - t0) if not resume else float("nan")
            log(f"step {step} lr {lr_at(step, tc):.2e} " + " ".join(f"{k} {v:.4f}" for k, v in running.items())
                + (f" ({rate:.2f} steps/s)" if rate == rate else ""))
        if time.monotonic() - last_ckpt > ckpt_minutes * 60:
            entry = {"step": step, **{k: round(v, 5) for k, v in running.items()}}
            if val is not None:
                entry.update(validate(model, val, tc, window))
            history.append(entry)
            save_checkpoint(state_dir, out_dir, model, opt, step, tc, {"history": history, **extra_info}, pool.clips)
            log(f"checkpoint at step {step}: {entry}")
            last_ckpt = time.monotonic()
    if not (history and history[-1].get("step") == step):  # else: resumed with nothing left to do
        entry = {"step": step, **{k: round(v, 5) for k, v in running.items()}}
        if val is not None:
            entry.update(validate(model, val, tc, window))
        history.append(entry)
    save_checkpoint(state_dir, out_dir, model, opt, step, tc, {"history": history, **extra_info}, pool.clips)
    return {"step": step, "history": history}


def validate(model: SpectralAutoencoder, val: np.ndarray, tc: TrainConfig, window: torch.Tensor) -> dict[str, float]:
    model.eval()
    with torch.inference_mode():
        _, stats = spectral_losses(model, torch.from_numpy(val), tc, window)
    model.train()
    return {f"val_{k}": round(v, 5) for k, v in stats.items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


__all__ = ["AudioPool", "TrainConfig", "train", "load_audio_dirs"]
