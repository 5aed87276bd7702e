"""Random but musical MIDI material for each clip kind, as plain note lists with exact harmony labels.

Generators work in seconds (already converted from beats at the clip's tempo) and know nothing about
sample rates: the same seed gives the same music at any rate; `synth` snaps times to the renderer's
grid afterwards. Each returns a `Material` whose chords and key are true by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.core.data import theory as th

NoteTuple = tuple[float, float, int, int]  # onset s, offset s, MIDI pitch, velocity


@dataclass
class Part:
    program: int
    is_drum: bool
    role: str
    notes: list[NoteTuple] = field(default_factory=list)


@dataclass
class Chord:
    start: float
    end: float
    root: int  # pitch class
    quality: str
    inversion: int


@dataclass
class Material:
    parts: list[Part]
    chords: list[Chord] = field(default_factory=list)
    key: tuple[int, str] | None = None  # (tonic pitch class, mode)
    tempo: float | None = None
    tail: float = 1.0  # seconds of release/reverb kept after the last note-off
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    """What a generator may use: its random stream, the SoundFont's presets, and a time budget."""

    rng: np.random.Generator
    keys: Callable[[int, bool], np.ndarray]  # (program, is_drum) -> bool[128] keys the SoundFont sounds
    budget: float | None  # seconds of material when the caller fixed the clip duration

    def has_preset(self, program: int, is_drum: bool = False) -> bool:
        return bool(self.keys(program, is_drum).any())

    def prange(self, program: int) -> tuple[int, int]:
        """Comfortable range of a program, narrowed to the keys the SoundFont has samples for."""
        lo, hi = th.program_range(program)
        mask = self.keys(program, False)
        run = _longest_run(mask, lo, hi)
        if run is None:
            run = _longest_run(mask, 0, 127) or (lo, hi)
        return run

    def choice(self, seq: Sequence[Any], p: Sequence[float] | None = None) -> Any:
        if p is not None:
            w = np.asarray(p, dtype=float)
            return seq[int(self.rng.choice(len(seq), p=w / w.sum()))]
        return seq[int(self.rng.integers(len(seq)))]

    def uniform(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def integers(self, a: int, b_inclusive: int) -> int:
        return int(self.rng.integers(a, b_inclusive + 1))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def program(self, pool: Sequence[int], is_drum: bool = False) -> int:
        ok = [p for p in pool if self.has_preset(p, is_drum)]
        if not ok:
            ok = [p for p in range(128) if self.has_preset(p, is_drum)] or [0]
        return int(self.choice(ok))

    def lead_in(self, hi: float) -> float:
        """Silence before the first note: 20 ms to `hi`, but at most a fifth of a fixed budget, so even
        a very short clip keeps its note."""
        cap = hi if self.budget is None else min(hi, max(0.005, 0.2 * self.budget))
        return self.uniform(min(0.02, cap), cap)

    def length(self, lo: float, hi: float) -> float:
        """Seconds of material: the caller's budget when there is one, else a random length."""
        return self.budget if self.budget is not None else self.uniform(lo, hi)


def _longest_run(mask: np.ndarray, lo: int, hi: int) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    start = None
    for k in range(lo, hi + 2):
        on = k <= hi and bool(mask[k])
        if on and start is None:
            start = k
        elif not on and start is not None:
            if best is None or (k - 1 - start) > (best[1] - best[0]):
                best = (start, k - 1)
            start = None
    return best


def _vel(ctx: Ctx, base: float, spread: float = 6.0) -> int:
    return int(np.clip(round(base + ctx.rng.normal(0.0, spread)), 20, 127))


def _pitch_in(pc: int, lo: int, hi: int, ctx: Ctx) -> int:
    """A random pitch of pitch class `pc` inside [lo, hi] (nearest octave below lo if none fits)."""
    options = [p for p in range(lo, hi + 1) if p % 12 == pc]
    if not options:
        return lo - ((lo - pc) % 12)
    return int(ctx.choice(options))


def _voicing(bass: int, root: int, quality: str, inversion: int, n_tones: int | None = None) -> list[int]:
    """Close-position voicing from a bass pitch upward, chord tones in inversion order."""
    ivs = th.CHORD_INTERVALS[quality]
    n = len(ivs)
    count = n if n_tones is None else n_tones
    pitches = [bass]
    for i in range(1, count):
        pc = (root + ivs[(inversion + i) % n]) % 12
        p = pitches[-1] + 1
        while p % 12 != pc:
            p += 1
        pitches.append(p)
    return pitches


def _place_bass(
    root: int, quality: str, inversion: int, lo: int, hi: int, span: int, ctx: Ctx, near: int | None = None
) -> int:
    """Bass pitch of a chord so the voicing of `span` semitones fits [lo, hi], near a previous one."""
    bass_pc = (root + th.CHORD_INTERVALS[quality][inversion]) % 12
    top = max(lo, hi - span)
    options = [p for p in range(lo, top + 1) if p % 12 == bass_pc]
    if not options:
        options = [lo - ((lo - bass_pc) % 12)]
    if near is None:
        return int(ctx.choice(options))
    return min(options, key=lambda p: (abs(p - near), p))


def _progression(ctx: Ctx, mode: str, tonic: int, sevenths: float = 0.3) -> list[tuple[int, str]]:
    degrees = ctx.choice(th.PROGRESSIONS[mode])
    out = []
    for d in degrees:
        offset, triad, seventh = th.DIATONIC[mode][d]
        p7 = 0.55 if offset == 7 else sevenths
        out.append(((tonic + offset) % 12, seventh if ctx.chance(p7) else triad))
    return out


# --- kinds -----------------------------------------------------------------------------------------


def gen_note(ctx: Ctx) -> Material:
    """One note, NSynth-style: held, then released; the tail shows the instrument's decay."""
    program = ctx.program(th.NOTE_PROGRAMS)
    lo, hi = ctx.prange(program)
    pitch = ctx.integers(lo, hi)
    onset = ctx.lead_in(0.2)
    hold = ctx.uniform(0.5, 2.5) if ctx.budget is None else max(0.1, ctx.budget - onset)
    velocity = ctx.integers(32, 127)
    part = Part(program, False, "note", [(onset, onset + hold, pitch, velocity)])
    return Material([part], tail=1.0)


_QUALITY_WEIGHTS = {
    "major": 0.2,
    "minor": 0.2,
    "diminished": 0.08,
    "augmented": 0.07,
    "dominant7": 0.15,
    "major7": 0.12,
    "minor7": 0.12,
    "half-diminished7": 0.03,
    "diminished7": 0.03,
}


def gen_chord(ctx: Ctx) -> Material:
    """One chord in a random quality and inversion: held, restruck or rolled."""
    program = ctx.program(th.HARMONY_PROGRAMS)
    lo, hi = ctx.prange(program)
    lo, hi = max(lo, 40), min(hi, 88)
    quality = ctx.choice(list(_QUALITY_WEIGHTS), list(_QUALITY_WEIGHTS.values()))
    n = len(th.CHORD_INTERVALS[quality])
    inversion = ctx.integers(0, n - 1)
    root = ctx.integers(0, 11)
    bass = _place_bass(root, quality, inversion, lo, hi, 12, ctx)
    pitches = _voicing(bass, root, quality, inversion)
    if ctx.chance(0.3):
        top = pitches[0] + 12
        while top <= pitches[-1]:
            top += 12
        if top <= hi:
            pitches.append(top)  # double the bass an octave up: same chord, same inversion
    total = ctx.length(1.0, 3.0)
    start = ctx.lead_in(0.15)
    style = ctx.choice(["block", "restrike", "rolled"], [0.45, 0.3, 0.25])
    vel = ctx.uniform(55, 110)
    notes: list[NoteTuple] = []
    if style == "restrike":
        hits = ctx.integers(2, 4)
        step = max(0.2, (total - start) / hits)
        legato = ctx.uniform(0.5, 0.95)
        for h in range(hits):
            t = start + h * step
            accent = 8.0 if h == 0 else 0.0
            notes += [(t, t + step * legato, p, _vel(ctx, vel + accent, 4)) for p in pitches]
    else:
        spread = ctx.uniform(0.015, 0.05) if style == "rolled" else 0.0
        end = max(start + 0.3, total)
        notes += [(start + i * spread, end, p, _vel(ctx, vel, 4)) for i, p in enumerate(pitches)]
    chord = Chord(min(n[0] for n in notes), max(n[1] for n in notes), root, quality, inversion)
    return Material([Part(program, False, "chord", notes)], [chord], meta={"style": style})


_SCALE_WEIGHTS = {
    "major": 0.3,
    "minor": 0.16,
    "harmonic minor": 0.1,
    "melodic minor": 0.08,
    "dorian": 0.06,
    "phrygian": 0.04,
    "lydian": 0.04,
    "mixolydian": 0.06,
    "major pentatonic": 0.06,
    "minor pentatonic": 0.06,
    "chromatic": 0.04,
}


def gen_scale(ctx: Ctx) -> Material:
    """A scale up, down or both, in one of the modes of `theory.SCALES`."""
    program = ctx.program(th.MELODY_PROGRAMS)
    lo, hi = ctx.prange(program)
    mode = ctx.choice(list(_SCALE_WEIGHTS), list(_SCALE_WEIGHTS.values()))
    steps = th.SCALES[mode]
    tonic = ctx.integers(0, 11)
    octaves = 1 if mode == "chromatic" else ctx.choice([1, 2], [0.6, 0.4])
    if hi - lo < 12 * octaves:
        octaves = 1
    start = _pitch_in(tonic, lo, max(lo, hi - 12 * octaves), ctx)
    up = [start + 12 * o + s for o in range(octaves) for s in steps] + [start + 12 * octaves]
    direction = ctx.choice(["up", "down", "updown"], [0.45, 0.25, 0.3])
    seq = up if direction == "up" else up[::-1] if direction == "down" else up + up[-2::-1]
    bpm = ctx.uniform(60, 160)
    value = ctx.choice([1.0, 0.5, 0.25], [0.25, 0.5, 0.25])
    dur = float(np.clip(value * 60.0 / bpm, 0.08, 0.7))
    legato = ctx.uniform(0.7, 0.98)
    if ctx.budget is not None:
        seq = seq[: max(1, int((ctx.budget - 0.05) / dur))]
    vel = ctx.uniform(60, 110)
    t0 = ctx.lead_in(0.15)
    notes = [(t0 + i * dur, t0 + i * dur + dur * legato, p, _vel(ctx, vel, 5)) for i, p in enumerate(seq)]
    return Material(
        [Part(program, False, "scale", notes)],
        key=(tonic, mode),
        tempo=60.0 / dur * value,
        meta={"direction": direction},
    )


def _arp_order(pattern: str, n: int) -> list[int]:
    if pattern == "up":
        return list(range(n))
    if pattern == "down":
        return list(range(n - 1, -1, -1))
    if pattern == "updown":
        return list(range(n)) + list(range(n - 2, 0, -1))
    # alberti-like: bass, top, middle, top
    return [0, n - 1, n // 2, n - 1]


def gen_arpeggio(ctx: Ctx) -> Material:
    """Broken chords: one chord or a diatonic progression, one chord per bar or half bar."""
    program = ctx.program(th.HARMONY_PROGRAMS + (46, 8, 11, 12, 13, 24, 25, 80, 81))
    lo, hi = ctx.prange(program)
    lo, hi = max(lo, 36), min(hi, 96)
    bpm = ctx.uniform(70, 150)
    beat = 60.0 / bpm
    sub = ctx.choice([0.5, 0.25, 1.0 / 3.0], [0.5, 0.3, 0.2])
    beats_per_chord = ctx.choice([4, 2], [0.65, 0.35])
    key: tuple[int, str] | None = None
    if ctx.chance(0.75):
        mode = ctx.choice(["major", "minor"], [0.6, 0.4])
        tonic = ctx.integers(0, 11)
        key = (tonic, mode)
        chords = _progression(ctx, mode, tonic)
    else:
        quality = ctx.choice(list(_QUALITY_WEIGHTS), list(_QUALITY_WEIGHTS.values()))
        chords = [(ctx.integers(0, 11), quality)] * ctx.integers(1, 2)
    pattern = ctx.choice(["up", "down", "updown", "alberti"], [0.35, 0.2, 0.3, 0.15])
    ring = ctx.chance(0.3)
    legato = ctx.uniform(0.6, 0.95)
    vel = ctx.uniform(55, 105)
    span_octaves = ctx.choice([1, 2], [0.6, 0.4])
    t = ctx.lead_in(0.15)
    if ctx.budget is not None:
        n_fit = max(1, int((ctx.budget - t) / (beats_per_chord * beat)))
        chords = (chords * (n_fit // len(chords) + 1))[:n_fit]
    notes: list[NoteTuple] = []
    labels: list[Chord] = []
    prev_bass: int | None = None
    for root, quality in chords:
        n = len(th.CHORD_INTERVALS[quality])
        inversion = ctx.integers(0, n - 1) if ctx.chance(0.4) else 0
        tones = n * span_octaves + 1
        bass = _place_bass(root, quality, inversion, lo, hi, 12 * span_octaves, ctx, near=prev_bass)
        prev_bass = bass
        pitches = _voicing(bass, root, quality, inversion, tones)
        order = _arp_order(pattern, len(pitches))
        steps = max(1, int(round(beats_per_chord / sub)))
        step = sub * beat
        c_start = t
        for k in range(steps):
            on = t + k * step
            off = t + beats_per_chord * beat if ring else on + step * legato
            accent = 10.0 if k == 0 else 0.0
            notes.append((on, off, pitches[order[k % len(order)]], _vel(ctx, vel + accent, 5)))
        t += beats_per_chord * beat
        labels.append(Chord(c_start, t, root, quality, inversion))
    return Material(
        [Part(program, False, "arpeggio", notes)],
        labels,
        key=key,
        tempo=bpm,
        meta={"pattern": pattern, "ring": ring},
    )


_RHYTHM_CELLS = {  # beats; cells fill a beat or more so bars stay whole
    (1.0,): 0.25,
    (0.5, 0.5): 0.22,
    (1.5, 0.5): 0.1,
    (0.25, 0.25, 0.5): 0.08,
    (2.0,): 0.12,
    (0.75, 0.25): 0.07,
    (0.5, 0.25, 0.25): 0.06,
    (3.0,): 0.03,
    (0.25, 0.25, 0.25, 0.25): 0.07,
}
_STEP_WEIGHTS = {
    -1: 0.24,
    1: 0.24,
    -2: 0.12,
    2: 0.12,
    0: 0.06,
    -3: 0.05,
    3: 0.05,
    -4: 0.03,
    4: 0.03,
    -7: 0.03,
    7: 0.03,
}


def _rhythm(ctx: Ctx, beats: float) -> list[float]:
    out: list[float] = []
    left = beats
    cells = list(_RHYTHM_CELLS)
    weights = list(_RHYTHM_CELLS.values())
    while left > 1e-9:
        cell = ctx.choice(cells, weights)
        if sum(cell) > left + 1e-9:
            cell = (left,)
        out.extend(cell)
        left -= sum(cell)
    return out


def _walk(ctx: Ctx, degree: int, lo_deg: int, hi_deg: int) -> int:
    step = ctx.choice(list(_STEP_WEIGHTS), list(_STEP_WEIGHTS.values()))
    nxt = degree + step
    if nxt < lo_deg or nxt > hi_deg:
        nxt = degree - step  # reflect off the range instead of sticking to its edge
    return int(np.clip(nxt, lo_deg, hi_deg))


def _degree_pitch(tonic_pitch: int, steps: tuple[int, ...], degree: int) -> int:
    octave, idx = divmod(degree, len(steps))
    return tonic_pitch + 12 * octave + steps[idx]


def gen_melody(ctx: Ctx) -> Material:
    """A phrase in a key: mostly steps, some leaps, varied rhythm, ending on the tonic."""
    program = ctx.program(th.MELODY_PROGRAMS)
    lo, hi = ctx.prange(program)
    mode = ctx.choice(["major", "minor", "dorian", "mixolydian", "harmonic minor"], [0.5, 0.3, 0.07, 0.08, 0.05])
    steps = th.SCALES[mode]
    tonic = ctx.integers(0, 11)
    centre = (lo + hi) // 2
    tonic_pitch = _pitch_in(tonic, max(lo, centre - 12), min(hi, centre), ctx)
    lo_deg = -len(steps)
    while _degree_pitch(tonic_pitch, steps, lo_deg) < lo:
        lo_deg += 1
    hi_deg = len(steps) + 3
    while _degree_pitch(tonic_pitch, steps, hi_deg) > hi:
        hi_deg -= 1
    bpm = ctx.uniform(70, 160)
    beat = 60.0 / bpm
    meter = ctx.choice([4, 3], [0.75, 0.25])
    total = ctx.length(3.0, 8.0)
    bars = max(1, int(total / (meter * beat)))
    rhythm = _rhythm(ctx, bars * meter)
    legato = ctx.uniform(0.7, 0.97)
    vel = ctx.uniform(65, 110)
    degree = ctx.choice([0, 2, 4])
    t0 = ctx.lead_in(0.15)
    pos = 0.0
    notes: list[NoteTuple] = []
    for i, dur in enumerate(rhythm):
        last = i == len(rhythm) - 1
        if last:
            degree = int(round(degree / len(steps))) * len(steps)  # nearest tonic
            degree = int(np.clip(degree, lo_deg, hi_deg))
        elif i > 0:
            degree = _walk(ctx, degree, lo_deg, hi_deg)
        if not last and i > 0 and ctx.chance(0.07):
            pos += dur  # a rest
            continue
        on = t0 + pos * beat
        accent = 12.0 if abs(pos % meter) < 1e-9 else (4.0 if abs(pos % 1.0) < 1e-9 else 0.0)
        pitch = _degree_pitch(tonic_pitch, steps, degree)
        notes.append((on, on + dur * beat * legato, pitch, _vel(ctx, vel + accent, 5)))
        pos += dur
    return Material(
        [Part(program, False, "melody", notes)],
        key=(tonic, mode),
        tempo=bpm,
        meta={"meter": meter},
    )


def _drum_pattern(ctx: Ctx, style: str) -> dict[int, list[tuple[int, float]]]:
    """One bar on a 16-step grid: {GM key: [(step, velocity), ...]}."""
    p: dict[int, list[tuple[int, float]]] = {}

    def add(key: int, steps: Sequence[int], vel: float) -> None:
        p.setdefault(key, []).extend((s, vel) for s in steps)

    if style == "rock":
        add(th.KICK, [0, 8] + ([10] if ctx.chance(0.5) else []) + ([6] if ctx.chance(0.3) else []), 105)
        add(th.SNARE, [4, 12], 110)
        add(ctx.choice([th.HAT_CLOSED, th.RIDE]), list(range(0, 16, 2)), 80)
    elif style == "four-on-the-floor":
        add(th.KICK, [0, 4, 8, 12], 110)
        add(ctx.choice([th.CLAP, th.SNARE]), [4, 12], 100)
        add(th.HAT_OPEN, [2, 6, 10, 14], 85)
        if ctx.chance(0.6):
            add(th.HAT_CLOSED, [1, 3, 5, 7, 9, 11, 13, 15], 60)
    elif style == "half-time":
        add(th.KICK, [0, 10] + ([3] if ctx.chance(0.4) else []), 105)
        add(th.SNARE, [8], 115)
        add(th.HAT_CLOSED, list(range(0, 16, 2)), 75)
    elif style == "breakbeat":
        add(th.KICK, [0, 10] + ([2] if ctx.chance(0.5) else []), 108)
        add(th.SNARE, [4, 12], 112)
        add(th.SNARE, [7, 9, 15][: ctx.integers(1, 3)], 45)  # ghost notes
        add(th.HAT_CLOSED, list(range(16)), 65)
    elif style == "jazz":
        add(th.RIDE, [0, 4, 7, 8, 12, 15], 80)
        add(th.HAT_PEDAL, [4, 12], 70)
        add(th.KICK, [0] + ([11] if ctx.chance(0.5) else []), 55)
        if ctx.chance(0.5):
            add(th.SNARE, [ctx.choice([6, 10, 14])], 50)
    elif style == "latin":
        add(th.CLAVES if ctx.chance(0.5) else th.RIM, [0, 3, 6, 10, 12], 95)
        add(th.CONGA_HI_MUTE, [2, 10], 80)
        add(th.CONGA_HI, [3, 11], 85)
        add(th.CONGA_LO, [6, 7, 14, 15], 90)
        add(th.KICK, [0, 8], 85)
        if ctx.chance(0.5):
            add(ctx.choice([th.COWBELL, th.SHAKER, th.TAMBOURINE]), list(range(0, 16, 2)), 70)
    else:  # sparse random kit
        for key in (th.KICK, th.SNARE, th.HAT_CLOSED, th.CLAP, th.TAMBOURINE, th.TOMS[2], th.TOMS[4]):
            if ctx.chance(0.6):
                steps = [s for s in range(16) if ctx.chance(0.25)]
                add(key, steps or [0], ctx.uniform(60, 115))
    return p


def _drum_part(ctx: Ctx, bpm: float, bars: int, t0: float, style: str | None = None) -> tuple[Part, str]:
    kit = ctx.program(th.DRUM_KITS, is_drum=True)
    style = style or ctx.choice(
        ["rock", "four-on-the-floor", "half-time", "breakbeat", "jazz", "latin", "random"],
        [0.25, 0.15, 0.1, 0.15, 0.1, 0.1, 0.15],
    )
    step = 60.0 / bpm / 4.0
    hit = min(step, 0.15)
    pattern = _drum_pattern(ctx, style)
    notes: list[NoteTuple] = []
    for bar in range(bars):
        base = t0 + bar * 16 * step
        fill = bar == bars - 1 and bars > 1 and ctx.chance(0.35)
        for key, hits in pattern.items():
            for s, v in hits:
                if fill and s >= 12:
                    continue
                accent = 8.0 if s % 4 == 0 else 0.0
                notes.append((base + s * step, base + s * step + hit, key, _vel(ctx, v + accent, 6)))
        if fill:
            toms = list(th.TOMS)
            for i, s in enumerate(range(12, 16)):
                tom = toms[min(len(toms) - 1, i + ctx.integers(0, 2))]
                notes.append((base + s * step, base + s * step + hit, tom, _vel(ctx, 100, 8)))
        if bar == 0 and ctx.chance(0.35):
            notes.append((base, base + hit, th.CRASH, _vel(ctx, 105, 6)))
    return Part(kit, True, "drums", notes), style


def gen_drums(ctx: Ctx) -> Material:
    """Drum-kit grooves on the GM percussion channel, one to four bars."""
    bpm = ctx.uniform(80, 160)
    bar_s = 16 * 60.0 / bpm / 4.0
    bars = max(1, int(ctx.length(2.0, 6.0) / bar_s))
    if ctx.budget is None:
        bars = min(bars, 4)
    part, style = _drum_part(ctx, bpm, bars, ctx.lead_in(0.1))
    return Material([part], tempo=bpm, tail=0.8, meta={"style": style})


def gen_texture(ctx: Ctx) -> Material:
    """A small band (bass, chords, melody, maybe drums) playing a diatonic progression."""
    mode = ctx.choice(["major", "minor"], [0.6, 0.4])
    tonic = ctx.integers(0, 11)
    bpm = ctx.uniform(70, 140)
    beat = 60.0 / bpm
    beats_per_chord = ctx.choice([4, 2], [0.7, 0.3])
    chords = _progression(ctx, mode, tonic)
    if ctx.budget is not None:
        n_fit = max(1, int((ctx.budget - 0.1) / (beats_per_chord * beat)))
        chords = (chords * (n_fit // len(chords) + 1))[:n_fit]
    elif len(chords) * beats_per_chord * beat > 10.0:
        chords = chords[: max(1, int(10.0 / (beats_per_chord * beat)))]
    t0 = ctx.lead_in(0.1)
    seg = beats_per_chord * beat
    scale = th.SCALES[mode]

    harmony = Part(ctx.program(th.HARMONY_PROGRAMS), False, "harmony")
    h_lo, h_hi = ctx.prange(harmony.program)
    h_lo, h_hi = max(h_lo, 48), min(h_hi, 79)
    h_style = ctx.choice(["whole", "half", "quarter", "offbeat"], [0.3, 0.3, 0.25, 0.15])
    h_vel = ctx.uniform(50, 85)
    bass: Part | None = None
    if ctx.chance(0.9):
        bass = Part(ctx.program(th.BASS_PROGRAMS), False, "bass")
    b_style = ctx.choice(["whole", "root-fifth", "eighths", "walking"], [0.25, 0.3, 0.25, 0.2])
    b_vel = ctx.uniform(75, 105)
    melody: Part | None = None
    if ctx.chance(0.8):
        melody = Part(ctx.program(th.MELODY_PROGRAMS), False, "melody")
    m_vel = ctx.uniform(80, 110)

    labels: list[Chord] = []
    prev_voicing: int | None = None
    prev_mel: int | None = None
    for ci, (root, quality) in enumerate(chords):
        start = t0 + ci * seg
        end = start + seg
        n = len(th.CHORD_INTERVALS[quality])
        # Harmony: close voicing, inversion chosen for smooth voice leading.
        best: tuple[int, int] | None = None
        for inv in range(n):
            b = _place_bass(root, quality, inv, h_lo, h_hi, 11, ctx, near=prev_voicing)
            cost = abs(b - prev_voicing) if prev_voicing is not None else ctx.integers(0, 5)
            if best is None or cost < best[0]:
                best = (cost, inv)
        assert best is not None
        h_inv = best[1]
        h_bass = _place_bass(root, quality, h_inv, h_lo, h_hi, 11, ctx, near=prev_voicing)
        prev_voicing = h_bass
        voicing = _voicing(h_bass, root, quality, h_inv)
        hits: list[tuple[float, float]] = {
            "whole": [(0.0, float(beats_per_chord))],
            "half": [(float(b), 2.0) for b in range(0, beats_per_chord, 2)],
            "quarter": [(float(b), 1.0) for b in range(beats_per_chord)],
            "offbeat": [(b + 0.5, 0.5) for b in range(beats_per_chord)],
        }[h_style]
        for b0, length in hits:
            on = start + b0 * beat
            harmony.notes += [(on, on + length * beat * 0.92, p, _vel(ctx, h_vel, 4)) for p in voicing]
        lowest = voicing[0]
        # Bass: the root on the downbeat (so the heard inversion is the root position), then a pattern.
        if bass is not None:
            b_lo, b_hi = ctx.prange(bass.program)
            b_hi = min(b_hi, 55)
            r = _pitch_in(root, b_lo, min(b_hi, b_lo + 11), ctx)
            ivs = th.CHORD_INTERVALS[quality]
            fifth = r + ivs[2] if r + ivs[2] <= b_hi + 5 else r + ivs[2] - 12  # the chord's own fifth
            third = r + ivs[1]
            if b_style == "whole":
                line = [(0.0, float(beats_per_chord), r)]
            elif b_style == "root-fifth":
                line = [(float(b), 1.0, r if b % 2 == 0 else fifth) for b in range(beats_per_chord)]
            elif b_style == "eighths":
                line = [(b / 2.0, 0.5, r) for b in range(2 * beats_per_chord)]
            else:
                walk = [r, third, fifth, r + 12 if r + 12 <= b_hi + 7 else third]
                line = [(float(b), 1.0, walk[b % 4]) for b in range(beats_per_chord)]
            for b0, length, p in line:
                on = start + b0 * beat
                accent = 8.0 if b0 == 0 else 0.0
                bass.notes.append((on, on + length * beat * 0.9, p, _vel(ctx, b_vel + accent, 4)))
            lowest = min(lowest, r)
        # Melody: chord tones on strong beats, scale steps between.
        if melody is not None:
            m_lo, m_hi = ctx.prange(melody.program)
            m_lo, m_hi = max(m_lo, 60), min(m_hi, 90)
            if m_hi - m_lo < 7:
                m_lo, m_hi = ctx.prange(melody.program)
            rhythm = _rhythm(ctx, float(beats_per_chord))
            pos = 0.0
            tones = th.chord_pitch_classes(root, quality)
            for dur in rhythm:
                strong = abs(pos % 1.0) < 1e-9
                if strong or prev_mel is None:
                    cands = [p for p in range(m_lo, m_hi + 1) if p % 12 in tones]
                else:
                    cands = [p for p in range(m_lo, m_hi + 1) if (p - tonic) % 12 in scale]
                if not cands:
                    cands = list(range(m_lo, m_hi + 1))
                ref = prev_mel if prev_mel is not None else (m_lo + m_hi) // 2
                near = sorted(cands, key=lambda p: (abs(p - ref), p))[:4]
                p = int(ctx.choice(near, [0.15, 0.4, 0.3, 0.15][: len(near)]))
                if p == prev_mel and len(near) > 1:
                    p = near[1]
                prev_mel = p
                on = start + pos * beat
                melody.notes.append((on, on + dur * beat * 0.9, p, _vel(ctx, m_vel + (8.0 if strong else 0.0), 5)))
                pos += dur
        inv = th.chord_pitch_classes(root, quality).index(lowest % 12)
        labels.append(Chord(start, end, root, quality, inv))
    parts = [p for p in (bass, harmony, melody) if p is not None]
    meta: dict[str, Any] = {"harmony_style": h_style, "bass_style": b_style if bass else None}
    if ctx.chance(0.5):
        bars = max(1, int(round(len(chords) * beats_per_chord / 4)))
        drums, style = _drum_part(ctx, bpm, bars, t0)
        end_t = t0 + len(chords) * seg
        drums.notes = [n for n in drums.notes if n[0] < end_t - 1e-6]
        parts.append(drums)
        meta["drum_style"] = style
    return Material(parts, labels, key=(tonic, mode), tempo=bpm, meta=meta)


GENERATORS: dict[str, Callable[[Ctx], Material]] = {
    "note": gen_note,
    "chord": gen_chord,
    "scale": gen_scale,
    "arpeggio": gen_arpeggio,
    "melody": gen_melody,
    "drums": gen_drums,
    "texture": gen_texture,
}
