"""Feature understanding in the window (issue 7): the selected feature's dashboard (labels, histogram, top
moments played through the audition engine, the feature's own sound), the probe accuracy table from
probes.json, the property-over-time row (A and B) that follows probe sliders, undo of probe edits,
sessions, and the empty states of an SAE without probes or labels."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.app.main_window import MainWindow
from workbench.app.probe_panel import DEFAULT_ALPHA
from workbench.core.audio import AudioClip
from workbench.core.steering import Edit, ProbeEdit

LATENT_DIM, D_SAE = 16, 32  # the tiny codec and SAE of conftest.py


def tones(freqs: list[float], seconds: float, gain: float, seed: int, sr: int = 24000) -> AudioClip:
    rng = np.random.default_rng(seed)
    seg = int(seconds * sr) // len(freqs)
    t = np.arange(seg) / sr
    y = np.concatenate([sum(0.3 / h * np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6)) for h in range(1, 5))
                        * np.minimum(1.0, t / 0.01) for f in freqs])
    return AudioClip((gain * y).astype(np.float32)[:, None], sr)


@pytest.fixture(scope="session")
def probed_sae(tiny_resources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SAE folder with probes (fit on a few tones through the core) and labels, and the clips they
    name: built once through the same functions `workbench probe` / `workbench label` use."""
    from workbench.core.analysis.corpus import collect_frames
    from workbench.core.analysis.labels import label_features, save_labels
    from workbench.core.analysis.probes import fit_probes, save_probes
    from workbench.core.audio import save_audio
    from workbench.core.codecs import get_codec
    from workbench.core.sae import load_sae as engine_load
    from workbench.core.sae_bridge import make_random_sae

    root = tmp_path_factory.mktemp("probed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_RESOURCES", str(tiny_resources))
        mp.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
        codec = get_codec("default")
        folder = make_random_sae(root / "sae", LATENT_DIM, D_SAE, k=4, seed=5)
        sae = engine_load(folder)
        clips = []
        (root / "clips").mkdir()
        for i, (freqs, gain) in enumerate([([110, 220, 440], 1.0), ([330, 165, 660], 0.3), ([247, 494, 131], 0.6),
                                           ([196, 392, 98], 0.15), ([523, 262, 147], 0.8), ([175, 349, 698], 0.4)]):
            c = tones(freqs, 1.2, gain, seed=i)
            p = save_audio(root / "clips" / f"tones{i}.wav", c)
            clips.append((str(p), c.samples[:, 0], None))
        frames = collect_frames(codec, sae, clips, cache=False)
        ps = fit_probes(frames, sae, test_fraction=0.34, max_iter=40)
        save_probes(ps, folder, extra={"codec": codec.id, "inputs": [str(root / "clips")]})
        res = label_features(frames, test_fraction=0.34, min_positives=3, control=False)
        save_labels(res, folder, extra={"codec": codec.id, "inputs": [str(root / "clips")],
                                        "clip_paths": frames.clip_paths})
    return folder


def wait_steered(qtbot: Any, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: win.ws.steered_is_current and not win.steerer.busy, timeout=15_000)


def open_sae(qtbot: Any, win: MainWindow, folder: Path) -> None:
    with qtbot.waitSignal(win.loadFinished, timeout=30_000) as sig:
        win.open_sae(str(folder))
    assert sig.args == [True]
    qtbot.waitUntil(lambda: win.insight.info.loaded, timeout=10_000)
    wait_steered(qtbot, win)


def wait_tracks(qtbot: Any, win: MainWindow) -> None:
    tr = win.insight.tracks
    qtbot.waitUntil(lambda: not tr.busy and tr.last is not None, timeout=30_000)


@pytest.fixture()
def probed_window(window: MainWindow, qtbot: Any, probed_sae: Path) -> Iterator[MainWindow]:
    open_sae(qtbot, window, probed_sae)
    assert window.insight.info.available, window.insight.info.error
    yield window


def busiest_feature(win: MainWindow) -> int:
    a = win.ws.analysis
    assert a is not None and a.summary is not None
    return int(np.argmax(a.summary.clip_mean))


