"""The SAE trainer: a plain object driven by any iterator of latent batches.

The GUI runs it in a worker thread and the CLI in the main thread, so everything a caller needs to
steer it is cooperative: `TrainControl` (stop / pause / resume, checked before every step), metric
callbacks (`on_metrics` every `log_every` steps, `on_checkpoint` after each checkpoint) and a result
object. Nothing here prints.

Training recipe (why each piece is there):

- Inputs are scaled by one constant so that the mean squared distance to their mean is ``d_in`` (unit
  variance per dimension on average): learning rates and L1 coefficients then mean the same for every
  codec. The scale is folded into the weights on export (`SAE.folded`), so saved SAEs act on raw latents.
- Optionally the codec's loudness channel (`Codec.loudness_channel`: the default codec's measured
  energy, EnCodec 48 kHz's log gain) is multiplied by `loudness_weight` before that, so its errors
  count weight² times in the MSE: one channel of 65 (or 128) is otherwise too small a part of the loss for a
  sparse SAE to keep, and loudness is lost from the features (256 features, k 8, weight 1: median error
  of the reconstructed channel 3.1 dB; weight 10: 0.28 dB). Folded back on export (`SAE.channel_weighted`:
  the same features; decoder rows are then no longer exactly unit-norm).
- ``b_dec`` starts at the geometric median of a data sample (robust to loud outliers); decoder rows
  start random unit-norm with the encoder tied to them.
- Decoder rows are kept at unit norm: the gradient's component along each row is removed before the
  step and the rows are renormalised after it (otherwise the L1 could be dodged by growing rows).
- Adam; learning rate warms up linearly, stays flat, and decays linearly to zero over the last
  `decay_fraction` of the steps; the L1 coefficient warms up over `l1_warmup_fraction`; gradients are
  clipped to norm `grad_clip`.
- Dead features (no firing in the last `dead_window` frames) feed TopK/BatchTopK's AuxK loss.

Checkpoints (every `checkpoint_every` steps, on stop and at the end) are folders
``ckpt-<step>/`` holding ``model.safetensors`` (weights in the normalised space + firing tracker),
``optimizer.safetensors`` (Adam's moments and step per parameter) and ``trainer.json`` (step, frames,
scale, config, history); ``latest.json`` names the newest complete one and is replaced atomically
after the folder is complete, so a kill at any moment leaves a loadable checkpoint. No pickles.

A NaN or infinite loss stops training at once with `TrainingDivergedError` (one line); the last good
checkpoint is left as it was, because nothing is written after the bad step.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch

from workbench.core.errors import ModelFileError, UsageError, WorkbenchError
from workbench.core.fileio import (
    atomic_save_safetensors,
    atomic_write_json,
    disk_error,
    fsync_dir,
    replace_folder,
)
from workbench.core.sae.metrics import FiringTracker, density_histogram, evaluate, log10_density
from workbench.core.sae.model import SAE, TRAINABLE, geometric_median

if TYPE_CHECKING:
    from workbench.core.sae.distributed import DistContext

DEFAULT_L1 = {"relu": 1.0, "relu-rmsnorm": 0.5}


class TrainingDivergedError(WorkbenchError):
    kind = "training"


@dataclass
class TrainConfig:
    architecture: str = "topk"
    d_in: int = 0
    d_sae: int = 512
    k: int | None = 16
    l1: float | None = None  # relu / relu-rmsnorm; None = DEFAULT_L1
    steps: int = 10_000
    batch_size: int = 4096
    lr: float = 1e-3
    warmup_steps: int | None = None  # None = min(1000, steps // 20)
    decay_fraction: float = 0.2
    l1_warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    aux_coef: float = 1.0 / 32
    dead_window: int = 250_000  # frames
    b_dec_init: str = "geometric_median"  # or "mean", "zeros"
    normalize_input: bool = True
    loudness_channel: int | None = None  # index of the codec's loudness channel (set by the pipeline)
    loudness_weight: float = 1.0  # that channel's weight in the reconstruction loss
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    device: str = "cpu"
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.architecture not in TRAINABLE:
            raise UsageError(f"unknown architecture '{self.architecture}'; use one of {', '.join(TRAINABLE)}")
        if self.d_in < 1:
            raise UsageError(f"d_in must be positive, got {self.d_in}")
        if self.d_sae < 1:
            raise UsageError(f"--d-sae must be positive, got {self.d_sae}")
        if self.architecture in ("topk", "batchtopk"):
            if self.k is None or not (1 <= self.k <= self.d_sae):
                raise UsageError(f"--k must be between 1 and --d-sae ({self.d_sae}), got {self.k}")
        else:
            self.k = None
            if self.l1 is None:
                self.l1 = DEFAULT_L1[self.architecture]
            if not (math.isfinite(self.l1) and self.l1 >= 0):
                raise UsageError(f"--l1 must be a non-negative number, got {self.l1}")
        if self.steps < 1:
            raise UsageError(f"--steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"--lr must be a positive number, got {self.lr}")
        if self.b_dec_init not in ("geometric_median", "mean", "zeros"):
            raise UsageError(f"b_dec_init must be geometric_median, mean or zeros, got {self.b_dec_init}")
        if not (math.isfinite(self.loudness_weight) and self.loudness_weight > 0):
            raise UsageError(f"--loudness-weight must be a positive number, got {self.loudness_weight}")
        if self.loudness_channel is not None and not (0 <= self.loudness_channel < self.d_in):
            raise UsageError(f"loudness channel {self.loudness_channel} is outside the latent (dim {self.d_in})")
        if self.loudness_weight != 1.0 and self.loudness_channel is None:
            raise UsageError("--loudness-weight needs a codec with a loudness channel (the default codec, EnCodec 48 kHz)")
        if self.loudness_weight != 1.0 and self.architecture == "relu-rmsnorm":
            raise UsageError("--loudness-weight does not apply to relu-rmsnorm (its input RMS norm would undo it)")
        self.checkpoint_every = max(1, int(self.checkpoint_every))
        self.log_every = max(1, int(self.log_every))
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    def channel_weights(self) -> np.ndarray | None:
        """Per-channel loss weights [d_in] (None when every channel counts once)."""
        if self.loudness_channel is None or self.loudness_weight == 1.0:
            return None
        w = np.ones(self.d_in, np.float32)
        w[self.loudness_channel] = self.loudness_weight
        return w

    @property
    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else min(1000, self.steps // 20)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)


def resolve_device(name: str | None) -> torch.device:
    """cpu, cuda[:N] or mps; a clear one-line error when the accelerator is not there."""
    n = (name or "cpu").strip().lower()
    if n == "cpu":
        return torch.device("cpu")
    if n == "cuda" or n.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {n}: torch sees no CUDA GPU on this machine; use --device cpu")
        return torch.device(n)
    if n == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError("--device mps: Apple's Metal (MPS) backend is not available here; use --device cpu")
        return torch.device("mps")
    raise UsageError(f"unknown device '{name}'; use cpu, cuda or mps")


class TrainControl:
    """Cooperative stop / pause shared between the thread that trains and the one that asks."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self) -> None:
        while not self._running.wait(0.1):
            if self._stop.is_set():
                return


