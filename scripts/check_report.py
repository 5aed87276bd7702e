"""Check a `workbench report` folder: every <audio>/<img> source and link resolves to a file (always), and
the index plus one feature page open in headless Chromium, saved as screenshots (when Chromium is there).

    .venv/bin/python scripts/check_report.py REPORT_DIR [-o SHOTS_DIR]

Exit 1 when a source or link is missing or Chromium fails to render; exit 0 otherwise (a missing Chromium
is reported and skipped: `apt-get install chromium`, or set WORKBENCH_CHROMIUM).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report")
    p.add_argument("-o", "--output", default=None, help="where the screenshots go (default: REPORT_DIR/../shots)")
    args = p.parse_args()

    from workbench.core.analysis.report import audio_sources, find_chromium, missing_sources, screenshot
    from workbench.core.errors import WorkbenchError

    root = Path(args.report)
    if not (root / "index.html").is_file():
        print(f"error: {root}: no index.html", file=sys.stderr)
        return 1
    srcs = audio_sources(root)
    bad = missing_sources(root)
    n_audio = sum(1 for _, s, _ in srcs if not s.endswith(".png"))
    print(f"{len(list(root.rglob('*.html')))} pages, {n_audio} audio players, {len(srcs) - n_audio} images; "
          f"{len(bad)} missing")
    for b in bad[:20]:
        print(f"  missing: {b}")
    if find_chromium() is None:
        print("Chromium not found: screenshots skipped")
        return 1 if bad else 0
    shots = Path(args.output) if args.output else root.parent / f"{root.name}-shots"
    pages = [root / "index.html", *sorted((root / "features").glob("*.html"))[:1]]
    try:
        for page in pages:
            out = screenshot(page, shots / f"{page.stem}.png")
            print(f"screenshot {out}")
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
