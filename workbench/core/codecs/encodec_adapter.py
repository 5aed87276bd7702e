"""EnCodec (Défossez et al., 2022) as workbench codecs: ``encodec-24khz`` and ``encodec-48khz``.

The architecture comes from the ``encodec`` package (``EncodecModel.encodec_model_24khz(pretrained=False)``
and ``_48khz``); the weights are plain state-dict files that we find and load ourselves, because the
package's own ``pretrained=True`` path downloads, and the workbench must work offline and with the files
users already have.

Weights (first hit wins):

1. the ``weights`` option / ``--weights``: a folder holding the standard file name, or any state-dict
   file of the same architecture (a fine-tuned EnCodec, say);
2. the folder in ``$WORKBENCH_ENCODEC_DIR``;
3. torch hub's cache, ``torch.hub.get_dir()/checkpoints/`` — where ``encodec`` puts its downloads.

Standard names: ``encodec_24khz-d7cc33bc.th`` and ``encodec_48khz-7e698e3e.th``. Files are read with
``torch.load(..., weights_only=True)`` (no pickled code runs) and checked key by key and shape by shape
against the model before loading, so a wrong or damaged file is one clear error naming the file. The
checksum in the standard name is not enforced: a fine-tune saved under that name is legitimate.

Latent kinds: ``continuous`` (encoder output before quantization, 128 dims) and ``quantized[:BW]`` (sum
of the residual-VQ codebook vectors the quantizer picks at BW kbps, default 6): the decoder consumes that
sum directly, so both kinds decode the same way.

encodec-24khz: mono, hop 320, 75 frames/s, no input normalization, causal convolutions + LSTM. Long
clips are encoded and decoded in 20 s chunks with 1 s of left context, which bounds memory (a single pass
over ten minutes of audio would need gigabytes of activations) and matches the single pass to float
precision. The block decoder decodes ``[start - context_frames, stop)`` and crops. ``context_frames``
defaults to 16: with random-init weights a block of any size matched the whole-clip decode within 1e-4
RMS from 1 frame of context on (4e-5; 1e-6 at 8 frames) and reached the float32 floor (4e-8) at 16, so
16 is exact for what we can measure while a 0.1 s block stays under 0.1 s of one core (32 frames cost
~120 ms). Trained LSTMs may remember longer: run ``benchmarks/bench_codec.py --measure-context`` with
real weights, and pass ``context_frames=N`` to `get_codec` if they need more. One exception to causality: the model's convolutions pad by *reflection* at the
start of the clip, so the first ~6 output frames depend on the next few latent frames; blocks near the
start therefore decode at least ``START_FRAMES`` frames.

encodec-48khz: stereo, hop 320, 150 frames/s, non-causal, and every convolution is followed by
``GroupNorm(1, C)`` over *time*: the output at any frame depends on statistics of the whole segment the
network sees. EnCodec itself therefore runs on 1 s segments (RMS-normalized each, 1% overlap,
cross-faded). We keep that behaviour but put the segments on a fixed grid of whole frames, so latent
frames stay uniform in time (one frame per 320 samples) and a block decoder can be exact:

- chunks of ``CHUNK_FRAMES`` = 150 frames (1 s, the model's segment) every ``STRIDE_FRAMES`` = 148 frames
  (an overlap of 2 frames = 640 samples, the model's 1% rounded up to whole frames);
- each chunk is divided by its scale ``1e-8 + RMS(mono mix)`` (as encodec computes it) and encoded on its
  own; each frame's latent comes from the chunk that owns it (frames ``[k*148, (k+1)*148)``, the last
  chunk owns the rest), and ``ln(scale)`` of that chunk is appended as channel 128, so
  ``latent_dim`` = 129;
- decoding runs the decoder on the same chunks, cross-fades the 640-sample overlaps linearly and
  multiplies by the gain envelope rebuilt from channel 128 (log-gain interpolated linearly between frame
  centres), so an SAE edit of the gain channel changes loudness locally and smoothly.

A block ``[start, stop)`` decodes exactly the chunks that touch it, with the same shapes as the
whole-clip decode, so the two agree to the last bit; decoded chunks are cached by content, so
consecutive playback blocks cost about one chunk decode per second of audio. ``context_frames`` and
``lookahead_frames`` are 149, the largest distance a block's samples can depend on. (Encoding the whole
clip in one pass with a smooth gain envelope was the first plan; it was dropped because with GroupNorm
over the whole clip no finite look-ahead makes block and whole decodes agree — the error was still 1e-2
RMS with 128 frames each side — and because its memory grows with the clip.)

The adapter never changes torch's global thread count and runs under ``torch.inference_mode()``.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.audio import AudioClip
from workbench.core.codecs.base import Codec
from workbench.core.codecs.registry import CodecEntry, register
from workbench.core.errors import CodecError, WeightsNotFoundError

if TYPE_CHECKING:
    import torch

ENV_DIR = "WORKBENCH_ENCODEC_DIR"
DOWNLOAD_ROOT = "https://dl.fbaipublicfiles.com/encodec/v0/"
HOP = 320
EMBED_DIM = 128
DEFAULT_BANDWIDTH = 6.0


@dataclass(frozen=True)
class EncodecSpec:
    """Static facts about one EnCodec model: everything `summary` needs without importing torch."""

    id: str
    label: str
    checkpoint: str
    builder: str
    sample_rate: int
    channels: int
    bandwidths: tuple[float, ...]
    latent_dim: int
    notes: str

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / HOP


SPECS: dict[str, EncodecSpec] = {
    "encodec-24khz": EncodecSpec(
        id="encodec-24khz",
        label="EnCodec 24 kHz",
        checkpoint="encodec_24khz-d7cc33bc.th",
        builder="encodec_model_24khz",
        sample_rate=24_000,
        channels=1,
        bandwidths=(1.5, 3.0, 6.0, 12.0, 24.0),
        latent_dim=EMBED_DIM,
        notes="latent: continuous | quantized:1.5-24 kbps; causal",
    ),
    "encodec-48khz": EncodecSpec(
        id="encodec-48khz",
        label="EnCodec 48 kHz",
        checkpoint="encodec_48khz-7e698e3e.th",
        builder="encodec_model_48khz",
        sample_rate=48_000,
        channels=2,
        bandwidths=(3.0, 6.0, 12.0, 24.0),
        latent_dim=EMBED_DIM + 1,
        notes="latent: continuous | quantized:3-24 kbps; dim 128 + log gain; 1 s chunks",
    ),
}


# --------------------------------------------------------------------------------------------------
# Options and weights lookup (no torch import here: `workbench codecs` must stay instant)


def _fmt_kbps(bw: float) -> str:
    return f"{bw:g}"


def parse_latent_kind(spec: EncodecSpec, latent: str | None) -> tuple[str, float | None]:
    """Normalized kind string and bandwidth (None for continuous); bad specs are one-line errors."""
    text = "continuous" if latent is None else str(latent).strip().lower()
    if text == "continuous":
        return "continuous", None
    choices = ", ".join(_fmt_kbps(b) for b in spec.bandwidths)
    if text == "quantized":
        bw = DEFAULT_BANDWIDTH
    elif text.startswith("quantized:"):
        raw = text.split(":", 1)[1].strip().removesuffix("kbps").strip()
        try:
            bw = float(raw)
        except ValueError:
            raise CodecError(f"latent '{latent}': bandwidth must be a number of kbps ({choices})") from None
    else:
        raise CodecError(
            f"unknown latent kind '{latent}': use continuous or quantized[:KBPS] ({choices} kbps)"
        )
    if not any(math.isclose(bw, b) for b in spec.bandwidths):
        raise CodecError(f"{spec.id} has no {_fmt_kbps(bw)} kbps bandwidth; choose one of {choices}")
    return f"quantized:{_fmt_kbps(bw)}", bw


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder, as ``torch.hub.get_dir()`` would give it.

    When torch is already imported we ask it (so ``torch.hub.set_dir`` is honoured); otherwise we apply
    the same rule ($TORCH_HOME, then $XDG_CACHE_HOME/torch, then ~/.cache/torch) without paying for the
    import.
    """
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        return Path(hub.get_dir()) / "checkpoints"
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


