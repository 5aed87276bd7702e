"""Activation store: a corpus encoded once by a codec, kept on disk, streamed in shuffled batches.

Building: every audio file (files and folders, recursively) is loaded at the codec's rate and layout,
encoded, and its latents appended to float32 ``.npy`` shards of at most `shard_bytes` each, split into
train and validation *by clip* (a clip never lends frames to both sides). Files longer than
`max_clip_seconds` are encoded in consecutive windows of that length (bounded memory). The store is
written into a temp folder next to its final place and renamed into place when complete, so an
interrupted build leaves nothing that a later run could mistake for a store. Progress goes to a tqdm
bar on stderr (or a callback); a `TrainControl` can cancel between files.

Re-use: the folder name is a hash (the *cache key*) of the codec's id, latent kind, latent dim and a
fingerprint of its weights (a hash of every torch module's tensors held by the codec object), of the
split settings, and of the **contents** of the audio files (SHA-256 of their bytes, sorted, so order,
names and locations do not matter and duplicates count once). Hashing bytes costs a read of each file
per build request; to avoid even that, each file's hash is memoised in ``file-hashes.json`` in the
cache root under its absolute path, size and modification time, and recomputed when any of those
change. Asking again for the same codec/latent kind/files finds the folder and encodes nothing.

Location: `cache_dir` argument, else ``$WORKBENCH_CACHE_DIR``, else the platform's user cache folder
(platformdirs), in an ``activations/`` subfolder.

Streaming (`batches`): frames are read with positioned reads (``os.pread``) of contiguous chunks of
`chunk_frames` frames, never through a memory map, so resident memory is bounded by the shuffle
buffer (`buffer_frames` frames) whatever the store's size, and page-cache pages are not charged to the
process. Each epoch visits every chunk once in a random order; chunks are gathered `buffer_frames` at
a time and their frames shuffled together; batches are consecutive slices of that stream. The order
depends only on (seed, batch size, chunk and buffer sizes), and `skip` jumps to any batch without
reading what comes before it: that is how a resumed training run gets exactly the batches the
interrupted one would have seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import AudioError, DataError, WorkbenchError
from workbench.core.fileio import atomic_write_json, fsync_dir, replace_folder

if TYPE_CHECKING:
    from workbench.core.codecs.base import Codec
    from workbench.core.sae.trainer import TrainControl

STORE_FORMAT = "workbench-activation-store"
STORE_VERSION = 1
AUDIO_EXTS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".m4a", ".opus"})
SPLITS = ("train", "val")


class StoreBuildCancelled(WorkbenchError):
    kind = "cancelled"


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where activation stores live (argument > $WORKBENCH_CACHE_DIR > platform user cache)."""
    from workbench.core.userdirs import cache_dir as user_cache_dir

    base = Path(cache_dir) if cache_dir else user_cache_dir()
    return base.expanduser() / "activations"


def collect_audio_files(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], set[Path]]:
    """Audio files named or found (recursively, sorted) in folders; and the set named explicitly."""
    files: list[Path] = []
    explicit: set[Path] = set()
    for item in inputs:
        p = Path(item)
        if p.is_file():
            files.append(p)
            explicit.add(p)
        elif p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTS and f.is_file()))
        else:
            raise DataError(f"{p}: no such file or folder")
    if not files:
        raise DataError("no audio files found in " + ", ".join(str(i) for i in inputs))
    return files, explicit


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def file_hashes(files: Sequence[Path], root: Path) -> list[str]:
    """SHA-256 of each file's bytes, memoised by (absolute path, size, mtime) in root/file-hashes.json."""
    memo_path = root / "file-hashes.json"
    memo: dict[str, list[Any]] = {}
    if memo_path.is_file():
        try:
            loaded = json.loads(memo_path.read_text())
            memo = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            memo = {}
    out = []
    changed = False
    for f in files:
        key = str(f.resolve())
        try:
            st = f.stat()
        except OSError as exc:
            raise DataError(f"{f}: cannot read ({exc.strerror or exc})") from None
        rec = memo.get(key)
        if isinstance(rec, list) and len(rec) == 3 and rec[0] == st.st_size and rec[1] == st.st_mtime_ns:
            out.append(str(rec[2]))
            continue
        try:
            digest = _sha256_file(f)
        except OSError as exc:
            raise DataError(f"{f}: cannot read ({exc.strerror or exc})") from None
        memo[key] = [st.st_size, st.st_mtime_ns, digest]
        out.append(digest)
        changed = True
    if changed:
        try:
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(memo_path, memo)
        except OSError:
            pass  # a read-only cache only costs re-hashing next time
    return out


