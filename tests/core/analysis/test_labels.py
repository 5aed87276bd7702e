"""Automatic labels: AUROC maths, the concept bank, planted features, the random control, labels.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.core.analysis.corpus import CorpusFrames, clip_truth
from workbench.core.analysis.descriptors import FrameDescriptors
from workbench.core.analysis.labels import (
    GOOD_LABEL,
    LABELS_JSON,
    auroc,
    auroc_table,
    concept_bank,
    corr_table,
    format_summary,
    label_features,
    load_labels,
    random_features,
    rankdata,
    read_labels_doc,
    save_labels,
)
from workbench.core.errors import DataError, ModelFileError

FR = 75.0


def _brute_auroc(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    gt = (pos[:, None] > neg[None, :]).sum()
    eq = (pos[:, None] == neg[None, :]).sum()
    return float((gt + 0.5 * eq) / (pos.size * neg.size))


def test_rankdata_and_auroc_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 300).astype(np.float64)
    r = rankdata(x)
    for v in np.unique(x):  # ties share the average of their ranks
        idx = np.flatnonzero(x == v)
        below = (x < v).sum()
        assert np.allclose(r[idx], below + (idx.size + 1) / 2)
    y = rng.random(300) < 0.3
    assert auroc(x, y) == pytest.approx(_brute_auroc(x, y))
    assert auroc(np.where(y, 1.0, 0.0), y) == 1.0
    assert np.isnan(auroc(x, np.zeros(300, bool)))


def test_auroc_table_matches_per_column_auroc() -> None:
    rng = np.random.default_rng(1)
    n = 400
    f = np.where(rng.random((n, 5)) < 0.2, rng.uniform(0, 3, (n, 5)), 0.0).astype(np.float32)
    f[:, 4] = rng.normal(size=n)  # negative values take the full-ranking path
    pos = rng.random((n, 3)) < 0.3
    valid = np.ones((n, 3), bool)
    valid[: n // 2, 2] = False  # one concept defined on half the frames
    rows = np.arange(0, n, 2)
    t = auroc_table(f, pos, valid, rows, block=2)
    for j in range(5):
        for c in range(3):
            m = np.zeros(n, bool)
            m[rows] = True
            m &= valid[:, c]
            assert t[j, c] == pytest.approx(_brute_auroc(f[m, j].astype(np.float64), pos[m, c])), (j, c)


def test_corr_table_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    n = 300
    f = np.where(rng.random((n, 4)) < 0.3, rng.uniform(0, 2, (n, 4)), 0.0).astype(np.float32)
    f[:, 3] = 0.0  # constant: NaN
    pos = rng.random((n, 2)) < 0.4
    valid = np.ones((n, 2), bool)
    valid[:100, 1] = False
    rows = np.arange(50, n)
    t = corr_table(f, pos, valid, rows, block=3)
    for j in range(3):
        for c in range(2):
            m = np.zeros(n, bool)
            m[rows] = True
            m &= valid[:, c]
            assert t[j, c] == pytest.approx(np.corrcoef(f[m, j], pos[m, c])[0, 1]), (j, c)
    assert np.isnan(t[3]).all()


def _frames(n_clips: int = 24, t: int = 150, seed: int = 0, descriptors: bool = True) -> CorpusFrames:
    """Clips of random monophonic notes (exact truth via clip_truth) with made-up descriptors: loud in
    the first third of each clip, medium in the second, quiet in the last."""
    rng = np.random.default_rng(seed)
    truths = []
    for _ in range(n_clips):
        notes, s = [], 0.05
        while s < t / FR - 0.3:
            d = float(rng.uniform(0.1, 0.4))
            notes.append({"onset": s, "offset": s + d, "pitch": int(rng.integers(40, 90)), "velocity": 90,
                          "program": 0, "family": "piano", "is_drum": False})
            s += d + float(rng.uniform(0.0, 0.1))
        truths.append(clip_truth({"notes": notes, "chords": []}, FR, t))
    truth = {k: np.concatenate([x[k] for x in truths]) for k in truths[0]}
    n = n_clips * t
    truth["has_labels"] = np.ones(n, bool)
    frame_index = np.tile(np.arange(t), n_clips)
    if descriptors:
        rms = np.select([frame_index < t // 3, frame_index < 2 * t // 3], [-15.0, -30.0], -45.0) + rng.normal(0, 1, n)
        desc = FrameDescriptors(np.full(n, 220.0, np.float32), np.full(n, 0.9, np.float32), rms.astype(np.float32),
                                rng.uniform(200, 4000, n).astype(np.float32))
    else:
        desc = FrameDescriptors(np.full(n, np.nan, np.float32), *(np.zeros(n, np.float32) for _ in range(3)))
    return CorpusFrames(np.repeat(np.arange(n_clips), t), frame_index, rng.normal(size=(n, 8)).astype(np.float32),
                        np.zeros((n, 0), np.float32), desc, truth, [f"clip{i}" for i in range(n_clips)], FR, 24000)


def test_concept_bank_from_truth_and_descriptors() -> None:
    fr = _frames()
    bank = concept_bank(fr)
    names = bank.names
    for want in ("pitch class C", "pitch class B", "register low", "register high", "loud", "quiet", "bright",
                 "dark", "silence", "pitched", "onset", "drums", "sustained", "polyphonic", "chord C",
                 "chord minor", "instrument piano", "instrument drums"):
        assert want in names, want
    pc = bank.positive[:, names.index("pitch class C")]
    assert np.array_equal(pc, fr.truth["piano_roll"][:, 0::12].any(axis=1))
    loud = bank.positive[:, names.index("loud")]
    assert np.all(loud == (fr.frame_index < 50))  # the planted loud third (loudness terciles)
    assert np.all(bank.positive[:, names.index("quiet")] == (fr.frame_index >= 100))
    # Onset and sustained never coincide.
    assert not np.any(bank.positive[:, names.index("onset")] & bank.positive[:, names.index("sustained")])
    # Without descriptors: no loudness concepts, silence from the truth.
    bank2 = concept_bank(_frames(descriptors=False))
    assert "loud" not in bank2.names and "silence" in bank2.names
    empty = _frames(descriptors=False)
    empty.truth = {}
    with pytest.raises(DataError, match="nothing to label"):
        concept_bank(empty)


@pytest.mark.parametrize("select", ["correlation", "auroc"])
def test_planted_features_get_their_concept_and_random_ones_do_not(select: str) -> None:
    fr = _frames()
    rng = np.random.default_rng(5)
    n = len(fr)
    bank = concept_bank(fr)
    pc_e = bank.positive[:, bank.names.index("pitch class E")]
    loud = bank.positive[:, bank.names.index("loud")]
    f = np.zeros((n, 6), np.float32)
    f[pc_e, 0] = rng.uniform(1, 2, pc_e.sum())  # fires exactly on "pitch class E"
    f[loud, 1] = rng.uniform(0.5, 3, loud.sum())  # fires exactly on "loud"
    f[:, 2] = (rng.random(n) < 0.1) * rng.uniform(0, 1, n)  # random
    f[:, 3] = (rng.random(n) < 0.5) * rng.uniform(0, 1, n)  # random, dense
    # 4: never fires. 5: fires on half the "pitch class E" frames plus noise (a weaker detector).
    f[pc_e & (rng.random(n) < 0.5), 5] = 1.0
    f[rng.random(n) < 0.05, 5] = 0.5
    fr.features = f
    res = label_features(fr, test_fraction=0.3, seed=0, select=select)
    e0, e1, e2, e3, e4, e5 = (res.features[j] for j in range(6))
    assert e0["label"] == "pitch class E" and e0["score"] == pytest.approx(1.0)
    assert e0["precision"] == pytest.approx(1.0) and e0["recall"] == pytest.approx(1.0)
    assert e1["label"] == "loud" and e1["score"] == pytest.approx(1.0)
    for e in (e2, e3):
        assert e["label"] == "unexplained" and abs(e["score"] - 0.5) < 0.1, e
    assert e4["label"] == "dead" and e4["score"] is None
    assert e5["concept"] == "pitch class E" and 0.6 < e5["score"] < 0.95
    assert [t["concept"] for t in e0["top"]][0] == "pitch class E" and len(e0["top"]) == 5
    s = res.summary
    assert s["live"] == 5 and s["labelled"] == 2 + (e5["score"] >= GOOD_LABEL)
    assert s["testable"] == 5 and s["labelled_testable"] == s["labelled"]
    assert s["share_labelled"] == pytest.approx(s["labelled"] / 5)
    assert s["by_group"]["pitch class"] >= 1 and s["by_group"]["loudness"] == 1
    # The control: random directions on latents that carry nothing score near chance.
    rc = s["random_control"]
    assert rc["live"] >= 1 and abs(rc["median_best_auroc"] - 0.5) < 0.1 and rc["share_labelled"] <= 0.2
    assert "SAE: 2/5" in format_summary(s) or "SAE: 3/5" in format_summary(s)


def test_selection_is_on_train_clips_and_score_on_held_out_clips() -> None:
    """A feature that tracks a concept only on the train clips (and is noise on the others) gets a
    held-out score near chance: the score is not the train score."""
    fr = _frames()
    from workbench.core.analysis.corpus import split_by_clip

    train, _ = split_by_clip(fr, 0.3, 0)
    bank = concept_bank(fr)
    y = bank.positive[:, bank.names.index("pitch class G")]
    rng = np.random.default_rng(2)
    f = np.where(train, y.astype(np.float32), (rng.random(len(fr)) < 0.1).astype(np.float32))[:, None]
    fr.features = f
    res = label_features(fr, test_fraction=0.3, seed=0, control=False)
    e = res.features[0]
    assert e["concept"] == "pitch class G" and e["train_score"] == pytest.approx(1.0)
    assert abs(e["score"] - 0.5) < 0.1 and e["label"] == "unexplained"
    assert "random_control" not in res.summary


def test_random_features_are_topk() -> None:
    z = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    f = random_features(z, 32, 4, seed=1)
    assert f.shape == (500, 32) and np.all(f >= 0) and np.all((f > 0).sum(axis=1) <= 4)
    assert (f > 0).sum(axis=0).min() > 0  # every random direction fires somewhere
    assert np.array_equal(f, random_features(z, 32, 4, seed=1))


def test_labels_json_round_trip(tmp_path: Path) -> None:
    fr = _frames(n_clips=10)
    f = np.zeros((len(fr), 3), np.float32)
    bank = concept_bank(fr)
    f[bank.positive[:, bank.names.index("loud")], 0] = 1.0
    f[::7, 1] = 0.3
    fr.features = f
    res = label_features(fr, test_fraction=0.3)
    folder = tmp_path / "sae"
    folder.mkdir()
    path = save_labels(res, folder, extra={"inputs": ["x"]})
    doc = json.loads(path.read_text())
    assert doc["format"] == "workbench-labels" and doc["inputs"] == ["x"]
    assert set(doc["features"]) == {"0", "1", "2"} and doc["summary"]["random_control"]["live"] >= 1
    assert any(c["name"] == "loud" and c["scored"] for c in doc["concepts"])
    labels = load_labels(folder)
    assert labels[0] == ("loud", pytest.approx(1.0)) and labels[2] == ("dead", None)
    assert labels[1][0] == "unexplained"
    # The app's reader sees the same labels.
    from workbench.core.sae_bridge import read_labels

    app = read_labels(folder, 3)
    assert app[0].label == "loud" and app[0].score == pytest.approx(1.0)
    assert read_labels_doc(tmp_path) is None and load_labels(tmp_path) == {}
    (folder / LABELS_JSON).write_text("{not json")
    with pytest.raises(ModelFileError, match="cannot read labels"):
        load_labels(folder)
    (folder / LABELS_JSON).write_text('{"format": "other"}')
    with pytest.raises(ModelFileError, match="not a workbench labels file"):
        load_labels(folder)
    with pytest.raises(ModelFileError, match="no such SAE folder"):
        save_labels(res, tmp_path / "missing")


def test_too_little_data_and_bad_settings_are_clear_errors() -> None:
    from workbench.core.errors import UsageError

    fr = _frames(n_clips=3, t=20)
    fr.features = np.ones((len(fr), 2), np.float32)
    with pytest.raises(DataError, match="no concept has"):
        label_features(fr, min_positives=1000)
    with pytest.raises(UsageError, match="unknown concept selection"):
        label_features(fr, select="vibes")
