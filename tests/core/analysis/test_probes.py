"""Probes: a planted answer is found, scores are right, files round-trip and are checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.core.analysis import descriptors as d
from workbench.core.analysis.corpus import CorpusFrames
from workbench.core.analysis.probes import (
    PROBES_JSON,
    format_table,
    has_probes,
    load_probes,
    markdown_table,
    probe_metrics,
    random_sae_like,
    save_probes,
    train_probe,
)
from workbench.core.errors import ModelFileError
from workbench.core.sae.io import load_sae
from workbench.core.sae_bridge import make_random_sae

PITCHES = [60, 64, 67]  # classes 36, 40, 43; plus unvoiced (66)
LEVELS = [-55.0, -40.0, -25.0]  # loudness classes 5, 10, 15
CENTROIDS = [200.0, 800.0, 3200.0]


def planted_frames(n_clips: int = 24, per_clip: int = 60, seed: int = 0) -> CorpusFrames:
    """Each property's class is carried by one feature per class (random positive size), plus noise
    features; latents are pure noise (so the raw-latent baseline has nothing to read)."""
    rng = np.random.default_rng(seed)
    n = n_clips * per_clip
    p_idx = rng.integers(0, 4, n)  # 3 = unvoiced
    l_idx = rng.integers(0, 3, n)
    t_idx = rng.integers(0, 3, n)
    pitch = np.where(p_idx < 3, d.midi_to_hz(np.array(PITCHES + [0])[p_idx]), np.nan).astype(np.float32)
    desc = d.FrameDescriptors(pitch, np.where(p_idx < 3, 0.9, 0.1).astype(np.float32),
                              np.array(LEVELS, np.float32)[l_idx], np.array(CENTROIDS, np.float32)[t_idx])
    feats = np.zeros((n, 16), np.float32)
    feats[np.arange(n), p_idx] = rng.uniform(0.5, 2.0, n)
    feats[np.arange(n), 4 + l_idx] = rng.uniform(0.5, 2.0, n)
    feats[np.arange(n), 7 + t_idx] = rng.uniform(0.5, 2.0, n)
    noise = rng.random((n, 6)) < 0.3
    feats[:, 10:] = noise * rng.uniform(0.5, 2.0, (n, 6))
    latents = rng.normal(size=(n, 8)).astype(np.float32)
    clip_ids = np.repeat(np.arange(n_clips), per_clip)
    return CorpusFrames(clip_ids, np.tile(np.arange(per_clip), n_clips), latents, feats, desc, {},
                        [f"clip{i}" for i in range(n_clips)], 75.0, 24000)


def test_probe_metrics_by_hand() -> None:
    m = probe_metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 4)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["frames"] == 5


def test_train_probe_planted_one_feature_per_class() -> None:
    rng = np.random.default_rng(1)
    n, c = 2000, 5
    y = rng.integers(0, c, n)
    x = rng.uniform(0, 0.2, (n, 12)).astype(np.float32)
    x[np.arange(n), 2 * y] += rng.uniform(1.0, 3.0, n).astype(np.float32)
    x[:, 11] = 0.0  # a dead feature gets weight 0
    probe = train_probe(x[:1500], y[:1500], c)
    assert (probe.predict(x[1500:]) == y[1500:]).mean() > 0.99
    assert probe.weight.shape == (c, 12) and np.all(probe.weight[:, 11] == 0)
    for k in range(c):
        assert np.argmax(probe.weight[k]) == 2 * k
    p = probe.predict_proba(x[:10])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    # The folded probe on raw inputs equals the standardised one.
    xs = (x[:10] - probe.mean) / probe.scale
    w_std = probe.weight * probe.scale
    b_std = probe.bias + probe.weight @ probe.mean
    np.testing.assert_allclose(probe.logits(x[:10]), xs @ w_std.T + b_std, rtol=1e-4, atol=1e-4)


def test_fit_probes_planted_with_baselines(tmp_path: Path) -> None:
    from workbench.core.analysis.probes import fit_probes

    frames = planted_frames()
    sae = load_sae(make_random_sae(tmp_path / "sae", 8, 16, k=3))
    steps: list[str] = []
    ps = fit_probes(frames, sae, test_fraction=0.25, seed=0, step=steps.append)
    assert len(steps) == 9
    for prop in d.PROPERTIES:
        m = ps.metrics[prop]
        assert m["sae"]["accuracy"] > 0.98, (prop, m)
        assert m["sae"]["balanced_accuracy"] > 0.98 and m["sae"]["macro_f1"] > 0.98
        # Noise latents, and a random SAE of noise latents: near the majority class.
        assert m["latents"]["accuracy"] < m["latents"]["chance"] + 0.15, (prop, m)
        assert m["random_sae"]["accuracy"] < m["random_sae"]["chance"] + 0.15, (prop, m)
    # Attribution: the planted feature is the top feature of its class.
    cls = {"pitch": [p - 24 for p in PITCHES] + [66], "loudness": [5, 10, 15], "timbre": [3, 10, 16]}
    offset = {"pitch": 0, "loudness": 4, "timbre": 7}
    assert d.loudness_classes(np.array(LEVELS)).tolist() == cls["loudness"]
    assert d.timbre_classes(np.array(CENTROIDS)).tolist() == cls["timbre"]
    for prop, classes in cls.items():
        for i, k in enumerate(classes):
            assert int(np.argmax(ps.attributions[prop][k])) == offset[prop] + i, (prop, k)
    c = ps.meta["corpus"]
    assert c["train_clips"] + c["test_clips"] == 24 and c["test_clips"] == 6
    assert ps.feature_norm > 0
    assert "SAE features" in format_table(ps) and "| pitch | 67 |" in markdown_table(ps)


def test_save_load_round_trip(tmp_path: Path) -> None:
    from workbench.core.analysis.probes import fit_probes

    folder = make_random_sae(tmp_path / "sae", 8, 16, k=3)
    assert not has_probes(folder)
    with pytest.raises(ModelFileError, match="no probes"):
        load_probes(folder)
    ps = fit_probes(planted_frames(n_clips=8, per_clip=40), None, baselines=False, max_iter=50)
    save_probes(ps, folder, extra={"codec": "default"})
    assert has_probes(folder)
    back = load_probes(folder, d_sae=16)
    for prop, p in ps.probes.items():
        q = back.probes[prop]
        for name in ("weight", "bias", "mean", "scale"):
            np.testing.assert_array_equal(getattr(p, name), getattr(q, name))
        np.testing.assert_array_equal(ps.attributions[prop], back.attributions[prop])
        assert back.metrics[prop]["sae"]["accuracy"] == pytest.approx(ps.metrics[prop]["sae"]["accuracy"])
    assert back.feature_norm == pytest.approx(ps.feature_norm)
    doc = json.loads((folder / PROBES_JSON).read_text())
    assert doc["codec"] == "default" and doc["properties"]["pitch"]["num_classes"] == 67
    assert len(doc["properties"]["pitch"]["class_names"]) == 67
    assert doc["properties"]["pitch"]["top_features"][36][0][0] == 0
    with pytest.raises(ModelFileError, match="expect 16 features"):
        load_probes(folder, d_sae=32)
    # A safetensors file from another run does not pass for this JSON.
    (folder / "probes.safetensors").write_bytes((folder / "probes.safetensors").read_bytes() + b" ")
    with pytest.raises(ModelFileError, match="does not match"):
        load_probes(folder)
    (folder / PROBES_JSON).write_text("{nope")
    with pytest.raises(ModelFileError):
        load_probes(folder)


def test_random_sae_like(tmp_path: Path) -> None:
    sae = load_sae(make_random_sae(tmp_path / "sae", 8, 16, k=3))
    z = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32) + 3.0
    rnd = random_sae_like(sae, z, seed=5)
    assert (rnd.d_in, rnd.d_sae, rnd.k, rnd.architecture) == (8, 16, 3, "topk")
    np.testing.assert_allclose(rnd.b_dec.detach().numpy(), z.mean(axis=0), rtol=1e-5)
    assert not np.allclose(rnd.W_dec.detach().numpy(), sae.W_dec.detach().numpy())
    assert ((rnd.encode_np(z) > 0).sum(axis=1) <= 3).all()


def test_fit_probes_scores_subsets_of_the_held_out_frames(tmp_path: Path) -> None:
    from workbench.core.analysis.corpus import split_by_clip
    from workbench.core.analysis.probes import fit_probes, probe_metrics

    frames = planted_frames()
    sae = load_sae(make_random_sae(tmp_path / "sae", 8, 16, k=3))
    odd = frames.clip_ids % 2 == 1
    ps = fit_probes(frames, sae, test_fraction=0.25, seed=0, properties=("pitch",), subsets={"odd clips": odd})
    _, test = split_by_clip(frames, 0.25, 0)
    sel = test & odd
    assert 0 < sel.sum() < test.sum()
    y = frames.classes()["pitch"]
    for name, x in (("sae", frames.features), ("latents", frames.latents)):
        got = ps.metrics["pitch"][name]["subsets"]["odd clips"]
        pred = ps.probe("pitch").predict(x[sel]) if name == "sae" else None
        if pred is not None:
            assert got == probe_metrics(y[sel], pred, d.PROPERTIES["pitch"])
        assert got["frames"] == int(sel.sum())
    # Both tables list the subset's scores under the property.
    acc = f"{ps.metrics['pitch']['sae']['subsets']['odd clips']['accuracy']:.3f}"
    lines = format_table(ps).splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith("odd clips ("))
    assert f"({int(sel.sum())} frames)" in lines[at] and lines[at + 1].split()[0] == acc
    assert any(ln.startswith(f"| pitch, odd clips | 67 | {acc} / ") for ln in markdown_table(ps).splitlines())


def test_kind_subsets_mark_the_frames_of_monophonic_clips() -> None:
    from workbench.core.analysis.corpus import ClipList
    from workbench.core.analysis.probes import MONOPHONIC_SUBSET, kind_subsets

    frames = planted_frames(n_clips=4, per_clip=3)
    kinds = ["note", "chord", None, "melody"]
    clips = ClipList([(f"clip{i}.flac", {"kind": k} if k else None) for i, k in enumerate(kinds)], 24000)
    got = kind_subsets(frames, clips)
    assert list(got) == [MONOPHONIC_SUBSET] and MONOPHONIC_SUBSET == "monophonic (note+melody+scale)"
    assert got[MONOPHONIC_SUBSET].tolist() == [True] * 3 + [False] * 6 + [True] * 3
    # Clips without corpus labels (a user's folder), or with none of those kinds: no subset.
    assert kind_subsets(frames, ClipList([(f"c{i}.wav", None) for i in range(4)], 24000)) == {}
    assert kind_subsets(frames, ClipList([(f"c{i}.wav", {"kind": "chord"}) for i in range(4)], 24000)) == {}