@dataclass(frozen=True)
class WeightsLocation:
    path: Path
    source: str  # "--weights", "WORKBENCH_ENCODEC_DIR" or "torch hub cache"


def find_weights(spec: EncodecSpec, weights: str | os.PathLike[str] | None = None, *, strict: bool = True
                 ) -> WeightsLocation | None:
    """Where the weights are, or None. Cheap: only looks at the file system.

    With `strict`, an explicit `weights` that does not hold this model's file is an error rather than a
    silent fall-back to another copy: the user named a place and should learn that it is wrong. The
    listing (`workbench codecs --weights`) is lenient, since one folder may hold only one of the models.
    """
    if weights is not None and str(weights) != "":
        p = Path(weights).expanduser()
        others = {o.checkpoint for o in SPECS.values() if o.id != spec.id}
        if p.is_file() and (strict or p.name not in others):  # the listing skips the other model's file
            return WeightsLocation(p, "--weights")
        if p.is_dir():
            f = p / spec.checkpoint
            if f.is_file():
                return WeightsLocation(f, "--weights")
            if strict:
                raise WeightsNotFoundError(
                    f"{p} has no {spec.checkpoint} ({spec.label} weights); pass the folder that holds it, "
                    "or the state-dict file itself"
                )
        elif strict:
            raise WeightsNotFoundError(f"--weights {p}: no such file or folder")
    env = os.environ.get(ENV_DIR)
    if env:
        f = Path(env).expanduser() / spec.checkpoint
        if f.is_file():
            return WeightsLocation(f, ENV_DIR)
    f = hub_checkpoint_dir() / spec.checkpoint
    if f.is_file():
        return WeightsLocation(f, "torch hub cache")
    return None


