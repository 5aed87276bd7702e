"""Probe edits: parsing, application through the probes in the SAE folder, the CLI end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from analysis_helpers import sine_burst

import workbench.core.steering as steering
from workbench.cli import main
from workbench.core.analysis import descriptors as d
from workbench.core.analysis.corpus import collect_frames
from workbench.core.analysis.probes import fit_probes, load_probes, save_probes
from workbench.core.audio import AudioClip
from workbench.core.codecs.default import DefaultCodec
from workbench.core.errors import ModelFileError, UsageError
from workbench.core.sae.io import load_sae
from workbench.core.sae_bridge import load_sae as bridge_load_sae
from workbench.core.sae_bridge import make_random_sae
from workbench.core.steering import Edit, ProbeEdit, SteeringContext, apply_edits, edited_features, parse_edit


@pytest.mark.parametrize(("spec", "prop", "target", "relative", "alpha", "t0", "t1"), [
    ("probe:pitch=+2:1.5", "pitch", 2, True, 1.5, None, None),
    ("probe:loudness=+3", "loudness", 3, True, 1.0, None, None),
    ("probe:timbre=12", "timbre", 12, False, 1.0, None, None),
    ("probe:pitch=-1:0.5@1-2.5", "pitch", -1, True, 0.5, 1.0, 2.5),
    (" probe : Pitch = A4 : 2 ", "pitch", 69 - 24, False, 2.0, None, None),
    ("probe:pitch=C#3", "pitch", 49 - 24, False, 1.0, None, None),
    ("probe:pitch=Bb2", "pitch", 46 - 24, False, 1.0, None, None),
    ("probe:loudness=0:-1e-1@.5-", "loudness", 0, False, -0.1, 0.5, None),
])
def test_parse_probe_edits(spec: str, prop: str, target: int, relative: bool, alpha: float,
                           t0: float | None, t1: float | None) -> None:
    e = parse_edit(spec)
    assert isinstance(e, ProbeEdit) and isinstance(e, Edit)
    assert (e.prop, e.target, e.relative, e.value, e.t0, e.t1, e.mode) == (prop, target, relative, alpha, t0, t1, "probe")
    assert e.feature == -1 - ("pitch", "loudness", "timbre").index(prop)
    assert parse_edit(e.spec()) == e
    assert Edit.from_dict(e.to_dict()) == e
    assert replace(e, value=3.0).value == 3.0 and replace(e, value=3.0).prop == prop


@pytest.mark.parametrize("spec", [
    "probe:color=+1", "probe:pitch=+2:abc", "probe:timbre=25", "probe:timbre=20", "probe:loudness=C4",
    "probe:pitch=+67", "probe:pitch", "probe:pitch=1.5", "probe:pitch=+1@", "probe:pitch=+1@3-2", "probe:pitch=H4",
    "probe:pitch=+1:nan", "probes:pitch=+1",
])
def test_bad_probe_specs(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_edit(spec)


def test_feature_edits_still_parse() -> None:
    assert parse_edit("3:add=0.5@1-2") == Edit(3, "add", 0.5, 1.0, 2.0)
    assert type(Edit.from_dict(Edit(3, "scale", 0.0).to_dict())) is Edit


def _fake_crepe(audio16k: np.ndarray, centres: np.ndarray, model: str = "tiny") -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(len(centres), np.float32), np.zeros(len(centres), np.float32)


def _clips(sr: int) -> list[tuple[str, np.ndarray, None]]:
    """Tones at many levels (so most loudness classes occur), different pitches."""
    out = []
    for i, amp in enumerate(np.geomspace(0.0005, 0.4, 14)):
        out.append((f"c{i}", sine_burst(150.0 * (1 + i % 5), float(amp), 0.05, 0.55, 0.6, sr), None))
    return out


@pytest.fixture()
def probed_sae(tiny_codec: DefaultCodec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A random SAE on the tiny codec with a loudness probe trained on its features."""
    monkeypatch.setattr(d, "crepe_pitch", _fake_crepe)
    folder = make_random_sae(tmp_path / "sae", tiny_codec.latent_dim, 48, k=6)
    sae = load_sae(folder)
    frames = collect_frames(tiny_codec, sae, _clips(tiny_codec.sample_rate))
    ps = fit_probes(frames, sae, test_fraction=0.3, baselines=False, properties=("loudness",))
    save_probes(ps, folder)
    return folder


