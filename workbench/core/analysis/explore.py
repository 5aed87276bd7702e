"""What the app's feature dashboard and property plots compute (Qt-free; the app runs these in workers).

Feature examples (`ExampleCorpus`, `feature_examples`): a feature's top activating moments, its activation
histogram and its own sound, as the HTML report has them (`stats.feature_stats`, `stats.snippet`,
`stats.spectrogram_image`), but for one feature at a time and from a bounded corpus so the answer comes
in seconds: at most `MAX_CLIPS` clips (a seeded random choice when more are recorded) and the first
`MAX_CLIP_SECONDS` of each. The clips are those the SAE folder names (`recorded_inputs`: the exact
clips of labels.json, else the inputs recorded by `workbench label` / `workbench probe`, else the
training provenance); when none of them is on this machine the current clip stands in. The corpus
keeps the clips' latents and the SAE's features as a sparse column store (a TopK SAE fires on k of d_sae
features per frame, so 40 clips of 30 s with d_sae = 4096 take ~10 MB instead of ~1.4 GB dense); one
feature's column is then read in microseconds.

Playback in the app goes through its latent player (`playback.PlaybackEngine`), so an example is handed
over as the latents of the moment's surroundings (what the codec plays as "A" there) and the feature's
own sound as the constant latent ``mean_z + a · W_dec[j]`` (`stats.feature_sound` decodes the same
latent for the report).

Property tracks (`property_track`): one value per codec frame for pitch, loudness or timbre, either as
a probe reads it from the audio (the probe's predicted class on the SAE features of the re-encoded audio,
shown as MIDI note / dB / Hz at the class centre) or as measured (`descriptors.frame_descriptors`: CREPE
pitch as a MIDI number, RMS dB, spectral centroid Hz). Both are computed from decoded audio, so the
original (the codec's own output, "A") and the steered clip ("B") are read the same way and an empty
edit gives two identical curves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.analysis import descriptors as desc
from workbench.core.analysis.stats import (
    FeatureStats,
    Moment,
    constant_latent,
    feature_stats,
    snippet,
    spectrogram_image,
)
from workbench.core.errors import DataError, UsageError

MAX_CLIPS = 40
MAX_CLIP_SECONDS = 30.0
TOP_K = 8
TYPICAL_QUANTILES = (0.25, 0.5, 0.75)  # typical moments: at these quantiles of a feature's firing activations
SNIPPET_BEFORE = 0.3
SNIPPET_AFTER = 0.5
SOUND_SECONDS = 1.0
PROPERTY_UNITS = {"pitch": "MIDI note", "loudness": "dB", "timbre": "Hz"}
TRACK_SOURCES = ("probe", "measured")
TRACK_CHUNK_SECONDS = 10.0
TRACK_CONTEXT_FRAMES = 8  # > half the widest analysis window (CREPE: 64 ms = 4.8 frames at 75 Hz)


class _Job:
    """Stand-in for `jobs.JobControl` when a function is called without one."""

    def check(self) -> None:
        pass

    def progress(self, fraction: float, message: str = "") -> None:
        pass


# -- which clips ---------------------------------------------------------------------------------------

def _json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) else None


def _strings(v: Any) -> list[str]:
    return [str(x) for x in v if isinstance(x, str) and x] if isinstance(v, list) else []


def _locate(p: str, folder: Path) -> str | None:
    """A recorded path as it exists here: absolute, or relative to the current folder, or (the CLI records
    paths as typed, relative to where it ran) to the SAE folder or one of its three parents."""
    q = Path(p)
    if q.is_absolute():
        return p if q.exists() else None
    for base in (Path.cwd(), folder, *list(folder.resolve().parents)[:3]):
        if (base / q).exists():
            return str(base / q)
    return None


def recorded_inputs(folder: str | Path | None) -> tuple[list[str], str]:
    """(paths, where they were found) of the audio the SAE folder names, first match wins: the exact
    clips of labels.json (``clip_paths``), the inputs of ``workbench label`` and ``workbench probe``,
    the training inputs (workbench.json ``provenance.inputs``). Only paths found here are returned
    (`_locate`)."""
    if folder is None:
        return [], ""
    d = Path(folder)
    labels = _json(d / "labels.json") or {}
    probes = _json(d / "probes.json") or {}
    wb = _json(d / "workbench.json") or {}
    prov = wb.get("provenance") if isinstance(wb.get("provenance"), dict) else {}
    for what, paths in (("named in labels.json", _strings(labels.get("clip_paths"))),
                        ("from the inputs of labels.json", _strings(labels.get("inputs"))),
                        ("from the inputs of probes.json", _strings(probes.get("inputs"))),
                        ("from the training inputs", _strings((prov or {}).get("inputs")))):
        found = [q for q in (_locate(p, d) for p in paths) if q is not None]
        if found:
            return found, what
    return [], ""


def choose_clips(inputs: Sequence[str], sample_rate: int, max_clips: int = MAX_CLIPS, seed: int = 0) -> list[str]:
    """Audio files of `inputs` (folders searched, synthetic corpora recognised), at most `max_clips`
    (a seeded random choice, in corpus order)."""
    from workbench.core.analysis.corpus import load_clips

    clips = load_clips(list(inputs), sample_rate)
    paths = [p for p, _ in clips.entries]
    return [paths[i] for i in choose_indices(len(paths), max_clips, seed)]


def choose_indices(n: int, max_clips: int = MAX_CLIPS, seed: int = 0) -> list[int]:
    """Which of `n` clips (in corpus order) `choose_clips` takes: all, or a seeded random `max_clips`."""
    if n <= max_clips:
        return list(range(n))
    return [int(i) for i in np.sort(np.random.default_rng(seed).choice(n, max_clips, replace=False))]


def recorded_recipes(folder: str | Path | None) -> list[dict[str, Any]]:
    """The synthetic corpus recipes (`synth.corpus_recipe`) labels.json or probes.json record for their
    inputs, first file that has any wins."""
    if folder is None:
        return []
    for name in ("labels.json", "probes.json"):
        doc = _json(Path(folder) / name) or {}
        recipes = doc.get("synth_recipes")
        if isinstance(recipes, list) and recipes:
            return [r for r in recipes if isinstance(r, dict)]
    return []


def render_examples(recipe: dict[str, Any], max_clips: int = MAX_CLIPS, seed: int = 0, cache: str | Path | None = None,
                    check: Any = None, progress: Any = None) -> list[str]:
    """The clips `choose_clips` would take from the recipe's corpus, rendered again into the user cache
    (``<cache>/corpora/synth-<hash of the recipe>``; kept, so this is paid once) when the corpus is not
    on this machine. Returns their paths, in corpus order."""
    import hashlib

    from workbench.core.data.synth import recipe_audio_names, render_recipe_clips
    from workbench.core.userdirs import cache_dir

    names = recipe_audio_names(recipe)
    order = sorted(range(len(names)), key=lambda i: names[i])  # load_clips reads a corpus in path order
    chosen = [order[j] for j in choose_indices(len(order), max_clips, seed)]
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    out = Path(cache) if cache is not None else cache_dir() / "corpora" / f"synth-{key}"
    render_recipe_clips(recipe, chosen, out, check=check, progress=progress)
    return [str(out / names[i]) for i in sorted(chosen, key=lambda i: names[i])]


# -- the examples corpus -------------------------------------------------------------------------------

@dataclass
class ExampleCorpus:
    """Latents and sparse SAE features of a few clips, built clip by clip (`add_clip`) so a cancelled
    build keeps what it has and the next one continues."""

    frame_rate: float
    sample_rate: int
    names: list[str] = field(default_factory=list)
    latents: list[np.ndarray] = field(default_factory=list)  # per clip [T, D]
    audio: dict[int, np.ndarray] = field(default_factory=dict)  # mono audio of clips held in memory
    source: str = ""  # what the clips are, for the user ("12 clips of labels.json clips")
    pending: list[str] = field(default_factory=list)  # paths still to encode
    failed: list[str] = field(default_factory=list)
    _parts: list[Any] = field(default_factory=list)  # per clip scipy.sparse.csr_matrix [T, d_sae]
    _csc: Any = None
    _mean_z: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        return not self.pending

    @property
    def num_clips(self) -> int:
        return len(self.names)

    @property
    def num_frames(self) -> int:
        return int(sum(z.shape[0] for z in self.latents))

    def add_clip(self, name: str, z: np.ndarray, features: np.ndarray, audio: np.ndarray | None = None) -> None:
        import scipy.sparse as sp

        if z.shape[0] != features.shape[0]:
            raise UsageError(f"{name}: {z.shape[0]} latent frames but {features.shape[0]} feature frames")
        if audio is not None:
            self.audio[len(self.names)] = np.asarray(audio, np.float32)
        self.names.append(str(name))
        self.latents.append(np.asarray(z, np.float32))
        self._parts.append(sp.csr_matrix(np.asarray(features, np.float32)))
        self._csc = None
        self._mean_z = None

    def _matrix(self) -> Any:
        import scipy.sparse as sp

        if self._csc is None:
            if not self._parts:
                raise DataError("the examples corpus holds no clips")
            self._csc = sp.vstack(self._parts, format="csc")
        return self._csc

    def column(self, feature: int) -> np.ndarray:
        m = self._matrix()
        if not 0 <= feature < m.shape[1]:
            raise UsageError(f"feature {feature} is out of range (the SAE has {m.shape[1]})")
        return np.asarray(m[:, feature].toarray(), np.float32).ravel()

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """(clip_ids, frame_index) of every row."""
        ids = np.concatenate([np.full(z.shape[0], i, np.int64) for i, z in enumerate(self.latents)])
        fidx = np.concatenate([np.arange(z.shape[0], dtype=np.int64) for z in self.latents])
        return ids, fidx

    def mean_z(self) -> np.ndarray:
        if self._mean_z is None:
            tot = sum(z.astype(np.float64).sum(axis=0) for z in self.latents)
            self._mean_z = (np.asarray(tot) / max(1, self.num_frames)).astype(np.float32)
        return self._mean_z

    def clip_audio(self, clip: int) -> np.ndarray:
        """Mono audio of a clip at the corpus rate (read from disk for clips not held in memory)."""
        if clip in self.audio:
            return self.audio[clip]
        from workbench.core.audio import load_audio

        return load_audio(self.names[clip], self.sample_rate, 1, duration=MAX_CLIP_SECONDS).samples[:, 0]


def corpus_from_clip(z: np.ndarray, features: np.ndarray, audio: np.ndarray, frame_rate: float, sample_rate: int,
                     name: str = "current clip") -> ExampleCorpus:
    """The current clip as a one-clip corpus (when the SAE folder names no clips that are here)."""
    c = ExampleCorpus(float(frame_rate), int(sample_rate), source="the current clip")
    a = np.asarray(audio, np.float32)
    c.add_clip(name, z, features, a.mean(axis=1) if a.ndim == 2 else a)
    return c


def start_corpus(paths: Sequence[str], where: str, frame_rate: float, sample_rate: int) -> ExampleCorpus:
    c = ExampleCorpus(float(frame_rate), int(sample_rate), pending=list(paths))
    c.source = f"{len(paths)} clip{'s' if len(paths) != 1 else ''} {where}"
    return c


def fill_corpus(corpus: ExampleCorpus, codec: Any, sae: Any, job: Any = None) -> ExampleCorpus:
    """Encode the corpus' pending clips (first `MAX_CLIP_SECONDS` of each); `sae.encode(z)` gives
    features. Checks `job` between clips; a clip that cannot be read is skipped and remembered."""
    from workbench.core.audio import load_audio
    from workbench.core.errors import WorkbenchError

    job = job or _Job()
    total = len(corpus.pending) + corpus.num_clips + len(corpus.failed)
    while corpus.pending:
        job.progress((corpus.num_clips + len(corpus.failed)) / max(1, total),
                     f"examples: encoding clip {corpus.num_clips + len(corpus.failed) + 1}/{total}")
        path = corpus.pending[0]
        try:
            clip = load_audio(path, codec.sample_rate, codec.channels, duration=MAX_CLIP_SECONDS)
            z = codec.encode(codec.prepare(clip))
        except WorkbenchError:
            corpus.pending.pop(0)
            corpus.failed.append(path)
            continue
        job.check()
        f = sae.encode(z)
        job.check()
        corpus.pending.pop(0)  # only now: a cancel above leaves the clip to the next build
        corpus.add_clip(path, z, f)
    if corpus.num_clips == 0:
        raise DataError("none of the recorded clips could be read")
    return corpus


# -- one feature ---------------------------------------------------------------------------------------

@dataclass
class Example:
    """One top moment: where, how strong, its picture and the latents to play."""

    clip: int
    name: str
    time: float  # seconds from the clip's start
    activation: float
    thumbnail: np.ndarray  # RGB [h, w, 3] uint8, the moment marked
    z: np.ndarray  # latents of the surroundings [t, D]
    offset: float  # where the moment falls in the played latents (seconds)


@dataclass
class FeatureExamples:
    feature: int
    stats: FeatureStats
    examples: list[Example]
    sound_z: np.ndarray  # the feature's own sound as a constant latent [t, D]
    reference_z: np.ndarray  # the mean latent alone, same length
    strength: float  # the activation used for the sound
    source: str  # what the clips were
    clips: int
    frames: int
    # typical moments: one at each activation quantile of the firing frames (q, moment), not a top one
    typical: list[tuple[float, Example]] = field(default_factory=list)

    @property
    def moments(self) -> list[Example]:
        """The top moments, then the typical ones: what a dashboard lists and plays, in order."""
        return self.examples + [ex for _, ex in self.typical]


def latent_window(z: np.ndarray, frame: int, frame_rate: float, before: float = SNIPPET_BEFORE,
                  after: float = SNIPPET_AFTER) -> tuple[np.ndarray, float]:
    """(latents around `frame`, where the frame falls in them in seconds), cut at the clip's edges."""
    a = max(0, frame - int(round(before * frame_rate)))
    b = min(z.shape[0], frame + int(round(after * frame_rate)) + 1)
    if b - a < 2:
        a, b = max(0, b - 2), min(z.shape[0], max(b, 2))
    return np.ascontiguousarray(z[a:b], np.float32), (frame - a) / frame_rate


