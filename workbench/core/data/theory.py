"""Music facts the generators and the labels share: GM families, instrument ranges, chords, scales, keys.

Everything here is plain data so labels, generators and probes agree on one vocabulary; the tuples are
index spaces (``FAMILIES.index(...)`` is what `frame_labels` stores), so only ever append to them.
"""

from __future__ import annotations

PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

#: The 16 General MIDI families (program // 8), then ``drums`` for the percussion channel.
FAMILIES = (
    "piano",
    "chromatic percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth lead",
    "synth pad",
    "synth effects",
    "ethnic",
    "percussive",
    "sound effects",
    "drums",
)
DRUM_FAMILY = FAMILIES.index("drums")

#: Chord qualities as intervals above the root, in chord-tone order (root, third, fifth, seventh): the
#: inversion label is the index of the bass tone in this order.
CHORD_INTERVALS: dict[str, tuple[int, ...]] = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "diminished": (0, 3, 6),
    "augmented": (0, 4, 8),
    "dominant7": (0, 4, 7, 10),
    "major7": (0, 4, 7, 11),
    "minor7": (0, 3, 7, 10),
    "half-diminished7": (0, 3, 6, 10),
    "diminished7": (0, 3, 6, 9),
}
CHORD_QUALITIES = tuple(CHORD_INTERVALS)

#: Scale steps (semitones above the tonic) of every mode a key or scale label can carry.
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic minor": (0, 2, 3, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "chromatic": tuple(range(12)),
}
KEY_MODES = tuple(SCALES)

#: Diatonic chords per degree (triad quality, seventh-chord quality); minor uses the harmonic-minor
#: dominant and leading-tone chords, as common practice does.
DIATONIC: dict[str, tuple[tuple[int, str, str], ...]] = {
    "major": (
        (0, "major", "major7"),
        (2, "minor", "minor7"),
        (4, "minor", "minor7"),
        (5, "major", "major7"),
        (7, "major", "dominant7"),
        (9, "minor", "minor7"),
        (11, "diminished", "half-diminished7"),
    ),
    "minor": (
        (0, "minor", "minor7"),
        (2, "diminished", "half-diminished7"),
        (3, "major", "major7"),
        (5, "minor", "minor7"),
        (7, "major", "dominant7"),
        (8, "major", "major7"),
        (11, "diminished", "diminished7"),
    ),
}

#: Common progressions as scale-degree indices (0 = tonic) into `DIATONIC`.
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": (
        (0, 4, 5, 3),
        (0, 3, 4, 0),
        (1, 4, 0),
        (0, 5, 3, 4),
        (0, 3, 0, 4),
        (5, 3, 0, 4),
        (0, 5, 1, 4),
        (2, 5, 1, 4),
        (0, 4),
        (3, 4, 0),
        (0, 1, 4, 0),
    ),
    "minor": (
        (0, 3, 4, 0),
        (0, 5, 2, 4),
        (0, 3, 0, 4),
        (0, 6, 0),
        (0, 5, 3, 4),
        (1, 4, 0),
        (0, 4),
        (5, 6, 0),
    ),
}

# Sensible sounding ranges (MIDI, inclusive) per GM program: where real players / the SoundFont's
# samples sound natural. Random pitches are drawn inside these.
_FAMILY_RANGE = {
    0: (33, 96),  # piano
    1: (60, 96),
    2: (36, 96),
    3: (40, 84),
    4: (28, 60),
    5: (36, 96),
    6: (36, 96),
    7: (41, 84),
    8: (44, 84),
    9: (60, 96),
    10: (48, 96),
    11: (36, 84),
    12: (36, 84),
    13: (48, 84),
    14: (48, 84),
    15: (48, 72),
}
_PROGRAM_RANGE = {
    8: (60, 108),
    9: (72, 108),
    10: (60, 96),
    11: (53, 89),
    12: (45, 96),
    13: (65, 108),
    14: (60, 77),
    15: (48, 84),
    21: (53, 89),
    22: (60, 84),
    23: (53, 89),
    31: (52, 88),
    38: (24, 60),
    39: (24, 60),
    40: (55, 96),
    41: (48, 84),
    42: (36, 72),
    43: (28, 55),
    44: (36, 96),
    45: (36, 84),
    46: (24, 103),
    47: (40, 55),
    52: (48, 79),
    53: (48, 79),
    54: (48, 79),
    55: (48, 72),
    56: (55, 82),
    57: (40, 72),
    58: (28, 58),
    59: (55, 82),
    60: (41, 77),
    61: (41, 84),
    62: (36, 84),
    63: (36, 84),
    64: (56, 87),
    65: (49, 80),
    66: (44, 75),
    67: (36, 68),
    68: (58, 91),
    69: (52, 81),
    70: (34, 72),
    71: (50, 91),
    72: (74, 108),
    73: (60, 96),
    74: (60, 96),
    75: (60, 96),
    76: (60, 84),
    77: (55, 84),
    78: (72, 96),
    79: (60, 84),
    86: (48, 84),
    87: (36, 72),
    104: (48, 77),
    105: (48, 84),
    106: (50, 79),
    107: (55, 91),
    108: (60, 84),
    109: (55, 77),
    110: (55, 96),
    111: (60, 84),
    112: (72, 96),
    113: (60, 84),
    114: (52, 84),
    115: (60, 84),
    116: (36, 60),
    117: (36, 72),
    118: (36, 72),
    119: (48, 72),
}


