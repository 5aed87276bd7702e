"""Fixtures for analysis tests: one torch thread, a private cache folder, tones of known pitch/level."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Tests run beside other work on a small machine; descriptor caches never touch the user's."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_resources(tmp_path_factory: pytest.TempPathFactory, tiny_codec_dir: Path) -> Path:
    """A resources folder whose default codec is the tiny random one (for CLI tests)."""
    root = tmp_path_factory.mktemp("resources")
    shutil.copytree(tiny_codec_dir, root / "codecs" / "default")
    return root
