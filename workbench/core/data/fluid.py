"""Offline FluidSynth rendering that is exact in time and identical on every run.

Three facts about FluidSynth (2.3, measured) shape this module:

- It renders in blocks of 64 samples and applies MIDI events at the next block boundary. Event times
  are therefore snapped to that grid (`BLOCK`) before labels are made, and audio is pulled in
  block-aligned chunks, so a note-on at sample ``k`` really starts at sample ``k``.
- A reused synth is not stateless: ``system_reset`` leaves releasing voices, reverb and chorus
  buffers and other per-voice state behind, so the same clip rendered twice differs. A fresh synth
  per clip is exact, and costs ~1 ms; loading the SoundFont (~20 ms for TimGM6mb, seconds for large
  fonts) is what is expensive. So each process loads every SoundFont once into an "anchor" synth
  that owns it, and each clip gets a fresh synth that borrows the loaded font
  (``fluid_synth_add_sfont``) and gives it back before it is deleted.
- pyfluidsynth's ``get_samples`` returns dithered 16-bit audio; ``fluid_synth_write_float`` gives
  the float mix, without dither and without clipping.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import DataError

BLOCK = 64  # FluidSynth's internal block (FLUID_BUFSIZE): events land on multiples of it
MIN_RATE, MAX_RATE = 8000, 96000  # FluidSynth's synth.sample-rate range
DRUM_CHANNEL = 9
SYNTH_GAIN = 0.9  # single notes land around -22 dBFS (median); only the densest textures need attenuating


@dataclass(frozen=True)
class Event:
    """One MIDI message at a sample position; ``order`` puts note-offs before note-ons at a tie."""

    sample: int
    order: int
    kind: str  # "on" | "off"
    channel: int
    pitch: int
    velocity: int = 0


@dataclass(frozen=True)
class ChannelSetup:
    channel: int
    program: int
    is_drum: bool
    reverb: int = 40  # CC91 send
    chorus: int = 0  # CC93 send
    volume: int = 100  # CC7


def default_soundfont() -> Path:
    """The TimGM6mb General MIDI font that ships inside the pretty_midi wheel (small, complete GM set)."""
    import importlib.util

    spec = importlib.util.find_spec("pretty_midi")  # locate without importing (mido import is slow)
    if spec is None or not spec.origin:
        raise DataError("pretty_midi is not installed: it ships the default SoundFont; pass --soundfont")
    return Path(spec.origin).resolve().parent / "TimGM6mb.sf2"


def _fluid() -> Any:
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise DataError(
            f"FluidSynth is not available ({' '.join(str(exc).split())[:120]}); install libfluidsynth3 and pyfluidsynth"
        ) from None
    return fluidsynth


_c_proto_done = False


def _prototypes(fl: Any) -> None:
    """Declare the C functions pyfluidsynth does not wrap; done once, idempotent."""
    global _c_proto_done
    if _c_proto_done:
        return
    lib = fl._fl
    vp, ci = ctypes.c_void_p, ctypes.c_int
    lib.fluid_synth_write_float.argtypes = [vp, ci, vp, ci, ci, vp, ci, ci]
    lib.fluid_synth_write_float.restype = ci
    lib.fluid_synth_get_sfont_by_id.argtypes = [vp, ci]
    lib.fluid_synth_get_sfont_by_id.restype = vp
    lib.fluid_synth_add_sfont.argtypes = [vp, vp]
    lib.fluid_synth_add_sfont.restype = ci
    lib.fluid_synth_remove_sfont.argtypes = [vp, vp]
    lib.fluid_synth_remove_sfont.restype = ci
    lib.fluid_set_log_function.argtypes = [ci, vp, vp]
    lib.fluid_set_log_function.restype = vp
    # Silence FluidSynth's own logging (warnings, errors, info) on stderr: failures surface as one-line
    # DataErrors, and giving a borrowed font back logs a harmless "no preset" warning per channel.
    for level in (1, 2, 3, 4):  # ERR, WARN, INFO, DBG; PANIC stays
        lib.fluid_set_log_function(level, None, None)
    _c_proto_done = True


class _Font:
    """A SoundFont loaded once per process, owned by an anchor synth that lives as long as the process."""

    def __init__(self, path: Path) -> None:
        fl = _fluid()
        _prototypes(fl)
        self.path = path
        self.anchor = fl.Synth(gain=SYNTH_GAIN, samplerate=44100.0, channels=16)
        sfid = self.anchor.sfload(str(path))
        if sfid is None or sfid < 0:
            self.anchor.delete()
            raise DataError(f"{path}: not a readable SoundFont (.sf2)")
        self.sfid = sfid
        self.ptr = fl._fl.fluid_synth_get_sfont_by_id(self.anchor.synth, sfid)
        if not self.ptr:
            raise DataError(f"{path}: SoundFont loaded but could not be addressed")
        self.lock = threading.Lock()  # the borrowed font is shared state; one render at a time
        self._presets: dict[tuple[int, int], bool] = {}
        self._zone_keys: dict[tuple[int, int], np.ndarray] | None = None

    def keys(self, bank: int, program: int) -> np.ndarray:
        """bool[128]: keys the preset has samples for (all False if the preset is missing)."""
        if self._zone_keys is None:
            from workbench.core.data.sf2 import preset_keys

            self._zone_keys = preset_keys(self.path)
        if not self._has(bank, program):
            return np.zeros(128, bool)
        mask = self._zone_keys.get((bank, program))
        # Unknown layout (e.g. an SF3 we could not parse): trust the preset to cover the keyboard.
        return mask if mask is not None else np.ones(128, bool)

    def _has(self, bank: int, program: int) -> bool:
        key = (bank, program)
        if key not in self._presets:
            self._presets[key] = bool(self.anchor.sfpreset_name(self.sfid, bank, program))
        return self._presets[key]

    def has_preset(self, bank: int, program: int) -> bool:
        return bool(self.keys(bank, program).any())


_fonts: dict[tuple[int, str], _Font] = {}
_fonts_lock = threading.Lock()


def resolve_soundfont(soundfont: str | os.PathLike[str] | None) -> Path:
    p = default_soundfont() if soundfont is None else Path(soundfont).expanduser()
    if not p.exists():
        if soundfont is None:
            raise DataError(f"{p}: the default SoundFont is missing (reinstall pretty_midi or pass --soundfont)")
        raise DataError(f"{p}: no such SoundFont file")
    if not p.is_file():
        raise DataError(f"{p}: is not a file (expected a .sf2 SoundFont)")
    return p.resolve()


def get_font(soundfont: str | os.PathLike[str] | None) -> _Font:
    """The process-wide loaded font for a path; keyed by pid so a forked worker loads its own."""
    path = resolve_soundfont(soundfont)
    key = (os.getpid(), str(path))
    with _fonts_lock:
        font = _fonts.get(key)
        if font is None:
            font = _Font(path)
            _fonts[key] = font
    return font


def snap(seconds: float, sample_rate: int) -> int:
    """Sample index on the block grid nearest to a time: where FluidSynth can start a note exactly."""
    return int(round(seconds * sample_rate / BLOCK)) * BLOCK


def render(
    font: _Font,
    channels: list[ChannelSetup],
    events: list[Event],
    num_samples: int,
    sample_rate: int,
) -> np.ndarray:
    """Render events into mono float32 [num_samples]: (left + right) / 2 of a fresh synth's mix."""
    fl = _fluid()
    lib = fl._fl
    if not (MIN_RATE <= sample_rate <= MAX_RATE):
        raise DataError(f"sample rate {sample_rate} Hz is outside FluidSynth's {MIN_RATE}-{MAX_RATE} Hz")
    left = np.zeros(num_samples, dtype=np.float32)
    right = np.zeros(num_samples, dtype=np.float32)
    with font.lock:
        synth = fl.Synth(gain=SYNTH_GAIN, samplerate=float(sample_rate), channels=16)
        sfid = lib.fluid_synth_add_sfont(synth.synth, font.ptr)
        try:
            for ch in channels:
                bank = 128 if ch.is_drum else 0
                if synth.program_select(ch.channel, sfid, bank, ch.program) != 0:
                    raise DataError(f"{font.path.name}: no preset for bank {bank} program {ch.program}")
                synth.cc(ch.channel, 7, ch.volume)
                synth.cc(ch.channel, 91, ch.reverb)
                synth.cc(ch.channel, 93, ch.chorus)
            pos = 0
            lp, rp = left.ctypes.data, right.ctypes.data
            for ev in sorted(events, key=lambda e: (e.sample, e.order, e.channel, e.pitch)):
                if ev.sample % BLOCK:
                    raise ValueError("event not on the FluidSynth block grid")  # a bug, not user input
                stop = min(ev.sample, num_samples)
                if stop > pos:
                    lib.fluid_synth_write_float(synth.synth, stop - pos, lp + 4 * pos, 0, 1, rp + 4 * pos, 0, 1)
                    pos = stop
                if ev.sample >= num_samples:
                    break
                if ev.kind == "on":
                    synth.noteon(ev.channel, ev.pitch, ev.velocity)
                else:
                    synth.noteoff(ev.channel, ev.pitch)
            if num_samples > pos:
                lib.fluid_synth_write_float(synth.synth, num_samples - pos, lp + 4 * pos, 0, 1, rp + 4 * pos, 0, 1)
        finally:
            for c in range(16):
                synth.all_sounds_off(c)
            lib.fluid_synth_remove_sfont(synth.synth, font.ptr)
            synth.delete()
    out = left
    out += right
    out *= 0.5
    return out
