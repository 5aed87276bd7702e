"""The CLI error contract (DESIGN.md): exit 2, exactly one ``error: ...`` line on stderr, no traceback,
no output file left behind — for bad audio, bad flags and bad latent files.

Codecs are mocked at the registry boundary: a tiny fake codec stands in for ``default`` so these tests
exercise the CLI and audio loading only (real codecs are tested under tests/core/codecs).
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from workbench import __version__
from workbench.cli import main
from workbench.core.audio import AudioClip
from workbench.core.codecs import registry
from workbench.core.codecs.base import Codec
from workbench.core.codecs.registry import CodecEntry

REPO = Path(__file__).resolve().parents[1]
Cap = pytest.CaptureFixture[str]


def _load_audio_cases() -> Any:
    """tests/core/test_audio.py, loaded by path for its bad-input table (tests are not a package)."""
    spec = importlib.util.spec_from_file_location("_audio_cases", REPO / "tests" / "core" / "test_audio.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cases = _load_audio_cases()


class FakeCodec(Codec):
    """16 kHz mono, hop 160, 8 dims: per-frame RMS repeated. Enough to run encode/decode end to end."""

    id = "fake"
    sample_rate = 16000
    channels = 1
    hop_length = 160
    latent_dim = 8

    def encode(self, clip: AudioClip) -> np.ndarray:
        x = self.prepare(clip).samples[:, 0]
        t = self.num_frames(len(x))
        x = np.pad(x, (0, t * self.hop_length - len(x))).reshape(t, self.hop_length)
        rms = np.sqrt((x**2).mean(axis=1, keepdims=True))
        return np.repeat(rms, self.latent_dim, axis=1).astype(np.float32)

    def decode_samples(self, z: np.ndarray) -> np.ndarray:
        level = z.mean(axis=1)
        t = np.arange(z.shape[0] * self.hop_length) / self.sample_rate
        return (np.repeat(level, self.hop_length) * np.sin(2 * np.pi * 440 * t))[:, None].astype(np.float32)


def _summary(**_: Any) -> dict[str, Any]:
    return {"id": "fake", "sample_rate": 16000, "channels": 1, "frame_rate": 100.0, "latent_dim": 8,
            "weights_present": True, "notes": "test double"}


@pytest.fixture(autouse=True)
def fake_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry holding only the fake (also as ``default``); the real one is restored afterwards.

    A fresh dict rather than `register` into the shared one: `_ensure_builtin` skips the built-ins as
    soon as the registry is non-empty, so registering into the real dict would hide them from every
    later test in the session.
    """
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_BUILTIN_LOADED", True)
    entry = CodecEntry(id="fake", factory=lambda **_: FakeCodec(), summary=_summary, aliases=("default",))
    registry.register(entry)


