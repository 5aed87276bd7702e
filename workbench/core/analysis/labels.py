"""Automatic feature labels with held-out scores (issue 7, after Singh, Cherep & Maes 2025, but offline
and measured).

A *concept* is a yes/no property of a codec frame (`concept_bank`). Each feature is treated as a
detector of each concept: its activation is the score, and the quality of the detector is the AUROC
(the probability that a random frame where the concept holds gets a higher activation than a random
frame where it does not; 0.5 = no information, 1 = perfect; ties count half, so a feature that is zero
on most frames is handled exactly).

Procedure (`label_features`): the clips are split into train and test (`corpus.split_by_clip`, whole
clips on one side). On the train clips each feature's concepts are ranked by the Pearson correlation
between its activation and the concept's 0/1 indicator (``select="correlation"``, the default; the score
of Bills et al. 2023 for explanations of neurons, with the concept as the simulated activation), and the
best ones are scored on the held-out clips by AUROC. A feature's label is its best train concept, its
score that concept's held-out AUROC. Below `UNEXPLAINED_BELOW` (0.75) the feature is "unexplained" (the
score is kept, so one can see how close it came); `GOOD_LABEL` (0.8) is the bar for the summary's "share
of live features with a label". A feature is *live* when it fires on at least one analysed frame; it is *testable* when it fires on at
least `min_positives` frames of both the train and the held-out clips (the summary gives the label share
among both). A
concept is only scored where it has at least `min_positives` positive and negative frames on both sides.

Why not choose by train AUROC (``select="auroc"``)? AUROC ignores base rates: a broad feature that fires
on 18% of frames, including every frame of a rare note, is a high-AUROC "detector" of that note although
the note explains 2% of its firing. Measured on a 256-feature TopK SAE of the default codec (100 synthetic
clips, 30 held out): choosing by AUROC gave the same share of labels with held-out AUROC ≥ 0.8 (5.6%) but
a median precision of 0.012 and a median lift below 1 (the label is rarer where the feature fires than
elsewhere); choosing by correlation gave precision 0.065, lift 2.0, and a random encoder's share fell from
4.3% to 1.6% (labels chosen by AUROC were as easy to find for random directions).

Control: the same procedure on a random SAE encoder of the same size (`random_features`: unit-norm
Gaussian directions, input centred on the mean latent, TopK with the SAE's k or its mean L0) says what
score dictionary-free directions get; it should sit near 0.5 for concepts the codec latents do not
make trivially linear.

Concepts (where a frame has synthetic-corpus ground truth, `synth.frame_labels` via `corpus.clip_truth`,
the exact labels are used; otherwise descriptors, `descriptors.frame_descriptors`):

- ``pitch class C`` … ``B`` (12): a note of that pitch class sounds (any voice; descriptors: the CREPE
  pitch rounded to a semitone).
- ``note C4`` … (MIDI 24–96, C1–C7): that very note sounds (descriptors: the rounded CREPE pitch).
- ``register low`` (a note below C3, MIDI 48), ``register mid`` (C3–B4), ``register high`` (C5, MIDI 72,
  and up).
- ``loud`` / ``quiet``: top / bottom third of the corpus' non-silent frames by RMS dB; ``bright`` /
  ``dark``: same with the spectral centroid (thresholds are corpus terciles, stored in labels.json).
- ``level -40..-37 dB`` … and ``centroid 800..985 Hz`` …: the probes' 20 loudness and 20 timbre classes
  (`descriptors.loudness_classes` / `timbre_classes`) on non-silent frames, as narrow concepts.
- ``silence``: RMS below `descriptors.SILENCE_DB` (-60 dBFS); without descriptors, no note sounding.
- ``pitched``: CREPE periodicity ≥ `descriptors.VOICED_THRESHOLD` on a non-silent frame (descriptors only).
- ``onset``: a note or drum hit starts in the frame (descriptors: RMS rises ≥ 6 dB over the previous
  frame to above -50 dB).
- ``drums``: a drum hit sounds; ``sustained``: a pitched note sounds and none started in the last 0.1 s;
  ``polyphonic``: two or more notes sound (truth only).
- ``chord <root>`` (12) and ``chord <quality>`` (`synth.CHORD_QUALITIES`): the chord at the frame (truth only).
- ``instrument <family>`` (`synth.FAMILIES`, General MIDI families + drums): the family of the top
  note, or drums when only drums sound (truth only).

labels.json (in the SAE folder, written atomically)::

    {"format": "workbench-labels", "version": 1, "created": ..., "method": {...}, "corpus": {...},
     "concepts": [{"name", "group", "source", "train_positives", "test_positives"}, ...],
     "features": {"<j>": {"label", "score", "train_score", "explained", "concept", "group", "precision",
                          "recall", "base_rate", "lift", "top_precision", "density",
                          "top": [{"concept", "group", "score", "train_score"}, ...]}, ...},
     "summary": {"live", "labelled", "share_labelled", "explained", "share_explained", "mean_best_auroc",
                 "median_best_auroc", "testable", "share_labelled_testable", "median_precision",
                 "median_top_precision", "median_lift", "by_group", "random_control": {... same keys ...}}}

``label`` is the concept name, "unexplained" or "dead" (never fires); ``score`` is the held-out AUROC
(null for dead features or when no concept could be scored); ``concept`` is the best concept even when
unexplained. On the held-out clips for that concept: ``precision`` = share of the frames where the feature
fires that have the concept, ``recall`` = share of the concept's frames where it fires, ``base_rate`` =
share of all frames that have it, ``lift`` = precision / base rate, ``top_precision`` = precision among
the feature's strongest 10% of firing frames. Why both: AUROC ≈ 0.5 + (recall − false-positive rate) / 2
for a sparse feature, so a feature that fires only on, say, C4 played by strings is a perfect but
low-recall detector of "pitch class C" (AUROC near 0.5, precision near 1): SAE features split concepts
finely, and the AUROC bar rewards only features that cover most of a concept's frames. `load_labels` gives {feature: (label,
score)}; `workbench.core.sae_bridge.read_labels` (the app) reads the same file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import DataError, ModelFileError, UsageError

LABELS_JSON = "labels.json"
LABELS_FORMAT = "workbench-labels"
LABELS_VERSION = 1
UNEXPLAINED_BELOW = 0.75
GOOD_LABEL = 0.8
TOP_CONCEPTS = 5
SELECTIONS = ("correlation", "auroc")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
REGISTER_LOW_BELOW = 48  # C3
REGISTER_HIGH_FROM = 72  # C5
NOTE_MIDI_RANGE = (24, 96)  # single-note concepts C1..C7
ONSET_RISE_DB = 6.0
SUSTAIN_AFTER_S = 0.1
Log = Callable[[str], None]


@dataclass
class Concept:
    name: str
    group: str
    source: str  # "truth", "descriptors" or "truth+descriptors" (per frame, whichever exists)


@dataclass
class ConceptBank:
    """Per-frame concepts: ``positive[i, c]`` where concept c holds, ``valid[i, c]`` where it is defined."""

    concepts: list[Concept]
    positive: np.ndarray  # [N, C] bool
    valid: np.ndarray  # [N, C] bool
    thresholds: dict[str, float]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.concepts]


# -- the concepts -------------------------------------------------------------------------------------

def descriptors_measured(frames: Any) -> bool:
    """False when the corpus was collected without descriptors (all RMS 0 and every pitch NaN)."""
    d = frames.descriptors
    if len(d) == 0:
        return False
    return not (np.all(d.rms_db == 0) and np.all(~np.isfinite(d.pitch_hz)) and np.all(d.centroid_hz == 0))


def _recent(mask: np.ndarray, clip_ids: np.ndarray, frames_back: int) -> np.ndarray:
    """True where `mask` is true in this frame or one of the `frames_back` frames before it (same clip)."""
    out = mask.copy()
    for k in range(1, frames_back + 1):
        prev = np.zeros_like(mask)
        prev[k:] = mask[:-k] & (clip_ids[k:] == clip_ids[:-k])
        out |= prev
    return out


def concept_bank(frames: Any, *, use_descriptors: bool | None = None) -> ConceptBank:
    """The concepts of every frame of a `corpus.CorpusFrames` (module docstring)."""
    from workbench.core.analysis import descriptors as desc
    from workbench.core.data.synth import CHORD_QUALITIES, FAMILIES

    n = len(frames)
    if n == 0:
        raise DataError("no frames to find concepts in")
    truth = frames.truth or {}
    labelled = np.asarray(truth.get("has_labels", np.zeros(n, bool)), bool)
    has_truth = bool(labelled.any())
    measured = descriptors_measured(frames) if use_descriptors is None else bool(use_descriptors)
    if not has_truth and not measured:
        raise DataError("no ground truth and no descriptors: nothing to label features with "
                        "(collect the corpus with descriptors, or use a synthetic corpus)")
    d = frames.descriptors
    dm = np.full(n, measured) & ~labelled  # frames described by descriptors where truth is missing
    clip_ids = np.asarray(frames.clip_ids)
    names: list[Concept] = []
    pos_cols: list[np.ndarray] = []
    val_cols: list[np.ndarray] = []
    thresholds: dict[str, float] = {}

    def add(name: str, group: str, pos: np.ndarray, valid: np.ndarray, source: str) -> None:
        names.append(Concept(name, group, source))
        pos_cols.append(np.asarray(pos, bool) & valid)
        val_cols.append(np.asarray(valid, bool))

    both = "truth+descriptors" if has_truth and measured else ("truth" if has_truth else "descriptors")
    if measured:
        rms = np.asarray(d.rms_db, np.float64)
        cen = np.asarray(d.centroid_hz, np.float64)
        silent = rms < desc.SILENCE_DB
        voiced = np.isfinite(d.pitch_hz) & ~silent
        midi_d = np.where(voiced, np.rint(desc.hz_to_midi(np.where(voiced, d.pitch_hz, 440.0))), -1).astype(np.int64)
    else:
        rms = cen = np.zeros(n)
        silent = voiced = np.zeros(n, bool)
        midi_d = np.full(n, -1, np.int64)
    roll = np.asarray(truth["piano_roll"], bool) if has_truth else np.zeros((n, 128), bool)
    valid_pc = labelled | dm

    # Pitch class and register: any sounding note (truth), or the tracked pitch (descriptors).
    for k, note in enumerate(NOTE_NAMES):
        add(f"pitch class {note}", "pitch class",
            np.where(labelled, roll[:, k::12].any(axis=1), (midi_d >= 0) & (midi_d % 12 == k)), valid_pc, both)
    ranges = {"low": (0, REGISTER_LOW_BELOW), "mid": (REGISTER_LOW_BELOW, REGISTER_HIGH_FROM),
              "high": (REGISTER_HIGH_FROM, 128)}
    for reg, (lo, hi) in ranges.items():
        add(f"register {reg}", "register",
            np.where(labelled, roll[:, lo:hi].any(axis=1), (midi_d >= lo) & (midi_d < hi)), valid_pc, both)
    # Single notes (pitch class and octave): SAE features are often narrower than a pitch class.
    for m in range(NOTE_MIDI_RANGE[0], NOTE_MIDI_RANGE[1] + 1):
        add(f"note {NOTE_NAMES[m % 12]}{m // 12 - 1}", "note", np.where(labelled, roll[:, m], midi_d == m),
            valid_pc, both)

    if measured:
        loud_ok = np.full(n, True) & ~silent
        if loud_ok.sum() >= 3:
            q1, q2 = np.quantile(rms[loud_ok], [1 / 3, 2 / 3])
            c1, c2 = np.quantile(cen[loud_ok], [1 / 3, 2 / 3])
            thresholds.update({"quiet_below_db": float(q1), "loud_from_db": float(q2),
                               "dark_below_hz": float(c1), "bright_from_hz": float(c2)})
            allf = np.ones(n, bool)
            add("loud", "loudness", loud_ok & (rms >= q2), allf, "descriptors")
            add("quiet", "loudness", loud_ok & (rms < q1), allf, "descriptors")
            add("bright", "brightness", loud_ok & (cen >= c2), allf, "descriptors")
            add("dark", "brightness", loud_ok & (cen < c1), allf, "descriptors")
        thresholds["silence_below_db"] = float(desc.SILENCE_DB)
        add("pitched", "pitched", voiced & (d.periodicity >= desc.VOICED_THRESHOLD), np.ones(n, bool), "descriptors")
        # The probes' loudness and timbre classes (descriptors.loudness_classes / timbre_classes), as
        # narrow concepts next to the corpus-relative terciles above.
        allf = np.ones(n, bool)
        lc, tc = desc.loudness_classes(rms), desc.timbre_classes(cen)
        for k, name in enumerate(desc.class_names("loudness")):
            add(f"level {name}", "loudness bin", (lc == k) & ~silent, allf, "descriptors")
        for k, name in enumerate(desc.class_names("timbre")):
            add(f"centroid {name}", "centroid bin", (tc == k) & ~silent, allf, "descriptors")

    # Silence: acoustic where measured, else no note sounding.
    if measured:
        add("silence", "silence", silent, np.ones(n, bool), "descriptors")
    else:
        quiet_truth = (np.asarray(truth["n_active"]) == 0) & ~np.asarray(truth["is_drum"], bool)
        add("silence", "silence", quiet_truth, labelled, "truth")

    # Onsets.
    if measured:
        rise = np.zeros(n, bool)
        rise[1:] = (rms[1:] - rms[:-1] >= ONSET_RISE_DB) & (clip_ids[1:] == clip_ids[:-1]) & (rms[1:] > -50.0)
        thresholds["onset_rise_db"] = ONSET_RISE_DB
    else:
        rise = np.zeros(n, bool)
    onset_t = np.asarray(truth["onset"], bool) if has_truth else np.zeros(n, bool)
    add("onset", "onset", np.where(labelled, onset_t, rise), labelled | dm, both)

    if has_truth:
        is_drum = np.asarray(truth["is_drum"], bool)
        n_active = np.asarray(truth["n_active"])
        fr = float(frames.frame_rate) or 75.0
        back = max(1, int(round(SUSTAIN_AFTER_S * fr)))
        add("drums", "drums", is_drum, labelled, "truth")
        add("sustained", "sustained", (n_active > 0) & ~_recent(onset_t, clip_ids, back), labelled, "truth")
        add("polyphonic", "polyphonic", n_active >= 2, labelled, "truth")
        root = np.asarray(truth["chord_root"])
        qual = np.asarray(truth["chord_quality"])
        for k, note in enumerate(NOTE_NAMES):
            add(f"chord {note}", "chord root", root == k, labelled, "truth")
        for k, q in enumerate(CHORD_QUALITIES):
            add(f"chord {q}", "chord quality", qual == k, labelled, "truth")
        fam = np.asarray(truth["family"])
        for k, f in enumerate(FAMILIES):
            add(f"instrument {f}", "instrument family", fam == k, labelled, "truth")

    return ConceptBank(names, np.stack(pos_cols, axis=1), np.stack(val_cols, axis=1), thresholds)


# -- scoring ------------------------------------------------------------------------------------------

def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata's default; scipy.stats itself
    takes seconds to import)."""
    a = np.asarray(x)
    n = a.size
    if n == 0:
        return np.zeros(0, np.float64)
    order = np.argsort(a, kind="stable")
    xs = a[order]
    new = np.empty(n, bool)
    new[0] = True
    new[1:] = xs[1:] != xs[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    out = np.empty(n, np.float64)
    out[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return out


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUROC of `scores` as a detector of `positive` (ties count half); NaN without both classes."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(positive, bool)
    npos = int(y.sum())
    nneg = y.size - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def _group_masks(valid: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Concepts sharing the same validity mask: [(frame mask, concept indices)]."""
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for c in range(valid.shape[1]):
        key = np.packbits(valid[:, c]).tobytes()
        groups.setdefault(key, (valid[:, c], []))[1].append(c)
    return [(m, np.array(cs, np.int64)) for m, cs in groups.values()]


def auroc_table(features: np.ndarray, positive: np.ndarray, valid: np.ndarray, rows: np.ndarray | None = None,
                block: int = 64) -> np.ndarray:
    """AUROC [F, C] of every feature (column of `features`) for every concept, on the frames `rows`
    (default all) where the concept is valid; NaN where a concept has no positive or no negative frame.

    Features are mostly zero: all zeros share one average rank, so only the non-zero activations are
    ranked (cost ~ non-zeros × concepts, not frames × concepts)."""
    x_all = np.asarray(features)
    n, f = x_all.shape
    pos = np.asarray(positive, bool)
    val = np.asarray(valid, bool)
    if pos.shape[0] != n or val.shape != pos.shape:
        raise UsageError("features, positive and valid must have one row per frame")
    sel = np.ones(n, bool) if rows is None else np.zeros(n, bool)
    if rows is not None:
        sel[np.asarray(rows)] = True
    out = np.full((f, pos.shape[1]), np.nan)
    groups = []
    for m, cs in _group_masks(val):
        idx = np.flatnonzero(m & sel)
        if idx.size == 0:
            continue
        y = pos[np.ix_(idx, cs)].astype(np.float64)  # [n_g, c]
        npos = y.sum(axis=0)
        nneg = idx.size - npos
        groups.append((idx, cs, y, npos, nneg))
    for s in range(0, f, block):
        cols = np.arange(s, min(f, s + block))
        xb = np.ascontiguousarray(x_all[:, cols].T, dtype=np.float64)  # [b, N]
        for idx, cs, y, npos, nneg in groups:
            ok = (npos > 0) & (nneg > 0)
            ng = idx.size
            for r, j in enumerate(cols):
                x = xb[r, idx]
                if np.any(x < 0):
                    ranks = rankdata(x)
                    sum_pos = ranks @ y
                else:
                    nz = np.flatnonzero(x > 0)
                    n0 = ng - nz.size
                    r0 = (n0 + 1) / 2.0
                    if nz.size:
                        ynz = y[nz]
                        rnz = n0 + rankdata(x[nz])
                        sum_pos = r0 * (npos - ynz.sum(axis=0)) + rnz @ ynz
                    else:
                        sum_pos = r0 * npos
                with np.errstate(divide="ignore", invalid="ignore"):
                    a = (sum_pos - npos * (npos + 1) / 2.0) / (npos * nneg)
                out[j, cs] = np.where(ok, a, np.nan)
    return out


def random_features(latents: np.ndarray, d_sae: int, k: int, seed: int = 0, center: np.ndarray | None = None,
                    chunk: int = 16384) -> np.ndarray:
    """A random TopK encoder of `d_sae` unit-norm Gaussian directions on latents centred on `center`
    (default their mean): the control for `label_features`."""
    z = np.asarray(latents, np.float32)
    if z.ndim != 2:
        raise UsageError(f"latents must be [T, D], got shape {tuple(z.shape)}")
    if not 1 <= k <= d_sae:
        raise UsageError(f"k must be in 1..{d_sae}, got {k}")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((z.shape[1], d_sae)).astype(np.float32)
    w /= np.maximum(np.linalg.norm(w, axis=0, keepdims=True), 1e-8)
    c = z.mean(axis=0) if center is None else np.asarray(center, np.float32)
    out = np.zeros((z.shape[0], d_sae), np.float32)
    for a in range(0, z.shape[0], chunk):
        h = np.maximum((z[a : a + chunk] - c) @ w, 0.0)
        if k < d_sae:
            keep = np.argpartition(-h, k - 1, axis=1)[:, :k]
            rows = np.arange(h.shape[0])[:, None]
            o = np.zeros_like(h)
            o[rows, keep] = h[rows, keep]
            h = o
        out[a : a + chunk] = h
    return out


@dataclass
class LabelResult:
    """What `label_features` found; `to_json` is the labels.json body."""

    bank: ConceptBank
    train_auc: np.ndarray  # [F, C]
    test_auc: np.ndarray  # [F, C]
    eligible: np.ndarray  # [C] concept scored on both sides
    fires: np.ndarray  # [F] frames where each feature fires (all analysed frames)
    density: np.ndarray  # [F]
    features: dict[int, dict[str, Any]]
    summary: dict[str, Any]
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        concepts = []
        for c, con in enumerate(self.bank.concepts):
            concepts.append({"name": con.name, "group": con.group, "source": con.source,
                             "train_positives": int(self.meta["_train_pos"][c]),
                             "test_positives": int(self.meta["_test_pos"][c]), "scored": bool(self.eligible[c])})
        meta = {k: v for k, v in self.meta.items() if not k.startswith("_")}
        return {"format": LABELS_FORMAT, "version": LABELS_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta,
                "concepts": concepts, "summary": self.summary,
                "features": {str(j): v for j, v in sorted(self.features.items())}}


def _summary(best: np.ndarray, live: np.ndarray, groups: list[str | None],
             entries: dict[int, dict[str, Any]] | None = None, testable: np.ndarray | None = None) -> dict[str, Any]:
    b = best[live]
    scored = b[np.isfinite(b)]
    n_live = int(live.sum())
    good = int((scored >= GOOD_LABEL).sum())
    expl = int((scored >= UNEXPLAINED_BELOW).sum())
    by_group: dict[str, int] = {}
    for j in np.flatnonzero(live):
        g = groups[j]
        if g is not None and np.isfinite(best[j]) and best[j] >= GOOD_LABEL:
            by_group[g] = by_group.get(g, 0) + 1
    return {"features": int(best.size), "live": n_live, "scored": int(scored.size),
            "labelled": good, "share_labelled": good / n_live if n_live else 0.0,
            "explained": expl, "share_explained": expl / n_live if n_live else 0.0,
            "mean_best_auroc": float(scored.mean()) if scored.size else float("nan"),
            "median_best_auroc": float(np.median(scored)) if scored.size else float("nan"),
            "best_auroc_quantiles": {str(q): float(np.quantile(scored, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
            if scored.size else {},
            "by_group": dict(sorted(by_group.items(), key=lambda kv: -kv[1])),
            **_testable_summary(best, testable), **_precision_summary(entries or {}, n_live)}


def _testable_summary(best: np.ndarray, testable: np.ndarray | None) -> dict[str, Any]:
    """The label share among features that fire often enough on both sides of the split to be judged
    (a feature firing on three frames is live but can hardly detect anything)."""
    if testable is None:
        return {}
    n = int(testable.sum())
    b = best[testable]
    good = int((np.isfinite(b) & (b >= GOOD_LABEL)).sum())
    return {"testable": n, "labelled_testable": good, "share_labelled_testable": good / n if n else 0.0}


def _precision_summary(entries: dict[int, dict[str, Any]], n_live: int) -> dict[str, Any]:
    """How specific the best concepts are on held-out clips (see the module docstring)."""
    prec = np.array([e["precision"] for e in entries.values() if isinstance(e.get("precision"), float)])
    topp = np.array([e["top_precision"] for e in entries.values() if isinstance(e.get("top_precision"), float)])
    lift = np.array([e["lift"] for e in entries.values() if isinstance(e.get("lift"), float)])
    if not prec.size:
        return {}
    return {"median_precision": float(np.median(prec)), "median_top_precision": float(np.median(topp)) if topp.size
            else float("nan"), "median_lift": float(np.median(lift)) if lift.size else float("nan"),
            "share_top_precision_08": float((topp >= 0.8).sum() / n_live) if n_live else 0.0}


def _choose(crit: np.ndarray, train_auc: np.ndarray, test_auc: np.ndarray, eligible: np.ndarray,
            top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per feature: the eligible concepts ranked by the train-clip criterion `crit` [F, top] (-1 padded),
    and the held-out / train AUROC of the best one."""
    tr = np.where(eligible[None, :] & np.isfinite(crit), crit, -np.inf)
    order = np.argsort(-tr, axis=1, kind="stable")[:, :top]
    ranked = np.where(np.take_along_axis(tr, order, axis=1) > -np.inf, order, -1)
    best = ranked[:, 0]
    rows = np.arange(train_auc.shape[0])
    best_test = np.where(best >= 0, test_auc[rows, np.maximum(best, 0)], np.nan)
    best_train = np.where(best >= 0, train_auc[rows, np.maximum(best, 0)], np.nan)
    return ranked, best_test, best_train


def corr_table(features: np.ndarray, positive: np.ndarray, valid: np.ndarray, rows: np.ndarray | None = None,
               block: int = 64) -> np.ndarray:
    """Pearson correlation [F, C] between each feature's activation and each concept's 0/1 indicator, on
    the frames `rows` (default all) where the concept is valid; NaN where either is constant."""
    x_all = np.asarray(features)
    n, f = x_all.shape
    pos = np.asarray(positive, bool)
    val = np.asarray(valid, bool)
    if pos.shape[0] != n or val.shape != pos.shape:
        raise UsageError("features, positive and valid must have one row per frame")
    sel = np.ones(n, bool) if rows is None else np.zeros(n, bool)
    if rows is not None:
        sel[np.asarray(rows)] = True
    out = np.full((f, pos.shape[1]), np.nan)
    groups = []
    for m, cs in _group_masks(val):
        idx = np.flatnonzero(m & sel)
        if idx.size < 2:
            continue
        y = pos[np.ix_(idx, cs)].astype(np.float64)
        y -= y.mean(axis=0)
        groups.append((idx, cs, y, np.sqrt((y ** 2).sum(axis=0))))
    for s in range(0, f, block):
        cols = np.arange(s, min(f, s + block))
        xb = np.ascontiguousarray(x_all[:, cols].T, dtype=np.float64)  # [b, N]
        for idx, cs, y, ny in groups:
            xg = xb[:, idx]
            xg = xg - xg.mean(axis=1, keepdims=True)
            nx = np.sqrt((xg ** 2).sum(axis=1))
            with np.errstate(divide="ignore", invalid="ignore"):
                c = (xg @ y) / (nx[:, None] * ny[None, :])
            out[np.ix_(cols, cs)] = np.where((nx[:, None] > 0) & (ny[None, :] > 0), c, np.nan)
    return out


def _entries(x: np.ndarray, bank: ConceptBank, te_rows: np.ndarray, tr: np.ndarray, te: np.ndarray,
             ranked: np.ndarray, best_test: np.ndarray, best_train: np.ndarray,
             fires: np.ndarray) -> dict[int, dict[str, Any]]:
    """The labels.json entry of every feature (module docstring)."""
    names = bank.names
    groups_of = [c.group for c in bank.concepts]
    n = x.shape[0]
    feats: dict[int, dict[str, Any]] = {}
    for j in range(x.shape[1]):
        if fires[j] == 0:
            feats[j] = {"label": "dead", "score": None, "explained": False, "density": 0.0, "top": []}
            continue
        entry: dict[str, Any] = {"density": float(fires[j] / n)}
        tops = [{"concept": names[c], "group": groups_of[c], "score": _num(te[j, c]), "train_score": _num(tr[j, c])}
                for c in ranked[j] if c >= 0]
        c0 = int(ranked[j, 0])
        if c0 < 0 or not np.isfinite(best_test[j]):
            entry.update({"label": "unexplained", "score": None, "explained": False, "top": tops})
        else:
            act = x[te_rows, j]
            on = act > 0
            ok = bank.valid[te_rows, c0]
            y = bank.positive[te_rows, c0] & ok
            fired = int((on & ok).sum())
            precision = float((on & y).sum() / fired) if fired else None
            recall = float((on & y).sum() / max(1, int(y.sum())))
            base = float(y.sum() / max(1, int(ok.sum())))
            top_precision = None
            if fired:  # the strongest held-out activations: top 10% of the firing frames (at least one)
                idx = np.flatnonzero(on & ok)
                keep = idx[np.argsort(-act[idx], kind="stable")[: max(1, int(np.ceil(0.1 * idx.size)))]]
                top_precision = float(y[keep].mean())
            explained = bool(best_test[j] >= UNEXPLAINED_BELOW)
            entry.update({"label": names[c0] if explained else "unexplained", "concept": names[c0],
                          "group": groups_of[c0], "score": float(best_test[j]), "train_score": float(best_train[j]),
                          "explained": explained, "precision": precision, "recall": recall, "base_rate": base,
                          "lift": precision / base if precision is not None and base > 0 else None,
                          "top_precision": top_precision, "top": tops})
        feats[j] = entry
    return feats


def label_features(
    frames: Any,
    features: np.ndarray | None = None,
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    min_positives: int = 20,
    top: int = TOP_CONCEPTS,
    control: bool = True,
    control_k: int | None = None,
    bank: ConceptBank | None = None,
    select: str = "correlation",
    log: Log | None = None,
) -> LabelResult:
    """Label every feature of `frames.features` (or `features` [N, F]) with held-out AUROC scores; the
    best concept is chosen on the train clips by `select` ("correlation" or "auroc", module docstring)."""
    from workbench.core.analysis.corpus import split_by_clip

    if select not in SELECTIONS:
        raise UsageError(f"unknown concept selection '{select}'; known: {', '.join(SELECTIONS)}")
    x = frames.features if features is None else np.asarray(features)
    if x.ndim != 2 or x.shape[0] != len(frames) or x.shape[1] == 0:
        raise UsageError("label_features needs SAE features [frames, d_sae] for the corpus frames")
    if bank is None:
        bank = concept_bank(frames)
    train, test = split_by_clip(frames, test_fraction, seed)
    tr_rows, te_rows = np.flatnonzero(train), np.flatnonzero(test)
    pv = bank.positive & bank.valid
    nv = ~bank.positive & bank.valid
    tr_pos, tr_neg = pv[tr_rows].sum(axis=0), nv[tr_rows].sum(axis=0)
    te_pos, te_neg = pv[te_rows].sum(axis=0), nv[te_rows].sum(axis=0)
    eligible = (np.minimum(tr_pos, tr_neg) >= min_positives) & (np.minimum(te_pos, te_neg) >= min_positives)
    if not eligible.any():
        raise DataError(f"no concept has {min_positives} positive and negative frames in both the train and the "
                        f"held-out clips; give more (or more varied) audio")

    def run(xf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cols = np.flatnonzero(eligible)
        tr = np.full((xf.shape[1], len(bank.concepts)), np.nan)
        te = np.full_like(tr, np.nan)
        tr[:, cols] = auroc_table(xf, bank.positive[:, cols], bank.valid[:, cols], tr_rows)
        te[:, cols] = auroc_table(xf, bank.positive[:, cols], bank.valid[:, cols], te_rows)
        crit = tr
        if select == "correlation":
            crit = np.full_like(tr, np.nan)
            crit[:, cols] = corr_table(xf, bank.positive[:, cols], bank.valid[:, cols], tr_rows)
        ranked, best_test, best_train = _choose(crit, tr, te, eligible, top)
        return tr, te, ranked, best_test, best_train

    if log:
        log(f"scoring {x.shape[1]} features against {int(eligible.sum())} concepts")
    fires = (x > 0).sum(axis=0).astype(np.int64)
    live = fires > 0
    tr, te, ranked, best_test, best_train = run(x)
    groups_of = [c.group for c in bank.concepts]
    feats = _entries(x, bank, te_rows, tr, te, ranked, best_test, best_train, fires)
    best_group = [groups_of[int(ranked[j, 0])] if ranked[j, 0] >= 0 else None for j in range(x.shape[1])]
    def testable(xf: np.ndarray) -> np.ndarray:
        return (((xf[tr_rows] > 0).sum(axis=0) >= min_positives)
                & ((xf[te_rows] > 0).sum(axis=0) >= min_positives))

    summary = _summary(best_test, live, best_group, feats, testable(x))
    if control:
        k = control_k
        if k is None:
            l0 = float((x > 0).sum(axis=1).mean())
            k = int(np.clip(round(l0), 1, x.shape[1]))
        if log:
            log(f"control: random TopK encoder, {x.shape[1]} directions, k={k}")
        center = np.asarray(frames.latents, np.float64)[tr_rows].mean(axis=0).astype(np.float32)
        xr = random_features(frames.latents, x.shape[1], k, seed=seed + 1, center=center)
        tr_r, te_r, ranked_r, best_r, best_tr_r = run(xr)
        fires_r = (xr > 0).sum(axis=0).astype(np.int64)
        live_r = fires_r > 0
        groups_r = [groups_of[int(ranked_r[j, 0])] if ranked_r[j, 0] >= 0 else None for j in range(xr.shape[1])]
        feats_r = _entries(xr, bank, te_rows, tr_r, te_r, ranked_r, best_r, best_tr_r, fires_r)
        summary["random_control"] = {**_summary(best_r, live_r, groups_r, feats_r, testable(xr)), "k": k,
                                     "method": "random TopK encoder: unit Gaussian directions on latents "
                                               "centred on the train mean, same d_sae"}
    tr_clips = np.unique(frames.clip_ids[train])
    te_clips = np.unique(frames.clip_ids[test])
    meta = {
        "method": {"score": "held-out AUROC of the activation as a detector of the concept",
                   "selection": f"best concept on the train clips by {select}, scored (AUROC) on the held-out clips",
                   "select": select,
                   "unexplained_below": UNEXPLAINED_BELOW, "good_label": GOOD_LABEL,
                   "min_positives": min_positives, "test_fraction": test_fraction, "seed": seed,
                   "live": "fires on at least one analysed frame", "thresholds": bank.thresholds},
        "corpus": {"clips": frames.num_clips, "frames": len(frames), "train_clips": int(tr_clips.size),
                   "test_clips": int(te_clips.size), "train_frames": int(tr_rows.size),
                   "test_frames": int(te_rows.size), "frame_rate": float(frames.frame_rate),
                   "labelled_frames": int(np.asarray(frames.truth.get("has_labels", np.zeros(0, bool))).sum())
                   if frames.truth else 0},
        "_train_pos": tr_pos, "_test_pos": te_pos,
    }
    return LabelResult(bank, tr, te, eligible, fires, fires / max(1, x.shape[0]), feats, summary, meta)


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


# -- files --------------------------------------------------------------------------------------------

def save_labels(result: LabelResult | dict[str, Any], folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write labels.json into the SAE folder atomically."""
    from workbench.core.fileio import atomic_write_json
    from workbench.core.sae.io import _jsonable

    d = Path(folder)
    if not d.is_dir():
        raise ModelFileError(f"{d}: no such SAE folder")
    doc = result.to_json() if isinstance(result, LabelResult) else dict(result)
    doc.update(extra or {})
    try:
        atomic_write_json(d / LABELS_JSON, _jsonable(doc))
    except OSError as exc:
        raise ModelFileError(f"{d}: cannot write {LABELS_JSON} ({exc.strerror or exc})") from None
    return d / LABELS_JSON


def read_labels_doc(folder: str | Path) -> dict[str, Any] | None:
    """The labels.json of an SAE folder (None when absent); a damaged file is a one-line error."""
    p = Path(folder) / LABELS_JSON
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{p}: cannot read labels ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != LABELS_FORMAT or not isinstance(doc.get("features"), dict):
        raise ModelFileError(f"{p}: not a workbench labels file; run `workbench label` again")
    return doc


def load_labels(folder: str | Path) -> dict[int, tuple[str, float | None]]:
    """{feature: (label, held-out AUROC or None)} from the SAE folder's labels.json ({} when absent)."""
    doc = read_labels_doc(folder)
    if doc is None:
        return {}
    out: dict[int, tuple[str, float | None]] = {}
    for key, v in doc["features"].items():
        try:
            j = int(key)
        except (TypeError, ValueError):
            continue
        if isinstance(v, dict) and isinstance(v.get("label"), str):
            s = v.get("score")
            out[j] = (v["label"], float(s) if isinstance(s, int | float) else None)
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """Two lines for the terminal: the SAE's label share and the random control's."""
    def line(name: str, s: dict[str, Any]) -> str:
        return (f"{name}: {s['labelled']}/{s['live']} live features ({100 * s['share_labelled']:.1f}%) have a label "
                f"with held-out AUROC >= {GOOD_LABEL}; {100 * s['share_explained']:.1f}% >= {UNEXPLAINED_BELOW}; "
                f"median best AUROC {s['median_best_auroc']:.3f}")

    out = [line("SAE", summary)]
    if "random_control" in summary:
        out.append(line("random control", summary["random_control"]))
    return "\n".join(out)
