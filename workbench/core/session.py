"""Saved sessions: clip, codec, SAE, edits and selection as versioned JSON.

A session refers to files (the audio, the SAE folder) rather than embedding them: they can be large
and the user owns them. Paths are stored both absolute and relative to the session file, so a folder
moved with its session still opens. Writes are atomic (temp file + rename), so a crash never leaves a
half-written session. `schema_version` lets a newer app migrate an older file; a newer file is refused
with one clear line instead of being misread.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.steering import Edit
from workbench.core.userdirs import atomic_write_json

SCHEMA_VERSION = 1
FORMAT = "workbench-session"
MAX_BYTES = 10_000_000  # a session is a few kB; anything huge is not one of ours


class SessionError(WorkbenchError):
    kind = "session"


@dataclass
class Session:
    audio: str | None = None  # None: the demo clip
    codec: str = "default"
    sae: str | None = None  # None: the embedded default SAE
    edits: list[Edit] = field(default_factory=list)
    selected_features: list[int] = field(default_factory=list)
    ab: str = "B"
    loop: tuple[float, float] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "audio": _path_entry(self.audio, base),
            "codec": self.codec,
            "sae": _path_entry(self.sae, base),
            "edits": [e.to_dict() for e in self.edits],
            "selected_features": list(self.selected_features),
            "ab": self.ab,
            "loop": None if self.loop is None else [float(self.loop[0]), float(self.loop[1])],
        }

    @classmethod
    def from_dict(cls, d: Any, base: Path | None = None, source: str = "session") -> Session:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise SessionError(f"{source} is not a workbench session file")
        version = d.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise SessionError(f"{source}: missing or invalid schema_version")
        if version > SCHEMA_VERSION:
            raise SessionError(
                f"{source} was saved by a newer version of the workbench (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        d = migrate(d)
        try:
            edits_v = d.get("edits") or []
            sel_v = d.get("selected_features") or []
            if not isinstance(edits_v, list) or not isinstance(sel_v, list):
                raise TypeError("'edits' and 'selected_features' must be lists")
            edits = [Edit.from_dict(e) for e in edits_v]
            sel = [_feature_id(i) for i in sel_v]
            loop_v = d.get("loop")
            if loop_v is not None and (not isinstance(loop_v, list) or len(loop_v) != 2):
                raise TypeError("'loop' must be [start, stop]")
            loop = None if loop_v is None else (float(loop_v[0]), float(loop_v[1]))
            if loop is not None and not all(math.isfinite(x) for x in loop):
                raise ValueError("'loop' must be finite")
            ab = str(d.get("ab", "B")).upper()
            codec = d.get("codec") or "default"
            if not isinstance(codec, str):
                raise TypeError("'codec' must be a codec id")
        except (TypeError, ValueError, IndexError, KeyError, OverflowError, WorkbenchError) as exc:
            raise SessionError(f"{source}: invalid content ({_short(exc)})") from None
        if ab not in ("A", "B"):
            raise SessionError(f"{source}: 'ab' must be A or B")
        if any(i < 0 for i in sel):
            raise SessionError(f"{source}: negative feature id in selected_features")
        return cls(_resolve_entry(d.get("audio"), base, source), codec, _resolve_entry(d.get("sae"), base, source),
                   edits, sel, ab, loop)


def _feature_id(v: Any) -> int:
    """A feature id as JSON has it: an integer (2.0 is accepted, 2.5, true or "2" are not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
        raise ValueError(f"feature id {v!r} is not an integer")
    return int(v)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """Bring an older session up to `SCHEMA_VERSION` (1 is the first: nothing to do yet)."""
    return d


def _path_entry(p: str | None, base: Path | None) -> dict[str, str] | None:
    if p is None:
        return None
    ap = Path(p).resolve()
    entry = {"path": str(ap)}
    if base is not None:
        try:
            entry["relative"] = os.path.relpath(ap, base.resolve())
        except ValueError:  # another drive on Windows
            pass
    return entry


def _resolve_entry(e: Any, base: Path | None, source: str) -> str | None:
    if e is None:
        return None
    if isinstance(e, str):
        return e
    if not isinstance(e, dict) or not isinstance(e.get("path"), str):
        raise SessionError(f"{source}: invalid file reference {_short(ValueError(repr(e)))[:120]}")
    rel = e.get("relative")
    if isinstance(rel, str) and base is not None:
        try:
            cand = (base / rel).resolve()
            if cand.exists():
                return str(cand)
        except (OSError, ValueError, RuntimeError):  # NUL in the name, symlink loop, name too long
            pass
    return e["path"]


def save_session(path: str | os.PathLike[str], session: Session) -> Path:
    p = Path(path)
    try:
        return atomic_write_json(p, session.to_dict(p.parent))
    except OSError as exc:
        raise SessionError(f"cannot save session to {p}: {exc.strerror or exc}") from None


def load_session(path: str | os.PathLike[str]) -> Session:
    p = Path(path)
    try:
        if not p.is_file():
            raise SessionError(f"session file {p} does not exist or is not a file")
        if p.stat().st_size > MAX_BYTES:
            raise SessionError(f"{p} is too large to be a session file")
        d = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SessionError(f"cannot read session {p}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SessionError(f"{p} is not valid JSON ({_short(exc)})") from None
    except RecursionError:
        raise SessionError(f"{p} is not a session file (JSON nested too deeply)") from None
    return Session.from_dict(d, p.parent, source=str(p.name))
