"""The synthetic corpus: exact labels, determinism, frame alignment, the `workbench data synth` CLI.

Small on purpose (a handful of short clips): rendering is ~100x real time, so the whole module runs in
a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.cli import main
from workbench.core.audio import load_audio
from workbench.core.data import (
    CHORD_QUALITIES,
    FAMILIES,
    KEY_MODES,
    available_kinds,
    frame_labels,
    generate_corpus,
    load_corpus,
    render_clip,
    render_midi,
)
from workbench.core.data import theory as th
from workbench.core.data.fluid import BLOCK
from workbench.core.errors import DataError

SR = 24000


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Parsed scores are cached per user; tests must not read or write the real cache.
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "wb-cache"))


def _single_note_midi(program: int, pitch: int, onset: float, offset: float, velocity: int = 100) -> Any:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program)
    inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=onset, end=offset))
    pm.instruments.append(inst)
    return pm


def _f0_midi(seg: np.ndarray, sr: int, fmin: float = 100.0, fmax: float = 1500.0) -> float:
    """Pitch of a steady tone from its autocorrelation (shortest strong period, so no octave-down
    errors); numpy only, so the test does not pay for librosa's first-call compile."""
    seg = seg - seg.mean()
    n = len(seg)
    acf = np.fft.irfft(np.abs(np.fft.rfft(seg, 2 * n)) ** 2)[:n]
    lo, hi = int(sr / fmax), int(sr / fmin)
    acf = acf[: hi + 2] / acf[0] * n / (n - np.arange(hi + 2))
    peak = acf[lo : hi + 1].max()
    best = next(k for k in range(lo, hi + 1) if acf[k] >= 0.85 * peak and acf[k] >= acf[k - 1] and acf[k] >= acf[k + 1])
    a, b, c = acf[best - 1], acf[best], acf[best + 1]
    den = a - 2 * b + c
    lag = best + (0.5 * (a - c) / den if den else 0.0)
    return float(69 + 12 * np.log2(sr / lag / 440.0))


def _first_loud_sample(audio: np.ndarray, rel_db: float = -30.0) -> int:
    env = np.abs(audio)
    return int(np.argmax(env > env.max() * 10 ** (rel_db / 20)))


def test_rendering_is_deterministic_per_seed() -> None:
    a = render_clip("texture", 7, duration=2.0)
    render_clip("chord", 3, duration=1.0)  # leaves voices/reverb behind if state leaked between clips
    b = render_clip("texture", 7, duration=2.0)
    assert a.id == b.id == "texture-7"
    assert np.array_equal(a.audio, b.audio)
    assert a.labels == b.labels
    c = render_clip("texture", 8, duration=2.0)
    assert not np.array_equal(a.audio[: len(c.audio)], c.audio[: len(a.audio)])


def test_note_onset_and_pitch_match_labels() -> None:
    clip = render_midi(_single_note_midi(0, 60, 0.25, 1.0), sample_rate=SR, reverb=0)
    (note,) = clip.labels["notes"]
    onset = int(round(note["onset"] * SR))
    assert onset % BLOCK == 0 and abs(note["onset"] - 0.25) <= BLOCK / SR / 2
    assert np.abs(clip.audio[:onset]).max() < 1e-5  # silence before the label's onset
    assert abs(_first_loud_sample(clip.audio) - onset) / SR < 0.010  # sound within 10 ms after it
    seg = clip.audio[onset + int(0.05 * SR) : onset + int(0.45 * SR)]
    assert abs(_f0_midi(seg, SR) - 60) < 0.2  # C4 = 261.6 Hz
    assert clip.labels["duration"] == pytest.approx(note["offset"] + 1.0, abs=1 / SR)


