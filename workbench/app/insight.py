"""Feature understanding in the main window (issue 7): the selected feature's dashboard, the probes' accuracy
table, probe-steering sliders and the property-over-time row, wired to the window's workspace.

This module only connects: each pane lives in its own module (dashboard, probe_panel, property_plot,
preview) and listens to the same `Workspace` events as the window's own views. Probe edits go through
the window's undo stack (`MainWindow.push_edits`), so they are steered live, undone, saved in sessions
and exported like feature edits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDockWidget

from workbench.app.dashboard import FeatureDashboard
from workbench.app.preview import PreviewPlayer
from workbench.app.probe_panel import ProbeInfo, ProbePanel, ProbeSteering, no_probes_text
from workbench.app.property_plot import PropertyTracks
from workbench.core.analysis.probes import has_probes
from workbench.core.steering import Edit, ProbeEdit

if TYPE_CHECKING:
    from workbench.app.main_window import MainWindow

WIDE_WINDOW = 1700  # px: from this window width the dashboard gets its own column on the left


class FeatureInsight(QObject):
    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.dashboard = FeatureDashboard()
        self.probe_panel = ProbePanel()
        self.probe_steering = ProbeSteering()
        self.tracks = PropertyTracks(win.timeline, self)
        self.preview = PreviewPlayer(self._can_play, self._before_preview, self)
        self.info = ProbeInfo(None)
        win.steering.set_top_widget(self.probe_steering)

        # Docks: the dashboard beside the steering panel (its own column in a wide window, see `arrange`),
        # the probe table as a tab beside the feature table.
        self.dashboard_dock = win._dock("Feature", self.dashboard, Qt.DockWidgetArea.RightDockWidgetArea)
        self.probes_dock = win._dock("Probes", self.probe_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        win.tabifyDockWidget(win.features_dock, self.probes_dock)
        self.arrange(0)
        menu = getattr(win, "view_menu", None)
        if menu is not None:
            first = menu.actions()[0] if menu.actions() else None
            for d in (self.dashboard_dock, self.probes_dock):
                menu.insertAction(first, d.toggleViewAction())  # type: ignore[arg-type]

        # Model → views
        ev = win.ws.events
        ev.connect("codec", self._on_context)
        ev.connect("sae", self._on_sae)
        ev.connect("analysis", self._on_context)
        ev.connect("edits", self._on_edits)
        ev.connect("steered", self._on_steered)
        ev.connect("selection", self._on_selection)
        # Views → model
        self.dashboard.playRequested.connect(self.play)
        self.dashboard.stopRequested.connect(self.preview.stop)
        self.dashboard.steerRequested.connect(win.add_slider)
        self.preview.stateChanged.connect(lambda *_: self.dashboard.set_playing(self.preview.key))
        self.preview.failed.connect(lambda m: win.statusBar().showMessage(m, 10000))
        self.probe_panel.probesChanged.connect(self._on_probes)
        self.probe_panel.reloadRequested.connect(self._reload)
        self.probe_steering.probeEditRequested.connect(self._probe_edit)
        self.probe_steering.rangeRequested.connect(self._range)
        self.probe_steering.propertyChosen.connect(self.tracks.set_property)
        self.probe_steering.sourceChosen.connect(self.tracks.set_source)
        self.tracks.status.connect(self.probe_steering.status.setText)
        self.tracks.set_source(self.probe_steering.current_source())
        self.tracks.set_property(self.probe_steering.current_property())

    def arrange(self, width: int) -> None:
        """The first-launch place of the dashboard for a window `width` px wide (a saved layout wins over
        this): its own column on the left from WIDE_WINDOW px, else a tab beside the steering panel, so
        a narrower window keeps its room for the timeline."""
        win = self.win
        if width >= WIDE_WINDOW:
            win.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dashboard_dock)
            win.resizeDocks([self.dashboard_dock], [440], Qt.Orientation.Horizontal)
            win.resizeDocks([win.features_dock, win.steering_dock], [520, 360], Qt.Orientation.Vertical)
        else:
            win.tabifyDockWidget(win.steering_dock, self.dashboard_dock)
            win.steering_dock.raise_()
            win.resizeDocks([win.features_dock, win.steering_dock], [440, 440], Qt.Orientation.Vertical)
        win.resizeDocks([win.features_dock], [540], Qt.Orientation.Horizontal)
        win.features_dock.raise_()

    # -- model events ----------------------------------------------------------------------------
    def _on_context(self) -> None:
        ws, win = self.win.ws, self.win
        self.preview.stop()
        self.preview.set_output(ws.codec, win.settings.output_device, win.use_audio_device)  # new codec: new engine
        self.dashboard.set_context(ws.sae, ws.codec, ws.analysis)
        self.tracks.set_context(ws.analysis, ws.codec, ws.sae)

    def _on_sae(self) -> None:
        ws = self.win.ws
        folder = None if ws.sae is None else ws.sae.folder
        if any(isinstance(e, ProbeEdit) for e in ws.edits) and not has_probes(folder):
            ws.set_edits(self.usable_edits(ws.edits))
        self.probe_panel.set_sae(ws.sae)
        self._on_context()

    def _on_probes(self, info: ProbeInfo) -> None:
        self.info = info
        ok = info.available
        if self.win.ws.sae is None:
            reason = "No SAE loaded: probe steering needs an SAE with probes."
        elif not info.loaded:
            reason = "reading probes…"
        elif info.error:
            reason = f"The probes cannot be used: {info.error}"
        else:
            reason = "" if ok else no_probes_text(info.folder)
        self.probe_steering.set_available(ok, reason)
        self.tracks.set_probes(info.probes if ok else None)

    def _on_edits(self) -> None:
        self.probe_steering.set_edits(self.win.ws.edits)

    def _on_steered(self) -> None:
        ws = self.win.ws
        a, st = ws.analysis, ws.steered
        if a is None or st is None:
            return
        self.tracks.set_steered(None if st.clip is a.decoded else st.clip)

    def _on_selection(self) -> None:
        sel = self.win.ws.selected
        self.dashboard.show_feature(sel[-1] if sel else None)

    # -- edits -------------------------------------------------------------------------------------
    def usable_edits(self, edits: tuple[Edit, ...] | list[Edit]) -> tuple[Edit, ...]:
        """Edits the loaded SAE can apply: probe edits only when its folder has probes."""
        sae = self.win.ws.sae
        probes = sae is not None and has_probes(sae.folder)
        return tuple(e for e in edits if probes or not isinstance(e, ProbeEdit))

    def _probe_edit(self, sentinel: int, edit: ProbeEdit | None, merge_key: object) -> None:
        ws = self.win.ws
        if edit is None:
            after, text = ws.without_edit(sentinel), "remove probe edit"
        else:
            after, text = ws.with_edit(edit), edit.spec()
        self.win.push_edits(after, text, merge_key)
        if after == ws.edits:
            self.probe_steering.set_edits(ws.edits)  # a refused or empty change: show the model again

    def _range(self, sentinel: int) -> None:
        self.win._range_requested(sentinel)
        self.probe_steering.set_edits(self.win.ws.edits)

    def _reload(self) -> None:
        ws = self.win.ws
        if ws.sae is None:
            return
        from workbench.app.main_window import DEFAULT

        self.win.open_sae(DEFAULT if ws.sae_is_default or ws.sae.folder is None else str(ws.sae.folder))

    # -- audition ----------------------------------------------------------------------------------
    def _can_play(self) -> tuple[bool, str]:
        return self.win._play_reason()

    def _before_preview(self) -> None:
        eng = self.win.engine
        if eng is not None and eng.is_playing:
            self.win.toggle_play()  # pause the clip: one stream at a time

    def play(self, z: Any, key: Any) -> None:
        win = self.win
        self.preview.set_output(win.ws.codec, win.settings.output_device, win.use_audio_device)
        self.preview.play(z, key)
        self.dashboard.set_playing(self.preview.key)

    def before_main_play(self) -> None:
        self.preview.stop()

    def shutdown(self) -> None:
        self.dashboard.cancel()
        self.tracks.cancel()
        self.preview.close()

    # -- introspection (tests, screenshots) ----------------------------------------------------------
    def docks(self) -> list[QDockWidget]:
        return [self.dashboard_dock, self.probes_dock]