def test_dashboard_fills_for_a_selected_feature_and_plays_an_example(probed_window: MainWindow, qtbot: Any,
                                                                     probed_sae: Path) -> None:
    win = probed_window
    ins = win.insight
    dash = ins.dashboard
    ins.dashboard_dock.show()
    ins.dashboard_dock.raise_()
    feat = busiest_feature(win)
    win.table.select_features([feat])
    win.ws.set_selected([feat])
    qtbot.waitUntil(lambda: dash.result is not None and dash.result.feature == feat, timeout=30_000)
    res = dash.result
    # Labels and scores from labels.json.
    doc = json.loads((probed_sae / "labels.json").read_text())["features"][str(feat)]
    assert f"#{feat}" in dash.title.text() and doc["label"] in dash.title.text()
    if isinstance(doc.get("score"), float):
        assert f"AUROC {doc['score']:.2f}" in dash.title.text()
    assert "density" in dash.facts.text() and "max activation" in dash.facts.text()
    # Examples come from the clips labels.json names (not the current clip).
    assert "named in labels.json" in res.source and res.clips == 6
    assert res.stats.fires > 0 and len(res.examples) > 0
    # Top moments, then the typical ones (25/50/75th percentile) under their own title.
    assert len(res.typical) == 3 and len(dash.rows) == len(res.examples) + 3
    assert not dash.typical_title.isHidden()
    lay = dash.examples_layout
    assert lay.indexOf(dash.typical_title) == len(res.examples)
    assert lay.indexOf(dash.rows[len(res.examples)]) == len(res.examples) + 1
    assert "25th percentile" in dash.rows[len(res.examples)].text.text()
    assert dash.rows[0].thumb.pixmap().width() > 10
    assert len(dash.bars.opts["height"]) == len(res.stats.hist_counts)
    assert res.examples[0].activation == pytest.approx(res.stats.max_activation)
    # Play: needs an output or silent playback, like the main transport.
    assert not win.transport.play.isEnabled()
    dash.rows[0].play_btn.click()
    assert ins.preview.engine is None and "Play is unavailable" in win.statusBar().currentMessage()
    win._set_silent(True)
    dash.rows[0].play_btn.click()
    eng = ins.preview.engine
    assert eng is not None and eng.is_playing and ins.preview.key == (feat, "example", 0)
    assert eng._z is not None and np.array_equal(eng._z, res.examples[0].z)
    assert dash.rows[0].play_btn.text() == "■"
    assert win.engine is not None and not win.engine.is_playing  # the clip stays where it was
    qtbot.waitUntil(lambda: not eng.is_playing, timeout=5000)  # < 1 s of latents: it ends by itself
    qtbot.waitUntil(lambda: dash.rows[0].play_btn.text() == "▶", timeout=2000)
    last = len(dash.rows) - 1  # the 75th-percentile moment
    dash.rows[last].play_btn.click()
    assert ins.preview.key == (feat, "example", last) and np.array_equal(eng._z, res.typical[-1][1].z)
    qtbot.waitUntil(lambda: not eng.is_playing, timeout=5000)
    # The feature's own sound, then the main transport takes over (one stream at a time).
    dash.sound_btn.click()
    assert eng.is_playing and np.array_equal(eng._z, res.sound_z) and "Stop" in dash.sound_btn.text()
    win.toggle_play()
    assert win.engine.is_playing and not eng.is_playing
    win.toggle_play()
    # Cached: choosing the feature again shows the result at once.
    win.ws.set_selected([(feat + 1) % D_SAE])
    win.ws.set_selected([feat])
    assert dash.result is res


