"""The embedded default codec (registry id ``default``): mono 24 kHz, 75 latent frames/s, 128 dims (shipped weights).

A frame-rate autoencoder over STFT log-magnitudes (`default_model.py`) whose decoder output gets its
phase from `phase.py`. It ships with the app (``resources/codecs/default``: ``config.json``,
``model.safetensors``, ``report.md``), so the workbench works offline on first launch, and it is the codec
of every test and demo. Reproduce the weights with ``workbench train-codec`` (see its report).

Block decoding: the network part of a block is exact given `dec_radius` frames of context each side;
the phase part (`phase.StreamingInverter`) is a recursion over frames, so `DefaultBlockDecoder` keeps
the inverter's state at the end of each block it decoded and continues from it: consecutive blocks of
any size give the same samples as one whole-clip decode.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.audio import AudioClip
from workbench.core.codecs.base import BlockDecoder, Codec
from workbench.core.codecs.default_model import DefaultCodecConfig, SpectralAutoencoder, stft_mag
from workbench.core.codecs.phase import InverterState, StreamingInverter
from workbench.core.errors import CodecError, ModelFileError, WeightsNotFoundError
from workbench.core.resources import default_codec_dir

CHUNK_FRAMES = 4096  # network windows for long clips: bounded memory whatever the clip length


def load_default_model(folder: str | Path | None = None) -> tuple[SpectralAutoencoder, dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(folder) if folder else default_codec_dir()
    cfg_path, w_path = d / "config.json", d / "model.safetensors"
    if not cfg_path.is_file() or not w_path.is_file():
        raise WeightsNotFoundError(
            f"default codec weights not found in {d} (expected config.json and model.safetensors)"
        )
    try:
        meta = json.loads(cfg_path.read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("model", {}), dict):
            raise TypeError("expected a JSON object with a 'model' object")
        known = DefaultCodecConfig.__dataclass_fields__
        cfg = DefaultCodecConfig(**{k: v for k, v in meta.get("model", {}).items() if k in known})
        check_config(cfg)
        # The shapes the config implies, without allocating anything (a config claiming a huge model
        # must fail on the comparison below, not on an allocation).
        with torch.device("meta"):
            want = {k: tuple(v.shape) for k, v in SpectralAutoencoder(cfg).state_dict().items()}
    except (ValueError, TypeError, AttributeError, RuntimeError, RecursionError, UnicodeDecodeError, OSError) as exc:
        raise ModelFileError(f"{cfg_path}: invalid default codec config ({_one_line(exc)})") from None
    try:
        state = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{w_path}: not a valid safetensors file ({_one_line(exc)})") from None
    for name in sorted(set(want) | set(state)):
        got = tuple(state[name].shape) if name in state else None
        if got != want.get(name):
            what = "missing" if got is None else ("unexpected" if name not in want else f"shape {list(got)}")
            expect = "" if name not in want else f", the config needs {list(want[name])}"
            raise ModelFileError(f"{w_path}: weights do not match the config (tensor '{name}' {what}{expect})")
        if not state[name].is_floating_point():
            raise ModelFileError(f"{w_path}: tensor '{name}' has dtype {state[name].dtype}, expected floating point")
    model = SpectralAutoencoder(cfg)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{w_path}: weights do not match the config ({_one_line(exc)})") from None
    for name, t in model.state_dict().items():
        if not torch.isfinite(t).all():
            raise ModelFileError(f"{w_path}: tensor '{name}' contains NaN or infinite values")
    model.eval()
    return model, meta


_LIMITS = {"sample_rate": (1000, 768_000), "n_fft": (8, 1 << 16), "hop": (1, 1 << 16), "latent_dim": (1, 1 << 14),
           "channels": (1, 1 << 14), "enc_blocks": (0, 256), "dec_blocks": (0, 256), "kernel": (1, 255),
           "expansion": (1, 64), "head_hidden": (0, 1 << 16), "phase_lookahead": (0, 16), "phase_iters": (0, 16)}


def check_config(cfg: DefaultCodecConfig) -> None:
    """Types and ranges of a config read from a file (ValueError/TypeError with the first problem)."""
    for name, (lo, hi) in _LIMITS.items():
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or not (lo <= v <= hi):
            raise ValueError(f"'{name}' must be an integer in {lo}..{hi}, got {v!r}")
    for name in ("log_floor", "out_min", "out_max", "peak_floor_db"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"'{name}' must be a finite number, got {v!r}")
    if cfg.encoder not in ("conv", "filterbank"):
        raise ValueError(f"'encoder' must be \"conv\" or \"filterbank\", got {cfg.encoder!r}")
    if not isinstance(cfg.energy_latent, bool):
        raise TypeError(f"'energy_latent' must be true or false, got {cfg.energy_latent!r}")
    if cfg.n_fft % (2 * cfg.hop):
        raise ValueError(f"'n_fft' ({cfg.n_fft}) must be an even multiple of 'hop' ({cfg.hop})")
    if cfg.kernel % 2 == 0 or cfg.hop > cfg.n_fft or cfg.log_floor <= 0 or cfg.out_min >= cfg.out_max or cfg.peak_floor_db >= 0:
        raise ValueError("inconsistent sizes (kernel must be odd, hop <= n_fft, log_floor > 0, out_min < out_max, "
                         "peak_floor_db < 0)")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


class DefaultCodec(Codec):
    id = "default"
    channels = 1
    latent_kind = "continuous"

    def __init__(self, folder: str | Path | None = None, model: SpectralAutoencoder | None = None) -> None:
        # where the weights came from (its report.md and design.md live there); None for an in-memory model
        self.folder: Path | None = None
        if model is None:
            model, meta = load_default_model(folder)
            self.folder = Path(folder) if folder else default_codec_dir()
        else:
            meta = {"model": model.cfg.to_dict()}
        self.model = model.eval()
        self.meta = meta
        cfg = model.cfg
        self.cfg = cfg
        self.sample_rate = cfg.sample_rate
        self.hop_length = cfg.hop
        self.latent_dim = cfg.code_dim
        self.loudness_channel = cfg.code_dim - 1 if cfg.energy_latent else None
        # Output frame t needs spectral frames t-1..t+1 (window = 4 hops), each of which needs
        # dec_radius frames of latents around it.
        self.context_frames = cfg.dec_radius + 2
        self.lookahead_frames = cfg.dec_radius + 2
        # Encoder reach: the STFT window (n_fft / 2 each side of a frame centre) plus the encoder's
        # receptive field; a windowed encode with this much context equals the whole-clip encode.
        self.encoder_context_frames = cfg.enc_radius + -(-cfg.n_fft // (2 * cfg.hop)) + 1
        self._window = torch.hann_window(cfg.n_fft)
        self.inverter = StreamingInverter(cfg.hop, cfg.n_fft, cfg.phase_lookahead, cfg.phase_iters, cfg.peak_floor_db)
        # The inverter commits a frame `phase_lookahead` frames after it arrives.
        self.lookahead_frames += cfg.phase_lookahead

    # -- encode -------------------------------------------------------------------------------
    def encode(self, clip: AudioClip) -> np.ndarray:
        clip = self.prepare(clip)
        x = clip.samples[:, 0]
        n = self.num_frames(len(x)) * self.hop_length
        x = np.pad(x, (0, n - len(x)))
        with torch.inference_mode():
            mag = stft_mag(torch.from_numpy(x)[None], self.cfg, self._window)[0]
            z = _chunked(lambda m: self.model.encode_mag(m[None])[0], mag, self.cfg.enc_radius)
        return z.numpy().astype(np.float32)

    # -- decode -------------------------------------------------------------------------------
    def magnitudes(self, z: np.ndarray) -> np.ndarray:
        """Decoder network: latents [T, D] -> magnitudes [T, K] (float32)."""
        with torch.inference_mode():
            lm = _chunked(lambda q: self.model.decode_logmag(q[None])[0], torch.from_numpy(z), self.cfg.dec_radius)
        return np.exp(lm.numpy()).astype(np.float32)

    def synthesize(self, mag: np.ndarray) -> np.ndarray:
        """Magnitude frames [T, K] -> ``T * hop`` samples (phase rebuilt; silence after the last frame)."""
        return self.inverter.whole(mag)

    def decode_samples(self, z: np.ndarray) -> np.ndarray:
        return self.synthesize(self.magnitudes(z))[:, None].astype(np.float32)

    def block_decoder(self, z: np.ndarray) -> DefaultBlockDecoder:
        return DefaultBlockDecoder(self, z)

    def decode_block(self, z: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Stateless block: phase warms up over the left context (sounds the same, not sample-equal)."""
        return self.block_decoder(z).decode(start, stop)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["report"] = self.meta.get("report", {})
        return d


