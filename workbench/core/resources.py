"""Where the shipped resources (default codec, default SAE, demo material) live.

In a source checkout they are in ``<repo>/resources``; in an installed wheel they are copied into the
package as ``workbench/_resources``. ``WORKBENCH_RESOURCES`` overrides both (tests, bundles).
"""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("WORKBENCH_RESOURCES")
    if env:
        return Path(env)
    pkg = Path(__file__).resolve().parents[1]
    installed = pkg / "_resources"
    if installed.is_dir():
        return installed
    return pkg.parent / "resources"


def default_codec_dir() -> Path:
    return resources_dir() / "codecs" / "default"


def default_sae_dir() -> Path:
    return resources_dir() / "saes" / "default"
