"""A corpus seen frame by frame: codec latents, SAE features, descriptors and (synthetic) ground truth.

`collect_frames` encodes every clip with the codec, runs the SAE, measures descriptors
(`descriptors.frame_descriptors`, the slow part: CREPE) and, where the clip has synthetic-corpus
labels, the exact per-frame ground truth of `synth.frame_labels`. All rows are frames of the whole
corpus, in clip order; `clip_ids` / `frame_index` say where each came from.

Alignment: frame ``t`` is centred at ``t / frame_rate`` s (see `descriptors`). `synth.frame_labels`
takes frame ``t`` to be centred at ``(t + 0.5) / frame_rate``, so the labels' times are shifted by half a
frame before calling it: a note is active in frame ``t`` when it sounds at ``t / frame_rate``, and its
onset lands in the frame whose centre is nearest to it.

Memory: everything is held densely in RAM. Per frame: latents 4·D bytes, features 4·d_sae bytes, 16
bytes of descriptors and ~180 bytes of truth (the 128-note piano roll is bool). With D = 64 and
d_sae = 1024 that is ~4.5 kB per frame: 1e5 frames (≈ 22 min of audio at 75 frames/s) ≈ 450 MB, 1e6
frames ≈ 4.5 GB. Pass ``keep_features=False`` to drop features (probes can recompute them from latents
in chunks) when memory is tight.

Cache: descriptors are cached per clip in ``<user cache>/descriptors`` (``WORKBENCH_CACHE_DIR``
overrides the user cache) under a SHA-256 of the clip's samples at the codec's rate, the frame rate,
the frame count, the CREPE model and the descriptor settings; a second pass over the same corpus only
re-runs the codec and the SAE.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.analysis import descriptors as desc
from workbench.core.analysis.descriptors import FrameDescriptors
from workbench.core.errors import DataError, UsageError

DESCRIPTOR_CACHE_VERSION = 1
Clip = tuple[str, Any, "dict[str, Any] | None"]  # (path or name, mono audio at the codec rate or AudioClip, labels)
Progress = Callable[[int, int, str], None]  # (clips done, clips in all, current clip name)


@dataclass
class CorpusFrames:
    """Frames of a corpus; every per-frame array has N rows (N = total frames of all clips)."""

    clip_ids: np.ndarray  # [N] int64, index into clip_paths
    frame_index: np.ndarray  # [N] int64, frame within its clip
    latents: np.ndarray  # [N, D] float32, codec latents
    features: np.ndarray  # [N, d_sae] float32, SAE features (d_sae = 0 without an SAE / keep_features=False)
    descriptors: FrameDescriptors  # [N] each
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # synth.frame_labels keys + "has_labels"; {} if none
    clip_paths: list[str] = field(default_factory=list)
    frame_rate: float = 0.0
    sample_rate: int = 0

    def __len__(self) -> int:
        return int(self.clip_ids.shape[0])

    @property
    def num_clips(self) -> int:
        return len(self.clip_paths)

    def classes(self) -> dict[str, np.ndarray]:
        """Per-frame class of each property (descriptors.PROPERTIES)."""
        return self.descriptors.classes()

    def clip_slice(self, clip: int) -> slice:
        """Rows of one clip (rows of a clip are contiguous)."""
        idx = np.flatnonzero(self.clip_ids == clip)
        if idx.size == 0:
            return slice(0, 0)
        return slice(int(idx[0]), int(idx[-1]) + 1)

    def subset(self, mask: np.ndarray) -> CorpusFrames:
        """Rows where `mask` is true (clip numbering kept)."""
        m = np.asarray(mask)
        d = FrameDescriptors(*(a[m] for a in self.descriptors.to_arrays().values()))
        return CorpusFrames(self.clip_ids[m], self.frame_index[m], self.latents[m], self.features[m], d,
                            {k: v[m] for k, v in self.truth.items()}, list(self.clip_paths), self.frame_rate,
                            self.sample_rate)


# -- clips --------------------------------------------------------------------------------------------

class ClipList(Sequence[Clip]):
    """Clips loaded lazily (one at a time when iterated), so a large corpus is never all in memory."""

    def __init__(self, entries: list[tuple[str, dict[str, Any] | None]], sample_rate: int) -> None:
        self.entries = entries
        self.sample_rate = int(sample_rate)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return ClipList(self.entries[i], self.sample_rate)
        from workbench.core.audio import load_audio

        path, labels = self.entries[i]
        clip = load_audio(path, self.sample_rate, 1)
        return (path, clip.samples[:, 0], labels)

    def __iter__(self) -> Iterator[Clip]:
        for i in range(len(self)):
            yield self[i]


def load_clips(inputs: Sequence[str | os.PathLike[str]], sample_rate: int = 24000,
               max_clips: int | None = None) -> ClipList:
    """Audio files and folders (searched recursively) as (path, mono audio at `sample_rate`, labels).

    A folder holding ``labels.jsonl`` is read as a synthetic corpus (`synth.load_corpus`): its clips
    come with their labels. Other files get ``None``. Audio is loaded when a clip is accessed.
    `max_clips` keeps the first N (in the sorted order), e.g. for a quick look at a big corpus.
    """
    from workbench.core.data.synth import load_corpus
    from workbench.core.sae.store import collect_audio_files

    if not inputs:
        raise UsageError("no audio files or folders given")
    entries: list[tuple[str, dict[str, Any] | None]] = []
    seen: set[str] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir() and (p / "labels.jsonl").is_file():
            recs = load_corpus(p)
            for r in sorted(recs, key=lambda r: str(r.get("path", ""))):
                path = r.get("path")
                if not path:
                    continue
                if not Path(path).is_file():
                    raise DataError(f"{p}: labels.jsonl names {r.get('audio')}, which does not exist")
                if path not in seen:
                    seen.add(path)
                    entries.append((path, r))
            continue
        files, _ = collect_audio_files([p])
        for f in files:
            key = str(f.resolve())
            if key not in seen:
                seen.add(key)
                entries.append((str(f), None))
    if not entries:
        raise DataError("no audio files found in " + ", ".join(str(i) for i in inputs))
    if max_clips is not None:
        entries = entries[: max(0, int(max_clips))]
    return ClipList(entries, sample_rate)


# -- descriptors cache --------------------------------------------------------------------------------

def _cache_folder() -> Path:
    from workbench.core.userdirs import cache_dir

    return cache_dir() / "descriptors"


def descriptor_key(audio: np.ndarray, sample_rate: int, frame_rate: float, num_frames: int, crepe_model: str) -> str:
    h = hashlib.sha256()
    settings = {"v": DESCRIPTOR_CACHE_VERSION, "sr": int(sample_rate), "fr": float(frame_rate), "T": int(num_frames),
                "crepe": crepe_model, "voiced": desc.VOICED_THRESHOLD, "silence": desc.SILENCE_DB,
                "fmin": desc.CREPE_FMIN, "fmax": desc.CREPE_FMAX}
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(np.ascontiguousarray(audio, np.float32).tobytes())
    return h.hexdigest()


def cached_frame_descriptors(audio: np.ndarray, sample_rate: int, frame_rate: float, num_frames: int,
                             crepe_model: str = "tiny", cache: bool = True) -> FrameDescriptors:
    """`frame_descriptors` through the per-clip disk cache (a damaged entry is recomputed)."""
    if not cache:
        return desc.frame_descriptors(audio, sample_rate, frame_rate, num_frames, crepe_model)
    key = descriptor_key(audio, sample_rate, frame_rate, num_frames, crepe_model)
    path = _cache_folder() / key[:2] / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                d = FrameDescriptors.from_arrays({k: z[k] for k in z.files})
            if len(d) == num_frames:
                return d
        except (OSError, ValueError, KeyError):
            pass
    d = desc.frame_descriptors(audio, sample_rate, frame_rate, num_frames, crepe_model)
    try:
        from workbench.core.fileio import atomic_write_bytes

        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **d.to_arrays())  # type: ignore[arg-type]
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only cache only costs recomputing next time
    return d


# -- collecting ---------------------------------------------------------------------------------------

def shifted_labels(labels: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A copy of synthetic-corpus labels with every note and chord time moved by `seconds`."""
    out = dict(labels)
    out["notes"] = [{**n, "onset": float(n["onset"]) + seconds, "offset": float(n["offset"]) + seconds}
                    for n in labels.get("notes", [])]
    out["chords"] = [{**c, "start": float(c["start"]) + seconds, "end": float(c["end"]) + seconds}
                     for c in labels.get("chords", [])]
    return out


