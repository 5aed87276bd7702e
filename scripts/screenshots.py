"""Screenshots of the real app after a short scripted session (run under Xvfb or any display).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots.py -o docs/screenshots

The session is what a first-time user does: open a clip (the demo clip unless --audio) with the
default codec and SAE, select a few of the clip's most active labelled features, add sliders and move
them (one limited to a time range), listen to B; click a feature to read its dashboard (labels,
histogram, top activating moments); look at the Probes tab and move a probe-steering slider (timbre
+3 bins by default), which re-plots that property over time for A and B; then start a short training run and capture its live plots.
Four views, each saved at every --sizes entry (the docks placed as a first launch at that window
width places them), so the layout can be checked at 1440x900 and 1920x1080:

    main-WxH.png      timeline, feature table, feature sliders (A/B)
    feature-WxH.png   the table searched by label, the dashboard of one feature
    probes-WxH.png    probe table, probe steering, the property row (A vs B)
    training-WxH.png  the training panel mid-run

PNG files above --max-kb are re-encoded with a 256-colour palette (Pillow, when installed). Settings go
to a temporary folder, never the user's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def shrink_png(path: Path, max_kb: int) -> None:
    """Re-encode a PNG with a 256-colour palette when it is larger than `max_kb` (needs Pillow)."""
    if path.stat().st_size <= max_kb * 1024:
        return
    try:
        from PIL import Image
    except ImportError:
        print(f"note: {path} is {path.stat().st_size // 1024} KB; install Pillow to shrink it", file=sys.stderr)
        return
    with Image.open(path) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    q.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="docs/screenshots", help="folder for the PNG files")
    ap.add_argument("--audio", default=None, help="clip to open (default: the demo clip)")
    ap.add_argument("--sae", default=None, help="SAE folder (default: the embedded SAE)")
    ap.add_argument("--sizes", default="1440x900,1920x1080", help="window sizes, comma-separated")
    ap.add_argument("--train-steps", type=int, default=3000, help="steps of the training run shown")
    ap.add_argument("--train-input", default=None, help="audio file/folder for the training run (default: the clip)")
    ap.add_argument("--probe", default="timbre=3",
                    help="probe-steering slider moved, PROPERTY=STEPS (default timbre=3: 3 bins of 0.3 octave)")
    ap.add_argument("--curve", default="measured", choices=["measured", "probe"],
                    help="how the property row reads A and B (default: measured on the audio)")
    ap.add_argument("--max-kb", type=int, default=400, help="PNG files above this size get a 256-colour palette")
    args = ap.parse_args(argv)
    os.environ.setdefault("WORKBENCH_CONFIG_DIR", tempfile.mkdtemp(prefix="wb-shots-config-"))

    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication, QDockWidget

    from workbench.app.main import make_app
    from workbench.app.main_window import MainWindow
    from workbench.core.settings import load_settings
    from workbench.core.steering import Edit

    app = make_app()
    assert isinstance(app, QApplication)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",") if s]

    def events() -> None:
        app.processEvents()
        # Without a running event loop (app.exec) deleteLater never happens: removed rows would stay drawn.
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete)

    def wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            events()
            if cond():
                return
            time.sleep(0.01)
        raise SystemExit(f"error: timed out waiting for {what}")

    def settle(seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            events()
            time.sleep(0.01)

    win = MainWindow(load_settings(), use_audio_device=False, dialogs=False)
    ins = win.insight

    def idle() -> bool:
        """Steered audio, property curves and (when shown) the dashboard's examples are all current."""
        dash = ins.dashboard
        dash_done = not dash.isVisible() or dash.feature is None or dash.result is not None
        return (win.ws.steered_is_current and not win.steerer.busy and not ins.tracks.busy
                and not dash.worker.busy and dash_done)

    def shoot(name: str, front: list[QDockWidget]) -> None:
        for w, h in sizes:
            win.resize(w, h)
            settle(0.2)
            ins.arrange(w)  # the dock layout a first launch at this width gets
            for d in front:
                d.show()
                d.raise_()
            settle(0.7)
            wait(idle, 300, f"the {name} view to finish computing")
            settle(0.4)
            if (win.width(), win.height()) != (w, h):
                print(f"warning: the window is {win.width()}x{win.height()}, not {w}x{h} (minimum size "
                      f"{win.minimumSizeHint().width()}x{win.minimumSizeHint().height()})", file=sys.stderr)
            p = out / f"{name}-{w}x{h}.png"
            win.grab().save(str(p))
            shrink_png(p, args.max_kb)
            print(f"{p} ({p.stat().st_size // 1024} KB)")

    win.resize(*sizes[0])
    win.show()
    win.start(args.audio, None, args.sae)
    wait(lambda: not win.loading, 600, "the clip to load")
    if win.errors:
        raise SystemExit(f"error: {win.errors[-1]}")
    a, sae = win.ws.analysis, win.ws.sae
    assert a is not None

    # 1. Features: the clip's most active features that have a label, plotted; two sliders moved.
    top: list[int] = []
    if sae is not None and len(win.timeline.heat_features):
        heat = [int(i) for i in win.timeline.heat_features]

        def labelled(i: int) -> bool:
            lab = sae.labels.get(i)
            return lab is not None and lab.label != "unexplained" and (lab.score or 0.0) >= 0.8

        def level(i: int) -> bool:  # a loudness feature: adding to it mostly turns the clip up (and the limiter on)
            lab = sae.labels.get(i)
            return lab is not None and lab.label.split()[0] in ("loud", "quiet", "level", "silence")

        top = ([i for i in heat if labelled(i) and not level(i)] + [i for i in heat if labelled(i) and level(i)]
               + [i for i in heat if not labelled(i)])[:3]
        win.ws.set_selected(top[::-1])  # the last selected one fills the dashboard
        win.add_slider(top[0])
        win.set_edit(Edit(top[0], "scale", 0.0))
        if len(top) > 1:
            t0, t1 = 0.25 * a.duration, 0.6 * a.duration
            win.timeline.set_selection((t0, t1))
            win.add_slider(top[1])
            win.set_edit(Edit(top[1], "add", 0.8, round(t0, 2), round(t1, 2)))
        wait(lambda: win.ws.steered_is_current and not win.steerer.busy, 300, "the steered audio")
    win.seek(0.4 * a.duration)
    shoot("main", [win.features_dock, win.steering_dock])

    # 2. The dashboard of one feature, as after searching the table by label and clicking a row.
    if top:
        f = top[1] if len(top) > 1 else top[0]
        lab = sae.labels.get(f) if sae is not None else None
        if lab is not None and lab.label != "unexplained":
            win.table.search.setText(" ".join(lab.label.split()[:2]))  # e.g. "pitch class"
        win.ws.set_selected([f])
        shoot("feature", [win.features_dock, ins.dashboard_dock])
        win.table.search.clear()

    # 3. Probes: the accuracy table, and one probe-steering slider moved (feature sliders removed, so B
    # is the probe edit alone); the timeline's last row plots that property for A and B.
    if sae is not None:
        win.push_edits((), "remove sliders")
        win.timeline.set_selection(None)
        wait(lambda: ins.info.loaded, 60, "the probes")
        prop, steps = args.probe.split("=")
        ps = ins.probe_steering
        ps.rows[prop].radio.setChecked(True)
        i = ps.source.findData(args.curve)
        if ps.source.model().item(i).isEnabled():  # type: ignore[attr-defined]
            ps.source.setCurrentIndex(i)
            ps.source.activated.emit(i)  # as if the user chose it
        if ins.info.available:
            ps.rows[prop].target.setValue(int(steps))
        wait(lambda: win.ws.steered_is_current and not win.steerer.busy, 300, "the probe-steered audio")
        shoot("probes", [ins.probes_dock, win.steering_dock])

    # 4. Training: a short run on the clip (or the synthetic corpus), captured mid-run.
    p = win.training
    src = args.train_input or (str(a.path) if a.path else None)
    if src:
        p.inputs.addItem(src)
    p.synthetic.setValue(0 if src else 4)
    p.d_sae.setValue(128)
    p.k.setValue(8)
    p.batch.setValue(256)
    p.steps.setValue(args.train_steps)
    p.out.setText(tempfile.mkdtemp(prefix="wb-shots-sae-"))
    win.training_dock.show()
    win.training_dock.raise_()
    p.start()
    wait(lambda: len(p.history.get("step", [])) >= 8 or not p.running, 900, "training metrics")
    settle(1.0)
    shoot("training", [win.training_dock, win.steering_dock])
    if p.running:
        p.cancel()
        wait(lambda: not p.running, 30, "the training run to stop")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
