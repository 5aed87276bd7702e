"""Per-user folders (config, cache, logs) and atomic JSON writes.

platformdirs gives each platform's usual place; ``WORKBENCH_CONFIG_DIR``, ``WORKBENCH_CACHE_DIR`` and
``WORKBENCH_LOG_DIR`` override them so tests, bundles and portable installs never touch the user's real
settings.
"""

from __future__ import annotations

import json
import os
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
    """Write `text` (UTF-8) atomically through `workbench.core.fileio` (temp file beside it, fsync,
    rename, folder fsync): the target keeps its old content or gets the whole new one."""
    from workbench.core.fileio import atomic_write_bytes

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(p, text.encode("utf-8"))
    return p


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
