"""Pitch, loudness or timbre over time for the current clip, original (A) and steered (B), in the
timeline's last row (so zoom, pan, playhead and selection apply).

Both curves are read from decoded audio the same way (`core.analysis.explore.property_track`): by the
SAE's probe of the property on the re-encoded audio, or measured (CREPE pitch, RMS, centroid). The A
curve is computed once per clip, property and source; B again whenever the steered audio changes,
debounced and in the app's worker pattern (newest request wins), so dragging a slider never blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from workbench.app.timeline import TimelineView
from workbench.app.worker import LatestWins
from workbench.core.analysis.explore import property_track
from workbench.core.audio import AudioClip
from workbench.core.codecs.base import Codec
from workbench.core.jobs import JobControl
from workbench.core.sae_bridge import LoadedSAE
from workbench.core.workspace import ClipAnalysis

DEBOUNCE_MS = 150
LABELS = {"pitch": "Pitch", "loudness": "Loudness (dB)", "timbre": "Centroid (Hz)"}
HOW = {"probe": "probe", "measured": "measured"}
TIMBRE_TICKS_HZ = (100, 200, 400, 800, 1600, 3200, 6400)


@dataclass(frozen=True)
class TrackRequest:
    analysis: ClipAnalysis
    codec: Codec
    sae: LoadedSAE | None
    probes: Any
    prop: str
    source: str
    steered: AudioClip | None  # None: no edits (B = A)
    original: np.ndarray | None  # A when already known


@dataclass(frozen=True)
class TrackResult:
    original: np.ndarray
    steered: np.ndarray | None


def run_tracks(req: TrackRequest, job: JobControl) -> TrackResult:
    a, n = req.analysis, req.analysis.num_frames
    orig = req.original
    if orig is None:
        job.progress(0.0, f"{req.prop}: original")
        orig = property_track(req.prop, req.source, a.decoded, req.codec, n, req.sae, req.probes, job=job)
    job.check()
    st = None
    if req.steered is not None:
        job.progress(0.5, f"{req.prop}: steered")
        st = property_track(req.prop, req.source, req.steered, req.codec, n, req.sae, req.probes, job=job)
    return TrackResult(orig, st)


Ticks = list[list[tuple[float, str]]]


def _hz(h: int) -> str:
    return f"{h / 1000:g}k" if h >= 1000 else str(h)


def display(prop: str, values: np.ndarray | None) -> tuple[np.ndarray | None, Ticks | None]:
    """Values on the row's scale and the left-axis tick levels: pitch as MIDI numbers with note names at
    the Cs (and unlabelled semitones), loudness in dB, centroid on a log2 scale labelled in Hz."""
    if values is None:
        return None, None
    if prop == "pitch":
        return values, [[(float(m), f"C{m // 12 - 1}") for m in range(24, 109, 12)],
                        [(float(m), "") for m in range(24, 109) if m % 12]]
    if prop == "timbre":
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log2(np.where(values > 0, values, np.nan))
        return v, [[(float(np.log2(h)), _hz(h)) for h in TIMBRE_TICKS_HZ], []]
    return values, None


class PropertyTracks(QObject):
    """Controller: asks for curves when the clip, the steered audio, the property or the source change."""

    status = Signal(str)

    def __init__(self, timeline: TimelineView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.timeline = timeline
        self.prop = "pitch"
        self.source = "measured"
        self.probes: Any = None
        self.analysis: ClipAnalysis | None = None
        self.codec: Codec | None = None
        self.sae: LoadedSAE | None = None
        self.steered: AudioClip | None = None
        self._originals: dict[tuple[int, str, str, int], np.ndarray] = {}
        self.last: TrackResult | None = None
        self.worker = LatestWins(run_tracks, "property", self)
        self.worker.result.connect(self._on_result)
        self.worker.error.connect(self._on_error)
        self.worker.progress.connect(lambda f, m: self.status.emit(f"computing {m}…" if m else "computing…"))
        self.worker.idle.connect(lambda: self.status.emit(""))
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._submit)

    # -- inputs (GUI thread) ----------------------------------------------------------------------
    def set_context(self, analysis: ClipAnalysis | None, codec: Codec | None, sae: LoadedSAE | None) -> None:
        if analysis is not self.analysis or codec is not self.codec or sae is not self.sae:
            self._originals.clear()
        self.analysis, self.codec, self.sae = analysis, codec, sae
        self.steered = None
        self.request()

    def set_probes(self, probes: Any) -> None:
        if probes is not self.probes:
            self.probes = probes
            self._originals = {k: v for k, v in self._originals.items() if k[2] != "probe"}
            self.request()

    def set_steered(self, clip: AudioClip | None) -> None:
        self.steered = clip
        self.request()

    def set_property(self, prop: str) -> None:
        if prop != self.prop:
            self.prop = prop
            self.request(immediate=True)

    def set_source(self, source: str) -> None:
        if source != self.source:
            self.source = source
            self.request(immediate=True)

    @property
    def effective_source(self) -> str:
        return "probe" if self.source == "probe" and self.probes is not None and self.sae is not None else "measured"

    def request(self, immediate: bool = False) -> None:
        self.timer.start(0 if immediate else DEBOUNCE_MS)

    def cancel(self) -> None:
        self.timer.stop()
        self.worker.cancel()

    @property
    def busy(self) -> bool:
        return self.timer.isActive() or self.worker.busy

    # -- work ----------------------------------------------------------------------------------------
    def _key(self) -> tuple[int, str, str, int]:
        return (id(self.analysis), self.prop, self.effective_source, id(self.probes))

    def _submit(self) -> None:
        a, codec = self.analysis, self.codec
        if a is None or codec is None:
            self.timeline.clear_property("property over time: open a clip")
            return
        src = self.effective_source
        self.worker.submit(TrackRequest(a, codec, self.sae, self.probes if src == "probe" else None, self.prop, src,
                                        self.steered, self._originals.get(self._key())))

    def _on_result(self, req: TrackRequest, res: TrackResult) -> None:
        if req.analysis is not self.analysis:
            return
        if req.prop == self.prop and req.source == self.effective_source:
            self._originals[self._key()] = res.original
        self.last = res
        a = req.analysis
        t = np.arange(a.num_frames) / a.frame_rate
        va, ticks = display(req.prop, res.original)
        vb, _ = display(req.prop, res.steered)
        assert va is not None
        self.timeline.set_property_curves(t, va, vb, LABELS[req.prop], ticks, HOW[req.source])

    def _on_error(self, req: TrackRequest, message: str) -> None:
        self.timeline.clear_property(f"{req.prop} over time unavailable: {message}")
