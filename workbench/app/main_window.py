"""The main window: wires the Qt-free `Workspace` to the views, the playback engine and the workers.

Flow of a user action: a view emits a request → the window snapshots what the work needs and hands
it to a worker (`LatestWins`: newest request wins) → the result comes back on the GUI thread → the
window applies it to the `Workspace` → the workspace's events refresh the views. Loading (clip, codec,
SAE, session) applies nothing until everything loaded, so a bad file leaves the session as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QToolButton,
    QWidget,
)

from workbench.app import gc_guard
from workbench.app.errors import show_error
from workbench.app.feature_table import FeatureTable
from workbench.app.insight import FeatureInsight
from workbench.app.steering_panel import SteeringPanel
from workbench.app.timeline import TimelineView
from workbench.app.training_panel import TrainingPanel
from workbench.app.transport import Transport
from workbench.app.worker import LatestWins, Task, shutdown_tasks
from workbench.core.audio import AudioClip, save_audio
from workbench.core.codecs import codec_ids, get_codec
from workbench.core.codecs.base import Codec
from workbench.core.errors import WorkbenchError
from workbench.core.jobs import JobControl
from workbench.core.limiter import limit, summary
from workbench.core.playback import PlaybackEngine, PlaybackError, list_output_devices
from workbench.core.resources import default_sae_dir
from workbench.core.sae_bridge import AUDIO_EXTENSIONS, LoadedSAE, check_sae_folder, load_sae
from workbench.core.session import Session, load_session, save_session
from workbench.core.settings import Settings, save_settings
from workbench.core.steering import Edit, ProbeEdit, SteeringContext
from workbench.core.userdirs import config_dir
from workbench.core.visuals import display_maxima, relative_activations, top_features
from workbench.core.workspace import (
    NEUTRAL,
    ClipAnalysis,
    SteerResult,
    Workspace,
    analyze,
    load_clip,
    render_steered,
    steer_latents,
    with_features,
)

log = logging.getLogger(__name__)

KEEP = "<keep>"
DEFAULT = "<default>"
DEMO = "<demo>"
MAX_LINES = 8
LIMITER_SHOW_DB = 3.0  # the status bar names the limiter while it takes more than this
AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.mp3 *.aif *.aiff *.m4a *.opus);;All files (*)"


def first_size(available: tuple[int, int]) -> tuple[int, int]:
    """The window's size on first launch: 1440×900, or 90% of a larger screen (up to 2400×1400), so a
    big screen gets the wide layout (the feature dashboard in its own column)."""
    aw, ah = available
    return max(1440, min(int(0.9 * aw), 2400)), max(900, min(int(0.9 * ah), 1400))


@dataclass
class LoadRequest:
    codec_id: str  # KEEP or an id
    sae: str | None  # KEEP, DEFAULT, None (no SAE) or a folder
    audio: str  # KEEP, DEMO or a path
    session: Session | None = None
    # snapshot of the current state (taken on the GUI thread)
    cur_codec_id: str = ""
    cur_codec: Codec | None = None
    cur_sae: LoadedSAE | None = None
    cur_sae_default: bool = False
    cur_analysis: ClipAnalysis | None = None
    warm_up: bool = False  # also import the training engine (first load of the app)


@dataclass
class LoadResult:
    request: LoadRequest
    codec_id: str
    codec: Codec
    sae: LoadedSAE | None
    sae_is_default: bool
    analysis: ClipAnalysis
    notes: list[str] = field(default_factory=list)


def run_load(req: LoadRequest, job: JobControl) -> LoadResult:
    """Everything a load needs, off the GUI thread; raises (and so changes nothing) on any problem."""
    notes: list[str] = []
    job.progress(0.0, "loading codec")
    if req.codec_id == KEEP and req.cur_codec is not None:
        codec_id, codec = req.cur_codec_id, req.cur_codec
    else:
        codec_id = req.cur_codec_id if req.codec_id == KEEP else req.codec_id
        codec = get_codec(codec_id or "default")
    job.progress(0.1, "loading SAE")
    sae: LoadedSAE | None
    is_default = False
    if req.sae == KEEP:
        sae, is_default = req.cur_sae, req.cur_sae_default
    elif req.sae == DEFAULT:
        d = default_sae_dir()
        if (d / "cfg.json").is_file():
            sae, is_default = load_sae(d), True
        else:
            sae = None
            notes.append(f"no default SAE found in {d}: open an SAE folder or train one")
    elif req.sae is None:
        sae = None
    else:
        sae = load_sae(req.sae)
    if sae is not None:
        if req.sae == KEEP and sae.d_in != codec.latent_dim:
            notes.append(f"SAE '{sae.name}' does not fit codec '{codec_id}' and was unloaded")
            sae = None
        else:
            sae.check_codec(codec_id, codec.latent_dim)
    job.progress(0.2, "loading audio")
    cur = req.cur_analysis
    if req.audio == KEEP and cur is not None and codec is req.cur_codec:
        job.progress(0.5, "features")
        analysis = with_features(cur, sae)
    else:
        path: Path | None
        if req.audio == DEMO or (req.audio == KEEP and (cur is None or cur.path is None)):
            from workbench.core.demo import demo_clip

            clip, _ = demo_clip()
            path, name = None, "demo clip"
        elif req.audio == KEEP:
            assert cur is not None
            clip, path, name = cur.source, cur.path, cur.name
        else:
            path = Path(req.audio)
            clip, name = load_clip(path, codec), path.name
        job.check()
        analysis = analyze(clip, codec, sae, path, name, job)
    if req.warm_up:
        # Imports hold the interpreter lock (torch.optim alone pulls in ~900 modules): done here, while the
        # window says "loading", rather than when a training run starts (a 0.6 s stall of the event loop).
        from workbench.core.sae.pipeline import warm_up

        job.progress(0.95, "preparing the training engine")
        warm_up()
    job.progress(1.0, "")
    return LoadResult(req, codec_id, codec, sae, is_default, analysis, notes)


@dataclass(frozen=True)
class SteerRequest:
    analysis: ClipAnalysis
    codec: Codec
    ctx: SteeringContext | None
    edits: tuple[Edit, ...]


def run_steer(req: SteerRequest, job: JobControl) -> SteerResult:
    z = steer_latents(req.analysis, req.ctx, req.edits)
    job.partial(z)  # the live engine gets the new latents before the whole clip is decoded
    job.check()
    return render_steered(req.analysis, req.codec, req.ctx, req.edits, z=z, job=job)


class EditsCommand(QUndoCommand):
    """One undo step: the edit list before and after. Consecutive moves of one slider within one
    gesture merge into a single step."""

    def __init__(self, ws: Workspace, before: tuple[Edit, ...], after: tuple[Edit, ...], text: str,
                 merge_key: object = None) -> None:
        super().__init__(text)
        self.ws, self.before, self.after, self.merge_key = ws, before, after, merge_key

    def id(self) -> int:
        return 1 if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        if isinstance(other, EditsCommand) and other.merge_key == self.merge_key and self.merge_key is not None:
            self.after = other.after
            return True
        return False

    def redo(self) -> None:
        self.ws.set_edits(self.after)

    def undo(self) -> None:
        self.ws.set_edits(self.before)


class MainWindow(QMainWindow):
    editsChanged = Signal()
    engineState = Signal(str, str)
    loadFinished = Signal(bool)  # True on success (tests and the smoke test wait on it)

    def __init__(self, settings: Settings | None = None, use_audio_device: bool = True, dialogs: bool = True,
                 warm_up: bool = False) -> None:
        super().__init__()
        gc_guard.acquire()  # cycles are collected in this thread while the window lives (see gc_guard)
        self._gc_held = True
        self.settings = settings or Settings()
        self.use_audio_device = use_audio_device
        # Import the training engine during the first load (the app does; tests leave it off): a training
        # run then starts without stalling the event loop.
        self.warm_up = warm_up
        self.dialogs = dialogs
        self.errors: list[str] = []
        self.ws = Workspace()
        self.engine: PlaybackEngine | None = None
        self.undo = QUndoStack(self)
        self.setWindowTitle("SAE Audio Workbench")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        # Views
        self.timeline = TimelineView()
        self.setCentralWidget(self.timeline)
        self.table = FeatureTable()
        self.steering = SteeringPanel()
        self.training = TrainingPanel()
        # The training run encodes with the codec already loaded when it is the one the panel asks for.
        self.training.codec_provider = lambda cid, latent: (
            self.ws.codec if self.ws.codec is not None and cid == self.ws.codec_id
            and latent == getattr(self.ws.codec, "latent_kind", "continuous") else None)
        self.transport = Transport(self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.transport)
        self.features_dock = self._dock("Features", self.table, Qt.DockWidgetArea.RightDockWidgetArea)
        self.steering_dock = self._dock("Steering", self.steering, Qt.DockWidgetArea.RightDockWidgetArea)
        self.training_dock = self._dock("Train an SAE", self.training, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.features_dock, self.training_dock)
        self.training_dock.visibilityChanged.connect(lambda vis: vis and self.training.ensure_plots())
        self.features_dock.raise_()
        self.resizeDocks([self.features_dock, self.steering_dock], [520, 360], Qt.Orientation.Vertical)
        self.resizeDocks([self.features_dock], [540], Qt.Orientation.Horizontal)

        # Steering panel toolbar
        self.undo_action = self.undo.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo.createRedoAction(self, "Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        self.reset_action = QAction("Reset", self)
        self.reset_action.setToolTip("Set every slider back to neutral (no change)")
        self.reset_action.triggered.connect(self.reset_edits)
        self.export_action = QAction("Export…", self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setToolTip("Save the steered audio (B) as WAV, FLAC or OGG")
        self.export_action.triggered.connect(self.export_dialog)
        for a in (self.undo_action, self.redo_action, self.reset_action, self.export_action):
            b = QToolButton()
            b.setDefaultAction(a)
            self.steering.toolbar.addWidget(b)
        self.steering.toolbar.addStretch(1)

        # Status bar
        self.status_info = QLabel("")
        self.device_label = QLabel("")
        self.limiter_label = QLabel("")  # shown while the output limiter takes more than LIMITER_SHOW_DB
        self.limiter_label.setStyleSheet("color: #ffb347;")
        self.limiter_label.hide()
        self.busy = QProgressBar()
        self.busy.setMaximumWidth(160)
        self.busy.setRange(0, 1000)
        self.busy.hide()
        self.statusBar().addPermanentWidget(self.busy)
        self.statusBar().addPermanentWidget(self.limiter_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().addPermanentWidget(self.status_info)

        self._build_menus()

        # Workers
        self.loader = LatestWins(run_load, "load", self)
        self.loader.result.connect(self._on_loaded)
        self.loader.error.connect(self._on_load_failed)
        self.loader.idle.connect(self.busy.hide)
        self.loader.progress.connect(lambda f, m: (self.busy.setValue(int(1000 * f)),
                                                   self.statusBar().showMessage(f"loading: {m}" if m else "loading…")))
        self.steerer = LatestWins(run_steer, "steer", self)
        self.steerer.partial.connect(self._on_steer_partial)
        self.steerer.result.connect(self._on_steered)
        self.steerer.error.connect(lambda _r, m: self.report_error(f"steering failed: {m}"))
        self._steer_proxy = pg.SignalProxy(self.editsChanged, delay=0.03, rateLimit=30, slot=self._request_steer)
        self.loading = False

        # Playback
        self.engineState.connect(self._on_engine_state)
        self.playhead_timer = QTimer(self)
        self.playhead_timer.setInterval(33)
        self.playhead_timer.timeout.connect(self._tick)

        # Wiring views ↔ model
        ev = self.ws.events
        ev.connect("codec", self._on_codec)
        ev.connect("sae", self._on_sae)
        ev.connect("analysis", self._on_analysis)
        ev.connect("edits", self._on_edits)
        ev.connect("steered", self._on_steered_applied)
        ev.connect("selection", self._on_selection)
        self.table.selectionChangedFeatures.connect(self.ws.set_selected)
        self.table.steerRequested.connect(self.add_slider)
        self.timeline.featureActivated.connect(self._feature_activated)
        self.timeline.seekRequested.connect(self.seek)
        self.timeline.selectionChanged.connect(self._on_time_selection)
        self.steering.editRequested.connect(self._edit_requested)
        self.steering.removeRequested.connect(self.remove_slider)
        self.steering.rangeRequested.connect(self._range_requested)
        self.transport.playToggled.connect(self.toggle_play)
        self.transport.stopRequested.connect(self.stop)
        self.transport.loopToggled.connect(lambda _on: self._apply_loop())
        self.transport.abToggled.connect(self._set_ab)
        self.transport.deviceChosen.connect(self.choose_device)
        self.transport.silentToggled.connect(self._set_silent)
        self.transport.devicesRefresh.connect(self._populate_devices)
        self.training.loadRequested.connect(lambda d: self.open_sae(d))
        self.training.errorOccurred.connect(self.report_error)
        # Feature understanding: dashboard, probe table, probe sliders, property row (its own module).
        self.insight = FeatureInsight(self)
        self._update_play_state()
        self._update_info()
        self._restore_geometry()

    # -- construction helpers ----------------------------------------------------------------------
    def _dock(self, title: str, w: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(title.lower().replace(" ", "_"))
        d.setWidget(w)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, d)
        return d

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        a = f.addAction("&Open audio…", self.open_audio_dialog)
        a.setShortcut(QKeySequence.StandardKey.Open)
        self.recent_menu = f.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addAction("Open &demo clip", lambda: self.open_audio(DEMO))
        f.addSeparator()
        a = f.addAction("Open &session…", self.open_session_dialog)
        a.setShortcut(QKeySequence("Ctrl+Shift+O"))
        a = f.addAction("&Save session…", self.save_session_dialog)
        a.setShortcut(QKeySequence.StandardKey.Save)
        f.addSeparator()
        f.addAction(self.export_action)
        f.addAction("Export feature &table (CSV)…", self.export_table_dialog)
        f.addSeparator()
        a = f.addAction("&Quit", self.close)
        a.setShortcut(QKeySequence.StandardKey.Quit)
        e = mb.addMenu("&Edit")
        e.addAction(self.undo_action)
        e.addAction(self.redo_action)
        e.addAction(self.reset_action)
        m = mb.addMenu("&Model")
        self.codec_menu = m.addMenu("&Codec")
        self.codec_group = QActionGroup(self)
        # Filled on first show: listing codecs imports torch, which must not delay the first window.
        self.codec_menu.aboutToShow.connect(self._fill_codecs)
        m.addSeparator()
        m.addAction("Open SAE &folder…", self.open_sae_dialog)
        m.addAction("Use the &default SAE", lambda: self.open_sae(DEFAULT))
        m.addAction("&Unload SAE", lambda: self.open_sae(None))
        m.addSeparator()
        m.addAction("&Train an SAE…", lambda: (self.training_dock.show(), self.training_dock.raise_()))
        v = self.view_menu = mb.addMenu("&View")
        for d in (self.features_dock, self.steering_dock, self.training_dock):
            v.addAction(d.toggleViewAction())
        v.addSeparator()
        a = v.addAction("Zoom to whole clip", self.timeline.zoom_all)
        a.setShortcut(QKeySequence("Ctrl+0"))
        a = v.addAction("Clear time selection", lambda: self.timeline.set_selection(None))
        a.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        h = mb.addMenu("&Help")
        h.addAction("How to use", self._show_help)
        h.addAction("About the loaded &models…", self.show_model_docs)

    def _fill_codecs(self) -> None:
        if not self.codec_group.actions():
            for cid in codec_ids():
                a = self.codec_menu.addAction(cid)
                a.setCheckable(True)
                a.triggered.connect(lambda _=False, c=cid: self.choose_codec(c))
                self.codec_group.addAction(a)
        for a in self.codec_group.actions():
            a.setChecked(a.text() == self.ws.codec_id)

    # -- errors ----------------------------------------------------------------------------------
    def report_error(self, message: str) -> None:
        self.errors.append(message)
        self.statusBar().showMessage(message, 10000)
        if self.dialogs:
            show_error(self, message)
        else:
            log.warning("%s", message)

    def show_model_docs(self) -> None:
        """The codec's and the SAE's reports (how they were made and measured), one tab each."""
        from workbench.app.model_docs import ModelDocsDialog

        sae = self.ws.sae
        dlg = ModelDocsDialog(self.ws.codec, sae.folder if sae is not None else None, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.model_docs = dlg
        dlg.show()

    def _show_help(self) -> None:
        QMessageBox.information(self, "How to use", (
            "Open audio with File → Open (or drop a file on the window).\n\n"
            "Timeline: click to seek, drag to pan, wheel to zoom time, Shift+drag to select a range "
            "(loop it, or limit an edit to it), double-click a heatmap row to select that feature.\n\n"
            "Features: select rows to plot them; press Steer (or double-click) to get a slider.\n\n"
            "Steering: scale multiplies a feature; add/set are in units of its maximum activation. "
            "Space plays/pauses, B switches between original (A) and steered (B).\n\n"
            "Feature pane: the selected feature's labels, histogram, top activating moments (▶ plays one) and "
            "its own sound. Probes: how well pitch, loudness and timbre can be read from the features. Probe "
            "steering moves pitch by semitones, loudness and timbre by bins; the timeline's last row plots the "
            "chosen property for A and B."))

    # -- loading -----------------------------------------------------------------------------------
    def start(self, audio: str | None = None, codec: str | None = None, sae: str | None = None) -> None:
        """The first load: CLI arguments, else the defaults and the demo clip."""
        self.request_load(LoadRequest(codec or self.settings.codec or "default",
                                      sae if sae else DEFAULT, audio if audio else DEMO, warm_up=self.warm_up))

    def request_load(self, req: LoadRequest) -> None:
        req.cur_codec_id, req.cur_codec = self.ws.codec_id, self.ws.codec
        req.cur_sae, req.cur_sae_default, req.cur_analysis = self.ws.sae, self.ws.sae_is_default, self.ws.analysis
        self.loading = True
        self.busy.setValue(0)
        self.busy.show()
        self.statusBar().showMessage("loading…")
        self.loader.submit(req)

    def open_audio(self, path: str) -> None:
        self.request_load(LoadRequest(KEEP, KEEP, path))

    def choose_codec(self, codec_id: str) -> None:
        if codec_id != self.ws.codec_id:
            self.request_load(LoadRequest(codec_id, KEEP, KEEP))

    def open_sae(self, folder: str | None) -> None:
        self.request_load(LoadRequest(KEEP, folder, KEEP))

    def _on_loaded(self, req: LoadRequest, res: LoadResult) -> None:
        self.loading = False
        # once the clip is on screen, build the training panel's plots while the user looks (idempotent)
        QTimer.singleShot(500, self.training, self.training.prebuild_plots)
        ws = self.ws
        codec_changed = res.codec is not ws.codec
        sae_changed = res.sae is not ws.sae
        if codec_changed:
            ws.set_codec(res.codec_id, res.codec)
        if sae_changed:
            ws.set_sae(res.sae, res.sae_is_default)
            self.undo.clear()
        ws.set_analysis(res.analysis)
        if req.session is not None:
            s = req.session
            self.undo.clear()
            d_sae = res.sae.d_sae if res.sae else 0
            ws.set_edits(self.insight.usable_edits([e for e in s.edits if e.feature < d_sae]))
            ws.set_selected([i for i in s.selected_features if i < d_sae])
            self.transport.ab.setChecked(s.ab == "B")
            self.timeline.set_selection(s.loop)
        if res.analysis.path is not None:
            self.settings.add_recent(res.analysis.path)
        self.settings.codec = res.codec_id
        self.settings.sae_dir = None if (res.sae is None or res.sae_is_default) else str(res.sae.folder)
        self._save_settings()
        for n in res.notes:
            self.statusBar().showMessage(n, 15000)
        if not res.notes:
            self.statusBar().showMessage(f"opened {res.analysis.name}", 5000)
        self._request_steer()
        self.loadFinished.emit(True)

    def _on_load_failed(self, req: LoadRequest, message: str) -> None:
        self.loading = False
        self.busy.hide()
        self.report_error(message)
        if self.ws.analysis is None and (req.audio not in (DEMO, KEEP) or req.sae not in (DEFAULT, KEEP, None)
                                         or req.codec_id not in ("default", KEEP)):
            # Nothing is open yet (a bad file or SAE on the command line): fall back to the defaults so
            # the user still gets a working window.
            self.request_load(LoadRequest("default", DEFAULT, DEMO))
            return
        if self.ws.analysis is None:
            self.timeline.set_message("wave", f"nothing open: {message[:120]} — File → Open to try another file")
        self.loadFinished.emit(False)

    # -- model events → views ------------------------------------------------------------------------
    def _on_codec(self) -> None:
        codec = self.ws.codec
        for a in self.codec_group.actions():
            a.setChecked(a.text() == self.ws.codec_id)
        self.training.set_codecs(codec_ids(), self.ws.codec_id)
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        if codec is not None:
            self._make_engine(codec)
        self._update_info()

    def _make_engine(self, codec: Codec) -> None:
        eng = PlaybackEngine(codec, device=self.settings.output_device, use_device=self.use_audio_device)
        eng.listeners.append(lambda state, msg: self.engineState.emit(state, msg))
        self.engine = eng
        self._update_play_state()

    def _on_sae(self) -> None:
        sae = self.ws.sae
        self.table.model.set_sae(sae)
        self.table._update_count()
        self._on_edits()
        self._update_info()

    def _on_analysis(self) -> None:
        a = self.ws.analysis
        if a is None:
            return
        self.timeline.set_duration(a.duration)
        self.timeline.set_waveforms(a.decoded.samples, None, a.decoded.sample_rate)
        self.timeline.set_mels(a.mel, None)
        self.timeline.set_latents(a.z, a.frame_rate)
        self.timeline.set_selection(None)
        self.timeline.set_playhead(0.0)
        self.table.model.set_summary(a.summary)
        if self.engine is not None:
            self.engine.load(a.z, None, a.source.num_samples)
            self.engine.set_ab(self.ws_ab())
        self.transport.set_time(0.0, a.duration)
        self.transport.set_playing(False)
        self.playhead_timer.stop()
        self._refresh_features()
        self._update_play_state()
        self._update_info()
        self.setWindowTitle(f"{a.name} — SAE Audio Workbench")

    def ws_ab(self) -> str:
        return "B" if self.transport.ab.isChecked() else "A"

    def _labels(self) -> dict[int, str]:
        sae = self.ws.sae
        return {} if sae is None else {i: lab.label for i, lab in sae.labels.items()}

    def _on_edits(self) -> None:
        self.steering.set_edits(self.ws.edits, self._labels())
        self.table.model.set_steered({e.feature for e in self.ws.edits})
        self.editsChanged.emit()

    def _on_selection(self) -> None:
        self.table.select_features(list(self.ws.selected), scroll=False)
        self._refresh_lines()

    def _refresh_features(self) -> None:
        a, sae = self.ws.analysis, self.ws.sae
        if a is None:
            return
        if sae is None or a.features is None or a.summary is None:
            self.timeline.clear_features("no SAE loaded: Model → Open SAE folder…, or train one")
            return
        scale = display_maxima(sae.max_activation)
        idx = top_features(a.summary, self.settings.heatmap_features, scale)
        rel = relative_activations(a.features, idx, scale)
        self.timeline.set_heatmap(idx, rel, a.frame_rate, self._labels())
        if len(idx) == 0:
            self.timeline.set_message("heat", "no feature fires in this clip")
        self._refresh_lines()

    def _refresh_lines(self) -> None:
        a, sae = self.ws.analysis, self.ws.sae
        if a is None or sae is None or a.features is None:
            self.timeline.set_feature_lines(np.zeros(0), [])
            return
        st = self.ws.steered
        f2 = st.features if st is not None and st.features is not None and st.z is not a.z else None
        t = (np.arange(a.num_frames) + 0.5) / a.frame_rate
        labels = self._labels()
        scale = display_maxima(sae.max_activation)
        series = []
        for i in list(self.ws.selected)[:MAX_LINES]:
            m = float(scale[i])
            name = f"#{i}" + (f" {labels[i]}" if i in labels else "")
            series.append((i, name, a.features[:, i] / m, None if f2 is None else f2[:, i] / m))
        self.timeline.set_feature_lines(t, series)

    def _update_info(self) -> None:
        c = self.ws.codec
        parts = []
        if c is not None:
            parts.append(f"codec {self.ws.codec_id} ({c.frame_rate:g} Hz, {c.latent_dim}-dim)")
        sae = self.ws.sae
        parts.append("no SAE" if sae is None else f"SAE {'default' if self.ws.sae_is_default else sae.name} "
                     f"({sae.architecture}, {sae.d_sae} features)")
        self.status_info.setText("   ·   ".join(parts))

    # -- steering -----------------------------------------------------------------------------------
    def push_edits(self, after: tuple[Edit, ...], text: str, merge_key: object = None) -> None:
        if after == self.ws.edits:
            return
        self.undo.push(EditsCommand(self.ws, self.ws.edits, after, text, merge_key))

    def add_slider(self, feature: int) -> None:
        if self.ws.sae is None or not 0 <= feature < self.ws.sae.d_sae:
            return
        if self.ws.edit_for(feature) is None:
            self.push_edits(self.ws.with_edit(Edit(feature, "scale", 1.0)), f"add slider #{feature}")
        self.steering_dock.raise_()

    def remove_slider(self, feature: int) -> None:
        self.push_edits(self.ws.without_edit(feature), f"remove slider #{feature}")

    def set_edit(self, edit: Edit, merge_key: object = None) -> None:
        self.push_edits(self.ws.with_edit(edit), f"#{edit.feature} {edit.mode}={edit.value:g}", merge_key)

    def _edit_requested(self, edit: Edit, merge_key: object) -> None:
        try:
            self.set_edit(edit, merge_key)
        except WorkbenchError as exc:
            self.report_error(exc.message)

    def _range_requested(self, feature: int) -> None:
        e = self.ws.edit_for(feature)
        sel = self.timeline.selection
        if e is None:
            return
        if sel is None:
            self.statusBar().showMessage("Shift+drag on the timeline to select a time range first", 8000)
            self.steering.set_edits(self.ws.edits, self._labels(), force=True)  # unchecks the button
            return
        self.set_edit(replace(e, t0=round(sel[0], 3), t1=round(sel[1], 3)))

    def reset_edits(self) -> None:
        """Feature sliders back to neutral; probe edits (whose neutral is no edit) removed."""
        self.push_edits(tuple(replace(e, value=NEUTRAL[e.mode], t0=None, t1=None) for e in self.ws.edits
                              if not isinstance(e, ProbeEdit)), "reset")

    def _request_steer(self, *_: object) -> None:
        a, codec = self.ws.analysis, self.ws.codec
        if a is None or codec is None or self.ws.steered_is_current:
            return
        self.steerer.submit(SteerRequest(a, codec, self.ws.steering_context, self.ws.edits))

    def _on_steer_partial(self, req: SteerRequest, z: Any) -> None:
        if req.analysis is self.ws.analysis and self.engine is not None:
            self.engine.set_steered(z)

    def _on_steered(self, req: SteerRequest, res: SteerResult) -> None:
        if req.analysis is self.ws.analysis:
            self.ws.set_steered(res)

    def _on_steered_applied(self) -> None:
        a, st = self.ws.analysis, self.ws.steered
        if a is None or st is None:
            return
        changed = st.clip is not a.decoded
        self.timeline.set_waveforms(a.decoded.samples, st.clip.samples if changed else None, a.decoded.sample_rate)
        self.timeline.set_mels(a.mel, st.mel)
        self._refresh_lines()

    def _feature_activated(self, feature: int) -> None:
        self.ws.set_selected([feature])
        self.table.select_features([feature])

    # -- transport -----------------------------------------------------------------------------------
    def _play_reason(self) -> tuple[bool, str]:
        if self.ws.analysis is None or self.engine is None:
            return False, "Nothing to play yet: open an audio file"
        if not self.engine.has_device and not self.settings.silent_playback:
            why = self.engine.message or "no audio output device"
            return False, (f"Play is unavailable: {why.split(':')[0]}. Connect an output device and choose it "
                           "in the Output menu, or turn on silent playback there to move the playhead without sound.")
        return True, ""

    def _update_play_state(self) -> None:
        ok, reason = self._play_reason()
        self.transport.set_play_enabled(ok, reason)
        eng = self.engine
        if eng is None:
            self.device_label.setText("")
        elif eng.has_device:
            self.device_label.setText(f"output: {eng.device.name if eng.device else ''}")
            self.device_label.setToolTip("audio output device")
        else:
            self.device_label.setText("no output device" + (" (silent playback)" if self.settings.silent_playback else ""))
            self.device_label.setToolTip(reason or (eng.message or ""))
        if not ok and self.ws.analysis is not None:
            self.statusBar().showMessage(reason, 15000)

    def toggle_play(self) -> None:
        eng = self.engine
        ok, reason = self._play_reason()
        if eng is None:
            return
        if eng.is_playing:
            eng.pause()
            self.transport.set_playing(False)
            self.playhead_timer.stop()
            return
        if not ok:
            self.statusBar().showMessage(reason, 10000)
            return
        self.insight.before_main_play()
        try:
            eng.play()
        except PlaybackError as exc:
            self.report_error(exc.message)
            self._update_play_state()
            return
        self.transport.set_playing(True)
        self.playhead_timer.start()

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
        self.transport.set_playing(False)
        self.playhead_timer.stop()
        self._tick()

    def seek(self, t: float) -> None:
        if self.engine is not None:
            self.engine.seek(t)
        self.timeline.set_playhead(t)
        a = self.ws.analysis
        self.transport.set_time(t, a.duration if a else 0.0)

    def _tick(self) -> None:
        eng, a = self.engine, self.ws.analysis
        if eng is None or a is None:
            return
        pos = eng.position
        self.timeline.set_playhead(pos, follow=eng.is_playing)
        self.transport.set_time(pos, a.duration)
        self._show_limiter(eng.limiter_reduction_db)

    def _show_limiter(self, db: float) -> None:
        """The status-bar notice while the output limiter turns the sound down by more than a few dB."""
        if db > LIMITER_SHOW_DB:
            self.limiter_label.setText(f"limiter: −{db:.0f} dB")
            self.limiter_label.setToolTip(
                f"The output limiter is turning the sound down by {db:.0f} dB to keep its peaks at −1 dBFS: "
                "the edit makes the audio much louder than the original. Reduce it to hear it undistorted.")
            self.limiter_label.show()
        elif self.limiter_label.isVisible():
            self.limiter_label.hide()

    def _on_engine_state(self, state: str, message: str) -> None:
        if state in ("ended", "stopped", "paused", "error"):
            self.transport.set_playing(False)
            self.playhead_timer.stop()
            self._tick()
        if state == "error":
            self.report_error(message or "playback stopped")
            self._update_play_state()  # a device that went away disables Play, with the reason

    def _on_time_selection(self, sel: object) -> None:
        if self.transport.loop.isChecked():
            self._apply_loop()

    def _apply_loop(self) -> None:
        if self.engine is None or self.ws.analysis is None:
            return
        if self.transport.loop.isChecked():
            sel = self.timeline.selection
            self.engine.set_loop(*(sel if sel else (0.0, self.ws.analysis.duration)))
        else:
            self.engine.set_loop(None)

    def _set_ab(self, which: str) -> None:
        if self.engine is not None:
            self.engine.set_ab(which)

    def _populate_devices(self) -> None:
        eng = self.engine
        self.transport.populate_devices(list_output_devices(), eng.device.name if eng and eng.device else None,
                                        self.settings.silent_playback, bool(eng and eng.has_device))

    def choose_device(self, name: object) -> None:
        """Re-open the engine on another device (remembered by name)."""
        self.settings.output_device = name if isinstance(name, str) else None
        self._save_settings()
        if self.ws.codec is None:
            return
        was = self.engine.position if self.engine else 0.0
        if self.engine is not None:
            self.engine.close()
        self.transport.set_playing(False)
        self.playhead_timer.stop()
        self._make_engine(self.ws.codec)
        a, st = self.ws.analysis, self.ws.steered
        if a is not None and self.engine is not None:
            self.engine.load(a.z, None if st is None else st.z, a.source.num_samples)
            self.engine.set_ab(self.ws_ab())
            self.engine.seek(was)
            self._apply_loop()

    def _set_silent(self, on: bool) -> None:
        self.settings.silent_playback = on
        self._save_settings()
        self._update_play_state()

    # -- files -----------------------------------------------------------------------------------------
    def _start_dir(self) -> str:
        return self.settings.last_dir or str(Path.home())

    def _remember_dir(self, path: str) -> None:
        self.settings.last_dir = str(Path(path).parent)

    def open_audio_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", self._start_dir(), AUDIO_FILTER)
        if path:
            self._remember_dir(path)
            self.open_audio(path)

    def open_sae_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open SAE folder", self._start_dir())
        if d:
            self.open_sae(d)

    def _fill_recent(self) -> None:
        m = self.recent_menu
        m.clear()
        files, sessions = self.settings.recent_files, self.settings.recent_sessions
        if not files and not sessions:
            m.addAction("(none)").setEnabled(False)
        for p in files:
            m.addAction(p, lambda p=p: self.open_audio(p))
        if files and sessions:
            m.addSeparator()
        for p in sessions:
            m.addAction(f"Session: {p}", lambda p=p: self.open_session(p))
        if files or sessions:
            m.addSeparator()
            m.addAction("Clear list", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.recent_files.clear()
        self.settings.recent_sessions.clear()
        self._save_settings()

    def current_session(self) -> Session:
        a, sae = self.ws.analysis, self.ws.sae
        return Session(
            audio=None if a is None or a.path is None else str(a.path),
            codec=self.ws.codec_id,
            sae=None if sae is None or self.ws.sae_is_default or sae.folder is None else str(sae.folder),
            edits=list(self.ws.edits), selected_features=list(self.ws.selected), ab=self.ws_ab(),
            loop=self.timeline.selection,
        )

    def save_session(self, path: str) -> None:
        try:
            save_session(path, self.current_session())
        except WorkbenchError as exc:
            self.report_error(exc.message)
            return
        self.settings.add_recent(path, "sessions")
        self._save_settings()
        self.statusBar().showMessage(f"session saved to {path}", 5000)

    def open_session(self, path: str) -> None:
        try:
            s = load_session(path)
        except WorkbenchError as exc:
            self.report_error(exc.message)
            return
        sae = s.sae if s.sae else DEFAULT
        self.request_load(LoadRequest(s.codec, sae, s.audio or DEMO, session=s))

    def save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", self._start_dir(), "Workbench session (*.wbsession.json *.json)")
        if path:
            if not path.endswith(".json"):
                path += ".wbsession.json"
            self._remember_dir(path)
            self.save_session(path)

    def open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self._start_dir(), "Workbench session (*.json);;All files (*)")
        if path:
            self._remember_dir(path)
            self.open_session(path)

    def export_dialog(self) -> None:
        if self.ws.analysis is None:
            return
        a = self.ws.analysis
        stem = (a.path.stem if a.path else "demo") + "-steered.wav"
        path, _ = QFileDialog.getSaveFileName(self, "Export steered audio", str(Path(self._start_dir()) / stem),
                                              "WAV (*.wav);;FLAC (*.flac);;OGG (*.ogg)")
        if path:
            if Path(path).suffix.lower() not in (".wav", ".flac", ".ogg"):
                path += ".wav"
            self._remember_dir(path)
            self.export(path)

    def export_table_dialog(self) -> None:
        if self.ws.sae is None:
            self.report_error("load an SAE first: the feature table is empty")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export feature table", str(Path(self._start_dir()) / "features.csv"),
                                              "CSV (*.csv)")
        if path:
            if Path(path).suffix.lower() != ".csv":
                path += ".csv"
            self._remember_dir(path)
            self.export_table(path)

    def export_table(self, path: str) -> bool:
        """The feature table (labels, scores, density, max activation, this clip's columns) as CSV."""
        from workbench.core.userdirs import atomic_write_text

        a = self.ws.analysis
        clip = (str(a.path) if a.path else a.name) if a is not None else ""
        try:
            atomic_write_text(Path(path), self.table.model.to_csv(clip))
        except (OSError, WorkbenchError) as exc:
            why = exc.message if isinstance(exc, WorkbenchError) else (exc.strerror or str(exc))
            self.report_error(f"{path}: cannot write the feature table ({why})")
            return False
        self.statusBar().showMessage(f"exported the feature table to {path}", 8000)
        return True

    def export(self, path: str) -> Task | None:
        """Render the current edits afresh (never a stale buffer) and write them, in a worker."""
        a, codec = self.ws.analysis, self.ws.codec
        if a is None or codec is None:
            return None
        req = SteerRequest(a, codec, self.ws.steering_context, self.ws.edits)

        def job(j: JobControl) -> str:
            clip: AudioClip = run_steer(req, j).clip
            y, lim = limit(clip.samples, clip.sample_rate)  # peaks at -1 dBFS, as playback
            p = save_audio(path, AudioClip(y, clip.sample_rate))
            said = summary(lim)
            return f"exported {p}" + (f" (limiter: {said})" if said else "")

        t = Task(job, "export")
        t.succeeded.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        t.failed.connect(lambda m: self.report_error(f"export failed: {m}"))
        return t.start_task()

    # -- drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        e.acceptProposedAction()
        self.open_path(paths[0])

    def open_path(self, path: str) -> None:
        """Whatever the user dropped: an SAE folder, a session file, or audio."""
        p = Path(path)
        try:
            is_dir = p.is_dir()
        except (OSError, ValueError):  # name too long, NUL in it: the audio loader names the problem
            is_dir = False
        if is_dir:
            try:
                check_sae_folder(p)  # the engine's own one line: no cfg.json, only pickles, several SAEs
            except WorkbenchError as exc:
                self.report_error(exc.message)
                return
            self.open_sae(str(p))
            return
        if p.suffix.lower() == ".json":
            self.open_session(str(p))
            return
        if p.suffix.lower() not in AUDIO_EXTENSIONS:
            log.info("drop: unusual extension %s, trying it as audio", p.suffix)
        self.open_audio(str(p))

    # -- settings and shutdown ---------------------------------------------------------------------
    def _qsettings(self) -> QSettings:
        return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_geometry(self) -> None:
        qs = self._qsettings()
        g, s = qs.value("geometry"), qs.value("state")
        if isinstance(g, QByteArray | bytes):
            self.restoreGeometry(g)
        else:
            self.resize(*first_size(self.screen().availableGeometry().size().toTuple()))
        if not (isinstance(s, QByteArray | bytes) and self.restoreState(s)):
            self.insight.arrange(self.width())

    def _save_settings(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as exc:
            log.warning("cannot save settings: %s", exc)

    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        if self.training.running and self.dialogs:
            ans = QMessageBox.question(self, "Training is running", "Cancel the training run and quit?")
            if ans != QMessageBox.StandardButton.Yes:
                e.ignore()
                return
        self.shutdown()
        try:
            qs = self._qsettings()
            qs.setValue("geometry", self.saveGeometry())
            qs.setValue("state", self.saveState())
            qs.sync()
        except Exception as exc:  # geometry is a nicety; never block closing
            log.warning("cannot save window geometry: %s", exc)
        self._save_settings()
        super().closeEvent(e)

    def shutdown(self) -> None:
        """Stop everything that runs in the background: workers, playback threads, timers."""
        self.playhead_timer.stop()
        self.training.shutdown()
        self.insight.shutdown()
        self.loader.cancel()
        self.steerer.cancel()
        shutdown_tasks()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        if self._gc_held:
            self._gc_held = False
            gc_guard.release()

    # -- introspection (tests, smoke test, screenshots) ------------------------------------------------
    def populated_views(self) -> dict[str, bool]:
        tl = self.timeline
        return {
            "waveform": tl.wave_a.pyramid is not None,
            "mel_a": tl.img_mel_a.image is not None,
            "mel_b": tl.img_mel_b.image is not None,
            "latents": tl.img_latent.image is not None,
            "heatmap": tl.img_heat.image is not None and len(tl.heat_features) > 0,
            "feature_table": self.table.model.n > 0,
        }