def weights_not_found_message(spec: EncodecSpec) -> str:
    msg = (
        f"{spec.label} weights not found: put {spec.checkpoint} in {hub_checkpoint_dir()}/ or pass "
        f"--weights DIR (or set {ENV_DIR}); the file is {DOWNLOAD_ROOT}{spec.checkpoint}"
    )
    env = os.environ.get(ENV_DIR)
    if env:
        msg += f" ({ENV_DIR}={env} has no such file)"
    return msg


# --------------------------------------------------------------------------------------------------
# Loading


def _short(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:160]


def build_architecture(spec: EncodecSpec) -> Any:
    """The EnCodec network with random weights, never downloading (``pretrained=False``).

    The global RNG is forked so that building a model does not shift the caller's random stream.
    """
    import torch
    from encodec import EncodecModel

    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torch's weight_norm deprecation notice, once per conv
        model = getattr(EncodecModel, spec.builder)(pretrained=False)
    model.eval()
    return model


def _unwrap_state(path: Path, state: Any) -> dict[str, torch.Tensor]:
    """The flat name -> tensor mapping, also from common training-checkpoint wrappers."""
    import torch

    if isinstance(state, Mapping) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model", "model_state_dict", "best_state"):
            inner = state.get(key)
            if isinstance(inner, Mapping):
                state = inner
                break
    if not isinstance(state, Mapping) or not state:
        raise CodecError(f"{path}: not a state dict (a mapping of parameter names to tensors)")
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CodecError(f"{path}: not a state dict (entry {k!r} is not a named tensor)")
    out: dict[str, torch.Tensor] = dict(state)
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items()}
    # Fine-tunes saved with torch's newer parametrized weight_norm use other names for the same tensors.
    return {
        k.replace(".parametrizations.weight.original0", ".weight_g").replace(
            ".parametrizations.weight.original1", ".weight_v"
        ): v
        for k, v in out.items()
    }


