"""Feature edits and their application to codec latents.

An edit changes SAE feature activations ``f -> f'`` and the latents by exactly what those features
explain: ``z' = z + (f' - f) @ W_dec``. The SAE's reconstruction error stays in ``z``, so no edits give
back ``z`` itself, and the codec's own decode of it.

Units (contract, DESIGN.md): ``scale=V`` multiplies the activation; ``add=V`` and ``set=V`` are in
multiples of the feature's maximum activation on the training data, so +/-1 means the same for every
feature. An edit may be limited to ``@T0-T1`` seconds; it then fades in and out over `fade` seconds
outside that range so no click is heard at the borders.

For ``relu-rmsnorm`` SAEs the code that the decoder sees is RMS-normalised; an edit is applied to the
pre-norm code and goes through the norm again (``encode_prenorm_np`` / ``decode_prenorm_np``).

Probe edits (`ProbeEdit`, spec ``probe:PROPERTY=TARGET[:ALPHA][@T0-T1]``) move every frame toward a
class of an acoustic property along the direction of that class in the SAE's probes
(``probes.safetensors`` in the SAE folder, written by ``workbench probe``); see `probe_delta`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from workbench.core.errors import UsageError

MODES = ("scale", "add", "set")


@dataclass(frozen=True)
class Edit:
    feature: int
    mode: str
    value: float
    t0: float | None = None
    t1: float | None = None
    fade: float = 0.04  # seconds of fade outside a time range (3 frames at 75 Hz)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"edit mode '{self.mode}' unknown; use scale, add or set")
        if not np.isfinite(self.value):
            raise UsageError(f"edit value {self.value} is not a finite number")
        if self.feature < 0:
            raise UsageError(f"feature {self.feature} is negative")
        if self.t0 is not None and self.t1 is not None and not (0 <= self.t0 < self.t1):
            raise UsageError(f"edit time range {self.t0}-{self.t1} is empty or negative")

    def spec(self) -> str:
        s = f"{self.feature}:{self.mode}={self.value:g}"
        if self.t0 is not None or self.t1 is not None:
            s += f"@{'' if self.t0 is None else f'{self.t0:g}'}-{'' if self.t1 is None else f'{self.t1:g}'}"
        return s

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "mode": self.mode, "value": self.value, "t0": self.t0, "t1": self.t1,
                "fade": self.fade}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Edit:
        if isinstance(d, dict) and d.get("mode") == "probe":
            return ProbeEdit.from_probe_dict(d)
        try:
            return cls(int(d["feature"]), str(d["mode"]), float(d["value"]),
                       None if d.get("t0") is None else float(d["t0"]),
                       None if d.get("t1") is None else float(d["t1"]), float(d.get("fade", 0.04)))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"invalid edit {d!r}: {exc}") from None


PROBE_PROPERTIES = ("pitch", "loudness", "timbre")  # the order gives each its sentinel feature -1, -2, -3
PROBE_CLASSES = {"pitch": 67, "loudness": 20, "timbre": 20}  # = analysis.descriptors.PROPERTIES
PITCH_MIDI_MIN = 24  # pitch class 0 (analysis.descriptors); class 66 is "unvoiced"


@dataclass(frozen=True)
class ProbeEdit(Edit):
    """Move frames toward class TARGET of a property (``relative``: TARGET classes up/down from each
    frame's current class as the probe reads it) with strength ``value`` (α).

    A subclass of `Edit` so edit lists, sessions and undo keep working: ``mode`` is ``"probe"`` and
    ``feature`` is a negative sentinel (-1 pitch, -2 loudness, -3 timbre), never an SAE feature.
    """

    feature: int = -1
    mode: str = "probe"
    value: float = 1.0  # α
    prop: str = "pitch"
    target: float = 0.0
    relative: bool = True

    def __post_init__(self) -> None:
        if self.prop not in PROBE_PROPERTIES:
            raise UsageError(f"probe property '{self.prop}' unknown; use {', '.join(PROBE_PROPERTIES)}")
        object.__setattr__(self, "feature", -1 - PROBE_PROPERTIES.index(self.prop))
        object.__setattr__(self, "mode", "probe")
        if not np.isfinite(self.value):
            raise UsageError(f"probe strength {self.value} is not a finite number")
        if not np.isfinite(self.target) or float(self.target) != round(float(self.target)):
            raise UsageError(f"probe target {self.target} must be a whole number of classes")
        n = PROBE_CLASSES[self.prop]
        if not self.relative and not (0 <= self.target < n):
            raise UsageError(f"{self.prop} class {self.target:g} does not exist (classes 0..{n - 1})")
        if self.relative and abs(self.target) >= n:
            raise UsageError(f"{self.prop} step {self.target:+g} is larger than the {n} classes")
        if self.t0 is not None and self.t1 is not None and not (0 <= self.t0 < self.t1):
            raise UsageError(f"edit time range {self.t0}-{self.t1} is empty or negative")

    def spec(self) -> str:
        s = f"probe:{self.prop}={self.target:+g}" if self.relative else f"probe:{self.prop}={self.target:g}"
        s += f":{self.value:g}"
        if self.t0 is not None or self.t1 is not None:
            s += f"@{'' if self.t0 is None else f'{self.t0:g}'}-{'' if self.t1 is None else f'{self.t1:g}'}"
        return s

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "prop": self.prop, "target": self.target, "relative": self.relative}

    @classmethod
    def from_probe_dict(cls, d: dict[str, Any]) -> ProbeEdit:
        try:
            return cls(value=float(d.get("value", 1.0)), prop=str(d["prop"]), target=float(d["target"]),
                       relative=bool(d.get("relative", True)),
                       t0=None if d.get("t0") is None else float(d["t0"]),
                       t1=None if d.get("t1") is None else float(d["t1"]), fade=float(d.get("fade", 0.04)))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"invalid probe edit {d!r}: {exc}") from None


_NUM = r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
_PROBE_SPEC = re.compile(
    r"^\s*probe\s*:\s*(?P<prop>[A-Za-z]+)\s*=\s*(?P<target>[-+]?\d+|[A-Ga-g][#b]?-?\d)"
    r"\s*(:\s*(?P<alpha>" + _NUM + r"))?"
    r"\s*(?P<range>@\s*(?P<t0>\d+(\.\d*)?|\.\d+)?\s*-\s*(?P<t1>\d+(\.\d*)?|\.\d+)?)?\s*$"
)
_NOTE_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def _parse_probe(spec: str) -> ProbeEdit:
    """``probe:PROPERTY=TARGET[:ALPHA][@T0-T1]``: TARGET with a sign is relative (``+2`` = two classes
    up from each frame's current class), without a sign absolute (class index; for pitch also a note
    name such as ``A4`` or ``C#3``)."""
    m = _PROBE_SPEC.match(spec)
    if not m:
        raise UsageError(f"cannot parse edit '{spec}'; expected probe:PROPERTY=TARGET[:ALPHA][@T0-T1] "
                         "(e.g. probe:pitch=+2:1.5, probe:loudness=+3, probe:timbre=12)")
    prop = m["prop"].lower()
    tgt = m["target"]
    relative = tgt[0] in "+-"
    if tgt[0].isalpha():
        if prop != "pitch":
            raise UsageError(f"edit '{spec}': note names are only for pitch")
        semis = _NOTE_STEPS[tgt[0].lower()] + (1 if "#" in tgt else -1 if tgt[1:2] == "b" else 0)
        octave = int(tgt[2:] if tgt[1:2] in ("#", "b") else tgt[1:])
        target = float(12 * (octave + 1) + semis - PITCH_MIDI_MIN)
    else:
        target = float(int(tgt))
    t0 = float(m["t0"]) if m["t0"] is not None else None
    t1 = float(m["t1"]) if m["t1"] is not None else None
    if m["range"] is not None and t0 is None and t1 is None:
        raise UsageError(f"edit '{spec}': empty time range")
    alpha = float(m["alpha"]) if m["alpha"] is not None else 1.0
    return ProbeEdit(value=alpha, prop=prop, target=target, relative=relative, t0=t0, t1=t1)


_SPEC = re.compile(
    r"^\s*(?P<feat>\d+)\s*:\s*(?P<mode>[a-z]+)\s*=\s*(?P<val>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)"
    r"\s*(?P<range>@\s*(?P<t0>\d+(\.\d*)?|\.\d+)?\s*-\s*(?P<t1>\d+(\.\d*)?|\.\d+)?)?\s*$"
)


def parse_edit(spec: str) -> Edit:
    """``FEATURE:scale=V``, ``FEATURE:add=V``, ``FEATURE:set=V``, optionally ``@T0-T1`` (seconds);
    or ``probe:PROPERTY=TARGET[:ALPHA][@T0-T1]`` (a `ProbeEdit`)."""
    if not isinstance(spec, str) or len(spec) > 200:
        raise UsageError("edit spec must be a short string like 12:scale=0 or 7:add=0.5@1.0-2.5")
    if spec.strip().lower().startswith("probe"):
        return _parse_probe(spec)
    m = _SPEC.match(spec)
    if not m:
        raise UsageError(f"cannot parse edit '{spec}'; expected FEATURE:scale|add|set=VALUE[@T0-T1]")
    t0 = float(m["t0"]) if m["t0"] is not None else None
    t1 = float(m["t1"]) if m["t1"] is not None else None
    if m["range"] is not None and t0 is None and t1 is None:
        raise UsageError(f"edit '{spec}': empty time range")
    return Edit(int(m["feat"]), m["mode"], float(m["val"]), t0, t1)


class SAEProtocol(Protocol):
    d_in: int
    d_sae: int
    architecture: str

    def encode_np(self, z: np.ndarray) -> np.ndarray: ...

    def decode_np(self, f: np.ndarray) -> np.ndarray: ...


@dataclass
class SteeringContext:
    """What applying edits needs: the SAE, its decoder rows and per-feature maxima, the frame rate."""

    sae: Any
    w_dec: np.ndarray  # [d_sae, d_in]
    max_activation: np.ndarray  # [d_sae]
    frame_rate: float
    prenorm: bool = False
    _cache: dict[str, Any] = field(default_factory=dict)
    # The codec's loudness channel (`Codec.loudness_channel`), if any: probe edits of pitch and timbre
    # leave it unchanged, so moving pitch does not also move the level.
    loudness_channel: int | None = None

    @classmethod
    def from_sae(cls, sae: Any, frame_rate: float, loudness_channel: int | None = None) -> SteeringContext:
        w = getattr(sae, "W_dec_np", None)
        if w is None:
            w = sae.W_dec
            w = w.detach().cpu().numpy() if hasattr(w, "detach") else np.asarray(w)
        prenorm = getattr(sae, "architecture", "") == "relu-rmsnorm"
        info = getattr(sae, "info", None)
        mx = None
        if info is not None:
            # Units of add/set: the maximum of the code the edit acts on (pre-norm for relu-rmsnorm).
            mx = getattr(info, "max_activation_prenorm", None) if prenorm else None
            if mx is None:
                mx = getattr(info, "max_activation", None)
        if mx is None:
            mx = getattr(sae, "max_activation", None)
        # Without recorded maxima (e.g. a foreign SAE), +/-1 means one unit of activation.
        mx = np.ones(w.shape[0], np.float32) if mx is None else np.asarray(mx, np.float32)
        mx = np.where(np.isfinite(mx) & (mx > 0), mx, 1.0).astype(np.float32)
        return cls(sae, w.astype(np.float32), mx, float(frame_rate), prenorm, loudness_channel=loudness_channel)


def range_weights(edit: Edit, num_frames: int, frame_rate: float, frame_offset: int = 0) -> np.ndarray:
    """Per-frame weight in [0, 1]: 1 inside the edit's range, linear fades just outside it.

    `frame_offset` is the clip frame of the first of the `num_frames` (a window of a long clip)."""
    if edit.t0 is None and edit.t1 is None:
        return np.ones(num_frames, np.float32)
    t = (np.arange(num_frames) + frame_offset + 0.5) / frame_rate
    t0 = 0.0 if edit.t0 is None else edit.t0
    t1 = np.inf if edit.t1 is None else edit.t1
    fade = max(edit.fade, 1e-6)
    w = np.ones(num_frames, np.float64)
    if edit.t0 is not None:
        w = np.minimum(w, np.clip((t - (t0 - fade)) / fade, 0.0, 1.0))
    if edit.t1 is not None:
        w = np.minimum(w, np.clip(((t1 + fade) - t) / fade, 0.0, 1.0))
    return w.astype(np.float32)


def edited_features(f: np.ndarray, edits: Sequence[Edit], ctx: SteeringContext, frame_offset: int = 0) -> np.ndarray:
    """f' from f: each edit moves its feature toward its target, weighted over time (`f` holds clip
    frames from `frame_offset` on)."""
    out = f.copy()
    n = f.shape[0]
    for e in edits:
        if isinstance(e, ProbeEdit):
            out = out + probe_delta(f, e, ctx, frame_offset)
            continue
        if e.feature >= f.shape[1]:
            raise UsageError(f"feature {e.feature} does not exist (this SAE has {f.shape[1]} features)")
        cur = out[:, e.feature]
        if e.mode == "scale":
            target = cur * e.value
        elif e.mode == "add":
            target = cur + e.value * ctx.max_activation[e.feature]
        else:
            target = np.full_like(cur, e.value * ctx.max_activation[e.feature])
        w = range_weights(e, n, ctx.frame_rate, frame_offset)
        out[:, e.feature] = cur + w * (target - cur)
    return out


def apply_edits(z: np.ndarray, edits: Sequence[Edit], ctx: SteeringContext, features: np.ndarray | None = None,
                frame_offset: int = 0) -> np.ndarray:
    """z' = z + (f' - f) @ W_dec; exactly z when there is nothing to change.

    Every frame is edited on its own, so a long clip can be steered window by window: pass each
    window's first clip frame as `frame_offset` and time ranges land where they would in one pass."""
    z = np.asarray(z, np.float32)
    if not edits:
        return z.copy()
    ch = ctx.loudness_channel
    held = [e for e in edits if isinstance(e, ProbeEdit) and e.prop != "loudness"] if ch is not None else []
    if held:
        # Pitch/timbre probe edits: their latent change, minus the loudness channel (measured: pitch +2 at
        # alpha 1 otherwise raised the default codec's output by ~10 dB).
        ids = {id(e) for e in held}
        rest = [e for e in edits if id(e) not in ids]
        f0 = ctx.sae.encode_np(z) if features is None else features
        z_rest = apply_edits(z, rest, ctx, features=None if ctx.prenorm else f0, frame_offset=frame_offset)
        d = sum((probe_delta(f0, e, ctx, frame_offset) for e in held), np.zeros_like(f0)) @ ctx.w_dec
        d[:, ch] = 0.0
        return (z_rest + d).astype(np.float32)
    probe_edits = [e for e in edits if isinstance(e, ProbeEdit)]
    if probe_edits and ctx.prenorm:
        # Probes read the post-norm features f: their delta is added there (the decoder is linear in f),
        # the feature edits still go through the norm.
        others = [e for e in edits if not isinstance(e, ProbeEdit)]
        f0 = ctx.sae.encode_np(z) if features is None else features
        d = sum((probe_delta(f0, e, ctx, frame_offset) for e in probe_edits), np.zeros_like(f0))
        return (apply_edits(z, others, ctx, frame_offset=frame_offset) + d @ ctx.w_dec).astype(np.float32)
    if ctx.prenorm:
        # relu-rmsnorm: edits act on the pre-norm code (what the L1 penalised), and the norm is applied
        # again before decoding, so an edited code stays in the distribution the decoder saw.
        u = ctx.sae.encode_prenorm_np(z)
        u2 = edited_features(u, edits, ctx, frame_offset)
        delta = ctx.sae.decode_prenorm_np(u2) - ctx.sae.decode_prenorm_np(u)
        return (z + delta).astype(np.float32)
    f = ctx.sae.encode_np(z) if features is None else features
    f2 = edited_features(f, edits, ctx, frame_offset)
    d = f2 - f
    cols = np.flatnonzero(np.abs(d).max(axis=0) > 0)
    if cols.size == 0:
        return z.copy()
    return (z + d[:, cols] @ ctx.w_dec[cols]).astype(np.float32)


# -- probe edits ---------------------------------------------------------------------------------------

PROBE_DIRECTION = "contrast"  # "contrast": W[k] - W[c] (c = the frame's current class); "class": the target row W[k]
PROBE_SPACE = "standardised"  # "standardised": the rows of the probe as trained, mapped back (× scale); "raw"


def probe_set(ctx: SteeringContext) -> Any:
    """The probes of the SAE behind `ctx` (loaded once, from the SAE's folder)."""
    ps = ctx._cache.get("probes")
    if ps is not None:
        return ps
    sae = ctx.sae
    info = getattr(sae, "info", None) or getattr(getattr(sae, "model", None), "info", None)
    folder = getattr(info, "folder", None)
    if folder is None:
        raise UsageError("probe edits need an SAE loaded from a folder with probes (run `workbench probe` on it)")
    from workbench.core.analysis.probes import load_probes

    ps = load_probes(folder, d_sae=ctx.w_dec.shape[0])
    ctx._cache["probes"] = ps
    return ps


def probe_delta(f: np.ndarray, e: ProbeEdit, ctx: SteeringContext, frame_offset: int = 0) -> np.ndarray:
    """f' - f for a probe edit: per frame, α · s · u, clipped so that f' >= 0.

    u is a unit vector in feature space. The probe was trained on standardised features
    x = (f - mean) / scale, where its weight row of class k is ``W_std[k]``; adding ``β · W_std[k]`` to x
    (Paek et al.'s edit, in the space the probe lives in) is adding ``β · scale ⊙ W_std[k]`` to f, so u is
    that vector normalised (``PROBE_DIRECTION = "class"``, Paek et al.'s edit). The default,
    ``"contrast"``, uses ``W_std[k] - W_std[c]`` (c the frame's current class): it also takes weight from
    the features of the current class. Measured on the default codec + SAE (`scripts/eval_probes.py`,
    see its report): "class" made `loudness=-2` *louder* (+8 dB median at α 0.25,
    features only grow after the clip at 0), "contrast" moved it down (-4 dB) and up for +2 (+8 dB), and
    moved pitch up on as many clips with a larger shift. ``PROBE_SPACE = "standardised"`` (default)
    steps in the probe's input space; ``"raw"`` uses the rows of the folded probe
    that acts on raw f (they over-weight rarely firing features). ``s`` is the mean norm of the feature
    vector on the probes' training frames, so α = 1 is a step as long as a typical frame's whole code.
    The target k is TARGET (absolute) or c + TARGET (relative, clipped to the valid classes; for
    pitch, frames the probe reads as unvoiced are left alone), with c the probe's prediction on the
    unedited features. Features stay non-negative, as the SAE's are.
    """
    ps = probe_set(ctx)
    probe = ps.probe(e.prop)
    w = np.asarray(probe.weight, np.float64)
    n_cls = w.shape[0]
    cur = probe.predict(f)
    last = n_cls - 2 if e.prop == "pitch" else n_cls - 1  # pitch never steers into "unvoiced"
    if e.relative:
        k = np.clip(cur + int(e.target), 0, last)
        ok = cur <= last if e.prop == "pitch" else np.ones(len(cur), bool)
    else:
        k = np.full(len(cur), int(e.target))
        ok = np.ones(len(cur), bool)
    ok &= (k != cur) | (PROBE_DIRECTION == "class")
    if PROBE_SPACE == "standardised":
        scale = np.asarray(probe.scale, np.float64)
        w = w * scale[None, :]  # the probe's rows as trained (on standardised features)
    dirs = w[k] - w[cur] if PROBE_DIRECTION == "contrast" else w[k]
    if PROBE_SPACE == "standardised":
        dirs = dirs * scale[None, :]  # a step in standardised units, in feature units
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs = np.divide(dirs, norms, out=np.zeros_like(dirs), where=norms > 0)
    weight = range_weights(e, f.shape[0], ctx.frame_rate, frame_offset) * ok
    step = (e.value * ps.feature_norm) * weight[:, None] * dirs
    f2 = np.maximum(f + step, 0.0)
    return (f2 - f).astype(np.float32)
