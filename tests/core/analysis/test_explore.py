"""analysis/explore.py: which clips an SAE folder names, the bounded examples corpus (sparse features read
back exactly, clip-by-clip builds that survive a cancel), one feature's examples and sound, property
tracks on the probes' scales, and probes.json rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.core.analysis import descriptors as desc
from workbench.core.analysis import explore as ex
from workbench.core.audio import AudioClip, save_audio
from workbench.core.jobs import Cancelled

SR, FR, D = 8000, 50.0, 4


class FakeCodec:
    """Latents = per-frame RMS of four bands: deterministic, cheap, and it sees the audio."""

    id, sample_rate, frame_rate, channels, latent_dim = "fake", SR, FR, 1, D
    hop_length = int(SR / FR)

    def prepare(self, clip: AudioClip) -> AudioClip:
        return clip.to(SR, 1)

    def encode(self, clip: AudioClip) -> np.ndarray:
        x = clip.samples[:, 0]
        t = int(np.ceil(len(x) / self.hop_length))
        x = np.pad(x, (0, t * self.hop_length - len(x))).reshape(t, self.hop_length)
        spec = np.abs(np.fft.rfft(x, axis=1))
        bands = np.array_split(spec, D, axis=1)
        return np.stack([b.mean(axis=1) for b in bands], axis=1).astype(np.float32)


class FakeSAE:
    """Feature j = relu(z_j - 0.01) for the 4 bands, plus features that never fire."""

    d_sae = 6

    def encode(self, z: np.ndarray) -> np.ndarray:
        f = np.zeros((z.shape[0], self.d_sae), np.float32)
        f[:, :D] = np.maximum(z - 0.01, 0.0)
        return f


class CancelAfter:
    def __init__(self, n: int) -> None:
        self.n = n

    def check(self) -> None:
        self.n -= 1
        if self.n < 0:
            raise Cancelled()

    def progress(self, fraction: float, message: str = "") -> None:
        self.check()


def sine(freq: float, seconds: float, amp: float = 0.5) -> AudioClip:
    t = np.arange(int(seconds * SR)) / SR
    return AudioClip((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, None], SR)


@pytest.fixture()
def clips(tmp_path: Path) -> list[str]:
    (tmp_path / "clips").mkdir()
    return [str(save_audio(tmp_path / "clips" / f"c{i}.wav", sine(f, 1.0))) for i, f in enumerate((200, 900, 2500))]


def test_recorded_inputs_prefer_the_exact_clips_of_labels_json(tmp_path: Path, clips: list[str]) -> None:
    sae = tmp_path / "sae"
    sae.mkdir()
    assert ex.recorded_inputs(sae) == ([], "")
    assert ex.recorded_inputs(None) == ([], "")
    (sae / "workbench.json").write_text(json.dumps({"provenance": {"inputs": [str(tmp_path / "clips")]}}))
    assert ex.recorded_inputs(sae) == ([str(tmp_path / "clips")], "from the training inputs")
    (sae / "probes.json").write_text(json.dumps({"inputs": [clips[0]]}))
    assert ex.recorded_inputs(sae) == ([clips[0]], "from the inputs of probes.json")
    (sae / "labels.json").write_text(json.dumps({"inputs": ["/nowhere"], "clip_paths": [clips[2], "/gone.wav"]}))
    assert ex.recorded_inputs(sae) == ([clips[2]], "named in labels.json")  # missing files are dropped
    (sae / "labels.json").write_text("{broken")
    assert ex.recorded_inputs(sae)[1] == "from the inputs of probes.json"
    # Paths recorded relative to where the CLI ran (here: the SAE folder's parent) are found.
    (sae / "probes.json").write_text(json.dumps({"inputs": ["clips/c1.wav"]}))
    assert ex.recorded_inputs(sae) == ([str(tmp_path / "clips" / "c1.wav")], "from the inputs of probes.json")


def test_choose_clips_is_bounded_and_seeded(tmp_path: Path, clips: list[str]) -> None:
    all_ = ex.choose_clips([str(tmp_path / "clips")], SR)
    assert sorted(all_) == sorted(clips)
    two = ex.choose_clips([str(tmp_path / "clips")], SR, max_clips=2)
    assert len(two) == 2 and two == ex.choose_clips([str(tmp_path / "clips")], SR, max_clips=2)


def test_a_synthetic_corpus_missing_here_is_rendered_again_from_its_recipe(tmp_path: Path) -> None:
    from workbench.core.data.synth import corpus_recipe, generate_corpus

    full = generate_corpus(tmp_path / "corpus", 6, seed=2, kinds=["note", "scale"], progress=False)
    recipe = corpus_recipe(full)
    sae = tmp_path / "sae"
    sae.mkdir()
    assert ex.recorded_recipes(sae) == [] and ex.recorded_recipes(None) == []
    (sae / "probes.json").write_text(json.dumps({"synth_recipes": [recipe, "junk"]}))
    assert ex.recorded_recipes(sae) == [recipe]
    (sae / "labels.json").write_text(json.dumps({"inputs": ["gone/corpus"], "synth_recipes": [recipe]}))
    assert ex.recorded_inputs(sae) == ([], "") and ex.recorded_recipes(sae) == [recipe]
    # The same clips choose_clips takes from the corpus on disk, rendered into the cache.
    assert recipe is not None
    want = ex.choose_clips([str(full)], SR, max_clips=4)
    done: list[tuple[int, int]] = []
    got = ex.render_examples(recipe, max_clips=4, cache=tmp_path / "cache", progress=lambda i, n: done.append((i, n)))
    assert [Path(p).name for p in got] == [Path(p).name for p in want] and done == [(i, 4) for i in range(4)]
    for a, b in zip(got, want, strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    assert ex.choose_indices(3, 4) == [0, 1, 2] and ex.choose_indices(10, 4) == ex.choose_indices(10, 4)


def test_corpus_is_built_clip_by_clip_and_survives_a_cancel(clips: list[str]) -> None:
    codec, sae = FakeCodec(), FakeSAE()
    c = ex.start_corpus(clips, "named in labels.json", FR, SR)
    assert c.source == "3 clips named in labels.json" and not c.complete
    with pytest.raises(Cancelled):
        ex.fill_corpus(c, codec, sae, CancelAfter(4))  # progress + 2 checks for the first clip, then stop
    assert c.num_clips == 1 and len(c.pending) == 2
    ex.fill_corpus(c, codec, sae)
    assert c.complete and c.num_clips == 3 and c.names == clips
    dense = np.concatenate([sae.encode(z) for z in c.latents])
    for j in range(sae.d_sae):
        assert np.array_equal(c.column(j), dense[:, j])
    ids, fidx = c.index()
    assert ids.shape == fidx.shape == (c.num_frames,) and ids[-1] == 2 and fidx[0] == 0
    assert np.allclose(c.mean_z(), np.concatenate(c.latents).mean(axis=0), atol=1e-6)
    with pytest.raises(Exception, match="out of range"):
        c.column(6)


def test_unreadable_clips_are_skipped_and_none_readable_is_an_error(tmp_path: Path, clips: list[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFFjunk")
    c = ex.start_corpus([str(bad), clips[1]], "x", FR, SR)
    ex.fill_corpus(c, FakeCodec(), FakeSAE())
    assert c.names == [clips[1]] and c.failed == [str(bad)]
    with pytest.raises(Exception, match="could be read"):
        ex.fill_corpus(ex.start_corpus([str(bad)], "x", FR, SR), FakeCodec(), FakeSAE())


def test_feature_examples_find_the_clip_where_the_feature_fires(clips: list[str]) -> None:
    codec, sae = FakeCodec(), FakeSAE()
    c = ex.fill_corpus(ex.start_corpus(clips, "x", FR, SR), codec, sae)
    # Band 2 (2-3 kHz, feature 2) fires only in the 2500 Hz clip (clip 2).
    w = np.zeros(D, np.float32)
    w[2] = 1.0
    res = ex.feature_examples(c, 2, w, strength=2.0, top_k=3)
    assert res.feature == 2 and res.clips == 3 and res.frames == c.num_frames
    assert res.examples and {e.clip for e in res.examples} == {2} and res.examples[0].name == clips[2]
    assert len(res.examples) == 2  # at most two moments per clip (stats.feature_stats)
    e = res.examples[0]
    assert e.activation == pytest.approx(res.stats.max_activation)
    assert e.thumbnail.dtype == np.uint8 and e.thumbnail.shape == (56, 120, 3) and e.thumbnail.max() > 0
    assert e.z.shape[1] == D and 2 <= e.z.shape[0] <= int(0.8 * FR) + 2 and 0 <= e.offset <= 0.31
    assert res.sound_z.shape == (int(FR * ex.SOUND_SECONDS), D)
    assert np.allclose(res.sound_z[0] - res.reference_z[0], 2.0 * w)
    assert np.allclose(res.reference_z[0], c.mean_z())
    # Typical moments: one near each quantile of the firing activations, none of them a top moment.
    x = c.column(2)
    firing = x[x > 0]
    assert [q for q, _ in res.typical] == list(ex.TYPICAL_QUANTILES)
    top = {(m.clip, round(m.time, 4)) for m in res.examples}
    for q, m in res.typical:
        assert m.clip == 2 and (m.clip, round(m.time, 4)) not in top and m.z.shape[1] == D
        target = np.quantile(firing, q)
        assert abs(m.activation - target) == pytest.approx(np.abs(firing - target).min(), abs=1e-6)
    assert ex.feature_examples(c, 2, w, quantiles=()).typical == []
    # A clip deleted since the corpus was built: no picture, still playable.
    Path(clips[2]).unlink()
    gone = ex.feature_examples(c, 2, w)
    assert gone.examples and gone.examples[0].thumbnail.max() == 0 and gone.examples[0].z.shape == e.z.shape
    # A feature that never fires: no moments, the sound still exists (strength falls back to 1).
    dead = ex.feature_examples(c, 5, w)
    assert dead.stats.fires == 0 and dead.examples == [] and dead.typical == [] and dead.strength == 1.0


def test_the_current_clip_as_a_corpus_keeps_its_audio_in_memory() -> None:
    codec, sae = FakeCodec(), FakeSAE()
    clip = sine(700, 1.0)
    z = codec.encode(clip)
    c = ex.corpus_from_clip(z, sae.encode(z), clip.samples, FR, SR, "demo")
    assert c.source == "the current clip" and c.complete and c.names == ["demo"]
    assert np.array_equal(c.clip_audio(0), clip.samples[:, 0])
    res = ex.feature_examples(c, 0, np.ones(D, np.float32))
    assert res.examples and all(e.clip == 0 for e in res.examples)


def test_latent_window_is_cut_at_the_edges() -> None:
    z = np.arange(40, dtype=np.float32).reshape(20, 2)
    w, off = ex.latent_window(z, 0, 10.0, before=0.3, after=0.5)
    assert w.shape == (6, 2) and off == 0.0
    w, off = ex.latent_window(z, 10, 10.0, before=0.3, after=0.5)
    assert w[0, 0] == 14 and off == pytest.approx(0.3)
    w, _ = ex.latent_window(z, 19, 10.0, before=0.0, after=0.0)
    assert w.shape[0] == 2


def test_class_values_are_on_the_descriptor_scales() -> None:
    v = ex.class_values("pitch", np.array([0, 45, desc.PITCH_UNVOICED]))
    assert v[0] == 24 and v[1] == 69 and np.isnan(v[2])
    loud = ex.class_values("loudness", np.array([0, 19]))
    assert loud[0] == pytest.approx(-68.5) and loud[1] == pytest.approx(-11.5)
    assert desc.loudness_classes(loud).tolist() == [0, 19]
    tim = ex.class_values("timbre", np.arange(20))
    assert desc.timbre_classes(tim).tolist() == list(range(20))
    with pytest.raises(Exception, match="unknown property"):
        ex.class_values("tempo", np.zeros(1, np.int64))


def test_measured_and_probe_tracks() -> None:
    codec, sae = FakeCodec(), FakeSAE()
    clip = AudioClip(np.concatenate([sine(440, 0.5, 0.5).samples, sine(440, 0.5, 0.05).samples]), SR)
    n = int(np.ceil(clip.num_samples / codec.hop_length))
    loud = ex.property_track("loudness", "measured", clip, codec, n)
    assert loud.shape == (n,)
    assert np.nanmean(loud[5:20]) - np.nanmean(loud[30:45]) == pytest.approx(20.0, abs=1.0)
    pitch = ex.property_track("pitch", "measured", clip, codec, n)
    assert np.nanmedian(pitch[5:20]) == pytest.approx(69.0, abs=0.3)

    class Probe:
        def predict(self, f: np.ndarray) -> np.ndarray:
            return np.where(f[:, 1] > 0, 10, 2)

    class Probes:
        def probe(self, prop: str) -> Probe:
            return Probe()

    # Measured in short chunks (cancellable) = measured in one pass.
    for prop in ("loudness", "timbre", "pitch"):
        whole = ex.property_track(prop, "measured", clip, codec, n)
        parts = ex.property_track(prop, "measured", clip, codec, n, chunk_seconds=0.3)
        assert np.array_equal(np.isnan(whole), np.isnan(parts))
        assert np.allclose(whole, parts, equal_nan=True, atol=1e-3, rtol=0)
    with pytest.raises(Cancelled):
        ex.property_track("loudness", "measured", clip, codec, n, job=CancelAfter(2), chunk_seconds=0.2)

    cls = ex.property_track("loudness", "probe", clip, codec, n + 3, sae, Probes())
    assert cls.shape == (n + 3,) and np.isnan(cls[-3:]).all()
    assert set(np.unique(cls[:n])) <= set(ex.class_values("loudness", np.array([2, 10])))
    with pytest.raises(Exception, match="needs an SAE"):
        ex.property_track("pitch", "probe", clip, codec, n)
    with pytest.raises(Exception, match="source"):
        ex.property_track("pitch", "guess", clip, codec, n)


def test_probe_metrics_rows_follow_probes_json() -> None:
    doc = {"properties": {
        "pitch": {"metrics": {"random_sae": {"accuracy": 0.1, "balanced_accuracy": 0.05, "macro_f1": 0.02},
                              "sae": {"accuracy": 0.8, "balanced_accuracy": 0.6, "macro_f1": 0.5, "chance": 0.3,
                                      "frames": 120}}},
        "timbre": {"metrics": "broken"},
        "loudness": {"metrics": {"latents": {"accuracy": "n/a"}}}}}
    rows = ex.probe_metrics_rows(doc)
    assert [(r["property"], r["input"]) for r in rows] == [("pitch", "sae"), ("pitch", "random_sae"),
                                                           ("loudness", "latents")]
    assert rows[0]["accuracy"] == 0.8 and rows[0]["frames"] == 120 and rows[0]["chance"] == 0.3
    assert np.isnan(rows[2]["accuracy"]) and rows[2]["frames"] == 0
    assert ex.probe_metrics_rows({}) == []


def test_probe_metrics_rows_list_subset_scores_after_all_properties() -> None:
    mono = "monophonic (note+melody)"
    doc = {"properties": {
        "pitch": {"metrics": {
            "sae": {"accuracy": 0.6, "balanced_accuracy": 0.5, "macro_f1": 0.4, "frames": 100,
                    "subsets": {mono: {"accuracy": 0.86, "balanced_accuracy": 0.8, "macro_f1": 0.6, "frames": 40},
                                "broken": "x"}},
            "latents": {"accuracy": 0.7, "balanced_accuracy": 0.5, "macro_f1": 0.5, "frames": 100,
                        "subsets": {mono: {"accuracy": 0.87, "balanced_accuracy": 0.8, "macro_f1": 0.7, "frames": 40}}}}},
        "loudness": {"metrics": {"sae": {"accuracy": 0.64}}}}}
    rows = ex.probe_metrics_rows(doc)
    assert [(r["property"], r["subset"], r["input"]) for r in rows] == [
        ("pitch", "", "sae"), ("pitch", "", "latents"), ("loudness", "", "sae"), ("pitch", mono, "sae"),
        ("pitch", mono, "latents")]
    assert rows[3]["accuracy"] == 0.86 and rows[3]["frames"] == 40 and rows[4]["macro_f1"] == 0.7
