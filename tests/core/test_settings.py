"""Settings JSON: defaults, round trip, damaged and newer files, recent-file lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.settings import MAX_RECENT, SCHEMA_VERSION, Settings, load_settings, save_settings, settings_path


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_defaults_and_round_trip(config: Path) -> None:
    s = load_settings()
    assert s == Settings() and s.problem is None
    s.output_device = "USB DAC"
    s.silent_playback = True
    s.add_recent("/x/a.wav")
    p = save_settings(s)
    assert p == settings_path() == config / "settings.json"
    assert json.loads(p.read_text())["schema_version"] == SCHEMA_VERSION
    assert load_settings() == s


def test_recent_list_is_most_recent_first_unique_and_bounded() -> None:
    s = Settings()
    for i in range(MAX_RECENT + 3):
        s.add_recent(f"/x/{i}.wav")
    s.add_recent("/x/5.wav")
    assert len(s.recent_files) == MAX_RECENT and s.recent_files[0] == "/x/5.wav"
    assert len(set(s.recent_files)) == MAX_RECENT


def test_damaged_file_gives_defaults_and_is_kept_aside(config: Path) -> None:
    config.mkdir(parents=True)
    (config / "settings.json").write_text("{oops")
    s = load_settings()
    assert s.recent_files == [] and "damaged" in (s.problem or "")
    assert (config / "settings.json.bad").read_text() == "{oops"


def test_wrong_types_are_ignored(config: Path) -> None:
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps(
        {"schema_version": 1, "recent_files": "nope", "heatmap_features": "x", "silent_playback": 1, "codec": 5}))
    s = load_settings()
    assert s.recent_files == [] and s.heatmap_features == 32 and s.silent_playback is False and s.codec == "default"


def test_newer_file_is_not_overwritten(config: Path) -> None:
    config.mkdir(parents=True)
    newer = json.dumps({"schema_version": SCHEMA_VERSION + 1, "future": True})
    (config / "settings.json").write_text(newer)
    s = load_settings()
    assert "newer version" in (s.problem or "")
    assert save_settings(s) is None
    assert (config / "settings.json").read_text() == newer
