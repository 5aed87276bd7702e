"""Excerpts of real scores (music21's bundled Bach chorales) as `Material` for the ``piece`` kind.

Random material teaches a codec what notes sound like; real voice leading is what music sounds like.
The chorales are four-part, small (parsing one takes ~50 ms) and ship with music21, so this works
offline. Parsed scores are reduced to plain note lists and cached per process. When music21 or its
corpus is missing, `available()` is False and the kind is skipped by the corpus generator.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.data import theory as th
from workbench.core.data.material import Chord, Ctx, Material, Part
from workbench.core.errors import DataError

_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")


@dataclass(frozen=True)
class ScoreData:
    name: str  # path relative to the corpus folder, for provenance
    parts: tuple[tuple[str, tuple[tuple[float, float, int], ...]], ...]  # (part name, (onset q, dur q, pitch))
    measures: tuple[float, ...]  # measure start offsets in quarter notes, plus the end
    key: tuple[int, str] | None
    key_source: str | None


@functools.lru_cache(maxsize=1)
def corpus_paths() -> tuple[str, ...]:
    """Sorted chorale files (sorted so a seed picks the same chorale on every machine)."""
    # Found on disk without importing music21 (a 1 s import): with the score cache warm, rendering
    # pieces never needs music21 at all.
    import importlib.util

    try:
        spec = importlib.util.find_spec("music21")
    except (ImportError, ValueError):
        return ()
    if spec is None or not spec.origin:
        return ()
    folder = Path(spec.origin).parent / "corpus" / "bach"
    if not folder.is_dir():
        return ()
    keep = [str(p) for p in folder.iterdir() if p.name.startswith("bwv") and p.suffix.lower() in _SUFFIXES]
    return tuple(sorted(keep, key=lambda p: Path(p).name))


def available() -> bool:
    return bool(corpus_paths())


def _part_notes(part: Any) -> list[tuple[float, float, int]]:
    """(onset, duration, pitch) in quarter notes with ties merged.

    Done by hand: music21's ``stripTies`` deep-copies the part and was 90% of the parse time.
    """
    notes: list[tuple[float, float, int]] = []
    open_ties: dict[int, int] = {}
    for n in part.flatten().notes:
        ql = float(n.quarterLength)
        if ql <= 0 or n.duration.isGrace:
            continue
        off = float(n.offset)
        subs = list(n.notes) if n.isChord else [n]
        for sub in subs:
            midi = int(sub.pitch.midi)
            tie = sub.tie if sub.tie is not None else (n.tie if n.isChord else None)
            kind = tie.type if tie is not None else None
            if kind in ("stop", "continue") and midi in open_ties:
                idx = open_ties[midi]
                s, _, p = notes[idx]
                notes[idx] = (s, off + ql - s, p)
                if kind == "stop":
                    del open_ties[midi]
                continue
            notes.append((off, ql, midi))
            if kind == "start":
                open_ties[midi] = len(notes) - 1
    return notes


def _cache_file(path: str) -> Path | None:
    try:
        from importlib.metadata import version

        from workbench.core.userdirs import cache_dir

        return cache_dir() / "scores" / f"music21-{version('music21')}" / f"{Path(path).name}.json"
    except Exception:
        return None


def _from_json(obj: dict[str, Any]) -> ScoreData:
    key_label = None if obj["key"] is None else (int(obj["key"][0]), str(obj["key"][1]))
    parts = tuple((str(n), tuple((float(a), float(b), int(c)) for a, b, c in notes)) for n, notes in obj["parts"])
    return ScoreData(str(obj["name"]), parts, tuple(float(m) for m in obj["measures"]), key_label, obj["key_source"])


@functools.lru_cache(maxsize=512)
def load_score(path: str) -> ScoreData:
    """A chorale reduced to note lists; cached in memory and in the user cache folder.

    music21's parse costs 0.1-0.3 s per chorale, which would dominate a corpus; the reduced form is a
    few kB of JSON that loads in a millisecond.
    """
    cache = _cache_file(path)
    if cache is not None and cache.is_file():
        try:
            return _from_json(json.loads(cache.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a stale or damaged cache entry: parse again and overwrite it
    data = _parse_score(path)
    if cache is not None:
        try:
            from workbench.core.userdirs import atomic_write_text

            obj = {
                "name": data.name,
                "parts": data.parts,
                "measures": data.measures,
                "key": data.key,
                "key_source": data.key_source,
            }
            atomic_write_text(cache, json.dumps(obj, separators=(",", ":")))
        except OSError:
            pass  # read-only or full cache folder: the cache is an optimisation only
    return data


def _parse_score(path: str) -> ScoreData:
    from music21 import converter, key

    try:
        # forceSource: no pickle cache written anywhere. Typed Any: music21's stubs say Score | Part | Opus.
        score: Any = converter.parse(path, forceSource=True)
    except Exception as exc:
        raise DataError(f"{Path(path).name}: cannot parse score ({' '.join(str(exc).split())[:120]})") from None
    if not hasattr(score, "parts"):
        raise DataError(f"{Path(path).name}: not a single score")
    parts = []
    for i, part in enumerate(score.parts):
        notes = _part_notes(part)
        if notes:
            parts.append((str(part.partName or f"part {i + 1}"), tuple(sorted(notes))))
    first = score.parts[0] if len(score.parts) else None
    measures = [float(m.offset) for m in first.getElementsByClass("Measure")] if first is not None else []
    measures.append(float(score.highestTime))
    found = [k for k in score.recurse().getElementsByClass(key.Key) if k.mode in ("major", "minor")]
    key_label: tuple[int, str] | None
    if found:
        key_label, source = (int(found[0].tonic.pitchClass), str(found[0].mode)), "score"
    else:
        try:
            k = score.analyze("key")
            key_label, source = (int(k.tonic.pitchClass), str(k.mode)), "analysis"
        except Exception:
            key_label, source = None, None
    rel = Path(path).name
    return ScoreData(rel, tuple(parts), tuple(measures), key_label, source)


def _pick_program(ctx: Ctx, register: str, lo: int, hi: int) -> int:
    pool = [p for p in th.PART_PROGRAMS[register] if ctx.has_preset(p, False)]
    fits = [p for p in pool if ctx.prange(p)[0] - 2 <= lo and hi <= ctx.prange(p)[1] + 2]
    return ctx.program(fits or [0, 19, 48])


def _chord_segments(spans: list[tuple[float, float, int]]) -> list[tuple[float, float, int, str, int]]:
    """Vertical slices of the written notes that form a known chord, merged when unchanged."""
    cuts = sorted({t for a, b, _ in spans for t in (a, b)})
    out: list[tuple[float, float, int, str, int]] = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=False):
        sounding = [p for s, e, p in spans if s <= a < e]
        rec = th.recognise_chord(sounding)
        if rec is None:
            continue
        if out and out[-1][1] == a and out[-1][2:] == rec:
            out[-1] = (out[-1][0], b, *rec)
        else:
            out.append((a, b, *rec))
    return out


def gen_piece(ctx: Ctx) -> Material:
    """A few bars of a chorale, each voice on its own GM instrument, at a random tempo."""
    paths = corpus_paths()
    if not paths:
        raise DataError("the 'piece' kind needs music21's bundled corpus, which is not installed")
    path = paths[ctx.integers(0, len(paths) - 1)]
    score = load_score(path)
    meas = score.measures
    qpm = ctx.uniform(56, 110)
    sec_per_q = 60.0 / qpm
    n_meas = len(meas) - 1
    if n_meas < 1 or not score.parts:
        raise DataError(f"{score.name}: score has no measures with notes")
    start_m = ctx.integers(0, max(0, n_meas - 2))
    q0 = meas[start_m]
    if ctx.budget is not None:
        q1 = min(meas[-1], q0 + ctx.budget / sec_per_q)
    else:
        want = ctx.uniform(4.0, 10.0) / sec_per_q
        end_m = start_m + 1
        while end_m < n_meas and meas[end_m + 1] - q0 <= want:
            end_m += 1
        q1 = meas[end_m]
    lead = ctx.lead_in(0.1)

    def sec(q: float) -> float:
        return lead + (q - q0) * sec_per_q

    excerpt = []
    for name, notes in score.parts[:15]:  # 15 melodic MIDI channels
        sel = [(s, min(s + d, q1), p) for s, d, p in notes if q0 <= s < q1]
        if sel:
            excerpt.append((name, sel))
    if not excerpt:
        raise DataError(f"{score.name}: empty excerpt")
    ranges = [(min(p for *_, p in sel), max(p for *_, p in sel)) for _, sel in excerpt]
    programs: list[int] | None = None
    ensemble = "mixed"
    if len(excerpt) == 4 and ctx.chance(0.6):
        ensemble = ctx.choice(list(th.ENSEMBLES))
        programs = list(th.ENSEMBLES[ensemble])
        ok = all(
            ctx.prange(p)[0] - 3 <= lo and hi <= ctx.prange(p)[1] + 3 and ctx.has_preset(p, False)
            for p, (lo, hi) in zip(programs, ranges, strict=True)
        )
        if not ok:
            programs, ensemble = None, "mixed"
    if programs is None:
        programs = []
        for lo, hi in ranges:
            median = (lo + hi) / 2
            register = "high" if median >= 64 else "mid" if median >= 53 else "low"
            programs.append(_pick_program(ctx, register, lo, hi))
    parts: list[Part] = []
    spans: list[tuple[float, float, int]] = []
    for (name, sel), program in zip(excerpt, programs, strict=True):
        base = ctx.uniform(60, 95)
        out = []
        for s, e, p in sel:
            downbeat = any(abs(s - m) < 1e-6 for m in meas)
            on, off = sec(s), sec(s + (e - s) * 0.96)  # slight detache so repeated notes re-attack
            vel = int(np.clip(round(base + (6.0 if downbeat else 0.0) + ctx.rng.normal(0, 4)), 20, 127))
            out.append((on, off, p, vel))
            spans.append((s, e, p))
        parts.append(Part(program, False, name, out))
    chords = [Chord(sec(a), sec(b), r, q, inv) for a, b, r, q, inv in _chord_segments(spans)]
    meta: dict[str, Any] = {
        "source": f"music21:bach/{score.name}",
        "measures": [start_m, start_m + sum(1 for m in meas[start_m:-1] if m < q1)],
        "ensemble": ensemble,
        "key_source": score.key_source,
        "chords_from": "score slices",
    }
    return Material(parts, chords, key=score.key, tempo=qpm, meta=meta)
