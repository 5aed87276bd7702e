"""Data-parallel SAE training over several processes / GPUs / nodes (PyTorch distributed, `torchrun`).

Launch ``workbench train`` under ``torchrun``; it reads the usual variables (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and joins the group: ``nccl`` with ``--device cuda``
(each process on ``cuda:LOCAL_RANK``), ``gloo`` on the CPU. Without those variables (or with one
process) nothing here is used and training is the single-process path, unchanged.

How the work is split, and why the result matches one process with the same global batch:

- Activation store: the first process of each node (``LOCAL_RANK`` 0) builds it (or finds it in the
  cache); the others wait at a barrier and then open the same cache folder. Nodes that share a
  filesystem share one store (a second builder keeps the first one's folder).
- Batches: every rank walks the *same* shuffled stream of global batches (``--batch-size`` frames,
  the same seed, so resuming with ``skip`` works as before) and trains on its own contiguous slice
  of ``batch_size / world_size`` frames: each frame goes to exactly one rank.
- One all-reduce per step carries the gradients (averaged; the loss is a mean over frames, so the
  average of the ranks' gradients *is* the gradient of the global batch), the loss parts for logging,
  the per-feature firing counts (summed, so the dead-feature tracker and AuxK see the global batch),
  BatchTopK's threshold (averaged) and a stop flag (so a stop request on any rank stops every rank
  after the same step). Gradient clipping, the decoder-row projection and Adam then run on identical
  numbers on every rank, so the weights stay identical without broadcasting them.
- Rank 0 alone validates, writes checkpoints and the SAE folder; on ``--resume`` it reads the
  checkpoint and broadcasts the whole trainer state (weights, Adam moments, tracker, step), so other
  nodes need no access to the checkpoint folder.

Exact for ``topk``, ``relu`` and ``relu-rmsnorm`` (per-frame losses) up to float summation order.
``batchtopk`` picks its top ``k * batch`` activations within each rank's slice, as other
multi-GPU BatchTopK trainers do, so it is close to but not the same as one process.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.core.sae.trainer import Trainer

DEFAULT_TIMEOUT_MIN = 360.0  # building a large store on one rank while the others wait at a barrier


@dataclass
class DistContext:
    """Where this process sits in the group. ``world_size == 1`` means no group at all."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # created here (so `shutdown` ends it), not by a caller that set one up

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        return self.local_rank == 0

    # -- collectives (no-ops without a group) ---------------------------------------------------------
    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast_object(self, obj: Any) -> Any:
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce_sum_(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def shutdown(self) -> None:
        import torch.distributed as dist

        if self.owns_group and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's variables; (0, 1, 0) when not launched by it."""
    def num(name: str, default: int) -> int:
        raw = os.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"${name}={raw!r} is not a number (set by torchrun)") from None

    world = num("WORLD_SIZE", 1)
    rank = num("RANK", 0)
    local = num("LOCAL_RANK", rank)
    if world < 1 or not (0 <= rank < world) or local < 0:
        raise UsageError(f"inconsistent torchrun variables: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return rank, world, local


def init_from_env(device: str = "cpu") -> tuple[DistContext, str]:
    """Join the process group that torchrun set up; returns the context and this rank's device.

    One process (no torchrun) returns an inactive context and `device` unchanged.
    """
    rank, world, local = env_world()
    if world == 1:
        return DistContext(), device
    import torch.distributed as dist

    if not dist.is_available():
        raise UsageError("this torch build has no torch.distributed; train with one process")
    dev = (device or "cpu").strip().lower()
    if dev == "cuda" or dev.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: torch sees no CUDA GPU on this machine; use --device cpu")
        if local >= torch.cuda.device_count():
            raise UsageError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s) on this node; "
                             "use --nproc-per-node at most the number of GPUs")
        dev = f"cuda:{local}"
        torch.cuda.set_device(local)
        backend = "nccl"
    elif dev == "cpu":
        backend = "gloo"
    else:
        raise UsageError(f"--device {device}: data-parallel training runs on cpu (gloo) or cuda (nccl)")
    minutes = float(os.environ.get("WORKBENCH_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=minutes))
    elif dist.get_world_size() != world or dist.get_rank() != rank:
        raise UsageError("a process group is already set up with other ranks than RANK/WORLD_SIZE say")
    else:
        backend = str(dist.get_backend())
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend, owns_group=owns), dev


def local_batch_size(global_batch: int, ctx: DistContext) -> int:
    if global_batch % ctx.world_size:
        raise UsageError(f"--batch-size {global_batch} must be a multiple of the number of processes "
                         f"({ctx.world_size}): each trains on an equal slice of every batch")
    return global_batch // ctx.world_size


def rank_slices(batches: Any, ctx: DistContext) -> Any:
    """This rank's contiguous slice of every global batch."""
    if not ctx.active:
        yield from batches
        return
    for b in batches:
        n = b.shape[0] // ctx.world_size
        yield b[ctx.rank * n : (ctx.rank + 1) * n]


def sync_step(
    trainer: Trainer,
    parts: dict[str, torch.Tensor],
    fired: torch.Tensor,
    stop: bool,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool]:
    """The one all-reduce of a training step (see the module docstring). Gradients are replaced by
    their average in place; returns the averaged loss parts, the summed firing counts and whether any
    rank asked to stop."""
    ctx = trainer.dist
    assert ctx is not None and ctx.active
    w = float(ctx.world_size)
    dev = trainer.device
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in trainer.params]
    keys = sorted(parts)
    has_threshold = trainer.cfg.architecture == "batchtopk"
    pieces = [g.reshape(-1).float() for g in grads]
    pieces.append(torch.stack([parts[k].float().reshape(()) for k in keys]).to(dev))
    pieces.append(fired.to(dev, torch.float32).reshape(-1))
    flags = [1.0 if stop else 0.0]
    if has_threshold:
        flags.append(float(trainer.sae.threshold[0]))
    pieces.append(torch.tensor(flags, dtype=torch.float32, device=dev))
    flat = torch.cat(pieces)
    ctx.all_reduce_sum_(flat)
    i = 0
    for p, g in zip(trainer.params, grads, strict=True):
        n = g.numel()
        avg = flat[i : i + n].view_as(g).div_(w).to(g.dtype)
        if p.grad is None:
            p.grad = avg.clone()
        else:
            p.grad.copy_(avg)
        i += n
    red = flat[i : i + len(keys)] / w
    out_parts = {k: red[j] for j, k in enumerate(keys)}
    i += len(keys)
    fired_sum = flat[i : i + fired.numel()].round().to(torch.int64)
    i += fired.numel()
    stop_any = bool(flat[i] > 0)
    if has_threshold:
        trainer.sae.threshold.fill_(float(flat[i + 1]) / w)
    return out_parts, fired_sum, stop_any