def feature_examples(corpus: ExampleCorpus, feature: int, w_dec_row: np.ndarray, strength: float | None = None,
                     top_k: int = TOP_K, job: Any = None, thumb_height: int = 56, thumb_width: int = 120,
                     quantiles: Sequence[float] = TYPICAL_QUANTILES) -> FeatureExamples:
    """Statistics, top moments (thumbnail + latents) and the own sound of one feature on `corpus`.

    `strength` is the activation whose push along the decoder row is heard as the feature's sound (the
    feature's maximum on the training data; default the maximum seen here, or 1 if it never fires).
    `quantiles`: typical moments, the firing frame nearest each of those quantiles of its activations
    (`stats.feature_stats`; never one of the top moments), to hear the feature at ordinary strength."""
    job = job or _Job()
    x = corpus.column(feature)
    ids, fidx = corpus.index()
    st = feature_stats(x[:, None], ids, fidx, corpus.frame_rate, top_k=top_k, quantiles=quantiles)[0]
    st.feature = int(feature)
    examples: list[Example] = []
    audio: dict[int, np.ndarray | None] = {}  # a clip's audio is read once for all its moments
    for m in st.top:
        job.check()
        examples.append(_example(corpus, m, audio, thumb_height, thumb_width))
    typical = []
    for q, m in st.quantiles:
        job.check()
        typical.append((q, _example(corpus, m, audio, thumb_height, thumb_width)))
    a = strength if strength is not None and math.isfinite(strength) and strength > 0 else (st.max_activation or 1.0)
    mz = corpus.mean_z()
    w = np.asarray(w_dec_row, np.float32)
    if w.shape != mz.shape:
        raise UsageError(f"decoder row {w.shape} and mean latent {mz.shape} differ in size")
    return FeatureExamples(int(feature), st, examples,
                           constant_latent(mz + float(a) * w, corpus.frame_rate, SOUND_SECONDS),
                           constant_latent(mz, corpus.frame_rate, SOUND_SECONDS), float(a), corpus.source, corpus.num_clips,
                           corpus.num_frames, typical)


