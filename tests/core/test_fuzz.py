"""Property-based fuzzing (hypothesis) of everything that reads user-supplied files or text: the audio
loader, the SAE folder loader (cfg.json, safetensors, workbench.json), the session loader and the
edit-spec parser. The property is the error contract: each input either loads or raises a
`WorkbenchError` with one line; nothing else escapes (no IndexError, MemoryError, RecursionError, ...).

Example counts are modest so CI stays fast; raise them locally with ``HYPOTHESIS_FUZZ_SCALE=20``.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from workbench.core.audio import audio_info, iter_blocks, load_audio
from workbench.core.errors import WorkbenchError
from workbench.core.sae.io import load_sae
from workbench.core.session import FORMAT, load_session
from workbench.core.steering import parse_edit

SCALE = max(1, int(os.environ.get("HYPOTHESIS_FUZZ_SCALE", "1")))


def fuzz(n: int) -> Any:
    return settings(max_examples=n * SCALE, deadline=None, database=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


def contract(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call; a WorkbenchError must be one non-empty line. Anything else propagates (= a found bug)."""
    try:
        return fn(*args, **kwargs)
    except WorkbenchError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 1000, repr(msg)
        return None


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wb-fuzz-") as d:
        yield Path(d)


# -- JSON values -------------------------------------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from([0, 1, -1, 2**31, 2**63, 10**12, 1e308, -0.0, "", "none", "topk", "64"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


def dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=True)


# -- audio -------------------------------------------------------------------------------------------

def _seed_files() -> dict[str, bytes]:
    t = np.arange(1600) / 8000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None]
    out = {}
    for ext, fmt, sub in ((".wav", "WAV", "PCM_16"), (".wav", "WAV", "FLOAT"), (".flac", "FLAC", "PCM_16"),
                          (".ogg", "OGG", "VORBIS")):
        buf = io.BytesIO()
        sf.write(buf, np.repeat(x, 2, axis=1) if sub == "FLOAT" else x, 8000, format=fmt, subtype=sub)
        out[f"{sub.lower()}{ext}"] = buf.getvalue()
    return out


SEEDS = _seed_files()


@st.composite
def mutated_audio(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "set32", "truncate", "insert", "delete"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= draw(st.integers(1, 255))
        elif op == "set32" and i + 4 <= len(data):
            data[i : i + 4] = struct.pack("<I", draw(st.sampled_from([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 64, 2**16])))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 64))]
    ext = draw(st.sampled_from([name[name.index("."):], ".wav", ".mp3", ".flac", ".bin"]))
    return ext, bytes(data)


@pytest.mark.timeout(240)
@fuzz(25)
@given(case=mutated_audio(), window=st.sampled_from([{}, {"start": 0.05, "duration": 0.1}]))
def test_fuzz_audio_loader(scratch: Path, case: tuple[str, bytes], window: dict[str, float]) -> None:
    ext, data = case
    p = scratch / f"fuzz{ext}"
    p.write_bytes(data)
    clip = contract(load_audio, p, 24000, 1, **window)
    if clip is not None:
        assert clip.sample_rate == 24000 and clip.channels == 1 and clip.num_samples > 0
        assert np.isfinite(clip.samples).all()
    contract(audio_info, p)
    contract(lambda: sum(b.num_samples for b in iter_blocks(p, 0.05, 16000, 2)))


@pytest.mark.timeout(120)
@fuzz(15)
@given(data=st.binary(max_size=512), ext=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".aiff"]))
def test_fuzz_audio_loader_random_bytes(scratch: Path, data: bytes, ext: str) -> None:
    p = scratch / f"raw{ext}"
    p.write_bytes(data)
    contract(load_audio, p, 16000, 1)


# -- SAE folders -------------------------------------------------------------------------------------

D_IN, D_SAE = 4, 6


def _weights(arch: str = "topk") -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    w = {"W_enc": torch.randn(D_IN, D_SAE, generator=g), "b_enc": torch.zeros(D_SAE),
         "W_dec": torch.randn(D_SAE, D_IN, generator=g), "b_dec": torch.zeros(D_IN)}
    if arch == "jumprelu":
        w["threshold"] = torch.full((D_SAE,), 0.1)
    if arch == "relu-rmsnorm":
        w["rms_weight"] = torch.ones(D_SAE)
    return w


def _cfg(arch: str = "topk") -> dict[str, Any]:
    cfg: dict[str, Any] = {"architecture": arch, "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
                           "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
                           "metadata": {"model_name": "default", "hook_name": "continuous"}}
    if arch == "topk":
        cfg["k"] = 2
    return cfg


def _workbench_json() -> dict[str, Any]:
    return {"format": "workbench-sae", "version": 1, "codec": "default", "latent_kind": "continuous",
            "frame_rate": 75.0, "architecture": "topk", "k": 2, "max_activation": [1.0] * D_SAE,
            "codec_info": {"id": "default", "frame_rate": 75.0}}