def test_examples_of_a_synthetic_corpus_not_on_this_machine_are_rendered_from_its_recipe(
        window: MainWindow, qtbot: Any, probed_sae: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped SAE on a fresh install: labels.json names runs/synth-codec, which is not there, and its
    recipe; the dashboard renders the clips it would have taken into the cache and shows their moments."""
    import shutil

    from workbench.core.data.synth import corpus_recipe, generate_corpus

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    corpus = generate_corpus(tmp_path / "corpus", 3, seed=4, kinds=["note", "melody"], progress=False)
    folder = Path(shutil.copytree(probed_sae, tmp_path / "sae"))
    for name in ("labels.json", "probes.json"):
        doc = json.loads((folder / name).read_text())
        doc.update(inputs=["runs/not-here"], synth_recipes=[corpus_recipe(corpus)])
        doc.pop("clip_paths", None)
        (folder / name).write_text(json.dumps(doc))
    shutil.rmtree(corpus)
    open_sae(qtbot, window, folder)
    dash = window.insight.dashboard
    window.insight.dashboard_dock.show()
    feat = busiest_feature(window)
    window.ws.set_selected([feat])
    qtbot.waitUntil(lambda: dash.result is not None and dash.result.feature == feat, timeout=60_000)
    assert "rendered again from its recipe" in dash.result.source and dash.result.clips == 3
    rendered = sorted((tmp_path / "cache" / "corpora").glob("synth-*/audio/*.flac"))
    assert len(rendered) == 3


def test_probe_table_shows_the_figures_of_probes_json(probed_window: MainWindow, probed_sae: Path) -> None:
    panel = probed_window.insight.probe_panel
    doc = json.loads((probed_sae / "probes.json").read_text())
    t = panel.table
    assert not t.isHidden() and panel.message.isHidden()
    expected = []
    for prop, info in doc["properties"].items():
        for inp in ("sae", "latents", "random_sae"):
            m = info["metrics"][inp]
            expected.append((prop, inp, m["accuracy"], m["balanced_accuracy"], m["macro_f1"]))
    assert t.rowCount() == len(expected) == 9
    names = {"sae": "SAE features", "latents": "raw latents", "random_sae": "random SAE"}
    for r, (prop, inp, acc, bal, f1) in enumerate(expected):
        assert t.item(r, 1).text() == names[inp]
        assert [t.item(r, c).text() for c in (2, 3, 4)] == [f"{acc:.3f}", f"{bal:.3f}", f"{f1:.3f}"]
        if inp == "sae":
            assert t.item(r, 0).text().lower() == prop
    assert "held-out clips" in panel.notes.text()


def test_probe_table_shows_subset_scores_under_their_own_name(probed_window: MainWindow) -> None:
    panel = probed_window.insight.probe_panel
    mono = "monophonic (note+melody+scale)"
    doc = {"properties": {"pitch": {"metrics": {
        "sae": {"accuracy": 0.626, "balanced_accuracy": 0.5, "macro_f1": 0.4, "frames": 900,
                "subsets": {mono: {"accuracy": 0.860, "balanced_accuracy": 0.8, "macro_f1": 0.6, "frames": 300}}},
        "latents": {"accuracy": 0.695, "balanced_accuracy": 0.5, "macro_f1": 0.5, "frames": 900,
                    "subsets": {mono: {"accuracy": 0.862, "balanced_accuracy": 0.8, "macro_f1": 0.7, "frames": 300}}}}}}}
    panel._fill(doc)
    t = panel.table
    assert t.rowCount() == 4
    assert [t.item(r, 0).text() for r in range(4)] == ["Pitch", "", "Pitch, monophonic", ""]
    assert mono in t.item(2, 0).toolTip() and "300 frames" in t.item(2, 0).toolTip()
    assert [t.item(r, 2).text() for r in range(4)] == ["0.626", "0.695", "0.860", "0.862"]
    # bold marks the best input within each group: raw latents win both here
    assert [t.item(r, 2).font().bold() for r in range(4)] == [False, True, False, True]


def test_property_plot_follows_probe_sliders_and_undo_removes_the_probe_edit(probed_window: MainWindow,
                                                                            qtbot: Any) -> None:
    win = probed_window
    ins = win.insight
    tl = win.timeline
    ps = ins.probe_steering
    row = ps.rows["loudness"]
    assert row.target.isEnabled() and row.strength.isEnabled()
    # Loudness as measured (RMS dB per codec frame): A is shown, B only once there is an edit.
    row.radio.setChecked(True)
    ps.source.setCurrentIndex(1)
    assert ins.tracks.prop == "loudness" and ins.tracks.source == "measured"
    wait_tracks(qtbot, win)
    a = win.ws.analysis
    assert len(tl.prop_a.yData) == a.num_frames and np.isfinite(tl.prop_a.yData).any()
    assert not tl.prop_b.isVisible() and "Loudness" in tl.prop_name
    undo0 = win.undo.count()
    # One drag of the target slider: one probe edit, one undo step.
    for v in (1, 2, 3):
        row.target.setValue(v)
    row.target.sliderReleased.emit()
    edits = [e for e in win.ws.edits if isinstance(e, ProbeEdit)]
    assert edits == [ProbeEdit(value=DEFAULT_ALPHA["loudness"], prop="loudness", target=3.0)]
    assert win.undo.count() == undo0 + 1
    wait_steered(qtbot, win)
    assert not np.array_equal(win.ws.steered.clip.samples, a.decoded.samples)
    qtbot.waitUntil(lambda: ins.tracks.last is not None and ins.tracks.last.steered is not None
                    and not ins.tracks.busy, timeout=30_000)
    assert tl.prop_b.isVisible() and len(tl.prop_b.yData) == a.num_frames
    b1 = np.array(tl.prop_b.yData, copy=True)
    assert not np.allclose(b1, tl.prop_a.yData, equal_nan=True)
    # A stronger push: the steered curve changes, the original does not.
    a1 = np.array(tl.prop_a.yData, copy=True)
    row.strength.setValue(1.5)
    row.strength.sliderReleased.emit()
    assert [e.value for e in win.ws.edits if isinstance(e, ProbeEdit)] == [1.5]
    wait_steered(qtbot, win)
    qtbot.waitUntil(lambda: not ins.tracks.busy and ins.tracks.last is not None and ins.tracks.last.steered is not None
                    and not np.allclose(ins.tracks.last.steered, b1, equal_nan=True), timeout=30_000)
    assert not np.allclose(tl.prop_b.yData, b1, equal_nan=True)
    assert np.allclose(tl.prop_a.yData, a1, equal_nan=True)
    # Undo twice: strength back, then no probe edit at all (the slider shows 0, B is gone).
    win.undo_action.trigger()
    assert [e.value for e in win.ws.edits if isinstance(e, ProbeEdit)] == [DEFAULT_ALPHA["loudness"]]
    win.undo_action.trigger()
    assert not any(isinstance(e, ProbeEdit) for e in win.ws.edits)
    assert row.target.value() == 0
    wait_steered(qtbot, win)
    qtbot.waitUntil(lambda: not ins.tracks.busy and not tl.prop_b.isVisible(), timeout=30_000)
    win.redo_action.trigger()
    assert [e.spec() for e in win.ws.edits] == [f"probe:loudness=+3:{DEFAULT_ALPHA['loudness']:g}"]
    # Limit it to the time selection (and back to the whole clip), as with feature sliders.
    row.range_btn.click()  # no selection: nothing changes, the button says so by staying off
    assert not row.range_btn.isChecked() and [e.spec() for e in win.ws.edits] == [f"probe:loudness=+3:{DEFAULT_ALPHA['loudness']:g}"]
    tl.set_selection((0.5, 1.0))
    row.range_btn.click()
    assert [e.spec() for e in win.ws.edits] == [f"probe:loudness=+3:{DEFAULT_ALPHA['loudness']:g}@0.5-1"] and row.range_btn.isChecked()
    row.range_btn.click()
    assert [e.spec() for e in win.ws.edits] == [f"probe:loudness=+3:{DEFAULT_ALPHA['loudness']:g}"]
    # Back to 0 removes the edit; Reset removes probe edits too.
    row.target.setValue(0)
    assert not win.ws.edits
    win.undo_action.trigger()
    win.reset_action.trigger()
    assert not any(isinstance(e, ProbeEdit) for e in win.ws.edits)
    wait_steered(qtbot, win)


def test_probe_plot_as_the_probe_reads_it(probed_window: MainWindow, qtbot: Any) -> None:
    win = probed_window
    ins = win.insight
    ps = ins.probe_steering
    assert ps.current_source() == "probe"  # the default when the SAE has probes
    ps.rows["pitch"].radio.setChecked(True)
    wait_tracks(qtbot, win)
    y = win.timeline.prop_a.yData
    ok = np.isfinite(y)
    # Pitch classes as MIDI notes (NaN = unvoiced), within the probe's range.
    assert ok.any() and np.all((y[ok] >= 24) & (y[ok] <= 89)) and np.allclose(y[ok], np.round(y[ok]))
    ps.rows["pitch"].target.setValue(7)
    wait_steered(qtbot, win)
    qtbot.waitUntil(lambda: not ins.tracks.busy and ins.tracks.last is not None
                    and ins.tracks.last.steered is not None, timeout=30_000)
    assert win.timeline.prop_b.isVisible()


def test_probe_edits_round_trip_through_sessions_and_export(probed_window: MainWindow, qtbot: Any,
                                                            tmp_path: Path) -> None:
    from workbench.core.audio import load_audio

    win = probed_window
    ps = win.insight.probe_steering
    ps.rows["timbre"].target.setValue(-2)
    win.add_slider(1)
    win.set_edit(Edit(1, "scale", 0.5))
    wait_steered(qtbot, win)
    path = tmp_path / "probe.wbsession.json"
    win.save_session(str(path))
    steered = win.ws.steered.clip.samples.copy()
    out = tmp_path / "out.wav"
    task = win.export(str(out))
    with qtbot.waitSignal(task.ended, timeout=15_000):
        pass
    assert np.abs(load_audio(out).samples - steered).max() < 1e-3
    win.reset_action.trigger()
    assert win.ws.edits == (Edit(1, "scale", 1.0),)
    with qtbot.waitSignal(win.loadFinished, timeout=30_000):
        win.open_session(str(path))
    assert [e.spec() for e in win.ws.edits] == [f"probe:timbre=-2:{DEFAULT_ALPHA['loudness']:g}", "1:scale=0.5"]
    assert ps.rows["timbre"].target.value() == -2 and set(win.steering.rows) == {1}
    wait_steered(qtbot, win)


def test_without_probes_sliders_are_disabled_and_the_panes_say_how_to_make_them(window: MainWindow,
                                                                                  qtbot: Any) -> None:
    win = window
    ins = win.insight
    assert win.ws.sae is not None and win.ws.sae_is_default
    qtbot.waitUntil(lambda: ins.info.loaded, timeout=10_000)
    ps = ins.probe_steering
    for r in ps.rows.values():
        assert not r.target.isEnabled() and not r.strength.isEnabled()
        assert "workbench probe" in r.target.toolTip()
    assert "workbench probe" in ps.hint.text() and ps.hint.isVisibleTo(ps)
    assert ps.current_source() == "measured"
    panel = ins.probe_panel
    assert panel.table.isHidden() and "workbench probe" in panel.message.text()
    assert str(win.ws.sae.folder) in panel.message.text()
    # A probe edit from a session cannot be applied: it is dropped, the feature edits stay.
    assert ins.usable_edits([ProbeEdit(prop="pitch", target=2.0), Edit(0, "scale", 0.0)]) == (Edit(0, "scale", 0.0),)
    # The measured curve still works; the dashboard falls back to the current clip and says labels are missing.
    ps.rows["loudness"].radio.setChecked(True)
    wait_tracks(qtbot, win)
    assert np.isfinite(win.timeline.prop_a.yData).any()
    ins.dashboard_dock.show()
    ins.dashboard_dock.raise_()
    feat = busiest_feature(win)
    win.ws.set_selected([feat])
    dash = ins.dashboard
    qtbot.waitUntil(lambda: dash.result is not None, timeout=30_000)
    assert dash.result.source == "the current clip" and dash.result.clips == 1
    assert "current clip" in dash.status.text()
    assert "workbench label" in dash.labels.text()


def test_no_sae_empty_states(window: MainWindow, qtbot: Any) -> None:
    win = window
    with qtbot.waitSignal(win.loadFinished, timeout=30_000):
        win.open_sae(None)
    ins = win.insight
    assert "No SAE" in ins.probe_panel.message.text()
    assert not ins.probe_steering.rows["pitch"].target.isEnabled()
    ins.dashboard_dock.show()
    ins.dashboard_dock.raise_()
    assert "No SAE loaded" in ins.dashboard.empty.text() and not ins.dashboard.empty.isHidden()
    ins.probe_steering.rows["timbre"].radio.setChecked(True)
    wait_tracks(qtbot, win)
    assert math.isfinite(float(np.nanmax(win.timeline.prop_a.yData)))
    assert "Centroid" in win.timeline.prop_name


def test_probe_sliders_start_at_their_measured_strengths(qtbot: Any) -> None:
    # Pitch edits hold the level and need α ≈ 1 to move pitch; loudness and timbre start gentle.
    from workbench.app.probe_panel import ProbeRow

    rows = {p: ProbeRow(p) for p in ("pitch", "loudness", "timbre")}
    for r in rows.values():
        qtbot.addWidget(r.strength)
        qtbot.addWidget(r.target)
    assert {p: (r.alpha, r.strength.value()) for p, r in rows.items()} == {
        "pitch": (1.0, 1.0), "loudness": (0.25, 0.25), "timbre": (0.25, 0.25)}
