"""Atomic writes of files and folders (safetensors, JSON, .npy, whole folders).

Everything the workbench writes that a later run reads (SAE folders, checkpoints, activation stores) is
written so that a crash, a full disk or a kill at any moment leaves either the old content or the new,
never a half-written mix: a file goes to a temp name in the same folder, is fsynced, then renamed over
the target; a folder is built aside under a temp name and swapped in by renames.

This module is the one place that knows how: every writer in the workbench goes through it (files of
any kind through `atomic_path` / `atomic_open`, folders through `atomic_folder`). On Linux a folder is
swapped in with one ``renameat2(RENAME_EXCHANGE)``, so even a SIGKILL between two system calls leaves a
complete folder under the target name; elsewhere (or on filesystems without it) two renames are used
and `recover_folder` puts the previous folder back if a crash fell between them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from workbench.core.errors import WorkbenchError

# Temp folders of a save older than this are leftovers of a killed process, removed by the next save.
STALE_SECONDS = 3600.0
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})


class DiskWriteError(WorkbenchError):
    """Writing failed for a reason outside the program (disk full, quota, read-only, permissions)."""

    kind = "disk"


def disk_error(exc: OSError, what: str) -> DiskWriteError:
    """One line for an OSError met while writing `what`: the system's reason, and what to do if full."""
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    hint = "; free some space and try again" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
    return DiskWriteError(f"cannot write {_show(what)}: {reason}{hint}")


def _show(p: Any) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(p))


def fsync_dir(folder: Path) -> None:
    """Make renames inside `folder` durable; best effort (not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_temp(p: Path) -> tuple[int, Path]:
    """A new temp file beside `p`, created with the usual umask-governed permissions (mkstemp's 0600
    would make saved SAE folders unreadable to other users and tools)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(16):
        tmp = p.parent / f".{p.name}.{secrets.token_hex(4)}.part"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temp file beside {p}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """``with atomic_open(p) as f:`` write to `f`; on success `p` gets the whole new content at once.

    The data go to a temp file beside `p`, which is flushed, fsynced and renamed over `p`, and the
    folder is fsynced so the rename itself survives a power cut. On any exception (or a kill) `p` keeps
    its old content and the temp file is removed (a kill leaves only a hidden ``.part`` file).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode 'wb' or 'w', not {mode!r}")
    p = Path(path)
    fd, tmp = _open_temp(p)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(p.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """``with atomic_path(p) as tmp:`` let a library write the file `tmp` (soundfile, numpy, ...); on
    success it is fsynced and renamed over `p`. For writers that want a file name, not a file object."""
    p = Path(path)
    fd, tmp = _open_temp(p)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(p.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    # allow_nan=False: a NaN metric would make a file other JSON readers (and SAELens) reject.
    atomic_write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def atomic_save_safetensors(
    path: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None
) -> None:
    """torch tensors (or numpy arrays) -> safetensors, atomically."""
    import torch
    from safetensors.torch import save

    out = {}
    for k, v in tensors.items():
        t = v if isinstance(v, torch.Tensor) else torch.from_numpy(v)
        out[k] = t.detach().cpu().contiguous()
    atomic_write_bytes(path, save(out, metadata=metadata))


def atomic_save_npy(path: str | os.PathLike[str], array: Any) -> None:
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


_RENAMEAT2: Any = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths `a` and `b` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    platform, C library or filesystem cannot (the caller then falls back to two renames)."""
    global _RENAMEAT2
    if not sys.platform.startswith("linux"):
        return False
    if _RENAMEAT2 is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _RENAMEAT2 = fn
        except (OSError, AttributeError):
            _RENAMEAT2 = False
    if _RENAMEAT2 is False:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if _RENAMEAT2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(src: Path, dst: Path) -> None:
    """Move the complete folder `src` to `dst`, replacing whatever was there.

    On Linux the two folders are exchanged in one atomic step and the old one (now under the temp
    name) is deleted: at every instant `dst` is the complete old or the complete new folder. Elsewhere
    two renames (old aside, new in): a crash between them leaves `dst` absent and the old copy as
    ``.<name>.old-*`` beside it, which `recover_folder` (called by the loaders and the next save) puts
    back. Never a mix of old and new files.
    """
    src, dst = Path(src), Path(dst)
    if dst.is_dir() and not dst.is_symlink() and _exchange(src, dst):
        fsync_dir(dst.parent)
        shutil.rmtree(src, ignore_errors=True)
        return
    old: Path | None = None
    if dst.exists() or dst.is_symlink():
        old = dst.parent / f".{dst.name}.old-{secrets.token_hex(4)}"
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:
            with contextlib.suppress(OSError):
                os.replace(old, dst)
        raise
    fsync_dir(dst.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_folder(dst: str | os.PathLike[str]) -> bool:
    """If a save was killed between its two renames (`replace_folder` without an atomic exchange),
    `dst` is missing and its previous version waits beside it as ``.<name>.old-*``: move the newest
    such copy back. Best effort (a read-only place stays as it is); True if something was restored."""
    dst = Path(dst)
    if dst.exists() or dst.is_symlink() or not dst.parent.is_dir():
        return False
    try:
        olds = [c for c in dst.parent.glob(f".{glob_escape(dst.name)}.old-*") if c.is_dir()]
        if not olds:
            return False
        newest = max(olds, key=lambda c: c.stat().st_mtime)
        os.replace(newest, dst)
    except OSError:
        return False
    fsync_dir(dst.parent)
    return True


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _remove_leftovers(dst: Path) -> None:
    """Temp and old folders of earlier saves of `dst` that a killed process left behind."""
    now = time.time()
    name = glob_escape(dst.name)
    for pattern, stale in ((f".{name}.old-*", 0.0), (f".{name}.tmp-*", STALE_SECONDS)):
        for c in dst.parent.glob(pattern):
            try:
                if c.is_dir() and not c.is_symlink() and now - c.stat().st_mtime >= stale:
                    shutil.rmtree(c, ignore_errors=True)
            except OSError:
                pass


@contextlib.contextmanager
def atomic_folder(dst: str | os.PathLike[str]) -> Iterator[Path]:
    """``with atomic_folder(out) as tmp:`` write files into `tmp`; on success it replaces `out`.

    On any exception the temp folder is removed and `out` is untouched.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(dst)
    if dst.exists():
        _remove_leftovers(dst)
    tmp = dst.parent / f".{dst.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        for f in tmp.iterdir():
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        fsync_dir(tmp)
        replace_folder(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = [
    "DiskWriteError",
    "atomic_folder",
    "atomic_open",
    "atomic_path",
    "atomic_save_npy",
    "atomic_save_safetensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "disk_error",
    "fsync_dir",
    "recover_folder",
    "replace_folder",
]