def run(capsys: Cap, *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_contract_error(rc: int, err: str) -> None:
    assert rc == 2, err
    assert err.startswith("error: "), repr(err)
    assert err.count("\n") == 1 and err.endswith("\n"), repr(err)
    assert "Traceback" not in err


@pytest.fixture
def good_wav(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "good.wav"
    p.parent.mkdir()
    sf.write(str(p), cases.tone(0.5, 22050, 2), 22050, subtype="PCM_16")
    return p


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


# --------------------------------------------------------------------------------------------------
# the happy path, so the error tests below are not vacuous


def test_encode_then_decode(capsys: Cap, good_wav: Path, outdir: Path) -> None:
    z_path = outdir / "z.npy"
    rc, out, err = run(capsys, "encode", good_wav, "-o", z_path)
    assert rc == 0, err
    z = np.load(z_path)
    assert z.dtype == np.float32 and z.shape == (50, 8)
    rc, out, err = run(capsys, "decode", z_path, "-o", outdir / "y.wav")
    assert rc == 0, err
    assert sf.info(str(outdir / "y.wav")).frames == 50 * 160
    assert sorted(p.name for p in outdir.iterdir()) == ["y.wav", "z.npy"]


# --------------------------------------------------------------------------------------------------
# exports go through the output limiter (peaks at -1 dBFS) unless --no-limit

CEILING = 10 ** (-1 / 20)


def test_decode_of_too_loud_latents_is_limited_unless_no_limit(capsys: Cap, outdir: Path) -> None:
    z_path = outdir / "loud.npy"
    np.save(z_path, np.full((100, 8), 30.0, np.float32))  # the fake decodes a 440 Hz sine at level 30
    rc, out, err = run(capsys, "decode", z_path, "-o", outdir / "lim.wav")
    assert rc == 0, err
    y, sr = sf.read(str(outdir / "lim.wav"), dtype="float32")
    assert len(y) == 100 * 160 and np.abs(y).max() <= CEILING
    assert np.abs(y[8000:]).max() > 0.95 * CEILING  # held at the ceiling, not silenced
    spec = np.abs(np.fft.rfft(y[4000:] * np.hanning(len(y) - 4000)))
    assert np.fft.rfftfreq(len(y) - 4000, 1 / sr)[int(np.argmax(spec))] == pytest.approx(440, abs=2)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("limiter: up to 30.5 dB") and "--no-limit" in lines[0], err
    rc, out, err = run(capsys, "decode", z_path, "-o", outdir / "raw.wav", "--no-limit")
    assert rc == 0, err
    raw, _ = sf.read(str(outdir / "raw.wav"), dtype="float32")
    assert np.abs(raw).max() > 25.0 and "limiter" not in err  # the raw decode, at its own level (float WAV)


def test_steer_with_a_huge_edit_writes_a_limited_file_unless_no_limit(capsys: Cap, good_wav: Path,
                                                                       outdir: Path) -> None:
    from workbench.core.sae.io import load_sae
    from workbench.core.sae_bridge import make_random_sae

    sae_dir = make_random_sae(outdir / "sae", 8, 16, k=4, frame_rate=100.0)
    w = load_sae(sae_dir).W_dec_np
    feat = int(np.argmax(np.abs(w.mean(axis=1))))  # the fake's level is the mean of the latent
    rc, out, err = run(capsys, "steer", good_wav, "--sae", sae_dir, "--edit", f"{feat}:add=1000", "-o", outdir / "a.wav")
    assert rc == 0, err
    y, _ = sf.read(str(outdir / "a.wav"), dtype="float32")
    assert np.abs(y).max() <= CEILING
    assert err.count("limiter: up to ") == 1
    rc, out, err = run(capsys, "steer", good_wav, "--sae", sae_dir, "--edit", f"{feat}:add=1000", "-o",
                       outdir / "b.wav", "--no-limit")
    assert rc == 0, err
    raw, _ = sf.read(str(outdir / "b.wav"), dtype="float32")
    assert np.abs(raw).max() > CEILING and "limiter" not in err
    # A gentle edit stays below the ceiling: the limited export is the raw one, bit for bit, and silent.
    for name, extra in (("c.wav", []), ("d.wav", ["--no-limit"])):
        rc, out, err = run(capsys, "steer", good_wav, "--sae", sae_dir, "--edit", f"{feat}:scale=0.5", "-o",
                           outdir / name, *extra)
        assert rc == 0 and "limiter" not in err, err
    c, _ = sf.read(str(outdir / "c.wav"), dtype="float32")
    d, _ = sf.read(str(outdir / "d.wav"), dtype="float32")
    assert np.abs(d).max() < CEILING and np.array_equal(c, d)


# --------------------------------------------------------------------------------------------------
# the bad-audio table of tests/core/test_audio.py, through `encode`


# Window arguments (start/duration) are not CLI flags: those rows are API-only.
WINDOW_ROWS = ("start past the end", "NaN start, inf duration")
CLI_BAD_INPUTS = [p for p in cases.BAD_INPUTS if p.id not in WINDOW_ROWS]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("build", CLI_BAD_INPUTS)
def test_encode_bad_audio(capsys: Cap, tmp_path: Path, outdir: Path, build: Any) -> None:
    src = tmp_path / "src"
    src.mkdir()
    path, kwargs = build(src)
    assert not kwargs
    out = outdir / "z.npy"
    rc, stdout, err = run(capsys, "encode", path, "-o", out)
    assert_contract_error(rc, err)
    assert stdout == ""
    assert list(outdir.iterdir()) == []


def test_native_decoder_chatter_stays_off_stderr(tmp_path: Path) -> None:
    """libmpg123 (inside libsndfile) prints to file descriptor 2 when it probes garbage; capsys cannot
    see that, so run the CLI in a real process and check the raw stderr, one invocation per file."""
    files = []
    for build in (cases._random_wav, cases._text_mp3, cases._random_flac, cases._hostile_name):
        path, _ = build(tmp_path)
        files.append(str(path))
    driver = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, sys.argv[1])
        import test_cli as t
        from workbench.core.codecs import registry
        registry._REGISTRY.clear()
        registry.register(registry.CodecEntry(
            id="fake", factory=lambda **_: t.FakeCodec(), summary=t._summary, aliases=("default",)))
        from workbench.cli import main
        for f in sys.argv[3:]:
            rc = main(["encode", f, "-o", sys.argv[2]])
            sys.stderr.flush()
            os.write(2, b"@@rc=%d@@" % rc)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_NATIVE_STDERR"}
    proc = subprocess.run(
        [sys.executable, "-c", driver, str(REPO / "tests"), str(tmp_path / "z.npy"), *files],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    chunks = proc.stderr.split("@@")
    # chunks: [msg, "rc=2", msg, "rc=2", ..., ""]
    msgs, rcs = chunks[0:-1:2], chunks[1:-1:2]
    assert rcs == ["rc=2"] * len(files), proc.stderr
    for msg in msgs:
        assert msg.startswith("error: ") and msg.count("\n") == 1 and msg.endswith("\n"), repr(proc.stderr)
    assert proc.stdout == ""


# --------------------------------------------------------------------------------------------------
# flags and codecs


def test_unknown_flag(capsys: Cap, good_wav: Path, outdir: Path) -> None:
    rc, _, err = run(capsys, "encode", good_wav, "-o", outdir / "z.npy", "--no-such-flag")
    assert_contract_error(rc, err)
    assert "--no-such-flag" in err
    assert list(outdir.iterdir()) == []


def test_missing_output(capsys: Cap, good_wav: Path) -> None:
    rc, _, err = run(capsys, "encode", good_wav)
    assert_contract_error(rc, err)
    assert "-o" in err


def test_missing_input(capsys: Cap) -> None:
    rc, _, err = run(capsys, "decode")
    assert_contract_error(rc, err)


def test_unknown_codec(capsys: Cap, good_wav: Path, outdir: Path) -> None:
    rc, _, err = run(capsys, "encode", good_wav, "--codec", "no-such-codec", "-o", outdir / "z.npy")
    assert_contract_error(rc, err)
    assert "no-such-codec" in err
    assert list(outdir.iterdir()) == []


@pytest.mark.parametrize("threads", ["0", "-3", "many"])
def test_bad_thread_count(capsys: Cap, good_wav: Path, outdir: Path, threads: str) -> None:
    rc, _, err = run(capsys, "encode", good_wav, "--threads", threads, "-o", outdir / "z.npy")
    assert_contract_error(rc, err)


def test_encode_output_not_npy(capsys: Cap, good_wav: Path, outdir: Path) -> None:
    rc, _, err = run(capsys, "encode", good_wav, "-o", outdir / "z.txt")
    assert_contract_error(rc, err)
    assert list(outdir.iterdir()) == []


def test_encode_output_folder_missing(capsys: Cap, good_wav: Path, outdir: Path) -> None:
    rc, _, err = run(capsys, "encode", good_wav, "-o", outdir / "nope" / "z.npy")
    assert_contract_error(rc, err)


def test_encode_output_is_a_folder(capsys: Cap, good_wav: Path, outdir: Path) -> None:
    (outdir / "z.npy").mkdir()
    rc, _, err = run(capsys, "encode", good_wav, "-o", outdir / "z.npy")
    assert_contract_error(rc, err)
    assert [p.name for p in outdir.iterdir()] == ["z.npy"] and (outdir / "z.npy").is_dir()


def test_failed_encode_keeps_existing_output(
    capsys: Cap, tmp_path: Path, outdir: Path
) -> None:
    out = outdir / "z.npy"
    out.write_bytes(b"previous result")
    path, _ = cases._random_wav(tmp_path)
    rc, _, err = run(capsys, "encode", path, "-o", out)
    assert_contract_error(rc, err)
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in outdir.iterdir()] == ["z.npy"]


# --------------------------------------------------------------------------------------------------
# bad latent files through `decode`


class _Tripwire:
    """Unpickling this creates a file: proof that a pickle inside a .npy was (not) executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def _latent_file(kind: str, d: Path) -> Path:
    p = d / f"{kind}.npy"
    if kind == "not npy (a WAV)":
        sf.write(str(p), np.zeros((1000, 1), np.float32), 16000, format="WAV")
    elif kind == "text":
        p.write_text("1 2 3\n4 5 6\n")
    elif kind == "empty file":
        p.write_bytes(b"")
    elif kind == "truncated npy":
        np.save(p, np.zeros((100, 8), np.float32))
        p.write_bytes(p.read_bytes()[:200])
    elif kind == "pickle object array":
        arr = np.empty((2, 8), dtype=object)
        arr[0, 0] = _Tripwire(d / "PWNED")
        with open(p, "wb") as f:
            np.save(f, arr, allow_pickle=True)
    elif kind == "raw pickle":
        p.write_bytes(pickle.dumps(_Tripwire(d / "PWNED")))
    elif kind == "3-D array":
        np.save(p, np.zeros((4, 10, 8), np.float32))
    elif kind == "1-D array":
        np.save(p, np.zeros(8, np.float32))
    elif kind == "wrong latent dim":
        np.save(p, np.zeros((10, 7), np.float32))
    elif kind == "no frames":
        np.save(p, np.zeros((0, 8), np.float32))
    elif kind == "NaN latents":
        z = np.zeros((10, 8), np.float32)
        z[3, 2] = np.nan
        np.save(p, z)
    elif kind == "complex dtype":
        np.save(p, np.zeros((10, 8), np.complex64))
    elif kind == "string dtype":
        np.save(p, np.full((10, 8), "x"))
    elif kind == "npz archive":
        p = d / "z.npz"
        np.savez(p, z=np.zeros((10, 8), np.float32))
    elif kind == "missing":
        pass
    elif kind == "folder":
        p.mkdir()
    elif kind == "FIFO":
        os.mkfifo(p)
    else:
        raise AssertionError(kind)
    return p


LATENT_KINDS = [
    "not npy (a WAV)", "text", "empty file", "truncated npy", "pickle object array", "raw pickle",
    "3-D array", "1-D array", "wrong latent dim", "no frames", "NaN latents", "complex dtype",
    "string dtype", "npz archive", "missing", "folder", "FIFO",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", LATENT_KINDS)
def test_decode_bad_latents(capsys: Cap, tmp_path: Path, outdir: Path, kind: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    path = _latent_file(kind, src)
    rc, stdout, err = run(capsys, "decode", path, "-o", outdir / "y.wav")
    assert_contract_error(rc, err)
    assert stdout == ""
    assert list(outdir.iterdir()) == []
    assert not (src / "PWNED").exists(), "a pickle inside the latent file was executed"


@pytest.mark.parametrize("name", ["y.mp3", "y", "nope/y.wav"])
def test_decode_bad_output(capsys: Cap, tmp_path: Path, outdir: Path, name: str) -> None:
    z = tmp_path / "z.npy"
    np.save(z, np.ones((10, 8), np.float32))
    rc, _, err = run(capsys, "decode", z, "-o", outdir / name)
    assert_contract_error(rc, err)
    assert list(outdir.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# the real entry point


def test_module_help_and_version() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    help_ = subprocess.run(
        [sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert help_.returncode == 0, help_.stderr
    assert "usage: workbench" in help_.stdout and "encode" in help_.stdout
    version = subprocess.run(
        [sys.executable, "-m", "workbench", "--version"], capture_output=True, text=True, timeout=60, env=env
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"workbench {__version__}"


def test_module_bad_flag_exit_code() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "encode", "--bogus"], capture_output=True, text=True, timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""


def test_train_codec_defaults_are_the_shipped_recipe_and_resume_only_upgrades_on_request() -> None:
    """A plain `workbench train-codec` trains what ships; `--resume` keeps the checkpoint's architecture."""
    import json as _json

    from workbench.cli import build_parser
    from workbench.commands.codec_train import RECIPE, recipe_model
    from workbench.core.errors import UsageError
    from workbench.core.resources import default_codec_dir

    shipped = _json.loads((default_codec_dir() / "config.json").read_text())["model"]
    args = build_parser().parse_args(["train-codec"])
    new = recipe_model(args, resuming=False)
    for key in ("latent_dim", "energy_latent", "encoder", "channels", "enc_blocks", "dec_blocks", "head_hidden"):
        assert new[key] == shipped[key], key
    assert RECIPE["steps"] == _json.loads((Path(default_codec_dir()) / "config.json").read_text())["step"]
    resumed = recipe_model(build_parser().parse_args(["train-codec", "--resume"]), resuming=True)
    assert resumed["latent_dim"] == 0 and resumed["energy_latent"] is False  # no upgrade unless asked
    asked = recipe_model(build_parser().parse_args(["train-codec", "--resume", "--energy-latent"]), resuming=True)
    assert asked["energy_latent"] is True
    off = recipe_model(build_parser().parse_args(["train-codec", "--no-energy-latent", "--encoder", "conv",
                                                  "--latent-dim", "64"]), resuming=False)
    assert (off["energy_latent"], off["encoder"], off["latent_dim"]) == (False, "conv", 64)
    with pytest.raises(UsageError):
        recipe_model(build_parser().parse_args(["train-codec", "--latent-dim", "200"]), resuming=False)
