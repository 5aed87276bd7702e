"""Data-parallel training (torchrun, gloo, 2 processes on the CPU) against one process.

Same corpus, same seed, same global batch: the SAE trained by 2 ranks must equal the one trained by a
single process up to float summation order (measured: max |diff| ~1e-7 on weights of order 1 after
30 steps; the bound asserted is TOL). Covered in one torchrun launch (process start-up and torch
imports dominate the cost): a fresh run, and a run resumed from a checkpoint (rank 0 reads it and
broadcasts weights, Adam moments and tracker). The single-process references run in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from workbench.cli import main
from workbench.core.errors import UsageError
from workbench.core.sae.distributed import DistContext, env_world, init_from_env, local_batch_size, rank_slices

TOL = 1e-5
COMMON = ["--d-sae", "64", "--k", "4", "--batch-size", "64", "--seed", "3", "--threads", "1", "--val-fraction", "0.2"]

WORKER = textwrap.dedent("""
    import json, sys
    import torch.distributed as dist
    from workbench.cli import main
    dist.init_process_group("gloo")  # one group for all three runs (the CLI leaves a caller's group alone)
    codes = [main(json.loads(a)) for a in sys.argv[1:]]
    dist.barrier()
    dist.destroy_process_group()
    sys.exit(max(codes))
""")


def _runs(audio: Path, out: Path, cache: Path) -> list[list[str]]:
    base = ["train", str(audio), *COMMON, "--cache-dir", str(cache)]
    return [
        [*base, "--steps", "30", "--checkpoint-every", "10", "-o", str(out / "fresh")],
        [*base, "--steps", "12", "--checkpoint-every", "5", "-o", str(out / "resumed")],
        [*base, "--steps", "24", "--checkpoint-every", "5", "--resume", "-o", str(out / "resumed")],
    ]


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a / "sae_weights.safetensors")), load_file(str(b / "sae_weights.safetensors"))
    assert wa.keys() == wb.keys()
    return max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path: Path, tiny_resources: Path, audio_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_RESOURCES", str(tiny_resources))
    cache = tmp_path / "cache"
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    single.mkdir()
    ddp.mkdir()
    for args in _runs(audio_dir, single, cache):
        assert main(args) == 0

    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    import json

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                               "MASTER_PORT")}
    env.update(WORKBENCH_RESOURCES=str(tiny_resources), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(worker),
           *[json.dumps(a) for a in _runs(audio_dir, ddp, cache)]]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    # Rank 0 alone reports (one summary line per run) and writes.
    assert sum(line.startswith(str(ddp)) for line in r.stdout.splitlines()) == 3, r.stdout
    assert "data-parallel: 2 processes (gloo), 32 of the 64 frames" in r.stderr

    for name in ("fresh", "resumed"):
        diff = _max_diff(single / name, ddp / name)
        print(f"{name}: max |W_single - W_ddp| = {diff:.3g}")
        assert diff < TOL, f"{name}: 2 ranks differ from 1 process by {diff}"
        wj_s = json.loads((single / name / "workbench.json").read_text())
        wj_d = json.loads((ddp / name / "workbench.json").read_text())
        assert wj_d["training"]["frames"] == wj_s["training"]["frames"] == 64 * wj_s["training"]["step"]
        assert wj_d["training"]["config"]["batch_size"] == 64
        ckpts = sorted(p.name for p in (ddp / f"{name}.training").iterdir())
        assert ckpts == [f"ckpt-{wj_s['training']['step']:09d}", "latest.json"], ckpts
    # The second "resumed" run continued the first one (12 -> 24 steps) rather than starting over.
    assert json.loads((ddp / "resumed" / "workbench.json").read_text())["training"]["step"] == 24


def test_env_world_and_single_process_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert env_world() == (0, 1, 0)
    ctx, dev = init_from_env("cpu")
    assert not ctx.active and ctx.is_main and dev == "cpu"
    ctx.shutdown()  # nothing to end
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert env_world() == (2, 4, 0)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(UsageError, match="inconsistent"):
        env_world()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(UsageError, match="not a number"):
        env_world()


def test_batch_split() -> None:
    ctx = DistContext(rank=1, world_size=2)
    assert local_batch_size(64, ctx) == 32
    with pytest.raises(UsageError, match="multiple of the number of processes"):
        local_batch_size(63, ctx)
    batches = [np.arange(8 * 3, dtype=np.float32).reshape(8, 3) + 100 * i for i in range(2)]
    got = list(rank_slices(iter(batches), ctx))
    assert [g.tolist() for g in got] == [b[4:].tolist() for b in batches]
    both = [np.concatenate([a, b]) for a, b in zip(rank_slices(iter(batches), DistContext(0, 2)), got, strict=True)]
    assert all((x == b).all() for x, b in zip(both, batches, strict=True))  # every frame to exactly one rank
    assert [b.tolist() for b in rank_slices(iter(batches), DistContext())] == [b.tolist() for b in batches]