def _example(corpus: ExampleCorpus, m: Moment, audio: dict[int, np.ndarray | None], height: int,
             width: int) -> Example:
    from workbench.core.errors import WorkbenchError

    z, off = latent_window(corpus.latents[m.clip], m.frame, corpus.frame_rate)
    thumb = np.zeros((height, width, 3), np.uint8)  # a clip that vanished since: no picture, still playable
    if m.clip not in audio:
        try:
            audio[m.clip] = corpus.clip_audio(m.clip)
        except (WorkbenchError, OSError):
            audio[m.clip] = None
    a = audio[m.clip]
    if a is not None and a.size:
        snip, mark = snippet(a, corpus.sample_rate, m.time, SNIPPET_BEFORE, SNIPPET_AFTER)
        thumb = spectrogram_image(snip, corpus.sample_rate, height, width, mark=mark)
    return Example(m.clip, corpus.names[m.clip], m.time, m.activation, thumb, z, off)


# -- property tracks -----------------------------------------------------------------------------------

def class_values(prop: str, classes: np.ndarray) -> np.ndarray:
    """Probe classes as numbers on the property's own scale: pitch → MIDI note (NaN = unvoiced),
    loudness → the bin's centre in dB, timbre → the bin's centre in Hz (geometric)."""
    c = np.asarray(classes, np.int64)
    if prop == "pitch":
        out = (c + desc.PITCH_MIDI_MIN).astype(np.float64)
        out[c >= desc.PITCH_UNVOICED] = np.nan
        return out
    if prop == "loudness":
        lo, hi = desc.LOUDNESS_DB_RANGE
        return lo + (c + 0.5) * (hi - lo) / desc.NUM_LOUDNESS
    if prop == "timbre":
        lo, hi = np.log2(desc.CENTROID_HZ_RANGE[0]), np.log2(desc.CENTROID_HZ_RANGE[1])
        return np.asarray(2.0 ** (lo + (c + 0.5) * (hi - lo) / desc.NUM_TIMBRE))
    raise UsageError(f"unknown property '{prop}'; known: {', '.join(desc.PROPERTIES)}")


