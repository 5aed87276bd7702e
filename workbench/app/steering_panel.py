"""Steering panel: one slider row per chosen feature (mode, value, optional time range).

The panel is a view of the model's edit list: it never holds edits of its own. A user gesture becomes
an `editRequested(edit, merge_key)` signal; the window pushes it through the undo stack, the model
announces the change, and the panel redraws from the model (with its signals blocked, so nothing
echoes). `merge_key` lets one slider drag become one undo step.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from workbench.core.steering import Edit, ProbeEdit
from workbench.core.workspace import NEUTRAL

RANGES = {"scale": (-2.0, 4.0), "add": (-2.0, 2.0), "set": (0.0, 2.0)}
MODE_TIPS = {
    "scale": "Multiply the feature's activation (1 = unchanged, 0 = silence it)",
    "add": "Add to the activation, in units of the feature's maximum on the training data",
    "set": "Set the activation, in units of the feature's maximum on the training data",
}


class EditRow(QFrame):
    changed = Signal(object, object)  # (Edit, merge_key)
    removeRequested = Signal(int)
    rangeRequested = Signal(int)

    def __init__(self, edit: Edit, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.edit = edit
        self.gesture = 0
        self.name = QLabel()
        self.name.setMinimumWidth(90)
        self.name.setMaximumWidth(150)
        self.mode = QComboBox()
        self.mode.addItems(list(RANGES))
        for i, m in enumerate(RANGES):
            self.mode.setItemData(i, MODE_TIPS[m], Qt.ItemDataRole.ToolTipRole)
        self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setDecimals(2)
        self.slider.setSingleStep(0.05)
        self.slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.range_btn = QToolButton()
        self.range_btn.setText("⇔")
        self.range_btn.setCheckable(True)
        self.range_btn.setToolTip("Limit this edit to the time selection (Shift+drag on the timeline); "
                                  "click again to apply it to the whole clip")
        self.range_label = QLabel("")
        self.range_label.setStyleSheet("color: #aaa")
        self.remove_btn = QToolButton()
        self.remove_btn.setText("✕")
        self.remove_btn.setToolTip("Remove this slider")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.name, 1)
        top.addWidget(self.range_label)
        top.addWidget(self.range_btn)
        top.addWidget(self.remove_btn)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.mode)
        bottom.addWidget(self.slider, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addLayout(bottom)
        self.set_edit(edit, label)
        self.mode.currentTextChanged.connect(self._mode_changed)
        self.slider.valueChanged.connect(self._value_changed)
        self.slider.sliderReleased.connect(self._gesture_end)
        self.slider.editingFinished.connect(self._gesture_end)
        self.remove_btn.clicked.connect(lambda: self.removeRequested.emit(self.edit.feature))
        self.range_btn.clicked.connect(self._range_clicked)

    def set_edit(self, edit: Edit, label: str) -> None:
        self.edit = edit
        for w in (self.mode, self.slider, self.range_btn):
            w.blockSignals(True)
        try:
            self.name.setText(f"<b>#{edit.feature}</b> {label}")
            self.name.setToolTip(f"feature {edit.feature}" + (f": {label}" if label else ""))
            self.mode.setCurrentText(edit.mode)
            self.mode.setToolTip(MODE_TIPS[edit.mode])
            lo, hi = RANGES[edit.mode]
            self.slider.setRange(min(lo, edit.value), max(hi, edit.value))
            self.slider.setValue(edit.value)
            ranged = edit.t0 is not None or edit.t1 is not None
            self.range_btn.setChecked(ranged)
            self.range_label.setText(f"{edit.t0 or 0:.2f}–{edit.t1 if edit.t1 is not None else 0:.2f} s" if ranged else "")
        finally:
            for w in (self.mode, self.slider, self.range_btn):
                w.blockSignals(False)

    def _mode_changed(self, mode: str) -> None:
        self.gesture += 1
        self.changed.emit(replace(self.edit, mode=mode, value=NEUTRAL[mode]), None)

    def _value_changed(self, v: float) -> None:
        self.changed.emit(replace(self.edit, value=round(float(v), 4)), (self.edit.feature, "value", self.gesture))

    def _gesture_end(self) -> None:
        self.gesture += 1

    def _range_clicked(self, checked: bool) -> None:
        self.gesture += 1
        if checked:
            self.rangeRequested.emit(self.edit.feature)
        else:
            self.changed.emit(replace(self.edit, t0=None, t1=None), None)


class SteeringPanel(QWidget):
    editRequested = Signal(object, object)  # (Edit, merge_key)
    removeRequested = Signal(int)
    rangeRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[int, EditRow] = {}
        self.hint = QLabel("Select features in the table, then press <b>Steer</b> (or double-click a row) "
                           "to get a slider. Drag sliders while playing to hear the change.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #aaa; padding: 8px")
        self.toolbar = QHBoxLayout()
        self.toolbar.setContentsMargins(0, 0, 0, 0)
        inner = QWidget()
        self.rows_layout = QVBoxLayout(inner)
        self.rows_layout.setContentsMargins(2, 2, 2, 2)
        self.rows_layout.setSpacing(3)
        self.rows_layout.addWidget(self.hint)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(self.toolbar)
        lay.addWidget(scroll, 1)
        self._layout = lay

    def set_top_widget(self, w: QWidget) -> None:
        """A widget between the toolbar and the feature rows (the probe-steering group)."""
        self._layout.insertWidget(1, w)

    def set_edits(self, edits: tuple[Edit, ...], labels: dict[int, str], force: bool = False) -> None:
        """Show the model's edits; `force` redraws rows even when their edit did not change (to undo
        a widget state the model refused, e.g. a range toggle without a selection). Probe edits have their own rows
        (probe_panel.ProbeSteering)."""
        edits = tuple(e for e in edits if not isinstance(e, ProbeEdit))
        wanted = [e.feature for e in edits]
        for f in list(self.rows):
            if f not in wanted:
                row = self.rows.pop(f)
                self.rows_layout.removeWidget(row)
                row.deleteLater()
        for i, e in enumerate(edits):
            row = self.rows.get(e.feature)
            if row is None:
                row = EditRow(e, labels.get(e.feature, ""))
                row.changed.connect(self.editRequested)
                row.removeRequested.connect(self.removeRequested)
                row.rangeRequested.connect(self.rangeRequested)
                self.rows[e.feature] = row
                self.rows_layout.insertWidget(i + 1, row)
            elif force or row.edit != e:
                row.set_edit(e, labels.get(e.feature, ""))
        self.hint.setVisible(not edits)
