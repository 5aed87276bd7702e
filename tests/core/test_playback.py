"""Live playback engine: clock without a device, edits mid-play, A/B, seek, loop; real PortAudio; the
output limiter (a too-loud decode is held below -1 dBFS, NaN is silence, quiet audio is untouched)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.core.audio import AudioClip
from workbench.core.codecs.base import Codec
from workbench.core.codecs.default import DefaultCodec
from workbench.core.playback import PlaybackEngine


def tone(freq: float, seconds: float, sr: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2 * freq * t)).astype(np.float32)


def latents(codec: DefaultCodec, freq: float, seconds: float) -> np.ndarray:
    return codec.encode(AudioClip(tone(freq, seconds), codec.sample_rate))


def test_no_device_is_a_normal_state_and_the_clock_advances(tiny_codec: DefaultCodec) -> None:
    eng = PlaybackEngine(tiny_codec, use_device=False)
    try:
        assert not eng.has_device and "no audio output device" in eng.message
        eng.load(latents(tiny_codec, 220, 2.0))
        assert eng.wait_buffered(0.3)
        events: list[str] = []
        eng.listeners.append(lambda s, m: events.append(s))
        eng.play()
        time.sleep(0.5)
        pos = eng.position
        assert 0.2 < pos < 1.2
        eng.pause()
        p1 = eng.position
        time.sleep(0.2)
        assert eng.position == p1
        eng.seek(1.5)
        eng.play()
        time.sleep(0.25)
        assert eng.position >= 1.5
        deadline = time.monotonic() + 3
        while "ended" not in events and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "ended" in events and not eng.is_playing
    finally:
        eng.close()


def drain(eng: PlaybackEngine, seconds: float, which: int | None = None) -> np.ndarray:
    """Pull samples through the real callback as a device would (unpaced)."""
    out = np.zeros((256, eng.channels), np.float32)
    got = []
    eng._playing = True
    end = time.monotonic() + 10
    need = int(seconds * eng.sample_rate)
    total = 0
    while total < need and time.monotonic() < end:
        eng._callback(out, 256, None, None)
        got.append(out.copy())
        total += 256
        eng.wait_buffered(256 / eng.sample_rate, timeout=1)
    eng._playing = False
    return np.concatenate(got)


def test_edit_mid_play_switches_to_steered_audio_after_margin(tiny_codec: DefaultCodec) -> None:
    za = latents(tiny_codec, 220, 2.0)
    zb = latents(tiny_codec, 440, 2.0)
    whole_a = tiny_codec.decode(za).samples
    whole_b = tiny_codec.decode(zb).samples
    eng = PlaybackEngine(tiny_codec, use_device=False, lead_seconds=0.3, margin_seconds=0.05)
    try:
        eng.load(za)
        assert eng.wait_buffered(0.3)
        first = drain(eng, 0.5)
        assert np.sqrt(np.mean((first - whole_a[: len(first)]) ** 2)) < 1e-4
        assert eng.wait_buffered(0.25)  # as with a paced device: the decoder is ahead of the playhead
        eng.set_steered(zb)
        time.sleep(0.05)
        assert eng.wait_buffered(0.3)
        rest = drain(eng, 1.0)
        start = len(first)
        got = rest
        ref_b = whole_b[start : start + len(got)]
        ref_a = whole_a[start : start + len(got)]
        # Before the margin: still A; well after it: B (its own phase continues from A's state, so
        # compare spectra, not samples).
        margin = int(0.05 * 24000)
        assert np.sqrt(np.mean((got[: margin - 400] - ref_a[: margin - 400]) ** 2)) < 1e-4

        def spec(x: np.ndarray) -> np.ndarray:
            return np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x))))

        tail = slice(margin + 4000, margin + 12000)
        sb, sa, sg = spec(ref_b[tail]), spec(ref_a[tail]), spec(got[tail])
        assert np.linalg.norm(sg - sb) < 0.5 * np.linalg.norm(sg - sa)
    finally:
        eng.close()


def test_ab_switch_is_instant(tiny_codec: DefaultCodec) -> None:
    za = latents(tiny_codec, 220, 1.5)
    zb = latents(tiny_codec, 440, 1.5)
    eng = PlaybackEngine(tiny_codec, use_device=False, lead_seconds=0.5)
    try:
        eng.load(za, zb)
        assert eng.wait_buffered(0.5)
        eng.set_ab("A")
        a = drain(eng, 0.2)
        whole_a = tiny_codec.decode(za).samples
        # Crossfade spans the first 256 samples after a switch; after it, A exactly.
        assert np.sqrt(np.mean((a[512:] - whole_a[512 : len(a)]) ** 2)) < 1e-4
        assert eng.ab == "A"
    finally:
        eng.close()


def test_loop_region_repeats(tiny_codec: DefaultCodec) -> None:
    z = latents(tiny_codec, 330, 2.0)
    eng = PlaybackEngine(tiny_codec, use_device=False, lead_seconds=0.3)
    try:
        eng.load(z)
        eng.set_loop(0.5, 0.8)
        eng.seek(0.5)
        time.sleep(0.05)
        assert eng.wait_buffered(0.3)
        drain(eng, 0.9)
        assert 0.5 <= eng.position <= 0.81
    finally:
        eng.close()


PLAYER_SCRIPT = textwrap.dedent(
    """
    import sys, time, numpy as np
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from conftest import make_tiny_codec_dir
    from workbench.core.audio import AudioClip
    from workbench.core.codecs.default import DefaultCodec
    from workbench.core.playback import PlaybackEngine, list_output_devices
    codec = DefaultCodec(make_tiny_codec_dir(Path({tmp!r}) / "codec"))
    t = np.arange(48000) / 24000
    za = codec.encode(AudioClip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24000))
    zb = codec.encode(AudioClip((0.3 * np.sin(2 * np.pi * 660 * t)).astype(np.float32), 24000))
    np.save({tmp!r} + "/za.npy", za); np.save({tmp!r} + "/zb.npy", zb)
    print("devices", [d.name for d in list_output_devices()])
    eng = PlaybackEngine(codec, lead_seconds=0.3, margin_seconds=0.05)
    assert eng.has_device, eng.message
    eng.load(za)
    eng.wait_buffered(0.3)
    eng.play()
    while eng.position < 0.6:
        time.sleep(0.001)
    eng.set_steered(zb)
    while eng.is_playing:
        time.sleep(0.01)
    eng.close()
    print("underruns", eng.underruns)
    """
)


@pytest.mark.skipif(not Path("/usr/share/alsa/alsa.conf").exists(), reason="ALSA config not installed")
def test_real_portaudio_plays_original_then_steered(tmp_path: Path) -> None:
    raw = tmp_path / "out.raw"
    rc = tmp_path / "asoundrc"
    rc.write_text(
        f'pcm.!default {{ type file; slave.pcm "null"; file "{raw}"; format "raw" }}\n'
    )
    env = dict(os.environ, ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{rc}")
    script = PLAYER_SCRIPT.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = np.frombuffer(raw.read_bytes(), dtype=np.float32)
    assert data.size > 24000
    # The unpaced file device pulls faster than we decode: underruns insert exact zeros. Drop them.
    played = data[data != 0.0]
    codec = DefaultCodec(tmp_path / "codec")
    wa = codec.decode(np.load(tmp_path / "za.npy")).samples[:, 0]
    n = 0.5 * 24000
    head = played[: int(n)]
    assert np.sqrt(np.mean((head - wa[: len(head)]) ** 2)) < 1e-3
    # The end of what was played is the steered version (the 660 Hz clip's latents), not the original: its
    # spectrum is that of the steered clip's own decode (phases differ: they continue the played history).
    def spectrum(y: np.ndarray) -> np.ndarray:
        return np.log(np.abs(np.fft.rfft(y[-12000:] * np.hanning(12000)))[:4000] + 1e-3)

    wb = codec.decode(np.load(tmp_path / "zb.npy")).samples[:, 0]
    tail = spectrum(played)
    to_steered = np.abs(tail - spectrum(wb)).mean()
    to_original = np.abs(tail - spectrum(wa)).mean()
    assert to_steered < 0.5 * to_original, (to_steered, to_original)


# -- the output limiter -----------------------------------------------------------------------------

CEILING = 10 ** (-1 / 20)  # -1 dBFS


class SineCodec(Codec):
    """Latent = the level of a 220 Hz sine (phase continuous across blocks); a level of -1 decodes to
    NaN. Lets the limiter tests set the decode's loudness exactly, as a too-strong edit would."""

    id = "sine"
    sample_rate = 24000
    channels = 1
    hop_length = 240
    latent_dim = 1

    def encode(self, clip: AudioClip) -> np.ndarray:
        return np.zeros((self.num_frames(clip.num_samples), 1), np.float32)

    def decode_samples(self, z: np.ndarray) -> np.ndarray:
        return self.decode_block(z, 0, len(z))

    def decode_block(self, z: np.ndarray, start: int, stop: int) -> np.ndarray:
        level = np.repeat(np.asarray(z, np.float64)[start:stop, 0], self.hop_length)
        t = np.arange(start * self.hop_length, stop * self.hop_length) / self.sample_rate
        y = level * np.sin(2 * np.pi * 220 * t)
        y[level == -1] = np.nan
        return y[:, None].astype(np.float32)


