"""The app's document, without Qt: codec, SAE, clip analysis, edits, steered result, selection.

napari-style: this model holds state and announces changes through plain callbacks (`Events`); the Qt
views listen and write back through its setters. Heavy work is done by the pure functions below
(`analyze`, `steer_latents`, `render_steered`), which the app runs in its worker threads on a
snapshot of the state; results are applied here on the GUI thread. So the model is never touched by
two threads, and every computation is testable headless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.audio import AudioClip, load_audio
from workbench.core.codecs.base import Codec
from workbench.core.jobs import JobControl
from workbench.core.sae_bridge import LoadedSAE
from workbench.core.steering import Edit, SteeringContext, apply_edits, edited_features
from workbench.core.visuals import FeatureSummary, MelImage, log_mel, summarize_features

log = logging.getLogger(__name__)

NEUTRAL = {"scale": 1.0, "add": 0.0, "set": 0.0}


class Events:
    """Minimal observer: `connect(name, fn)`, `emit(name, *args)`; a failing listener is logged, not fatal."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[..., None]]] = {}

    def connect(self, name: str, fn: Callable[..., None]) -> None:
        self._listeners.setdefault(name, []).append(fn)

    def disconnect(self, name: str, fn: Callable[..., None]) -> None:
        if fn in self._listeners.get(name, []):
            self._listeners[name].remove(fn)

    def emit(self, name: str, *args: Any) -> None:
        for fn in list(self._listeners.get(name, [])):
            fn(*args)


@dataclass(frozen=True)
class ClipAnalysis:
    """Everything derived from (clip, codec, SAE) that the views show."""

    source: AudioClip  # the loaded audio at the codec's rate and channel layout
    path: Path | None  # None for the demo clip
    name: str
    z: np.ndarray  # [T, D] codec latents
    decoded: AudioClip  # the codec's own decode of z: what "A" plays
    mel: MelImage  # of `decoded`
    frame_rate: float
    features: np.ndarray | None = None  # [T, F]
    summary: FeatureSummary | None = None

    @property
    def duration(self) -> float:
        return self.source.duration

    @property
    def num_frames(self) -> int:
        return int(self.z.shape[0])


@dataclass(frozen=True)
class SteerResult:
    edits: tuple[Edit, ...]
    z: np.ndarray
    clip: AudioClip
    mel: MelImage
    features: np.ndarray | None = None  # f' (the edited activations), for the timelines


def load_clip(path: str | Path, codec: Codec) -> AudioClip:
    return load_audio(path, codec.sample_rate, codec.channels)


