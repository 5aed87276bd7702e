"""Embedded default codec (placeholder until the trained codec lands)."""

from __future__ import annotations


def register_default() -> None:
    return None
