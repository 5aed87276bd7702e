"""Live playback engine: clock without a device, edits mid-play, A/B, seek, loop; real PortAudio."""

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
    # The end of what was played is the steered version (660 Hz), not the original (220 Hz).
    tail = played[-12000:]
    spec = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    freqs = np.fft.rfftfreq(len(tail), 1 / 24000)
    e660 = spec[(freqs > 600) & (freqs < 720)].sum()
    e220 = spec[(freqs > 180) & (freqs < 260)].sum()
    assert e660 > 3 * e220, (e660, e220)