def broadcast_trainer_state(trainer: Trainer) -> None:
    """Make every rank's trainer equal to rank 0's (after initialising or resuming there): weights,
    buffers, Adam state, firing tracker, step, frames, input scale, elapsed time."""
    ctx = trainer.dist
    if ctx is None or not ctx.active:
        return
    payload: dict[str, Any] | None = None
    if ctx.is_main:
        opt = trainer.opt.state_dict()
        payload = {
            "sae": {k: v.detach().cpu() for k, v in trainer.sae.state_dict().items()},
            "tracker": {k: v.cpu() for k, v in trainer.tracker.state().items()},
            "opt_state": {int(i): {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in st.items()}
                          for i, st in opt["state"].items()},
            "step": trainer.step, "frames": trainer.frames_seen, "scale": trainer.scale,
            "elapsed": trainer.elapsed, "extra": trainer.extra,
        }
    payload = ctx.broadcast_object(payload)
    if ctx.is_main:
        return
    assert payload is not None
    dev = trainer.device
    trainer.sae.load_state_dict(payload["sae"], strict=True)
    trainer.sae.to(dev)
    trainer.tracker.load_state({k: v.to(dev) for k, v in payload["tracker"].items()})
    if payload["opt_state"]:
        state = {i: {k: (v.to(dev) if isinstance(v, torch.Tensor) and k != "step" else v) for k, v in st.items()}
                 for i, st in payload["opt_state"].items()}
        trainer.opt.load_state_dict({"state": state, "param_groups": trainer.opt.state_dict()["param_groups"]})
    trainer.step = int(payload["step"])
    trainer.frames_seen = int(payload["frames"])
    trainer.scale = payload["scale"]
    trainer.elapsed = float(payload["elapsed"])
    trainer.extra = dict(payload["extra"])
