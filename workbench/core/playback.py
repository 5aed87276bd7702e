"""Live playback: a decode thread fills ring buffers ahead of the playhead; the audio callback copies.

Two rings run side by side: A (the codec's decode of the unedited latents) and B (the steered ones),
so A/B switching is instant. The audio callback only copies from the preallocated rings (no
allocation, no locks held, no Qt). The decode thread keeps both rings `lead` seconds ahead of the
playhead with the codec's block decoder; when the edits change, everything not yet played beyond a
small safety margin is re-decoded with the new latents (newest request wins) and the junction is
cross-faded.

Every sample the callback hands out goes through a `limiter.PeakLimiter` (ceiling -1 dBFS, always on):
a steering edit can make the decode tens of dB louder than the clip. Its look-ahead is read from the
ring (the samples that play next), so it adds no latency; a seek or a new clip resets it, and NaN or
infinite samples come out as silence. `limiter_reduction_db` tells a UI how hard it is working.

No output device (servers, CI) is a normal state: a clock thread then consumes the rings in real time
through the same callback, so the UI playhead moves and nothing else changes. A device that fails while
playing stops playback with a message ("error" to the listeners), whichever way the failure shows:
PortAudio ending the stream on its own (its finished callback), the stream going inactive, or the
callback no longer being called (a stall, watched from a separate thread). The stream is then closed
off the audio thread, the device list is read again (a device that went away leaves the engine in the
no-device state, so Play says why), and the clip, edits and position stay as they were.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.codecs.base import Codec
from workbench.core.errors import WorkbenchError
from workbench.core.limiter import PeakLimiter


class PlaybackError(WorkbenchError):
    kind = "playback"


@dataclass(frozen=True)
class OutputDevice:
    index: int
    name: str
    channels: int
    default_rate: float
    is_default: bool


def _sounddevice() -> Any:
    """Import sounddevice lazily: without PortAudio the rest of the app must still work."""
    try:
        import sounddevice as sd
    except (OSError, ImportError) as exc:
        raise PlaybackError(f"audio output unavailable: {exc}") from None
    return sd


def list_output_devices() -> list[OutputDevice]:
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
        try:
            default_out = sd.default.device[1]
        except Exception:
            default_out = -1
    except Exception:
        return []
    out = []
    for i, d in enumerate(devices):
        if int(d.get("max_output_channels", 0)) > 0:
            out.append(OutputDevice(i, str(d["name"]), int(d["max_output_channels"]),
                                    float(d.get("default_samplerate", 0.0)), i == default_out))
    return out


def find_output_device(name: str | None) -> OutputDevice | None:
    """The device called `name` (exact, then substring), else the default output, else None."""
    devices = list_output_devices()
    if not devices:
        return None
    if name:
        for d in devices:
            if d.name == name:
                return d
        for d in devices:
            if name.lower() in d.name.lower():
                return d
    for d in devices:
        if d.is_default:
            return d
    return devices[0]


class _Ring:
    """Preallocated sample ring indexed by absolute stream position; also records clip positions."""

    def __init__(self, capacity: int, channels: int) -> None:
        self.capacity = capacity
        self.data = np.zeros((capacity, channels), np.float32)

    def write(self, pos: int, block: np.ndarray) -> None:
        n = block.shape[0]
        i = pos % self.capacity
        first = min(n, self.capacity - i)
        self.data[i : i + first] = block[:first]
        if first < n:
            self.data[: n - first] = block[first:]

    def read_into(self, pos: int, out: np.ndarray, n: int) -> None:
        i = pos % self.capacity
        first = min(n, self.capacity - i)
        out[:first] = self.data[i : i + first]
        if first < n:
            out[first:n] = self.data[: n - first]


class PlaybackEngine:
    """Plays a clip's latents through a codec's block decoder, steered live.

    Positions are in seconds of the clip. Listeners (`on_state`) are plain callables invoked from
    worker threads; a GUI forwards them to its own thread.
    """

    def __init__(
        self,
        codec: Codec,
        device: str | None = None,
        use_device: bool = True,
        block_seconds: float = 0.1,
        lead_seconds: float = 0.5,
        margin_seconds: float = 0.06,
        ring_seconds: float = 4.0,
        crossfade_samples: int = 256,
    ) -> None:
        self.codec = codec
        self.sample_rate = codec.sample_rate
        self.channels = codec.channels
        self.hop = codec.hop_length
        self.block_frames = max(1, int(round(block_seconds * codec.frame_rate)))
        self.lead = int(lead_seconds * self.sample_rate)
        self.margin = int(margin_seconds * self.sample_rate)
        cap = max(int(ring_seconds * self.sample_rate), 4 * self.lead)
        self._rings = [_Ring(cap, self.channels), _Ring(cap, self.channels)]
        self._clip_pos = np.zeros(cap, np.int64)  # clip sample index of each ring slot
        self._cap = cap
        self._xf = crossfade_samples
        self._ramp = np.linspace(0.0, 1.0, crossfade_samples, dtype=np.float32)[:, None]
        self._scratch = np.zeros((8192, self.channels), np.float32)
        self._scratch2 = np.zeros((8192, self.channels), np.float32)
        self.limiter = PeakLimiter(self.sample_rate, self.channels)
        self._ahead = np.zeros((max(1, self.limiter.latency), self.channels), np.float32)
        self._limiter_reset = False  # set by a restart, done by the callback (which owns the limiter)
        self._lock = threading.Lock()
        # Held while a stream is stopped and closed, by whichever thread does it (the end-of-clip thread,
        # close(), pause(), a device failure): close() then waits for a stop already under way, so the
        # interpreter never exits (PortAudio's Pa_Terminate) while another thread is inside
        # Pa_StopStream, which deadlocked at exit under load.
        self._output_lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        # Stream state (written by the decode thread, read by the callback; ints are atomic in CPython).
        self._read = 0
        self._written = 0
        self._played_clip_sample = 0
        self._ab = 1  # 0 = A (original), 1 = B (steered)
        self._ab_prev = 1
        self._playing = False
        self._ended = False
        self.underruns = 0
        # Requests (decode thread applies them; newest wins).
        self._pending_latents: np.ndarray | None = None
        self._pending_seek: float | None = None
        self._z: np.ndarray | None = None
        self._num_samples = 0
        self._dec_a: Any = None
        self._dec_b: Any = None
        self._cursor = 0  # next clip frame to decode
        self._loop: tuple[int, int] | None = None  # frames [a, b)
        self._quit = False
        self._xf_pos: int | None = None
        self.listeners: list[Callable[[str, str], None]] = []
        self.stall_seconds = 2.0  # no callback for this long while playing = the device is gone
        self._last_callback = 0.0
        self._watchdog: threading.Thread | None = None
        self.message = ""
        self.device_name: str | None = None
        self._stream: Any = None
        self._clock: threading.Thread | None = None
        self._thread = threading.Thread(target=self._decode_loop, name="playback-decode", daemon=True)
        self._thread.start()
        self._want_device = use_device
        self._device_request = device
        self.device: OutputDevice | None = find_output_device(device) if use_device else None
        if self.device is None:
            self.message = "no audio output device: playing silently (the playhead still moves)"

    # -- public API ---------------------------------------------------------------------------
    @property
    def has_device(self) -> bool:
        return self.device is not None

    @property
    def is_playing(self) -> bool:
        return self._playing

    @property
    def duration(self) -> float:
        return self._num_samples / self.sample_rate

    @property
    def limiter_reduction_db(self) -> float:
        """How many dB the output limiter took away in the last audio block (0 when not playing)."""
        return self.limiter.reduction_db if self._playing else 0.0

    @property
    def position(self) -> float:
        return self._played_clip_sample / self.sample_rate

    def load(self, z_original: np.ndarray, z_steered: np.ndarray | None = None, num_samples: int | None = None) -> None:
        """A new clip: latents of the original and (optionally) the steered version."""
        self.stop()
        z_a = self.codec.check_latents(z_original)
        z_b = z_a if z_steered is None else self.codec.check_latents(z_steered)
        with self._cond:
            self._z = z_a
            self._num_samples = num_samples or z_a.shape[0] * self.hop
            self._dec_a = self.codec.block_decoder(z_a)
            self._dec_b = self.codec.block_decoder(z_b)
            self._pending_latents = None
            self._restart_at(0)
            self._cond.notify_all()

    def set_steered(self, z_steered: np.ndarray) -> None:
        """New edits: re-decode what is not yet played (beyond the margin). Newest request wins."""
        z = self.codec.check_latents(z_steered)
        with self._cond:
            self._pending_latents = z
            self._cond.notify_all()

    def set_ab(self, which: str) -> None:
        self._ab = 0 if which.upper() == "A" else 1

    @property
    def ab(self) -> str:
        return "A" if self._ab == 0 else "B"

    def set_loop(self, start: float | None, stop: float | None = None) -> None:
        with self._cond:
            if start is None:
                self._loop = None
            else:
                t = self._total_frames()
                a = max(0, min(t - 1, int(start * self.codec.frame_rate)))
                b = t if stop is None else max(a + 1, min(t, int(np.ceil(stop * self.codec.frame_rate))))
                self._loop = (a, b)
            self._cond.notify_all()

    def seek(self, seconds: float) -> None:
        with self._cond:
            self._pending_seek = max(0.0, min(seconds, self.duration))
            self._cond.notify_all()
        if not self._playing:
            self._played_clip_sample = int(max(0.0, min(seconds, self.duration)) * self.sample_rate)

    def play(self) -> None:
        if self._z is None:
            raise PlaybackError("nothing to play: no clip loaded")
        if self._playing:
            return
        if self._ended:
            self.seek(0.0)
            self._ended = False
        self._playing = True
        try:
            self._start_output()
        except PlaybackError:
            self._playing = False
            raise
        self._emit("playing", "")

    def pause(self) -> None:
        if not self._playing:
            return
        self._playing = False
        self._stop_output()
        self._emit("paused", "")

    def stop(self) -> None:
        was = self._playing
        self._playing = False
        self._stop_output()
        with self._cond:
            if self._z is not None:
                self._restart_at(0)
            self._played_clip_sample = 0
            self._cond.notify_all()
        if was:
            self._emit("stopped", "")

    def close(self) -> None:
        self._playing = False
        self._stop_output()
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)

    def wait_buffered(self, seconds: float, timeout: float = 10.0) -> bool:
        """Block until `seconds` of audio are decoded ahead (tests, offline use)."""
        end = time.monotonic() + timeout
        need = int(seconds * self.sample_rate)
        while time.monotonic() < end:
            if self._written - self._read >= need or self._decode_done():
                return True
            time.sleep(0.005)
        return False

    # -- output -------------------------------------------------------------------------------
    def _start_output(self) -> None:
        if self.device is None:
            self._clock = threading.Thread(target=self._clock_loop, name="playback-clock", daemon=True)
            self._clock.start()
            return
        sd = _sounddevice()
        stream = None
        try:
            stream = sd.OutputStream(
                samplerate=self.sample_rate, channels=self.channels, dtype="float32",
                device=self.device.index, callback=self._callback, finished_callback=self._finished,
                blocksize=0, latency="low",
            )
            self._last_callback = time.monotonic()
            self._stream = stream
            stream.start()
            self.device_name = self.device.name
        except Exception as exc:
            self._stream = None
            if stream is not None:
                try:
                    stream.close()
                except Exception:
                    pass
            name = self.device.name
            self._refresh_device()
            raise PlaybackError(f"cannot open output device '{name}': {' '.join(str(exc).split())}") from None
        self._watchdog = threading.Thread(target=self._watch, args=(stream,), name="playback-watchdog", daemon=True)
        self._watchdog.start()

    def _stop_output(self) -> None:
        with self._output_lock:
            stream, self._stream = self._stream, None
            if stream is not None:
                try:
                    stream.stop()
                    stream.close()
                except Exception:
                    pass
        clock, self._clock = self._clock, None
        if clock is not None and clock is not threading.current_thread():
            clock.join(timeout=1.0)

    def _finished(self) -> None:
        # PortAudio calls this when the stream ends; if we did not ask for it, the device failed. The
        # stream cannot be closed from its own callback: the rest happens on another thread.
        stream = self._stream
        if self._playing and stream is not None:
            threading.Thread(target=self._device_failed, args=(stream, "stopped"), daemon=True).start()

    def _watch(self, stream: Any) -> None:
        """While `stream` plays: notice a device that stopped calling back or went inactive."""
        while self._stream is stream and self._playing:
            time.sleep(0.1)
            if self._stream is not stream or not self._playing:
                return
            try:
                active = bool(getattr(stream, "active", True))
            except Exception:
                active = False
            if not active:
                self._device_failed(stream, "stopped")
                return
            if time.monotonic() - self._last_callback > self.stall_seconds:
                self._device_failed(stream, "stopped responding")
                return

    def _device_failed(self, stream: Any, how: str) -> None:
        """The output failed under us: stop, close the stream, re-read the devices, tell the listeners
        once. Clip, edits and position are kept; Play works again once a device is there."""
        with self._output_lock:
            with self._lock:
                if self._stream is not stream or not self._playing:
                    return  # already handled, or stopped on purpose
                self._playing = False
                self._stream = None
            try:
                stream.abort()
            except Exception:
                pass
            try:
                stream.close()
            except Exception:
                pass
        name = self.device.name if self.device is not None else "?"
        self._refresh_device()
        tail = "" if self.device is not None else "; it is no longer available (playing silently is possible)"
        self._emit("error", f"the audio output device '{name}' {how}; playback halted{tail}")

    def _refresh_device(self) -> None:
        """Look the device up again (by the name asked for): after a failure it may be gone."""
        if not self._want_device:
            return
        try:
            self.device = find_output_device(self._device_request or (self.device.name if self.device else None))
        except Exception:
            self.device = None
        if self.device is None:
            self.message = "no audio output device: playing silently (the playhead still moves)"

    def _clock_loop(self) -> None:
        """No device: consume the rings in real time so the playhead advances."""
        block = 512
        out = np.zeros((block, self.channels), np.float32)
        t_next = time.monotonic()
        while self._playing:
            self._callback(out, block, None, None)
            t_next += block / self.sample_rate
            delay = t_next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:
                t_next = time.monotonic()

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """Real-time path: copy from the ring, then the output limiter (vectorised, no locks)."""
        self._last_callback = time.monotonic()
        if self._limiter_reset:
            self._limiter_reset = False
            self.limiter.reset()
        r = self._read
        avail = self._written - r
        n = min(frames, avail) if self._playing else 0
        if n < 0:
            n = 0
        ring = self._rings[self._ab]
        if n:
            ring.read_into(r, outdata, n)
            if self._ab != self._ab_prev:
                # Instant A/B with a short cross-fade so the switch does not click.
                m = min(n, self._xf, self._scratch.shape[0])
                self._rings[self._ab_prev].read_into(r, self._scratch, m)
                np.multiply(outdata[:m], self._ramp[:m], out=outdata[:m])
                np.multiply(self._scratch[:m], 1.0 - self._ramp[:m], out=self._scratch2[:m])
                np.add(outdata[:m], self._scratch2[:m], out=outdata[:m])
                self._ab_prev = self._ab
            self._played_clip_sample = int(self._clip_pos[(r + n - 1) % self._cap]) + 1
        if n < frames:
            outdata[n:frames] = 0.0
            if self._playing and not self._decode_done():
                self.underruns += 1
        # The limiter looks ahead at what plays next (the ring after this block), so it adds no delay.
        m = max(0, min(self.limiter.latency, self._written - (r + n))) if self._playing else 0
        if m:
            ring.read_into(r + n, self._ahead, m)
        block = outdata[:frames]
        self.limiter.process(block, self._ahead[:m], out=block)
        self._read = r + n
        if self._playing and n == 0 and self._decode_done():
            self._ended = True
            self._playing = False
            threading.Thread(target=self._on_end, daemon=True).start()

    def _on_end(self) -> None:
        self._stop_output()
        self._emit("ended", "")

    # -- decode thread ------------------------------------------------------------------------
    def _total_frames(self) -> int:
        return 0 if self._z is None else int(self._z.shape[0])

    def _decode_done(self) -> bool:
        return self._loop is None and self._cursor >= self._total_frames() and self._z is not None

    def _restart_at(self, frame: int) -> None:
        """Drop everything ahead of the playhead and continue decoding from `frame` (lock held)."""
        self._written = self._read
        self._cursor = frame
        self._played_clip_sample = frame * self.hop
        self._limiter_reset = True

    def _apply_requests(self) -> None:
        if self._pending_seek is not None:
            sec, self._pending_seek = self._pending_seek, None
            self._restart_at(int(sec * self.codec.frame_rate))
        if self._pending_latents is not None:
            z, self._pending_latents = self._pending_latents, None
            self._rewind_for_new_latents(z)

    def _rewind_for_new_latents(self, z: np.ndarray) -> None:
        # First ring slot at least `margin` ahead of the playhead that starts a frame.
        s = self._read + self.margin
        if s >= self._written:
            frame = self._cursor
            s = self._written
        else:
            while s < self._written and self._clip_pos[s % self._cap] % self.hop != 0:
                s += 1
            if s >= self._written:
                frame, s = self._cursor, self._written
            else:
                frame = int(self._clip_pos[s % self._cap] // self.hop)
        self._dec_b.set_latents(z, keep_before=frame)
        self._xf_pos = s if s < self._written else None
        self._written = s
        self._cursor = frame

    def _decode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._quit:
                    self._apply_requests()
                    if self._written < self._read:  # the callback ran past a restart: catch up
                        self._written = self._read
                    if self._z is not None and self._written - self._read < self.lead and not self._decode_done():
                        break
                    self._cond.wait(timeout=0.01)
                if self._quit:
                    return
                if self._loop is not None and not (self._loop[0] <= self._cursor < self._loop[1]):
                    self._cursor = self._loop[0] if self._cursor >= self._loop[1] or self._cursor < self._loop[0] else self._cursor
                a = self._cursor
                end = self._loop[1] if self._loop is not None else self._total_frames()
                b = min(end, a + self.block_frames)
                dec_a, dec_b = self._dec_a, self._dec_b
                write_at = self._written
                xf_pos, self._xf_pos = self._xf_pos, None
                old = None
                if xf_pos is not None:
                    old = np.empty((self._xf, self.channels), np.float32)
                    self._rings[1].read_into(xf_pos, old, self._xf)
            try:
                ya = dec_a.decode(a, b)
                yb = dec_b.decode(a, b)
            except Exception as exc:  # a codec failure must not kill the thread silently
                self._playing = False
                self._emit("error", f"decoding failed: {exc}")
                with self._cond:
                    self._cond.wait(timeout=0.2)
                continue
            if old is not None:
                m = min(self._xf, yb.shape[0])
                yb = yb.copy()
                yb[:m] = old[:m] * (1 - self._ramp[:m]) + yb[:m] * self._ramp[:m]
            with self._cond:
                if self._written != write_at or self._cursor != a or self._pending_seek is not None:
                    continue  # a seek or an edit moved the stream meanwhile: this block is stale
                if self._pending_latents is not None:
                    continue
                n = ya.shape[0]
                self._rings[0].write(write_at, ya)
                self._rings[1].write(write_at, yb)
                idx = np.arange(a * self.hop, a * self.hop + n, dtype=np.int64)
                pos = write_at % self._cap
                first = min(n, self._cap - pos)
                self._clip_pos[pos : pos + first] = idx[:first]
                if first < n:
                    self._clip_pos[: n - first] = idx[first:]
                self._written = write_at + n
                self._cursor = b
                if self._loop is not None and self._cursor >= self._loop[1]:
                    self._cursor = self._loop[0]

    def _emit(self, state: str, message: str) -> None:
        if message:
            self.message = message
        for fn in list(self.listeners):
            try:
                fn(state, message)
            except Exception:
                pass
