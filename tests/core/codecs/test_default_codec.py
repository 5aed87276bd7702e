"""The embedded default codec: loading path, shapes and rates, block decoding, pitch kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.core.audio import AudioClip
from workbench.core.codecs import get_codec, list_codecs
from workbench.core.codecs.default import DefaultCodec, load_default_model
from workbench.core.codecs.default_model import DefaultCodecConfig, SpectralAutoencoder
from workbench.core.codecs.default_train import atomic_save_safetensors, atomic_write_json
from workbench.core.errors import ModelFileError, WeightsNotFoundError
from workbench.core.resources import default_codec_dir

SHIPPED = (default_codec_dir() / "model.safetensors").is_file()


def tone(freq: float, seconds: float, sr: int = 24000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum((amp / k) * np.sin(2 * np.pi * k * freq * t) for k in range(1, 6))
    return (x * np.minimum(1.0, t * 20)).astype(np.float32)


@pytest.fixture(scope="module", params=["conv", "filterbank"])
def random_codec_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    torch.manual_seed(0)
    cfg = DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=16, encoder=request.param)
    model = SpectralAutoencoder(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    d = tmp_path_factory.mktemp("codec")
    atomic_save_safetensors(d / "model.safetensors", dict(model.state_dict()))
    atomic_write_json(d / "config.json", {"format": "workbench-default-codec", "model": cfg.to_dict()})
    return d


def test_loads_from_folder_and_round_trips_shapes(random_codec_dir: Path) -> None:
    codec = DefaultCodec(random_codec_dir)
    assert codec.sample_rate == 24000 and codec.frame_rate == 75.0 and codec.latent_dim == 16
    # Stereo 44.1 kHz in: converted to the codec's mono 24 kHz.
    x = np.stack([tone(220, 0.5, 44100), tone(330, 0.5, 44100)], axis=1)
    z = codec.encode(AudioClip(x, 44100))
    assert z.dtype == np.float32 and z.shape == (38, 16)  # ceil(12000 / 320)
    y = codec.decode(z, num_samples=12000)
    assert y.sample_rate == 24000 and y.channels == 1 and y.num_samples == 12000
    assert np.isfinite(y.samples).all()


@pytest.mark.parametrize("block", [1, 2, 3, 7, 16])
def test_sequential_blocks_equal_whole_decode(random_codec_dir: Path, block: int) -> None:
    codec = DefaultCodec(random_codec_dir)
    z = codec.encode(AudioClip(tone(330, 1.0), 24000))
    whole = codec.decode(z).samples
    bd = codec.block_decoder(z)
    parts = [bd.decode(a, min(len(z), a + block)) for a in range(0, len(z), block)]
    got = np.concatenate(parts)
    assert got.shape == whole.shape
    assert np.sqrt(np.mean((got - whole) ** 2)) < 1e-4


def test_block_after_seek_continues_phase_state(random_codec_dir: Path) -> None:
    codec = DefaultCodec(random_codec_dir)
    z = codec.encode(AudioClip(tone(440, 1.0), 24000))
    whole = codec.decode(z).samples
    bd = codec.block_decoder(z)
    bd.decode(0, 30)
    hop = codec.hop_length
    got = bd.decode(30, 45)  # continues from the cached state of frame 28
    assert np.sqrt(np.mean((got - whole[30 * hop : 45 * hop]) ** 2)) < 1e-4
    # A block with no history warms up: not sample-equal, but the same level.
    cold = codec.block_decoder(z).decode(50, 60)
    ref = whole[50 * hop : 60 * hop]
    assert abs(np.std(cold) - np.std(ref)) < 0.2 * np.std(ref) + 1e-6


def test_missing_and_corrupt_weights_give_one_line(tmp_path: Path, random_codec_dir: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as e:
        load_default_model(tmp_path)
    assert "\n" not in str(e.value)
    (tmp_path / "config.json").write_text((random_codec_dir / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(ModelFileError):
        load_default_model(tmp_path)
    cfg = json.loads((random_codec_dir / "config.json").read_text())
    cfg["model"]["channels"] = 48
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").write_bytes((random_codec_dir / "model.safetensors").read_bytes())
    with pytest.raises(ModelFileError) as e2:
        load_default_model(tmp_path)
    assert "\n" not in str(e2.value)


def test_registry_lists_default() -> None:
    rows = {r["id"]: r for r in list_codecs()}
    assert rows["default"]["sample_rate"] == 24000 and rows["default"]["frame_rate"] == 75.0
    assert rows["default"]["weights_present"] == SHIPPED


REPORT = default_codec_dir() / "report.json"


@pytest.mark.skipif(not REPORT.is_file(), reason="no held-out report for the shipped weights yet (workbench codec-report)")
def test_shipped_codec_keeps_pitch_of_a_held_out_note() -> None:
    """Regression guard: one held-out note keeps its pitch about as well as the report measured."""
    from workbench.core.codecs.default_eval import crepe_pitch
    from workbench.core.data.synth import render_clip

    codec = get_codec("default")
    clip = render_clip("note", 987_654, sample_rate=24000)
    x = clip.audio
    y = codec.decode(codec.encode(AudioClip(x, 24000)), num_samples=len(x)).samples[:, 0]
    fx, px = crepe_pitch(x, 24000)
    fy, _ = crepe_pitch(y, 24000)
    voiced = px >= 0.5
    assert voiced.sum() > 20
    cents = 1200 * np.abs(np.log2(np.maximum(fy[voiced], 1e-3) / np.maximum(fx[voiced], 1e-3)))
    measured = json.loads(REPORT.read_text())["pitch_within_50c"]
    assert np.mean(cents < 50) >= min(0.8, measured - 0.25)


def _energy_codec_dir(folder: Path) -> Path:
    torch.manual_seed(1)
    cfg = DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=16, energy_latent=True)
    model = SpectralAutoencoder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(folder / "model.safetensors", dict(model.state_dict()))
    atomic_write_json(folder / "config.json", {"format": "workbench-default-codec", "model": cfg.to_dict()})
    return folder


def test_energy_latent_keeps_loudness_even_with_random_weights(tmp_path: Path) -> None:
    from workbench.core.codecs.default_eval import frame_rms_db

    codec = DefaultCodec(_energy_codec_dir(tmp_path / "c"))
    assert codec.latent_dim == 17 and codec.loudness_channel == 16
    sr = codec.sample_rate
    t = np.arange(sr) / sr
    envelope = np.interp(t, [0, 0.3, 0.6, 1.0], [0.02, 0.5, 0.05, 0.3])
    x = (envelope * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    z = codec.encode(AudioClip(x[:, None], sr))
    y = codec.decode(z, num_samples=len(x)).samples[:, 0]
    rx, ry = frame_rms_db(x)[4:-4], frame_rms_db(y)[4:-4]
    # A random decoder gets the spectral shape wrong but follows the 28 dB envelope by construction (up to
    # a small offset, and a +-0.6 dB frame-to-frame wobble where it is quiet: no signal has this random,
    # inconsistent spectrum, and the phase inversion settles on frames alternately above and below it).
    d = rx - ry
    assert np.std(d) < 0.6 and abs(float(np.median(d))) < 1.0
    # Scaling the energy channel by +ln(4)/4 (x4 energy) makes the output 6 dB louder.
    z2 = z.copy()
    z2[:, -1] += np.log(4.0) / 4.0
    y2 = codec.decode(z2, num_samples=len(x)).samples[:, 0]
    gain = frame_rms_db(y2)[4:-4] - ry
    assert abs(float(np.median(gain)) - 6.02) < 0.5


def test_checkpoint_upgrade_to_energy_latent_keeps_the_decoder(tmp_path: Path) -> None:
    from workbench.core.codecs.default_model import load_weights_upgrading

    torch.manual_seed(0)
    old = SpectralAutoencoder(DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=16))
    new = SpectralAutoencoder(DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=16, energy_latent=True))
    widened = load_weights_upgrading(new, old.state_dict())
    assert widened == ["dec_in.weight"]
    mag = torch.rand(1, 20, old.cfg.n_bins)
    with torch.no_grad():
        z_old, z_new = old.encode_mag(mag), new.encode_mag(mag)
        assert torch.equal(z_new[..., :16], z_old)
        # The energy channel enters the decoder with zero weights: only the final energy rescale differs.
        h_old = old.dec_in(z_old.transpose(1, 2))
        h_new = new.dec_in(z_new.transpose(1, 2))
        assert torch.allclose(h_old, h_new, atol=1e-6)


def test_checkpoint_upgrade_to_a_wider_latent_decodes_as_before(tmp_path: Path) -> None:
    from workbench.core.codecs.default_model import load_weights_upgrading

    torch.manual_seed(0)
    small = dict(channels=32, enc_blocks=1, dec_blocks=2, energy_latent=True)
    old = SpectralAutoencoder(DefaultCodecConfig(latent_dim=16, **small))
    new = SpectralAutoencoder(DefaultCodecConfig(latent_dim=24, **small))
    widened = load_weights_upgrading(new, old.state_dict())
    assert sorted(widened) == ["dec_in.weight", "enc_out.bias", "enc_out.weight"]
    mag = torch.rand(1, 20, old.cfg.n_bins)
    with torch.no_grad():
        z_old, z_new = old.encode_mag(mag), new.encode_mag(mag)
        assert z_new.shape[-1] == 25
        assert torch.equal(z_new[..., :16], z_old[..., :16])
        assert torch.equal(z_new[..., -1], z_old[..., -1])  # the energy channel stays last
        assert z_new[..., 16:24].abs().mean() > 0.01  # new channels carry something for training to use
        # ... but the decoder does not listen to them yet: the output is unchanged.
        assert torch.allclose(new.decode_logmag(z_new), old.decode_logmag(z_old), atol=1e-5)


def test_filterbank_encoder_channels_are_log_bands_of_the_spectrum() -> None:
    from workbench.core.codecs.default_model import band_filters

    fb = band_filters(24000, 1280, 127).numpy()
    assert fb.shape == (641, 127) and (fb >= 0).all()
    assert np.allclose(fb.sum(0), 1.0, atol=1e-5)  # each band averages the bins it covers
    centre = (fb * np.arange(641)[:, None]).sum(0)
    assert (np.diff(centre) > 0.5).all()  # distinct bands, low to high
    model = SpectralAutoencoder(DefaultCodecConfig(channels=32, dec_blocks=1, latent_dim=127, encoder="filterbank",
                                                   energy_latent=True))
    assert model.cfg.enc_radius == 0
    x = torch.from_numpy(tone(1000, 0.5)[None, :12000])
    from workbench.core.codecs.default_model import stft_mag

    with torch.no_grad():
        z = model.encode_mag(stft_mag(x, model.cfg))[0, 20]
    # The loudest band is the one centred nearest 1 kHz (bin 53.3), and z is its log magnitude.
    assert abs(centre[int(torch.argmax(z[:127]))] - 1000 / 18.75) < 3
    assert z.shape == (128,)


def test_the_phase_peak_floor_comes_from_the_config(random_codec_dir: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "codec"
    shutil.copytree(random_codec_dir, d)
    meta = json.loads((d / "config.json").read_text())
    meta["model"]["peak_floor_db"] = -1.0  # the random decoder's peaks are all within 20 dB
    atomic_write_json(d / "config.json", meta)
    base, high = DefaultCodec(random_codec_dir), DefaultCodec(d)
    assert base.cfg.peak_floor_db == -70.0 and high.cfg.peak_floor_db == -1.0
    z = base.encode(AudioClip(tone(220, 1.0), 24000))
    whole, ref = high.decode(z).samples, base.decode(z).samples
    rms = float(np.sqrt(np.mean(ref**2)))
    assert np.sqrt(np.mean((whole - ref) ** 2)) > 0.01 * rms
    bd = high.block_decoder(z)
    got = np.concatenate([bd.decode(a, min(len(z), a + 5)) for a in range(0, len(z), 5)])
    assert np.sqrt(np.mean((got - whole) ** 2)) < 1e-4 * max(1.0, rms)


def test_output_calibration_removes_a_planted_tilt(tmp_path: Path) -> None:
    from workbench.core.codecs.default_train import (
        AudioPool,
        TrainConfig,
        calibrated_weights,
        output_eq,
        save_checkpoint,
    )

    torch.manual_seed(0)
    cfg = DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=16, energy_latent=True)
    model = SpectralAutoencoder(cfg)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(24000)).astype(np.float32) for _ in range(6)]
    base = output_eq(model, clips)
    # A tilt of -10 dB across the band planted in the output bias comes back as (about) +10 dB.
    tilt = torch.linspace(0.0, -10.0, cfg.n_bins) * (np.log(10) / 20)
    with torch.no_grad():
        model.dec_out.bias += tilt
    got = output_eq(model, clips) - base
    got = got - got[: cfg.n_bins // 8].mean()  # only the shape matters (energy is renormalised per frame)
    assert torch.allclose(got, -tilt, atol=0.12), float((got + tilt).abs().max())
    # Folded into the bias, the decoder's mean power per bin matches the input's again.
    weights, info = calibrated_weights(model, clips)
    assert info is not None and info["db_max"] - info["db_min"] > 8
    model2 = SpectralAutoencoder(cfg)
    model2.load_state_dict(weights)
    residual = output_eq(model2, clips)
    assert float(residual.max() - residual.min()) < float(base.max() - base.min()) + 0.2
    # The trainer ships the calibrated copy and keeps the raw weights in its checkpoint.
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "state", tmp_path / "out", model, opt, 7, TrainConfig(output_eq=1.0), {},
                    AudioPool(clips, 24000).clips)
    from safetensors.torch import load_file

    raw = load_file(str(tmp_path / "state" / "model.safetensors"))["dec_out.bias"]
    shipped = load_file(str(tmp_path / "out" / "model.safetensors"))["dec_out.bias"]
    assert torch.equal(raw, model.dec_out.bias.detach())
    assert torch.allclose(shipped, weights["dec_out.bias"], atol=1e-6)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["output_eq"]["clips"] == 6
    # Strength 0 (the default) ships the raw weights and no calibration entry.
    save_checkpoint(tmp_path / "state", tmp_path / "out", model, opt, 8, TrainConfig(), {}, clips)
    assert torch.equal(load_file(str(tmp_path / "out" / "model.safetensors"))["dec_out.bias"], raw)
    assert "output_eq" not in json.loads((tmp_path / "out" / "config.json").read_text())


def test_decoder_only_training_keeps_every_latent(tmp_path: Path) -> None:
    """--decoder-only: the decoder learns, the encoder is bit-identical, so SAEs on its latents stay valid."""
    from workbench.core.codecs.default_train import AudioPool, TrainConfig, train

    rng = np.random.default_rng(0)
    sr = 24000
    t = np.arange(sr) / sr
    clips = [(0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(sr)).astype(np.float32)
             for f in (220.0, 330.0, 440.0, 550.0)]
    model_cfg = {"channels": 32, "enc_blocks": 1, "dec_blocks": 2, "latent_dim": 16, "energy_latent": True}
    state, out = tmp_path / "state", tmp_path / "out"
    tc = TrainConfig(steps=3, batch_size=2, crop_seconds=0.5, warmup=1, model=dict(model_cfg))
    train(AudioPool(clips, sr), out, state, tc, log=lambda s: None)
    before = DefaultCodec(out)
    tc2 = TrainConfig(steps=8, batch_size=2, crop_seconds=0.5, warmup=1, decoder_only=True, loss_floor=1e-5,
                      w_band=1.0, model=dict(model_cfg))
    result = train(AudioPool(clips, sr), out, state, tc2, resume=True, log=lambda s: None, until_step=6)
    assert result["step"] == 6  # stopped where asked, though the schedule spans 8 steps
    assert result["history"][-1]["band_db"] > 0  # the band-energy term was on
    after = DefaultCodec(out)
    sa, sb = before.model.state_dict(), after.model.state_dict()
    changed = {k for k in sa if not torch.equal(sa[k], sb[k])}
    assert changed and all(not k.startswith("enc_") for k in changed), changed
    assert any(k.startswith("dec_") for k in changed)
    x = AudioClip(clips[1][:, None], sr)
    assert np.array_equal(before.encode(x), after.encode(x))


def test_band_matrix_puts_each_bin_in_one_mel_band() -> None:
    from workbench.core.codecs.default_train import band_matrix

    m = band_matrix(24000, 1280, n_bands=32, fmin=40.0).numpy()
    freqs = np.fft.rfftfreq(1280, 1 / 24000)
    assert m.shape == (641, 32)
    assert np.all(m.sum(1) == (freqs >= 40.0))  # one band per bin from 40 Hz up, none below
    width = m.sum(0)
    assert np.all(width >= 1) and np.all(np.diff(width) >= -1)  # every band used; wider towards the top
    first = [int(np.flatnonzero(m[:, b])[0]) for b in range(32)]
    assert first == sorted(first)


def test_training_keeps_decode_settings_and_refuses_to_widen_a_filterbank(tmp_path: Path) -> None:
    """Decode settings tuned in the weights folder survive later checkpoints; a filterbank run cannot be widened."""
    from workbench.core.codecs.default_train import AudioPool, TrainConfig, train
    from workbench.core.errors import DataError

    sr = 24000
    t = np.arange(sr) / sr
    clips = [(0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220.0, 330.0)]
    model_cfg = {"channels": 16, "dec_blocks": 1, "latent_dim": 8, "energy_latent": True, "encoder": "filterbank"}
    state, out = tmp_path / "state", tmp_path / "out"
    train(AudioPool(clips, sr), out, state, TrainConfig(steps=2, batch_size=2, crop_seconds=0.5, warmup=1,
                                                        model=dict(model_cfg)), log=lambda s: None)
    meta = json.loads((out / "config.json").read_text())
    meta["model"].update(peak_floor_db=-20.0, phase_iters=2)
    atomic_write_json(out / "config.json", meta)
    train(AudioPool(clips, sr), out, state, TrainConfig(steps=4, batch_size=2, crop_seconds=0.5, warmup=1,
                                                        model=dict(model_cfg)), resume=True, log=lambda s: None)
    codec = DefaultCodec(out)
    assert codec.meta["step"] == 4
    assert (codec.cfg.peak_floor_db, codec.cfg.phase_iters, codec.cfg.phase_lookahead) == (-20.0, 2, 3)
    wider = TrainConfig(steps=6, batch_size=2, crop_seconds=0.5, warmup=1, model=dict(model_cfg, latent_dim=12))
    with pytest.raises(DataError, match="filterbank"):
        train(AudioPool(clips, sr), out, state, wider, resume=True, log=lambda s: None)
