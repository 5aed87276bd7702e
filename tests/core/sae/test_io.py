"""SAE folders: our layout (SAELens v6 conventions) round-trips bit-exactly and gives the same outputs
through SAELens's documented formulas; SAELens and sparsify folders load; bad folders give one line;
pickles are never unpickled."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from workbench.core.errors import ModelFileError
from workbench.core.sae.io import load_sae, save_sae
from workbench.core.sae.model import SAE

D_IN, D_SAE = 8, 24


def random_sae(arch: str, seed: int = 0) -> SAE:
    torch.manual_seed(seed)
    sae = SAE(D_IN, D_SAE, arch, k=4 if arch in ("topk", "batchtopk") else None, rms_eps=1e-5)
    sae.init_weights()
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.2)
        sae.b_dec.normal_(0, 1.0)
        if arch in ("batchtopk", "jumprelu"):
            sae.threshold.fill_(0.15)
        if arch == "relu-rmsnorm":
            sae.rms_weight.uniform_(0.1, 1.0)
    return sae.eval()


def latents(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, D_IN)).astype(np.float32)


# -- reference implementations of the documented formulas (independent of our model code) ----------

def ref_saelens(folder: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features and reconstruction as SAELens computes them from cfg.json + sae_weights.safetensors."""
    cfg = json.loads((folder / "cfg.json").read_text())
    w = {k: v.double().numpy() for k, v in load_file(str(folder / "sae_weights.safetensors")).items()}
    xin = x - w["b_dec"] if cfg.get("apply_b_dec_to_input", True) else x
    h = xin @ w["W_enc"] + w["b_enc"]
    arch = cfg["architecture"]
    dec_scale = np.ones(w["W_dec"].shape[0])
    if arch == "standard":
        f = np.maximum(h, 0)
    elif arch == "jumprelu":
        f = np.maximum(h, 0) * (h > np.maximum(w["threshold"], 0))
    elif arch == "topk":
        if cfg.get("rescale_acts_by_decoder_norm"):
            dec_scale = np.linalg.norm(w["W_dec"], axis=1)
            h = h * dec_scale
        f = np.zeros_like(h)
        idx = np.argsort(-h, axis=1)[:, : cfg["k"]]
        np.put_along_axis(f, idx, np.maximum(np.take_along_axis(h, idx, 1), 0), 1)
    else:
        raise AssertionError(arch)
    return f, (f / dec_scale) @ w["W_dec"] + w["b_dec"]


