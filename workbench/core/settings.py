"""User settings: a versioned JSON file in the platform's config folder.

Why JSON and not QSettings: the file is readable and editable by a person, is shared with the CLI,
and carries a `schema_version` so a newer app can migrate an older file (and an older app refuses a
newer one without destroying it). Window geometry alone goes to QSettings in the app.

A missing, unreadable or damaged file never stops the app: it starts with the defaults and the
problem is reported once (`Settings.problem`); the damaged file is kept aside as ``settings.json.bad``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.core.userdirs import atomic_write_json, config_dir

SCHEMA_VERSION = 1
MAX_RECENT = 10


@dataclass
class Settings:
    recent_files: list[str] = field(default_factory=list)
    recent_sessions: list[str] = field(default_factory=list)
    output_device: str | None = None  # remembered by name: indices change when devices come and go
    silent_playback: bool = False  # with no device, run the clock so the playhead moves anyway
    last_dir: str | None = None
    codec: str = "default"
    sae_dir: str | None = None  # None: the embedded default SAE
    heatmap_features: int = 32
    schema_version: int = SCHEMA_VERSION
    problem: str | None = field(default=None, compare=False)  # not saved: why the file was not used

    def add_recent(self, path: str | os.PathLike[str], kind: str = "files") -> None:
        lst = self.recent_sessions if kind == "sessions" else self.recent_files
        p = str(Path(path).resolve())
        if p in lst:
            lst.remove(p)
        lst.insert(0, p)
        del lst[MAX_RECENT:]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("problem", None)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        s = cls()
        for k, v in d.items():
            if k in known and k not in ("problem", "schema_version"):
                default = getattr(s, k)
                if isinstance(default, list):
                    if isinstance(v, list):
                        setattr(s, k, [str(x) for x in v if isinstance(x, str)][:MAX_RECENT])
                elif isinstance(default, bool):
                    if isinstance(v, bool):
                        setattr(s, k, v)
                elif isinstance(default, int):
                    if isinstance(v, int) and not isinstance(v, bool):
                        setattr(s, k, max(1, min(256, v)))
                elif v is None or isinstance(v, str):
                    setattr(s, k, v)
        if not s.codec:
            s.codec = "default"
        return s


def settings_path() -> Path:
    return config_dir() / "settings.json"


def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """Bring an older file up to `SCHEMA_VERSION` (version 1 is the first; nothing to do yet)."""
    return d


def load_settings(path: Path | None = None) -> Settings:
    p = path or settings_path()
    if not p.exists():
        return Settings()
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        version = d.get("schema_version", 1)
        if not isinstance(version, int):
            raise ValueError("schema_version is not an integer")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        s = Settings()
        s.problem = f"settings file {p} is damaged ({exc}); using defaults (old file kept as {p.name}.bad)"
        try:
            os.replace(p, p.with_name(p.name + ".bad"))
        except OSError:
            pass
        return s
    if version > SCHEMA_VERSION:
        s = Settings()
        s.problem = (f"settings file {p} is from a newer version (schema {version}); using defaults "
                     "for this run without overwriting it")
        s.schema_version = version  # marks it read-only for `save_settings`
        return s
    return Settings.from_dict(migrate(d))


def save_settings(s: Settings, path: Path | None = None) -> Path | None:
    if s.schema_version > SCHEMA_VERSION:
        return None  # never overwrite a newer app's settings
    p = path or settings_path()
    return atomic_write_json(p, s.to_dict())
