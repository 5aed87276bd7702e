"""The one place where the app meets the SAE engine (`workbench.core.sae`).

The app needs four things from an SAE: load a folder, encode latents to features, the decoder rows and
per-feature maxima for steering (via `SteeringContext`), and a training run it can drive from a worker
thread with progress, metrics, pause and cancel. Everything else in the app goes through
`LoadedSAE` and `run_training`, so when the engine's API moves only this module changes.

What it adapts: the engine's `load_sae` (an `SAE` whose folder facts are in ``sae.info``) becomes a
`LoadedSAE` with density, maxima and labels as arrays; relu-rmsnorm SAEs get the ``steer_prenorm`` hook
that `workbench.core.steering` expects, built from the engine's ``encode_prenorm``/``decode_prenorm``;
the engine's `train_sae` pipeline is driven through a `JobControl` (pause and cancel honoured before
every step, progress while caching and training, metrics as partial results).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import UsageError, WorkbenchError
from workbench.core.jobs import JobControl
from workbench.core.steering import SteeringContext

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus"}
ARCHITECTURES = ("topk", "batchtopk", "relu", "relu-rmsnorm")


class SAEMismatchError(WorkbenchError):
    kind = "sae"


@dataclass(frozen=True)
class FeatureLabel:
    label: str
    score: float | None = None


@dataclass
class LoadedSAE:
    folder: Path | None
    model: Any  # has encode_np / decode_np / W_dec (and steer_prenorm for relu-rmsnorm)
    d_in: int
    d_sae: int
    architecture: str
    codec_id: str | None
    latent_kind: str | None
    max_activation: np.ndarray  # [d_sae], 1.0 where unknown
    density: np.ndarray  # [d_sae] firing rate on the training data; NaN where unknown
    labels: dict[int, FeatureLabel] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    prenorm_max: np.ndarray | None = None  # relu-rmsnorm: maxima of the pre-norm code (the edit units)

    @property
    def name(self) -> str:
        return self.folder.name if self.folder is not None else "SAE"

    def encode(self, z: np.ndarray, chunk: int = 16384) -> np.ndarray:
        """Features [T, d_sae] float32 of latents [T, d_in], in chunks to bound peak memory."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.d_in:
            raise SAEMismatchError(f"latents of shape {tuple(z.shape)} do not fit this SAE (d_in {self.d_in})")
        parts = [np.asarray(self.model.encode_np(z[a : a + chunk]), np.float32) for a in range(0, len(z), chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, self.d_sae), np.float32)

    def steering_context(self, frame_rate: float, loudness_channel: int | None = None) -> SteeringContext:
        w = self.model.W_dec
        w = w.detach().cpu().numpy() if hasattr(w, "detach") else np.asarray(w)
        prenorm = self.architecture == "relu-rmsnorm"
        mx = self.prenorm_max if prenorm and self.prenorm_max is not None else self.max_activation
        mx = np.where(np.isfinite(mx) & (mx > 0), mx, 1.0)
        sae = _PrenormSteering(self.model) if prenorm else self.model
        return SteeringContext(sae, np.asarray(w, np.float32), mx.astype(np.float32), float(frame_rate), prenorm,
                               loudness_channel=loudness_channel)

    def check_codec(self, codec_id: str, latent_dim: int) -> None:
        if self.d_in != latent_dim:
            raise SAEMismatchError(
                f"SAE '{self.name}' expects {self.d_in}-dim latents but codec '{codec_id}' has {latent_dim}; "
                "choose a matching codec or SAE"
            )


def read_labels(folder: Path, d_sae: int) -> dict[int, FeatureLabel]:
    """labels.json, tolerant of its shape: {"features": {id: {...}}}, {id: ...} or a list of rows with
    "feature"; each entry a string or {"label"/"concept", "score"/"auroc"}. Unreadable → no labels."""
    p = folder / "labels.json"
    if not p.is_file():
        return {}
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.warning("labels: cannot read %s: %s", p, exc)
        return {}
    items: list[tuple[Any, Any]] = []
    if isinstance(d, dict):
        body = d.get("features", d)
        if isinstance(body, dict):
            items = list(body.items())
        elif isinstance(body, list):
            items = [(r.get("feature", r.get("id")), r) for r in body if isinstance(r, dict)]
    elif isinstance(d, list):
        items = [(r.get("feature", r.get("id")), r) for r in d if isinstance(r, dict)]
    out: dict[int, FeatureLabel] = {}
    for key, v in items:
        try:
            i = int(key)
        except (TypeError, ValueError):
            continue
        if not 0 <= i < d_sae:
            continue
        if isinstance(v, str):
            out[i] = FeatureLabel(v)
        elif isinstance(v, dict):
            best = v
            if isinstance(v.get("labels"), list) and v["labels"] and isinstance(v["labels"][0], dict):
                best = v["labels"][0]
            lab = best.get("label", best.get("concept"))
            score = best.get("score", best.get("auroc"))
            if isinstance(lab, str):
                out[i] = FeatureLabel(lab, float(score) if isinstance(score, int | float) else None)
    return out