def _check_state(
    spec: EncodecSpec,
    path: Path,
    expected: Mapping[str, tuple[tuple[int, ...], bool]],
    state: dict[str, torch.Tensor],
) -> None:
    """Names, shapes, dtypes and finiteness, reported as one line (load_state_dict's errors are many).

    `expected` maps each name to (shape, is floating point).
    """
    import torch

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k][0]]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
            parts.append(f"'{k}' is {list(state[k].shape)} where the model has {list(expected[k][0])}{more}")
        if missing:
            parts.append(f"{len(missing)} missing keys, e.g. '{missing[0]}'")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys, e.g. '{unexpected[0]}'")
        hint = _other_model_hint(spec, state)
        raise CodecError(f"{path}: does not fit the {spec.label} architecture: {'; '.join(parts)}{hint}")
    for k, v in state.items():
        if expected[k][1] and not v.is_floating_point():
            raise CodecError(f"{path}: '{k}' has dtype {v.dtype}, expected floating point")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CodecError(f"{path}: '{k}' contains NaN or infinite values")


# Names -> (shape, floating) of each architecture, remembered after the first build so that a wrong file
# is rejected without paying for another one.
_EXPECTED: dict[str, dict[str, tuple[tuple[int, ...], bool]]] = {}


def _expected_of(model: Any) -> dict[str, tuple[tuple[int, ...], bool]]:
    return {k: (tuple(v.shape), v.is_floating_point()) for k, v in model.state_dict().items()}


def _other_model_hint(spec: EncodecSpec, state: Mapping[str, Any]) -> str:
    # Only the 48 kHz model has GroupNorm parameters; only the 24 kHz one has weight_norm's weight_g.
    has_norm = any(k.endswith(".conv.norm.weight") for k in state)
    has_wn = any(k.endswith(".weight_g") for k in state)
    if spec.id == "encodec-24khz" and has_norm and not has_wn:
        return " (these look like encodec-48khz weights)"
    if spec.id == "encodec-48khz" and has_wn and not has_norm:
        return " (these look like encodec-24khz weights)"
    return ""


def _load_model_uncached(spec: EncodecSpec, path: Path) -> Any:
    import torch

    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CodecError(f"{path}: not a readable {spec.label} state-dict file ({_short(exc)})") from None
    state = _unwrap_state(path, raw)
    model = None
    if spec.id not in _EXPECTED:
        model = build_architecture(spec)
        _EXPECTED[spec.id] = _expected_of(model)
    _check_state(spec, path, _EXPECTED[spec.id], state)
    if model is None:
        model = build_architecture(spec)
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # checked above; kept so no multi-line torch error can escape
        raise CodecError(f"{path}: cannot load into {spec.label} ({_short(exc)})") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# Models are shared while any codec holds them, so switching latent kind does not reload 90 MB.
_MODELS: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()
_MODELS_LOCK = threading.Lock()


