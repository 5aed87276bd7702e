"""Saved sessions: round trip, relative paths, versioning, atomic writes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.session import SCHEMA_VERSION, Session, SessionError, load_session, save_session
from workbench.core.steering import Edit


def sample(tmp_path: Path) -> Session:
    audio = tmp_path / "a b" / "clip.wav"
    audio.parent.mkdir()
    audio.write_bytes(b"x")
    sae = tmp_path / "sae"
    sae.mkdir()
    return Session(str(audio), "default", str(sae), [Edit(3, "scale", 0.0), Edit(7, "add", 0.5, 1.0, 2.5)],
                   [3, 7], "A", (0.5, 1.5))


def test_round_trip(tmp_path: Path) -> None:
    s = sample(tmp_path)
    p = save_session(tmp_path / "s.json", s)
    d = json.loads(p.read_text())
    assert d["schema_version"] == SCHEMA_VERSION and d["format"] == "workbench-session"
    assert load_session(p) == s


def test_paths_follow_a_moved_folder(tmp_path: Path) -> None:
    s = sample(tmp_path)
    save_session(tmp_path / "s.json", s)
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    got = load_session(moved / "s.json")
    assert got.audio == str((moved / "a b" / "clip.wav").resolve())
    assert got.sae == str((moved / "sae").resolve())


def test_demo_and_default_are_none(tmp_path: Path) -> None:
    s = Session()
    assert load_session(save_session(tmp_path / "s.json", s)) == s


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a workbench session"),
        ('{"format": "workbench-session"}', "schema_version"),
        ('{"format": "workbench-session", "schema_version": 99}', "newer version"),
        ('{"format": "workbench-session", "schema_version": 1, "edits": [{"feature": 1}]}', "invalid"),
        ('{"format": "workbench-session", "schema_version": 1, "edits": [{"feature": 1, "mode": "boost", "value": 1}]}',
         "invalid"),
        ('{"format": "workbench-session", "schema_version": 1, "ab": "C"}', "A or B"),
    ],
)
def test_bad_files_give_one_line(tmp_path: Path, content: str, needle: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(SessionError) as ei:
        load_session(p)
    assert needle in str(ei.value) and "\n" not in str(ei.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="does not exist"):
        load_session(tmp_path / "nope.json")
    with pytest.raises(SessionError, match="does not exist"):
        load_session(tmp_path)


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = save_session(tmp_path / "s.json", Session(codec="a"))
    old = p.read_text()

    def boom(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(SessionError, match="No space left"):
        save_session(p, Session(codec="b"))
    assert p.read_text() == old
    assert [f.name for f in tmp_path.iterdir()] == ["s.json"]
