"""SIGKILL robustness, repeated: the test of tests/core/test_sigkill.py run for many kills.

    python benchmarks/bench_sigkill.py [--kills 20] [--seed 0]

A subprocess rewrites an SAE folder, a session, a training checkpoint, an exported WAV and a
block-streamed WAV in a loop; it is SIGKILLed at a random moment (uniform over 1.5 write cycles after
its first complete round), restarted, and killed again, `--kills` times. After every kill each target
must load and be exactly one complete version (`verify` in the test module). Prints one line per kill
(where it landed, which rounds the targets hold) and a summary; exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("_sigkill", REPO / "tests" / "core" / "test_sigkill.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wb-sigkill-") as d:
        try:
            stats = mod.run_kills(Path(d), args.kills, args.seed, log=lambda s: print(s, flush=True))
        except AssertionError as exc:
            print(f"FAILED after {time.monotonic() - t0:.0f} s: {exc}")
            return 1
    landed = ", ".join(f"{k}: {v}" for k, v in sorted(stats["landed"].items()))
    print(f"{stats['kills']}/{args.kills} kills: every target loadable and complete after each ({landed}); "
          f"{time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