def load_model(spec: EncodecSpec, path: Path) -> Any:
    st = path.stat()
    key = (spec.id, str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _load_model_uncached(spec, path)
            _MODELS[key] = model
    return model


# --------------------------------------------------------------------------------------------------
# Codecs


class EncodecCodec(Codec):
    """What both EnCodec variants share: options, audio <-> tensor layout, quantization."""

    hop_length = HOP

    def __init__(
        self,
        spec: EncodecSpec,
        model: Any,
        latent_kind: str,
        bandwidth: float | None,
        weights: WeightsLocation,
    ) -> None:
        self.id = spec.id
        self.sample_rate = spec.sample_rate
        self.channels = spec.channels
        self.latent_dim = spec.latent_dim
        self.latent_kind = latent_kind
        self.spec = spec
        self.model = model
        self.bandwidth = bandwidth
        self.weights = weights

    def _audio_tensor(self, clip: AudioClip) -> torch.Tensor:
        """[1, channels, T * hop] at the codec's rate, zero-padded to whole frames."""
        import torch

        x = self.prepare(clip).samples.T  # [channels, n]
        n = x.shape[1]
        padded = np.zeros((self.channels, self.num_frames(n) * HOP), dtype=np.float32)
        padded[:, :n] = x
        return torch.from_numpy(padded)[None]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output [1, 128, frames], replaced by the sum of RVQ codebook vectors if quantized."""
        emb = self.model.encoder(x)
        if self.bandwidth is not None:
            q = self.model.quantizer
            emb = q.decode(q.encode(emb, self.model.frame_rate, self.bandwidth))
        return emb

    def _decoder(self, z: np.ndarray) -> np.ndarray:
        """Decoder on latent frames [T, 128] -> [channels, T * hop] (float32)."""
        import torch

        zt = torch.from_numpy(np.ascontiguousarray(z[:, :EMBED_DIM].T))[None]
        return self.model.decoder(zt)[0].numpy()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            label=self.spec.label,
            bandwidth_kbps=self.bandwidth,
            weights_path=str(self.weights.path),
            weights_source=self.weights.source,
            context_frames=self.context_frames,
            lookahead_frames=self.lookahead_frames,
            notes=self.spec.notes,
        )
        return d


class Encodec24Codec(EncodecCodec):
    """Causal mono 24 kHz EnCodec (see the module docstring for the measured context)."""

    context_frames = 16
    lookahead_frames = 0
    # Reflection padding at the clip start: frames [0, 1) need a window of 7 frames to match the whole
    # decode to the float floor (measured; with fewer the error is up to 3e-5 RMS); 8 for margin.
    START_FRAMES = 8
    LONG_CHUNK_FRAMES = 1500  # 20 s: bounds activation memory for long clips
    LONG_CONTEXT_FRAMES = 75  # 1 s of left context per long chunk

    def encode(self, clip: AudioClip) -> np.ndarray:
        import torch

        x = self._audio_tensor(clip)
        t = x.shape[-1] // HOP
        parts = []
        with torch.inference_mode():
            for c0 in range(0, t, self.LONG_CHUNK_FRAMES):
                c1 = min(t, c0 + self.LONG_CHUNK_FRAMES)
                a = max(0, c0 - self.LONG_CONTEXT_FRAMES)
                parts.append(self._embed(x[..., a * HOP : c1 * HOP])[..., c0 - a :])
            z = torch.cat(parts, dim=-1)[0].T.contiguous().numpy()
        return np.ascontiguousarray(z, dtype=np.float32)

    def decode_samples(self, z: np.ndarray) -> np.ndarray:
        import torch

        z = self.check_latents(z)
        t = z.shape[0]
        parts = []
        with torch.inference_mode():
            for c0 in range(0, t, self.LONG_CHUNK_FRAMES):
                c1 = min(t, c0 + self.LONG_CHUNK_FRAMES)
                a = max(0, c0 - self.LONG_CONTEXT_FRAMES)
                parts.append(self._decoder(z[a:c1])[:, (c0 - a) * HOP :])
        return np.ascontiguousarray(np.concatenate(parts, axis=1).T, dtype=np.float32)

    def decode_block(self, z: np.ndarray, start: int, stop: int) -> np.ndarray:
        z = self.check_latents(z)
        t = z.shape[0]
        if not (0 <= start < stop <= t):
            raise CodecError(f"block [{start}, {stop}) is outside the {t} frames of the clip")
        a = max(0, start - self.context_frames)
        b = min(t, stop + self.lookahead_frames)
        if a == 0:
            b = max(b, min(t, self.START_FRAMES))
        y = self.decode_samples(z[a:b])
        off = (start - a) * HOP
        return y[off : off + (stop - start) * HOP]


class Encodec48Codec(EncodecCodec):
    """Stereo 48 kHz EnCodec on a fixed grid of 1 s chunks (see the module docstring for why)."""

    CHUNK_FRAMES = 150
    OVERLAP_FRAMES = 2
    STRIDE_FRAMES = CHUNK_FRAMES - OVERLAP_FRAMES
    GAIN_CHANNEL = EMBED_DIM
    loudness_channel = EMBED_DIM
    SCALE_EPS = 1e-8
    CACHE_CHUNKS = 8
    context_frames = CHUNK_FRAMES - 1
    lookahead_frames = CHUNK_FRAMES - 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: OrderedDict[tuple[int, int, bytes], np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @classmethod
    def chunks(cls, num_frames: int) -> list[tuple[int, int]]:
        """Frame windows [f0, f1) of the chunks; the last one is longer than the overlap, at most 1 s."""
        if num_frames <= cls.CHUNK_FRAMES:
            return [(0, num_frames)]
        n = -(-(num_frames - cls.OVERLAP_FRAMES) // cls.STRIDE_FRAMES)
        starts = [k * cls.STRIDE_FRAMES for k in range(n)]
        return [(f0, min(num_frames, f0 + cls.CHUNK_FRAMES)) for f0 in starts]

    def encode(self, clip: AudioClip) -> np.ndarray:
        import torch

        x = self._audio_tensor(clip)
        t = x.shape[-1] // HOP
        windows = self.chunks(t)
        z = np.empty((t, self.latent_dim), dtype=np.float32)
        with torch.inference_mode():
            for k, (f0, f1) in enumerate(windows):
                seg = x[..., f0 * HOP : f1 * HOP]
                # encodec's own normalization: RMS of the mono mix over the segment, plus 1e-8.
                scale = float(seg.mean(dim=1).pow(2).mean().sqrt()) + self.SCALE_EPS
                emb = self._embed(seg / scale)[0].numpy()  # [128, f1 - f0]
                own = f1 if k == len(windows) - 1 else (k + 1) * self.STRIDE_FRAMES
                z[f0:own, :EMBED_DIM] = emb[:, : own - f0].T
                z[f0:own, self.GAIN_CHANNEL] = math.log(scale)
        return z

    def decode_samples(self, z: np.ndarray) -> np.ndarray:
        import torch

        z = self.check_latents(z)
        windows = self.chunks(z.shape[0])
        with torch.inference_mode():
            return self._render(z, windows, range(len(windows)), self._decoder)

    def decode_block(self, z: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Exactly the whole-clip samples of frames [start, stop): decodes the chunks that touch them."""
        import torch

        z = self.check_latents(z)
        t = z.shape[0]
        if not (0 <= start < stop <= t):
            raise CodecError(f"block [{start}, {stop}) is outside the {t} frames of the clip")
        windows = self.chunks(t)
        ks = [k for k, (f0, f1) in enumerate(windows) if f0 < stop and f1 > start]
        with torch.inference_mode():
            y = self._render(z, windows, range(ks[0], ks[-1] + 1), self._decoder_cached)
        off = (start - windows[ks[0]][0]) * HOP
        return y[off : off + (stop - start) * HOP]

    def _decoder_cached(self, zc: np.ndarray) -> np.ndarray:
        """Decoder output for one chunk, remembered by content: playback asks for the same chunk ~10x."""
        digest = hashlib.blake2b(zc[:, :EMBED_DIM].tobytes(), digest_size=16).digest()
        key = (zc.shape[0], zc.shape[1], digest)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        y = self._decoder(zc)
        y.setflags(write=False)
        with self._cache_lock:
            self._cache[key] = y
            while len(self._cache) > self.CACHE_CHUNKS:
                self._cache.popitem(last=False)
        return y

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def _render(
        self,
        z: np.ndarray,
        windows: list[tuple[int, int]],
        ks: range,
        decode: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Samples [n, channels] of chunks `ks` (from the first one's start), cross-faded and gained."""
        f_start, f_end = windows[ks[0]][0], windows[ks[-1]][1]
        out = np.zeros((self.channels, (f_end - f_start) * HOP), dtype=np.float32)
        ovl = self.OVERLAP_FRAMES * HOP
        fade_in = ((np.arange(ovl) + 0.5) / ovl).astype(np.float32)
        for k in ks:
            f0, f1 = windows[k]
            w = np.ones((f1 - f0) * HOP, dtype=np.float32)
            if k > 0:
                w[:ovl] = fade_in
            if k < len(windows) - 1:
                w[-ovl:] = fade_in[::-1]
            out[:, (f0 - f_start) * HOP : (f1 - f_start) * HOP] += decode(z[f0:f1]) * w
        out *= self._gain(z[:, self.GAIN_CHANNEL], f_start * HOP, f_end * HOP)
        return np.ascontiguousarray(out.T)

    @staticmethod
    def _gain(log_gain: np.ndarray, s0: int, s1: int) -> np.ndarray:
        """Per-sample gain for samples [s0, s1): log-gain interpolated linearly between frame centres."""
        centres = (np.arange(log_gain.shape[0]) + 0.5) * HOP
        pos = np.arange(s0, s1) + 0.5
        return np.exp(np.interp(pos, centres, log_gain.astype(np.float64))).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            gain_channel=self.GAIN_CHANNEL,
            chunk_frames=self.CHUNK_FRAMES,
            chunk_overlap_frames=self.OVERLAP_FRAMES,
            design=(
                "1 s chunks on a fixed frame grid (stride 148 frames, 2-frame cross-fade), each normalized "
                "by its RMS as EnCodec does; channel 128 = ln(chunk scale), applied back at decode"
            ),
        )
        return d


# --------------------------------------------------------------------------------------------------
# Registry


def _make_factory(spec: EncodecSpec) -> Callable[..., Codec]:
    def factory(
        latent: str | None = None,
        weights: str | os.PathLike[str] | None = None,
        context_frames: int | None = None,
        **other: Any,
    ) -> Codec:
        if other:
            raise CodecError(f"codec '{spec.id}' has no option {', '.join(sorted(other))}")
        kind, bandwidth = parse_latent_kind(spec, latent)
        location = find_weights(spec, weights, strict=True)
        if location is None:
            raise WeightsNotFoundError(weights_not_found_message(spec))
        model = load_model(spec, location.path)
        cls = Encodec24Codec if spec.channels == 1 else Encodec48Codec
        codec = cls(spec, model, kind, bandwidth, location)
        if context_frames is not None:
            if cls is not Encodec24Codec:
                raise CodecError(f"{spec.id}: context_frames is fixed by its 1 s chunk grid")
            if int(context_frames) < 0:
                raise CodecError(f"context_frames must be >= 0, got {context_frames}")
            codec.context_frames = int(context_frames)
        return codec

    return factory


def _make_summary(spec: EncodecSpec) -> Callable[..., dict[str, Any]]:
    def summary(weights: str | os.PathLike[str] | None = None, **_: Any) -> dict[str, Any]:
        location = find_weights(spec, weights, strict=False)
        return {
            "id": spec.id,
            "sample_rate": spec.sample_rate,
            "channels": spec.channels,
            "frame_rate": spec.frame_rate,
            "latent_dim": spec.latent_dim,
            "hop_length": HOP,
            "weights_present": location is not None,
            "weights_path": str(location.path) if location else None,
            "weights_file": spec.checkpoint,
            "latent_kinds": ["continuous"] + [f"quantized:{_fmt_kbps(b)}" for b in spec.bandwidths],
            "notes": spec.notes,
        }

    return summary


def register_encodec() -> None:
    for spec in SPECS.values():
        register(CodecEntry(id=spec.id, factory=_make_factory(spec), summary=_make_summary(spec)))