def descriptor_values(prop: str, d: desc.FrameDescriptors) -> np.ndarray:
    """Measured descriptors on the same scales as `class_values` (NaN where undefined)."""
    if prop == "pitch":
        return np.asarray(desc.hz_to_midi(d.pitch_hz), np.float64)
    if prop == "loudness":
        v = np.asarray(d.rms_db, np.float64).copy()
        v[v <= desc.DB_FLOOR] = np.nan
        return v
    if prop == "timbre":
        v = np.asarray(d.centroid_hz, np.float64).copy()
        v[v <= 0] = np.nan
        return v
    raise UsageError(f"unknown property '{prop}'; known: {', '.join(desc.PROPERTIES)}")


def _mono(samples: np.ndarray) -> np.ndarray:
    a = np.asarray(samples, np.float32)
    return a.mean(axis=1) if a.ndim == 2 else a


def property_track(prop: str, source: str, clip: Any, codec: Any, num_frames: int, sae: Any = None,
                   probes: Any = None, crepe_model: str = "tiny", job: Any = None,
                   chunk_seconds: float = TRACK_CHUNK_SECONDS) -> np.ndarray:
    """[num_frames] values of `prop` over an `audio.AudioClip` (frame t at t / frame rate s).

    ``source="probe"``: the SAE's probe of `prop` on the SAE features of `codec.encode(clip)` (needs
    `sae` with ``encode`` and `probes`, a `probes.ProbeSet`); ``"measured"``: the descriptor itself,
    measured `chunk_seconds` at a time (with `TRACK_CONTEXT_FRAMES` of audio either side, so every
    analysis window sees the audio it would see in one pass) and `job` checked between chunks."""
    if prop not in desc.PROPERTIES:
        raise UsageError(f"unknown property '{prop}'; known: {', '.join(desc.PROPERTIES)}")
    job = job or _Job()
    n = int(num_frames)
    if source == "probe":
        if sae is None or probes is None:
            raise UsageError("a probe track needs an SAE with probes")
        z = codec.encode(codec.prepare(clip))
        job.check()
        f = sae.encode(z)
        cls = probes.probe(prop).predict(f)
        out = class_values(prop, cls)
    elif source == "measured":
        x, sr, fr = _mono(clip.samples), int(clip.sample_rate), float(codec.frame_rate)
        step = max(1, int(round(chunk_seconds * fr)))
        ctx = TRACK_CONTEXT_FRAMES
        parts = []
        for f0 in range(0, max(n, 1), step):
            job.check()
            f1 = min(n, f0 + step)
            a = max(0, f0 - ctx)  # first frame measured; its centre is where the audio cut starts
            s0 = int(round(a * sr / fr))
            s1 = min(x.shape[0], int(round((f1 + ctx) * sr / fr)))
            d = desc.frame_descriptors(x[s0:s1], sr, fr, f1 - a, crepe_model, with_pitch=prop == "pitch")
            parts.append(descriptor_values(prop, d)[f0 - a :])
        out = np.concatenate(parts) if parts else np.zeros(0)
    else:
        raise UsageError(f"track source must be one of {', '.join(TRACK_SOURCES)}, got '{source}'")
    if out.shape[0] < n:
        out = np.concatenate([out, np.full(n - out.shape[0], np.nan)])
    return np.asarray(out[:n], np.float64)