def ref_rmsnorm(folder: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cfg = json.loads((folder / "cfg.json").read_text())
    w = {k: v.double().numpy() for k, v in load_file(str(folder / "sae_weights.safetensors")).items()}
    u = np.maximum((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"], 0)
    f = w["rms_weight"] * u / np.sqrt((u**2).mean(axis=1, keepdims=True) + cfg["rms_eps"])
    return f, f @ w["W_dec"] + w["b_dec"]


# -- round trip ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["topk", "batchtopk", "relu", "relu-rmsnorm"])
def test_save_load_round_trip_is_bit_exact(tmp_path: Path, arch: str) -> None:
    sae = random_sae(arch)
    rng = np.random.default_rng(1)
    maxact = rng.uniform(0.5, 3, D_SAE).astype(np.float32)
    dens = np.log10(rng.uniform(1e-4, 0.5, D_SAE)).astype(np.float32)
    out = save_sae(sae, tmp_path / "sae", codec_id="default", latent_kind="continuous", frame_rate=75.0,
                   max_activation=maxact, log10_density=dens, metrics={"validation": {"fvu": 0.05}},
                   max_activation_prenorm=maxact * 2 if arch == "relu-rmsnorm" else None)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["cfg.json", "sae_weights.safetensors", "sparsity.safetensors", "workbench.json"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "cfg.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    got = load_sae(out, latent_dim=D_IN)
    assert got.architecture == arch and got.k == sae.k and got.d_in == D_IN and got.d_sae == D_SAE
    a, b = sae.state_dict(), got.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    z = latents()
    assert np.array_equal(sae.encode_np(z), got.encode_np(z))
    assert np.array_equal(sae.reconstruct_np(z), got.reconstruct_np(z))
    info = got.info
    assert info.source == "workbench" and info.codec_id == "default" and info.latent_kind == "continuous"
    assert info.frame_rate == 75.0 and info.trained_architecture == arch
    assert np.array_equal(info.max_activation, maxact) and np.array_equal(info.log10_density, dens)
    assert info.workbench["metrics"]["validation"]["fvu"] == 0.05


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "relu", "relu-rmsnorm"])
def test_saved_folder_follows_the_saelens_conventions(tmp_path: Path, arch: str) -> None:
    sae = random_sae(arch, seed=3)
    out = save_sae(sae, tmp_path / "sae", codec_id="encodec-24khz", latent_kind="quantized:6",
                   log10_density=np.full(D_SAE, -2.0, np.float32))
    cfg = json.loads((out / "cfg.json").read_text())
    saved = {"topk": "topk", "batchtopk": "jumprelu", "relu": "standard", "relu-rmsnorm": "relu-rmsnorm"}[arch]
    assert cfg["architecture"] == saved
    assert cfg["d_in"] == D_IN and cfg["d_sae"] == D_SAE and cfg["dtype"] == "float32" and cfg["device"] == "cpu"
    assert cfg["apply_b_dec_to_input"] is True and cfg["normalize_activations"] == "none"
    assert cfg["metadata"]["model_name"] == "encodec-24khz" and cfg["metadata"]["hook_name"] == "quantized:6"
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")
    if saved == "topk":
        assert cfg["k"] == 4 and cfg["rescale_acts_by_decoder_norm"] is False
    w = load_file(str(out / "sae_weights.safetensors"))
    shapes = {k: tuple(v.shape) for k, v in w.items()}
    expect = {"W_enc": (D_IN, D_SAE), "b_enc": (D_SAE,), "W_dec": (D_SAE, D_IN), "b_dec": (D_IN,)}
    if saved == "jumprelu":
        expect["threshold"] = (D_SAE,)
    if arch == "relu-rmsnorm":
        expect["rms_weight"] = (D_SAE,)
    assert shapes == expect
    assert all(v.dtype == torch.float32 for v in w.values())
    sp = load_file(str(out / "sparsity.safetensors"))
    assert list(sp) == ["sparsity"] and tuple(sp["sparsity"].shape) == (D_SAE,)
    x = latents(100, seed=5)
    f_ref, y_ref = (ref_rmsnorm if arch == "relu-rmsnorm" else ref_saelens)(out, x)
    np.testing.assert_allclose(sae.encode_np(x), f_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sae.reconstruct_np(x), y_ref, rtol=1e-4, atol=1e-5)


def test_saving_over_an_existing_folder_replaces_it_and_failures_leave_it(tmp_path: Path) -> None:
    a, b = random_sae("relu", 1), random_sae("relu", 2)
    out = tmp_path / "sae"
    save_sae(a, out)
    (out / "labels.json").write_text("{}")
    save_sae(b, out)
    assert not (out / "labels.json").exists()  # a new SAE: old labels would be wrong
    assert torch.equal(load_sae(out).W_enc, b.W_enc)
    with torch.no_grad():
        a.W_dec[0, 0] = float("nan")
    with pytest.raises(ModelFileError):
        save_sae(a, out)
    assert torch.equal(load_sae(out).W_enc, b.W_enc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sae"]


def test_saving_never_replaces_a_folder_that_is_not_an_sae(tmp_path: Path) -> None:
    music = tmp_path / "Music"
    music.mkdir()
    (music / "song.flac").write_bytes(b"precious")
    with pytest.raises(ModelFileError, match="not an SAE folder") as e:
        save_sae(random_sae("relu"), music)
    assert "\n" not in str(e.value) and (music / "song.flac").read_bytes() == b"precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFileError, match="not a folder"):
        save_sae(random_sae("relu"), tmp_path / "file")
    (tmp_path / "empty").mkdir()
    save_sae(random_sae("relu"), tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty" / "cfg.json").is_file()


# -- SAELens and sparsify folders ----------------------------------------------------------------------

def saelens_folder(root: Path, arch: str, seed: int = 0, **cfg_extra: Any) -> Path:
    """A folder as SAELens v6 writes it (cfg.json + sae_weights.safetensors), non-unit decoder rows."""
    g = torch.Generator().manual_seed(seed)
    t = {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g) * 0.5,
        "b_enc": torch.randn(D_SAE, generator=g) * 0.1,
        "W_dec": torch.randn(D_SAE, D_IN, generator=g) * 0.3,
        "b_dec": torch.randn(D_IN, generator=g) * 0.2,
    }
    if arch == "jumprelu":
        t["threshold"] = torch.rand(D_SAE, generator=g) * 0.3
    cfg: dict[str, Any] = {
        "architecture": arch, "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": arch != "jumprelu", "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {"model_name": "gpt2", "hook_name": "blocks.3.hook_resid_post", "sae_lens_version": "6.12.1"},
    }
    if arch == "topk":
        cfg["k"] = 5
    cfg.update(cfg_extra)
    d = root / f"saelens-{arch}-{seed}"
    d.mkdir()
    (d / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(d / "sae_weights.safetensors"))
    return d


@pytest.mark.parametrize(("arch", "extra"), [
    ("standard", {}),
    ("topk", {}),
    ("topk", {"rescale_acts_by_decoder_norm": True}),
    ("jumprelu", {}),
], ids=["standard", "topk", "topk-rescaled", "jumprelu"])
def test_loads_saelens_folders_with_their_outputs(tmp_path: Path, arch: str, extra: dict) -> None:
    d = saelens_folder(tmp_path, arch, **extra)
    sae = load_sae(d, latent_dim=D_IN)
    assert sae.info.source == "saelens" and sae.info.codec_id == "gpt2"
    assert sae.info.latent_kind == "blocks.3.hook_resid_post" and sae.info.max_activation is None
    x = latents(80, seed=2)
    f_ref, y_ref = ref_saelens(d, x)
    np.testing.assert_allclose(sae.encode_np(x), f_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sae.reconstruct_np(x), y_ref, rtol=1e-4, atol=1e-5)
    # Steering's linear decode: z + (f' - f) @ W_dec must equal decoding f' directly.
    f = sae.encode_np(x)
    f2 = f.copy()
    f2[:, 1] += 0.7
    np.testing.assert_allclose(sae.decode_np(f) + (f2 - f) @ sae.W_dec_np, sae.decode_np(f2), rtol=1e-5, atol=1e-5)


def test_loads_pre_v6_saelens_topk_config_and_old_log_threshold(tmp_path: Path) -> None:
    d = saelens_folder(tmp_path, "topk")
    cfg = json.loads((d / "cfg.json").read_text())
    old = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "model_name": "gpt2", "hook_point": "blocks.3.hook_resid_pre",
           "activation_fn_str": "topk", "activation_fn_kwargs": {"k": cfg["k"]}, "apply_b_dec_to_input": True}
    (d / "cfg.json").write_text(json.dumps(old))
    sae = load_sae(d)
    assert sae.architecture == "topk" and sae.k == 5 and sae.info.latent_kind == "blocks.3.hook_resid_pre"
    j = saelens_folder(tmp_path, "jumprelu", seed=1)
    w = load_file(str(j / "sae_weights.safetensors"))
    thr = w.pop("threshold")
    w["log_threshold"] = torch.log(thr)
    save_file(w, str(j / "sae_weights.safetensors"))
    torch.testing.assert_close(load_sae(j).threshold, thr)


def test_loads_bfloat16_weights_as_float32(tmp_path: Path) -> None:
    d = saelens_folder(tmp_path, "standard")
    w = load_file(str(d / "sae_weights.safetensors"))
    save_file({k: v.to(torch.bfloat16) for k, v in w.items()}, str(d / "sae_weights.safetensors"))
    sae = load_sae(d)
    assert sae.W_enc.dtype == torch.float32
    torch.testing.assert_close(sae.W_enc, w["W_enc"].to(torch.bfloat16).float())


def sparsify_folder(root: Path, **cfg_extra: Any) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    t = {
        "encoder.weight": torch.randn(D_SAE, D_IN, generator=g) * 0.5,
        "encoder.bias": torch.randn(D_SAE, generator=g) * 0.1,
        "W_dec": torch.randn(D_SAE, D_IN, generator=g),
        "b_dec": torch.randn(D_IN, generator=g) * 0.2,
    }
    t["W_dec"] /= t["W_dec"].norm(dim=1, keepdim=True)
    cfg = {"activation": "topk", "expansion_factor": 3, "normalize_decoder": True, "num_latents": D_SAE, "k": 6,
           "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": D_IN, **cfg_extra}
    d = root / "layers.6"
    d.mkdir()
    (d / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(d / "sae.safetensors"))
    return d, t


def test_loads_sparsify_folder_with_its_outputs(tmp_path: Path) -> None:
    d, t = sparsify_folder(tmp_path)
    sae = load_sae(d, latent_dim=D_IN)
    assert sae.info.source == "sparsify" and sae.architecture == "topk" and sae.k == 6
    x = latents(50, seed=3)
    w = {k: v.double().numpy() for k, v in t.items()}
    pre = np.maximum((x - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"], 0)  # sparsify's encoder
    idx = np.argsort(-pre, axis=1)[:, :6]
    acts = np.take_along_axis(pre, idx, 1)
    y = (acts[:, :, None] * w["W_dec"][idx]).sum(axis=1) + w["b_dec"]  # sparsify's decoder
    np.testing.assert_allclose(sae.reconstruct_np(x), y, rtol=1e-4, atol=1e-5)
    # The parent of several sparsify layers is refused with the names to pick from.
    with pytest.raises(ModelFileError, match="layers.6"):
        load_sae(tmp_path)


# -- bad folders: one line each --------------------------------------------------------------------------

def _corrupt(d: Path, how: str) -> None:
    cfg_p, w_p = d / "cfg.json", d / "sae_weights.safetensors"
    cfg = json.loads(cfg_p.read_text())
    w = load_file(str(w_p))
    if how == "bad json":
        cfg_p.write_text("{not json")
    elif how == "json list":
        cfg_p.write_text("[1, 2]")
    elif how == "no d_in":
        del cfg["d_in"]
        cfg_p.write_text(json.dumps(cfg))
    elif how == "gated":
        cfg["architecture"] = "gated"
        cfg_p.write_text(json.dumps(cfg))
    elif how == "normalize":
        cfg["normalize_activations"] = "expected_average_only_in"
        cfg_p.write_text(json.dumps(cfg))
    elif how == "k too large":
        cfg["k"] = D_SAE + 1
        cfg_p.write_text(json.dumps(cfg))
    elif how == "d_sae mismatch":
        cfg["d_sae"] = D_SAE + 1
        cfg_p.write_text(json.dumps(cfg))
    elif how == "W_enc transposed":
        w["W_enc"] = w["W_enc"].T.contiguous()
        save_file(w, str(w_p))
    elif how == "missing b_dec":
        del w["b_dec"]
        save_file(w, str(w_p))
    elif how == "nan":
        w["W_dec"][2, 1] = float("nan")
        save_file(w, str(w_p))
    elif how == "int tensor":
        w["b_enc"] = torch.zeros(D_SAE, dtype=torch.int32)
        save_file(w, str(w_p))
    elif how == "garbage weights":
        w_p.write_bytes(b"\x00\x01garbage" * 50)
    elif how == "truncated weights":
        w_p.write_bytes(w_p.read_bytes()[:200])
    elif how == "no weights":
        w_p.unlink()
    elif how == "bad max_activation":
        (d / "workbench.json").write_text(json.dumps({"format": "workbench-sae", "max_activation": [1.0, 2.0]}))
    elif how == "huge max_activation":
        (d / "workbench.json").write_text(json.dumps({"format": "workbench-sae", "max_activation": [1e300] * D_SAE}))
    else:
        raise AssertionError(how)


BAD = ["bad json", "json list", "no d_in", "gated", "normalize", "k too large", "d_sae mismatch",
       "W_enc transposed", "missing b_dec", "nan", "int tensor", "garbage weights", "truncated weights",
       "no weights", "bad max_activation", "huge max_activation"]


@pytest.mark.parametrize("how", BAD)
def test_bad_folders_give_one_line_model_file_errors(tmp_path: Path, how: str) -> None:
    d = saelens_folder(tmp_path, "topk")
    _corrupt(d, how)
    with pytest.raises(ModelFileError) as e:
        load_sae(d)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg


def test_latent_dim_mismatch_and_missing_folder(tmp_path: Path) -> None:
    d = saelens_folder(tmp_path, "standard")
    with pytest.raises(ModelFileError, match=r"expects 8-dim latents but codec 'default' has 64"):
        load_sae(d, latent_dim=64, codec_id="default")
    with pytest.raises(ModelFileError, match="no such SAE folder"):
        load_sae(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="not an SAE folder"):
        load_sae(tmp_path / "empty")


@pytest.mark.parametrize("cfg_extra", [{"transcode": True}, {"activation": "groupmax"}, {"skip_connection": True}])
def test_unsupported_sparsify_variants_are_refused(tmp_path: Path, cfg_extra: dict) -> None:
    d, _ = sparsify_folder(tmp_path, **cfg_extra)
    with pytest.raises(ModelFileError) as e:
        load_sae(d)
    assert "\n" not in str(e.value)


# -- pickles ----------------------------------------------------------------------------------------------

class _Boom:
    """Unpickling this creates a marker file: proof that a pickle was (wrongly) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.write_text, (self.marker, "unpickled!"))


def test_pickles_in_an_sae_folder_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "UNPICKLED"
    payload = pickle.dumps(_Boom(marker))
    d = saelens_folder(tmp_path, "standard")
    for name in ("sae_weights.pt", "model.pkl", "state.pth", "pytorch_model.bin"):
        (d / name).write_bytes(payload)
    sae = load_sae(d)
    assert sae.d_sae == D_SAE and not marker.exists()
    only = tmp_path / "only_pickles"
    only.mkdir()
    (only / "sae_weights.pt").write_bytes(payload)
    with pytest.raises(ModelFileError, match="pickle") as e:
        load_sae(only)
    assert "\n" not in str(e.value)
    # A pickle disguised under the safetensors name is rejected by the safetensors parser.
    disguised = saelens_folder(tmp_path, "standard", seed=4)
    (disguised / "sae_weights.safetensors").write_bytes(payload)
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        load_sae(disguised)
    assert not marker.exists()
