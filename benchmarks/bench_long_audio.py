"""Peak memory (and time) of the CLI on a one-hour file with the default codec.

    python benchmarks/bench_long_audio.py [--minutes 60] [--rate 44100] [--channels 2] [--d-sae 1024]
                                          [--threads 2] [--workdir /tmp/wb-long] [--keep]

Writes a synthetic `--minutes` WAV (notes with harmonics, vibrato and noise, 16-bit, `--rate` Hz,
`--channels` channels; 635 MB for an hour of 44.1 kHz stereo) block by block into the work folder, then
runs each command in a fresh process and reports its peak resident memory (``ru_maxrss``) and wall time:

- ``workbench encode FILE -o z.npy``
- ``workbench activations FILE --sae SAE -o f.npy`` (features [T, d_sae] float32, ~1.1 GB at 1024)
- ``workbench steer FILE --sae SAE --edit ... -o steered.wav``
- ``workbench decode z.npy -o decoded.wav``

The codec is the embedded default codec; its weights are copied to the work folder first (so a codec
training run updating ``resources/`` cannot change them mid-benchmark), and the SAE is a random TopK SAE
of `--d-sae` features (memory does not depend on the weights' values). Target (issue 9): peak RSS
<= 1.5 GB for one hour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
t0 = time.monotonic()
from workbench.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "seconds": time.monotonic() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
"""


def write_long_wav(path: Path, minutes: float, rate: int, channels: int) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    total = int(minutes * 60 * rate)
    block = rate * 10
    with sf.SoundFile(str(path), "w", rate, channels, "PCM_16", format="WAV") as f:
        pos = 0
        while pos < total:
            n = min(block, total - pos)
            t = (pos + np.arange(n)) / rate
            midi = 48 + (np.floor(t * 2) * 7) % 36  # a new note every 0.5 s
            f0 = 440.0 * 2 ** ((midi - 69) / 12) * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * t))
            phase = 2 * np.pi * np.cumsum(f0) / rate
            env = np.exp(-4.0 * (t % 0.5))
            x = sum((0.25 / h) * np.sin(h * phase) for h in range(1, 6)) * env + 0.01 * rng.standard_normal(n)
            f.write(np.repeat(x[:, None], channels, axis=1).astype(np.float32))
            pos += n


def run(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    r = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise SystemExit(f"{argv[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    out = json.loads(lines[-1])
    if out["rc"] != 0:
        raise SystemExit(f"{argv[0]} exited {out['rc']}: {r.stderr[-2000:]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--d-sae", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/wb-long")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (the WAV takes a while to write)")
    ap.add_argument("--only", default="encode,activations,steer,decode")
    args = ap.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    res = work / "resources"
    if not (res / "codecs" / "default" / "model.safetensors").is_file():
        shutil.copytree(REPO / "resources" / "codecs" / "default", res / "codecs" / "default", dirs_exist_ok=True)
    env = {**os.environ, "WORKBENCH_RESOURCES": str(res), "OMP_WAIT_POLICY": "PASSIVE",
           "OMP_NUM_THREADS": str(args.threads), "WORKBENCH_CACHE_DIR": str(work / "cache")}
    os.environ.update(env)

    wav = work / f"long-{args.minutes:g}min-{args.rate}-{args.channels}ch.wav"
    if not wav.is_file():
        t0 = time.monotonic()
        write_long_wav(wav, args.minutes, args.rate, args.channels)
        print(f"wrote {wav} ({wav.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t0:.0f} s", flush=True)

    from workbench.core.codecs import get_codec
    from workbench.core.sae_bridge import make_random_sae

    codec = get_codec("default")
    sae = work / f"sae-{codec.latent_dim}x{args.d_sae}"
    if not (sae / "cfg.json").is_file():
        make_random_sae(sae, codec.latent_dim, args.d_sae, k=32, seed=0)
    dur = args.minutes * 60
    threads = ["--threads", str(args.threads)]
    cmds = {
        "encode": ["encode", str(wav), "-o", str(work / "z.npy"), *threads],
        "activations": ["activations", str(wav), "--sae", str(sae), "-o", str(work / "f.npy"), *threads],
        "steer": ["steer", str(wav), "--sae", str(sae), "--edit", "3:scale=0", "--edit",
                  f"5:add=1@{dur * 0.25:g}-{dur * 0.5:g}", "-o", str(work / "steered.wav")],
        "decode": ["decode", str(work / "z.npy"), "-o", str(work / "decoded.wav"), *threads],
    }
    print(f"{args.minutes:g} min of {args.rate} Hz x {args.channels} ch; default codec ({codec.latent_dim} dims, "
          f"{codec.frame_rate:g} frames/s); SAE {args.d_sae} features; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    print(f"{'command':<12} {'peak RSS':>10} {'wall':>9} {'x real time':>12}")
    worst = 0.0
    for name in args.only.split(","):
        if name == "decode" and not (work / "z.npy").is_file():
            run(cmds["encode"], env)
        r = run(cmds[name], env)
        worst = max(worst, r["peak_rss_mb"])
        print(f"{name:<12} {r['peak_rss_mb']:>7.0f} MB {r['seconds']:>7.0f} s {r['seconds'] / dur:>12.3f}", flush=True)
    print(f"peak RSS over all commands: {worst:.0f} MB ({'within' if worst <= 1536 else 'OVER'} the 1.5 GB target)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