def test_generated_notes_sound_where_labeled() -> None:
    checked = 0
    for seed in range(60):
        clip = render_clip("note", seed)
        (note,) = clip.labels["notes"]
        onset = int(round(note["onset"] * SR))
        assert np.abs(clip.audio[:onset]).max() < 1e-5
        assert abs(_first_loud_sample(clip.audio, -40.0) - onset) / SR < 0.08  # slow attacks allowed
        if note["family"] not in ("piano", "guitar", "reed", "brass", "pipe") or not 55 <= note["pitch"] <= 84:
            continue
        seg = clip.audio[onset + int(0.1 * SR) : onset + int(0.5 * SR)]
        assert abs(_f0_midi(seg, SR) - note["pitch"]) < 0.5, note
        checked += 1
        if checked == 3:
            break
    assert checked == 3


@pytest.mark.parametrize("kind", ["note", "chord", "scale", "arpeggio", "melody", "drums", "texture", "piece"])
def test_every_kind_renders_labeled_audio(kind: str) -> None:
    if kind not in available_kinds():
        pytest.skip("music21 corpus not installed")
    clip = render_clip(kind, 11, duration=1.5)
    labels = json.loads(json.dumps(clip.labels))  # JSON-serialisable, and unchanged by the round trip
    assert labels == clip.labels
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1 and len(clip.audio) == int(1.5 * SR)
    assert np.isfinite(clip.audio).all()
    assert 1e-3 < np.abs(clip.audio).max() <= 0.99 + 1e-6
    assert labels["kind"] == kind and labels["duration"] == pytest.approx(1.5)
    assert labels["notes"]
    for n in labels["notes"]:
        assert 0 <= n["onset"] < n["offset"] <= labels["duration"]
        assert round(n["onset"] * SR) % BLOCK == 0 and round(n["offset"] * SR) % BLOCK == 0
        assert n["family"] in FAMILIES and (n["family"] == "drums") == n["is_drum"]
        assert 1 <= n["velocity"] <= 127 and 0 <= n["pitch"] <= 127
        if not n["is_drum"]:
            assert n["program"] < 120  # no sound effects
    for c in labels["chords"]:
        assert c["quality"] in CHORD_QUALITIES and 0 <= c["root"] < 12
        assert 0 <= c["inversion"] < len(th.CHORD_INTERVALS[c["quality"]])
    if labels["key"] is not None:
        assert labels["key"]["mode"] in KEY_MODES
    if kind in ("chord", "arpeggio", "texture"):
        assert labels["chords"]
    if kind == "drums":
        assert all(n["is_drum"] for n in labels["notes"])


def test_chord_labels_match_the_notes() -> None:
    clip = render_clip("chord", 2)
    (chord,) = clip.labels["chords"]
    pitches = [n["pitch"] for n in clip.labels["notes"]]
    assert th.recognise_chord(pitches) == (chord["root"], chord["quality"], chord["inversion"]) or (
        chord["quality"] in ("augmented", "diminished7")  # symmetric chords: root is ambiguous
    )


def test_recognise_chord() -> None:
    assert th.recognise_chord([60, 64, 67]) == (0, "major", 0)
    assert th.recognise_chord([64, 67, 72]) == (0, "major", 1)
    assert th.recognise_chord([55, 60, 63, 70]) == (0, "minor7", 2)
    assert th.recognise_chord([43, 59, 62, 65, 67]) == (7, "dominant7", 0)
    assert th.recognise_chord([60, 62]) is None