def test_probe_edit_moves_features_along_the_probe(tiny_codec: DefaultCodec, probed_sae: Path) -> None:
    sae = load_sae(probed_sae)
    probe = load_probes(probed_sae).probe("loudness")
    x = sine_burst(300.0, 0.01, 0.0, 1.0, 1.0, tiny_codec.sample_rate)
    z = tiny_codec.encode(AudioClip(x[:, None], tiny_codec.sample_rate))
    ctx = SteeringContext.from_sae(sae, tiny_codec.frame_rate)
    f = sae.encode_np(z)
    cur = probe.predict(f)
    e = parse_edit("probe:loudness=+3:0.5")
    # In feature space: the step raises the target class's logit against the current one on every frame.
    f2 = edited_features(f, [e], ctx)
    assert (f2 >= 0).all() and not np.allclose(f2, f)
    tgt = np.clip(cur + 3, 0, 19)
    rows = np.arange(len(f))

    def margin(ff: np.ndarray) -> np.ndarray:
        lg = probe.logits(ff)
        return lg[rows, tgt] - lg[rows, cur]

    moved = tgt != cur
    assert (margin(f2)[moved] > margin(f)[moved]).all()
    for space in ("standardised", "raw"):  # every variant of the direction moves the margin up
        for direction in ("class", "contrast"):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(steering, "PROBE_SPACE", space)
                mp.setattr(steering, "PROBE_DIRECTION", direction)
                g = edited_features(f, [e], ctx)
            assert margin(g)[moved].mean() > margin(f)[moved].mean() + 0.1, (space, direction)
    # Through the codec latents and back through the SAE encoder: still toward the target.
    z2 = apply_edits(z, [e], ctx)
    assert z2.shape == z.shape and not np.allclose(z2, z)
    np.testing.assert_allclose(z2, z + (f2 - f) @ ctx.w_dec, rtol=1e-4, atol=1e-5)
    f3 = sae.encode_np(z2)
    assert margin(f3)[moved].mean() > margin(f)[moved].mean()
    assert probe.predict(f3).mean() > cur.mean()
    # Strength 0, or a range outside the clip: nothing changes.
    np.testing.assert_array_equal(apply_edits(z, [parse_edit("probe:loudness=+3:0")], ctx), z)
    np.testing.assert_array_equal(apply_edits(z, [parse_edit("probe:loudness=+3@50-60")], ctx), z)
    # Mixed with a feature edit; the GUI's context (sae_bridge) finds the probes as well.
    ctx_gui = bridge_load_sae(probed_sae).steering_context(tiny_codec.frame_rate)
    both = [parse_edit("0:scale=0"), e]
    np.testing.assert_allclose(apply_edits(z, both, ctx_gui), apply_edits(z, both, ctx), atol=1e-5)
    # A property without a probe in this folder, and an SAE without probes: one-line errors.
    with pytest.raises(UsageError, match="no probe for 'pitch'"):
        apply_edits(z, [parse_edit("probe:pitch=+2")], ctx)


def test_no_probes_is_a_clear_error(tiny_codec: DefaultCodec, tmp_path: Path) -> None:
    sae = load_sae(make_random_sae(tmp_path / "bare", tiny_codec.latent_dim, 48, k=6))
    ctx = SteeringContext.from_sae(sae, tiny_codec.frame_rate)
    z = np.zeros((10, tiny_codec.latent_dim), np.float32)
    with pytest.raises(ModelFileError, match="has no probes; run `workbench probe"):
        apply_edits(z, [parse_edit("probe:loudness=+1")], ctx)


