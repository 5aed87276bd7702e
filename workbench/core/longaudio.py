"""Files of any length in windows: encode, SAE features, steer and decode with memory bounded by the
window, not by the file.

A one-hour file at 24 kHz is 345 MB of float32 samples, and a whole-clip encode or decode of it needs
several times that for the spectra; its latents ([T, D] at 75 frames/s) are only ~70 MB. So the CLI
keeps the latents whole and streams everything else:

- `encode_file`: the file is read block by block (`audio.iter_blocks`, one resampling stream), each
  window is encoded with `encoder_context_frames` of audio context on both sides, and only the
  window's own frames are kept. With enough context this equals the whole-clip encode: the default
  codec declares its receptive field (`DefaultCodec.encoder_context_frames`), so its windowed latents
  match a whole-clip encode to float precision. Other codecs get one second of context, which is
  approximate for encoders that see further (EnCodec's LSTM); files shorter than one window are
  encoded whole, exactly as before.
- `steer_windowed`: SAE edits act frame by frame, so they are applied window by window with the
  window's absolute start (time ranges stay where they were).
- `write_features_npy`: features [T, d_sae] (1 GB for one hour at 1024 features) go to the ``.npy``
  window by window, never whole in memory.
- `decode_to_file`: the codec's block decoder (the one live playback uses, exact at block joins)
  feeds an `audio.open_audio_writer`, so the output is written as it is decoded, atomically. Given a
  `limiter.PeakLimiter` (the CLI's exports pass one unless ``--no-limit``), every block goes through
  it; its state carries across the blocks, so the file equals a one-pass limit of the whole decode.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.audio import AudioClip, audio_info, iter_blocks, load_audio, open_audio_writer
from workbench.core.codecs.base import Codec
from workbench.core.errors import UsageError
from workbench.core.limiter import PeakLimiter

WINDOW_SECONDS = 60.0  # audio per encode window (the default codec needs ~60 MB per minute)
FEATURE_FRAMES = 4096  # latent frames per SAE window (features: 4096 x d_sae floats)
DECODE_FRAMES = 750  # latent frames per decoded block (10 s at 75 frames/s)

Progress = Callable[[float, str], None]


def encoder_context_frames(codec: Codec) -> int:
    """Frames of audio context each side of a window: the codec's own figure if it declares one, else
    one second (approximate for encoders with a longer reach)."""
    c = getattr(codec, "encoder_context_frames", None)
    if isinstance(c, int) and c >= 0:
        return c
    return int(math.ceil(codec.frame_rate))


def encode_file(
    path: str | os.PathLike[str],
    codec: Codec,
    window_seconds: float = WINDOW_SECONDS,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """(latents [T, D], samples at the codec's rate) of a whole file, in windows of `window_seconds`."""
    info = audio_info(path)
    if info.duration <= window_seconds:
        clip = load_audio(path, codec.sample_rate, codec.channels)
        return codec.encode(clip), clip.num_samples
    hop, sr = codec.hop_length, codec.sample_rate
    w_frames = max(1, int(round(window_seconds * codec.frame_rate)))
    ctx = encoder_context_frames(codec) * hop
    blocks = iter_blocks(path, w_frames * hop / sr, sr, codec.channels)
    est_frames = max(1, int(info.duration * codec.frame_rate))
    parts: list[np.ndarray] = []
    left = np.zeros((0, codec.channels), np.float32)
    cur = next(blocks, None)
    total = 0
    done = 0
    while cur is not None:
        nxt = next(blocks, None)
        right = nxt.samples[:ctx] if nxt is not None else np.zeros((0, codec.channels), np.float32)
        x = np.concatenate([left, cur.samples, right]) if len(left) or len(right) else cur.samples
        z = codec.encode(AudioClip(x, sr))
        first = len(left) // hop  # `left` is whole frames: every block but the last is a multiple of hop
        own = -(-cur.num_samples // hop)
        parts.append(np.ascontiguousarray(z[first : first + own]))
        done += own
        total += cur.num_samples
        tail = np.concatenate([left, cur.samples]) if len(left) else cur.samples
        left = np.ascontiguousarray(tail[max(0, len(tail) - ctx) :])
        cur = nxt
        if progress is not None:
            progress(min(1.0, done / est_frames), "encoding")
    z_all = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return z_all, total


def _windows(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def steer_windowed(
    z: np.ndarray, edits: Sequence[Any], ctx: Any, window_frames: int = FEATURE_FRAMES
) -> np.ndarray:
    """`steering.apply_edits` over windows of frames (the SAE's features of only one window at a time)."""
    from workbench.core.steering import apply_edits

    if not edits or ctx is None:
        return np.asarray(z, np.float32)
    if len(z) <= window_frames:
        return apply_edits(z, edits, ctx)
    out = np.empty(z.shape, np.float32)
    for a, b in _windows(len(z), window_frames):
        out[a:b] = apply_edits(z[a:b], edits, ctx, frame_offset=a)
    return out


def write_features_npy(
    path: str | os.PathLike[str],
    z: np.ndarray,
    encode: Callable[[np.ndarray], np.ndarray],
    d_out: int,
    window_frames: int = FEATURE_FRAMES,
) -> tuple[int, float]:
    """Write ``encode(z)`` ([T, d_out] float32) to a ``.npy`` window by window, atomically.

    Returns (frames, mean number of active features per frame)."""
    from workbench.core.fileio import atomic_open

    n = int(z.shape[0])
    active = 0
    with atomic_open(path, "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                  "shape": (n, int(d_out))}
        np.lib.format.write_array_header_1_0(f, header)
        for a, b in _windows(n, window_frames):
            fw = np.ascontiguousarray(encode(z[a:b]), dtype="<f4")
            if fw.shape != (b - a, d_out):
                raise UsageError(f"features of shape {fw.shape} do not fit [{b - a}, {d_out}]")
            active += int((fw > 0).sum())
            f.write(fw.tobytes())
    return n, active / max(1, n)


def decode_to_file(
    path: str | os.PathLike[str],
    codec: Codec,
    z: np.ndarray,
    num_samples: int | None = None,
    block_frames: int = DECODE_FRAMES,
    progress: Progress | None = None,
    limiter: PeakLimiter | None = None,
) -> int:
    """Decode `z` block by block into an audio file (written atomically); returns the samples written.

    With a `limiter` the output is limited (file mode: it holds back its look-ahead and is flushed at
    the end); read its `max_reduction_db` / `nonfinite` afterwards. Without one, the raw decode."""
    z = codec.check_latents(z)
    t = int(z.shape[0])
    limit = t * codec.hop_length if num_samples is None else min(int(num_samples), t * codec.hop_length)
    dec = codec.block_decoder(z)
    written = 0
    with open_audio_writer(Path(path), codec.sample_rate, codec.channels) as w:
        for a, b in _windows(t, block_frames):
            y = dec.decode(a, b)
            keep = min(len(y), limit - written)
            if keep > 0:
                out = y[:keep] if limiter is None else limiter.feed(y[:keep])
                if len(out):
                    w.write(out)
                written += keep
            if progress is not None:
                progress(b / t, "decoding")
        if limiter is not None:
            tail = limiter.flush()
            if len(tail):
                w.write(tail)
    return written