@dataclass
class TrainResult:
    step: int
    frames: int
    stopped: bool  # by the control (or the data ran out) before cfg.steps
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


MetricsCallback = Callable[[dict[str, Any]], None]


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        state_dir: str | Path | None = None,
        *,
        control: TrainControl | None = None,
        on_metrics: MetricsCallback | None = None,
        on_checkpoint: Callable[[int, Path], None] | None = None,
        val_data: np.ndarray | None = None,
        extra: dict[str, Any] | None = None,
        dist: DistContext | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        # Data-parallel (distributed.py): batches given to `run` are this rank's slices of the global
        # batch; each step's gradients, loss parts and firing counts are all-reduced.
        self.dist = dist if dist is not None and dist.active else None
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.control = control or TrainControl()
        self.on_metrics = on_metrics
        self.on_checkpoint = on_checkpoint
        self.val_data = None if val_data is None else np.asarray(val_data, dtype=np.float32)
        self.extra: dict[str, Any] = dict(extra or {})
        gen = torch.Generator().manual_seed(int(cfg.seed))
        self.sae = SAE(cfg.d_in, cfg.d_sae, cfg.architecture, k=cfg.k)
        self.sae.init_weights(gen)
        self.sae.to(self.device).train()
        self.params = [p for p in self.sae.parameters() if p.requires_grad]
        self.param_names = [n for n, p in self.sae.named_parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, betas=cfg.betas, foreach=True)
        self.tracker = FiringTracker(cfg.d_sae, cfg.dead_window, self.device)
        self.step = 0
        self.frames_seen = 0
        self.scale: float | None = None
        cw = cfg.channel_weights()
        self.channel_w = None if cw is None else torch.from_numpy(cw).to(self.device)
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0
        self.last_checkpoint_step: int | None = None

    # -- schedule ----------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        w = cfg.warmup
        if w > 0 and step < w:
            return cfg.lr * (step + 1) / w
        decay_steps = int(cfg.steps * cfg.decay_fraction)
        start = cfg.steps - decay_steps
        if decay_steps > 0 and step >= start:
            return cfg.lr * max(0.0, (cfg.steps - step) / decay_steps)
        return cfg.lr

    def l1_at(self, step: int) -> float:
        cfg = self.cfg
        if cfg.l1 is None:
            return 0.0
        w = int(cfg.steps * cfg.l1_warmup_fraction)
        return cfg.l1 * min(1.0, (step + 1) / w) if w > 0 else cfg.l1

    # -- data ----------------------------------------------------------------------------------------
    def _to_tensor(self, batch: Any) -> torch.Tensor:
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.asarray(batch, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.cfg.d_in:
            raise UsageError(f"training batch of shape {tuple(x.shape)} does not fit d_in={self.cfg.d_in}")
        return x.to(self.device, torch.float32)

    @torch.no_grad()
    def initialize(self, sample: Any) -> None:
        """Input scale and b_dec from a data sample (raw latents [N, d_in])."""
        x = self._to_tensor(sample)[:16384]
        if self.channel_w is not None:
            x = x * self.channel_w
        if self.cfg.normalize_input:
            var = (x - x.mean(dim=0)).pow(2).sum(dim=1).mean()
            scale = math.sqrt(self.cfg.d_in / float(var)) if float(var) > 1e-20 else 1.0
        else:
            scale = 1.0
        if not math.isfinite(scale) or scale <= 0:
            raise TrainingDivergedError("cannot normalise the training latents (non-finite or zero variance)")
        self.scale = scale
        xs = x * scale
        if self.cfg.b_dec_init == "geometric_median":
            self.sae.b_dec.copy_(geometric_median(xs))
        elif self.cfg.b_dec_init == "mean":
            self.sae.b_dec.copy_(xs.mean(dim=0))

    # -- the loop ------------------------------------------------------------------------------------
    def run(self, batches: Iterable[Any]) -> TrainResult:
        """Train until cfg.steps, the control stops it, or `batches` runs out.

        After `resume()`, `batches` must start where the interrupted run left off (batch number
        `self.step`): the store's `batches(..., skip=trainer.step)` does that.
        """
        cfg = self.cfg
        it = iter(batches)
        stopped = False
        run_t0 = time.monotonic()
        base_elapsed = self.elapsed
        log_t0, log_step = time.monotonic(), self.step
        acc: dict[str, torch.Tensor] = {}
        n_acc = 0
        use_dead = cfg.architecture in ("topk", "batchtopk")
        agreed_stop = False  # data-parallel: a rank stops only when all ranks know (else the rest would hang)
        while self.step < cfg.steps:
            self.control.wait_if_paused()
            if self.control.stopped and (self.dist is None or agreed_stop):
                stopped = True
                break
            try:
                batch = next(it)
            except StopIteration:
                stopped = True
                break
            x = self._to_tensor(batch)
            if self.scale is None:
                self.initialize(x)
            assert self.scale is not None
            x = x * self.scale if self.channel_w is None else x * (self.channel_w * self.scale)
            lr = self.lr_at(self.step)
            for g in self.opt.param_groups:
                g["lr"] = lr
            dead = self.tracker.dead_mask() if use_dead else None
            loss, parts, fired, _ = self.sae.training_loss(x, l1=self.l1_at(self.step), dead_mask=dead,
                                                           aux_coef=cfg.aux_coef)
            if self.dist is None and not torch.isfinite(loss):
                self._diverged(f"the loss became {float(loss.detach())}")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            n_frames = int(x.shape[0])
            if self.dist is not None:
                from workbench.core.sae.distributed import sync_step

                parts, fired, stop_all = sync_step(self, parts, fired, self.control.stopped)
                if not torch.isfinite(parts["loss"]):  # the same verdict on every rank
                    self._diverged(f"the loss became {float(parts['loss'])}")
                n_frames *= self.dist.world_size
                if stop_all:  # finish this step everywhere, then stop together
                    agreed_stop = True
                    self.control.stop()
            self.sae.project_grads_()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.opt.step()
            self.sae.normalize_()
            self.tracker.update(fired, n_frames)
            self.step += 1
            self.frames_seen += n_frames
            for k2, v in parts.items():  # tensors: no per-step sync/conversion
                acc[k2] = acc[k2] + v if k2 in acc else v
            n_acc += 1
            self.elapsed = base_elapsed + (time.monotonic() - run_t0)
            at_ckpt = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
            if self.step % cfg.log_every == 0 or at_ckpt:
                now = time.monotonic()
                m: dict[str, Any] = {k2: float(v) / n_acc for k2, v in acc.items()}
                steps_done = self.step - log_step
                m.update(step=self.step, frames=self.frames_seen, lr=lr,
                         dead_fraction=self.tracker.dead_fraction(),
                         steps_per_s=steps_done / max(1e-9, now - log_t0),
                         frames_per_s=steps_done * cfg.batch_size / max(1e-9, now - log_t0))
                if cfg.architecture == "batchtopk":
                    m["threshold"] = float(self.sae.threshold[0]) / self.scale
                counts, n = self.tracker.take_counts()
                m["density"] = density_histogram(log10_density(counts, n))
                if at_ckpt and self.val_data is not None:
                    m.update(self.validate())
                entry = {k2: (round(v, 6) if isinstance(v, float) else v) for k2, v in m.items()}
                if at_ckpt:
                    self.history.append(entry)
                else:
                    self.history.append({k2: v for k2, v in entry.items() if k2 != "density"})
                acc, n_acc = {}, 0
                log_t0, log_step = now, self.step
                if self.on_metrics is not None:
                    self.on_metrics(entry)
            if self.state_dir is not None and self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                self.checkpoint()
        if self.state_dir is not None and self.step > 0 and self.last_checkpoint_step != self.step:
            self.checkpoint()
        return TrainResult(self.step, self.frames_seen, stopped or self.step < cfg.steps, self.elapsed,
                           list(self.history))

    def _diverged(self, what: str) -> NoReturn:
        where = ""
        if self.state_dir is not None:
            where = (f"; the last good checkpoint (step {self.last_checkpoint_step}) is kept in {self.state_dir}"
                     if self.last_checkpoint_step is not None else "; no checkpoint was written yet")
        raise TrainingDivergedError(
            f"training diverged at step {self.step + 1}: {what}{where}; try a lower --lr or check the data"
        )

    @torch.no_grad()
    def validate(self, max_frames: int = 16384) -> dict[str, float]:
        if self.val_data is None or self.scale is None:
            return {}
        data = self.val_data[:max_frames]
        if self.channel_w is not None:
            data = data * self.channel_w.cpu().numpy()
        r = evaluate(self.sae, [data[i : i + 4096] for i in range(0, len(data), 4096)], scale=self.scale)
        return {"val_fvu": r["fvu"], "val_mse": r["mse"] / (self.scale**2), "val_l0": r["l0"],
                "val_dead_fraction": r["dead_fraction"]}

    def export_sae(self) -> SAE:
        """The trained SAE acting on raw latents (input scale folded in), on the CPU, in eval mode."""
        if self.scale is None:
            raise UsageError("nothing trained yet")
        sae = self.sae.folded(self.scale)
        if self.channel_w is not None:
            sae = sae.channel_weighted(self.channel_w.cpu().numpy())
        return sae.cpu().eval()

    # -- checkpoints ---------------------------------------------------------------------------------
    def checkpoint(self) -> Path:
        """Write ``ckpt-<step>/`` aside, swap it in, then point ``latest.json`` at it (all atomic);
        a full disk or another write failure is one line, and the previous checkpoint stays usable."""
        if self.state_dir is None:
            raise UsageError("no checkpoint folder was given")
        for name, p in self.sae.state_dict().items():
            if not torch.isfinite(p).all():
                self._diverged(f"weight '{name}' is NaN or infinite")
        d = self.state_dir
        name = f"ckpt-{self.step:09d}"
        try:
            folder = self._write_checkpoint(d, name)
        except OSError as exc:
            raise disk_error(exc, f"checkpoint in {d}") from None
        self.last_checkpoint_step = self.step
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.step, folder)
        return folder

    def _write_checkpoint(self, d: Path, name: str) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        for stale in d.glob(".ckpt-*.tmp"):  # left by a run killed mid-checkpoint
            shutil.rmtree(stale, ignore_errors=True)
        folder = d / name
        tmp = d / f".{name}.tmp"
        tmp.mkdir()
        try:
            model = {f"sae/{k}": v for k, v in self.sae.state_dict().items()}
            model.update({f"tracker/{k}": v for k, v in self.tracker.state().items()})
            atomic_save_safetensors(tmp / "model.safetensors", model)
            opt_state = self.opt.state_dict()["state"]
            moments: dict[str, torch.Tensor] = {}
            for i, pname in enumerate(self.param_names):
                st = opt_state.get(i)
                if not st:
                    continue
                moments[f"exp_avg/{pname}"] = st["exp_avg"]
                moments[f"exp_avg_sq/{pname}"] = st["exp_avg_sq"]
                moments[f"step/{pname}"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
            atomic_save_safetensors(tmp / "optimizer.safetensors", moments)
            atomic_write_json(tmp / "trainer.json", {
                "format": "workbench-sae-checkpoint", "version": 1, "step": self.step,
                "frames": self.frames_seen, "scale": self.scale, "elapsed_seconds": round(self.elapsed, 3),
                "config": self.cfg.to_dict(), "history": self.history, "extra": self.extra,
            })
            fsync_dir(tmp)
            replace_folder(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_json(d / "latest.json", {"checkpoint": name, "step": self.step})
        for old in d.glob("ckpt-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return folder

    def resume(self) -> bool:
        """Load the newest checkpoint in state_dir (weights, Adam state, step, tracker, history).

        Returns False when there is none. Architecture and sizes must match this trainer's config;
        the step count may differ (to train longer).
        """
        info = read_checkpoint_info(self.state_dir)
        if info is None:
            return False
        folder, meta = info
        cfg = TrainConfig.from_dict(meta.get("config", {}))
        mine = self.cfg
        for key in ("architecture", "d_in", "d_sae", "k"):
            if getattr(cfg, key) != getattr(mine, key):
                raise UsageError(
                    f"the checkpoint in {self.state_dir} is for {key}={getattr(cfg, key)}, not "
                    f"{getattr(mine, key)}; use the same settings or train without --resume"
                )
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            model = load_file(str(folder / "model.safetensors"))
            moments = load_file(str(folder / "optimizer.safetensors"))
            sd = {k[4:]: v for k, v in model.items() if k.startswith("sae/")}
            self.sae.load_state_dict(sd, strict=True)
            self.tracker.load_state({k[8:]: v for k, v in model.items() if k.startswith("tracker/")})
            state: dict[int, dict[str, Any]] = {}
            for i, pname in enumerate(self.param_names):
                if f"exp_avg/{pname}" in moments:
                    state[i] = {
                        "step": moments[f"step/{pname}"].reshape(()).clone(),
                        "exp_avg": moments[f"exp_avg/{pname}"].to(self.device),
                        "exp_avg_sq": moments[f"exp_avg_sq/{pname}"].to(self.device),
                    }
            groups = self.opt.state_dict()["param_groups"]
            self.opt.load_state_dict({"state": state, "param_groups": groups})
        except (SafetensorError, OSError, KeyError, RuntimeError, ValueError) as exc:
            first = (str(exc).splitlines() or ["unreadable"])[0][:160]
            raise ModelFileError(f"{folder}: damaged checkpoint ({first})") from None
        self.sae.to(self.device)
        self.step = int(meta["step"])
        self.frames_seen = int(meta.get("frames", 0))
        self.scale = float(meta["scale"]) if meta.get("scale") is not None else None
        self.elapsed = float(meta.get("elapsed_seconds", 0.0))
        self.history = list(meta.get("history", []))
        self.extra = {**meta.get("extra", {}), **self.extra}
        self.last_checkpoint_step = self.step
        return True


def read_checkpoint_info(state_dir: str | Path | None) -> tuple[Path, dict[str, Any]] | None:
    """(folder, trainer.json) of the newest complete checkpoint, or None."""
    if state_dir is None:
        return None
    d = Path(state_dir)
    ptr = d / "latest.json"
    if not ptr.is_file():
        return None
    try:
        name = json.loads(ptr.read_text())["checkpoint"]
        folder = d / str(name)
        meta = json.loads((folder / "trainer.json").read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{d}: damaged checkpoint ({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(meta, dict) or "step" not in meta:
        raise ModelFileError(f"{d}: damaged checkpoint (trainer.json has no step)")
    return folder, meta