def test_frame_labels_alignment() -> None:
    fr = 10.0  # frame t covers [t/10, (t+1)/10); centres at 0.05, 0.15, ...
    labels = {
        "notes": [
            {
                "onset": 0.10,
                "offset": 0.40,
                "pitch": 60,
                "velocity": 90,
                "program": 0,
                "family": "piano",
                "is_drum": False,
            },
            {
                "onset": 0.30,
                "offset": 0.50,
                "pitch": 67,
                "velocity": 70,
                "program": 40,
                "family": "strings",
                "is_drum": False,
            },
            {
                "onset": 0.62,
                "offset": 0.64,
                "pitch": 36,
                "velocity": 100,
                "program": 0,
                "family": "drums",
                "is_drum": True,
            },
        ],
        "chords": [{"start": 0.1, "end": 0.5, "root": 0, "quality": "major", "inversion": 0}],
        "key": {"tonic": 7, "mode": "major"},
    }
    f = frame_labels(labels, fr, 8)
    assert f["pitch"].tolist() == [-1, 60, 60, 67, 67, -1, -1, -1]
    assert f["n_active"].tolist() == [0, 1, 1, 2, 1, 0, 0, 0]
    assert f["velocity"].tolist() == [0, 90, 90, 70, 70, 0, 0, 0]
    assert f["family"].tolist() == [-1, 0, 0, 5, 5, -1, FAMILIES.index("drums"), -1]
    assert f["onset"].tolist() == [False, True, False, True, False, False, True, False]
    assert f["is_drum"].tolist() == [False] * 6 + [True, False]  # a 20 ms hit misses every centre
    assert f["chord_root"].tolist() == [-1, 0, 0, 0, 0, -1, -1, -1]
    assert f["chord_quality"].tolist() == [-1] + [CHORD_QUALITIES.index("major")] * 4 + [-1] * 3
    assert f["piano_roll"].shape == (8, 128) and f["piano_roll"][3, [60, 67]].all()
    assert (f["key_tonic"] == 7).all() and (f["key_mode"] == KEY_MODES.index("major")).all()
    assert all(len(v) == 8 for v in f.values())


def test_frame_labels_follow_the_audio() -> None:
    clip = render_clip("melody", 4)
    fr = 75.0
    T = int(np.ceil(clip.duration * fr))
    f = frame_labels(clip.labels, fr, T)
    hop = SR / fr
    rms = np.array([np.sqrt(np.mean(clip.audio[int(t * hop) : int((t + 1) * hop)] ** 2) + 1e-20) for t in range(T)])
    first_onset = int(np.floor(clip.labels["notes"][0]["onset"] * fr))
    assert (rms[:first_onset] < 1e-5).all()  # nothing sounds in frames before the first onset
    assert (rms[f["pitch"] >= 0] > 1e-4).all()  # and every labeled frame has sound


def test_corpus_is_a_prefix_of_a_larger_one(tmp_path: Path) -> None:
    small = generate_corpus(tmp_path / "a", 2, seed=3, kinds=["note"], progress=False)
    large = generate_corpus(tmp_path / "b", 3, seed=3, kinds=["note"], progress=False)
    ids_small = [r["id"] for r in load_corpus(small)]
    ids_large = [r["id"] for r in load_corpus(large)]
    assert ids_small == ids_large[:2] and len(set(ids_large)) == 3


def test_cli_writes_a_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "corpus"
    rc = main(
        ["data", "synth", "-o", str(out), "--n", "3", "--seed", "1", "--kinds", "note,chord,drums", "--no-progress"]
    )
    assert rc == 0, capsys.readouterr().err
    info = json.loads((out / "corpus.json").read_text())
    assert info["n"] == 3 and info["seed"] == 1 and info["sample_rate"] == SR
    assert info["kinds"] == ["note", "chord", "drums"] and info["soundfont"] == "TimGM6mb.sf2"
    records = load_corpus(out)
    assert [r["index"] for r in records] == [0, 1, 2]
    for r in records:
        audio = load_audio(r["path"])
        assert audio.sample_rate == SR and audio.num_samples == r["num_samples"]
        again = render_clip(r["kind"], r["seed"])  # the file is what render_clip gives, to 24-bit precision
        assert np.abs(audio.samples[:, 0] - again.audio).max() < 1e-5
    assert not list(out.glob(".*part"))


