"""Shared fixtures for core tests: a tiny random default codec (fast, deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workbench.core.codecs.default import DefaultCodec
from workbench.core.codecs.default_model import DefaultCodecConfig, SpectralAutoencoder
from workbench.core.codecs.default_train import atomic_save_safetensors, atomic_write_json


def make_tiny_codec_dir(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=16)
    model = SpectralAutoencoder(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.dec_out.bias.fill_(-1.0)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(folder / "model.safetensors", dict(model.state_dict()))
    atomic_write_json(folder / "config.json", {"format": "workbench-default-codec", "model": cfg.to_dict()})
    return folder


@pytest.fixture(scope="session")
def tiny_codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_codec_dir(tmp_path_factory.mktemp("tiny_codec"))


@pytest.fixture()
def tiny_codec(tiny_codec_dir: Path) -> DefaultCodec:
    return DefaultCodec(tiny_codec_dir)
