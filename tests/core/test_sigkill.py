"""Atomic writes under SIGKILL: a subprocess rewrites an SAE folder, a session, a training checkpoint,
an exported WAV and a block-streamed WAV (the `workbench steer` writer) over and over, each version
tagged with its round number; it is killed at a random moment, and every target must still load and be
exactly one complete version (never a mix, never missing). benchmarks/bench_sigkill.py runs this 20x.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

WRITER = textwrap.dedent('''
    import os, sys, time
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np, torch
    torch.set_num_threads(1)
    from pathlib import Path
    from workbench.core.audio import AudioClip, open_audio_writer, save_audio
    from workbench.core.sae.io import save_sae
    from workbench.core.sae.model import SAE
    from workbench.core.sae.trainer import TrainConfig, Trainer
    from workbench.core.session import Session, save_session
    from workbench.core.steering import Edit

    out = Path(sys.argv[1])
    start = int(sys.argv[2])
    stop = int(sys.argv[3]) if len(sys.argv) > 3 else None  # rounds to write (None: until killed)
    sae = SAE(8, 32, "topk", k=4)
    trainer = Trainer(TrainConfig(d_in=8, d_sae=32, k=4, steps=10**9), out / "state")
    trainer.initialize(np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32))

    def value(r):
        return 1.0 + (r % 997) * 0.001

    def say(what):
        sys.stdout.write(what + "\\n")
        sys.stdout.flush()

    r = start
    t0 = time.monotonic()
    while stop is None or r < start + stop:
        v = value(r)
        say(f"sae {r}")
        with torch.no_grad():
            for p in sae.parameters():
                p.fill_(v)
        save_sae(sae, out / "sae", codec_id="default", latent_kind="continuous", frame_rate=75.0,
                 max_activation=np.full(32, v, np.float32), extra={"round": r})
        say(f"session {r}")
        save_session(out / "s.wbsession.json", Session(audio=str(out / f"a{r}.wav"), codec=f"v{r}",
                                                        edits=[Edit(1, "add", float(r))], selected_features=[r]))
        say(f"checkpoint {r}")
        with torch.no_grad():
            trainer.sae.b_dec.fill_(float(r))
        trainer.step = r + 1
        trainer.checkpoint()
        say(f"export {r}")
        n = 24000 + 97 * ((r % 997) % 50)
        save_audio(out / "export.wav", AudioClip(np.full((n, 1), v / 4, np.float32), 24000))
        say(f"stream {r}")
        with open_audio_writer(out / "stream.wav", 24000, 1) as w:
            for _ in range(4 + (r % 997) % 3):
                w.write(np.full((6000, 1), v / 4, np.float32))
        if r == start:
            say(f"ready {time.monotonic() - t0:.3f}")
        r += 1
''')


def verify(out: Path) -> dict[str, int]:
    """Every target loads and is one complete version; returns the round each one holds."""
    import json

    import soundfile as sf

    from workbench.core.sae.io import load_sae
    from workbench.core.sae.trainer import TrainConfig, Trainer
    from workbench.core.session import load_session

    got: dict[str, int] = {}
    sae = load_sae(out / "sae")
    r = int(json.loads((out / "sae" / "workbench.json").read_text())["round"])
    v = 1.0 + (r % 997) * 0.001
    for name, t in sae.state_dict().items():
        assert np.allclose(t.numpy(), v), f"SAE tensor {name} is not from round {r}"
    assert np.allclose(sae.info.max_activation, v)
    got["sae"] = r

    s = load_session(out / "s.wbsession.json")
    r = int(s.codec[1:])
    assert s.selected_features == [r] and s.edits[0].value == r and s.audio and s.audio.endswith(f"a{r}.wav")
    got["session"] = r

    t = Trainer(TrainConfig(d_in=8, d_sae=32, k=4, steps=10**9), out / "state")
    assert t.resume(), "no loadable checkpoint"
    assert np.allclose(t.sae.b_dec.detach().numpy(), t.step - 1), "checkpoint weights are not from its step"
    got["checkpoint"] = t.step - 1

    # The audio files carry k = round % 997 in both their value and their length.
    y, sr = sf.read(str(out / "export.wav"), always_2d=True)
    k = round((float(y[0, 0]) * 4 - 1.0) / 0.001)
    assert sr == 24000 and len(y) == 24000 + 97 * (k % 50) and np.all(y == y[0, 0]), "export.wav is a mix"
    got["export"] = k

    y, sr = sf.read(str(out / "stream.wav"), always_2d=True)
    k = round((float(y[0, 0]) * 4 - 1.0) / 0.001)
    assert len(y) == 6000 * (4 + k % 3) and np.all(y == y[0, 0]), "stream.wav is a mix"
    got["stream"] = k
    return got


def run_kills(tmp: Path, kills: int, seed: int, log: Any = None) -> dict[str, Any]:
    """Start the writer, kill it at a random moment `kills` times (restarting it each time), verify
    after every kill. Returns where the kills landed and the rounds found."""
    rng = random.Random(seed)
    script = tmp / "writer.py"
    script.write_text(WRITER)
    out = tmp / "targets"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}
    landed: Counter[str] = Counter()
    start_round = 0
    for i in range(kills):
        proc = subprocess.Popen([sys.executable, str(script), str(out), str(start_round)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        lines: list[str] = []
        cycle = None
        deadline = time.monotonic() + 180
        while cycle is None:
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"writer exited early: {err[-2000:]}")
            lines.append(line.strip())
            if line.startswith("ready"):
                cycle = float(line.split()[1])
            assert time.monotonic() < deadline, "writer too slow to start"
        time.sleep(rng.uniform(0.0, 1.5 * max(cycle, 0.05)))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        lines += [ln.strip() for ln in rest.splitlines() if ln.strip()]
        last = lines[-1].split()[0] if lines else "?"
        landed["during " + last] += 1
        got = verify(out)
        start_round = max(got["sae"], got["session"], got["checkpoint"]) + 100  # rounds never seen before
        if log is not None:
            log(f"kill {i + 1}/{kills}: landed during '{lines[-1]}', targets hold rounds {got}")
    return {"landed": dict(landed), "kills": kills}


@pytest.mark.timeout(300)
def test_sigkill_at_random_points_leaves_every_target_loadable(tmp_path: Path) -> None:
    stats = run_kills(tmp_path, kills=2, seed=int(time.time()) % 1000)
    assert stats["kills"] == 2


def test_verify_notices_a_half_written_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The checker is not vacuous: a target cut in half the way a non-atomic writer leaves it fails."""
    import runpy

    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "targets"
    out.mkdir()
    monkeypatch.setattr(sys, "argv", [str(script), str(out), "5", "2"])  # two rounds, in this process
    runpy.run_path(str(script), run_name="__main__")
    assert verify(out) == dict.fromkeys(("sae", "session", "checkpoint", "export", "stream"), 6)
    wav = out / "export.wav"
    wav.write_bytes(wav.read_bytes()[: len(wav.read_bytes()) // 2])
    with pytest.raises(AssertionError):
        verify(out)
