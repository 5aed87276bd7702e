"""The Codec contract (see DESIGN.md).

A codec maps audio to latents ``z`` shaped ``[T, D]`` (float32, T frames at `frame_rate`) and back.
Frame ``t`` owns output samples ``[t * hop_length, (t + 1) * hop_length)``, so a block decoder can fill
a playback buffer frame range by frame range: ``decode_block(z, a, b)`` returns exactly the samples of
frames ``[a, b)``, using up to `context_frames` frames of left context (and `lookahead_frames` of right
context, for non-causal decoders) so consecutive blocks join without clicks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from workbench.core.audio import AudioClip
from workbench.core.errors import CodecError


class Codec(ABC):
    id: str = ""
    sample_rate: int = 0
    channels: int = 1
    hop_length: int = 1
    latent_dim: int = 0
    latent_kind: str = "continuous"
    context_frames: int = 0
    lookahead_frames: int = 0
    # The latent channel that carries the frame's level, when the codec has one (the default codec's
    # measured log-energy, EnCodec 48 kHz's log gain): probe edits of other properties keep it as it was.
    loudness_channel: int | None = None

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop_length)

    def prepare(self, clip: AudioClip) -> AudioClip:
        """The clip at this codec's rate and channel layout."""
        if clip.num_samples == 0:
            raise CodecError("cannot encode an empty clip")
        return clip.to(self.sample_rate, self.channels)

    @abstractmethod
    def encode(self, clip: AudioClip) -> np.ndarray:
        """Latents [T, D] float32 with T = ceil(samples / hop_length) at the codec's rate."""

    @abstractmethod
    def decode_samples(self, z: np.ndarray) -> np.ndarray:
        """Whole-clip decode: [T * hop_length, channels] float32."""

    def decode(self, z: np.ndarray, num_samples: int | None = None) -> AudioClip:
        z = self.check_latents(z)
        y = self.decode_samples(z)
        if num_samples is not None:
            y = y[:num_samples]
        return AudioClip(y, self.sample_rate)

    def decode_block(self, z: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Samples of frames [start, stop): decodes [start - context, stop + lookahead) and crops.

        Subclasses with streaming state may do better; this default is exact for decoders whose
        receptive field fits in the context.
        """
        z = self.check_latents(z)
        t = z.shape[0]
        if not (0 <= start < stop <= t):
            raise CodecError(f"block [{start}, {stop}) is outside the {t} frames of the clip")
        a = max(0, start - self.context_frames)
        b = min(t, stop + self.lookahead_frames)
        y = self.decode_samples(z[a:b])
        off = (start - a) * self.hop_length
        return y[off : off + (stop - start) * self.hop_length]

    def block_decoder(self, z: np.ndarray) -> BlockDecoder:
        """A block decoder over `z`, for live playback; codecs with decoder state override this."""
        return BlockDecoder(self, z)

    def check_latents(self, z: Any) -> np.ndarray:
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise CodecError(
                f"latents of shape {tuple(z.shape)} do not fit codec '{self.id}' (expects [T, {self.latent_dim}])"
            )
        if z.shape[0] == 0:
            raise CodecError("latents have no frames")
        if not np.isfinite(z).all():
            raise CodecError("latents contain NaN or infinite values")
        return np.ascontiguousarray(z, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "frame_rate": self.frame_rate,
            "hop_length": self.hop_length,
            "latent_dim": self.latent_dim,
            "latent_kind": self.latent_kind,
        }


class BlockDecoder:
    """Decodes frame ranges of one latent sequence, in any order, for the playback engine.

    This default is stateless (each block decodes with the codec's left/right context). Codecs whose
    decoder carries state across frames (the default codec's phase) subclass it to continue from the
    previous block, so consecutive blocks equal a whole-clip decode.
    """

    def __init__(self, codec: Codec, z: np.ndarray) -> None:
        self.codec = codec
        self.z = codec.check_latents(z)

    @property
    def num_frames(self) -> int:
        return int(self.z.shape[0])

    def set_latents(self, z: np.ndarray, keep_before: int = 0) -> None:
        """Swap in edited latents; state for frames before `keep_before` may be kept."""
        z = self.codec.check_latents(z)
        if z.shape != self.z.shape:
            raise CodecError(f"new latents {tuple(z.shape)} differ in shape from {tuple(self.z.shape)}")
        self.z = z

    def decode(self, start: int, stop: int) -> np.ndarray:
        return self.codec.decode_block(self.z, start, stop)