def levels(*parts: tuple[float, float]) -> np.ndarray:
    """Latents for SineCodec: (level, seconds) pieces."""
    return np.concatenate([np.full((int(s * 100), 1), v, np.float32) for v, s in parts])


def pull(eng: PlaybackEngine, seconds: float, block: int = 1024) -> tuple[np.ndarray, list[float]]:
    """Like `drain`, with device-sized blocks, and the time each callback took."""
    out = np.zeros((block, eng.channels), np.float32)
    got, took = [], []
    eng._playing = True
    for _ in range(int(np.ceil(seconds * eng.sample_rate / block))):
        assert eng.wait_buffered(0.2, timeout=5)
        t0 = time.perf_counter()
        eng._callback(out, block, None, None)
        took.append(time.perf_counter() - t0)
        got.append(out.copy())
    eng._playing = False
    return np.concatenate(got), took


def test_playback_is_limited_below_the_ceiling_at_the_same_pitch() -> None:
    codec = SineCodec()
    z = levels((10**1.5, 3.0))  # +30 dBFS
    eng = PlaybackEngine(codec, use_device=False)
    try:
        eng.load(z)
        played, took = pull(eng, 1.5)
        assert np.isfinite(played).all() and np.abs(played).max() <= CEILING
        raw = codec.decode(z).samples[: len(played)]
        settled = slice(2400, None)
        # one steady gain, so the same 220 Hz sine (no clipping, no new harmonics)
        assert np.abs(played[settled] - raw[settled] * (CEILING / 10**1.5)).max() < 1e-3
        eng._playing = True
        assert eng.limiter_reduction_db == pytest.approx(31.0, abs=0.2)
        eng._playing = False
        assert eng.limiter_reduction_db == 0.0
        # The callback stays far inside the block it has to fill (1024 samples = 43 ms here).
        assert float(np.median(took)) < 0.1 * 1024 / codec.sample_rate, np.median(took)
    finally:
        eng.close()


