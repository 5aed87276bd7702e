"""Audio corpus -> trained SAE folder, in one call: what `workbench train` and the app's training panel run.

Steps: codec -> activation store (cached) -> trainer (resumable) -> final evaluation on held-out clips
(MSE, FVU, L0, dead fraction, density, audio-domain cost) and per-feature statistics on a training
sample (max activation, firing density) -> SAE folder. Checkpoints go to `state_dir` (default: the
output folder's name + ``.training`` beside it), not into the SAE folder, because the SAE folder is
replaced as a whole when saved.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError
from workbench.core.sae.distributed import DistContext, broadcast_trainer_state, local_batch_size, rank_slices
from workbench.core.sae.io import save_sae
from workbench.core.sae.metrics import audio_cost, density_histogram, evaluate
from workbench.core.sae.store import ProgressCallback, build_store
from workbench.core.sae.trainer import MetricsCallback, TrainConfig, TrainControl, Trainer, read_checkpoint_info


@dataclass
class TrainJob:
    inputs: Sequence[str | os.PathLike[str]]
    output: Path
    codec_id: str = "default"
    latent: str | None = None
    weights: str | None = None
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields except d_in
    codec: Any = None  # an already loaded codec (the app's) to use instead of loading codec_id
    resume: bool = False
    state_dir: Path | None = None
    cache_dir: str | None = None
    val_fraction: float = 0.1
    audio_clips: int = 4
    audio_seconds: float = 4.0
    stats_frames: int = 1_000_000
    val_frames: int = 16384
    # The app asks for its loudness weight whatever the codec: with no loudness channel it is dropped
    # (with a log line) instead of being an error, as it is for `workbench train --loudness-weight`.
    loudness_weight_optional: bool = False

    @property
    def state(self) -> Path:
        return Path(self.state_dir) if self.state_dir else self.output.parent / f"{self.output.name}.training"


def train_sae(
    job: TrainJob,
    *,
    control: TrainControl | None = None,
    on_metrics: MetricsCallback | None = None,
    on_start: Callable[[Trainer], None] | None = None,
    progress: bool | ProgressCallback = True,
    log: Callable[[str], None] | None = None,
    dist: DistContext | None = None,
) -> dict[str, Any]:
    """Train (or resume) and save; returns a summary (step, stopped, metrics, paths).

    With an active `dist` (several processes under torchrun, see distributed.py) every rank calls
    this; rank 0 alone logs, validates, checkpoints and writes the SAE folder, and the other ranks
    return a summary without metrics (``"rank"`` > 0).
    """
    from workbench.core.codecs import get_codec

    ctx = dist if dist is not None else DistContext()
    main = ctx.is_main
    say = (log or (lambda _s: None)) if main else (lambda _s: None)
    control = control or TrainControl()
    if ctx.active:
        local_batch_size(int(job.train.get("batch_size", TrainConfig.batch_size)), ctx)
    codec = job.codec if job.codec is not None else get_codec(job.codec_id, latent=job.latent, weights=job.weights)
    train = dict(job.train)
    if float(train.get("loudness_weight", 1.0)) != 1.0 and train.get("loudness_channel") is None:
        if codec.loudness_channel is None and job.loudness_weight_optional:
            say(f"codec '{codec.id}' ({codec.latent_kind} latents) has no loudness channel: loudness weight not used")
            train["loudness_weight"] = 1.0
        elif codec.loudness_channel is None:
            raise UsageError(f"--loudness-weight: codec '{codec.id}' ({codec.latent_kind} latents) has no loudness channel")
        else:
            train["loudness_channel"] = codec.loudness_channel
    cfg = TrainConfig(d_in=codec.latent_dim, **train)  # checked before the (long) store build
    if ctx.active and not ctx.is_local_main:
        ctx.barrier()  # this node's first rank builds the store; then it is a cache hit here
    store = build_store(job.inputs, codec, cache_dir=job.cache_dir, val_fraction=job.val_fraction,
                        progress=progress if main else False, control=control, warn=say)
    if ctx.active and ctx.is_local_main:
        ctx.barrier()
    n_train, n_val = store.frames("train"), store.frames("val")
    say(f"activation store {store.folder}: {n_train} train + {n_val} validation frames")
    val_split = "val" if n_val else "train"
    val_data = store.sample(job.val_frames, split=val_split, seed=1) if main else None
    extra = {"store_key": store.key, "codec": codec.id, "latent_kind": codec.latent_kind}
    state = job.state
    if ctx.active:
        say(f"data-parallel: {ctx.world_size} processes ({ctx.backend}), "
            f"{cfg.batch_size // ctx.world_size} of the {cfg.batch_size} frames of each batch per process")
    if not job.resume and main and read_checkpoint_info(state) is not None:
        say(f"starting afresh: the checkpoint in {state} will be replaced (use --resume to continue it)")
    trainer = Trainer(cfg, state if main else None, control=control, on_metrics=on_metrics if main else None,
                      val_data=val_data, extra=extra, dist=ctx)
    if job.resume:
        ok = trainer.resume() if main else True
        if ctx.active:  # rank 0 read the checkpoint; everyone else gets its state (or its verdict)
            ok = bool(ctx.broadcast_object(ok))
        if not ok:
            raise UsageError(f"nothing to resume: no checkpoint in {state}")
        if trainer.extra.get("codec") not in (None, codec.id) or trainer.extra.get("latent_kind") not in (
            None, codec.latent_kind
        ):
            raise UsageError(
                f"the checkpoint in {state} was trained on codec '{trainer.extra.get('codec')}' "
                f"({trainer.extra.get('latent_kind')}); resume with the same --codec/--latent"
            )
        if trainer.extra.get("store_key") != store.key:
            say("note: the corpus differs from the one the checkpoint was trained on")
        trainer.extra.update(extra)
        say(f"resumed at step {trainer.step}")
    else:
        trainer.initialize(store.sample(16384, seed=cfg.seed))
    broadcast_trainer_state(trainer)  # every rank starts from rank 0's weights and state
    if on_start is not None and main:
        on_start(trainer)
    batches = store.batches(cfg.batch_size, seed=cfg.seed, skip=trainer.step)
    result = trainer.run(rank_slices(batches, ctx))
    if not main:
        return {"output": str(job.output), "rank": ctx.rank, "step": result.step, "steps": cfg.steps,
                "stopped": result.stopped, "seconds": result.seconds}
    sae = trainer.export_sae()

    # Final figures: validation clips (held out by clip) and a training sample for per-feature stats.
    t0 = time.monotonic()
    val = evaluate(sae, store.iter_frames(val_split, max_frames=max(job.val_frames, 200_000)))
    if n_train > job.stats_frames:
        sample = store.sample(job.stats_frames, seed=7)
        stats = evaluate(sae, [sample[i : i + 16384] for i in range(0, len(sample), 16384)])
    else:
        stats = evaluate(sae, store.iter_frames("train"))
    frames_per_clip = int(job.audio_seconds * codec.frame_rate)
    clips = [c for c in store.clips(val_split) if c["frames"] >= 8][: job.audio_clips]
    audio = audio_cost(codec, sae, [store.clip_latents(c) for c in clips], max_frames=frames_per_clip)
    metrics = {
        "validation": {k: val[k] for k in ("frames", "mse", "fvu", "l0", "dead_fraction")},
        "train_sample": {k: stats[k] for k in ("frames", "mse", "fvu", "l0", "dead_fraction")},
        "density_histogram": density_histogram(stats["log10_density"]),
        "audio": audio,
        "validation_split": val_split,
        "eval_seconds": round(time.monotonic() - t0, 2),
    }
    training = {
        "config": cfg.to_dict(), "step": result.step, "frames": result.frames, "stopped": result.stopped,
        "seconds": round(result.seconds, 2), "input_scale": trainer.scale, "history": result.history,
    }
    provenance = {
        "store_key": store.key, "files": store.meta.get("files"), "seconds_audio": store.meta.get("seconds_audio"),
        "train_frames": n_train, "val_frames": n_val, "inputs": [str(i) for i in job.inputs],
    }
    save_sae(
        sae, job.output, codec_id=codec.id, latent_kind=codec.latent_kind, frame_rate=float(codec.frame_rate),
        codec_info=store.codec_info, max_activation=stats["max_activation"],
        max_activation_prenorm=stats.get("max_activation_prenorm"), log10_density=stats["log10_density"],
        metrics=metrics, training=training, provenance=provenance,
        extra={"k": cfg.k, "l1": cfg.l1},
    )
    return {
        "output": str(job.output), "state_dir": str(state), "step": result.step, "steps": cfg.steps,
        "stopped": result.stopped, "seconds": result.seconds, "metrics": metrics,
        "store": str(store.folder), "frames_per_s": result.frames / max(1e-9, result.seconds),
    }


def summary_line(s: dict[str, Any]) -> str:
    v = s["metrics"]["validation"]
    a = s["metrics"].get("audio") or {}
    parts = [f"{s['output']}: step {s['step']}/{s['steps']}", f"FVU {v['fvu']:.4f}", f"L0 {v['l0']:.1f}",
             f"dead {100 * s['metrics']['train_sample']['dead_fraction']:.1f}%"]
    if a.get("stft_distance") is not None:
        parts.append(f"audio STFT distance {a['stft_distance']:.3f}, SNR {a['snr_db']:.1f} dB")
    return ", ".join(parts)


def warm_up() -> None:
    """Import what a training run needs and take one optimizer step on a dummy parameter.

    Imports hold the interpreter lock: torch.optim pulls in torch._dynamo, sympy and ~870 more modules.
    Done when a run starts, that stalled the app's event loop for up to 0.6 s (benchmarks/bench_gui.py);
    the app calls this in its first load, while the window says "loading".
    """
    import torch

    from workbench.core.data import synth  # noqa: F401  (the synthetic corpus of the training panel)
    from workbench.core.sae import store  # noqa: F401

    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.Adam([p], lr=1e-3, foreach=True)
    p.grad = torch.ones(4)
    opt.step()