def codec_fingerprint(codec: Codec) -> str:
    """Hash of the codec's description and of every torch module's tensors it holds: a retrained or
    differently configured codec gets a different key, so stale latents are never reused."""
    import torch

    h = hashlib.sha256()
    desc = {k: v for k, v in codec.describe().items() if k != "report"}
    h.update(json.dumps(desc, sort_keys=True, default=str).encode())
    for name in sorted(vars(codec)):
        v = getattr(codec, name)
        if isinstance(v, torch.nn.Module):
            for pname, t in sorted(v.state_dict().items()):
                h.update(pname.encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def choose_val(hashes: Sequence[str], val_fraction: float) -> set[str]:
    """Validation clips by content hash: stable whatever the file order or names."""
    uniq = sorted(set(hashes))
    if val_fraction <= 0 or len(uniq) < 2:
        return set()
    u = {h: int(h[:12], 16) / float(16**12) for h in uniq}
    val = {h for h in uniq if u[h] < val_fraction}
    if not val:
        val = {min(uniq, key=lambda h: u[h])}
    if len(val) == len(uniq):
        val.discard(max(val, key=lambda h: u[h]))
    return val


# -- writing ------------------------------------------------------------------------------------------

class StoreWriter:
    """Appends clips' latents to per-split shards in `folder`; `finish` writes meta.json."""

    def __init__(self, folder: Path, d_in: int, shard_bytes: int = 64 << 20) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.d_in = int(d_in)
        self.shard_frames = max(1, int(shard_bytes) // (4 * self.d_in))
        self.pending: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
        self.pending_frames = dict.fromkeys(SPLITS, 0)
        self.shards: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        self.frames = dict.fromkeys(SPLITS, 0)
        self.clips: list[dict[str, Any]] = []

    def add(self, z: np.ndarray, split: str, **info: Any) -> None:
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.d_in:
            raise DataError(f"latents of shape {tuple(z.shape)} do not fit the store's d_in={self.d_in}")
        if not np.isfinite(z).all():
            raise DataError(f"{info.get('source', 'clip')}: the codec produced NaN or infinite latents")
        if z.shape[0] == 0:
            return
        self.clips.append({"split": split, "start": self.frames[split], "frames": int(z.shape[0]), **info})
        self.frames[split] += int(z.shape[0])
        self.pending[split].append(z)
        self.pending_frames[split] += int(z.shape[0])
        while self.pending_frames[split] >= self.shard_frames:
            self._flush(split, self.shard_frames)

    def _flush(self, split: str, n: int) -> None:
        joined = np.concatenate(self.pending[split], axis=0) if len(self.pending[split]) > 1 else self.pending[split][0]
        head, rest = joined[:n], joined[n:]
        name = f"{split}-{len(self.shards[split]):05d}.npy"
        with open(self.folder / name, "wb") as f:
            np.save(f, np.ascontiguousarray(head), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        self.shards[split].append({"file": name, "frames": int(head.shape[0])})
        self.pending[split] = [rest] if rest.shape[0] else []
        self.pending_frames[split] = int(rest.shape[0])

    def finish(self, meta: dict[str, Any]) -> dict[str, Any]:
        for s in SPLITS:
            if self.pending_frames[s]:
                self._flush(s, self.pending_frames[s])
        full = {
            "format": STORE_FORMAT, "version": STORE_VERSION, "d_in": self.d_in, "dtype": "float32",
            "splits": {s: {"frames": self.frames[s], "shards": self.shards[s]} for s in SPLITS},
            "clips": self.clips, **meta,
        }
        atomic_write_json(self.folder / "meta.json", full)
        fsync_dir(self.folder)
        return full


# -- reading ------------------------------------------------------------------------------------------

def _read_into(fd: int, view: memoryview, offset: int, path: Path) -> None:
    """Fill `view` from `fd` at `offset` without moving a shared file position (threads may share fds)."""
    got = 0
    want = len(view)
    while got < want:
        if hasattr(os, "preadv"):
            k = os.preadv(fd, [view[got:]], offset + got)
        else:  # Windows: no positioned reads in os; a private seek is fine for one reader
            os.lseek(fd, offset + got, os.SEEK_SET)
            data = os.read(fd, want - got)
            k = len(data)
            view[got : got + k] = data
        if k <= 0:
            raise DataError(f"{path}: activation shard is truncated")
        got += k


class ActivationStore:
    """A finished store folder: frame counts, clips, and batch streaming."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self._fds: dict[Path, int] = {}
        self.folder = Path(folder)
        try:
            meta = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.folder}: not an activation store ({' '.join(str(exc).split())[:120]})") from None
        if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
            raise DataError(f"{self.folder}: not an activation store")
        if int(meta.get("version", 0)) > STORE_VERSION:
            raise DataError(f"{self.folder}: activation store version {meta.get('version')} is newer than this workbench")
        self.meta = meta
        self.d_in = int(meta["d_in"])
        self._shards: dict[str, list[tuple[Path, int, int]]] = {}  # (path, frames, data offset)
        self._starts: dict[str, np.ndarray] = {}
        for s in SPLITS:
            entries = []
            for sh in meta["splits"][s]["shards"]:
                p = self.folder / sh["file"]
                entries.append((p, int(sh["frames"]), self._data_offset(p, int(sh["frames"]))))
            self._shards[s] = entries
            self._starts[s] = np.cumsum([0] + [e[1] for e in entries])

    def _data_offset(self, p: Path, frames: int) -> int:
        """Where the array data starts in an .npy shard; checks shape and dtype against meta.json."""
        try:
            with open(p, "rb") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                off = f.tell()
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: damaged activation shard ({' '.join(str(exc).split())[:120]})") from None
        if shape != (frames, self.d_in) or fortran or dtype != np.dtype("<f4"):
            raise DataError(f"{p}: activation shard does not match meta.json ({shape}, {dtype})")
        if p.stat().st_size < off + frames * self.d_in * 4:
            raise DataError(f"{p}: activation shard is truncated")
        return off

    # -- facts --
    @property
    def key(self) -> str:
        return str(self.meta.get("key", self.folder.name))

    def frames(self, split: str = "train") -> int:
        return int(self._starts[split][-1])

    @property
    def codec_info(self) -> dict[str, Any]:
        return dict(self.meta.get("codec", {}))

    def clips(self, split: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.meta["clips"] if split is None or c["split"] == split]

    # -- raw reads --
    def _fd(self, p: Path) -> int:
        fd = self._fds.get(p)
        if fd is None:
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
            self._fds[p] = fd
        return fd

    def close(self) -> None:
        fds = getattr(self, "_fds", {})
        for fd in fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        fds.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # never raise from a finaliser (it may run at any point of a GC)
            pass

    def read(self, split: str, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frames [start, stop) of a split as float32 [n, d_in] (into `out` when given)."""
        n_total = self.frames(split)
        if not (0 <= start <= stop <= n_total):
            raise DataError(f"frames [{start}, {stop}) outside the {n_total} {split} frames of the store")
        n = stop - start
        buf = np.empty((n, self.d_in), np.float32) if out is None else out[:n]
        starts = self._starts[split]
        i = int(np.searchsorted(starts, start, side="right") - 1)
        pos = start
        row = 0
        row_bytes = self.d_in * 4
        while pos < stop:
            path, frames, off = self._shards[split][i]
            a = pos - int(starts[i])
            b = min(frames, stop - int(starts[i]))
            _read_into(self._fd(path), buf[row : row + (b - a)].data.cast("B"), off + a * row_bytes, path)
            row += b - a
            pos += b - a
            i += 1
        return buf

    def clip_latents(self, clip: dict[str, Any]) -> np.ndarray:
        return self.read(clip["split"], int(clip["start"]), int(clip["start"]) + int(clip["frames"]))

    def sample(self, n: int, split: str = "train", seed: int = 0, chunk_frames: int = 256) -> np.ndarray:
        """About `n` frames from random chunks of a split (for initialisation statistics)."""
        total = self.frames(split)
        if total == 0:
            raise DataError(f"the store has no {split} frames")
        if n >= total:
            return self.read(split, 0, total)
        rng = np.random.default_rng(seed)
        n_chunks = -(-total // chunk_frames)
        pick = np.sort(rng.choice(n_chunks, size=min(n_chunks, -(-n // chunk_frames)), replace=False))
        parts = [self.read(split, int(c) * chunk_frames, min(total, (int(c) + 1) * chunk_frames)) for c in pick]
        return np.concatenate(parts)[:n]

    def iter_frames(self, split: str = "val", block: int = 8192, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """Sequential blocks of a split (evaluation)."""
        total = self.frames(split)
        if max_frames is not None:
            total = min(total, max_frames)
        for a in range(0, total, block):
            yield self.read(split, a, min(total, a + block))

    def batches(
        self,
        batch_size: int,
        *,
        split: str = "train",
        seed: int = 0,
        skip: int = 0,
        chunk_frames: int = 512,
        buffer_frames: int = 1 << 17,
        epochs: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Shuffled batches [batch_size, d_in] forever (or for `epochs`), starting at batch `skip`."""
        total = self.frames(split)
        if total == 0:
            raise DataError(f"the store has no {split} frames")
        bs = int(batch_size)
        cf = max(1, int(chunk_frames))
        n_chunks = -(-total // cf)
        per_group = max(1, int(buffer_frames) // cf)

        def chunk_len(c: int) -> int:
            return min(cf, total - c * cf)

        to_skip = int(skip) * bs  # frames of the stream to pass over before the first batch
        carry = np.empty((0, self.d_in), np.float32)
        epoch = 0
        while epochs is None or epoch < epochs:
            perm = np.random.default_rng([seed, epoch]).permutation(n_chunks)
            for g0 in range(0, n_chunks, per_group):
                group = perm[g0 : g0 + per_group]
                size = int(sum(chunk_len(int(c)) for c in group))
                if to_skip >= size:
                    to_skip -= size
                    continue
                buf = np.empty((size, self.d_in), np.float32)
                row = 0
                for c in np.sort(group):  # file order: sequential reads
                    n = chunk_len(int(c))
                    self.read(split, int(c) * cf, int(c) * cf + n, out=buf[row:])
                    row += n
                order = np.random.default_rng([seed, epoch, g0]).permutation(size)
                buf = buf[order]
                if to_skip:
                    buf = buf[to_skip:]
                    to_skip = 0
                if carry.shape[0]:
                    buf = np.concatenate([carry, buf])
                n_full = buf.shape[0] // bs
                for b in range(n_full):
                    yield buf[b * bs : (b + 1) * bs]
                carry = buf[n_full * bs :].copy()
            epoch += 1


# -- building -----------------------------------------------------------------------------------------

ProgressCallback = Callable[[int, int, str], None]


def store_key(codec: Codec, hashes: Sequence[str], val_fraction: float, max_clip_seconds: float) -> str:
    payload = {
        "version": STORE_VERSION,
        "codec": codec.id,
        "latent_kind": getattr(codec, "latent_kind", "continuous"),
        "latent_dim": int(codec.latent_dim),
        "fingerprint": codec_fingerprint(codec),
        "files": sorted(set(hashes)),
        "val_fraction": round(float(val_fraction), 6),
        "max_clip_seconds": float(max_clip_seconds),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def build_store(
    inputs: Sequence[str | os.PathLike[str]],
    codec: Codec,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    max_clip_seconds: float = 600.0,
    shard_bytes: int = 64 << 20,
    progress: bool | ProgressCallback = True,
    control: TrainControl | None = None,
    warn: Callable[[str], None] | None = None,
    rebuild: bool = False,
) -> ActivationStore:
    """The store for these files under this codec: found in the cache, or encoded now."""
    from workbench.core.audio import AudioClip, audio_info, iter_blocks, load_audio

    if not (0.0 <= val_fraction < 1.0):
        raise DataError(f"validation fraction must be in [0, 1), got {val_fraction}")
    root = cache_root(cache_dir)
    files, explicit = collect_audio_files(inputs)
    hashes = file_hashes(files, root)
    key = store_key(codec, hashes, val_fraction, max_clip_seconds)
    final = root / key
    if (final / "meta.json").is_file() and not rebuild:
        try:
            return ActivationStore(final)
        except DataError:
            pass  # damaged: rebuild below
    val = choose_val(hashes, val_fraction)
    single = len(set(hashes)) == 1 and val_fraction > 0
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.tmp-{secrets.token_hex(4)}"
    writer = StoreWriter(tmp, codec.latent_dim, shard_bytes)
    seen: set[str] = set()
    skipped: list[str] = []
    seconds = 0.0
    bar: Any = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=len(files), desc="encoding corpus", unit="file", file=sys.stderr, leave=False)
    t0 = time.monotonic()
    try:
        for i, (f, h) in enumerate(zip(files, hashes, strict=True)):
            if control is not None and control.stopped:
                raise StoreBuildCancelled("building the activation store was cancelled")
            if h not in seen:
                seen.add(h)
                split = "val" if h in val else "train"
                try:
                    info = audio_info(f)
                    clips: Iterable[AudioClip]
                    if info.duration <= max_clip_seconds:
                        clips = [load_audio(f, codec.sample_rate, codec.channels)]
                    else:
                        clips = iter_blocks(f, max_clip_seconds, codec.sample_rate, codec.channels)
                    for part, clip in enumerate(clips):
                        z = codec.encode(clip)
                        seconds += clip.duration
                        if single:  # one file only: its last frames validate
                            n_val = max(1, int(round(len(z) * val_fraction))) if len(z) > 1 else 0
                            writer.add(z[: len(z) - n_val], "train", source=str(f), sha256=h, part=part)
                            writer.add(z[len(z) - n_val :], "val", source=str(f), sha256=h, part=part)
                        else:
                            writer.add(z, split, source=str(f), sha256=h, part=part)
                except AudioError as exc:
                    if f in explicit:
                        raise
                    skipped.append(str(f))
                    if warn is not None:
                        warn(f"skipped {exc}")
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(i + 1, len(files), str(f))
        if writer.frames["train"] == 0:
            raise DataError("no training frames: every audio file was unreadable or empty")
        meta = {
            "key": key,
            "codec": {"id": codec.id, "latent_kind": getattr(codec, "latent_kind", "continuous"),
                      "latent_dim": int(codec.latent_dim), "frame_rate": float(codec.frame_rate),
                      "sample_rate": int(codec.sample_rate), "fingerprint": codec_fingerprint(codec)},
            "val_fraction": val_fraction, "max_clip_seconds": max_clip_seconds,
            "files": len(seen), "skipped": skipped, "seconds_audio": round(seconds, 3),
            "encode_seconds": round(time.monotonic() - t0, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        writer.finish(meta)
        if final.exists() and not rebuild and (final / "meta.json").is_file():
            try:  # built meanwhile by another process: keep theirs
                store = ActivationStore(final)
                shutil.rmtree(tmp, ignore_errors=True)
                return store
            except DataError:
                pass
        replace_folder(tmp, final)
    except OSError as exc:  # disk full, quota, read-only cache: one line, and nothing half-built left
        shutil.rmtree(tmp, ignore_errors=True)
        from workbench.core.fileio import disk_error

        raise disk_error(exc, f"the activation store in {root}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return ActivationStore(final)


def store_from_arrays(
    folder: str | os.PathLike[str],
    train: Iterable[np.ndarray],
    val: Iterable[np.ndarray] = (),
    *,
    d_in: int | None = None,
    shard_bytes: int = 64 << 20,
    meta: dict[str, Any] | None = None,
) -> ActivationStore:
    """A store from latents made elsewhere (tests, benchmarks). Clips are consumed one at a time, so a
    generator keeps memory at one clip plus one shard."""
    dst = Path(folder)
    tmp = dst.parent / f".{dst.name}.tmp-{secrets.token_hex(4)}"
    try:
        w: StoreWriter | None = StoreWriter(tmp, d_in, shard_bytes) if d_in is not None else None
        for split, clips in (("train", train), ("val", val)):
            for i, z in enumerate(clips):
                if w is None:
                    w = StoreWriter(tmp, int(np.asarray(z).shape[1]), shard_bytes)
                w.add(z, split, source=f"array:{split}:{i}")
        if w is None:
            raise DataError("no latents given")
        w.finish({"key": dst.name, **(meta or {})})
        replace_folder(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ActivationStore(dst)
