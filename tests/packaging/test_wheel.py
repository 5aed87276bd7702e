"""The wheel and sdist: built from this tree, installed into a fresh venv, run from outside the tree.

`python -m build` makes the sdist and then the wheel *from the sdist*, so a resource missing from
either shows up here. The fresh venv gets only our wheel (``pip install --no-deps``); the heavy
dependencies (torch, PySide6, ...) come from the interpreter running the tests through a ``.pth``
line added *after* the install. A bare path line in a ``.pth`` file does not process that folder's
own ``.pth`` files, so the development checkout's editable install stays invisible: ``workbench``
resolves to the wheel's copy, and the commands run in a temporary folder with no
``WORKBENCH_RESOURCES``, so the codec weights (and default SAE) can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import time
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _resource_files() -> set[str]:
    root = REPO / "resources"
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts)
    }


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"{time.monotonic() - t0:6.1f} s  {' '.join(cmd)[-90:]}")
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-3000:]}"
    return r


def test_wheel_installs_and_runs_from_outside_the_tree(tmp_path: Path) -> None:
    t0 = time.monotonic()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "WORKBENCH_RESOURCES", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="2", OMP_WAIT_POLICY="PASSIVE", WORKBENCH_CACHE=str(tmp_path / "cache"),
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
               XDG_DATA_HOME=str(tmp_path / "xdg-data"), XDG_STATE_HOME=str(tmp_path / "xdg-state"),
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")

    # 1. sdist + wheel (the wheel is built from the unpacked sdist).
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)], cwd=tmp_path, env=env)
    wheels = list(dist.glob("*.whl"))
    sdists = list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    wanted = _resource_files()
    assert "codecs/default/model.safetensors" in wanted
    with zipfile.ZipFile(wheels[0]) as z:
        in_wheel = {n[len("workbench/_resources/"):] for n in z.namelist() if n.startswith("workbench/_resources/")}
        names = z.namelist()
    assert wanted <= in_wheel, f"missing from the wheel: {sorted(wanted - in_wheel)}"
    assert "workbench/py.typed" in names and "workbench/cli.py" in names
    assert not any(n.startswith(("tests/", "training/", "runs/")) for n in names)
    with tarfile.open(sdists[0]) as t:
        top = t.getnames()[0].split("/")[0]
        in_sdist = {n[len(top) + len("/resources/"):] for n in t.getnames() if n.startswith(f"{top}/resources/")}
    assert wanted <= in_sdist, f"missing from the sdist: {sorted(wanted - in_sdist)}"

    # 2. A fresh venv with nothing but the wheel; then the host's packages behind it.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    py = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheels[0])],
         cwd=tmp_path, env=env)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    host_site = sysconfig.get_paths()["purelib"]
    (site / "zz_host_packages.pth").write_text(host_site + "\n")
    workbench = env_dir / "bin" / "workbench"
    assert workbench.is_file()

    work = tmp_path / "outside"  # not the source tree, not its parent
    work.mkdir()
    where = _run([str(py), "-c", "import workbench, workbench.core.resources as r; "
                  "print(workbench.__file__); print(r.resources_dir()); print(r.default_sae_dir())"],
                 cwd=work, env=env).stdout.split("\n")
    pkg_file, res_dir, sae_dir = Path(where[0]), Path(where[1]), Path(where[2])
    assert pkg_file.is_relative_to(site), pkg_file
    assert res_dir == site / "workbench" / "_resources"
    assert (res_dir / "codecs" / "default" / "model.safetensors").is_file()

    # 3. `workbench codecs`: the embedded default codec's weights are found.
    rows = json.loads(_run([str(workbench), "codecs", "--json"], cwd=work, env=env).stdout)
    default = next(r for r in rows if r["id"] == "default")
    assert default["weights_present"], default

    # 4. `workbench steer` with the embedded defaults: the shipped SAE, or (until resources/saes/default
    #    exists) a tiny random one saved here for the embedded codec's latent size.
    sr = 24000
    t = np.arange(int(1.5 * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t * 20) + 0.1 * np.sin(2 * np.pi * 661 * t)
    sf.write(str(work / "in.wav"), y.astype(np.float32), sr)
    if (sae_dir / "cfg.json").is_file():
        assert sae_dir.is_relative_to(site)
        sae = sae_dir
    else:
        import torch

        from workbench.core.sae.io import save_sae
        from workbench.core.sae.model import SAE

        tiny = SAE(int(default["latent_dim"]), 32, "topk", k=4)
        tiny.init_weights(torch.Generator().manual_seed(0))
        sae = save_sae(tiny, work / "sae", codec_id="default", latent_kind="continuous",
                       frame_rate=float(default["frame_rate"]), max_activation=np.ones(32, np.float32))
    r = _run([str(workbench), "steer", "in.wav", "--sae", str(sae), "--edit", "0:scale=0", "--edit", "1:add=0.5",
              "-o", "out.wav"], cwd=work, env=env)
    assert "2 edit(s) via default" in r.stdout, r.stdout
    out_audio, out_sr = sf.read(str(work / "out.wav"))
    assert out_sr == sr and abs(len(out_audio) - len(y)) <= 1 and np.isfinite(out_audio).all()
    assert float(np.abs(out_audio).max()) > 1e-3
    print(f"wheel test: {time.monotonic() - t0:.1f} s")