def test_cli_probe_then_steer(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path, tiny_resources: Path) -> None:
    monkeypatch.setenv("WORKBENCH_RESOURCES", str(tiny_resources))
    monkeypatch.setattr(d, "crepe_pitch", _fake_crepe)
    audio = tmp_path / "audio"
    audio.mkdir()
    for name, x, _ in _clips(24000)[:10]:
        sf.write(str(audio / f"{name}.wav"), x, 24000)
    sae = make_random_sae(tmp_path / "sae", 16, 32, k=4)
    wav = audio / "c3.wav"

    rc = main(["steer", str(wav), "--sae", str(sae), "--edit", "probe:loudness=+2", "-o", str(tmp_path / "o.wav")])
    out, err = capsys.readouterr()
    assert rc == 2 and err.count("error: ") == 1 and "no probes" in err and "Traceback" not in err
    assert not (tmp_path / "o.wav").exists()

    rc = main(["probe", str(audio), "--sae", str(sae), "--test-fraction", "0.3", "--threads", "1"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "SAE features" in out and "raw latents" in out and "random SAE" in out and "loudness" in out
    assert (sae / "probes.safetensors").is_file() and (sae / "probes.json").is_file()
    ps = load_probes(sae, d_sae=32)
    assert set(ps.probes) == {"pitch", "loudness", "timbre"}
    assert set(ps.metrics["loudness"]) == {"sae", "latents", "random_sae"}

    rc = main(["steer", str(wav), "--sae", str(sae), "--edit", "probe:loudness=+2:0.5@0.1-0.4",
               "-o", str(tmp_path / "o.wav")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert sf.info(str(tmp_path / "o.wav")).frames == sf.info(str(wav)).frames

    for bad in (["probe", str(audio), "--sae", str(sae), "--test-fraction", "1.5"],
                ["probe", str(tmp_path / "missing"), "--sae", str(sae)],
                ["probe", str(wav), "--sae", str(sae)],
                ["steer", str(wav), "--sae", str(sae), "--edit", "probe:pitch=+200", "-o", str(tmp_path / "p.wav")]):
        rc = main(bad)
        out, err = capsys.readouterr()
        assert rc == 2 and err.count("error: ") == 1 and "Traceback" not in err, (bad, err)


def test_probe_edits_go_both_ways_and_keep_the_loudness_channel(tiny_codec: DefaultCodec, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(d, "crepe_pitch", _fake_crepe)
    folder = make_random_sae(tmp_path / "sae", tiny_codec.latent_dim, 48, k=6)
    sae = load_sae(folder)
    frames = collect_frames(tiny_codec, sae, _clips(tiny_codec.sample_rate))
    save_probes(fit_probes(frames, sae, test_fraction=0.3, baselines=False, properties=("loudness", "timbre")), folder)
    sae = load_sae(folder)
    probe = load_probes(folder).probe("loudness")
    x = sine_burst(300.0, 0.05, 0.0, 1.0, 1.0, tiny_codec.sample_rate)
    z = tiny_codec.encode(AudioClip(x[:, None], tiny_codec.sample_rate))
    cur = probe.predict(sae.encode_np(z)).mean()
    ctx = SteeringContext.from_sae(sae, tiny_codec.frame_rate)
    # The default direction (target row minus the current class's row) moves the class down for a
    # negative target and up for a positive one, read back through the codec latents and the SAE.
    assert steering.PROBE_DIRECTION == "contrast"
    down = probe.predict(sae.encode_np(apply_edits(z, [parse_edit("probe:loudness=-3:0.5")], ctx))).mean()
    up = probe.predict(sae.encode_np(apply_edits(z, [parse_edit("probe:loudness=+3:0.5")], ctx))).mean()
    assert down < cur < up, (down, cur, up)
    # A codec loudness channel: timbre edits leave it exactly as it was, loudness edits move it, and a
    # feature edit beside a timbre edit still changes it as it would alone.
    ch = tiny_codec.latent_dim - 1
    held = SteeringContext.from_sae(sae, tiny_codec.frame_rate, loudness_channel=ch)
    t = parse_edit("probe:timbre=+4:0.5")
    free, kept = apply_edits(z, [t], ctx), apply_edits(z, [t], held)
    assert not np.allclose(free[:, ch], z[:, ch])  # the edit would have moved it
    np.testing.assert_array_equal(kept[:, ch], z[:, ch])
    others = [i for i in range(z.shape[1]) if i != ch]
    np.testing.assert_allclose(kept[:, others], free[:, others], atol=1e-5)
    loud = apply_edits(z, [parse_edit("probe:loudness=+3:0.5")], held)
    np.testing.assert_allclose(loud, apply_edits(z, [parse_edit("probe:loudness=+3:0.5")], ctx), atol=1e-6)
    feat = parse_edit("1:scale=3")
    mixed = apply_edits(z, [feat, t], held)
    alone = apply_edits(z, [feat], held)
    np.testing.assert_allclose(mixed[:, ch], alone[:, ch], atol=1e-5)
