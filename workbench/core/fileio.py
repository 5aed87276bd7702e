"""Atomic writes of files and folders (safetensors, JSON, .npy, whole folders).

Everything the workbench writes that a later run reads (SAE folders, checkpoints, activation stores) is
written so that a crash, a full disk or a kill at any moment leaves either the old content or the new,
never a half-written mix: a file goes to a temp name in the same folder, is fsynced, then renamed over
the target; a folder is built aside under a temp name and swapped in by renames.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    p = Path(path)
    fd, tmp = _open_temp(p)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    p = Path(path)
    fd, tmp = _open_temp(p)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_folder(src: Path, dst: Path) -> None:
    """Move the complete folder `src` to `dst`, replacing whatever was there.

    Two renames (old aside, new in) and then the old one is deleted: at no moment is `dst` a mix of old
    and new files. A crash between the renames leaves `dst` absent and the old copy under a
    ``.<name>.old-*`` name next to it, never a broken `dst`.
    """
    dst = Path(dst)
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


@contextlib.contextmanager
def atomic_folder(dst: str | os.PathLike[str]) -> Iterator[Path]:
    """``with atomic_folder(out) as tmp:`` write files into `tmp`; on success it replaces `out`.

    On any exception the temp folder is removed and `out` is untouched.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
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
    "atomic_folder",
    "atomic_save_npy",
    "atomic_save_safetensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "fsync_dir",
    "replace_folder",
]