def test_quiet_playback_is_bit_exact_and_nan_is_silence() -> None:
    codec = SineCodec()
    z = levels((0.5, 0.5), (-1.0, 0.2), (0.5, 0.8))
    eng = PlaybackEngine(codec, use_device=False)
    try:
        eng.load(z)
        played, _ = pull(eng, 1.4)
        raw = codec.decode(z).samples[: len(played)]
        assert np.isfinite(played).all()
        assert np.all(played[12000:16800] == 0.0)  # the NaN stretch
        lat = eng.limiter.latency
        assert np.array_equal(played[: 12000 - lat - 1], raw[: 12000 - lat - 1])
        after = 16800 + 2 * lat + 1
        assert np.array_equal(played[after:], raw[after:])
        assert eng.limiter.nonfinite == 4800
    finally:
        eng.close()


def test_seek_resets_the_limiter() -> None:
    codec = SineCodec()
    z = levels((10.0, 1.0), (0.5, 1.0))  # +20 dBFS, then -6 dBFS
    eng = PlaybackEngine(codec, use_device=False)
    try:
        eng.load(z)
        pull(eng, 0.5)
        assert eng.limiter.reduction_db > 19
        eng.seek(1.2)
        time.sleep(0.05)
        played, _ = pull(eng, 0.3)
        start = int(1.2 * codec.sample_rate)
        # Without the reset the gain would still be releasing from -21 dB here.
        assert np.array_equal(played, codec.decode(z).samples[start : start + len(played)])
    finally:
        eng.close()


LOUD_PLAYER_SCRIPT = textwrap.dedent(
    """
    import sys, time, numpy as np
    sys.path.insert(0, {tests!r})
    from test_playback import SineCodec, levels
    from workbench.core.playback import PlaybackEngine
    eng = PlaybackEngine(SineCodec(), lead_seconds=0.3)
    assert eng.has_device, eng.message
    eng.load(levels((10 ** 1.5, 1.5)))
    eng.wait_buffered(0.3)
    eng.play()
    while eng.is_playing:
        time.sleep(0.01)
    eng.close()
    print("reduction", eng.limiter.max_reduction_db)
    """
)


@pytest.mark.skipif(not Path("/usr/share/alsa/alsa.conf").exists(), reason="ALSA config not installed")
def test_real_portaudio_output_of_a_too_loud_decode_is_limited(tmp_path: Path) -> None:
    raw = tmp_path / "out.raw"
    rc = tmp_path / "asoundrc"
    rc.write_text(f'pcm.!default {{ type file; slave.pcm "null"; file "{raw}"; format "raw" }}\n')
    env = dict(os.environ, ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{rc}")
    script = LOUD_PLAYER_SCRIPT.format(tests=str(Path(__file__).parent))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = np.frombuffer(raw.read_bytes(), dtype=np.float32)
    played = data[data != 0.0]
    assert played.size > 24000  # what the device got: the whole 1.5 s (underruns add only zeros)
    assert np.abs(played).max() <= CEILING  # the decode peaks at 31.6, 30 dB over full scale
    assert np.abs(played).max() > 0.95 * CEILING
    tail = played[-12000:]
    spec = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    assert np.fft.rfftfreq(len(tail), 1 / 24000)[int(np.argmax(spec))] == pytest.approx(220, abs=2)