def mel_of(clip: AudioClip) -> MelImage:
    return log_mel(clip.samples, clip.sample_rate, n_mels=96, n_fft=1024, hop=max(1, clip.sample_rate // 100))


def analyze(clip: AudioClip, codec: Codec, sae: LoadedSAE | None, path: Path | None, name: str,
            job: JobControl | None = None) -> ClipAnalysis:
    step = job.progress if job is not None else (lambda f, m="": None)
    clip = codec.prepare(clip)
    step(0.1, "encoding")
    z = codec.encode(clip)
    step(0.4, "decoding")
    decoded = codec.decode(z, clip.num_samples)
    step(0.7, "spectrogram")
    mel = mel_of(decoded)
    a = ClipAnalysis(clip, path, name, z, decoded, mel, codec.frame_rate)
    if sae is not None:
        step(0.85, "features")
        a = with_features(a, sae)
    step(1.0, "")
    return a


def with_features(a: ClipAnalysis, sae: LoadedSAE | None) -> ClipAnalysis:
    if sae is None:
        return replace(a, features=None, summary=None)
    f = sae.encode(a.z)
    return replace(a, features=f, summary=summarize_features(f))


def active_edits(edits: Sequence[Edit]) -> tuple[Edit, ...]:
    """Edits that change something: a slider at its neutral value is not an edit."""
    return tuple(e for e in edits if not (e.mode in ("scale", "add") and e.value == NEUTRAL[e.mode]))


def steer_latents(a: ClipAnalysis, ctx: SteeringContext | None, edits: Sequence[Edit]) -> np.ndarray:
    eff = active_edits(edits)
    if ctx is None or not eff:
        return a.z
    return apply_edits(a.z, eff, ctx, features=a.features)


def render_steered(a: ClipAnalysis, codec: Codec, ctx: SteeringContext | None, edits: Sequence[Edit],
                   z: np.ndarray | None = None, job: JobControl | None = None) -> SteerResult:
    """Decode the steered latents (the B buffer) and its spectrogram; reuses A when nothing changes."""
    eff = active_edits(edits)
    if z is None:
        z = steer_latents(a, ctx, eff)
    if not eff or z is a.z:
        return SteerResult(tuple(edits), a.z, a.decoded, a.mel, a.features)
    if job is not None:
        job.check()
    clip = codec.decode(z, a.source.num_samples)
    if job is not None:
        job.check()

    f2 = None if (a.features is None or ctx is None or ctx.prenorm) else edited_features(a.features, eff, ctx)
    return SteerResult(tuple(edits), z, clip, mel_of(clip), f2)


class Workspace:
    """State of one window. Events: "codec", "sae", "analysis", "edits", "steered", "selection"."""

    def __init__(self) -> None:
        self.events = Events()
        self.codec: Codec | None = None
        self.codec_id: str = "default"
        self.sae: LoadedSAE | None = None
        self.sae_is_default = False
        self.analysis: ClipAnalysis | None = None
        self.edits: tuple[Edit, ...] = ()
        self.steered: SteerResult | None = None
        self.selected: tuple[int, ...] = ()
        self._ctx: SteeringContext | None = None

    # -- derived --------------------------------------------------------------------------------
    @property
    def steering_context(self) -> SteeringContext | None:
        if self.sae is None or self.codec is None:
            return None
        if self._ctx is None:
            self._ctx = self.sae.steering_context(self.codec.frame_rate, getattr(self.codec, "loudness_channel", None))
        return self._ctx

    @property
    def steered_is_current(self) -> bool:
        return self.steered is not None and self.steered.edits == self.edits

    # -- setters (GUI thread) -------------------------------------------------------------------
    def set_codec(self, codec_id: str, codec: Codec) -> None:
        self.codec_id, self.codec = codec_id, codec
        self._ctx = None
        self.events.emit("codec")

    def set_sae(self, sae: LoadedSAE | None, is_default: bool = False) -> None:
        self.sae, self.sae_is_default = sae, is_default
        self._ctx = None
        if sae is not None:
            self.edits = tuple(e for e in self.edits if e.feature < sae.d_sae)
            self.selected = tuple(i for i in self.selected if i < sae.d_sae)
        else:
            self.edits, self.selected = (), ()
        self.events.emit("sae")

    def set_analysis(self, a: ClipAnalysis | None) -> None:
        self.analysis = a
        self.steered = None if a is None else SteerResult((), a.z, a.decoded, a.mel, a.features)
        self.events.emit("analysis")

    def set_edits(self, edits: Sequence[Edit]) -> None:
        edits = tuple(edits)
        if edits == self.edits:
            return
        self.edits = edits
        self.events.emit("edits")

    def set_steered(self, r: SteerResult) -> None:
        self.steered = r
        self.events.emit("steered")

    def set_selected(self, features: Sequence[int]) -> None:
        sel = tuple(dict.fromkeys(int(i) for i in features))
        if sel != self.selected:
            self.selected = sel
            self.events.emit("selection")

    # -- edit helpers (pure: they return the new list; the app pushes it through its undo stack) --
    def edit_for(self, feature: int) -> Edit | None:
        for e in self.edits:
            if e.feature == feature:
                return e
        return None

    def with_edit(self, edit: Edit) -> tuple[Edit, ...]:
        out = [edit if e.feature == edit.feature else e for e in self.edits]
        if not any(e.feature == edit.feature for e in self.edits):
            out.append(edit)
        return tuple(out)

    def without_edit(self, feature: int) -> tuple[Edit, ...]:
        return tuple(e for e in self.edits if e.feature != feature)
