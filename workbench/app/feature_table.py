"""The feature table: id, label + score, density, max activation, activity in this clip.

A QAbstractTableModel over arrays (thousands of rows cost nothing), a QSortFilterProxyModel for sort
and filter (numeric sort through `SORT_ROLE`, text search over id and label, "fires in this clip",
"hide dead"). Selecting rows selects features; double-click or "Steer" adds a slider.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core.sae_bridge import LoadedSAE
from workbench.core.visuals import FeatureSummary, display_maxima

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ["ID", "Label", "Score", "Density", "Max act.", "Clip max", "Clip %"]
TIPS = [
    "Feature index in the SAE",
    "Automatic label (labels.json in the SAE folder)",
    "Label score: how well the feature detects that concept (AUROC)",
    "Firing rate on the SAE's training data",
    "Maximum activation on the training data (the unit of add/set edits)",
    "Maximum activation in this clip, in units of the training maximum (floored at 5% of the median "
    "maximum, so features that hardly fired in training do not swamp the list)",
    "Share of this clip's frames where the feature fires",
]
Index = QModelIndex | QPersistentModelIndex


def _fmt(v: float, pct: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    if pct:
        return f"{100 * v:.1f}%" if v >= 0.001 or v == 0 else f"{100 * v:.2g}%"
    return f"{v:.3g}"


class FeatureTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.labels: list[str] = []
        self.scores = np.zeros(0)
        self.density = np.zeros(0)
        self.max_act = np.zeros(0)
        self.clip_max = np.zeros(0)
        self.clip_active = np.zeros(0)
        self.steered: set[int] = set()

    def set_sae(self, sae: LoadedSAE | None) -> None:
        self.beginResetModel()
        if sae is None:
            self.n = 0
            self.labels, self.scores = [], np.zeros(0)
            self.density = self.max_act = self.clip_max = self.clip_active = np.zeros(0)
        else:
            self.n = sae.d_sae
            self.labels = [sae.labels[i].label if i in sae.labels else "" for i in range(self.n)]
            self.scores = np.array([sae.labels[i].score if i in sae.labels and sae.labels[i].score is not None
                                    else np.nan for i in range(self.n)], np.float64)
            self.density = np.asarray(sae.density, np.float64)
            self.max_act = np.asarray(sae.max_activation, np.float64)
            self.clip_max = np.full(self.n, np.nan)
            self.clip_active = np.full(self.n, np.nan)
        self.endResetModel()

    def set_summary(self, summary: FeatureSummary | None) -> None:
        if self.n == 0:
            return
        if summary is None or len(summary.clip_max) != self.n:
            self.clip_max = np.full(self.n, np.nan)
            self.clip_active = np.full(self.n, np.nan)
        else:
            self.clip_max = np.asarray(summary.clip_max, np.float64) / display_maxima(self.max_act)
            self.clip_active = np.asarray(summary.clip_active, np.float64)
        self.dataChanged.emit(self.index(0, 5), self.index(self.n - 1, 6))

    def to_csv(self, clip: str = "") -> str:
        """Every feature's row (not only the filtered ones), as `visuals.feature_table_csv`."""
        from workbench.core.visuals import feature_table_csv

        return feature_table_csv(self.labels, self.scores, self.density, self.max_act, self.clip_max,
                                 self.clip_active, self.steered, clip)

    def set_steered(self, features: set[int]) -> None:
        self.steered = set(features)
        if self.n:
            self.dataChanged.emit(self.index(0, 0), self.index(self.n - 1, 0))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else self.n

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return TIPS[section]
        return None

    def value(self, row: int, col: int) -> float | str:
        if col == 0:
            return row
        if col == 1:
            return self.labels[row]
        arr = (self.scores, self.density, self.max_act, self.clip_max, self.clip_active)[col - 2]
        return float(arr[row])

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            v = self.value(r, c)
            if c == 0:
                return f"{r} ●" if r in self.steered else str(r)
            if c == 1:
                return v
            return _fmt(float(v), pct=c in (3, 6))
        if role == SORT_ROLE:
            v = self.value(r, c)
            if isinstance(v, float) and not math.isfinite(v):
                return -1.0  # unknown sorts below every real value
            return v
        if role == Qt.ItemDataRole.TextAlignmentRole and c != 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and c == 0 and r in self.steered:
            return "has a steering slider"
        return None


