"""Labeled synthetic music: MIDI material rendered offline through a General MIDI SoundFont.

Codec training wants lots of varied, realistic audio; probes want ground truth (which pitch, which
instrument, which chord, when). Rendering our own MIDI gives both at once, exactly: every label
comes from the same note list that drove the synthesizer.

Conventions (what the labels mean):

- Times are seconds from the start of the clip. Every note-on and note-off sits on FluidSynth's
  64-sample block grid, so ``onset * sample_rate`` is the exact sample where the note starts.
- ``offset`` is the note-off time. The sound does not stop there: the release (and reverb) tail
  continues, which is why clips end ``tail`` seconds after the last note-off and ``duration``
  is stored separately.
- ``velocity`` is the MIDI velocity. Level follows it, except that a clip that would clip is scaled
  down to a peak of 0.99; the factor is stored as ``gain`` (1.0 almost always).
- Chords carry root pitch class (0 = C), quality (`CHORD_QUALITIES`) and inversion (index of the
  lowest sounding chord tone in root-third-fifth-seventh order, taken at the chord's start).
- ``key`` is ``{tonic, tonic_name, mode}`` where the material was written in a key, else None.

A clip is a pure function of ``(kind, seed, sample_rate, soundfont, duration)``: same arguments, same
samples (tested). Material depends on ``(kind, seed)`` only, so a seed gives the same music at any rate.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.data import fluid
from workbench.core.data import theory as th
from workbench.core.data.material import GENERATORS, Ctx, Material, Part
from workbench.core.errors import DataError
from workbench.core.fileio import atomic_open

KINDS = ("note", "chord", "scale", "arpeggio", "melody", "drums", "texture", "piece")
#: Default share of each kind in a corpus: single notes dominate (clean timbre and pitch coverage, as
#: in NSynth), the rest is spread over musical contexts.
DEFAULT_MIX: dict[str, float] = {
    "note": 0.35,
    "chord": 0.09,
    "scale": 0.06,
    "arpeggio": 0.09,
    "melody": 0.12,
    "drums": 0.08,
    "texture": 0.14,
    "piece": 0.07,
}
LABEL_VERSION = 1
CORPUS_VERSION = 1
MAX_CLIPS = 10_000_000  # clip seeds are seed * MAX_CLIPS + index, so corpora of different seeds never share one
MIN_NOTE = 0.03  # seconds; FluidSynth stretches shorter notes (synth.min-note-length) and labels would lie
REVERB_SENDS = (0, 20, 40, 64, 90)
CHORUS_SENDS = (0, 0, 0, 20, 50)
FAMILIES = th.FAMILIES
CHORD_QUALITIES = th.CHORD_QUALITIES
KEY_MODES = th.KEY_MODES
_KIND_CODE = {k: i + 1 for i, k in enumerate(KINDS)}


@dataclass
class SynthClip:
    id: str
    kind: str
    audio: np.ndarray  # float32 [n], mono
    sample_rate: int
    labels: dict[str, Any] = field(repr=False)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def to_audio_clip(self) -> Any:
        from workbench.core.audio import AudioClip

        return AudioClip(self.audio[:, None], self.sample_rate)

    def midi(self) -> Any:
        """The clip's notes as a `pretty_midi.PrettyMIDI` (e.g. to write a .mid next to the audio)."""
        return labels_to_midi(self.labels)