def program_range(program: int) -> tuple[int, int]:
    """Comfortable MIDI range of a GM program (inclusive)."""
    return _PROGRAM_RANGE.get(program, _FAMILY_RANGE[program // 8])


def family_of(program: int, is_drum: bool) -> str:
    return "drums" if is_drum else FAMILIES[program // 8]


def _progs(*spans: tuple[int, int], exclude: tuple[int, ...] = ()) -> tuple[int, ...]:
    out: list[int] = []
    for a, b in spans:
        out.extend(p for p in range(a, b + 1) if p not in exclude)
    return tuple(out)


# Program pools. Sound effects (120-127) never appear: they have no stable pitch. Single notes take
# nearly everything pitched; the musical kinds take instruments that suit the role. Also left out,
# because their sound does not follow the MIDI key (measured with pYIN on TimGM6mb): guitar
# harmonics (31: near-fixed pitch), orchestra hit (55), whistle (78: sample ~8.7 semitones flat in
# TimGM6mb), and the unpitched percussive presets 115-119 (woodblock, taiko, toms, reverse cymbal).
NOTE_PROGRAMS = _progs((0, 114), exclude=(31, 55, 78))
HARMONY_PROGRAMS = _progs(
    (0, 7),
    (11, 12),
    (16, 21),
    (24, 27),
    (46, 46),
    (48, 53),
    (61, 62),
    (88, 92),
    (94, 95),
    (104, 105),
    (107, 107),
)
MELODY_PROGRAMS = _progs(
    (0, 2),
    (4, 6),
    (8, 13),
    (16, 17),
    (22, 22),
    (24, 27),
    (40, 41),
    (56, 57),
    (59, 60),
    (64, 66),
    (68, 69),
    (71, 75),
    (80, 85),
    (104, 105),
    (107, 110),
)
BASS_PROGRAMS = _progs((32, 39), (43, 43), (58, 58), (70, 70))
#: GM2 drum kits (bank 128) that TimGM6mb has; others fall back to what the SoundFont offers.
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48)

#: Instruments for score parts by register (soprano ... bass), so a chorale voice lands on an
#: instrument that can play it.
PART_PROGRAMS = {
    "high": (40, 68, 71, 73, 56, 64, 0, 19, 52, 11, 65, 22, 24),
    "mid": (41, 71, 69, 60, 65, 66, 0, 19, 52, 48, 61, 24, 26),
    "low": (42, 70, 57, 66, 67, 0, 19, 52, 48, 32, 33, 43, 58),
}
ENSEMBLES: dict[str, tuple[int, int, int, int]] = {
    "string quartet": (40, 40, 41, 42),
    "woodwinds": (73, 68, 71, 70),
    "brass": (56, 60, 57, 58),
    "organ": (19, 19, 19, 19),
    "choir": (52, 52, 52, 52),
    "piano": (0, 0, 0, 0),
    "saxophones": (64, 65, 66, 67),
    "strings": (48, 48, 48, 48),
}

# General MIDI percussion keys used by the drum generator.
KICK, KICK2, RIM, SNARE, CLAP, SNARE2 = 36, 35, 37, 38, 39, 40
HAT_CLOSED, HAT_PEDAL, HAT_OPEN = 42, 44, 46
TOMS = (50, 48, 47, 45, 43, 41)  # high to low
CRASH, RIDE, RIDE_BELL, TAMBOURINE, COWBELL = 49, 51, 53, 54, 56
CONGA_HI_MUTE, CONGA_HI, CONGA_LO, SHAKER, CLAVES = 62, 63, 64, 70, 75


def chord_pitch_classes(root: int, quality: str) -> tuple[int, ...]:
    return tuple((root + i) % 12 for i in CHORD_INTERVALS[quality])


def recognise_chord(pitches: list[int] | tuple[int, ...]) -> tuple[int, str, int] | None:
    """(root pc, quality, inversion) of a set of sounding pitches, or None if it is no known chord.

    Used on vertical slices of real scores, where passing tones make many slices non-chords; the
    pitch-class set must equal a chord exactly (doublings allowed), so labels are never guesses.
    """
    if not pitches:
        return None
    pcs = {p % 12 for p in pitches}
    bass = min(pitches) % 12
    for quality, ivs in CHORD_INTERVALS.items():
        if len(ivs) != len(pcs):
            continue
        for root in sorted(pcs):
            tones = tuple((root + i) % 12 for i in ivs)
            if set(tones) == pcs:
                # Augmented and diminished-seventh chords are symmetric: any tone is a "root". Take
                # the bass as the root so the label is stable (inversion 0).
                if quality in ("augmented", "diminished7"):
                    return bass, quality, 0
                return root, quality, tones.index(bass)
    return None