class FeatureFilter(QSortFilterProxyModel):
    def __init__(self) -> None:
        super().__init__()
        self.setSortRole(SORT_ROLE)
        self.text = ""
        self.only_active = False
        self.hide_dead = False

    def set_text(self, text: str) -> None:
        self.text = text.strip().lower()
        self.invalidateFilter()

    def set_only_active(self, on: bool) -> None:
        self.only_active = on
        self.invalidateFilter()

    def set_hide_dead(self, on: bool) -> None:
        self.hide_dead = on
        self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802
        m: FeatureTableModel = self.sourceModel()  # type: ignore[assignment]
        if self.only_active and not (m.clip_active[row] > 0):
            return False
        if self.hide_dead and m.density[row] == 0:
            return False
        if self.text:
            t = self.text.lstrip("#")
            if t.isdigit():
                return str(row).startswith(t) or t in m.labels[row].lower()
            return self.text in m.labels[row].lower()
        return True


class FeatureTable(QWidget):
    selectionChangedFeatures = Signal(list)
    steerRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = FeatureTableModel()
        self.proxy = FeatureFilter()
        self.proxy.setSourceModel(self.model)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search id or label…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_text)
        self.only_active = QCheckBox("In this clip")
        self.only_active.setToolTip("Show only features that fire somewhere in the current clip")
        self.only_active.toggled.connect(self.proxy.set_only_active)
        self.hide_dead = QCheckBox("Hide dead")
        self.hide_dead.setToolTip("Hide features that never fired on the training data")
        self.hide_dead.toggled.connect(self.proxy.set_hide_dead)
        self.steer_btn = QPushButton("Steer")
        self.steer_btn.setToolTip("Add a steering slider for the selected features (or double-click a row)")
        self.steer_btn.clicked.connect(self._steer_selected)
        self.count = QLabel("")
        self.count.setStyleSheet("color: #999")
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        hh = self.view.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for c, w in enumerate((58, 120, 50, 64, 62, 64, 72)):
            if c != 1:
                self.view.setColumnWidth(c, w)
        self.view.sortByColumn(6, Qt.SortOrder.DescendingOrder)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.doubleClicked.connect(lambda idx: self.steerRequested.emit(self._feature_at(idx)))
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.search, 1)
        top.addWidget(self.only_active)
        top.addWidget(self.hide_dead)
        top.addWidget(self.steer_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.count)
        self._blocking = False

    def _feature_at(self, proxy_index: QModelIndex) -> int:
        return self.proxy.mapToSource(proxy_index).row()

    def selected_features(self) -> list[int]:
        rows = self.view.selectionModel().selectedRows()
        return [self._feature_at(i) for i in rows]

    def _selection_changed(self, *_: object) -> None:
        if not self._blocking:
            self.selectionChangedFeatures.emit(self.selected_features())

    def _steer_selected(self) -> None:
        for f in self.selected_features():
            self.steerRequested.emit(f)

    def _update_count(self, *_: object) -> None:
        shown, total = self.proxy.rowCount(), self.model.n
        self.count.setText(f"{shown} of {total} features" if total else "no SAE loaded")

    def select_features(self, features: list[int], scroll: bool = True) -> None:
        """Reflect the model's selection without echoing it back."""
        self._blocking = True
        try:
            sm = self.view.selectionModel()
            sel = QItemSelection()
            for f in features:
                if 0 <= f < self.model.n:
                    pi = self.proxy.mapFromSource(self.model.index(f, 0))
                    if pi.isValid():
                        sel.select(pi, pi)
            sm.select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            if scroll and features:
                pi = self.proxy.mapFromSource(self.model.index(features[-1], 0))
                if pi.isValid():
                    self.view.scrollTo(pi)
        finally:
            self._blocking = False