class _PrenormSteering:
    """relu-rmsnorm: edits act on the pre-norm code and go back through the norm (steering.py's hook)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.W_dec = model.W_dec
        self.architecture = model.architecture

    def encode_np(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.encode_np(z), np.float32)

    def steer_prenorm(self, z: np.ndarray, edit_fn: Any) -> np.ndarray:
        u = self.model.encode_prenorm_np(z)
        return np.asarray(self.model.decode_prenorm_np(edit_fn(u)) - self.model.decode_prenorm_np(u), np.float32)


def check_sae_folder(folder: str | os.PathLike[str]) -> Path:
    """The SAE folder `folder` names, or the engine's one-line `ModelFileError` saying why it is not one
    (no cfg.json, only pickle files, several SAEs inside); reads the folder listing only."""
    from workbench.core.sae.io import find_sae_folder

    return find_sae_folder(Path(folder).expanduser())


def load_sae(folder: str | os.PathLike[str], latent_dim: int | None = None, codec_id: str | None = None) -> LoadedSAE:
    """An SAE folder (ours, SAELens's or sparsify's) with what the views need; one-line errors."""
    from workbench.core.sae import load_sae as engine_load

    model = engine_load(Path(folder).expanduser(), latent_dim=latent_dim, codec_id=codec_id)
    info = getattr(model, "info", None)
    d_sae = int(model.d_sae)
    mx = getattr(info, "max_activation", None)
    mx_arr = np.ones(d_sae, np.float32) if mx is None else np.asarray(mx, np.float32).reshape(-1)
    if mx_arr.shape != (d_sae,):
        mx_arr = np.ones(d_sae, np.float32)
    ld = getattr(info, "log10_density", None)
    density = np.full(d_sae, np.nan, np.float32) if ld is None else (10.0 ** np.asarray(ld, np.float64)).astype(np.float32)
    f = Path(getattr(info, "folder", None) or folder)
    wb = getattr(info, "workbench", {}) or {}
    return LoadedSAE(
        f, model, int(model.d_in), d_sae, str(model.architecture),
        getattr(info, "codec_id", None), getattr(info, "latent_kind", None),
        mx_arr, density, read_labels(f, d_sae), wb.get("metrics") or {},
        prenorm_max=None if getattr(info, "max_activation_prenorm", None) is None
        else np.asarray(info.max_activation_prenorm, np.float32),  # type: ignore[union-attr]
    )


# -- training ------------------------------------------------------------------------------------
@dataclass
class TrainRequest:
    inputs: list[str]  # audio files and folders
    synthetic_clips: int  # clips of the synthetic corpus to add (0: none)
    codec: str
    latent: str  # "continuous" / "quantized[:KBPS]"
    arch: str
    d_sae: int
    k: int
    l1: float
    steps: int
    batch_size: int
    lr: float
    out_dir: str
    seed: int = 0
    max_files: int = 2000
    loaded_codec: Any = None  # the app's codec object when it is the one asked for (not reloaded)
    loudness_weight: float = 1.0  # of the codec's loudness channel in the loss, if it has one

    def validate(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise UsageError(f"unknown architecture '{self.arch}'; use {', '.join(ARCHITECTURES)}")
        if not self.inputs and self.synthetic_clips <= 0:
            raise UsageError("choose audio files or folders, or the synthetic corpus, to train on")
        for name, v, lo in (("dictionary size", self.d_sae, 2), ("steps", self.steps, 1), ("batch size", self.batch_size, 1)):
            if v < lo:
                raise UsageError(f"{name} must be at least {lo}")
        if self.arch in ("topk", "batchtopk") and not (1 <= self.k <= self.d_sae):
            raise UsageError(f"k must be between 1 and the dictionary size ({self.d_sae})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UsageError("learning rate must be a positive number")
        if not (math.isfinite(self.loudness_weight) and self.loudness_weight > 0):
            raise UsageError("loudness weight must be a positive number")
        if not self.out_dir:
            raise UsageError("choose an output folder for the SAE")


def synthetic_corpus(n: int, seed: int, job: JobControl) -> Path:
    """The first `n` clips of the labeled synthetic corpus, rendered once into the user cache."""
    from workbench.core.data import synth
    from workbench.core.userdirs import cache_dir

    out = cache_dir() / "synthetic" / f"seed{seed}-n{n}"
    info = out / "corpus.json"
    if info.is_file():
        try:
            if json.loads(info.read_text(encoding="utf-8")).get("n") == n:
                return out
        except (OSError, ValueError):
            pass
    job.progress(0.0, f"rendering {n} synthetic clips")
    return Path(synth.generate_corpus(out, n, seed=seed, progress=False))


class _JobTrainControl:
    """The engine's TrainControl driven by a JobControl: its per-step pause check becomes ours, so a
    pause holds the step and a cancel raises `Cancelled` at once (nothing is evaluated or saved)."""

    def __init__(self, job: JobControl) -> None:
        self.job = job

    def stop(self) -> None:
        self.job.cancel()

    def pause(self) -> None:
        self.job.pause()

    def resume(self) -> None:
        self.job.resume()

    @property
    def stopped(self) -> bool:
        return self.job.cancelled

    @property
    def paused(self) -> bool:
        return self.job.paused

    def wait_if_paused(self) -> None:
        self.job.check()


def run_training(req: TrainRequest, job: JobControl) -> Path:
    """Cache latents, train, evaluate and save the SAE folder (the engine's `train_sae`); returns the
    folder. Progress and metrics go to `job`; pause and cancel are honoured before every step."""
    from workbench.core.jobs import Cancelled
    from workbench.core.sae.pipeline import TrainJob, train_sae
    from workbench.core.sae.store import StoreBuildCancelled
    from workbench.core.userdirs import cache_dir

    req.validate()
    share = 0.2  # of the progress bar for caching (the rest is training)
    inputs: list[str] = list(req.inputs)
    for s in inputs:
        if not Path(s).expanduser().exists():
            raise UsageError(f"training input {s} does not exist")
    if req.synthetic_clips > 0:
        inputs.append(str(synthetic_corpus(req.synthetic_clips, req.seed, job)))
    topk = req.arch in ("topk", "batchtopk")
    train = {
        "architecture": req.arch, "d_sae": req.d_sae, "k": req.k if topk else None,
        "l1": None if topk else req.l1, "steps": req.steps, "batch_size": req.batch_size, "lr": req.lr,
        "seed": req.seed, "log_every": max(1, min(50, req.steps // 100)),
        "checkpoint_every": max(1000, req.steps // 10), "loudness_weight": req.loudness_weight,
    }
    out = Path(req.out_dir).expanduser()

    def on_cache(i: int, n: int, name: str) -> None:
        job.progress(share * i / max(1, n), f"caching latents {i}/{n}: {Path(name).name}")

    def on_metrics(m: dict[str, Any]) -> None:
        job.partial(m)
        step = int(m.get("step", 0))
        job.progress(share + (1 - share) * 0.97 * step / req.steps, f"training step {step}/{req.steps}")

    if req.loaded_codec is None:
        job.progress(0.0, f"loading codec {req.codec}")
    tj = TrainJob(inputs=inputs, output=out, codec_id=req.codec, codec=req.loaded_codec,
                  latent=None if req.latent in ("", "continuous") else req.latent,
                  train=train, cache_dir=str(cache_dir()), audio_clips=2, audio_seconds=2.0,
                  loudness_weight_optional=True)
    try:
        train_sae(tj, control=_JobTrainControl(job), on_metrics=on_metrics,  # type: ignore[arg-type]
                  progress=on_cache)
    except StoreBuildCancelled:
        raise Cancelled() from None
    job.progress(1.0, "saved")
    return out


def make_random_sae(folder: str | os.PathLike[str], d_in: int, d_sae: int, k: int = 4, seed: int = 0,
                    codec_id: str = "default", frame_rate: float = 75.0) -> Path:
    """A random TopK SAE folder (tests, demos without a trained SAE): unit decoder rows, tied encoder."""
    import torch

    from workbench.core.sae import SAE, save_sae

    sae = SAE(d_in, d_sae, "topk", k=k)
    sae.init_weights(torch.Generator().manual_seed(seed))
    return save_sae(sae, Path(folder), codec_id=codec_id, latent_kind="continuous", frame_rate=frame_rate,
                    max_activation=np.ones(d_sae, np.float32),
                    log10_density=np.full(d_sae, -2.0, np.float32))