def labels_to_midi(labels: dict[str, Any]) -> Any:
    """Rebuild the rendered MIDI from labels: one instrument per part, exact snapped times."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(labels.get("tempo") or 120.0))
    insts: dict[tuple[int, bool, str], Any] = {}
    for n in labels["notes"]:
        key = (int(n["program"]), bool(n["is_drum"]), str(n.get("part", "")))
        if key not in insts:
            insts[key] = pretty_midi.Instrument(program=key[0], is_drum=key[1], name=key[2])
            pm.instruments.append(insts[key])
        insts[key].notes.append(pretty_midi.Note(int(n["velocity"]), int(n["pitch"]), n["onset"], n["offset"]))
    return pm


def available_kinds() -> tuple[str, ...]:
    """Kinds this installation can render (``piece`` needs music21's corpus)."""
    from workbench.core.data import scores

    return tuple(k for k in KINDS if k != "piece" or scores.available())


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DataError(f"unknown clip kind '{kind}'; choose from {', '.join(KINDS)}")


def _check_rate(sample_rate: int) -> int:
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        raise DataError(f"sample rate must be an integer, got {sample_rate!r}") from None
    if not (fluid.MIN_RATE <= sr <= fluid.MAX_RATE):
        raise DataError(f"sample rate {sr} Hz is outside {fluid.MIN_RATE}-{fluid.MAX_RATE} Hz (FluidSynth's range)")
    return sr


def _generate(kind: str, ctx: Ctx) -> Material:
    if kind == "piece":
        from workbench.core.data import scores

        return scores.gen_piece(ctx)
    return GENERATORS[kind](ctx)


def render_clip(
    kind: str,
    seed: int,
    sample_rate: int = 24000,
    soundfont: str | os.PathLike[str] | None = None,
    duration: float | None = None,
) -> SynthClip:
    """Render one labeled clip; deterministic in its arguments.

    `duration` fixes the clip length (seconds, including a release tail of up to 1 s); without it each
    kind picks a length (notes 1.5-4 s, phrases up to ~11 s).
    """
    _check_kind(kind)
    sr = _check_rate(sample_rate)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if duration is not None and not (0.25 <= float(duration) <= 600.0):
        raise DataError(f"duration must be between 0.25 and 600 s, got {duration}")
    font = fluid.get_font(soundfont)
    seed = int(seed)
    tail_fixed = None if duration is None else float(np.clip(0.25 * float(duration), 0.1, 1.0))
    budget = None if duration is None else float(duration) - float(tail_fixed or 0.0)
    ctx = Ctx(
        rng=np.random.default_rng(np.random.SeedSequence([seed, _KIND_CODE[kind]])),
        keys=lambda program, is_drum: font.keys(128 if is_drum else 0, program),
        budget=budget,
    )
    material = _generate(kind, ctx)
    # Render settings draw from their own stream, so changing them never changes the music.
    fx = np.random.default_rng(np.random.SeedSequence([seed, _KIND_CODE[kind], 1]))
    reverb = int(REVERB_SENDS[int(fx.integers(len(REVERB_SENDS)))])
    chorus = int(CHORUS_SENDS[int(fx.integers(len(CHORUS_SENDS)))])
    return _render_material(material, f"{kind}-{seed}", kind, seed, sr, font, duration, budget, reverb, chorus)


def render_midi(
    midi: Any,
    sample_rate: int = 24000,
    soundfont: str | os.PathLike[str] | None = None,
    duration: float | None = None,
    tail: float = 1.0,
    reverb: int = 40,
    chorus: int = 0,
    clip_id: str = "midi",
) -> SynthClip:
    """Render a `pretty_midi.PrettyMIDI` (or a .mid path) with the same exact-label machinery.

    For material made elsewhere (a MIDI file, a test's hand-placed note). Note times are snapped to
    the 64-sample grid; labels carry no chords or key (MIDI does not say).
    """
    import pretty_midi

    sr = _check_rate(sample_rate)
    if isinstance(midi, (str, os.PathLike)):
        try:
            midi = pretty_midi.PrettyMIDI(str(midi))
        except Exception as exc:
            raise DataError(f"{midi}: not a readable MIDI file ({' '.join(str(exc).split())[:120]})") from None
    font = fluid.get_font(soundfont)
    parts = [
        Part(
            int(inst.program),
            bool(inst.is_drum),
            str(inst.name or ""),
            [(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in inst.notes],
        )
        for inst in midi.instruments
    ]
    material = Material(parts, tail=float(tail))
    budget = None if duration is None else float(duration)
    return _render_material(material, clip_id, "midi", None, sr, font, duration, budget, int(reverb), int(chorus))


def _render_material(
    material: Material,
    clip_id: str,
    kind: str,
    seed: int | None,
    sr: int,
    font: Any,
    duration: float | None,
    budget: float | None,
    reverb: int,
    chorus: int,
) -> SynthClip:
    block = fluid.BLOCK
    min_len = int(np.ceil(MIN_NOTE * sr / block)) * block
    limit = None if budget is None else fluid.snap(budget, sr)
    channels: list[fluid.ChannelSetup] = []
    events: list[fluid.Event] = []
    notes: list[dict[str, Any]] = []
    instruments: list[dict[str, Any]] = []
    free = [c for c in range(16) if c != fluid.DRUM_CHANNEL]
    drum_kit: int | None = None
    for part in material.parts:
        if part.is_drum:
            # One percussion channel: a second drum part plays (and is labeled) with the first one's kit.
            ch = fluid.DRUM_CHANNEL
            drum_kit = part.program if drum_kit is None else drum_kit
            part = Part(drum_kit, True, part.role, part.notes)
        elif free:
            ch = free.pop(0)
        else:
            continue  # more than 15 melodic parts: the rest is not rendered, so not labeled either
        # Keys the preset has no sample for would render as silence: such notes are not labeled either.
        playable = font.keys(128 if part.is_drum else 0, part.program)
        snapped = _snap_part([n for n in part.notes if 0 <= n[2] <= 127 and playable[n[2]]], sr, min_len, limit)
        if not snapped:
            continue
        if not any(c.channel == ch for c in channels):
            channels.append(fluid.ChannelSetup(ch, part.program, part.is_drum, reverb=reverb, chorus=chorus))
        family = th.family_of(part.program, part.is_drum)
        instruments.append(
            {
                "program": part.program,
                "is_drum": part.is_drum,
                "family": family,
                "part": part.role,
                "name": _instrument_name(part.program, part.is_drum, font),
            }
        )
        for on, off, pitch, vel in snapped:
            events.append(fluid.Event(on, 1, "on", ch, pitch, vel))
            events.append(fluid.Event(off, 0, "off", ch, pitch))
            notes.append(
                {
                    "onset": on / sr,
                    "offset": off / sr,
                    "pitch": pitch,
                    "velocity": vel,
                    "program": part.program,
                    "family": family,
                    "is_drum": part.is_drum,
                    "part": part.role,
                }
            )
    if not notes:
        raise DataError(f"{clip_id}: no notes to render (duration too short?)")
    notes.sort(key=lambda n: (n["onset"], n["is_drum"], n["pitch"]))
    last_off = max(e.sample for e in events)
    if duration is not None:
        num_samples = int(round(float(duration) * sr))
    else:
        num_samples = last_off + int(round(material.tail * sr))
    audio = fluid.render(font, channels, events, num_samples, sr)
    if not np.isfinite(audio).all():
        raise DataError(f"{clip_id}: the synthesizer produced non-finite samples")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    gain = 1.0
    if peak > 0.99:
        gain = 0.99 / peak
        audio *= np.float32(gain)
        peak = float(np.max(np.abs(audio)))

    chords = []
    for c in material.chords:
        a, b = fluid.snap(c.start, sr), fluid.snap(c.end, sr)
        if limit is not None:
            b = min(b, limit)
        if b > a:
            chords.append(
                {
                    "start": a / sr,
                    "end": b / sr,
                    "root": int(c.root),
                    "root_name": th.PITCH_CLASS_NAMES[c.root],
                    "quality": c.quality,
                    "inversion": int(c.inversion),
                }
            )
    key = None
    if material.key is not None:
        tonic, mode = material.key
        key = {"tonic": int(tonic), "tonic_name": th.PITCH_CLASS_NAMES[tonic], "mode": mode}
    labels: dict[str, Any] = {
        "id": clip_id,
        "kind": kind,
        "seed": seed,
        "version": LABEL_VERSION,
        "sample_rate": sr,
        "num_samples": num_samples,
        "duration": num_samples / sr,
        "soundfont": font.path.name,
        "gain": gain,
        "peak": peak,
        "reverb": reverb,
        "chorus": chorus,
        "tempo": None if material.tempo is None else round(float(material.tempo), 3),
        "key": key,
        "instruments": instruments,
        "notes": notes,
        "chords": chords,
        "meta": _jsonable(material.meta),
    }
    return SynthClip(clip_id, kind, audio, sr, labels)


def _snap_part(
    raw: list[tuple[float, float, int, int]], sr: int, min_len: int, limit: int | None
) -> list[tuple[int, int, int, int]]:
    """Notes on the block grid, cut at `limit`, with no two sounding notes of one pitch overlapping.

    MIDI has one voice slot per (channel, pitch): a second note-on of a sounding pitch would be ended
    by the first one's note-off, so an overlapped note is shortened to end where the next begins.
    """
    out: list[list[int]] = []
    for onset, offset, pitch, vel in sorted(raw, key=lambda n: (n[0], n[2])):
        on = max(0, fluid.snap(onset, sr))
        off = max(fluid.snap(offset, sr), on + min_len)
        if limit is not None:
            if on + min_len > limit:
                continue
            off = min(off, limit)
        out.append([on, off, int(pitch), int(np.clip(vel, 1, 127))])
    last: dict[int, list[int]] = {}
    keep: list[list[int]] = []
    for n in out:
        prev = last.get(n[2])
        if prev is not None and n[0] < prev[1]:
            if n[0] - prev[0] < min_len:
                prev[3] = max(prev[3], n[3])  # a doubling (unison) or a stutter: one note, louder of the two
                prev[1] = max(prev[1], n[1])
                continue
            prev[1] = n[0]
        last[n[2]] = n
        keep.append(n)
    return [(a, b, p, v) for a, b, p, v in keep]


def _instrument_name(program: int, is_drum: bool, font: Any) -> str:
    try:
        name = font.anchor.sfpreset_name(font.sfid, 128 if is_drum else 0, program)
    except Exception:
        name = None
    if name:
        return str(name)
    import pretty_midi

    return "Drum kit" if is_drum else str(pretty_midi.program_to_instrument_name(program))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


# --- frame labels ------------------------------------------------------------------------------------


def frame_labels(labels: dict[str, Any], frame_rate: float, num_frames: int) -> dict[str, np.ndarray]:
    """Per-frame targets for probes, aligned to codec frames.

    Frame ``t`` covers ``[t / frame_rate, (t + 1) / frame_rate)``. A note or chord is *active* in a
    frame when it sounds at the frame's centre, ``onset <= (t + 0.5) / frame_rate < offset`` (so
    each boundary frame belongs to exactly one of two abutting notes; the release tail after the
    note-off is not "active"). Short events that miss every centre are still seen by ``onset``.

    Returns arrays of length ``num_frames``:

    - ``pitch`` int32: MIDI pitch of the highest active non-drum note (the melody, by the usual
      convention), -1 if none; ``velocity``, ``program``, ``family`` describe that same note
      (``family`` indexes `FAMILIES`; when only drums are active it is ``FAMILIES.index("drums")``;
      -1 / 0 when nothing is active).
    - ``n_active`` int32: number of active non-drum notes; ``piano_roll`` bool [num_frames, 128].
    - ``is_drum`` bool: a drum note is active or starts in the frame (drum hits are short).
    - ``onset`` bool: any note (drum or not) starts inside the frame interval.
    - ``chord_root`` (pitch class), ``chord_quality`` (index into `CHORD_QUALITIES`),
      ``chord_inversion``: the chord active at the frame centre, -1 if none.
    - ``key_tonic``, ``key_mode`` (index into `KEY_MODES`): constant over the clip, -1 if unknown.
    """
    if frame_rate <= 0:
        raise DataError(f"frame rate must be positive, got {frame_rate}")
    T = int(num_frames)
    if T < 0:
        raise DataError(f"num_frames must be >= 0, got {num_frames}")
    fr = float(frame_rate)
    eps = 1e-9

    def span(a: float, b: float) -> tuple[int, int]:
        # Frames whose centre (t + 0.5) / fr lies in [a, b).
        t0 = int(np.ceil(a * fr - 0.5 - eps))
        t1 = int(np.ceil(b * fr - 0.5 - eps))
        return max(0, t0), min(T, t1)

    pitch = np.full(T, -1, np.int32)
    velocity = np.zeros(T, np.int32)
    program = np.full(T, -1, np.int32)
    family = np.full(T, -1, np.int32)
    n_active = np.zeros(T, np.int32)
    roll = np.zeros((T, 128), bool)
    is_drum = np.zeros(T, bool)
    onset = np.zeros(T, bool)
    notes = labels.get("notes", [])
    for n in notes:
        t_on = int(np.floor(float(n["onset"]) * fr + eps))
        if 0 <= t_on < T:
            onset[t_on] = True
        a, b = span(float(n["onset"]), float(n["offset"]))
        if n.get("is_drum"):
            if 0 <= t_on < T:
                is_drum[t_on] = True
            if b > a:
                is_drum[a:b] = True
            continue
        if b > a:
            n_active[a:b] += 1
            roll[a:b, int(n["pitch"])] = True
    # Highest pitch wins: write in ascending pitch order so the last write is the top note.
    for n in sorted((n for n in notes if not n.get("is_drum")), key=lambda n: (n["pitch"], n["velocity"])):
        a, b = span(float(n["onset"]), float(n["offset"]))
        if b > a:
            pitch[a:b] = int(n["pitch"])
            velocity[a:b] = int(n["velocity"])
            program[a:b] = int(n["program"])
            family[a:b] = FAMILIES.index(n["family"]) if n["family"] in FAMILIES else int(n["program"]) // 8
    family[(pitch < 0) & is_drum] = th.DRUM_FAMILY

    chord_root = np.full(T, -1, np.int32)
    chord_quality = np.full(T, -1, np.int32)
    chord_inv = np.full(T, -1, np.int32)
    for c in labels.get("chords", []):
        a, b = span(float(c["start"]), float(c["end"]))
        if b > a:
            chord_root[a:b] = int(c["root"])
            chord_quality[a:b] = CHORD_QUALITIES.index(c["quality"]) if c["quality"] in CHORD_QUALITIES else -1
            chord_inv[a:b] = int(c["inversion"])
    key = labels.get("key") or None
    tonic = int(key["tonic"]) if key else -1
    mode = KEY_MODES.index(key["mode"]) if key and key.get("mode") in KEY_MODES else -1
    return {
        "pitch": pitch,
        "velocity": velocity,
        "program": program,
        "family": family,
        "n_active": n_active,
        "piano_roll": roll,
        "is_drum": is_drum,
        "onset": onset,
        "chord_root": chord_root,
        "chord_quality": chord_quality,
        "chord_inversion": chord_inv,
        "key_tonic": np.full(T, tonic, np.int32),
        "key_mode": np.full(T, mode, np.int32),
    }


# --- corpus ------------------------------------------------------------------------------------------


def _resolve_kinds(kinds: Sequence[str] | None) -> tuple[list[str], list[float]]:
    if kinds is None:
        names = [k for k in available_kinds()]
    else:
        names = []
        for k in kinds:
            k = str(k).strip()
            _check_kind(k)
            if k not in names:
                names.append(k)
        if not names:
            raise DataError("no clip kinds given")
        if "piece" in names and "piece" not in available_kinds():
            raise DataError("the 'piece' kind needs music21 and its bundled corpus, which are not installed")
    weights = [DEFAULT_MIX[k] for k in names]
    total = sum(weights)
    return names, [w / total for w in weights]


def clip_plan(seed: int, index: int, kinds: Sequence[str], weights: Sequence[float]) -> tuple[str, int]:
    """(kind, clip seed) of clip `index` of a corpus; independent of the corpus size, so a corpus of n
    clips is a prefix of a larger one with the same seed and kinds."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0x6B696E64]))
    kind = kinds[int(rng.choice(len(kinds), p=np.asarray(weights, dtype=float)))]
    return kind, seed * MAX_CLIPS + index


def _render_task(task: tuple[str, int, str, int, int, str]) -> tuple[str, str, float]:
    """Render and save one corpus clip; returns (label JSON line, kind, seconds). Runs in workers."""
    from workbench.core.audio import AudioClip, save_audio

    out, index, kind, clip_seed, sr, soundfont = task
    clip = render_clip(kind, clip_seed, sr, soundfont)
    rel = f"audio/{clip.id}.flac"
    save_audio(Path(out) / rel, AudioClip(clip.audio[:, None], sr))
    record = dict(clip.labels, index=index, audio=rel)
    return json.dumps(record, separators=(",", ":")), kind, clip.duration


def generate_corpus(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    kinds: Sequence[str] | None = None,
    sample_rate: int = 24000,
    soundfont: str | os.PathLike[str] | None = None,
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Render `n` clips into ``out_dir/audio/<id>.flac`` with ``labels.jsonl`` and ``corpus.json``.

    Labels are streamed to a hidden part file and renamed into place at the end (`fileio.atomic_open`), so a
    ``labels.jsonl`` on disk always describes a complete corpus; an interrupted run leaves the
    previous one (if any) intact. With ``workers > 1`` clips render in spawned processes; the output
    is byte-identical to a single-process run (each clip depends only on its own seed).
    """
    from tqdm import tqdm

    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise DataError(f"number of clips must be at least 1, got {n!r}")
    if n > MAX_CLIPS:
        raise DataError(f"at most {MAX_CLIPS} clips per corpus, got {n}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    sr = _check_rate(sample_rate)
    names, weights = _resolve_kinds(kinds)
    font = fluid.get_font(soundfont)  # fail on a bad SoundFont before creating anything
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    audio_dir = out / "audio"
    try:
        audio_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create output folder ({exc.strerror or exc})") from None
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise DataError(f"workers must be at least 1, got {workers!r}")
    tasks = [(str(out), i, *clip_plan(int(seed), i, names, weights), sr, str(font.path)) for i in range(int(n))]
    counts: Counter[str] = Counter()
    total_seconds = 0.0
    pool: Any = None
    try:
        if workers > 1 and len(tasks) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may hold torch threads or an open synth lock.
            pool = ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_render_task, tasks, chunksize=4)
        else:
            results = map(_render_task, tasks)
        with atomic_open(out / "labels.jsonl", "w", encoding="utf-8") as f:
            # no tqdm at all without progress: even a disabled bar starts tqdm's monitor thread
            bar = tqdm(results, total=len(tasks), desc="synth", unit="clip", file=sys.stderr,
                       dynamic_ncols=True) if progress else results
            for line, kind, seconds in bar:
                f.write(line + "\n")
                counts[kind] += 1
                total_seconds += seconds
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    info = {
        "version": CORPUS_VERSION,
        "label_version": LABEL_VERSION,
        "generator": "workbench.core.data.synth",
        "seed": int(seed),
        "n": int(n),
        "kinds": names,
        "mix": dict(zip(names, weights, strict=True)),
        "counts": dict(counts),
        "sample_rate": sr,
        "soundfont": font.path.name,
        "soundfont_path": str(font.path),
        "total_seconds": round(total_seconds, 3),
        "conventions": "times in seconds on a 64-sample grid; offset = note-off (release tail follows); "
        "inversion = index of the bass tone in root-third-fifth-seventh order",
    }
    from workbench.core.userdirs import atomic_write_text

    atomic_write_text(out / "corpus.json", json.dumps(info, indent=2) + "\n")
    return out


def load_corpus(dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Labels of a corpus folder, one dict per clip, each with ``path``: the absolute audio file."""
    root = Path(dir)
    path = root / "labels.jsonl"
    if not path.is_file():
        raise DataError(f"{root}: not a synthetic corpus (no labels.jsonl)")
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: corrupt label line ({exc.msg})") from None
            if "audio" in rec:
                rec["path"] = str((root / rec["audio"]).resolve())
            out.append(rec)
    return out


# -- recipes: a corpus named by how it was made, so any of its clips can be rendered again -----------------

RECIPE_KEYS = ("generator", "version", "label_version", "seed", "n", "kinds", "mix", "sample_rate", "soundfont")


def corpus_recipe(dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """How the synthetic corpus in `dir` was made (from its ``corpus.json``), or None when `dir` is not
    one. Each clip depends only on (seed, index, kinds, mix, sample rate, SoundFont), so the recipe is
    enough to render any clip of the corpus again, bit for bit, on a machine that does not have it
    (`render_recipe_clips`): analysis files (labels.json, probes.json) record it beside their inputs."""
    try:
        info = json.loads((Path(dir) / "corpus.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("generator") != "workbench.core.data.synth":
        return None
    if any(k not in info for k in RECIPE_KEYS):
        return None
    return {k: info[k] for k in RECIPE_KEYS}


def corpus_recipes(inputs: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """The recipes of those `inputs` that are synthetic corpus folders (others are skipped)."""
    out = []
    for item in inputs:
        r = corpus_recipe(item)
        if r is not None and r not in out:
            out.append(r)
    return out


def _check_recipe(recipe: Any) -> tuple[int, int, list[str], list[float], int]:
    """(seed, n, kinds, weights, sample rate) of a recipe this version can render; DataError otherwise."""
    if not isinstance(recipe, dict) or recipe.get("generator") != "workbench.core.data.synth":
        raise DataError("not a synthetic corpus recipe")
    if recipe.get("version") != CORPUS_VERSION or recipe.get("label_version") != LABEL_VERSION:
        raise DataError(f"the corpus was made by another version of the generator (corpus {recipe.get('version')}, "
                        f"labels {recipe.get('label_version')}; this one makes {CORPUS_VERSION}/{LABEL_VERSION})")
    try:
        seed, n, sr = int(recipe["seed"]), int(recipe["n"]), int(recipe["sample_rate"])
        kinds = [str(k) for k in recipe["kinds"]]
        weights = [float(recipe["mix"][k]) for k in kinds]
    except (KeyError, TypeError, ValueError):
        raise DataError("the corpus recipe is incomplete") from None
    if not (0 <= seed and 1 <= n <= MAX_CLIPS) or not kinds:
        raise DataError("the corpus recipe is out of range")
    for k in kinds:
        _check_kind(k)
    return seed, n, kinds, weights, _check_rate(sr)


def recipe_audio_names(recipe: dict[str, Any]) -> list[str]:
    """The audio file of every clip of the recipe's corpus (``audio/<kind>-<clip seed>.flac``, in index
    order), worked out without rendering anything."""
    seed, n, kinds, weights, _ = _check_recipe(recipe)
    names = []
    for i in range(n):
        kind, clip_seed = clip_plan(seed, i, kinds, weights)
        names.append(f"audio/{kind}-{clip_seed}.flac")
    return names


def render_recipe_clips(
    recipe: dict[str, Any],
    indices: Sequence[int],
    out_dir: str | os.PathLike[str],
    check: Any = None,
    progress: Any = None,
) -> Path:
    """Render clips `indices` of the recipe's corpus into `out_dir` (a corpus folder of its own:
    ``audio/``, ``labels.jsonl`` with those clips, ``corpus.json`` = the recipe + ``indices``).

    Clips already in `out_dir` are kept, so a cancelled call (`check()` raises between clips) resumes;
    ``labels.jsonl`` is rewritten atomically (at most once a second, and when the call ends) and only
    names clips whose audio is written. The SoundFont must be the recipe's (by file name; the default one unless it was made with
    another). `progress(done, total)` is called before each clip."""
    seed, n, kinds, weights, sr = _check_recipe(recipe)
    want = sorted({int(i) for i in indices})
    if any(not (0 <= i < n) for i in want):
        raise DataError(f"clip indices must be in 0..{n - 1}")
    font_name = str(recipe.get("soundfont", ""))
    font = fluid.get_font(None)
    if font.path.name != font_name:
        raise DataError(f"the corpus was rendered with SoundFont {font_name}, not found here "
                        f"(the default is {font.path.name})")
    out = Path(out_dir)
    try:
        (out / "audio").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create the folder for the rendered clips ({exc.strerror or exc})") from None
    lines: dict[int, str] = {}
    try:
        for rec_line in (out / "labels.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(rec_line)
            if (out / str(rec.get("audio", ""))).is_file():
                lines[int(rec["index"])] = rec_line
    except (OSError, ValueError, KeyError, TypeError):
        lines = {}
    from workbench.core.userdirs import atomic_write_text

    def save_labels() -> None:
        atomic_write_text(out / "labels.jsonl", "".join(lines[j] + "\n" for j in sorted(lines)))

    todo = [i for i in want if i not in lines]
    saved, unsaved = time.monotonic(), False
    try:
        for done, i in enumerate(todo):
            if progress is not None:
                progress(done, len(todo))
            if check is not None:
                check()
            kind, clip_seed = clip_plan(seed, i, kinds, weights)
            line, _, _ = _render_task((str(out), i, kind, clip_seed, sr, str(font.path)))
            lines[i], unsaved = line, True
            if time.monotonic() - saved > 1.0:  # not after every clip: the file grows with the corpus
                save_labels()
                saved, unsaved = time.monotonic(), False
    finally:
        if unsaved:  # a cancel keeps what was rendered
            save_labels()
    info = dict(recipe, indices=sorted(lines))
    atomic_write_text(out / "corpus.json", json.dumps(info, indent=2) + "\n")
    return out
