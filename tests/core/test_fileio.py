"""The shared atomic writers (workbench/core/fileio.py): old content or new, never a mix, whatever fails
and wherever; a folder swap interrupted between its two renames is recovered."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from workbench.core import fileio
from workbench.core.errors import WorkbenchError


def names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_atomic_open_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    fileio.atomic_write_text(p, "old")
    with pytest.raises(RuntimeError), fileio.atomic_open(p, "w", encoding="utf-8") as f:
        f.write("half of the new")
        raise RuntimeError("writer died")
    assert p.read_text() == "old" and names(tmp_path) == ["f.txt"]
    with fileio.atomic_open(p, "w", encoding="utf-8") as f:
        f.write("new")
    assert p.read_text() == "new" and names(tmp_path) == ["f.txt"]
    with pytest.raises(ValueError):
        fileio.atomic_open(p, "ab").__enter__()


def test_atomic_path_for_libraries_that_want_a_file_name(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    with fileio.atomic_path(p) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x.bin.") and not p.exists()
        tmp.write_bytes(b"abc")
    assert p.read_bytes() == b"abc" and names(tmp_path) == ["x.bin"]
    with pytest.raises(OSError), fileio.atomic_path(p) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert p.read_bytes() == b"abc" and names(tmp_path) == ["x.bin"]


def test_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        fileio.atomic_write_bytes(tmp_path / "a", b"1")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640


def _folder(d: Path, tag: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (d / f"f{i}").write_text(tag)
    return d


@pytest.mark.parametrize("exchange", [True, False])
def test_atomic_folder_replaces_as_a_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(fileio, "_exchange", lambda a, b: False)  # other platforms / filesystems
    dst = tmp_path / "sae"
    _folder(dst, "old")
    with pytest.raises(RuntimeError), fileio.atomic_folder(dst) as tmp:
        _folder(tmp, "new")
        raise RuntimeError("failed half-way")
    assert {p.read_text() for p in dst.iterdir()} == {"old"} and names(tmp_path) == ["sae"]
    with fileio.atomic_folder(dst) as tmp:
        _folder(tmp, "new")
        (tmp / "extra").write_text("new")
    assert {p.read_text() for p in dst.iterdir()} == {"new"} and len(names(dst)) == 4
    assert names(tmp_path) == ["sae"]


def test_a_crash_between_the_two_renames_is_recovered(tmp_path: Path) -> None:
    """Without an atomic exchange the old folder is moved aside first (``.<name>.old-*``); a kill right
    then leaves the target missing. The loaders (and the next save) put the previous folder back."""
    from workbench.core.sae.io import load_sae
    from workbench.core.sae_bridge import make_random_sae

    dst = make_random_sae(tmp_path / "sae", 4, 8, k=2)
    os.replace(dst, tmp_path / ".sae.old-deadbeef")  # the state such a kill leaves
    _folder(tmp_path / ".sae.tmp-cafe", "new, never moved in")
    assert not dst.exists()
    sae = load_sae(dst)
    assert sae.d_sae == 8 and dst.is_dir() and not list(tmp_path.glob(".sae.old-*"))


def test_stale_leftovers_of_killed_saves_are_removed_by_the_next_save(tmp_path: Path) -> None:
    dst = _folder(tmp_path / "out", "old")
    stale = _folder(tmp_path / ".out.tmp-0000", "junk")
    old_copy = _folder(tmp_path / ".out.old-1111", "old")
    fresh = _folder(tmp_path / ".out.tmp-2222", "someone else's save in progress")
    past = time.time() - 2 * fileio.STALE_SECONDS
    os.utime(stale, (past, past))
    with fileio.atomic_folder(dst) as tmp:
        _folder(tmp, "new")
    assert not stale.exists() and not old_copy.exists() and fresh.exists()


def test_disk_errors_are_one_line_workbench_errors() -> None:
    e = fileio.disk_error(OSError(errno.ENOSPC, "No space left on device"), "/x/out\nname.wav")
    assert isinstance(e, WorkbenchError) and "\n" not in str(e)
    assert "No space left on device" in str(e) and "free some space" in str(e)
    e = fileio.disk_error(OSError(errno.EROFS, "Read-only file system"), "/mnt/cd/x")
    assert "Read-only file system" in str(e) and "free some space" not in str(e)
