"""GUI test fixtures: offscreen Qt, a tiny codec + tiny SAE as the "embedded" defaults, per-test user
folders (so settings never leak between tests or into the real home), and a guard that fails any test
leaving a worker thread, a Python thread or a visible top-level window behind."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from workbench.core.audio import AudioClip, save_audio  # noqa: E402
from workbench.core.codecs.default_model import DefaultCodecConfig, SpectralAutoencoder  # noqa: E402
from workbench.core.codecs.default_train import atomic_save_safetensors, atomic_write_json  # noqa: E402
from workbench.core.demo import demo_path  # noqa: E402
from workbench.core.sae_bridge import make_random_sae  # noqa: E402

LATENT_DIM = 16
D_SAE = 32


def tone_clip(freqs: list[float], seconds: float, sr: int = 24000, seed: int = 0) -> AudioClip:
    """A short sequence of harmonic tones (one per entry of `freqs`), so features vary over time."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n, np.float32)
    seg = n // len(freqs)
    t = np.arange(seg) / sr
    for i, f in enumerate(freqs):
        tone = sum(0.3 / h * np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6)) for h in range(1, 5))
        y[i * seg : (i + 1) * seg] = tone * np.minimum(1.0, t / 0.01)
    return AudioClip(y[:, None], sr)


def _tiny_codec(folder: Path) -> Path:
    torch.manual_seed(0)
    cfg = DefaultCodecConfig(channels=32, enc_blocks=1, dec_blocks=2, latent_dim=LATENT_DIM)
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
def tiny_resources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resources")
    _tiny_codec(root / "codecs" / "default")
    make_random_sae(root / "saes" / "default", LATENT_DIM, D_SAE, k=4, seed=1)
    return root


@pytest.fixture(autouse=True)
def app_env(tiny_resources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh config/cache/log folders per test; a short demo clip already in the cache (fast)."""
    monkeypatch.setenv("WORKBENCH_RESOURCES", str(tiny_resources))
    for kind in ("CONFIG", "CACHE", "LOG"):
        monkeypatch.setenv(f"WORKBENCH_{kind}_DIR", str(tmp_path / kind.lower()))
    demo = demo_path("synth")
    demo.parent.mkdir(parents=True, exist_ok=True)
    save_audio(demo, tone_clip([220, 330, 440, 262], 2.0))
    return tmp_path


@pytest.fixture()
def audio_file(tmp_path: Path) -> Path:
    return save_audio(tmp_path / "tones.wav", tone_clip([150, 600, 300], 1.5, seed=3))


def _visible_windows() -> list[object]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return []
    return [w for w in QApplication.topLevelWidgets() if w.isVisible()]


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a worker, a thread or a window behind (napari's practice)."""
    before = set(threading.enumerate())

    def new_threads() -> list[threading.Thread]:
        # Dummy entries are how Python names foreign (Qt) threads that ran Python code; they never go
        # away, and Qt threads are checked through live_tasks() instead.
        return [t for t in threading.enumerate()
                if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]

    yield
    from PySide6.QtWidgets import QApplication

    from workbench.app.worker import live_tasks

    app = QApplication.instance()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if app is not None:
            app.processEvents()
        if not live_tasks() and not new_threads():
            break
        time.sleep(0.02)
    tasks = live_tasks()
    extra = [t.name for t in new_threads()]
    windows = _visible_windows()
    for w in windows:
        w.close()  # type: ignore[attr-defined]
    from workbench.app import gc_guard

    held = gc_guard.active()
    while gc_guard.active():  # a window never shut down: free the guard so the next test starts clean
        gc_guard.release()
    # Qt garbage of this test is collected here, in the GUI thread, not by chance in a later test's worker.
    gc.collect()
    problems = []
    if tasks:
        problems.append(f"worker tasks still running: {[t.name for t in tasks]}")
    if extra:
        problems.append(f"threads left running: {extra}")
    if windows:
        problems.append(f"windows left open: {[type(w).__name__ for w in windows]}")
    elif held:
        problems.append("a main window was never shut down (automatic garbage collection stayed off)")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture()
def captured_dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every QMessageBox the app would show, captured instead of blocking: (kind, text)."""
    from PySide6.QtWidgets import QMessageBox

    seen: list[tuple[str, str]] = []

    def fake(kind: str, answer: QMessageBox.StandardButton) -> object:
        def f(parent: object, title: str, text: str, *a: object, **k: object) -> QMessageBox.StandardButton:
            seen.append((kind, text))
            return answer

        return f

    monkeypatch.setattr(QMessageBox, "critical", staticmethod(fake("critical", QMessageBox.StandardButton.Ok)))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(fake("warning", QMessageBox.StandardButton.Ok)))
    monkeypatch.setattr(QMessageBox, "information", staticmethod(fake("information", QMessageBox.StandardButton.Ok)))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(fake("question", QMessageBox.StandardButton.Yes)))
    return seen


@pytest.fixture()
def window(qtbot: object, captured_dialogs: list[tuple[str, str]]) -> Iterator[object]:
    """The main window with the defaults loaded (tiny codec, tiny SAE, short demo clip), no device."""
    from workbench.app.main_window import MainWindow
    from workbench.core.settings import load_settings

    win = MainWindow(load_settings(), use_audio_device=False)
    qtbot.addWidget(win)  # type: ignore[attr-defined]
    win.show()
    with qtbot.waitSignal(win.loadFinished, timeout=30_000):  # type: ignore[attr-defined]
        win.start()
    qtbot.waitUntil(lambda: win.ws.steered is not None and not win.steerer.busy, timeout=10_000)  # type: ignore[attr-defined]
    yield win
    win.close()
