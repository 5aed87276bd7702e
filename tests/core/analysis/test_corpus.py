"""Corpus frames: shapes, clip bookkeeping, ground truth on the codec's frame centres, clip-disjoint split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from analysis_helpers import sine_burst

from workbench.core.analysis.corpus import clip_truth, collect_frames, load_clips, split_by_clip
from workbench.core.codecs.default import DefaultCodec
from workbench.core.errors import DataError, UsageError
from workbench.core.sae.io import load_sae
from workbench.core.sae_bridge import make_random_sae

NOTE = {"onset": 0.4, "offset": 0.8, "pitch": 57, "velocity": 100, "program": 0, "family": "piano", "is_drum": False}


def test_truth_is_on_frame_centres() -> None:
    """Frame t is centred at t / 75 s: the note [0.4, 0.8) s is active in frames 30..59."""
    tr = clip_truth({"notes": [NOTE], "chords": [{"start": 0.4, "end": 0.8, "root": 9, "quality": "maj",
                                                   "inversion": 0}]}, 75.0, 80)
    active = np.flatnonzero(tr["pitch"] == 57)
    assert active[0] == 30 and active[-1] == 59 and len(active) == 30
    assert np.flatnonzero(tr["onset"]).tolist() == [30]
    assert (tr["chord_root"][30:60] == 9).all() and tr["chord_root"][29] == -1 and tr["chord_root"][60] == -1


def test_collect_frames(tiny_codec: DefaultCodec, tmp_path: Path) -> None:
    sae = load_sae(make_random_sae(tmp_path / "sae", tiny_codec.latent_dim, 24, k=3))
    sr = tiny_codec.sample_rate
    clips = [("a", sine_burst(220.0, 0.1, 0.4, 0.8, 1.0, sr), {"notes": [NOTE]}),
             ("b", sine_burst(440.0, 0.1, 0.0, 0.5, 0.5, sr), None),
             ("c", sine_burst(330.0, 0.1, 0.1, 0.3, 0.4, sr)[:, None], None)]
    seen: list[tuple[int, int, str]] = []
    fr = collect_frames(tiny_codec, sae, clips, progress=lambda i, n, name: seen.append((i, n, name)),
                        with_descriptors=False)
    assert seen == [(1, 3, "a"), (2, 3, "b"), (3, 3, "c")]
    counts = [tiny_codec.num_frames(len(c[1])) for c in clips]
    assert len(fr) == sum(counts) and np.bincount(fr.clip_ids).tolist() == counts
    assert fr.frame_index[: counts[0]].tolist() == list(range(counts[0]))
    assert fr.latents.shape == (len(fr), tiny_codec.latent_dim) and fr.features.shape == (len(fr), 24)
    np.testing.assert_allclose(fr.features, sae.encode_np(fr.latents), atol=1e-5)
    assert fr.clip_paths == ["a", "b", "c"] and fr.frame_rate == 75.0
    # Truth where labels exist, filled elsewhere, with a mask.
    has = fr.truth["has_labels"]
    assert has.tolist() == [True] * counts[0] + [False] * (counts[1] + counts[2])
    assert (fr.truth["pitch"][30:60] == 57).all() and (fr.truth["pitch"][~has] == -1).all()
    assert fr.truth["piano_roll"].shape == (len(fr), 128)
    s = fr.clip_slice(1)
    assert (s.start, s.stop) == (counts[0], counts[0] + counts[1])
    sub = fr.subset(fr.clip_ids == 2)
    assert len(sub) == counts[2] and len(sub.descriptors) == counts[2]
    # Without an SAE: latents only.
    fr0 = collect_frames(tiny_codec, None, clips[:1], with_descriptors=False)
    assert fr0.features.shape == (counts[0], 0) and fr0.truth["pitch"].shape == (counts[0],)
    with pytest.raises(DataError):
        collect_frames(tiny_codec, sae, [], with_descriptors=False)
    with pytest.raises(DataError):
        collect_frames(tiny_codec, sae, [("x", np.zeros(0, np.float32), None)], with_descriptors=False)


def test_collect_frames_with_descriptors(tiny_codec: DefaultCodec) -> None:
    x = sine_burst(220.0, 0.1, 0.2, 0.6, 0.8, tiny_codec.sample_rate)
    fr = collect_frames(tiny_codec, None, [("a", x, None)])
    cls = fr.classes()
    assert (cls["pitch"][17:43] == 57 - 24).all() and (cls["pitch"][:12] == 66).all()


def test_split_by_clip_is_disjoint(tiny_codec: DefaultCodec) -> None:
    sr = tiny_codec.sample_rate
    clips = [(f"c{i}", sine_burst(200.0 + 10 * i, 0.1, 0.0, 0.2, 0.2 + 0.02 * i, sr), None) for i in range(10)]
    fr = collect_frames(tiny_codec, None, clips, with_descriptors=False)
    train, test = split_by_clip(fr, 0.3, seed=1)
    assert not (train & test).any() and (train | test).all()
    tr_clips, te_clips = set(fr.clip_ids[train]), set(fr.clip_ids[test])
    assert not tr_clips & te_clips and len(te_clips) == 3
    again = split_by_clip(fr, 0.3, seed=1)
    assert (again[1] == test).all()
    with pytest.raises(UsageError):
        split_by_clip(fr, 1.0)
    with pytest.raises(DataError):
        split_by_clip(fr.subset(fr.clip_ids == 0), 0.5)


def test_load_clips_recognises_a_synthetic_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "audio").mkdir(parents=True)
    recs = []
    for i in range(2):
        sf.write(str(corpus / "audio" / f"note-{i}.wav"), sine_burst(220.0, 0.1, 0.0, 0.3, 0.3, 24000), 24000)
        recs.append({"id": f"note-{i}", "audio": f"audio/note-{i}.wav", "notes": [NOTE]})
    (corpus / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    loose = tmp_path / "loose"
    loose.mkdir()
    sf.write(str(loose / "x.wav"), sine_burst(220.0, 0.1, 0.0, 0.3, 0.3, 48000), 48000)
    clips = load_clips([corpus, loose], sample_rate=24000)
    assert len(clips) == 3
    path, audio, labels = clips[0]
    assert path.endswith("note-0.wav") and labels is not None and labels["notes"][0]["pitch"] == 57
    assert audio.ndim == 1 and len(audio) == 7200
    p3, a3, l3 = clips[2]
    assert p3.endswith("x.wav") and l3 is None and len(a3) == 7200  # resampled to 24 kHz
    assert len(load_clips([corpus], max_clips=1)) == 1
    with pytest.raises(DataError):
        load_clips([tmp_path / "nope"])
