"""The bad-input corpus: one table of generated inputs (audio files, SAE folders, default-codec weight
folders) and the documented outcome of each, shared by the CLI test (tests/test_bad_inputs.py) and the
app test (tests/app/test_bad_inputs_app.py), and rendered into docs/bad-inputs.md.

Each case builds its input in a temp folder (no binary blobs in the repo). Outcomes:

- ``ok``: the CLI command exits 0 and writes its output; the app opens the input without a dialog;
- ``error``: the CLI exits 2 with exactly one ``error: ...`` line matching `match` and writes nothing;
  the app shows exactly one one-line error dialog matching `match` and keeps what was open.

How each kind is opened — CLI: audio ``workbench encode FILE -o z.npy`` (and, for the ``ok`` rows,
``workbench steer FILE --sae SAE --edit 1:scale=0 -o y.wav``), SAE folders ``workbench activations
good.wav --sae DIR -o f.npy``, codec folders ``workbench encode good.wav --weights DIR -o z.npy``.
App: audio and SAE folders are dropped on the window (``MainWindow.open_path``); codec folders are the
embedded codec's folder (``WORKBENCH_RESOURCES``) when the codec is (re)loaded.

Not a test module (no ``test_`` prefix): the tests load it by path, as tests/test_cli.py does with the
audio table of tests/core/test_audio.py, whose builders the audio rows reuse.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
LATENT_DIM = 16  # the tiny codec's (and the app tests' conftest's)
D_SAE = 32


def _load(name: str, rel: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / rel)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


audio_cases = _load("_bad_inputs_audio_cases", "tests/core/test_audio.py")


class Tripwire:
    """Unpickling this creates `marker`: proof that a pickle was loaded (it never may be)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.write_text, (self.marker, "a pickle was unpickled"))


@dataclass
class Env:
    """Good material every case starts from (built once per test session)."""

    root: Path
    good_wav: Path
    good_sae: Path
    codec_dir: Path
    marker: Path

    @property
    def payload(self) -> bytes:
        return pickle.dumps(Tripwire(self.marker))


