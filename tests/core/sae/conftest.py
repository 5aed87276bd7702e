"""Synthetic latents with known sparse structure: each frame is a sparse non-negative combination of
random unit atoms plus an offset and a little noise, so an SAE that learns the atoms reconstructs well."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch


class SparseData:
    def __init__(self, d_in: int = 32, n_atoms: int = 64, k: int = 3, seed: int = 0, offset: float = 1.0) -> None:
        rng = np.random.default_rng(seed)
        atoms = rng.normal(size=(n_atoms, d_in))
        self.atoms = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
        self.offset = offset * rng.normal(size=d_in)
        self.d_in, self.n_atoms, self.k = d_in, n_atoms, k

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        idx = np.argsort(rng.random((n, self.n_atoms)), axis=1)[:, : self.k]
        acts = np.zeros((n, self.n_atoms))
        np.put_along_axis(acts, idx, rng.uniform(0.5, 2.0, size=(n, self.k)), 1)
        x = acts @ self.atoms + self.offset + 0.01 * rng.normal(size=(n, self.d_in))
        return x.astype(np.float32)

    def batches(self, n_batches: int, batch_size: int, seed: int = 1) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [self.sample(batch_size, rng) for _ in range(n_batches)]

    def recovery(self, w_dec: np.ndarray) -> np.ndarray:
        """For each true atom, the best cosine with a learned decoder row."""
        w = w_dec / np.linalg.norm(w_dec, axis=1, keepdims=True)
        return (self.atoms @ w.T).max(axis=1)


@pytest.fixture(scope="session")
def sparse_data() -> SparseData:
    return SparseData()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tests run beside other work on small machines: one thread keeps timings predictable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_resources(tmp_path_factory: pytest.TempPathFactory, tiny_codec_dir: Path) -> Path:
    """A resources folder whose default codec is the tiny random one (WORKBENCH_RESOURCES points here),
    so CLI tests are fast and do not depend on the shipped weights."""
    root = tmp_path_factory.mktemp("resources")
    shutil.copytree(tiny_codec_dir, root / "codecs" / "default")
    return root


def tone(freq: float, seconds: float, sr: int = 24000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum((amp / k) * np.sin(2 * np.pi * k * freq * t) for k in range(1, 4))
    return (np.asarray(x) * np.minimum(1.0, t * 20)).astype(np.float32)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six short tone clips (different pitches) as WAV files."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("audio")
    for i, f in enumerate([110, 165, 220, 330, 440, 660]):
        sf.write(str(d / f"tone{i}.wav"), tone(f, 0.6 + 0.1 * i), 24000, subtype="FLOAT")
    return d