def probe_metrics_rows(probes_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (property, subset, input, accuracy, balanced_accuracy, macro_f1, chance, frames) of a
    probes.json, in the file's property order and `probes.INPUTS` order; properties without metrics are
    skipped. After the all-frames rows (``subset`` "") of every property come, per named subset of the
    held-out frames (``fit_probes(subsets=...)``, e.g. the monophonic clips), its rows for each property."""
    from workbench.core.analysis.probes import INPUTS

    def num(m: dict[str, Any], k: str) -> float:
        v = m.get(k)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float("nan")

    def row(prop: str, subset: str, name: str, m: dict[str, Any]) -> dict[str, Any]:
        frames = num(m, "frames")
        return {"property": prop, "subset": subset, "input": name, "accuracy": num(m, "accuracy"),
                "balanced_accuracy": num(m, "balanced_accuracy"), "macro_f1": num(m, "macro_f1"),
                "chance": num(m, "chance"), "frames": int(frames) if math.isfinite(frames) else 0}

    out: list[dict[str, Any]] = []
    props = probes_json.get("properties")
    if not isinstance(props, dict):
        return out
    subsets: dict[str, list[dict[str, Any]]] = {}
    for prop, info in props.items():
        metrics = info.get("metrics") if isinstance(info, dict) else None
        if not isinstance(metrics, dict):
            continue
        for name in INPUTS:
            m = metrics.get(name)
            if not isinstance(m, dict):
                continue
            out.append(row(str(prop), "", name, m))
            subs = m.get("subsets")
            if isinstance(subs, dict):
                for sname, sm in subs.items():
                    if isinstance(sm, dict):
                        subsets.setdefault(str(sname), []).append(row(str(prop), str(sname), name, sm))
    for rows in subsets.values():
        out.extend(rows)
    return out

