"""`workbench train` and `workbench activations` end to end with the (tiny, random) default codec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.cli import main
from workbench.core.audio import load_audio
from workbench.core.codecs import get_codec
from workbench.core.sae.io import load_sae

Cap = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tiny_resources: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_RESOURCES", str(tiny_resources))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))


def run(capsys: Cap, *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str) -> None:
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err


def test_train_then_activations_then_resume(capsys: Cap, tmp_path: Path, audio_dir: Path) -> None:
    out = tmp_path / "sae"
    rc, stdout, err = run(capsys, "train", audio_dir, "--arch", "topk", "--d-sae", 32, "--k", 4, "--steps", 30,
                          "--batch-size", 64, "--checkpoint-every", 10, "-o", out)
    assert rc == 0, err
    assert "FVU" in stdout and str(out) in stdout
    sae = load_sae(out, latent_dim=16)
    assert sae.architecture == "topk" and sae.d_sae == 32 and sae.info.codec_id == "default"
    wb = json.loads((out / "workbench.json").read_text())
    assert wb["training"]["step"] == 30 and len(wb["max_activation"]) == 32
    assert wb["codec"] == "default" and wb["codec_info"]["frame_rate"] == 75.0 and wb["latent_kind"] == "continuous"
    m = wb["metrics"]
    # A random codec and 30 steps: only sanity here (recovery is tested on synthetic data).
    assert np.isfinite(m["validation"]["fvu"]) and 0 < m["validation"]["l0"] <= 4
    assert m["audio"]["clips"] >= 1 and m["audio"]["stft_distance"] is not None
    assert sum(m["density_histogram"]["counts"]) + m["density_histogram"]["never"] == 32
    assert (tmp_path / "sae.training" / "latest.json").is_file()

    wav = audio_dir / "tone2.wav"
    rc, stdout, err = run(capsys, "activations", wav, "--sae", out, "-o", tmp_path / "f.npy")
    assert rc == 0, err
    f = np.load(tmp_path / "f.npy")
    codec = get_codec("default")
    z = codec.encode(load_audio(wav, 24000, 1))
    assert f.dtype == np.float32 and f.shape == (len(z), 32)
    np.testing.assert_allclose(f, sae.encode_np(z), rtol=1e-5, atol=1e-6)
    assert ((f > 0).sum(axis=1) <= 4).all()

    rc, stdout, err = run(capsys, "train", audio_dir, "--arch", "topk", "--d-sae", 32, "--k", 4, "--steps", 40,
                          "--batch-size", 64, "--resume", "-o", out)
    assert rc == 0, err
    assert "resumed at step 30" in err
    assert json.loads((out / "workbench.json").read_text())["training"]["step"] == 40


@pytest.mark.parametrize("arch", ["batchtopk", "relu", "relu-rmsnorm"])
def test_train_other_architectures(capsys: Cap, tmp_path: Path, audio_dir: Path, arch: str) -> None:
    extra = ["--k", "4"] if arch == "batchtopk" else ["--l1", "0.5"]
    rc, _, err = run(capsys, "train", audio_dir, "--arch", arch, "--d-sae", 24, *extra, "--steps", 12,
                     "--batch-size", 64, "-o", tmp_path / "sae")
    assert rc == 0, err
    sae = load_sae(tmp_path / "sae")
    assert sae.architecture == arch
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["architecture"] == {"batchtopk": "jumprelu", "relu": "standard"}.get(arch, arch)


def test_cli_errors_are_one_line(capsys: Cap, tmp_path: Path, audio_dir: Path) -> None:
    base = ["train", audio_dir, "--d-sae", "16", "--steps", "5", "-o", tmp_path / "s"]
    rc, _, err = run(capsys, *base, "--arch", "relu", "--k", "4")
    one_line_error(rc, err)
    rc, _, err = run(capsys, *base, "--arch", "topk", "--k", "99")
    one_line_error(rc, err)
    rc, _, err = run(capsys, "train", tmp_path / "nothing-here", "--d-sae", "16", "--steps", "5", "-o", tmp_path / "s")
    one_line_error(rc, err)
    if not torch.cuda.is_available():
        rc, _, err = run(capsys, *base, "--device", "cuda")
        one_line_error(rc, err)
        assert "cuda" in err
    assert not (tmp_path / "s").exists()
    # An SAE for 8-dim latents does not fit the default codec (16 dims here).
    from safetensors.torch import save_file

    d = tmp_path / "wrong"
    d.mkdir()
    (d / "cfg.json").write_text(json.dumps({"architecture": "standard", "d_in": 8, "d_sae": 4,
                                            "metadata": {"model_name": "default", "sae_lens_version": "6.0.0"}}))
    save_file({"W_enc": torch.zeros(8, 4), "b_enc": torch.zeros(4), "W_dec": torch.zeros(4, 8),
               "b_dec": torch.zeros(8)}, str(d / "sae_weights.safetensors"))
    rc, _, err = run(capsys, "activations", audio_dir / "tone0.wav", "--sae", d, "-o", tmp_path / "f.npy")
    one_line_error(rc, err)
    assert "8-dim" in err and not (tmp_path / "f.npy").exists()
    rc, _, err = run(capsys, "activations", audio_dir / "tone0.wav", "--sae", tmp_path / "none", "-o", tmp_path / "f.npy")
    one_line_error(rc, err)


def test_loudness_weight_needs_a_codec_with_a_loudness_channel(capsys: Cap, tmp_path: Path, audio_dir: Path) -> None:
    # The tiny test codec has no energy channel: one line, before any encoding, nothing written.
    rc, _, err = run(capsys, "train", audio_dir, "--d-sae", "16", "--k", "4", "--steps", "5", "--loudness-weight", "4",
                     "-o", tmp_path / "s")
    one_line_error(rc, err)
    assert "loudness channel" in err and not (tmp_path / "s").exists() and not (tmp_path / "cache").exists()
    rc, _, err = run(capsys, "train", audio_dir, "--d-sae", "16", "--steps", "5", "--loudness-weight", "0", "-o", tmp_path / "s")
    one_line_error(rc, err)


def test_loudness_weight_with_the_shipped_codec_uses_its_energy_channel(tmp_path: Path, audio_dir: Path) -> None:
    from workbench.core.sae.pipeline import TrainJob, train_sae
    shipped = Path(__file__).resolve().parents[3] / "resources" / "codecs" / "default"
    codec = get_codec("default", weights=str(shipped))
    assert codec.loudness_channel == codec.latent_dim - 1
    job = TrainJob(inputs=[str(audio_dir)], output=tmp_path / "sae", codec=codec, cache_dir=str(tmp_path / "cache"),
                   train={"architecture": "topk", "d_sae": 32, "k": 4, "steps": 20, "batch_size": 64,
                          "loudness_weight": 6.0, "checkpoint_every": 100}, audio_clips=1)
    train_sae(job)
    wb = json.loads((tmp_path / "sae" / "workbench.json").read_text())
    cfg = wb["training"]["config"]
    assert cfg["loudness_weight"] == 6.0 and cfg["loudness_channel"] == codec.latent_dim - 1
    sae = load_sae(tmp_path / "sae")
    z = codec.encode(load_audio(audio_dir / "tone2.wav", 24000, 1))
    assert np.isfinite(sae.encode_np(z)).all()