def make_tiny_codec(folder: Path, latent_dim: int = LATENT_DIM) -> Path:
    import torch

    from workbench.core.codecs.default_model import DefaultCodecConfig, SpectralAutoencoder
    from workbench.core.fileio import atomic_save_safetensors, atomic_write_json

    torch.manual_seed(0)
    cfg = DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=latent_dim)
    model = SpectralAutoencoder(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.dec_out.bias.fill_(-1.0)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(folder / "model.safetensors", dict(model.state_dict()))
    atomic_write_json(folder / "config.json", {"format": "workbench-default-codec", "model": cfg.to_dict()})
    return folder


def make_env(root: Path) -> Env:
    from workbench.core.sae_bridge import make_random_sae

    root.mkdir(parents=True, exist_ok=True)
    wav = root / "good.wav"
    t = np.arange(12000) / 24000
    sf.write(str(wav), (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 24000, subtype="PCM_16")
    sae = make_random_sae(root / "good_sae", LATENT_DIM, D_SAE, k=4, seed=3)
    codec = make_tiny_codec(root / "codec")
    return Env(root, wav, sae, codec, root / "UNPICKLED")


Builder = Callable[[Path, Env], Path]


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "audio" | "sae" | "codec"
    build: Builder
    outcome: str  # "ok" | "error"
    match: str = ""  # regex the one-line message must contain (errors)
    note: str = ""  # what the user gets, for the docs table


# -- audio ----------------------------------------------------------------------------------------------

def _from_audio_table(builder: Callable[[Path], tuple[Path, dict[str, Any]]]) -> Builder:
    def build(d: Path, env: Env) -> Path:
        p, kwargs = builder(d)
        assert not kwargs
        return p

    return build


def _write(name: str, x: np.ndarray, sr: int, subtype: str = "PCM_16", fmt: str | None = None) -> Builder:
    def build(d: Path, env: Env) -> Path:
        p = d / name
        sf.write(str(p), x, sr, subtype=subtype, format=fmt)
        return p

    return build


def _tone(seconds: float, sr: int, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(max(1, int(seconds * sr))) / sr
    x = amp * np.sin(2 * np.pi * 440 * t)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def _clipped(d: Path, env: Env) -> Path:
    x = np.clip(_tone(0.5, 24000, amp=3.0), -1.0, 1.0)  # hard-clipped square-ish wave at full scale
    p = d / "clipped.wav"
    sf.write(str(p), x, 24000, subtype="PCM_16")
    return p


def _over_full_scale(d: Path, env: Env) -> Path:
    p = d / "over_full_scale.wav"
    sf.write(str(p), _tone(0.5, 24000, amp=4.0), 24000, subtype="FLOAT")  # float WAV beyond +/-1
    return p


def _flac_named_wav(d: Path, env: Env) -> Path:
    p = d / "actually_flac.wav"
    sf.write(str(p), _tone(0.5, 22050), 22050, format="FLAC", subtype="PCM_16")
    return p


def _unicode_name(d: Path, env: Env) -> Path:
    p = d / "Klänge – ünïcødé 音.flac"
    sf.write(str(p), _tone(0.4, 32000), 32000, subtype="PCM_16")
    return p


def _wav_text(d: Path, env: Env) -> Path:
    p = d / "readme.wav"
    p.write_text("this is not audio\n" * 50)
    return p


def _pickle_as_wav(d: Path, env: Env) -> Path:
    p = d / "payload.wav"
    p.write_bytes(env.payload)
    return p


# -- SAE folders ------------------------------------------------------------------------------------------

def _sae(name: str, corrupt: Callable[[Path, Env], None] | None = None) -> Builder:
    def build(d: Path, env: Env) -> Path:
        p = d / name
        shutil.copytree(env.good_sae, p)
        if corrupt is not None:
            corrupt(p, env)
        return p

    return build


def _edit_cfg(**changes: Any) -> Callable[[Path, Env], None]:
    def corrupt(p: Path, env: Env) -> None:
        cfg = json.loads((p / "cfg.json").read_text())
        for k, v in changes.items():
            if v is _DELETE:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        (p / "cfg.json").write_text(json.dumps(cfg))

    return corrupt


_DELETE = object()


def _edit_weights(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path, Env], None]:
    def corrupt(p: Path, env: Env) -> None:
        from safetensors.torch import load_file, save_file

        w = load_file(str(p / "sae_weights.safetensors"))
        fn(w)
        save_file(w, str(p / "sae_weights.safetensors"))

    return corrupt


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(w: dict[str, Any]) -> None:
        w[name] = value(w[name]) if callable(value) else value

    return fn


def _poke(name: str, value: float) -> Callable[[dict[str, Any]], None]:
    def fn(w: dict[str, Any]) -> None:
        t = w[name].clone()
        t.view(-1)[1] = value
        w[name] = t

    return fn


def _write_file(rel: str, data: Callable[[Path, Env], bytes]) -> Callable[[Path, Env], None]:
    def corrupt(p: Path, env: Env) -> None:
        (p / rel).write_bytes(data(p, env))

    return corrupt


def _pickles_beside(p: Path, env: Env) -> None:
    for name in ("sae_weights.pt", "model.pkl", "pytorch_model.bin", "state.ckpt"):
        (p / name).write_bytes(env.payload)


def _only_pickles(d: Path, env: Env) -> Path:
    p = d / "only_pickles"
    p.mkdir()
    (p / "sae_weights.pt").write_bytes(env.payload)
    (p / "cfg.pkl").write_bytes(env.payload)
    return p


def _empty_folder(d: Path, env: Env) -> Path:
    p = d / "empty_folder"
    p.mkdir()
    return p


def _truncate(rel: str, keep: int) -> Callable[[Path, Env], None]:
    return _write_file(rel, lambda p, env: (p / rel).read_bytes()[:keep])


def _sae_8dim(p: Path, env: Env) -> None:
    import torch
    from safetensors.torch import save_file

    cfg = json.loads((p / "cfg.json").read_text())
    cfg["d_in"] = 8
    (p / "cfg.json").write_text(json.dumps(cfg))
    save_file({"W_enc": torch.randn(8, D_SAE), "b_enc": torch.zeros(D_SAE), "W_dec": torch.randn(D_SAE, 8),
               "b_dec": torch.zeros(8)}, str(p / "sae_weights.safetensors"))


def _header_lies(p: Path, env: Env) -> None:
    """A safetensors header whose offsets point past the end of the file."""
    raw = (p / "sae_weights.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["W_dec"]["data_offsets"] = [0, 10**9]
    h = json.dumps(header).encode()
    (p / "sae_weights.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + raw[8 + n :])


# -- default-codec weight folders -------------------------------------------------------------------------

def _codec(name: str, corrupt: Callable[[Path, Env], None] | None = None) -> Builder:
    def build(d: Path, env: Env) -> Path:
        p = d / name
        shutil.copytree(env.codec_dir, p)
        if corrupt is not None:
            corrupt(p, env)
        return p

    return build


def _codec_cfg(**changes: Any) -> Callable[[Path, Env], None]:
    def corrupt(p: Path, env: Env) -> None:
        meta = json.loads((p / "config.json").read_text())
        for k, v in changes.items():
            if k.startswith("model."):
                meta["model"][k[6:]] = v
            else:
                meta[k] = v
        (p / "config.json").write_text(json.dumps(meta))

    return corrupt


def _codec_weights(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path, Env], None]:
    def corrupt(p: Path, env: Env) -> None:
        from safetensors.torch import load_file, save_file

        w = load_file(str(p / "model.safetensors"))
        fn(w)
        save_file(w, str(p / "model.safetensors"))

    return corrupt


def _remove(rel: str) -> Callable[[Path, Env], None]:
    def corrupt(p: Path, env: Env) -> None:
        (p / rel).unlink()

    return corrupt


def _first_weight(w: dict[str, Any]) -> str:
    return sorted(k for k in w if k.endswith("weight"))[0]


def _codec_nan(w: dict[str, Any]) -> None:
    k = _first_weight(w)
    t = w[k].clone()
    t.view(-1)[0] = float("nan")
    w[k] = t


def _codec_int(w: dict[str, Any]) -> None:
    k = _first_weight(w)
    w[k] = w[k].to(__import__("torch").int32)


# -- the table ----------------------------------------------------------------------------------------------

A = audio_cases
CASES: list[Case] = [
    # audio that must fail with one line
    Case("missing file", "audio", _from_audio_table(A._missing), "error", "no such file"),
    Case("folder named .wav", "audio", _from_audio_table(A._directory), "error", "folder"),
    Case("empty file", "audio", _from_audio_table(A._empty), "error", "file is empty"),
    Case("WAV cut mid-header", "audio", _from_audio_table(A._cut_mid_header), "error", "not a readable audio file|no audio|no samples"),
    Case("WAV header claims absent data", "audio", _from_audio_table(A._header_claims_data_absent), "error", "no audio|no samples|not a readable"),
    Case("header-only WAV (0 frames)", "audio", _from_audio_table(A._header_only), "error", "no samples|no audio|not a readable"),
    Case("random bytes as .wav", "audio", _from_audio_table(A._random_wav), "error", "not a readable audio file"),
    Case("text file as .wav", "audio", _wav_text, "error", "not a readable audio file"),
    Case("text file as .mp3", "audio", _from_audio_table(A._text_mp3), "error", "not a readable audio file"),
    Case("pickle as .wav (never unpickled)", "audio", _pickle_as_wav, "error", "not a readable audio file"),
    Case("fLaC magic then random bytes", "audio", _from_audio_table(A._random_flac), "error", "not a readable audio file|no audio"),
    Case("corrupt FLAC body", "audio", _from_audio_table(A._corrupt_flac), "error", "no audio|not a readable"),
    Case("FLAC cut inside its first frame", "audio", _from_audio_table(A._flac_cut_in_first_frame), "error", "no audio|not a readable"),
    Case("NaN samples", "audio", _from_audio_table(A._float_wav_with(float("nan"), "nan.wav")), "error", "NaN or infinite"),
    Case("inf samples", "audio", _from_audio_table(A._float_wav_with(float("inf"), "inf.wav")), "error", "NaN or infinite"),
    Case("zero channels", "audio", _from_audio_table(A._zero_channels), "error", "channel|not a readable"),
    Case("100 channels", "audio", _from_audio_table(A._hundred_channels), "error", "100 channels"),
    Case("rate 1 Hz", "audio", _from_audio_table(A._rate(1)), "error", "sample rate|not a readable"),
    Case("rate 4 MHz", "audio", _from_audio_table(A._rate(4_000_000)), "error", "sample rate|not a readable"),
    Case("FIFO", "audio", _from_audio_table(A._fifo), "error", "not a regular file"),
    Case("/dev/null", "audio", _from_audio_table(A._dev_null), "error", "not a regular file"),
    Case("name too long", "audio", _from_audio_table(A._name_too_long), "error", "cannot access|name too long|no such file"),
    Case("dangling symlink", "audio", _from_audio_table(A._dangling_symlink), "error", "no such file"),
    Case("parent is a file", "audio", _from_audio_table(A._parent_is_a_file), "error", "no such file|not a folder"),
    Case("newline and escape in the name", "audio", _from_audio_table(A._hostile_name), "error", "not a readable audio file"),
    # odd audio that must work (CLI: encode and steer)
    Case("8 channels, 48 kHz", "audio", _write("eight.wav", _tone(0.5, 48000, 8), 48000), "ok", note="downmixed (ITU 7.1 weights) to mono"),
    Case("192 kHz stereo, 24-bit", "audio", _write("hires.flac", _tone(0.5, 192000, 2), 192000, "PCM_24"), "ok", note="resampled (soxr HQ)"),
    Case("8 kHz mono", "audio", _write("phone.wav", _tone(0.5, 8000), 8000), "ok", note="resampled up"),
    Case("1 sample", "audio", _write("one_sample.wav", np.full((1, 1), 0.5, np.float32), 24000), "ok", note="one latent frame; the output is 1 sample"),
    Case("all silent", "audio", _write("silence.wav", np.zeros((12000, 1), np.float32), 24000), "ok", note="silence in, (near) silence out"),
    Case("clipped at full scale", "audio", _clipped, "ok"),
    Case("float WAV beyond full scale (+12 dB)", "audio", _over_full_scale, "ok", note="read as is; written output is clipped to [-1, 1]"),
    Case("FLAC under a .wav name", "audio", _flac_named_wav, "ok", note="the content decides, not the extension"),
    Case("unicode file name", "audio", _unicode_name, "ok"),
    Case("MP3", "audio", _write("song.mp3", _tone(0.5, 44100, 2), 44100, "MPEG_LAYER_III", "MP3"), "ok"),
    # SAE folders
    Case("good SAE folder (control)", "sae", _sae("good"), "ok"),
    Case("pickles beside the weights (never loaded)", "sae", _sae("with_pickles", _pickles_beside), "ok",
         note="loads from safetensors/JSON only; the pickles are never opened"),
    Case("only pickle files", "sae", _only_pickles, "error", "pickle"),
    Case("pickle under the safetensors name", "sae", _sae("disguised", _write_file("sae_weights.safetensors", lambda p, e: e.payload)), "error", "not a valid safetensors"),
    Case("truncated safetensors", "sae", _sae("truncated", _truncate("sae_weights.safetensors", 300)), "error", "not a valid safetensors"),
    Case("safetensors offsets past the end", "sae", _sae("header_lies", _header_lies), "error", "not a valid safetensors"),
    Case("integer-typed tensor", "sae", _sae("int_tensor", _edit_weights(_set("b_enc", lambda t: t.to(__import__("torch").int32)))), "error", "dtype"),
    Case("float16 weights", "sae", _sae("half", _edit_weights(lambda w: w.update({k: v.half() for k, v in w.items()}))), "ok", note="loaded as float32"),
    Case("W_enc transposed", "sae", _sae("transposed", _edit_weights(_set("W_enc", lambda t: t.T.contiguous()))), "error", "shape"),
    Case("missing tensor b_dec", "sae", _sae("no_b_dec", _edit_weights(lambda w: w.pop("b_dec"))), "error", "'b_dec' is missing"),
    Case("NaN weight", "sae", _sae("nan", _edit_weights(_poke("W_dec", float("nan")))), "error", "NaN or infinite"),
    Case("inf weight", "sae", _sae("inf", _edit_weights(_poke("b_enc", float("inf")))), "error", "NaN or infinite"),
    Case("d_in 8 vs the codec's 16", "sae", _sae("dim8", _sae_8dim), "error", "8-dim latents"),
    Case("cfg.json without d_in", "sae", _sae("no_d_in", _edit_cfg(d_in=_DELETE)), "error", "'d_in' must be"),
    Case("cfg.json with extra keys", "sae", _sae("extra_keys", _edit_cfg(hook_layer=7, context_size=128, prepend_bos=True, model_from_pretrained_kwargs={"a": 1})), "ok",
         note="unknown keys are ignored (SAELens writes many)"),
    Case("cfg.json not JSON", "sae", _sae("bad_json", _write_file("cfg.json", lambda p, e: b"{architecture: topk")), "error", "not valid JSON"),
    Case("cfg.json is a list", "sae", _sae("json_list", _write_file("cfg.json", lambda p, e: b"[1, 2, 3]")), "error", "JSON object"),
    Case("unknown architecture", "sae", _sae("gated", _edit_cfg(architecture="gated")), "error", "not supported"),
    Case("k larger than d_sae", "sae", _sae("big_k", _edit_cfg(k=D_SAE + 1)), "error", "'k' must be"),
    Case("d_sae of 10^12 in cfg.json", "sae", _sae("huge", _edit_cfg(d_sae=10**12)), "error", "shape",
         note="refused on the tensor shapes before anything is allocated"),
    Case("cfg.json only (no weights)", "sae", _sae("no_weights", _remove("sae_weights.safetensors")), "error", "no sae_weights"),
    Case("empty folder", "sae", _empty_folder, "error", "not an SAE folder"),
    Case("workbench.json max_activation of wrong length", "sae",
         _sae("bad_max", _write_file("workbench.json", lambda p, e: json.dumps({"format": "workbench-sae", "max_activation": [1.0, 2.0]}).encode())),
         "error", "max_activation"),
    Case("sparsity.safetensors garbage", "sae", _sae("bad_sparsity", _write_file("sparsity.safetensors", lambda p, e: b"\x00" * 64)), "error", "not a valid safetensors"),
    # default-codec weight folders
    Case("codec: model.safetensors missing", "codec", _codec("no_model", _remove("model.safetensors")), "error", "weights not found"),
    Case("codec: truncated model.safetensors", "codec", _codec("truncated", _truncate("model.safetensors", 1000)), "error", "not a valid safetensors"),
    Case("codec: pickle as model.safetensors", "codec", _codec("pickled", _write_file("model.safetensors", lambda p, e: e.payload)), "error", "not a valid safetensors"),
    Case("codec: config.json not JSON", "codec", _codec("bad_json", _write_file("config.json", lambda p, e: b"{model: ")), "error", "invalid default codec config"),
    Case("codec: latent_dim differs from the weights", "codec", _codec("dim_mismatch", _codec_cfg(**{"model.latent_dim": 24})), "error", "do not match the config"),
    Case("codec: wrong-typed config value", "codec", _codec("typed", _codec_cfg(**{"model.channels": "many"})), "error", "invalid default codec config"),
    Case("codec: absurd size in config", "codec", _codec("absurd", _codec_cfg(**{"model.channels": 10**9})), "error", "invalid default codec config"),
    Case("codec: unknown encoder in config", "codec", _codec("encoder", _codec_cfg(**{"model.encoder": "transformer"})), "error", "invalid default codec config"),
    Case("codec: phase peak floor above 0 dB", "codec", _codec("peak_floor", _codec_cfg(**{"model.peak_floor_db": 6.0})), "error", "invalid default codec config"),
    Case("codec: phase inversion rounds out of range", "codec", _codec("phase_iters", _codec_cfg(**{"model.phase_iters": 100})), "error", "invalid default codec config"),
    Case("codec: hop does not divide the window", "codec", _codec("hop", _codec_cfg(**{"model.hop": 300})), "error", "invalid default codec config"),
    Case("codec: NaN weight", "codec", _codec("nan", _codec_weights(_codec_nan)), "error", "NaN or infinite"),
    Case("codec: integer weights", "codec", _codec("int", _codec_weights(_codec_int)), "error", "dtype"),
    Case("codec: extra keys in config.json", "codec", _codec("extra", _codec_cfg(trained_by="someone", **{"model.future_option": 3})), "ok",
         note="unknown keys are ignored"),
]

MARKDOWN_BEGIN = "<!-- bad-input table: generated from tests/bad_inputs.py; tests/test_bad_inputs.py checks it -->"
MARKDOWN_END = "<!-- end of generated table -->"


def markdown_table() -> str:
    rows = ["| # | kind | input | outcome (CLI and app) |", "|---|---|---|---|"]
    for i, c in enumerate(CASES, 1):
        if c.outcome == "ok":
            out = "works" + (f": {c.note}" if c.note else "")
        else:
            out = f"one-line error matching `{c.match}`" + (f" ({c.note})" if c.note else "")
        rows.append(f"| {i} | {c.kind} | {c.id} | {out} |")
    return "\n".join([MARKDOWN_BEGIN, *rows, MARKDOWN_END])


def skip_reason(case: Case) -> str | None:
    if case.id == "FIFO" and not hasattr(os, "mkfifo"):
        return "no FIFOs on this platform"
    if case.id == "/dev/null" and os.name != "posix":
        return "POSIX only"
    return None


if __name__ == "__main__":
    print(markdown_table())
