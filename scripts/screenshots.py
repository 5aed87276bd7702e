"""Screenshots of the real app after a short scripted session (run under Xvfb or any display).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots.py -o docs/screenshots

The session: open a clip (the demo clip unless --audio), select the clip's most active features, add
sliders and move them (one limited to a time range), wait for the steered audio, then start a short
training run and capture its live plots. Each view is saved at every --sizes entry, so the layout can
be checked at 1440x900 and 1920x1080. Settings go to a temporary folder, never the user's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="docs/screenshots", help="folder for the PNG files")
    ap.add_argument("--audio", default=None, help="clip to open (default: the demo clip)")
    ap.add_argument("--sae", default=None, help="SAE folder (default: the embedded SAE)")
    ap.add_argument("--sizes", default="1440x900,1920x1080", help="window sizes, comma-separated")
    ap.add_argument("--train-steps", type=int, default=400, help="steps of the training run shown")
    ap.add_argument("--train-input", default=None, help="audio file/folder for the training run (default: the clip)")
    args = ap.parse_args(argv)
    os.environ.setdefault("WORKBENCH_CONFIG_DIR", tempfile.mkdtemp(prefix="wb-shots-config-"))

    from PySide6.QtWidgets import QApplication

    from workbench.app.main import make_app
    from workbench.app.main_window import MainWindow
    from workbench.core.settings import load_settings
    from workbench.core.steering import Edit

    app = make_app()
    assert isinstance(app, QApplication)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",") if s]

    def wait(cond: object, timeout: float, what: str) -> None:
        assert callable(cond)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return
            time.sleep(0.01)
        raise SystemExit(f"error: timed out waiting for {what}")

    def settle(seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def shoot(name: str) -> None:
        for w, h in sizes:
            win.resize(w, h)
            settle(0.6)
            p = out / f"{name}-{w}x{h}.png"
            win.grab().save(str(p))
            print(p)

    win = MainWindow(load_settings(), use_audio_device=False, dialogs=False)
    win.resize(*sizes[0])
    win.show()
    win.start(args.audio, None, args.sae)
    wait(lambda: not win.loading, 600, "the clip to load")
    if win.errors:
        raise SystemExit(f"error: {win.errors[-1]}")
    a = win.ws.analysis
    assert a is not None
    if win.ws.sae is not None and len(win.timeline.heat_features):
        top = [int(i) for i in win.timeline.heat_features[:3]]
        win.ws.set_selected(top)
        win.table.select_features(top)
        win.add_slider(top[0])
        win.set_edit(Edit(top[0], "scale", 0.0))
        if len(top) > 1:
            t0, t1 = 0.25 * a.duration, 0.6 * a.duration
            win.timeline.set_selection((t0, t1))
            win.add_slider(top[1])
            win.set_edit(Edit(top[1], "add", 0.8, round(t0, 2), round(t1, 2)))
        wait(lambda: win.ws.steered_is_current and not win.steerer.busy, 300, "the steered audio")
    win.seek(0.4 * a.duration)
    win.features_dock.raise_()
    shoot("main")

    p = win.training
    win.training_dock.show()
    win.training_dock.raise_()
    src = args.train_input or (str(a.path) if a.path else None)
    if src:
        p.inputs.addItem(src)
    p.synthetic.setValue(0 if src else 4)
    p.d_sae.setValue(128)
    p.k.setValue(8)
    p.batch.setValue(256)
    p.steps.setValue(args.train_steps)
    p.out.setText(tempfile.mkdtemp(prefix="wb-shots-sae-"))
    p.start()
    wait(lambda: len(p.history.get("step", [])) >= 8 or not p.running, 900, "training metrics")
    settle(1.0)
    shoot("training")
    if p.running:
        p.cancel()
        wait(lambda: not p.running, 30, "the training run to stop")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