def _chunked(fn: Any, x: torch.Tensor, radius: int, chunk: int = CHUNK_FRAMES) -> torch.Tensor:
    """Apply a frame-rate network in windows with `radius` frames of context: same result, bounded memory."""
    t = x.shape[0]
    if t <= chunk + 2 * radius:
        return fn(x)
    outs = []
    for a in range(0, t, chunk):
        b = min(t, a + chunk)
        lo, hi = max(0, a - radius), min(t, b + radius)
        y = fn(x[lo:hi])
        outs.append(y[a - lo : a - lo + (b - a)])
    return torch.cat(outs)


class DefaultBlockDecoder(BlockDecoder):
    """Stateful block decoder: keeps the phase inverter's state at every frame it decoded (the most recent
    `MAX_STATES`), so the next block, or a block after an edit, continues it exactly."""

    MAX_STATES = 256  # about 56 KB each: 3.4 s of history
    WARMUP_FRAMES = 8  # a block with no history starts the inverter this many frames early

    def __init__(self, codec: DefaultCodec, z: np.ndarray) -> None:
        super().__init__(codec, z)
        self.dcodec = codec
        # Inverter state ready to emit the block starting at frame `key`.
        self._states: OrderedDict[int, InverterState] = OrderedDict()

    def set_latents(self, z: np.ndarray, keep_before: int = 0) -> None:
        """New latents (after an edit): a block starting at or before `keep_before` continues its state
        (the frames still in flight are re-fitted to the new magnitudes)."""
        super().set_latents(z, keep_before)
        for f in [f for f in self._states if f > keep_before]:
            del self._states[f]

    def decode(self, start: int, stop: int) -> np.ndarray:
        c = self.dcodec
        inv = c.inverter
        t = self.z.shape[0]
        if not (0 <= start < stop <= t):
            raise CodecError(f"block [{start}, {stop}) is outside the {t} frames of the clip")
        state = self._states.get(start)
        if state is None:  # no history here: start afresh (from the clip start, or warm up before the block)
            state = inv.start(0 if start <= self.WARMUP_FRAMES else start - self.WARMUP_FRAMES, c.cfg.n_fft // 2 + 1)
        # Hop chunk c is emitted at step c + half; the steps need frames state.m + 1 .. m_end + lookahead.
        m_end = stop - 1 + inv.half
        f0, f1 = state.m + 1, m_end + inv.lookahead + 1  # frames [f0, f1): outside the clip they are silent
        a, b = max(0, f0), min(t, f1)
        rows = np.zeros((f1 - f0, c.cfg.n_fft // 2 + 1), np.float32)
        if a < b:
            lo, hi = max(0, a - c.cfg.dec_radius), min(t, b + c.cfg.dec_radius)
            rows[a - f0 : b - f0] = c.magnitudes(self.z[lo:hi])[a - lo : b - lo]
        states: list[InverterState] = []
        y, _ = inv.run(state, rows, m_end, every_step=states)
        for st in states:  # after step m the next chunk to emit (the key) is m + 1 - half
            key = st.m + 1 - inv.half
            if key > 0:
                self._states[key] = st
                self._states.move_to_end(key)
        while len(self._states) > self.MAX_STATES:
            self._states.popitem(last=False)
        first_chunk = state.m + 1 - inv.half
        off = (start - first_chunk) * c.hop_length
        return y[off : off + (stop - start) * c.hop_length, None].astype(np.float32)


def _summary(**opts: Any) -> dict[str, Any]:
    d = default_codec_dir()
    present = (d / "model.safetensors").is_file() and (d / "config.json").is_file()
    row: dict[str, Any] = {
        "id": "default",
        "sample_rate": 24000,
        "channels": 1,
        "frame_rate": 75.0,
        "hop_length": 320,
        "latent_dim": 64,
        "weights_present": present,
        "weights_path": str(d) if present else None,
        "notes": "embedded codec (latent: continuous)",
    }
    if present:
        try:
            meta = json.loads((d / "config.json").read_text())
            m = meta.get("model", {})
            sr, hop = int(m.get("sample_rate", 24000)), int(m.get("hop", 320))
            row.update(sample_rate=sr, hop_length=hop, frame_rate=sr / hop, latent_dim=int(m.get("latent_dim", 64)) + int(bool(m.get("energy_latent", False))))
            figs = meta.get("report", {})
            if figs:
                row["notes"] += "; " + ", ".join(f"{k} {v}" for k, v in figs.items())
        except (ValueError, TypeError, AttributeError):
            row["notes"] = "embedded codec: config.json unreadable"
    return row


def _factory(latent: str | None = None, weights: str | None = None, **_: Any) -> DefaultCodec:
    if latent not in (None, "continuous"):
        raise CodecError(f"the default codec has only continuous latents, not '{latent}'")
    return DefaultCodec(weights)


def register_default() -> None:
    from workbench.core.codecs.registry import CodecEntry, register

    register(CodecEntry("default", _factory, _summary, aliases=("embedded",)))
