"""Probes in the app: the accuracy table of probes.json and the probe-steering sliders.

`ProbePanel` reads the SAE folder's probes (probes.json for the scores, `probes.load_probes` for the
probes themselves, which the property plots need) off the GUI thread whenever the SAE changes, and shows
per property the held-out accuracy, balanced accuracy and macro-F1 of the probe on the SAE's features,
on the raw codec latents (the ceiling of a linear read-out) and on a random SAE of the same size (the
floor). Without probes it says which command makes them.

`ProbeSteering` is one row per property in the steering panel: a relative target (pitch in semitones,
loudness and timbre in bins of 3 dB / 0.3 octave) and a strength α. Like the feature sliders it holds no
edits of its own: a move becomes a `probeEditRequested`, the window pushes it through the undo stack as
a `ProbeEdit` (target 0 = no edit), and the rows redraw from the model's edit list. Each row's radio
button chooses the property the timeline plots.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider, QLabeledSlider

from workbench.app.worker import Task
from workbench.core.analysis.explore import probe_metrics_rows
from workbench.core.errors import WorkbenchError
from workbench.core.sae_bridge import LoadedSAE
from workbench.core.steering import PROBE_PROPERTIES, Edit, ProbeEdit

INPUT_NAMES = {"sae": "SAE features", "latents": "raw latents", "random_sae": "random SAE"}
INPUT_TIPS = {
    "sae": "Probe on the SAE's features: what probe steering uses",
    "latents": "Probe on the raw codec latents: the ceiling a linear read-out of the codec allows",
    "random_sae": "Probe on a random SAE of the same size: the floor that dictionary size alone gives",
}
PROP_NAMES = {"pitch": "Pitch", "loudness": "Loudness", "timbre": "Timbre"}
STEP_RANGE = {"pitch": 12, "loudness": 5, "timbre": 5}
STEP_UNITS = {"pitch": "semitones", "loudness": "bins of 3 dB", "timbre": "bins of 0.3 octave (spectral centroid)"}
ALPHA_RANGE = (0.0, 2.0)
# The CLI's default α is 1. In the app loudness and timbre start gentler: on the default SAE,
# probe:loudness=+3 at α = 1 raised the level by ~43 dB (peaks 30× full scale), at α = 0.25 by ~11 dB
# (measured on a synthetic melody), and a first drag should not be a blast in the headphones. Pitch edits
# keep the level (the codec's loudness channel is held) and barely move below α = 1 (scripts/eval_probes.py:
# at 0.5 the median shift of "+2" was 0.01 semitones, at 1 the mean +2.45), so pitch starts at 1.
DEFAULT_ALPHA = {"pitch": 1.0, "loudness": 0.25, "timbre": 0.25}
SENTINEL = {p: -1 - i for i, p in enumerate(PROBE_PROPERTIES)}
TARGET_TIP = "Move every frame this many {units} from where the probe reads it (0 = no change)"
ALPHA_TIP = "Strength α: the step along the probe's direction, in units of a typical frame's whole feature vector"
RANGE_TIP = ("Limit this edit to the time selection (Shift+drag on the timeline); click again to apply it to the "
             "whole clip")


def no_probes_text(folder: Path | None) -> str:
    where = str(folder) if folder is not None else "SAE_DIR"
    return (f"This SAE has no probes. Create them with<br><code>workbench probe AUDIO_OR_DIR… --sae "
            f"{html.escape(where)}</code><br>then press Reload.")


@dataclass
class ProbeInfo:
    folder: Path | None
    doc: dict[str, Any] | None = None  # probes.json
    probes: Any = None  # probes.ProbeSet
    error: str = ""
    loaded: bool = True  # False while the folder is being read

    @property
    def available(self) -> bool:
        return self.probes is not None and bool(getattr(self.probes, "probes", None))


def load_probe_info(folder: Path | None, d_sae: int) -> ProbeInfo:
    """probes.json + the probes of an SAE folder; missing → empty info, damaged → `error` (one line)."""
    from workbench.core.analysis.probes import has_probes, load_probes

    if folder is None or not has_probes(folder):
        return ProbeInfo(folder)
    try:
        doc = json.loads((Path(folder) / "probes.json").read_text(encoding="utf-8"))
        ps = load_probes(folder, d_sae=d_sae)
    except WorkbenchError as exc:
        return ProbeInfo(folder, error=exc.message)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return ProbeInfo(folder, error=f"cannot read probes: {exc}")
    return ProbeInfo(folder, doc if isinstance(doc, dict) else None, ps)


def _cell(text: str, num: bool = True, bold: bool = False, tip: str = "") -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if num:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if bold:
        f = QFont(it.font())
        f.setBold(True)
        it.setFont(f)
    if tip:
        it.setToolTip(tip)
    return it


class ProbePanel(QWidget):
    """Probe scores of the loaded SAE; announces the probes (or None) when they are read."""

    probesChanged = Signal(object)  # ProbeInfo
    reloadRequested = Signal()

    COLUMNS = ["Property", "Input", "Accuracy", "Bal. acc.", "Macro-F1"]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sae: LoadedSAE | None = None
        self.info = ProbeInfo(None)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet("color: #666; padding: 6px")
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for c, tip in enumerate(["", "What the probe reads", "Share of held-out frames classified right",
                                 "Mean recall over the classes present in the held-out frames (not fooled by "
                                 "a majority class)", "Mean F1 over the classes present in truth or prediction"]):
            head = self.table.horizontalHeaderItem(c)
            if tip and head is not None:
                head.setToolTip(tip)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #666")
        self.reload_btn = QPushButton("Reload")
        self.reload_btn.setToolTip("Read the SAE folder again (after running workbench probe or workbench label)")
        self.reload_btn.clicked.connect(self.reloadRequested)
        title = QLabel("<b>Probe accuracy</b> (held-out clips)")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(title, 1)
        top.addWidget(self.reload_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.message, 1)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.notes)
        self._show_message("No SAE loaded.")

    def set_sae(self, sae: LoadedSAE | None) -> None:
        self.sae = sae
        reading = sae is not None and sae.folder is not None
        self.info = ProbeInfo(None if sae is None else sae.folder, loaded=not reading)
        self.probesChanged.emit(self.info)
        if sae is None:
            self._show_message("No SAE loaded.")
            return
        if sae.folder is None:
            self._show_message(no_probes_text(None))
            return
        self._show_message("reading probes…")
        folder, d_sae = sae.folder, sae.d_sae
        t = Task(lambda job: load_probe_info(folder, d_sae), "probes")
        t.succeeded.connect(lambda info, s=sae: self._on_loaded(s, info))
        t.failed.connect(lambda m, s=sae: self._on_loaded(s, ProbeInfo(folder, error=m)))
        t.start_task()

    def _on_loaded(self, sae: LoadedSAE, info: ProbeInfo) -> None:
        if sae is not self.sae:
            return
        self.info = info
        if info.error:
            self._show_message(f"The probes cannot be used: {html.escape(info.error)}")
        elif not info.available:
            self._show_message(no_probes_text(info.folder))
        else:
            self._fill(info.doc or {})
        self.probesChanged.emit(info)

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()
        self.table.setRowCount(0)
        self.table.hide()
        self.notes.setText("")

    def _fill(self, doc: dict[str, Any]) -> None:
        rows = probe_metrics_rows(doc)
        if not rows:
            self._show_message("probes.json holds no scores (the probes can still steer).")
            return
        self.message.hide()
        self.table.show()
        self.table.setRowCount(len(rows))
        best: dict[tuple[str, str, str], float] = {}
        for r in rows:
            for k in ("accuracy", "balanced_accuracy", "macro_f1"):
                v = r[k]
                if math.isfinite(v):
                    key = (r["property"], r["subset"], k)
                    best[key] = max(best.get(key, -1.0), v)
        prev: tuple[str, str] | None = None
        chance: dict[str, float] = {}
        for i, r in enumerate(rows):
            prop, subset = r["property"], r["subset"]
            first = (prop, subset) != prev
            prev = (prop, subset)
            if math.isfinite(r["chance"]) and not subset:
                chance.setdefault(prop, r["chance"])
            # a subset's short name is what precedes its parenthesised detail ("monophonic (note+melody)")
            name = PROP_NAMES.get(prop, prop) + (f", {subset.split(' (')[0]}" if subset else "")
            self.table.setItem(i, 0, _cell(name if first else "", num=False,
                                           tip=(f"The same probes scored only on the held-out frames of {subset} "
                                                f"({r['frames']} frames)" if subset and first else "")))
            self.table.setItem(i, 1, _cell(INPUT_NAMES.get(r["input"], r["input"]), num=False,
                                           tip=INPUT_TIPS.get(r["input"], "")))
            for c, k in enumerate(("accuracy", "balanced_accuracy", "macro_f1"), start=2):
                v = r[k]
                text = f"{v:.3f}" if math.isfinite(v) else "–"
                self.table.setItem(i, c, _cell(text, bold=math.isfinite(v) and v == best.get((prop, subset, k)),
                                               tip=f"{r['frames']} held-out frames" if r["frames"] else ""))
        corpus = doc.get("corpus") if isinstance(doc.get("corpus"), dict) else {}
        parts = []
        if corpus:
            parts.append(f"{corpus.get('test_clips', '?')} held-out clips ({corpus.get('test_frames', '?')} frames), "
                         f"trained on {corpus.get('train_clips', '?')} clips")
        if chance:
            parts.append("majority class: " + ", ".join(f"{p} {v:.3f}" for p, v in chance.items()))
        parts.append("bold: best of the three inputs")
        self.notes.setText("; ".join(parts))


class ProbeRow:
    """The widgets of one property (in ProbeSteering's grid)."""

    def __init__(self, prop: str) -> None:
        self.prop = prop
        self.gesture = 0
        self.alpha = DEFAULT_ALPHA[prop]  # kept while there is no edit, so the next one starts from it
        self.edit: ProbeEdit | None = None
        self.radio = QRadioButton(PROP_NAMES[prop])
        self.radio.setToolTip(f"Plot {prop} over time in the timeline's last row")
        n = STEP_RANGE[prop]
        self.target = QLabeledSlider(Qt.Orientation.Horizontal)
        self.target.setRange(-n, n)
        self.target.setValue(0)
        self.target.setToolTip(TARGET_TIP.format(units=STEP_UNITS[prop]))
        self.strength = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(*ALPHA_RANGE)
        self.strength.setDecimals(2)
        self.strength.setSingleStep(0.05)  # type: ignore[arg-type]  # superqt's stub says int
        self.strength.setValue(DEFAULT_ALPHA[prop])
        self.strength.setToolTip(ALPHA_TIP)
        self.range_btn = QToolButton()
        self.range_btn.setText("⇔")
        self.range_btn.setCheckable(True)
        self.range_btn.setToolTip(RANGE_TIP)
        self.note = QLabel("")
        self.note.setStyleSheet("color: #aaa")


class ProbeSteering(QGroupBox):
    probeEditRequested = Signal(int, object, object)  # (sentinel feature, ProbeEdit or None, merge_key)
    rangeRequested = Signal(int)
    propertyChosen = Signal(str)
    sourceChosen = Signal(str)

    SOURCES = [("probe", "as the probe reads it"), ("measured", "measured (CREPE pitch, RMS, centroid)")]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Probe steering", parent)
        self.available = False
        self.rows: dict[str, ProbeRow] = {}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        head_t = QLabel("target (semitones · bins)")
        head_a = QLabel("strength α")
        head_p = QLabel("plot")
        for h in (head_p, head_t, head_a):
            h.setStyleSheet("color: #999")
        grid.addWidget(head_p, 0, 0)
        grid.addWidget(head_t, 0, 1)
        grid.addWidget(head_a, 0, 2)
        self.group = QButtonGroup(self)
        for i, prop in enumerate(PROBE_PROPERTIES, start=1):
            r = ProbeRow(prop)
            self.rows[prop] = r
            self.group.addButton(r.radio)
            grid.addWidget(r.radio, i, 0)
            grid.addWidget(r.target, i, 1)
            grid.addWidget(r.strength, i, 2)
            grid.addWidget(r.range_btn, i, 3)
            grid.addWidget(r.note, i, 4)
            r.radio.toggled.connect(lambda on, p=prop: self._radio(on, p))
            r.target.valueChanged.connect(lambda v, row=r: self._target_changed(row, int(v)))
            r.strength.valueChanged.connect(lambda v, row=r: self._alpha_changed(row, float(v)))
            for sl in (r.target, r.strength):
                sl.sliderReleased.connect(lambda row=r: self._gesture_end(row))
                sl.editingFinished.connect(lambda row=r: self._gesture_end(row))
            r.range_btn.clicked.connect(lambda checked, row=r: self._range_clicked(row, checked))
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(2, 2)
        self.rows["pitch"].radio.setChecked(True)
        self.source = QComboBox()
        for key, text in self.SOURCES:
            self.source.addItem(text, key)
        self.source.setToolTip("The plotted curve: the probe's class on the SAE features of the (re-encoded) "
                               "audio, or the descriptor measured on the audio")
        self.source.currentIndexChanged.connect(lambda i: self.sourceChosen.emit(self.source.itemData(i)))
        self.source.activated.connect(lambda _i: setattr(self, "_user_chose_source", True))
        self._user_chose_source = False
        self.status = QLabel("")
        self.status.setStyleSheet("color: #999")
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setTextFormat(Qt.TextFormat.RichText)
        self.hint.setStyleSheet("color: #666")
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(QLabel("curve:"))
        bottom.addWidget(self.source)
        bottom.addWidget(self.status, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(3)
        lay.addLayout(grid)
        lay.addWidget(self.hint)
        lay.addLayout(bottom)
        self.set_available(False, no_probes_text(None))

    # -- state from the window --------------------------------------------------------------------
    def set_available(self, ok: bool, reason: str) -> None:
        """Sliders only work with probes; plotting the measured descriptors works without."""
        self.available = ok
        why = reason.replace("<br>", " ").replace("<code>", "").replace("</code>", "")
        for r in self.rows.values():
            for w, tip in ((r.target, TARGET_TIP.format(units=STEP_UNITS[r.prop])), (r.strength, ALPHA_TIP),
                           (r.range_btn, RANGE_TIP)):
                w.setEnabled(ok)
                w.setToolTip(tip if ok else why)
        self.hint.setText("" if ok else reason)
        self.hint.setVisible(not ok)
        self.source.model().item(0).setEnabled(ok)  # type: ignore[attr-defined]
        if not ok and self.source.currentIndex() == 0:
            self.source.setCurrentIndex(1)
        elif ok and self.source.currentIndex() == 1 and not self._user_chose_source:
            self.source.setCurrentIndex(0)

    def _radio(self, on: bool, prop: str) -> None:
        if on:
            self.propertyChosen.emit(prop)

    def current_property(self) -> str:
        return next((p for p, r in self.rows.items() if r.radio.isChecked()), "pitch")

    def current_source(self) -> str:
        return str(self.source.currentData())

    def set_edits(self, edits: tuple[Edit, ...]) -> None:
        """Show the model's probe edits (other edits are the feature rows' business)."""
        by_prop = {e.prop: e for e in edits if isinstance(e, ProbeEdit)}
        for prop, r in self.rows.items():
            e = by_prop.get(prop)
            r.edit = e
            for w in (r.target, r.strength, r.range_btn):
                w.blockSignals(True)
            try:
                if e is None:
                    r.target.setValue(0)
                    r.strength.setValue(r.alpha)
                    r.range_btn.setChecked(False)
                    r.note.setText("")
                else:
                    r.alpha = e.value
                    r.target.setValue(int(e.target) if e.relative else 0)
                    lo, hi = ALPHA_RANGE
                    r.strength.setRange(min(lo, e.value), max(hi, e.value))
                    r.strength.setValue(e.value)
                    ranged = e.t0 is not None or e.t1 is not None
                    r.range_btn.setChecked(ranged)
                    r.note.setText("" if e.relative else f"= class {int(e.target)}")
                    r.note.setToolTip(e.spec())
            finally:
                for w in (r.target, r.strength, r.range_btn):
                    w.blockSignals(False)

    # -- user gestures ----------------------------------------------------------------------------
    def _key(self, r: ProbeRow) -> tuple[int, str, int]:
        return (SENTINEL[r.prop], "probe", r.gesture)

    def _target_changed(self, r: ProbeRow, v: int) -> None:
        if v == 0:
            self.probeEditRequested.emit(SENTINEL[r.prop], None, self._key(r))
            return
        base = r.edit
        if base is not None:
            e = ProbeEdit(value=base.value, prop=r.prop, target=float(v), relative=True, t0=base.t0, t1=base.t1,
                          fade=base.fade)
        else:
            e = ProbeEdit(value=r.alpha, prop=r.prop, target=float(v), relative=True)
        self.probeEditRequested.emit(SENTINEL[r.prop], e, self._key(r))

    def _alpha_changed(self, r: ProbeRow, v: float) -> None:
        r.alpha = round(v, 4)
        base = r.edit
        if base is None:
            return  # no edit yet: the value waits for the first target move
        e = ProbeEdit(value=r.alpha, prop=r.prop, target=base.target, relative=base.relative, t0=base.t0,
                      t1=base.t1, fade=base.fade)
        self.probeEditRequested.emit(SENTINEL[r.prop], e, self._key(r))

    def _gesture_end(self, r: ProbeRow) -> None:
        r.gesture += 1

    def _range_clicked(self, r: ProbeRow, checked: bool) -> None:
        r.gesture += 1
        base = r.edit
        if base is None:
            r.range_btn.setChecked(False)
            return
        if checked:
            self.rangeRequested.emit(SENTINEL[r.prop])
        else:
            e = ProbeEdit(value=base.value, prop=r.prop, target=base.target, relative=base.relative, fade=base.fade)
            self.probeEditRequested.emit(SENTINEL[r.prop], e, None)

