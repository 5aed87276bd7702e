"""Output devices that fail mid-play, simulated at the sounddevice boundary (a fake module whose
OutputStream drives the engine's callback like PortAudio would, then fails in one of the ways real
devices do). The real PortAudio path is tested in test_playback.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from workbench.core import playback
from workbench.core.audio import AudioClip
from workbench.core.codecs.default import DefaultCodec
from workbench.core.playback import PlaybackEngine, PlaybackError


class FakeStream:
    """Calls `callback` every 10 ms on its own thread; `fail(mode)` makes it fail like a device:

    - ``vanish``: PortAudio ends the stream itself (finished callback) and stop/close raise;
    - ``stall``: the callback is simply no longer called (a wedged driver), the stream looks active;
    - ``inactive``: the stream reports inactive without any callback.
    """

    def __init__(self, sd: FakeSoundDevice, *, samplerate: int, channels: int, callback: Callable[..., None],
                 finished_callback: Callable[[], None], device: int, **_: Any) -> None:
        if sd.open_error is not None:
            raise sd.open_error
        self.sd, self.callback, self.finished = sd, callback, finished_callback
        self.channels, self.device = channels, device
        self.active = False
        self.closed = False
        self.mode: str | None = None
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name="fake-portaudio", daemon=True)
        sd.streams.append(self)

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def _run(self) -> None:
        out = np.zeros((240, self.channels), np.float32)
        while self.active and not self.closed:
            if self.mode == "vanish":
                self.active = False
                self.finished()
                return
            if self.mode == "inactive":
                self.active = False
                return
            if self.mode != "stall":
                self.callback(out, 240, None, None)
                self.frames += 240
            time.sleep(0.01)

    def fail(self, mode: str) -> None:
        self.mode = mode

    def _dead(self) -> None:
        if self.mode == "vanish":
            raise RuntimeError("Error closing stream: Device unavailable [PaErrorCode -9985]")

    def stop(self) -> None:
        self.active = False
        self._dead()

    def abort(self) -> None:
        self.active = False
        self._dead()

    def close(self) -> None:
        self.active = False
        self.closed = True
        self._dead()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


class FakeSoundDevice:
    """The slice of the sounddevice module the engine uses."""

    def __init__(self) -> None:
        self.devices: list[dict[str, Any]] = [{"name": "Fake USB DAC", "max_output_channels": 2,
                                               "default_samplerate": 48000.0}]
        self.open_error: Exception | None = None
        self.streams: list[FakeStream] = []
        sd = self

        class _Default:
            device = (-1, 0)

        self.default = _Default()

        def output_stream(**kw: Any) -> FakeStream:
            return FakeStream(sd, **kw)

        self.OutputStream = output_stream

    def query_devices(self) -> list[dict[str, Any]]:
        return list(self.devices)

    def unplug(self) -> None:
        self.devices = []
        self.open_error = RuntimeError("Error opening OutputStream: Device unavailable [PaErrorCode -9985]")


@pytest.fixture()
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> FakeSoundDevice:
    sd = FakeSoundDevice()
    monkeypatch.setattr(playback, "_sounddevice", lambda: sd)
    return sd


@pytest.fixture()
def engine(tiny_codec: DefaultCodec, fake_sd: FakeSoundDevice) -> Iterator[PlaybackEngine]:
    t = np.arange(3 * 24000) / 24000
    z = tiny_codec.encode(AudioClip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24000))
    eng = PlaybackEngine(tiny_codec)
    eng.stall_seconds = 0.5
    eng.load(z)
    assert eng.wait_buffered(0.3)
    yield eng
    eng.close()


def events_of(eng: PlaybackEngine) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    eng.listeners.append(lambda s, m: seen.append((s, m)))
    return seen


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.mark.parametrize("mode", ["vanish", "stall", "inactive"])
def test_device_failing_mid_play_stops_with_one_message(engine: PlaybackEngine, fake_sd: FakeSoundDevice,
                                                        mode: str) -> None:
    assert engine.has_device and engine.device is not None and engine.device.name == "Fake USB DAC"
    seen = events_of(engine)
    engine.play()
    stream = fake_sd.streams[-1]
    assert wait_for(lambda: engine.position > 0.2)
    if mode == "vanish":
        fake_sd.unplug()  # the device is gone from the list too
    stream.fail(mode)
    assert wait_for(lambda: any(s == "error" for s, _ in seen))
    time.sleep(0.3)  # nothing else arrives late
    errors = [m for s, m in seen if s == "error"]
    assert len(errors) == 1 and "Fake USB DAC" in errors[0] and "\n" not in errors[0], seen
    assert not engine.is_playing and stream.closed
    pos = engine.position
    assert 0.2 < pos < 3.0
    if mode == "vanish":
        # Gone for good: the engine is in the no-device state and says so.
        assert not engine.has_device and "no longer available" in errors[0]
        assert "no longer available" in engine.message  # what the app's Play button will explain
    else:
        # Still listed: Play works again on a fresh stream, from where it stopped.
        assert engine.has_device
        engine.play()
        assert wait_for(lambda: engine.position > pos + 0.1)
        engine.pause()
        assert len(fake_sd.streams) == 2 and fake_sd.streams[-1].closed


def test_device_gone_before_play_is_a_playback_error_and_the_engine_survives(
        engine: PlaybackEngine, fake_sd: FakeSoundDevice) -> None:
    fake_sd.unplug()
    with pytest.raises(PlaybackError, match="cannot open output device 'Fake USB DAC'") as e:
        engine.play()
    assert "\n" not in str(e.value)
    assert not engine.is_playing and not engine.has_device
    # The same engine plays silently (the no-device clock) once asked to without a device.
    engine.seek(1.0)
    engine.play()
    assert wait_for(lambda: engine.position > 1.1)
    engine.stop()
    assert engine.position == 0.0


def test_a_stop_that_raises_on_a_dead_device_does_not_escape(engine: PlaybackEngine, fake_sd: FakeSoundDevice) -> None:
    engine.play()
    assert wait_for(lambda: engine.position > 0.1)
    fake_sd.streams[-1].mode = "vanish-quietly"  # keeps running, but stop/close will raise below

    def broken() -> None:
        raise RuntimeError("Stream is stopped [PaErrorCode -9983]")

    fake_sd.streams[-1].stop = broken  # type: ignore[method-assign]
    fake_sd.streams[-1].close = broken  # type: ignore[method-assign]
    engine.pause()
    engine.stop()
    assert not engine.is_playing
