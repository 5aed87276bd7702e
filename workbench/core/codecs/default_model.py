"""Network of the embedded default codec: a frame-rate autoencoder over STFT log-magnitudes.

Encoder: log-magnitude frames (Hann window `n_fft`, hop `hop`) -> ConvNeXt-style 1-D blocks at frame
rate -> a continuous latent of `latent_dim` per frame (or, with ``encoder="filterbank"``, the logs of
`latent_dim` learned spectral bands). Decoder: latent -> blocks -> log-magnitudes.
Phase is rebuilt outside the network (`phase.py`: frame-to-frame phase, refined by RTISI-LA). Everything runs at frame rate (75 Hz at 24 kHz /
hop 320), which is what makes training affordable on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class DefaultCodecConfig:
    sample_rate: int = 24000
    n_fft: int = 1280
    hop: int = 320
    latent_dim: int = 64
    channels: int = 256
    enc_blocks: int = 4
    dec_blocks: int = 6
    kernel: int = 5
    expansion: int = 3
    head_hidden: int = 0  # >0: an MLP output head (full-rank spectra); 0: one linear layer
    log_floor: float = 1e-4  # magnitude floor in the input features (STFT of [-1, 1] audio, window-sum scale)
    out_min: float = -12.0  # clamp of predicted log-magnitude: guards against blow-ups (seen as NaN)
    out_max: float = 7.0
    # One extra latent channel carrying the frame's log-energy, measured (not learned); the decoder's
    # spectrum is rescaled to it, so loudness survives the round trip by construction.
    energy_latent: bool = False
    # "conv": ConvNeXt blocks over log-magnitude frames -> a linear projection. "filterbank": each
    # learned channel is the log of a learned non-negative band (initialised as mel-spaced triangles,
    # trained with the decoder): no temporal context, and every channel is a band of the spectrum.
    encoder: str = "conv"
    # Phase rebuild (phase.py): spectral peaks quieter than this (dB below the frame's loudest bin) do
    # not get their own frequency; their bins follow the nearest louder peak.
    peak_floor_db: float = -70.0
    # Phase inversion (phase.StreamingInverter): frames kept open after they arrive, and Griffin-Lim
    # rounds over them per frame (0 rounds = the frame-to-frame rebuild alone).
    phase_lookahead: int = 3
    phase_iters: int = 1

    @property
    def code_dim(self) -> int:
        """Size of a latent frame: the learned channels plus the energy channel if any."""
        return self.latent_dim + int(self.energy_latent)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @property
    def dec_radius(self) -> int:
        """Frames of context each side that a decoder output frame depends on."""
        return 1 + self.dec_blocks * (self.kernel // 2)

    @property
    def enc_radius(self) -> int:
        if self.encoder == "filterbank":
            return 0
        return 1 + self.enc_blocks * (self.kernel // 2)


def band_filters(sample_rate: int, n_fft: int, n_bands: int) -> torch.Tensor:
    """[n_bins, n_bands] triangles with mel-spaced centres (at least one bin apart), each summing to 1."""
    from workbench.core.visuals import hz_to_mel, mel_to_hz

    n_bins = n_fft // 2 + 1
    bin_hz = sample_rate / n_fft
    centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_bands + 2)[1:-1]) / bin_hz
    for i in range(1, n_bands):  # low mel bands are narrower than a bin: spread them a bin apart
        centres[i] = max(centres[i], centres[i - 1] + 1.0)
    centres = np.minimum(centres, np.arange(n_bands) + n_bins - n_bands)  # and keep the top ones in range
    edges = np.concatenate([[max(0.0, centres[0] - 1.0)], centres, [n_bins - 1.0]])
    k = np.arange(n_bins)[:, None]
    lo, mid, hi = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    tri = np.maximum(0.0, np.minimum((k - lo) / np.maximum(mid - lo, 1e-9), (hi - k) / np.maximum(hi - mid, 1e-9)))
    tri = np.where(np.abs(k - mid) < 0.5, np.maximum(tri, 1.0), tri)  # a band's nearest bin always counts
    return torch.from_numpy((tri / tri.sum(0, keepdims=True)).astype(np.float32))


ENERGY_EPS = 1e-4  # energy floor of the energy channel (STFT units; ~ -120 dBFS)


def energy_code(mag: torch.Tensor) -> torch.Tensor:
    """[B, T, K] magnitudes -> the energy channel [B, T]: (ln(sum |X|^2 + eps) - 4) / 4, about -3.3..2."""
    return (torch.log((mag**2).sum(-1) + ENERGY_EPS) - 4.0) / 4.0


def energy_from_code(e: torch.Tensor) -> torch.Tensor:
    return torch.exp(e * 4.0 + 4.0)


class Block(nn.Module):
    """ConvNeXt 1-D block: depthwise conv, LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(self, dim: int, kernel: int, expansion: int) -> None:
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, dim * expansion)
        self.pw2 = nn.Linear(dim * expansion, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, T]
        y = self.dw(x).transpose(1, 2)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class SpectralAutoencoder(nn.Module):
    def __init__(self, cfg: DefaultCodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        if cfg.encoder == "filterbank":
            self.enc_fb = nn.Parameter(band_filters(cfg.sample_rate, cfg.n_fft, cfg.latent_dim))
        else:
            self.enc_in = nn.Conv1d(cfg.n_bins, c, 3, padding=1)
            self.enc_blocks = nn.Sequential(*[Block(c, cfg.kernel, cfg.expansion) for _ in range(cfg.enc_blocks)])
            self.enc_norm = nn.LayerNorm(c)
            self.enc_out = nn.Linear(c, cfg.latent_dim)
        self.dec_in = nn.Conv1d(cfg.code_dim, c, 3, padding=1)
        self.dec_blocks = nn.Sequential(*[Block(c, cfg.kernel, cfg.expansion) for _ in range(cfg.dec_blocks)])
        self.dec_norm = nn.LayerNorm(c)
        # A single linear layer can only emit spectra in a `channels`-dim subspace: too few for sharp
        # harmonic combs at every pitch. The MLP head lifts that limit.
        self.dec_hidden = nn.Linear(c, cfg.head_hidden) if cfg.head_hidden > 0 else None
        self.dec_out = nn.Linear(cfg.head_hidden if cfg.head_hidden > 0 else c, cfg.n_bins)
        # Start near the corpus' mean log-magnitude so early training is not spent on the offset.
        nn.init.zeros_(self.dec_out.weight)
        nn.init.constant_(self.dec_out.bias, -4.0)

    def features(self, mag: torch.Tensor) -> torch.Tensor:
        """[B, T, K] magnitudes -> normalised log-magnitudes [B, K, T]."""
        return ((torch.log(mag + self.cfg.log_floor) + 4.0) / 3.0).transpose(1, 2)

    def encode_mag(self, mag: torch.Tensor) -> torch.Tensor:
        """[B, T, K] magnitudes -> latents [B, T, D]."""
        if self.cfg.encoder == "filterbank":
            # abs keeps the bands non-negative whatever training does to the parameter.
            z = (torch.log(mag @ self.enc_fb.abs() + self.cfg.log_floor) + 4.0) / 3.0
        else:
            h = self.enc_blocks(self.enc_in(self.features(mag)))
            z = self.enc_out(self.enc_norm(h.transpose(1, 2)))
        if self.cfg.energy_latent:
            z = torch.cat([z, energy_code(mag)[..., None]], dim=-1)
        return z

    def decode_logmag(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, T, D] -> log-magnitudes [B, T, K] (clamped)."""
        h = self.dec_blocks(self.dec_in(z.transpose(1, 2)))
        h = self.dec_norm(h.transpose(1, 2))
        if self.dec_hidden is not None:
            h = F.gelu(self.dec_hidden(h))
        out = self.dec_out(h)
        if self.cfg.energy_latent:
            # Shift each frame's log-spectrum so its energy is the one the latent asks for.
            target = torch.log((energy_from_code(z[..., -1]) - ENERGY_EPS).clamp_min(1e-10))
            out = out + 0.5 * (target - torch.logsumexp(2.0 * out, dim=-1))[..., None]
        return out.clamp(self.cfg.out_min, self.cfg.out_max)


def load_weights_upgrading(model: SpectralAutoencoder, state: dict[str, torch.Tensor]) -> list[str]:
    """Load `state` into `model`, widening tensors whose shape grew. Returns the names that were widened.

    Two upgrades exist: adding the energy channel, and widening the learned latent. New encoder output
    rows keep their (random) init; new latent channels enter the decoder with zero weights, so the
    upgraded model decodes exactly as before until training uses them. The energy channel, when the
    old weights had one, stays the decoder's last input."""
    own = model.state_dict()
    widened: list[str] = []
    for name, value in state.items():
        if name not in own:
            raise ValueError(f"unexpected weight '{name}'")
        if own[name].shape != value.shape:
            if own[name].ndim != value.ndim or any(a < b for a, b in zip(own[name].shape, value.shape, strict=True)):
                raise ValueError(f"weight '{name}' has shape {tuple(value.shape)}, model wants {tuple(own[name].shape)}")
            new = own[name].clone()
            if name == "dec_in.weight":
                new[:, value.shape[1]:] = 0.0
                old_latent = state["enc_out.weight"].shape[0] if "enc_out.weight" in state else value.shape[1]
                if model.cfg.energy_latent and value.shape[1] == old_latent + 1:
                    new[:, -1] = value[:, -1]  # the old energy channel stays last
                    new[:, old_latent:-1] = 0.0
                    value = value[:, :old_latent]
            new[tuple(slice(0, n) for n in value.shape)] = value
            value = new
            widened.append(name)
        own[name] = value
    model.load_state_dict(own)
    return widened


def stft_mag(x: torch.Tensor, cfg: DefaultCodecConfig, window: torch.Tensor | None = None) -> torch.Tensor:
    """[B, N] audio (N a multiple of hop) -> magnitudes [B, N / hop, K], frames centered on t * hop."""
    if window is None:
        window = torch.hann_window(cfg.n_fft, device=x.device)
    s = torch.stft(x, cfg.n_fft, cfg.hop, window=window, center=True, pad_mode="constant", return_complex=True)
    return s.abs().transpose(1, 2)[:, : x.shape[-1] // cfg.hop]