@pytest.mark.parametrize(
    "args",
    [
        ["--n", "0"],
        ["--kinds", "note,bogus"],
        ["--soundfont", "/nonexistent/font.sf2"],
        ["--sample-rate", "1000"],
        ["--n", "many"],
        ["--workers", "0"],
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    out = tmp_path / "never"
    rc = main(["data", "synth", "-o", str(out), "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_soundfont_file_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\0\0\0\0junk")
    with pytest.raises(DataError, match="not a readable SoundFont"):
        render_clip("note", 0, soundfont=bad)
    with pytest.raises(DataError, match="unknown clip kind"):
        render_clip("noise", 0)


def test_labels_round_trip_through_midi() -> None:
    from workbench.core.data import labels_to_midi

    clip = render_clip("texture", 5, duration=2.0)
    again = render_midi(labels_to_midi(clip.labels), reverb=clip.labels["reverb"], chorus=clip.labels["chorus"])
    strip = [
        {k: n[k] for k in ("onset", "offset", "pitch", "velocity", "program", "is_drum")} for n in clip.labels["notes"]
    ]
    assert strip == [{k: n[k] for k in strip[0]} for n in again.labels["notes"]]


def test_a_recipe_renders_any_clip_of_its_corpus_again(tmp_path: Path) -> None:
    import soundfile as sf

    from workbench.core.data.synth import corpus_recipe, corpus_recipes, recipe_audio_names, render_recipe_clips
    from workbench.core.jobs import Cancelled

    full = generate_corpus(tmp_path / "full", 5, seed=7, kinds=["note", "drums", "melody"], progress=False)
    recipe = corpus_recipe(full)
    assert recipe is not None and recipe["seed"] == 7 and recipe["n"] == 5
    assert corpus_recipe(tmp_path) is None and corpus_recipes([full, tmp_path, full]) == [recipe]
    # The file names follow from the recipe alone.
    recs = {r["index"]: r for r in load_corpus(full)}
    assert recipe_audio_names(recipe) == [recs[i]["audio"] for i in range(5)]
    # Clips 1 and 3 rendered on their own equal the full corpus' clips (audio and labels).
    part = tmp_path / "part"
    calls: list[int] = []

    def stop_after_one() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        render_recipe_clips(recipe, [3, 1], part, check=stop_after_one)
    assert [r["index"] for r in load_corpus(part)] == [1]  # the clip done before the cancel is kept
    first = (part / recs[1]["audio"]).stat().st_mtime_ns
    render_recipe_clips(recipe, [3, 1], part)
    assert (part / recs[1]["audio"]).stat().st_mtime_ns == first  # resumed, not rendered again
    got = {r["index"]: r for r in load_corpus(part)}
    assert sorted(got) == [1, 3]
    for i in (1, 3):
        a, _ = sf.read(got[i]["path"])
        b, _ = sf.read(recs[i]["path"])
        assert np.array_equal(a, b)
        assert {k: v for k, v in got[i].items() if k != "path"} == {k: v for k, v in recs[i].items() if k != "path"}
    info = json.loads((part / "corpus.json").read_text())
    assert info["indices"] == [1, 3] and corpus_recipe(part) == recipe


@pytest.mark.parametrize("change, match", [({"version": 99}, "another version"), ({"soundfont": "Other.sf2"}, "Other.sf2"),
                                           ({"kinds": ["kazoo"], "mix": {"kazoo": 1.0}}, "kazoo"),
                                           ({"n": 0}, "out of range"), ({"mix": {}}, "incomplete")])
def test_a_recipe_this_version_cannot_render_is_a_data_error(tmp_path: Path, change: dict[str, Any],
                                                             match: str) -> None:
    from workbench.core.data.synth import corpus_recipe, render_recipe_clips

    recipe = corpus_recipe(generate_corpus(tmp_path / "c", 1, seed=1, kinds=["note"], progress=False))
    assert recipe is not None
    with pytest.raises(DataError, match=match):
        render_recipe_clips(dict(recipe, **change), [0], tmp_path / "out")
    with pytest.raises(DataError, match="indices"):
        render_recipe_clips(recipe, [1], tmp_path / "out")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DataError, match="cannot create"):
        render_recipe_clips(recipe, [0], tmp_path / "file" / "out")
