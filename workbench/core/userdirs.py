"""Per-user folders (config, cache, logs) and atomic JSON writes.

platformdirs gives each platform's usual place; ``WORKBENCH_CONFIG_DIR``, ``WORKBENCH_CACHE_DIR`` and
``WORKBENCH_LOG_DIR`` override them so tests, bundles and portable installs never touch the user's real
settings.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

APP_NAME = "sae-audio-workbench"


def _dir(env: str, default: str) -> Path:
    d = Path(os.environ.get(env) or default)
    return d


def config_dir() -> Path:
    import platformdirs

    return _dir("WORKBENCH_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    import platformdirs

    return _dir("WORKBENCH_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME))


def log_dir() -> Path:
    import platformdirs

    return _dir("WORKBENCH_LOG_DIR", platformdirs.user_log_dir(APP_NAME))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write via a temp file in the same folder + fsync + rename, so a crash never leaves half a file:
    the target keeps its old content or gets the whole new one."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return p


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