def _write_folder(d: Path, cfg: Any, weights: bytes, wb: Any | None, sparsity: bytes | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    (d / "cfg.json").write_text(cfg if isinstance(cfg, str) else dumps(cfg))
    (d / "sae_weights.safetensors").write_bytes(weights)
    if wb is not None:
        (d / "workbench.json").write_text(dumps(wb))
    if sparsity is not None:
        (d / "sparsity.safetensors").write_bytes(sparsity)
    return d


def check_loaded(sae: Any) -> None:
    if sae is None:
        return
    info = sae.info
    # What the app and CLI read from `info` must have the documented types, whatever the JSON said.
    for name in ("codec_id", "latent_kind", "trained_architecture"):
        v = getattr(info, name)
        assert v is None or isinstance(v, str), (name, v)
    assert info.frame_rate is None or (isinstance(info.frame_rate, float) and math.isfinite(info.frame_rate)
                                       and info.frame_rate > 0), info.frame_rate
    z = np.random.default_rng(0).standard_normal((3, sae.d_in)).astype(np.float32)
    f = sae.encode_np(z)
    assert f.shape == (3, sae.d_sae) and np.isfinite(f).all()


CFG_KEYS = ["architecture", "d_in", "d_sae", "k", "apply_b_dec_to_input", "normalize_activations",
            "reshape_activations", "rms_eps", "rescale_acts_by_decoder_norm", "metadata", "activation_fn",
            "activation_fn_str", "activation_fn_kwargs", "hook_name", "model_name", "dtype"]


@pytest.mark.timeout(120)
@fuzz(80)
@given(arch=st.sampled_from(["topk", "standard", "jumprelu", "relu-rmsnorm"]),
       changes=st.dictionaries(st.sampled_from(CFG_KEYS), JSON | st.just("<del>"), max_size=3),
       whole=st.none() | JSON)
def test_fuzz_sae_cfg_json(scratch: Path, arch: str, changes: dict[str, Any], whole: Any) -> None:
    cfg: Any = _cfg(arch)
    for k, v in changes.items():
        if v == "<del>":
            cfg.pop(k, None)
        else:
            cfg[k] = v
    if whole is not None and not changes:
        cfg = whole  # a JSON value of any shape as the whole file
    d = _write_folder(scratch / "sae_cfg", cfg, save(_weights(arch)), _workbench_json() if arch == "topk" else None)
    check_loaded(contract(load_sae, d, latent_dim=D_IN))


@pytest.mark.timeout(120)
@fuzz(60)
@given(changes=st.dictionaries(st.sampled_from(["format", "codec", "codec_info", "latent_kind", "frame_rate",
                                                 "architecture", "k", "max_activation", "max_activation_prenorm",
                                                 "metrics", "training"]),
                               JSON | st.lists(st.floats(allow_nan=True), min_size=D_SAE, max_size=D_SAE),
                               max_size=3),
       arch=st.sampled_from(["topk", "jumprelu"]))
def test_fuzz_workbench_json(scratch: Path, changes: dict[str, Any], arch: str) -> None:
    wb = {**_workbench_json(), **changes}
    d = _write_folder(scratch / "sae_wb", _cfg(arch), save(_weights(arch)), wb)
    check_loaded(contract(load_sae, d))


TENSOR_NAMES = ["W_enc", "b_enc", "W_dec", "b_dec", "threshold", "log_threshold", "rms_weight", "scaling_factor",
                "sparsity"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int8, torch.bool,
          torch.uint8]


@st.composite
def tensor_dicts(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    w = _weights("topk")
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(TENSOR_NAMES))
        op = draw(st.sampled_from(["drop", "shape", "dtype", "value", "scalar"]))
        if op == "drop":
            w.pop(name, None)
            continue
        if op == "shape":
            shape = draw(st.lists(st.integers(0, 7), min_size=0, max_size=3))
            w[name] = torch.zeros(shape)
        elif op == "dtype" and name in w:
            w[name] = w[name].to(draw(st.sampled_from(DTYPES)))
        elif op == "value" and name in w and w[name].numel():
            t = w[name].clone().float()
            t.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e38, 0.0]))
            w[name] = t
        elif op == "scalar":
            w[name] = torch.tensor(draw(st.floats(allow_nan=True)))
    return w


