"""SAE folders: save ours (SAELens v6 layout, DESIGN.md), load ours, SAELens's and sparsify's.

Our folder (contract):

- ``cfg.json``: ``architecture`` (``topk`` | ``jumprelu`` | ``standard`` | ``relu-rmsnorm``), ``d_in``,
  ``d_sae``, ``dtype`` ("float32"), ``device`` ("cpu"), ``apply_b_dec_to_input`` (true),
  ``normalize_activations`` ("none": the training-time input scale is folded into the weights),
  ``reshape_activations`` ("none"), ``k`` and ``rescale_acts_by_decoder_norm`` (false) for ``topk``,
  ``metadata`` {``model_name``: codec id, ``hook_name``: latent kind, ``sae_lens_version``: "6.0.0" (the
  layout version, so SAELens reads the file as a v6 config), ``workbench_version``}. ``relu-rmsnorm``
  adds ``rms_eps`` and a ``workbench_note``.
- ``sae_weights.safetensors``: ``W_enc`` [d_in, d_sae], ``b_enc`` [d_sae], ``W_dec`` [d_sae, d_in],
  ``b_dec`` [d_in], float32; ``threshold`` [d_sae] for ``jumprelu`` (our ``batchtopk`` saves its
  global threshold there, as SAELens does); ``rms_weight`` [d_sae] for ``relu-rmsnorm``.
- ``sparsity.safetensors``: ``sparsity`` [d_sae] = log10(firing rate + 1e-10).
- ``workbench.json``: ``codec`` (the id), ``codec_info`` (id, latent kind, dim, frame rate, weights
  fingerprint), ``latent_kind``, ``frame_rate``, the trained architecture
  (``batchtopk`` is only recorded here), k / l1, metrics, ``max_activation`` [d_sae] (and
  ``max_activation_prenorm`` for relu-rmsnorm), training settings and history, provenance.

Loading reads only ``cfg.json``, ``workbench.json`` and ``*.safetensors`` by name; ``.pt``/``.pkl``/…
files in the folder are never opened (a folder holding only such files is refused with a hint), so no
pickle is ever unpickled. Every problem is a one-line `ModelFileError`: bad JSON, unknown architecture,
missing or misshapen tensors, NaN weights, or a ``d_in`` that does not match the codec's latent dim.

SAELens folders: ``standard`` (→ relu), ``topk`` (``rescale_acts_by_decoder_norm`` is folded in, same
outputs), ``jumprelu`` (``log_threshold`` of older files is exponentiated), pre-6.0 configs
(``hook_point``, ``activation_fn_str: topk`` + ``activation_fn_kwargs.k``). A non-"none"
``normalize_activations`` is refused: its scaling factor is not stored in the folder.

sparsify folders (EleutherAI): ``cfg.json`` (``d_in``, ``k``, ``num_latents`` or ``expansion_factor``,
``activation``) + ``sae.safetensors`` (``encoder.weight`` [d_sae, d_in], ``encoder.bias``, ``W_dec``
[d_sae, d_in], ``b_dec``): loaded as TopK with ``W_enc = encoder.weight.T`` (sparsify subtracts b_dec
before encoding, as we do). Transcoders, skip connections and ``groupmax`` are refused.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench import __version__
from workbench.core.errors import ModelFileError
from workbench.core.fileio import atomic_folder, atomic_save_safetensors, atomic_write_json, recover_folder
from workbench.core.sae.model import SAE

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
SPARSITY_FILE = "sparsity.safetensors"
WORKBENCH_FILE = "workbench.json"
SPARSIFY_WEIGHTS_FILE = "sae.safetensors"
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".joblib", ".th"})
SAELENS_LAYOUT_VERSION = "6.0.0"
RMSNORM_NOTE = (
    "relu-rmsnorm is a workbench architecture (not in SAELens): u = ReLU((z - b_dec) @ W_enc + b_enc), "
    "f = rms_weight * u / sqrt(mean(u^2) + rms_eps), z_hat = f @ W_dec + b_dec"
)


@dataclass
class SAEInfo:
    """What a folder says beyond the weights."""

    source: str  # "workbench", "saelens" or "sparsify"
    folder: Path
    cfg: dict[str, Any]
    codec_id: str | None = None
    latent_kind: str | None = None
    frame_rate: float | None = None
    trained_architecture: str | None = None
    max_activation: np.ndarray | None = None
    max_activation_prenorm: np.ndarray | None = None
    log10_density: np.ndarray | None = None
    workbench: dict[str, Any] = field(default_factory=dict)


def _show(p: Any) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(p))


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


# -- saving -------------------------------------------------------------------------------------------

def sae_cfg(sae: SAE, codec_id: str | None, latent_kind: str | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "architecture": sae.saved_architecture,
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
    }
    if sae.saved_architecture == "topk":
        cfg["k"] = sae.k
        cfg["rescale_acts_by_decoder_norm"] = False
    if sae.architecture == "relu-rmsnorm":
        cfg["rms_eps"] = sae.rms_eps
        cfg["workbench_note"] = RMSNORM_NOTE
    cfg["metadata"] = {
        "model_name": codec_id,
        "hook_name": latent_kind,
        "sae_lens_version": SAELENS_LAYOUT_VERSION,
        "sae_lens_training_version": None,
        "workbench_version": __version__,
    }
    return cfg


def _jsonable(x: Any) -> Any:
    """numpy/torch scalars and arrays to JSON; non-finite floats to None (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return _jsonable(x.detach().cpu().numpy())
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


def save_sae(
    sae: SAE,
    folder: str | os.PathLike[str],
    *,
    codec_id: str | None = None,
    latent_kind: str | None = None,
    frame_rate: float | None = None,
    codec_info: dict[str, Any] | None = None,
    max_activation: np.ndarray | None = None,
    max_activation_prenorm: np.ndarray | None = None,
    log10_density: np.ndarray | None = None,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    codec: str | None = None,
    density: np.ndarray | None = None,
) -> Path:
    """Write the SAE folder atomically (built aside, then swapped in); returns its path.

    `codec` is accepted as another name for `codec_id`, and `density` (firing rates) instead of
    `log10_density`, for callers written against the app's stand-in engine.
    """
    if codec_id is None and codec is not None:
        codec_id = codec
    if log10_density is None and density is not None:
        log10_density = np.log10(np.asarray(density, np.float64) + 1e-10).astype(np.float32)
    dst = Path(folder)
    check_output_folder(dst)
    tensors: dict[str, torch.Tensor] = {k: v.detach().float().cpu().contiguous()
                                        for k, v in sae.state_dict().items()}
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ModelFileError(f"refusing to save: tensor '{name}' holds NaN or infinite values")
    d = sae.d_sae
    for name, arr in (("max_activation", max_activation), ("log10_density", log10_density),
                      ("max_activation_prenorm", max_activation_prenorm)):
        if arr is not None and np.asarray(arr).shape != (d,):
            raise ModelFileError(f"{name} has shape {np.asarray(arr).shape}, expected ({d},)")
    cinfo = dict(codec_info or {})
    cinfo.setdefault("id", codec_id)
    cinfo.setdefault("latent_kind", latent_kind)
    cinfo.setdefault("latent_dim", sae.d_in)
    if frame_rate is not None:
        cinfo["frame_rate"] = frame_rate
    wb: dict[str, Any] = {
        "format": "workbench-sae",
        "version": 1,
        "codec": codec_id,
        "codec_info": cinfo,
        "latent_kind": latent_kind,
        "frame_rate": frame_rate,
        "architecture": sae.architecture,
        "saved_architecture": sae.saved_architecture,
        "k": sae.k,
        "metrics": metrics or {},
        "max_activation": None if max_activation is None else np.asarray(max_activation, np.float32),
        "training": training or {},
        "provenance": {"workbench_version": __version__, "torch_version": torch.__version__,
                       "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(provenance or {})},
    }
    if max_activation_prenorm is not None:
        wb["max_activation_prenorm"] = np.asarray(max_activation_prenorm, np.float32)
    if extra:
        wb.update(extra)
    try:
        with atomic_folder(dst) as tmp:
            atomic_write_json(tmp / CFG_FILE, sae_cfg(sae, codec_id, latent_kind))
            atomic_save_safetensors(tmp / WEIGHTS_FILE, tensors)
            if log10_density is not None:
                atomic_save_safetensors(tmp / SPARSITY_FILE,
                                        {"sparsity": torch.from_numpy(np.asarray(log10_density, np.float32))})
            atomic_write_json(tmp / WORKBENCH_FILE, _jsonable(wb))
    except OSError as exc:
        raise ModelFileError(f"{_show(dst)}: cannot write the SAE folder ({exc.strerror or _short(exc)})") from None
    return dst


def check_output_folder(dst: Path) -> None:
    """Saving replaces the whole folder: refuse a file, or a non-empty folder that is not an SAE folder
    (``-o ~/Music`` must not wipe someone's music)."""
    if dst.exists() and not dst.is_dir():
        raise ModelFileError(f"{_show(dst)}: exists and is not a folder")
    if dst.is_dir() and not (dst / CFG_FILE).is_file() and any(dst.iterdir()):
        raise ModelFileError(f"{_show(dst)}: exists and is not an SAE folder; refusing to replace it (choose a new folder)")


# -- loading ------------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{_show(path)}: not valid JSON ({_short(exc)})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{_show(path)}: expected a JSON object")
    return data


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:  # type: ignore[no-untyped-call]
            for k in f.keys():  # noqa: SIM118
                out[k] = f.get_tensor(k)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{_show(path)}: not a valid safetensors file ({_short(exc)})") from None
    return out


def _int_field(cfg: dict[str, Any], key: str, path: Path) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ModelFileError(f"{_show(path)}: '{key}' must be a positive integer, got {v!r}")
    return v


def find_sae_folder(path: str | os.PathLike[str]) -> Path:
    """The SAE folder `path` names (a file inside it names its folder), or a one-line ModelFileError:
    missing, not a folder, no cfg.json, only pickle files (never opened), several SAEs inside."""
    return _find_folder(path)


def _find_folder(path: str | os.PathLike[str]) -> Path:
    try:
        return _find_folder_checked(Path(path))
    except (OSError, ValueError) as exc:  # unreadable folder, NUL in the name, name too long, ...
        raise ModelFileError(f"{_show(path)}: cannot open the SAE folder ({_short(exc)})") from None


def _find_folder_checked(p: Path) -> Path:
    if p.is_file():
        p = p.parent
    if not p.exists():
        recover_folder(p)  # a save killed between its two renames leaves the previous folder aside
    if not p.exists():
        raise ModelFileError(f"{_show(p)}: no such SAE folder")
    if not p.is_dir():
        raise ModelFileError(f"{_show(p)}: not a folder")
    if (p / CFG_FILE).is_file():
        return p
    subs = sorted(c.name for c in p.iterdir() if c.is_dir() and (c / CFG_FILE).is_file())
    if subs:
        raise ModelFileError(f"{_show(p)} holds several SAEs ({', '.join(subs[:6])}); pass one of those folders")
    pickles = sorted(c.name for c in p.iterdir() if c.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise ModelFileError(
            f"{_show(p)}: only pickle files ({', '.join(pickles[:3])}); they are never loaded (unsafe). "
            "Save the SAE as cfg.json + sae_weights.safetensors"
        )
    raise ModelFileError(f"{_show(p)}: not an SAE folder (no cfg.json)")


def _check(t: dict[str, torch.Tensor], name: str, shape: tuple[int, ...], path: Path) -> torch.Tensor:
    if name not in t:
        raise ModelFileError(f"{_show(path)}: tensor '{name}' is missing")
    x = t[name]
    if tuple(x.shape) != shape:
        raise ModelFileError(f"{_show(path)}: tensor '{name}' has shape {list(x.shape)}, expected {list(shape)}")
    if not x.is_floating_point():
        raise ModelFileError(f"{_show(path)}: tensor '{name}' has dtype {x.dtype}, expected floating point")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ModelFileError(f"{_show(path)}: tensor '{name}' holds NaN or infinite values")
    return x


def _array_field(wb: dict[str, Any], key: str, d_sae: int, path: Path) -> np.ndarray | None:
    v = wb.get(key)
    if v is None:
        return None
    try:
        if not isinstance(v, list):
            raise TypeError(key)
        a64 = np.asarray([np.nan if x is None else x for x in v], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ModelFileError(f"{_show(path)}: '{key}' must be a list of numbers") from None
    if (np.abs(a64) > np.finfo(np.float32).max).any():
        raise ModelFileError(f"{_show(path)}: '{key}' holds values beyond float32 range")
    a = a64.astype(np.float32)
    if a.shape != (d_sae,):
        raise ModelFileError(f"{_show(path)}: '{key}' has {a.size} values, expected {d_sae}")
    return a


def load_sae(
    path: str | os.PathLike[str],
    *,
    latent_dim: int | None = None,
    codec_id: str | None = None,
    device: str | torch.device = "cpu",
) -> SAE:
    """An SAE (eval mode) from our folder, a SAELens folder or a sparsify folder; `sae.info` tells
    where it came from. `latent_dim` (the codec's) is checked against d_in; `codec_id` only names the
    codec in that message."""
    folder = _find_folder(path)
    if (folder / WEIGHTS_FILE).is_file():
        sae = _load_saelens(folder)
    elif (folder / SPARSIFY_WEIGHTS_FILE).is_file():
        sae = _load_sparsify(folder)
    else:
        raise ModelFileError(f"{_show(folder)}: has cfg.json but no {WEIGHTS_FILE} (or sparsify's {SPARSIFY_WEIGHTS_FILE})")
    if latent_dim is not None and int(latent_dim) != sae.d_in:
        name = f"codec '{codec_id}'" if codec_id else "the codec"
        raise ModelFileError(
            f"{_show(folder)}: the SAE expects {sae.d_in}-dim latents but {name} has {latent_dim}; "
            "use the codec it was trained on"
        )
    return sae.to(device).eval()


def _load_saelens(folder: Path) -> SAE:
    cfg_path = folder / CFG_FILE
    cfg = _read_json(cfg_path)
    wb_path = folder / WORKBENCH_FILE
    wb = _read_json(wb_path) if wb_path.is_file() else {}
    if wb and wb.get("format") != "workbench-sae":
        wb = {}
    arch = cfg.get("architecture", "standard")
    act = cfg.get("activation_fn", cfg.get("activation_fn_str", "relu"))
    k: Any = cfg.get("k")
    if arch == "standard" and act == "topk":  # SAELens < 6 wrote TopK SAEs like this
        arch = "topk"
        kwargs = cfg.get("activation_fn_kwargs")
        k = kwargs.get("k", k) if isinstance(kwargs, dict) else k
    mapping = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu", "relu-rmsnorm": "relu-rmsnorm"}
    if not isinstance(arch, str) or arch not in mapping:
        arch = _show(arch)[:40]
        raise ModelFileError(
            f"{_show(cfg_path)}: SAE architecture '{arch}' is not supported (use standard, topk, jumprelu "
            "or relu-rmsnorm)"
        )
    if arch == "standard" and act not in ("relu", None):
        raise ModelFileError(f"{_show(cfg_path)}: activation '{act}' is not supported for a standard SAE")
    norm = cfg.get("normalize_activations", "none")
    if norm not in (None, False, "none"):
        raise ModelFileError(
            f"{_show(cfg_path)}: normalize_activations='{norm}' is not supported (its scaling is not in the "
            "folder); fold it into the weights first"
        )
    if cfg.get("reshape_activations", "none") not in (None, "none"):
        raise ModelFileError(f"{_show(cfg_path)}: reshape_activations='{cfg.get('reshape_activations')}' is not supported")
    d_in = _int_field(cfg, "d_in", cfg_path)
    d_sae = _int_field(cfg, "d_sae", cfg_path)
    arch = mapping[arch]
    if arch == "jumprelu" and wb.get("architecture") == "batchtopk":
        arch = "batchtopk"
        k = wb.get("k")
    if arch in ("topk", "batchtopk"):
        if isinstance(k, bool) or not isinstance(k, int) or not (1 <= k <= d_sae):
            raise ModelFileError(f"{_show(cfg_path)}: 'k' must be an integer in 1..{d_sae}, got {k!r}")
    rms_eps = cfg.get("rms_eps", 1e-6)
    if arch != "relu-rmsnorm":
        rms_eps = 1e-6
    elif isinstance(rms_eps, bool) or not isinstance(rms_eps, (int, float)) or not (0 < rms_eps < math.inf):
        raise ModelFileError(f"{_show(cfg_path)}: 'rms_eps' must be a positive number, got {rms_eps!r}")
    apply_b = cfg.get("apply_b_dec_to_input", True)
    if not isinstance(apply_b, bool):
        raise ModelFileError(f"{_show(cfg_path)}: 'apply_b_dec_to_input' must be true or false")
    w_path = folder / WEIGHTS_FILE
    t = _read_tensors(w_path)
    for key in ("scaling_factor", "finetuning_scaling_factor"):
        if key in t and not torch.allclose(t[key].float(), torch.ones_like(t[key].float())):
            raise ModelFileError(f"{_show(w_path)}: a fine-tuning scaling factor is not supported")
    # Every tensor is checked against cfg.json before the model is built: a cfg claiming huge sizes
    # must fail on the shapes, not try to allocate them.
    state = {
        "W_enc": _check(t, "W_enc", (d_in, d_sae), w_path),
        "b_enc": _check(t, "b_enc", (d_sae,), w_path),
        "W_dec": _check(t, "W_dec", (d_sae, d_in), w_path),
        "b_dec": _check(t, "b_dec", (d_in,), w_path),
    }
    if arch in ("jumprelu", "batchtopk"):
        if "threshold" not in t and "log_threshold" in t:
            state["threshold"] = torch.exp(_check(t, "log_threshold", (d_sae,), w_path))
        else:
            state["threshold"] = _check(t, "threshold", (d_sae,), w_path)
    if arch == "relu-rmsnorm":
        state["rms_weight"] = _check(t, "rms_weight", (d_sae,), w_path)
    sae = SAE(d_in, d_sae, arch, k=k if arch in ("topk", "batchtopk") else None,
              apply_b_dec_to_input=apply_b, rms_eps=float(rms_eps))
    if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm"):
        # SAELens scales pre-activations by ‖W_dec‖ and divides them back out when decoding; folding
        # the norms into the encoder gives the same features and outputs with unit decoder rows.
        n = state["W_dec"].norm(dim=1).clamp_min(1e-8)
        state["W_enc"] = state["W_enc"] * n[None, :]
        state["b_enc"] = state["b_enc"] * n
        state["W_dec"] = state["W_dec"] / n[:, None]
    sae.load_state_dict(state, strict=True)
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    codec = wb.get("codec_info") if isinstance(wb.get("codec_info"), dict) else {}
    assert isinstance(codec, dict)
    if isinstance(wb.get("codec"), str):
        codec = {**codec, "id": wb["codec"]}
    density = None
    sp = folder / SPARSITY_FILE
    if sp.is_file():
        st = _read_tensors(sp)
        if "sparsity" in st:
            density = _check(st, "sparsity", (d_sae,), sp).numpy()
    sae.info = SAEInfo(
        source="workbench" if wb else "saelens",
        folder=folder,
        cfg=cfg,
        codec_id=_first_str(codec.get("id"), meta.get("model_name"), cfg.get("model_name")),
        latent_kind=_first_str(wb.get("latent_kind"), meta.get("hook_name"), cfg.get("hook_name"),
                               cfg.get("hook_point")),
        frame_rate=_rate(wb.get("frame_rate")) or _rate(codec.get("frame_rate")),
        trained_architecture=_first_str(wb.get("architecture")) or arch,
        max_activation=_array_field(wb, "max_activation", d_sae, wb_path),
        max_activation_prenorm=_array_field(wb, "max_activation_prenorm", d_sae, wb_path),
        log10_density=density,
        workbench=wb,
    )
    return sae


def _first_str(*values: Any) -> str | None:
    """The first non-empty string: folder metadata of other types (a list for a codec id) is ignored
    rather than passed on to code that expects a name."""
    for v in values:
        if isinstance(v, str) and v:
            return v
    return None


def _rate(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf):
        return None
    return float(v)


def _load_sparsify(folder: Path) -> SAE:
    cfg_path = folder / CFG_FILE
    cfg = _read_json(cfg_path)
    w_path = folder / SPARSIFY_WEIGHTS_FILE
    d_in = _int_field(cfg, "d_in", cfg_path)
    if cfg.get("transcode"):
        raise ModelFileError(f"{_show(cfg_path)}: a sparsify transcoder is not an autoencoder; not supported")
    if cfg.get("activation", "topk") != "topk":
        raise ModelFileError(f"{_show(cfg_path)}: sparsify activation '{cfg.get('activation')}' is not supported")
    if cfg.get("signed"):
        raise ModelFileError(f"{_show(cfg_path)}: signed sparsify SAEs are not supported")
    t = _read_tensors(w_path)
    if cfg.get("skip_connection") or "W_skip" in t:
        raise ModelFileError(f"{_show(cfg_path)}: sparsify skip connections are not supported")
    num = cfg.get("num_latents") or 0
    if not num:
        ef = cfg.get("expansion_factor", 32)
        num = d_in * ef if isinstance(ef, int) and not isinstance(ef, bool) else ef
    d_sae = _int_field({"num_latents": num}, "num_latents", cfg_path)
    k = cfg.get("k")
    if isinstance(k, bool) or not isinstance(k, int) or not (1 <= k <= d_sae):
        raise ModelFileError(f"{_show(cfg_path)}: 'k' must be an integer in 1..{d_sae}, got {k!r}")
    enc_w = _check(t, "encoder.weight", (d_sae, d_in), w_path)
    enc_b = _check(t, "encoder.bias", (d_sae,), w_path) if "encoder.bias" in t else torch.zeros(d_sae)
    b_dec = _check(t, "b_dec", (d_in,), w_path) if "b_dec" in t else torch.zeros(d_in)
    sae = SAE(d_in, d_sae, "topk", k=k, apply_b_dec_to_input=True)
    sae.load_state_dict({"W_enc": enc_w.T.contiguous(), "b_enc": enc_b,
                         "W_dec": _check(t, "W_dec", (d_sae, d_in), w_path), "b_dec": b_dec}, strict=True)
    sae.info = SAEInfo(source="sparsify", folder=folder, cfg=cfg, codec_id=_first_str(cfg.get("model")),
                       latent_kind=_first_str(cfg.get("hookpoint")), trained_architecture="topk")
    return sae
