"""Codec registry: ids -> factories, plus what `workbench codecs` lists.

Ids (contract): ``default`` (the embedded codec), ``encodec-24khz``, ``encodec-48khz``. Options:
``latent`` (``continuous`` or ``quantized`` / ``quantized:BW`` with BW in kbps) and ``weights`` (a
folder or state-dict file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.core.codecs.base import Codec
from workbench.core.errors import CodecError


@dataclass
class CodecEntry:
    id: str
    factory: Callable[..., Codec]
    summary: Callable[..., dict[str, Any]]  # static facts + whether weights are present, without loading
    aliases: tuple[str, ...] = ()


_REGISTRY: dict[str, CodecEntry] = {}
_BUILTIN_LOADED = False


def register(entry: CodecEntry) -> None:
    _REGISTRY[entry.id] = entry
    for alias in entry.aliases:
        _REGISTRY[alias] = entry


def _ensure_builtin() -> None:
    """Register the built-in codecs once, even if something else registered first."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    from workbench.core.codecs import default, encodec_adapter

    for reg in (default.register_default, encodec_adapter.register_encodec):
        reg()


def codec_ids() -> list[str]:
    _ensure_builtin()
    seen: list[str] = []
    for key, entry in _REGISTRY.items():
        if key == entry.id and key not in seen:
            seen.append(key)
    return seen


def resolve_id(codec_id: str) -> str:
    _ensure_builtin()
    entry = _REGISTRY.get(codec_id)
    if entry is None:
        raise CodecError(f"unknown codec '{codec_id}'; known: {', '.join(codec_ids())}")
    return entry.id


def get_codec(codec_id: str = "default", **options: Any) -> Codec:
    _ensure_builtin()
    entry = _REGISTRY.get(codec_id)
    if entry is None:
        raise CodecError(f"unknown codec '{codec_id}'; known: {', '.join(codec_ids())}")
    opts = {k: v for k, v in options.items() if v is not None}
    return entry.factory(**opts)


def list_codecs(**options: Any) -> list[dict[str, Any]]:
    _ensure_builtin()
    opts = {k: v for k, v in options.items() if v is not None}
    return [_REGISTRY[i].summary(**opts) for i in codec_ids()]
