"""Labeled synthetic music for codec training, probes and tests (see `workbench.core.data.synth`)."""

from workbench.core.data.synth import (
    CHORD_QUALITIES,
    DEFAULT_MIX,
    FAMILIES,
    KEY_MODES,
    KINDS,
    SynthClip,
    available_kinds,
    frame_labels,
    generate_corpus,
    labels_to_midi,
    load_corpus,
    render_clip,
    render_midi,
)

__all__ = [
    "CHORD_QUALITIES",
    "DEFAULT_MIX",
    "FAMILIES",
    "KEY_MODES",
    "KINDS",
    "SynthClip",
    "available_kinds",
    "frame_labels",
    "generate_corpus",
    "labels_to_midi",
    "load_corpus",
    "render_clip",
    "render_midi",
]