@st.composite
def safetensors_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(save(draw(tensor_dicts())))
    mode = draw(st.sampled_from(["as is", "header", "bytes", "truncate"]))
    if mode == "header" and len(data) > 8:
        n = struct.unpack("<Q", bytes(data[:8]))[0]
        header = json.loads(bytes(data[8 : 8 + n]))
        key = draw(st.sampled_from(sorted(header)))
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "whole"]))
        if field == "whole":
            header[key] = draw(JSON)
        elif isinstance(header[key], dict):
            header[key][field] = draw(JSON | st.sampled_from([[0, 10**12], [5, 2], "F64", "I64", [2, 2, 2], [-1]]))
        raw = json.dumps(header).encode()
        data = bytearray(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    elif mode == "bytes":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    elif mode == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    return bytes(data)


@pytest.mark.timeout(120)
@fuzz(80)
@given(weights=safetensors_bytes(), sparsity=st.none() | safetensors_bytes())
def test_fuzz_sae_safetensors(scratch: Path, weights: bytes, sparsity: bytes | None) -> None:
    d = _write_folder(scratch / "sae_st", _cfg("topk"), weights, _workbench_json(), sparsity)
    check_loaded(contract(load_sae, d, latent_dim=D_IN))


def test_huge_declared_sizes_are_refused_before_any_allocation(tmp_path: Path) -> None:
    """A cfg.json claiming d_sae = 10^12 with tiny tensors must not try to allocate 4 TB first."""
    for d_in, d_sae in ((10**12, D_SAE), (D_IN, 10**12), (2**40, 2**40)):
        cfg = {**_cfg("standard"), "d_in": d_in, "d_sae": d_sae}
        d = _write_folder(tmp_path / "huge", cfg, save(_weights("standard")), None)
        with pytest.raises(WorkbenchError, match="shape"):
            load_sae(d)


# -- sessions ----------------------------------------------------------------------------------------

SESSION_KEYS = ["audio", "codec", "sae", "edits", "selected_features", "ab", "loop", "schema_version", "format"]
EDIT_KEYS = ["feature", "mode", "value", "t0", "t1", "fade", "prop", "target", "relative"]


@st.composite
def session_docs(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {"format": FORMAT, "schema_version": 1, "audio": {"path": "/x/a.wav", "relative": "a.wav"},
                           "codec": "default", "sae": None,
                           "edits": [{"feature": 1, "mode": "scale", "value": 0.5, "t0": None, "t1": None}],
                           "selected_features": [1, 2], "ab": "B", "loop": [0.0, 1.0]}
    for k, v in draw(st.dictionaries(st.sampled_from(SESSION_KEYS), JSON, max_size=3)).items():
        doc[k] = v
    if draw(st.booleans()):
        edit = dict(doc["edits"][0]) if isinstance(doc.get("edits"), list) and doc["edits"] and isinstance(doc["edits"][0], dict) else {}
        edit.update(draw(st.dictionaries(st.sampled_from(EDIT_KEYS),
                                         JSON | st.sampled_from(["probe", "pitch", "add", 1e400, -5]), max_size=4)))
        doc["edits"] = [edit]
    return doc


@pytest.mark.timeout(120)
@fuzz(80)
@given(doc=session_docs())
def test_fuzz_session_loader(scratch: Path, doc: Any) -> None:
    p = scratch / "s.wbsession.json"
    p.write_text(dumps(doc))
    s = contract(load_session, p)
    if s is not None:
        assert all(isinstance(i, int) and i >= 0 for i in s.selected_features)
        assert s.ab in ("A", "B") and isinstance(s.codec, str)
        assert s.audio is None or isinstance(s.audio, str)
        assert s.loop is None or (len(s.loop) == 2 and all(math.isfinite(x) for x in s.loop))
        for e in s.edits:
            assert math.isfinite(e.value)


@pytest.mark.timeout(60)
@fuzz(40)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_session_loader_raw_bytes(scratch: Path, raw: bytes) -> None:
    p = scratch / "raw.wbsession.json"
    p.write_bytes(raw)
    contract(load_session, p)


def test_deeply_nested_session_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(WorkbenchError):
        load_session(p)


# -- edit specs --------------------------------------------------------------------------------------

SPEC_ALPHABET = st.sampled_from(list("0123456789:=@-+.eE ,") + ["scale", "add", "set", "probe", "pitch", "loudness",
                                                                   "timbre", "inf", "nan", "A4", "C#3", "\u0663", "\x00"])


@pytest.mark.timeout(60)
@fuzz(150)
@given(spec=st.lists(SPEC_ALPHABET, max_size=14).map("".join) | st.text(max_size=60)
       | st.from_regex(r"\d{1,4}:(scale|add|set)=-?\d*\.?\d*(e-?\d{1,4})?(@\d*\.?\d*-\d*\.?\d*)?", fullmatch=True)
       | st.from_regex(r"probe:(pitch|loudness|timbre)=[-+]?\d{1,3}(:\d*\.?\d*)?(@\d*-\d*)?", fullmatch=True))
def test_fuzz_edit_spec_parser(spec: str) -> None:
    e = contract(parse_edit, spec)
    if e is not None:
        assert math.isfinite(e.value)
        assert e.t0 is None or e.t1 is None or 0 <= e.t0 < e.t1
        # A parsed edit prints a spec that parses back to (nearly: `spec` rounds to 6 digits) itself.
        again = contract(parse_edit, e.spec())
        if again is not None:
            assert (again.feature, again.mode) == (e.feature, e.mode)
            assert math.isclose(again.value, e.value, rel_tol=1e-5, abs_tol=1e-9), (spec, e.spec())


def test_non_string_specs_are_usage_errors() -> None:
    for spec in (None, 3, b"1:scale=0", ["1:scale=0"], "1:scale=0" * 40):
        with pytest.raises(WorkbenchError):
            parse_edit(spec)  # type: ignore[arg-type]
