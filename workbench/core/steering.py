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
        try:
            return cls(int(d["feature"]), str(d["mode"]), float(d["value"]),
                       None if d.get("t0") is None else float(d["t0"]),
                       None if d.get("t1") is None else float(d["t1"]), float(d.get("fade", 0.04)))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"invalid edit {d!r}: {exc}") from None


_SPEC = re.compile(
    r"^\s*(?P<feat>\d+)\s*:\s*(?P<mode>[a-z]+)\s*=\s*(?P<val>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)"
    r"\s*(?P<range>@\s*(?P<t0>\d+(\.\d*)?|\.\d+)?\s*-\s*(?P<t1>\d+(\.\d*)?|\.\d+)?)?\s*$"
)


def parse_edit(spec: str) -> Edit:
    """``FEATURE:scale=V``, ``FEATURE:add=V``, ``FEATURE:set=V``, optionally ``@T0-T1`` (seconds)."""
    if not isinstance(spec, str) or len(spec) > 200:
        raise UsageError("edit spec must be a short string like 12:scale=0 or 7:add=0.5@1.0-2.5")
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

    @classmethod
    def from_sae(cls, sae: Any, frame_rate: float) -> SteeringContext:
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
        return cls(sae, w.astype(np.float32), mx, float(frame_rate), prenorm)


def range_weights(edit: Edit, num_frames: int, frame_rate: float) -> np.ndarray:
    """Per-frame weight in [0, 1]: 1 inside the edit's range, linear fades just outside it."""
    if edit.t0 is None and edit.t1 is None:
        return np.ones(num_frames, np.float32)
    t = (np.arange(num_frames) + 0.5) / frame_rate
    t0 = 0.0 if edit.t0 is None else edit.t0
    t1 = np.inf if edit.t1 is None else edit.t1
    fade = max(edit.fade, 1e-6)
    w = np.ones(num_frames, np.float64)
    if edit.t0 is not None:
        w = np.minimum(w, np.clip((t - (t0 - fade)) / fade, 0.0, 1.0))
    if edit.t1 is not None:
        w = np.minimum(w, np.clip(((t1 + fade) - t) / fade, 0.0, 1.0))
    return w.astype(np.float32)


def edited_features(f: np.ndarray, edits: Sequence[Edit], ctx: SteeringContext) -> np.ndarray:
    """f' from f: each edit moves its feature toward its target, weighted over time."""
    out = f.copy()
    n = f.shape[0]
    for e in edits:
        if e.feature >= f.shape[1]:
            raise UsageError(f"feature {e.feature} does not exist (this SAE has {f.shape[1]} features)")
        cur = out[:, e.feature]
        if e.mode == "scale":
            target = cur * e.value
        elif e.mode == "add":
            target = cur + e.value * ctx.max_activation[e.feature]
        else:
            target = np.full_like(cur, e.value * ctx.max_activation[e.feature])
        w = range_weights(e, n, ctx.frame_rate)
        out[:, e.feature] = cur + w * (target - cur)
    return out


def apply_edits(z: np.ndarray, edits: Sequence[Edit], ctx: SteeringContext, features: np.ndarray | None = None) -> np.ndarray:
    """z' = z + (f' - f) @ W_dec; exactly z when there is nothing to change."""
    z = np.asarray(z, np.float32)
    if not edits:
        return z.copy()
    if ctx.prenorm:
        # relu-rmsnorm: edits act on the pre-norm code (what the L1 penalised), and the norm is applied
        # again before decoding, so an edited code stays in the distribution the decoder saw.
        u = ctx.sae.encode_prenorm_np(z)
        u2 = edited_features(u, edits, ctx)
        delta = ctx.sae.decode_prenorm_np(u2) - ctx.sae.decode_prenorm_np(u)
        return (z + delta).astype(np.float32)
    f = ctx.sae.encode_np(z) if features is None else features
    f2 = edited_features(f, edits, ctx)
    d = f2 - f
    cols = np.flatnonzero(np.abs(d).max(axis=0) > 0)
    if cols.size == 0:
        return z.copy()
    return (z + d[:, cols] @ ctx.w_dec[cols]).astype(np.float32)
