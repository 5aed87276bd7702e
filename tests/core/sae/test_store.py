"""Activation store: encodes a corpus once (content-hashed cache), splits by clip, streams shuffled
batches from disk with bounded memory, and jumps to any batch for resumed runs."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.core.codecs.default import DefaultCodec
from workbench.core.errors import DataError
from workbench.core.sae.store import (
    ActivationStore,
    StoreBuildCancelled,
    build_store,
    cache_root,
    store_from_arrays,
)
from workbench.core.sae.trainer import TrainControl


class CountingCodec(DefaultCodec):
    """The tiny default codec, counting encode calls (to see the cache at work)."""

    calls = 0

    def encode(self, clip):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super().encode(clip)


def test_build_splits_by_clip_and_reuses_the_cache(tmp_path: Path, audio_dir: Path, tiny_codec_dir: Path) -> None:
    codec = CountingCodec(tiny_codec_dir)
    CountingCodec.calls = 0
    store = build_store([audio_dir], codec, cache_dir=tmp_path, val_fraction=0.2, progress=False)
    assert CountingCodec.calls == 6
    assert store.folder.parent == tmp_path / "activations"
    train, val = store.clips("train"), store.clips("val")
    assert train and val
    assert not {c["sha256"] for c in train} & {c["sha256"] for c in val}
    assert store.frames("train") == sum(c["frames"] for c in train)
    assert store.frames("train") + store.frames("val") == sum(
        -(-int(round((0.6 + 0.1 * i) * 24000)) // 320) for i in range(6))
    # Latents in the store are the codec's, clip by clip.
    from workbench.core.audio import load_audio

    c0 = train[0]
    z = codec.encode(load_audio(c0["source"], 24000, 1))
    np.testing.assert_array_equal(store.clip_latents(c0), z)
    # Same content again (other order, copied elsewhere): no encoding, same store.
    CountingCodec.calls = 0
    copy = tmp_path / "copy"
    shutil.copytree(audio_dir, copy)
    again = build_store(sorted(copy.iterdir(), reverse=True), codec, cache_dir=tmp_path, val_fraction=0.2,
                        progress=False)
    assert CountingCodec.calls == 0 and again.folder == store.folder
    assert (tmp_path / "activations" / "file-hashes.json").is_file()
    # Changed content: a new store.
    import soundfile as sf

    x, sr = sf.read(str(copy / "tone0.wav"), dtype="float32")
    sf.write(str(copy / "tone0.wav"), x * 0.5, sr, subtype="FLOAT")
    changed = build_store([copy], codec, cache_dir=tmp_path, val_fraction=0.2, progress=False)
    assert changed.folder != store.folder and CountingCodec.calls == 6
    assert not [p for p in (tmp_path / "activations").iterdir() if p.name.startswith(".")]


def test_cache_location_follows_workbench_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c" / "activations"
    assert cache_root(tmp_path / "x") == tmp_path / "x" / "activations"
    monkeypatch.delenv("WORKBENCH_CACHE_DIR")
    assert cache_root().name == "activations"


def test_cancelled_or_failed_builds_leave_nothing(tmp_path: Path, audio_dir: Path, tiny_codec_dir: Path) -> None:
    control = TrainControl()
    control.stop()
    with pytest.raises(StoreBuildCancelled):
        build_store([audio_dir], DefaultCodec(tiny_codec_dir), cache_dir=tmp_path, progress=False, control=control)
    left = [p.name for p in (tmp_path / "activations").iterdir() if p.name != "file-hashes.json"]
    assert left == []
    with pytest.raises(DataError, match="no such file"):
        build_store([tmp_path / "missing"], DefaultCodec(tiny_codec_dir), cache_dir=tmp_path, progress=False)


def test_unreadable_files_in_folders_are_skipped_named_ones_fail(tmp_path: Path, audio_dir: Path,
                                                                 tiny_codec_dir: Path) -> None:
    d = tmp_path / "corpus"
    shutil.copytree(audio_dir, d)
    (d / "broken.wav").write_bytes(b"RIFF0000WAVEjunk" * 10)
    warnings: list[str] = []
    store = build_store([d], DefaultCodec(tiny_codec_dir), cache_dir=tmp_path, progress=False, warn=warnings.append)
    assert len(store.meta["skipped"]) == 1 and warnings and "broken.wav" in warnings[0]
    from workbench.core.errors import AudioError

    with pytest.raises(AudioError):
        build_store([d / "broken.wav", d / "tone1.wav"], DefaultCodec(tiny_codec_dir), cache_dir=tmp_path,
                    progress=False)


def numbered_store(folder: Path, n_clips: int = 7, frames: int = 333, d_in: int = 4) -> ActivationStore:
    """Frame i of the store holds the value i in every dimension: easy to check coverage and order."""
    clips = []
    start = 0
    for _ in range(n_clips):
        v = np.arange(start, start + frames, dtype=np.float32)[:, None]
        clips.append(np.repeat(v, d_in, axis=1))
        start += frames
    return store_from_arrays(folder, clips, [np.zeros((10, d_in), np.float32)], shard_bytes=4 * d_in * 500)


def test_an_epoch_visits_every_frame_once_and_skip_jumps_exactly(tmp_path: Path) -> None:
    store = numbered_store(tmp_path / "s")
    total = store.frames("train")
    assert total == 7 * 333 and len(store._shards["train"]) == 5  # shards of 500 frames
    bs = 64
    stream = list(store.batches(bs, seed=3, chunk_frames=50, buffer_frames=400, epochs=1))
    seen = np.concatenate(stream)[:, 0].astype(int)
    assert len(seen) == (total // bs) * bs
    assert len(set(seen.tolist())) == len(seen)  # no frame twice in an epoch
    assert not np.all(np.diff(seen) == 1)  # shuffled
    # Two epochs: the second continues with the leftover of the first.
    two = list(store.batches(bs, seed=3, chunk_frames=50, buffer_frames=400, epochs=2))
    for skip in (0, 1, 5, 17, 36, 40):
        jumped = list(store.batches(bs, seed=3, skip=skip, chunk_frames=50, buffer_frames=400, epochs=2))
        assert len(jumped) == len(two) - skip
        for a, b in zip(jumped, two[skip:], strict=True):
            np.testing.assert_array_equal(a, b)
    other = next(store.batches(bs, seed=4, chunk_frames=50, buffer_frames=400))
    assert not np.array_equal(other, stream[0])


def test_reads_across_shards_and_samples(tmp_path: Path) -> None:
    store = numbered_store(tmp_path / "s")
    got = store.read("train", 480, 1020)[:, 0]
    np.testing.assert_array_equal(got, np.arange(480, 1020))
    s = store.sample(700, seed=1)
    assert s.shape == (700, 4) and len(np.unique(s[:, 0])) == 700
    assert store.frames("val") == 10 and list(store.iter_frames("val"))[0].shape == (10, 4)
    with pytest.raises(DataError):
        store.read("train", 0, 10**6)


def test_damaged_store_is_a_one_line_error(tmp_path: Path) -> None:
    store = numbered_store(tmp_path / "s")
    shard = store.folder / store.meta["splits"]["train"]["shards"][1]["file"]
    store.close()
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(DataError) as e:
        ActivationStore(tmp_path / "s")
    assert "\n" not in str(e.value)
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    meta["format"] = "other"
    (tmp_path / "s" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="not an activation store"):
        ActivationStore(tmp_path / "s")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_streaming_a_store_larger_than_the_buffer_keeps_memory_bounded(tmp_path: Path) -> None:
    d_in, clip = 64, 16384
    n_clips = 16  # 16 x 16384 x 64 x 4 B = 64 MiB on disk

    def clips():  # one clip in memory at a time
        rng = np.random.default_rng(0)
        for _ in range(n_clips):
            yield rng.standard_normal((clip, d_in), dtype=np.float32)

    store = store_from_arrays(tmp_path / "big", clips(), d_in=d_in, shard_bytes=8 << 20)
    assert store.frames("train") * d_in * 4 == 64 << 20
    base = _rss_bytes()
    peak = base
    n = 0
    for batch in store.batches(4096, buffer_frames=16384, chunk_frames=512, epochs=1):  # 4 MiB buffer
        n += batch.shape[0]
        peak = max(peak, _rss_bytes())
    assert n == n_clips * clip
    assert peak - base < 24 << 20, f"RSS grew by {(peak - base) / 2**20:.1f} MiB while streaming 64 MiB"