def clip_truth(labels: dict[str, Any], frame_rate: float, num_frames: int) -> dict[str, np.ndarray]:
    """`synth.frame_labels` on frames centred at t / frame_rate (see the module docstring)."""
    from workbench.core.data.synth import frame_labels

    return frame_labels(shifted_labels(labels, 0.5 / float(frame_rate)), frame_rate, num_frames)


def _audio_of(item: Any, sample_rate: int, name: str) -> np.ndarray:
    from workbench.core.audio import AudioClip

    if isinstance(item, AudioClip):
        item = item.to(sample_rate, 1).samples[:, 0]
    a = np.asarray(item, np.float32)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise DataError(f"{name}: expected mono audio [N], got shape {tuple(a.shape)}")
    if a.size == 0:
        raise DataError(f"{name}: empty audio")
    return a


def collect_frames(
    codec: Any,
    sae: Any,
    clips: Sequence[Clip],
    progress: Progress | None = None,
    *,
    crepe_model: str = "tiny",
    with_descriptors: bool = True,
    keep_features: bool = True,
    cache: bool = True,
) -> CorpusFrames:
    """Encode, featurize and describe every clip (audio at the codec's sample rate, or AudioClips).

    `sae` may be None (no features). `progress(i, n, name)` is called after each clip.
    ``with_descriptors=False`` skips CREPE (descriptors are then NaN/0); ``cache=False`` bypasses the
    descriptor cache.
    """
    from workbench.core.audio import AudioClip

    sr = int(codec.sample_rate)
    fr = float(codec.frame_rate)
    n = len(clips)
    if n == 0:
        raise DataError("no clips to analyse")
    ids, fidx, lat, feats, descs, paths = [], [], [], [], [], []
    truths: list[dict[str, np.ndarray] | None] = []
    d_sae = int(sae.d_sae) if (sae is not None and keep_features) else 0
    for i, (name, audio, labels) in enumerate(clips):
        a = _audio_of(audio, sr, str(name))
        z = codec.encode(AudioClip(a[:, None], sr))
        t = int(z.shape[0])
        f = sae.encode_np(z) if d_sae else np.zeros((t, 0), np.float32)
        if with_descriptors:
            d = cached_frame_descriptors(a, sr, fr, t, crepe_model, cache)
        else:
            d = FrameDescriptors(np.full(t, np.nan, np.float32), *(np.zeros(t, np.float32) for _ in range(3)))
        ids.append(np.full(t, i, np.int64))
        fidx.append(np.arange(t, dtype=np.int64))
        lat.append(z.astype(np.float32, copy=False))
        feats.append(f.astype(np.float32, copy=False))
        descs.append(d)
        truths.append(clip_truth(labels, fr, t) if labels else None)
        paths.append(str(name))
        if progress is not None:
            progress(i + 1, n, str(name))
    truth: dict[str, np.ndarray] = {}
    ref = next((x for x in truths if x is not None), None)
    if ref is not None:
        for k, v in ref.items():
            fill = False if v.dtype == bool else -1
            truth[k] = np.concatenate([
                x[k] if x is not None else np.full((len(ii),) + v.shape[1:], fill, v.dtype)
                for x, ii in zip(truths, ids, strict=True)
            ])
        truth["has_labels"] = np.concatenate([np.full(len(ii), x is not None) for x, ii in zip(truths, ids, strict=True)])
    return CorpusFrames(
        clip_ids=np.concatenate(ids), frame_index=np.concatenate(fidx), latents=np.concatenate(lat),
        features=np.concatenate(feats), descriptors=FrameDescriptors.concatenate(descs), truth=truth,
        clip_paths=paths, frame_rate=fr, sample_rate=sr,
    )


def split_by_clip(frames: CorpusFrames, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_mask, test_mask) over frames; whole clips go to one side (at least one clip each when
    there are two or more clips)."""
    if not (0.0 < test_fraction < 1.0):
        raise UsageError(f"test fraction must be between 0 and 1, got {test_fraction}")
    clips = np.unique(frames.clip_ids)
    if clips.size < 2:
        raise DataError("need at least two clips to hold some out for testing")
    rng = np.random.default_rng(seed)
    order = rng.permutation(clips)
    n_test = int(np.clip(round(test_fraction * clips.size), 1, clips.size - 1))
    test_clips = order[:n_test]
    test = np.isin(frames.clip_ids, test_clips)
    return ~test, test
