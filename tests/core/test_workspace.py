"""The app's Qt-free document: analysis, steering identity, edits, events; the SAE bridge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.core.audio import AudioClip
from workbench.core.codecs.default import DefaultCodec
from workbench.core.demo import tone_piece
from workbench.core.errors import UsageError
from workbench.core.jobs import JobControl
from workbench.core.sae_bridge import (
    SAEMismatchError,
    TrainRequest,
    load_sae,
    make_random_sae,
    read_labels,
    run_training,
)
from workbench.core.steering import Edit
from workbench.core.workspace import Workspace, analyze, render_steered, steer_latents


@pytest.fixture()
def sae_dir(tmp_path: Path, tiny_codec: DefaultCodec) -> Path:
    return make_random_sae(tmp_path / "sae", tiny_codec.latent_dim, 24, k=3)


def test_analysis_and_steering(tiny_codec: DefaultCodec, sae_dir: Path) -> None:
    sae = load_sae(sae_dir)
    clip = tone_piece(2.0)
    a = analyze(clip, tiny_codec, sae, None, "demo")
    assert a.z.shape == (tiny_codec.num_frames(clip.num_samples), tiny_codec.latent_dim)
    assert a.features is not None and a.features.shape == (a.z.shape[0], 24)
    assert a.decoded.num_samples == clip.num_samples and a.mel.duration == pytest.approx(2.0, abs=0.02)
    ctx = sae.steering_context(tiny_codec.frame_rate)
    # Sliders at neutral are no edit: B is exactly A.
    neutral = [Edit(1, "scale", 1.0), Edit(2, "add", 0.0)]
    assert steer_latents(a, ctx, neutral) is a.z
    r = render_steered(a, tiny_codec, ctx, neutral)
    assert r.clip is a.decoded and r.edits == tuple(neutral)
    feat = int(np.argmax(a.summary.clip_mean))
    r2 = render_steered(a, tiny_codec, ctx, [Edit(feat, "scale", 0.0)])
    assert np.abs(r2.z - a.z).max() > 0 and r2.clip.num_samples == clip.num_samples
    assert r2.features is not None and np.all(r2.features[:, feat] == 0)


def test_workspace_events_and_edit_helpers(tiny_codec: DefaultCodec, sae_dir: Path) -> None:
    ws = Workspace()
    seen: list[str] = []
    for name in ("codec", "sae", "analysis", "edits", "steered", "selection"):
        ws.events.connect(name, lambda n=name: seen.append(n))
    ws.set_codec("default", tiny_codec)
    ws.set_sae(load_sae(sae_dir))
    ws.set_analysis(analyze(tone_piece(1.0), tiny_codec, ws.sae, None, "x"))
    ws.set_edits(ws.with_edit(Edit(2, "scale", 0.5)))
    ws.set_edits(ws.with_edit(Edit(2, "scale", 0.0)))
    assert ws.edits == (Edit(2, "scale", 0.0),) and not ws.steered_is_current
    ws.set_edits(ws.edits)  # unchanged: no event
    ws.set_selected([4, 4, 1])
    assert ws.selected == (4, 1)
    assert seen == ["codec", "sae", "analysis", "edits", "edits", "selection"]
    assert ws.without_edit(2) == ()


def test_sae_must_fit_the_codec(tiny_codec: DefaultCodec, tmp_path: Path) -> None:
    sae = load_sae(make_random_sae(tmp_path / "wide", tiny_codec.latent_dim + 1, 8))
    with pytest.raises(SAEMismatchError, match="expects 17-dim latents"):
        sae.check_codec("default", tiny_codec.latent_dim)


def test_labels_in_several_shapes(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text(
        '{"features": {"0": {"label": "pitch C", "score": 0.91}, "1": "drums", "5": {"labels": '
        '[{"concept": "bright", "auroc": 0.8}]}, "99": "out of range", "x": "bad"}}')
    labels = read_labels(tmp_path, 10)
    assert labels[0].label == "pitch C" and labels[0].score == pytest.approx(0.91)
    assert labels[1].label == "drums" and labels[1].score is None
    assert labels[5].label == "bright" and set(labels) == {0, 1, 5}
    (tmp_path / "labels.json").write_text("{broken")
    assert read_labels(tmp_path, 10) == {}


def test_bad_sae_folders_give_one_line(tmp_path: Path) -> None:
    from workbench.core.errors import WorkbenchError

    with pytest.raises(WorkbenchError) as ei:
        load_sae(tmp_path / "missing")
    assert "\n" not in str(ei.value)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "cfg.json").write_text("{}")
    (tmp_path / "broken" / "sae_weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(WorkbenchError):
        load_sae(tmp_path / "broken")


def test_tiny_training_run_writes_a_loadable_sae(tiny_codec_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.core.audio import save_audio

    monkeypatch.setenv("WORKBENCH_RESOURCES", str(tmp_path / "res"))
    (tmp_path / "res" / "codecs").mkdir(parents=True)
    (tmp_path / "res" / "codecs" / "default").symlink_to(tiny_codec_dir)
    wav = save_audio(tmp_path / "a.wav", AudioClip(tone_piece(2.0).samples, 24000))
    metrics: list[dict[str, float]] = []
    job = JobControl(on_partial=metrics.append)
    req = TrainRequest([str(wav)], 0, "default", "continuous", "topk", 12, 3, 0.0, 60, 32, 1e-3, str(tmp_path / "out"),
                       loudness_weight=10.0)
    bad = TrainRequest(**{**req.__dict__, "loudness_weight": 0.0})
    with pytest.raises(UsageError, match="loudness weight"):
        bad.validate()
    out = run_training(req, job)  # the tiny codec has no loudness channel: the app's weight is not used
    sae = load_sae(out)
    assert sae.d_sae == 12 and sae.d_in == 16 and sae.codec_id == "default"
    assert json.loads((out / "workbench.json").read_text())["training"]["config"]["loudness_weight"] == 1.0
    assert metrics and {"loss", "fvu", "l0", "dead_fraction"} <= set(metrics[-1])
    assert np.all(sae.max_activation > 0) or np.any(sae.max_activation > 0)
