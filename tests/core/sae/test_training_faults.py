"""`workbench train` under faults: killed mid-run (SIGKILL) then ``--resume``; a NaN loss; a full disk
(a real tiny tmpfs where the test may mount one, and a simulated ENOSPC everywhere). Each gives one
line, never a partial SAE folder, and the last good checkpoint stays usable."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.cli import main
from workbench.core import fileio
from workbench.core.sae.io import load_sae
from workbench.core.sae.model import SAE

Cap = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tiny_resources: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_RESOURCES", str(tiny_resources))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))


def train_args(audio_dir: Path, out: Path, steps: int, *extra: Any, cache: Path | None = None) -> list[str]:
    cache = cache or out.parent / "cache"
    return [str(a) for a in ("train", audio_dir, "--arch", "topk", "--d-sae", 32, "--k", 4, "--steps", steps,
                             "--batch-size", 64, "--checkpoint-every", 10, "--cache-dir", cache,
                             "--threads", 1, "-o", out, *extra)]


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or ".old-" in p.name or p.name.endswith(".part"))


@pytest.mark.timeout(300)
def test_sigkill_mid_run_then_resume_finishes_from_the_last_checkpoint(tmp_path: Path, audio_dir: Path,
                                                                       capsys: Cap) -> None:
    out = tmp_path / "sae"
    state = tmp_path / "sae.training"
    # Far more steps than it will get to do: the run is killed once two checkpoints exist.
    proc = subprocess.Popen([sys.executable, "-m", "workbench", *train_args(audio_dir, out, 10**6)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            latest = state / "latest.json"
            with contextlib.suppress(OSError, ValueError):
                if json.loads(latest.read_text())["step"] >= 20:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert not out.exists(), "a killed run must not leave an SAE folder"
    step = json.loads((state / "latest.json").read_text())["step"]
    assert step >= 20 and step % 10 == 0
    total = step + 15
    rc = main(train_args(audio_dir, out, total, "--resume"))
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert f"resumed at step {step}" in err
    wb = json.loads((out / "workbench.json").read_text())
    assert wb["training"]["step"] == total
    assert load_sae(out, latent_dim=16).d_sae == 32
    assert leftovers(tmp_path) == [] and leftovers(state) == []


def test_nan_loss_is_one_line_keeps_the_last_good_checkpoint_and_resumes(
        tmp_path: Path, audio_dir: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sae"
    real = SAE.training_loss
    calls = {"n": 0}

    def poisoned(self: SAE, x: torch.Tensor, *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        loss, parts, fired, extra = real(self, x, *a, **k)
        if calls["n"] == 25:
            loss = loss * float("nan")
        return loss, parts, fired, extra

    monkeypatch.setattr(SAE, "training_loss", poisoned)
    rc = main(train_args(audio_dir, out, 60))
    _, err = capsys.readouterr()
    line = one_line_error(rc, err)
    assert "diverged at step 25" in line and "step 20" in line and "--lr" in line
    assert not out.exists() and leftovers(tmp_path) == []
    state = tmp_path / "sae.training"
    assert json.loads((state / "latest.json").read_text())["step"] == 20
    monkeypatch.setattr(SAE, "training_loss", real)
    rc = main(train_args(audio_dir, out, 40, "--resume"))
    _, err = capsys.readouterr()
    assert rc == 0 and "resumed at step 20" in err, err
    assert json.loads((out / "workbench.json").read_text())["training"]["step"] == 40


def test_disk_full_while_saving_the_sae_is_one_line_and_leaves_no_partial_folder(
        tmp_path: Path, audio_dir: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated ENOSPC on every file written into the SAE folder being built (portable)."""
    out = tmp_path / "sae"
    real = fileio.atomic_write_bytes

    def full(path: Any, data: bytes) -> None:
        if Path(path).parent.name.startswith(".sae.tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(fileio, "atomic_write_bytes", full)
    rc = main(train_args(audio_dir, out, 20))
    _, err = capsys.readouterr()
    line = one_line_error(rc, err)
    assert "No space left on device" in line and str(out) in line
    assert not out.exists() and leftovers(tmp_path) == []
    # The checkpoint of the finished run is intact: with space again, --resume only saves.
    monkeypatch.setattr(fileio, "atomic_write_bytes", real)
    rc = main(train_args(audio_dir, out, 20, "--resume"))
    _, err = capsys.readouterr()
    assert rc == 0 and "resumed at step 20" in err, err
    assert load_sae(out).d_sae == 32


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs Linux and root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave: int) -> None:
    """Fill `disk` until only about `leave` bytes are free."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


@pytest.mark.timeout(120)
def test_real_full_disk_for_checkpoints_and_for_the_sae_folder(tmp_path: Path, audio_dir: Path, capsys: Cap) -> None:
    """A 1 MB tmpfs, filled: first the activation store has no room, then the checkpoints, then
    (checkpoints elsewhere) the SAE folder. One line each; nothing partial on the full disk; the run resumes once there is room."""
    with tiny_tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "sae"
        fill(disk, 2048)
        # The activation store (the corpus' latents) does not fit either.
        rc = main(train_args(audio_dir, out, 20, cache=disk / "cache"))
        _, err = capsys.readouterr()
        line = one_line_error(rc, err)
        assert "activation store" in line and "No space left on device" in line, line
        assert leftovers(disk / "cache" / "activations") == [] and not out.exists()
        shutil.rmtree(disk / "cache")
        cache = tmp_path / "cache"  # from here on the activation store is on the roomy disk
        rc = main(train_args(audio_dir, out, 20, cache=cache))
        _, err = capsys.readouterr()
        line = one_line_error(rc, err)
        assert re.search("No space left on device|File too large", line), line
        assert "checkpoint" in line
        assert sorted(p.name for p in disk.iterdir()) in (["filler"], ["filler", "sae.training"])
        if (disk / "sae.training").exists():
            assert leftovers(disk / "sae.training") == [] and not (disk / "sae.training" / "latest.json").exists()
        # Checkpoints on the roomy disk, the SAE folder on the full one (~4 kB free: less than the folder).
        state = tmp_path / "state"
        rc = main(train_args(audio_dir, out, 20, "--state", state, cache=cache))
        _, err = capsys.readouterr()
        line = one_line_error(rc, err)
        assert "No space left on device" in line and "sae" in line
        assert not out.exists() and leftovers(disk) == []
        (disk / "filler").unlink()
        rc = main(train_args(audio_dir, out, 20, "--state", state, "--resume", cache=cache))
        _, err = capsys.readouterr()
        assert rc == 0 and "resumed at step 20" in err, err
        assert load_sae(out).d_sae == 32 and leftovers(disk) == []
