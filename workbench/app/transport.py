"""Transport bar: play/pause (Space), stop, loop selection, A/B, output device menu, time display.

It only shows state and emits requests; the window drives the playback engine. With no output device
Play is disabled and the reason is its tooltip (and the status bar), unless the user turned on silent
playback in the device menu, which moves the playhead without sound.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QMenu, QToolBar, QToolButton, QWidget

from workbench.core.playback import OutputDevice


def fmt_time(t: float) -> str:
    t = max(0.0, t)
    return f"{int(t // 60)}:{t % 60:05.2f}"


class Transport(QToolBar):
    playToggled = Signal()
    stopRequested = Signal()
    loopToggled = Signal(bool)
    abToggled = Signal(str)
    deviceChosen = Signal(object)  # device name (str) or None for the default
    silentToggled = Signal(bool)
    devicesRefresh = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Transport", parent)
        self.setObjectName("transport")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.play = QAction("▶  Play", self)
        self.play.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.play.triggered.connect(self.playToggled)
        self.stop = QAction("■  Stop", self)
        self.stop.setToolTip("Stop and return to the start")
        self.stop.triggered.connect(self.stopRequested)
        self.loop = QAction("⟲  Loop", self)
        self.loop.setCheckable(True)
        self.loop.setToolTip("Loop the time selection (Shift+drag on the timeline), or the whole clip")
        self.loop.toggled.connect(self.loopToggled)
        self.ab = QAction("B: steered", self)
        self.ab.setCheckable(True)
        self.ab.setChecked(True)
        self.ab.setShortcut(QKeySequence("B"))
        self.ab.setToolTip("Switch instantly between A (codec output, unedited) and B (steered)  [B]")
        self.ab.toggled.connect(self._ab)
        self.time = QLabel("0:00.00 / 0:00.00")
        self.time.setMinimumWidth(130)
        self.time.setStyleSheet("font-family: monospace; padding: 0 8px")
        self.device_btn = QToolButton()
        self.device_btn.setText("Output ▾")
        self.device_btn.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.device_menu = QMenu(self.device_btn)
        self.device_btn.setMenu(self.device_menu)
        self.device_menu.aboutToShow.connect(self.devicesRefresh)
        for a in (self.play, self.stop):
            self.addAction(a)
        self.addWidget(self.time)
        self.addSeparator()
        self.addAction(self.loop)
        self.addAction(self.ab)
        self.addSeparator()
        self.addWidget(self.device_btn)
        self._silent = False

    def _ab(self, on: bool) -> None:
        self.ab.setText("B: steered" if on else "A: original")
        self.abToggled.emit("B" if on else "A")

    def set_playing(self, playing: bool) -> None:
        self.play.setText("⏸  Pause" if playing else "▶  Play")

    def set_play_enabled(self, enabled: bool, reason: str) -> None:
        self.play.setEnabled(enabled)
        self.play.setToolTip("Play / pause  [Space]" if enabled else reason)
        # Disabled actions show no tooltip on their button in some styles: say it on the button too.
        btn = self.widgetForAction(self.play)
        if btn is not None:
            btn.setToolTip(self.play.toolTip())

    def set_time(self, pos: float, duration: float) -> None:
        self.time.setText(f"{fmt_time(pos)} / {fmt_time(duration)}")

    def populate_devices(self, devices: list[OutputDevice], current: str | None, silent: bool, has_device: bool) -> None:
        m = self.device_menu
        m.clear()
        group = QActionGroup(m)
        if not devices:
            a = m.addAction("No output devices found")
            a.setEnabled(False)
        for d in devices:
            a = m.addAction(d.name + ("  (default)" if d.is_default else ""))
            a.setCheckable(True)
            a.setChecked(has_device and current == d.name)
            a.triggered.connect(lambda _=False, n=d.name: self.deviceChosen.emit(n))
            group.addAction(a)
        m.addSeparator()
        s = m.addAction("Silent playback when there is no device")
        s.setCheckable(True)
        s.setChecked(silent)
        s.setToolTip("Run the playhead without sound, e.g. on a machine without audio output")
        s.toggled.connect(self.silentToggled)
        m.addAction("Refresh devices").triggered.connect(lambda: self.deviceChosen.emit(current))
        self.device_btn.setText(("Output: " + current) if has_device and current else "Output: none ▾")
