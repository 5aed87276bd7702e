"""The demo clip a first-time user sees: rendered once, cached in the user cache folder.

Preferred source: the project's synthetic music renderer (`workbench.core.data.synth.render_clip`,
SoundFont instruments). If it is unavailable (module not installed yet, no FluidSynth), a short piece
of harmonic tones with varied timbre, loudness and a few percussive hits is generated instead, so the
app always opens with something whose features differ over time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.audio import AudioClip, load_audio, save_audio
from workbench.core.userdirs import cache_dir

log = logging.getLogger(__name__)

DEMO_RATE = 24000
DEMO_VERSION = 1


def demo_path(source: str) -> Path:
    return cache_dir() / "demo" / f"demo-{source}-v{DEMO_VERSION}.wav"


def _note(freq: float, dur: float, sr: int, bright: float, amp: float, rng: np.random.Generator) -> np.ndarray:
    n = int(dur * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    for h in range(1, 12):
        if freq * h > sr / 2 - 500:
            break
        y += (bright**(h - 1)) / h * np.sin(2 * np.pi * freq * h * t + rng.uniform(0, 2 * np.pi))
    att, rel = min(0.02, dur / 4), min(0.25, dur / 2)
    env = np.minimum(1.0, t / att) * np.exp(-t * 1.5)
    env *= np.clip((dur - t) / rel, 0.0, 1.0)
    return (amp * y * env / max(1e-9, np.abs(y).max())).astype(np.float32)


def _hit(dur: float, sr: int, rng: np.random.Generator, amp: float) -> np.ndarray:
    n = int(dur * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    body = np.sin(2 * np.pi * 70 * t * np.exp(-t * 8))
    return (amp * (0.5 * noise * np.exp(-t * 40) + body * np.exp(-t * 18))).astype(np.float32)


def tone_piece(seconds: float = 8.0, sr: int = DEMO_RATE, seed: int = 0) -> AudioClip:
    """A short deterministic piece: an arpeggio (bright), a melody (mellow), chords, and drum hits."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr) + sr, np.float32)

    def put(start: float, x: np.ndarray) -> None:
        i = int(start * sr)
        j = min(len(y), i + len(x))
        if j > i:
            y[i:j] += x[: j - i]

    midi = lambda m: 440.0 * 2 ** ((m - 69) / 12)  # noqa: E731
    beat = 0.25
    arp = [60, 64, 67, 72, 67, 64] * 2 + [57, 60, 64, 69, 64, 60] * 2
    for i, m in enumerate(arp):
        put(i * beat, _note(midi(m), beat * 1.6, sr, 0.75, 0.25 + 0.1 * (i % 3 == 0), rng))
    t0 = len(arp) * beat
    melody = [(72, 1), (74, 0.5), (76, 0.5), (79, 1.5), (77, 0.5), (76, 1), (72, 1)]
    t = t0
    for m, d in melody:
        put(t, _note(midi(m), d * 0.5 * 1.1, sr, 0.35, 0.35, rng))
        t += d * 0.5
    for k, chord in enumerate([(48, 55, 64), (45, 52, 60), (41, 48, 57), (43, 50, 59)]):
        for m in chord:
            put(t0 + k, _note(midi(m), 1.0, sr, 0.55, 0.12, rng))
    for k in range(int(seconds / 0.5)):
        if k % 2 == 0 or k > 10:
            put(k * 0.5, _hit(0.25, sr, rng, 0.35 if k % 4 == 0 else 0.18))
    y = y[: int(seconds * sr)]
    y *= 0.8 / max(1e-9, float(np.abs(y).max()))
    return AudioClip(y[:, None], sr)


def _render_synth() -> AudioClip | None:
    """A multi-instrument texture from the SoundFont renderer, or None if it is unavailable."""
    try:
        from workbench.core.data import synth

        return as_audio_clip(synth.render_clip("texture", 7))
    except Exception as exc:  # missing module, FluidSynth or SoundFont: fall back to tones
        log.info("demo: synthetic renderer unavailable (%s); using tones", exc)
        return None


def as_audio_clip(out: Any) -> AudioClip:
    """An AudioClip from whatever the synth returns (its `SynthClip`, or a clip already)."""
    if isinstance(out, AudioClip):
        return out
    if hasattr(out, "to_audio_clip"):
        return out.to_audio_clip()
    return AudioClip(np.asarray(out.audio, np.float32), int(out.sample_rate))


def _cached(p: Path) -> AudioClip | None:
    if p.is_file():
        try:
            return load_audio(p)
        except Exception:
            p.unlink(missing_ok=True)
    return None


def demo_clip() -> tuple[AudioClip, Path]:
    """The demo clip and the cached file it lives in (rendered on first use; the SoundFont rendering
    is preferred over the tone piece as soon as it is available)."""
    for source, render in (("synth", _render_synth), ("tones", tone_piece)):
        p = demo_path(source)
        clip = _cached(p)
        if clip is not None:
            return clip, p
        clip = render()
        if clip is None:
            continue
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            save_audio(p, clip)
        except Exception as exc:  # a read-only cache must not stop the app
            log.warning("demo: cannot cache the demo clip in %s: %s", p, exc)
        return clip, p
    raise AssertionError("unreachable: the tone piece always renders")
