"""Training panel: choose audio (or the synthetic corpus), codec and latent kind, architecture and
hyperparameters; run caching + training in a background `Task` with progress, ETA, live plots of
loss / FVU / L0 / dead fraction, pause / resume / cancel; offer to load the SAE when done.

All the work is `workbench.core.sae_bridge.run_training`; this file only collects inputs and draws.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.app.timeline import SparseLabelAxis
from workbench.app.worker import Task
from workbench.core.errors import WorkbenchError
from workbench.core.jobs import format_seconds
from workbench.core.sae_bridge import ARCHITECTURES, TrainRequest, run_training
from workbench.core.userdirs import cache_dir

PLOTS_ROOM = 240  # px the live plots get first during and after a run, when the panel is short
QWIDGETSIZE_MAX = (1 << 24) - 1
METRICS = [("loss", "Loss"), ("fvu", "FVU"), ("l0", "L0"), ("dead_fraction", "Dead fraction")]


class TrainingPanel(QWidget):
    loadRequested = Signal(str)  # folder of a finished SAE
    errorOccurred = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task: Task | None = None
        self.codec_provider: Callable[[str, str], Any] | None = None  # (codec id, latent kind) -> loaded codec
        self.history: dict[str, list[float]] = {}
        self.last_result: str | None = None
        # Inputs
        self.inputs = QListWidget()
        self.inputs.setMaximumHeight(70)
        self.inputs.setToolTip("Audio files and folders (searched recursively) to train on")
        add_files = QPushButton("Add files…")
        add_files.clicked.connect(self._add_files)
        add_dir = QPushButton("Add folder…")
        add_dir.clicked.connect(self._add_dir)
        remove = QPushButton("Remove")
        remove.clicked.connect(lambda: [self.inputs.takeItem(self.inputs.row(i)) for i in self.inputs.selectedItems()])
        self.synthetic = QSpinBox()
        self.synthetic.setRange(0, 100_000)
        self.synthetic.setValue(8)
        self.synthetic.setToolTip("Clips of the labeled synthetic corpus to add (0: none)")
        self.codec = QComboBox()
        self.codec.addItem("default")
        self.latent = QComboBox()
        self.latent.setEditable(True)
        self.latent.addItems(["continuous", "quantized", "quantized:6"])
        self.latent.setToolTip("continuous = encoder output; quantized[:KBPS] = sum of RVQ codebook vectors (EnCodec)")
        self.arch = QComboBox()
        self.arch.addItems(list(ARCHITECTURES))
        self.d_sae = QSpinBox()
        self.d_sae.setRange(2, 1 << 20)
        self.d_sae.setValue(256)
        self.k = QSpinBox()
        self.k.setRange(1, 4096)
        self.k.setValue(16)
        self.l1 = QDoubleSpinBox()
        self.l1.setDecimals(4)
        self.l1.setRange(0.0, 100.0)
        self.l1.setValue(0.01)
        self.steps = QSpinBox()
        self.steps.setRange(1, 10_000_000)
        self.steps.setValue(2000)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1 << 16)
        self.batch.setValue(1024)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.loudness = QDoubleSpinBox()
        self.loudness.setDecimals(1)
        self.loudness.setRange(0.1, 100.0)
        self.loudness.setValue(10.0)
        self.loudness.setToolTip("Weight of the codec's loudness channel in the loss (the default codec's energy, "
                                 "EnCodec 48 kHz's log gain; not used for codecs without one). 10 as for the "
                                 "shipped SAE; at 1 a sparse SAE loses loudness from its features")
        self.out = QLineEdit(str(cache_dir() / "saes" / time.strftime("sae-%Y%m%d-%H%M%S")))
        out_btn = QPushButton("…")
        out_btn.setMaximumWidth(30)
        out_btn.clicked.connect(self._choose_out)
        self.arch.currentTextChanged.connect(self._arch_changed)
        self._arch_changed(self.arch.currentText())

        data_box = QGroupBox("Data")
        dl = QGridLayout(data_box)
        dl.addWidget(self.inputs, 0, 0, 1, 3)
        dl.addWidget(add_files, 1, 0)
        dl.addWidget(add_dir, 1, 1)
        dl.addWidget(remove, 1, 2)
        form = QFormLayout()
        form.addRow("Synthetic clips", self.synthetic)
        form.addRow("Codec", self.codec)
        form.addRow("Latent kind", self.latent)
        dl.addLayout(form, 2, 0, 1, 3)
        model_box = QGroupBox("Model")
        ml = QFormLayout(model_box)
        ml.addRow("Architecture", self.arch)
        ml.addRow("Dictionary size", self.d_sae)
        ml.addRow("k (TopK)", self.k)
        ml.addRow("L1 (ReLU)", self.l1)
        ml.addRow("Steps", self.steps)
        ml.addRow("Batch size", self.batch)
        ml.addRow("Learning rate", self.lr)
        ml.addRow("Loudness weight", self.loudness)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(out_btn)
        ml.addRow("Output folder", out_row)

        # Run controls
        self.start_btn = QPushButton("Start training")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.pause_btn.toggled.connect(self._pause_toggled)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.status = QLabel("idle")
        self.status.setStyleSheet("color: #aaa")
        self._set_running(False)
        run = QHBoxLayout()
        run.addWidget(self.start_btn)
        run.addWidget(self.pause_btn)
        run.addWidget(self.cancel_btn)

        # Live plots: built on first use (four pyqtgraph plots cost a noticeable part of start-up).
        self.plots: pg.GraphicsLayoutWidget | None = None
        self.plots_holder = QVBoxLayout()
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._eta_timer = QTimer(self)
        self._eta_timer.setInterval(500)
        self._eta_timer.timeout.connect(self._update_eta)
        self._message = ""

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        # The settings scroll when the dock is short (a 900 px screen, the steering panel below), so the
        # window still fits and the run controls and live plots stay in view.
        settings = QWidget()
        top = QHBoxLayout(settings)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(data_box, 1)
        top.addWidget(model_box, 1)
        self.settings_area = QScrollArea()
        self.settings_area.setWidget(settings)
        self.settings_area.setWidgetResizable(True)
        self.settings_area.setFrameShape(QFrame.Shape.NoFrame)
        self.settings_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_area.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.settings_area.setMinimumHeight(120)
        self.settings_area.setMinimumWidth(settings.minimumSizeHint().width())
        lay.addWidget(self.settings_area)
        lay.addLayout(run)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addLayout(self.plots_holder, 1)

    def resizeEvent(self, e: Any) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._fit_settings()

    def _fit_settings(self) -> None:
        """Once a run has drawn metrics, a short panel gives the plots PLOTS_ROOM px first and the settings
        (which scroll) what remains; before that the settings get all the room they need."""
        limit = QWIDGETSIZE_MAX
        if self.plots is not None and self.history.get("step"):
            limit = max(self.settings_area.minimumHeight(), self.height() - PLOTS_ROOM - 100)
        if self.settings_area.maximumHeight() != limit:
            self.settings_area.setMaximumHeight(limit)

    def prebuild_plots(self) -> None:
        """Build the live plots, hidden, ahead of a run. pyqtgraph takes about 90 ms to make the four
        plots: built when Train is pressed, that froze the window, and their first layout fell into the
        run's first moments (bench_gui's worst stall during training: ~30 ms, ~6 ms when built before)."""
        if self.plots is None:
            self._build_plots()

    def ensure_plots(self) -> None:
        self.prebuild_plots()
        assert self.plots is not None
        self.plots.show()

    def _build_plots(self) -> None:
        # One font object kept alive here: axis items paint with it long after this call.
        self._tick_font = QFont(self.font())
        self._tick_font.setPointSize(7)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground("#161616")
        self.plots.setMinimumHeight(190)
        for i, (key, title) in enumerate(METRICS):
            p = self.plots.addPlot(row=i // 2, col=i % 2, axisItems={"left": SparseLabelAxis("left")})
            # The metric names the y-axis (a title row above each plot would take the height a short
            # dock needs for the curves); "step" names the x-axis once per column, under the bottom row.
            p.setLabel("left", title, color="#cfcfcf", size="8pt")
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setMenuEnabled(False)
            p.hideButtons()
            p.getAxis("left").setWidth(52)
            if i >= 2:
                p.setLabel("bottom", "step", color="#999999", size="7pt")
            for ax in ("left", "bottom"):
                p.getAxis(ax).enableAutoSIPrefix(False)
                p.getAxis(ax).setStyle(tickFont=self._tick_font)
            if key == "dead_fraction":
                p.setYRange(0.0, 1.0, padding=0.02)
                p.enableAutoRange(y=False)
            else:
                p.setLimits(yMin=0.0)
            # width 1: Qt's raster engine strokes a wider pen about 150x slower
            self.curves[key] = p.plot(pen=pg.mkPen("#ff9d3c", width=1))
        self.plots.hide()
        self.plots_holder.addWidget(self.plots)

    def set_codecs(self, ids: list[str], current: str) -> None:
        if [self.codec.itemText(i) for i in range(self.codec.count())] != ids:
            keep = self.codec.currentText()
            self.codec.clear()
            self.codec.addItems(ids)
            self.codec.setCurrentText(keep if keep in ids else current)

    # -- inputs ----------------------------------------------------------------------------------
    def _add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Audio files to train on", "",
                                                "Audio (*.wav *.flac *.ogg *.mp3 *.aif *.aiff *.m4a *.opus);;All files (*)")
        for f in files:
            self.inputs.addItem(f)

    def _add_dir(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of audio to train on")
        if d:
            self.inputs.addItem(d)

    def _choose_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Output folder for the SAE")
        if d:
            self.out.setText(d)

    def _arch_changed(self, arch: str) -> None:
        topk = arch in ("topk", "batchtopk")
        self.k.setEnabled(topk)
        self.l1.setEnabled(not topk)

    def request(self) -> TrainRequest:
        return TrainRequest(
            inputs=[self.inputs.item(i).text() for i in range(self.inputs.count())],
            synthetic_clips=self.synthetic.value(), codec=self.codec.currentText(),
            latent=self.latent.currentText().strip() or "continuous", arch=self.arch.currentText(),
            d_sae=self.d_sae.value(), k=self.k.value(), l1=self.l1.value(), steps=self.steps.value(),
            batch_size=self.batch.value(), lr=self.lr.value(), out_dir=self.out.text().strip(),
            loudness_weight=self.loudness.value(),
        )

    # -- running ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.task is not None

    def _set_running(self, on: bool) -> None:
        self.start_btn.setEnabled(not on)
        self.pause_btn.setEnabled(on)
        self.cancel_btn.setEnabled(on)
        if not on:
            self.pause_btn.blockSignals(True)
            self.pause_btn.setChecked(False)
            self.pause_btn.setText("Pause")
            self.pause_btn.blockSignals(False)

    def start(self) -> None:
        if self.task is not None:
            return
        req = self.request()
        if self.codec_provider is not None:
            req.loaded_codec = self.codec_provider(req.codec, req.latent)
        try:
            req.validate()
        except WorkbenchError as exc:
            self.errorOccurred.emit(exc.message)
            return
        self.ensure_plots()
        self.history = {k: [] for k, _ in METRICS}
        self.history["step"] = []
        self._fit_settings()
        for c in self.curves.values():
            c.setData([], [])
        self.progress.setValue(0)
        self.last_result = None
        task = Task(lambda job: str(run_training(req, job)), "training")
        task.progress.connect(self._on_progress)
        task.partial.connect(self._on_metrics)
        task.succeeded.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(self._on_cancelled)
        task.ended.connect(self._on_ended)
        self.task = task
        self._set_running(True)
        self.status.setText("starting…")
        task.start_task()
        self._eta_timer.start()

    def cancel(self) -> None:
        if self.task is not None:
            self.status.setText("cancelling…")
            self.task.cancel()

    def _pause_toggled(self, on: bool) -> None:
        if self.task is None:
            return
        if on:
            self.task.pause()
            self.pause_btn.setText("Resume")
            self.status.setText("paused — " + self._message)
        else:
            self.task.resume()
            self.pause_btn.setText("Pause")

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(1000 * fraction))
        self._message = message
        self._update_eta()

    def _update_eta(self) -> None:
        if self.task is None:
            return
        eta = self.task.job.eta
        if self.task.job.paused:
            self.status.setText(f"paused — {self._message}")
        else:
            self.status.setText(f"{self._message}   elapsed {format_seconds(eta.elapsed())}   "
                                f"ETA {format_seconds(eta.remaining())}")

    def _on_metrics(self, m: Any) -> None:
        if not isinstance(m, dict) or "step" not in m:
            return
        self.history["step"].append(float(m["step"]))
        if len(self.history["step"]) == 1:
            self._fit_settings()
        for key, _ in METRICS:
            self.history[key].append(float(m.get(key, float("nan"))))
            vals = self.history[key]
            self.curves[key].setData(self.history["step"], vals)

    def _on_done(self, folder: Any) -> None:
        self.last_result = str(folder)
        last = {k: v[-1] for k, v in self.history.items() if v}
        summary = ", ".join(f"{k} {last[k]:.3g}" for k in ("fvu", "l0", "dead_fraction") if k in last)
        self.status.setText(f"done: {folder}" + (f" ({summary})" if summary else ""))
        self.progress.setValue(1000)
        answer = QMessageBox.question(self, "Training finished",
                                      f"The SAE was saved to\n{folder}\n\nLoad it now?")
        if answer == QMessageBox.StandardButton.Yes:
            self.loadRequested.emit(str(folder))

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"failed: {message}")
        self.errorOccurred.emit(f"training failed: {message}")

    def _on_cancelled(self) -> None:
        self.status.setText("cancelled")

    def _on_ended(self) -> None:
        self.task = None
        self._eta_timer.stop()
        self._set_running(False)

    def shutdown(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def default_out_dir(self) -> Path:
        return Path(self.out.text())
