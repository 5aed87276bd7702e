"""EnCodec adapter through its real loading path.

No real weights are available offline, so each architecture is built with random weights (fixed seed,
codebooks filled so that quantization is not degenerate) and saved as a state-dict file: under the
standard name in a ``--weights`` folder, in a temporary torch hub cache, in ``$WORKBENCH_ENCODEC_DIR``,
and wrapped under an arbitrary name (a "fine-tune"). Random weights cost the same to run as real ones.

Block-decoder tolerance: absolute RMS difference < 1e-4 between a block and the same samples of the
whole-clip decode, with the input audio normalized to a peak of 0.5.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from encodec import EncodecModel

from workbench.cli import main
from workbench.core.audio import AudioClip, load_audio
from workbench.core.codecs import encodec_adapter as ea
from workbench.core.codecs import get_codec, list_codecs
from workbench.core.codecs.base import Codec
from workbench.core.errors import CodecError, WeightsNotFoundError

F24 = "encodec_24khz-d7cc33bc.th"
F48 = "encodec_48khz-7e698e3e.th"
TOL = 1e-4


def random_model(builder_name: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(EncodecModel, builder_name)(pretrained=False)
    # k-means-initialised codebooks start at zero; give them values of the encoder output's scale.
    with torch.no_grad():
        for i, layer in enumerate(model.quantizer.vq.layers):
            layer._codebook.embed.normal_(0.0, 0.03 * 0.7**i)
            layer._codebook.embed_avg.copy_(layer._codebook.embed)
            layer._codebook.inited.fill_(1.0)
    return model


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run this module on one intra-op thread, restored afterwards.

    On a busy 2-core machine (CI, or tests next to a training run) two OpenMP threads spin-wait for each
    other and this module took 8 minutes instead of under one; a single thread does not degrade so.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Weights:
    folder: Path  # both standard file names
    finetune24: Path  # arbitrary name, wrapped {"state_dict": {"module." + key: ...}}
    sd24: dict[str, torch.Tensor]
    sd48: dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Weights:
    folder = tmp_path_factory.mktemp("encodec-weights")
    sd24 = {k: v.clone() for k, v in random_model("encodec_model_24khz", 0).state_dict().items()}
    sd48 = {k: v.clone() for k, v in random_model("encodec_model_48khz", 1).state_dict().items()}
    torch.save(sd24, folder / F24)
    torch.save(sd48, folder / F48)
    finetune = tmp_path_factory.mktemp("finetune") / "my encodec finetune.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd24.items()}, "epoch": 3}, finetune)
    return Weights(folder, finetune, sd24, sd48)


@pytest.fixture(autouse=True)
def isolated_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty torch hub cache and no env override, so a user's real weights never leak in."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv(ea.ENV_DIR, raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    yield home / "hub" / "checkpoints"


def harmonic(seconds: float, sr: int, channels: int, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    cols = []
    for c in range(channels):
        ph = 2 * np.pi * f0 * (1 + 0.25 * c) * (t + 0.05 * np.sin(2 * np.pi * 0.7 * t))
        x = sum(np.sin(k * ph) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t + c))
        cols.append(x)
    x = np.stack(cols, axis=1)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def wav44(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("audio") / "tone44k_stereo.wav"
    sf.write(p, harmonic(1.5, 44100, 2), 44100, subtype="FLOAT")
    return p


@pytest.fixture(scope="module")
def wav48(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("audio") / "tone48k_stereo.wav"
    sf.write(p, harmonic(1.61, 48000, 2)[:76877], 48000, subtype="FLOAT")  # not a whole number of frames
    return p


@pytest.fixture(scope="module")
def c24(weights: Weights) -> Codec:
    return get_codec("encodec-24khz", weights=str(weights.folder))


@pytest.fixture(scope="module")
def c48(weights: Weights) -> Codec:
    return get_codec("encodec-48khz", weights=weights.folder)


@pytest.fixture(scope="module")
def c24q(weights: Weights) -> Codec:
    """Quantized at 1.5 kbps, loaded from the wrapped, arbitrarily named fine-tune file."""
    return get_codec("encodec-24khz", latent="quantized:1.5", weights=weights.finetune24)


@dataclass(frozen=True)
class Encoded:
    clip: AudioClip
    z: np.ndarray
    whole: np.ndarray  # decode_samples(z)


@pytest.fixture(scope="module")
def enc24(c24: Codec, wav44: Path) -> Encoded:
    clip = load_audio(wav44, c24.sample_rate, c24.channels)  # resampled and mixed down
    z = c24.encode(clip)
    return Encoded(clip, z, c24.decode_samples(z))


@pytest.fixture(scope="module")
def enc48(c48: Codec, wav48: Path) -> Encoded:
    clip = load_audio(wav48, c48.sample_rate, c48.channels)
    z = c48.encode(clip)
    return Encoded(clip, z, c48.decode_samples(z))


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


# ---------------------------------------------------------------------------------------------- lookup


def test_summary_is_cheap_and_reports_weights(
    weights: Weights, monkeypatch: pytest.MonkeyPatch, isolated_lookup: Path
) -> None:
    def boom(*_: object) -> None:
        raise AssertionError("summary must not build or load a model")

    monkeypatch.setattr(ea, "build_architecture", boom)
    monkeypatch.setattr(ea, "_load_model_uncached", boom)
    rows = {r["id"]: r for r in list_codecs()}
    r24, r48 = rows["encodec-24khz"], rows["encodec-48khz"]
    assert (r24["sample_rate"], r24["channels"], r24["frame_rate"], r24["latent_dim"], r24["hop_length"]) == (
        24000, 1, 75.0, 128, 320)
    assert (r48["sample_rate"], r48["channels"], r48["frame_rate"], r48["latent_dim"], r48["hop_length"]) == (
        48000, 2, 150.0, 129, 320)
    assert r24["weights_present"] is False and r24["weights_path"] is None
    assert "quantized:1.5-24" in r24["notes"] and "log gain" in r48["notes"]

    rows = {r["id"]: r for r in list_codecs(weights=str(weights.folder))}
    assert rows["encodec-24khz"]["weights_present"] is True
    assert rows["encodec-48khz"]["weights_path"] == str(weights.folder / F48)


def test_weights_from_torch_hub_cache(
    weights: Weights, isolated_lookup: Path, monkeypatch: pytest.MonkeyPatch, c24: Codec, c48: Codec
) -> None:
    # (c24 and c48 keep the models alive, so loading the same file again reuses them.)
    isolated_lookup.mkdir(parents=True)
    os.symlink(weights.folder / F24, isolated_lookup / F24)
    assert ea.hub_checkpoint_dir() == isolated_lookup
    codec = get_codec("encodec-24khz")
    assert codec.describe()["weights_source"] == "torch hub cache"
    assert codec.describe()["weights_path"] == str(isolated_lookup / F24)

    other = isolated_lookup.parent.parent / "set-dir-hub"
    (other / "checkpoints").mkdir(parents=True)
    os.symlink(weights.folder / F48, other / "checkpoints" / F48)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(other))  # what torch.hub.set_dir does; undone after
    assert get_codec("encodec-48khz").describe()["weights_path"] == str(other / "checkpoints" / F48)


def test_weights_lookup_order(weights: Weights, isolated_lookup: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch, c24: Codec) -> None:
    spec = ea.SPECS["encodec-24khz"]
    isolated_lookup.mkdir(parents=True)
    os.symlink(weights.folder / F24, isolated_lookup / F24)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    os.symlink(weights.folder / F24, env_dir / F24)
    assert ea.find_weights(spec) == ea.WeightsLocation(isolated_lookup / F24, "torch hub cache")
    monkeypatch.setenv(ea.ENV_DIR, str(env_dir))
    assert ea.find_weights(spec) == ea.WeightsLocation(env_dir / F24, ea.ENV_DIR)
    assert ea.find_weights(spec, weights.finetune24) == ea.WeightsLocation(weights.finetune24, "--weights")
    assert ea.find_weights(spec, weights.folder) == ea.WeightsLocation(weights.folder / F24, "--weights")
    assert get_codec("encodec-24khz").describe()["weights_source"] == ea.ENV_DIR


def test_finetune_file_with_any_name_and_wrapper(weights: Weights, c24: Codec, c24q: Codec) -> None:
    assert c24q.describe()["weights_path"] == str(weights.finetune24)
    z = c24.encode(AudioClip(harmonic(0.2, 24000, 1), 24000))
    np.testing.assert_array_equal(c24q.decode_samples(z), c24.decode_samples(z))


def test_no_weights_is_one_line_saying_where_to_put_them(isolated_lookup: Path) -> None:
    for codec_id, fname in (("encodec-24khz", F24), ("encodec-48khz", F48)):
        with pytest.raises(WeightsNotFoundError) as info:
            get_codec(codec_id)
        msg = str(info.value)
        assert "\n" not in msg
        assert fname in msg and str(isolated_lookup) in msg and "--weights" in msg and ea.ENV_DIR in msg


def test_explicit_weights_that_do_not_hold_the_model(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=F24):
        get_codec("encodec-24khz", weights=str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="no such file or folder"):
        get_codec("encodec-24khz", weights=str(tmp_path / "nope"))


def _one_line_codec_error(path: Path, codec_id: str = "encodec-24khz") -> str:
    with pytest.raises(CodecError) as info:
        get_codec(codec_id, weights=str(path))
    assert not isinstance(info.value, WeightsNotFoundError)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_corrupt_and_mismatched_weights(weights: Weights, tmp_path: Path) -> None:
    garbage = tmp_path / F24
    garbage.write_bytes(os.urandom(4096))
    assert "not a readable" in _one_line_codec_error(garbage)

    not_a_state_dict = tmp_path / "list.th"
    torch.save([1, 2, 3], not_a_state_dict)
    assert "not a state dict" in _one_line_codec_error(not_a_state_dict)

    wrong = dict(weights.sd24)
    key = "decoder.model.0.conv.conv.bias"
    wrong[key] = torch.zeros(7)
    bad_shape = tmp_path / "wrong_shape.th"
    torch.save(wrong, bad_shape)
    msg = _one_line_codec_error(bad_shape)
    assert key in msg and "[7]" in msg

    partial = {k: v for k, v in weights.sd24.items() if not k.startswith("decoder.")}
    missing = tmp_path / "partial.th"
    torch.save(partial, missing)
    assert "missing keys" in _one_line_codec_error(missing)

    nan = dict(weights.sd24)
    nan[key] = torch.full_like(nan[key], float("nan"))
    nan_file = tmp_path / "nan.th"
    torch.save(nan, nan_file)
    assert "NaN" in _one_line_codec_error(nan_file)

    assert "encodec-48khz weights" in _one_line_codec_error(weights.folder / F48)


# ---------------------------------------------------------------------------------------------- options


def test_latent_kinds_parse_and_reject() -> None:
    s24, s48 = ea.SPECS["encodec-24khz"], ea.SPECS["encodec-48khz"]
    assert ea.parse_latent_kind(s24, None) == ("continuous", None)
    assert ea.parse_latent_kind(s24, "quantized") == ("quantized:6", 6.0)
    assert ea.parse_latent_kind(s24, "Quantized:1.5") == ("quantized:1.5", 1.5)
    assert ea.parse_latent_kind(s48, "quantized:24kbps") == ("quantized:24", 24.0)
    for spec, bad in ((s24, "quantized:5"), (s48, "quantized:1.5"), (s24, "quantized:x"), (s24, "latent")):
        with pytest.raises(CodecError) as info:
            ea.parse_latent_kind(spec, bad)
        assert "\n" not in str(info.value)
    with pytest.raises(CodecError, match="no 1.5 kbps"):  # checked before looking for weights
        get_codec("encodec-48khz", latent="quantized:1.5")
    with pytest.raises(CodecError, match="no option"):
        get_codec("encodec-24khz", colour="blue")


# ---------------------------------------------------------------------------------------------- round trips


def test_24k_from_stereo_44k_file(c24: Codec, enc24: Encoded) -> None:
    clip, z = enc24.clip, enc24.z
    assert clip.sample_rate == 24000 and clip.channels == 1 and clip.num_samples == 36000
    assert z.dtype == np.float32 and z.shape == (-(-clip.num_samples // 320), 128)
    assert c24.latent_kind == "continuous" and np.isfinite(z).all() and z.std() > 0
    y = c24.decode(z, clip.num_samples)
    assert (y.sample_rate, y.channels, y.num_samples) == (24000, 1, clip.num_samples)
    assert np.isfinite(y.samples).all() and rms(y.samples) > 1e-3


def test_24k_quantized_latents_are_codebook_sums(weights: Weights, c24: Codec, c24q: Codec) -> None:
    codec = c24q
    assert codec.latent_kind == "quantized:1.5" and codec.latent_dim == 128
    clip = AudioClip(harmonic(0.5, 24000, 1), 24000)
    z = codec.encode(clip)
    # 1.5 kbps = 2 codebooks of 10 bits at 75 frames/s. Residual VQ: the first vector is the one
    # nearest the continuous latent, the second is a vector of the second codebook.
    cb0 = weights.sd24["quantizer.vq.layers.0._codebook.embed"].numpy().astype(np.float64)
    cb1 = weights.sd24["quantizer.vq.layers.1._codebook.embed"].numpy().astype(np.float64)
    e = c24.encode(clip).astype(np.float64)
    assert not np.allclose(z, e)

    def sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]

    residual = z - cb0[sqdist(e, cb0).argmin(1)]
    assert sqdist(residual, cb1).min(1).max() < 1e-10
    y = codec.decode(z, clip.num_samples)
    assert y.num_samples == clip.num_samples and np.isfinite(y.samples).all()
    z6 = get_codec("encodec-24khz", latent="quantized", weights=weights.folder).encode(clip)
    assert z6.shape == z.shape and not np.allclose(z6, z)


def test_48k_stereo_file_round_trip_keeps_channels_rate_and_length(c48: Codec, enc48: Encoded) -> None:
    clip, z = enc48.clip, enc48.z
    n = clip.num_samples
    assert n == 76877
    assert z.dtype == np.float32 and z.shape == (-(-n // 320), 129)
    y = c48.decode(z, n)
    assert (y.sample_rate, y.channels, y.num_samples) == (48000, 2, n)
    assert np.isfinite(y.samples).all() and rms(y.samples) > 1e-3
    # Channel 128 is ln(scale) of the 1 s chunk owning the frame, scale as encodec computes it.
    first = clip.samples[:48000].mean(axis=1)
    scale = 1e-8 + np.sqrt(np.mean(first.astype(np.float64) ** 2))
    assert z[0, 128] == pytest.approx(np.log(scale), abs=1e-5)
    assert np.all(z[:148, 128] == z[0, 128]) and z[148, 128] != z[0, 128]
    # ... and decode multiplies by exp(channel 128): +ln 2 doubles the output.
    louder = z.copy()
    louder[:, 128] += np.log(2.0)
    np.testing.assert_allclose(c48.decode_samples(louder), 2 * enc48.whole, rtol=1e-5, atol=1e-6)


def test_48k_quantized_and_input_layout(weights: Weights, c48: Codec) -> None:
    codec = get_codec("encodec-48khz", latent="quantized:3", weights=weights.folder)
    mono44 = AudioClip(harmonic(0.3, 44100, 1), 44100)
    z = codec.encode(mono44)
    n48 = codec.prepare(mono44).num_samples
    assert codec.latent_kind == "quantized:3" and z.shape == (-(-n48 // 320), 129)
    assert codec.decode(z, n48).samples.shape == (n48, 2)
    assert not np.allclose(z[:, :128], c48.encode(mono44)[:, :128])
    np.testing.assert_array_equal(z[:, 128], c48.encode(mono44)[:, 128])


@pytest.mark.parametrize("codec_id, seconds", [("encodec-24khz", 0.48), ("encodec-48khz", 0.8)])
def test_quantized_round_trip_equals_encodec_forward(weights: Weights, codec_id: str, seconds: float) -> None:
    """On a clip shorter than EnCodec's own segment, our path is the package's own pipeline."""
    codec = get_codec(codec_id, latent="quantized:6", weights=weights.folder)
    assert isinstance(codec, ea.EncodecCodec)
    clip = AudioClip(harmonic(seconds, codec.sample_rate, codec.channels), codec.sample_rate)
    ours = codec.decode(codec.encode(clip), clip.num_samples).samples
    model = codec.model
    try:
        model.set_target_bandwidth(6.0)
        with torch.inference_mode():
            ref = model(torch.from_numpy(clip.samples.T.copy())[None])[0].T.numpy()
    finally:
        model.bandwidth = None
    np.testing.assert_allclose(ours, ref, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


def test_short_and_odd_lengths(c24: Codec, c48: Codec) -> None:
    for codec in (c24, c48):
        for n in (1, 319, 321):
            clip = AudioClip(np.full((n, codec.channels), 0.1, np.float32), codec.sample_rate)
            z = codec.encode(clip)
            assert z.shape[0] == -(-n // 320)
            assert codec.decode(z, n).num_samples == n


def test_wrong_latents_are_rejected(c24: Codec, c48: Codec) -> None:
    with pytest.raises(CodecError, match="expects"):
        c48.decode(np.zeros((10, 128), np.float32))
    z = np.zeros((10, 128), np.float32)
    z[3, 5] = np.nan
    with pytest.raises(CodecError, match="NaN"):
        c24.decode(z)
    for start, stop in ((5, 5), (-1, 3), (8, 11)):
        with pytest.raises(CodecError, match="outside"):
            c24.decode_block(np.zeros((10, 128), np.float32), start, stop)


# ---------------------------------------------------------------------------------------------- block decoder


@pytest.mark.parametrize("codec_id", ["encodec-24khz", "encodec-48khz"])
def test_block_decoder_matches_whole_clip(
    codec_id: str, c24: Codec, c48: Codec, enc24: Encoded, enc48: Encoded
) -> None:
    codec, enc = (c24, enc24) if codec_id == "encodec-24khz" else (c48, enc48)
    z, whole = enc.z, enc.whole
    t = z.shape[0]
    assert whole.shape == (t * 320, codec.channels)
    hop = codec.hop_length
    starts = {"start": lambda bs: 0, "middle": lambda bs: t // 2 - bs // 2, "end": lambda bs: t - bs}
    for bs in (1, 2, 3, 7, 16):
        for where, at in starts.items():
            a = at(bs)
            block = codec.decode_block(z, a, a + bs)
            assert block.shape == (bs * hop, codec.channels)
            err = rms(block - whole[a * hop : (a + bs) * hop])
            assert err < TOL, f"{codec_id}: block of {bs} at {where} ({a}) differs by {err:.2e} RMS"
    # Near the start (reflection padding) and, for 48 kHz, across the chunk overlap at frames 148-149.
    extra = ((1, 1), (3, 2), (6, 3)) + (((146, 3), (148, 2), (149, 7)) if codec is c48 else ())
    for a, bs in extra:
        block = codec.decode_block(z, a, a + bs)
        assert rms(block - whole[a * hop : (a + bs) * hop]) < TOL


def test_48k_chunk_grid_and_cache(c48: Codec, enc48: Encoded) -> None:
    grid = ea.Encodec48Codec.chunks
    assert grid(150) == [(0, 150)]
    assert grid(151) == [(0, 150), (148, 151)]
    assert grid(300) == [(0, 150), (148, 298), (296, 300)]
    for t in range(1, 800, 7):
        w = grid(t)
        assert w[0][0] == 0 and w[-1][1] == t and all(f1 - f0 <= 150 for f0, f1 in w)
        assert all(b[0] == a[1] - 2 for a, b in zip(w, w[1:], strict=False))
        assert len(w) == 1 or w[-1][1] - w[-1][0] > 2
    z = enc48.z
    assert isinstance(c48, ea.Encodec48Codec)
    c48.clear_cache()
    first = c48.decode_block(z, 10, 20)
    again = c48.decode_block(z, 10, 20)
    np.testing.assert_array_equal(first, again)
    edited = z.copy()
    edited[:, 3] += 0.5  # a new latent sequence must not hit the old chunks
    assert not np.allclose(c48.decode_block(edited, 10, 20), first)


# ---------------------------------------------------------------------------------------------- CLI


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_cli_codecs_lists_weights(weights: Weights, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codecs"]) == 0
    out = capsys.readouterr().out
    assert "encodec-24khz" in out and "encodec-48khz" in out and "missing" in out
    monkeypatch.setenv(ea.ENV_DIR, str(weights.folder))
    assert main(["codecs", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["encodec-48khz"]["weights_present"] and rows["encodec-48khz"]["latent_dim"] == 129
    assert main(["codecs"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("encodec-24khz"))
    assert "present" in line and "75.00" in line


def test_cli_encode_decode(weights: Weights, wav44: Path, wav48: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str], c24: Codec, c48: Codec) -> None:
    z_path, out = tmp_path / "z.npy", tmp_path / "out.wav"
    w = str(weights.folder)
    assert main(["encode", str(wav44), "--codec", "encodec-24khz", "--weights", w, "-o", str(z_path)]) == 0
    z = np.load(z_path)
    assert z.dtype == np.float32 and z.shape == (-(-36000 // 320), 128)
    assert main(["decode", str(z_path), "--codec", "encodec-24khz", "--weights", w, "-o", str(out)]) == 0
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames) == (24000, 1, z.shape[0] * 320)

    z48, out48 = tmp_path / "z48.npy", tmp_path / "out48.wav"
    assert main(["encode", str(wav48), "--codec", "encodec-48khz", "--latent", "quantized:12",
                 "--weights", w, "-o", str(z48)]) == 0
    assert main(["decode", str(z48), "--codec", "encodec-48khz", "--weights", w, "-o", str(out48)]) == 0
    info = sf.info(out48)
    # The CLI does not know the original length: it writes whole frames (< 1 hop longer).
    assert (info.samplerate, info.channels) == (48000, 2) and 0 <= info.frames - 76877 < 320
    capsys.readouterr()

    bad_args = [
        ["encode", str(tmp_path / "nope.wav"), "--codec", "encodec-24khz", "--weights", w, "-o", str(z_path)],
        ["encode", str(wav44), "--codec", "encodec-24khz", "-o", str(z_path)],  # no weights anywhere
        ["encode", str(wav44), "--codec", "encodec-24khz", "--latent", "quantized:7", "--weights", w,
         "-o", str(z_path)],
        ["decode", str(z_path), "--codec", "encodec-48khz", "--weights", w, "-o", str(out)],  # 128 != 129
        ["encode", str(wav44), "--codec", "encodec-24khz", "--weights", str(weights.folder / F48),
         "-o", str(z_path)],
    ]
    for args in bad_args:
        assert main(args) == 2, args
        line = _err_line(capsys)
        if args[1] == str(wav44) and "--weights" not in args:
            assert F24 in line
