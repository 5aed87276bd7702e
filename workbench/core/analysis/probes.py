"""Linear softmax probes per acoustic property (Paek et al. 2025), their scores, attributions and files.

A probe is multinomial logistic regression from one frame's inputs to the class of one property
(`descriptors.PROPERTIES`: pitch 67 classes incl. unvoiced, loudness 20, timbre 20). Three inputs are
compared side by side on the same frames:

- ``sae``: the SAE's features f [d_sae] (what the workbench steers with);
- ``latents``: the raw codec latents z [D] (the ceiling a linear read-out of the codec allows);
- ``random_sae``: features of a random SAE of the same size (same architecture, d_sae and k, unit-norm
  random decoder rows, tied encoder, ``b_dec`` = the mean latent so features respond to deviations
  from the average frame): the floor that dictionary size alone gives.

Training: inputs are standardised with the training frames' mean and standard deviation (a feature's
std is floored at 1% of the median std of live features, so a feature that almost never fires cannot
get huge standardised values; features that never fire get weight 0). Full-batch L-BFGS (scipy's L-BFGS-B;
loss and exact gradient computed with torch matmuls, no autograd: torch.optim's first use imports
torch._dynamo, 10+ s) on the mean cross-entropy + ``weight_decay / 2 · ‖W‖²`` (bias not decayed), at most
`max_train_frames` frames drawn at random from the training clips. Scores on held-out clips (clips,
not frames, are split: `corpus.split_by_clip`): accuracy, balanced accuracy (mean recall over the
classes present in the test frames) and macro-F1 (over the classes present in truth or prediction).

Stored probes act on *raw* features: the standardisation is folded in, ``logits = f @ W.T + b`` with
``W = W_std / scale`` and ``b = b_std - W_std @ (mean / scale)``. Attribution of feature j to class k
(Paek et al.): ``W[k, j] · f_j`` averaged over the frames of class k (training clips), so a feature that
is silent contributes 0 and the top features of a class are those whose firing pushes toward it.

Files (SAE folder, DESIGN.md): ``probes.safetensors`` holds per property ``{prop}.weight`` [C, d_sae],
``{prop}.bias`` [C], ``{prop}.mean`` / ``{prop}.scale`` [d_sae] (the standardisation, for reference)
and ``{prop}.attribution`` [C, d_sae]; ``probes.json`` holds the scores of all three inputs, class names,
top features per class, settings, the corpus split, the binning and a SHA-256 of the safetensors file
(both files are written atomically; a pair that does not match is refused on load).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.analysis import descriptors as desc
from workbench.core.analysis.corpus import CorpusFrames, split_by_clip
from workbench.core.errors import DataError, ModelFileError, UsageError

PROBES_FILE = "probes.safetensors"
PROBES_JSON = "probes.json"
PROBES_FORMAT = "workbench-probes"
PROBES_VERSION = 1
INPUTS = ("sae", "latents", "random_sae")
TOP_FEATURES = 10
Log = Callable[[str], None]


@dataclass
class LinearProbe:
    """Softmax probe on raw inputs: logits = x @ weight.T + bias."""

    weight: np.ndarray  # [C, d] float32
    bias: np.ndarray  # [C]
    mean: np.ndarray  # [d] standardisation used in training (folded into weight/bias)
    scale: np.ndarray  # [d]

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise UsageError(f"probe expects inputs [T, {self.d_in}], got {tuple(x.shape)}")
        return (x @ self.weight.T + self.bias).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(axis=1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        lg = self.logits(x)
        lg = lg - lg.max(axis=1, keepdims=True)
        e = np.exp(lg)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per column, scale floored at 1% of the median std of non-constant columns."""
    x64 = np.asarray(x, np.float64)
    mean = x64.mean(axis=0)
    std = x64.std(axis=0)
    live = std[std > 1e-12]
    floor = 0.01 * float(np.median(live)) if live.size else 1.0
    scale = np.where(std > 1e-12, np.maximum(std, floor), 1.0)
    return mean.astype(np.float32), scale.astype(np.float32)


def train_probe(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    weight_decay: float = 1e-4,
    max_iter: int = 150,
) -> LinearProbe:
    """Fit a softmax probe (see the module docstring); x [N, d] raw inputs, y [N] ints in [0, C)."""
    import torch

    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise UsageError(f"probe data: x {tuple(x.shape)} and y {tuple(y.shape)} do not match")
    if x.shape[0] == 0:
        raise DataError("no frames to train a probe on")
    if y.min() < 0 or y.max() >= num_classes:
        raise UsageError(f"probe classes must lie in [0, {num_classes}), got {y.min()}..{y.max()}")
    mean, scale = standardisation(x)
    dead = np.asarray(x.std(axis=0) <= 1e-12)
    xs = torch.from_numpy((x - mean) / scale)
    xs[:, torch.from_numpy(dead)] = 0.0
    n, d = xs.shape
    rows, yt = torch.arange(n), torch.from_numpy(y)
    # Bias starts at the log class frequencies: the optimum without features.
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    b0 = np.log(np.maximum(counts, 0.5) / counts.sum())
    theta0 = np.concatenate([np.zeros(num_classes * d), b0])

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        # Mean cross-entropy + weight_decay/2 |W|^2 and its exact gradient (no autograd needed).
        w = torch.from_numpy(theta[: num_classes * d].reshape(num_classes, d).astype(np.float32))
        b = torch.from_numpy(theta[num_classes * d :].astype(np.float32))
        with torch.no_grad():
            lg = xs @ w.T + b  # float32 throughout; only the sums are accumulated in float64
            lse = torch.logsumexp(lg, dim=1)
            loss = float((lse - lg[rows, yt]).double().mean()) + 0.5 * weight_decay * float((w.double() ** 2).sum())
            g = torch.exp(lg - lse[:, None])  # softmax, then minus the one-hot target: d loss / d logits * n
            g[rows, yt] -= 1.0
            g /= n
            gw = (g.T @ xs).double() + weight_decay * w.double()
            gb = g.double().sum(dim=0)
        return loss, np.concatenate([gw.numpy().ravel(), gb.numpy()])

    from scipy.optimize import minimize

    res = minimize(loss_grad, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": int(max_iter), "maxcor": 20, "gtol": 1e-6, "ftol": 1e-10})
    w_std = res.x[: num_classes * d].reshape(num_classes, d)
    w_std[:, dead] = 0.0
    w_raw = w_std / scale[None, :]
    b_raw = res.x[num_classes * d :] - w_raw @ mean.astype(np.float64)
    return LinearProbe(w_raw.astype(np.float32), b_raw.astype(np.float32), mean, scale)


def probe_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """accuracy, balanced accuracy (mean recall over classes present in y_true), macro-F1 (over the
    classes present in y_true or y_pred), and the number of frames."""
    yt = np.asarray(y_true, np.int64)
    yp = np.asarray(y_pred, np.int64)
    if yt.size == 0:
        return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "macro_f1": float("nan"), "frames": 0}
    cm = np.bincount(yt * num_classes + yp, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    used = present | (predicted > 0)
    return {"accuracy": float(tp.sum() / yt.size), "balanced_accuracy": float(recall[present].mean()),
            "macro_f1": float(f1[used].mean()), "frames": int(yt.size)}


def attribution(probe: LinearProbe, x: np.ndarray, y: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """[C, d]: mean over the frames of class k of W[k, j] · x_j (0 for classes without frames)."""
    c, d = probe.weight.shape
    sums = np.zeros((c, d), np.float64)
    y = np.asarray(y, np.int64)
    for s in range(0, x.shape[0], chunk):
        xb = np.asarray(x[s : s + chunk], np.float64)
        yb = y[s : s + chunk]
        onehot = np.zeros((xb.shape[0], c))
        onehot[np.arange(xb.shape[0]), yb] = 1.0
        sums += onehot.T @ xb
    counts = np.bincount(y, minlength=c).astype(np.float64)
    means = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    return (probe.weight.astype(np.float64) * means).astype(np.float32)


def top_features(attr: np.ndarray, n: int = TOP_FEATURES) -> list[list[list[float]]]:
    """Per class, up to n [feature, attribution] pairs with positive attribution, largest first."""
    out = []
    for row in attr:
        idx = np.argsort(-row)[:n]
        out.append([[int(j), round(float(row[j]), 6)] for j in idx if row[j] > 0])
    return out


# -- the random baseline ------------------------------------------------------------------------------

def random_sae_like(sae: Any, latents: np.ndarray, seed: int = 0, features: np.ndarray | None = None) -> Any:
    """A random SAE of the same size as `sae` (see the module docstring); TopK k is the SAE's k, or
    for architectures without k (jumprelu, relu) the rounded mean L0 of `features` when given."""
    import torch

    from workbench.core.sae.model import SAE

    arch = getattr(sae, "architecture", "topk")
    k = getattr(sae, "k", None)
    if arch in ("batchtopk", "jumprelu") or (arch == "topk" and not k):
        arch = "topk"
        if not k:
            l0 = float((features > 0).sum(axis=1).mean()) if features is not None and features.size else 16.0
            k = int(np.clip(round(l0), 1, sae.d_sae))
    if arch not in ("topk", "relu", "relu-rmsnorm"):
        arch, k = "topk", k or 16
    rnd = SAE(sae.d_in, sae.d_sae, arch, k=k if arch == "topk" else None)
    rnd.init_weights(torch.Generator().manual_seed(int(seed)))
    with torch.no_grad():
        rnd.b_dec.copy_(torch.from_numpy(np.asarray(latents, np.float64).mean(axis=0).astype(np.float32)))
    return rnd.eval()


# -- the whole set ------------------------------------------------------------------------------------

@dataclass
class ProbeSet:
    """The SAE-feature probe of every property, plus what was measured alongside it."""

    probes: dict[str, LinearProbe]
    attributions: dict[str, np.ndarray] = field(default_factory=dict)  # prop -> [C, d_sae]
    metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # prop -> input -> scores
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_norm(self) -> float:
        """Mean L2 norm of the SAE feature vector over the training frames (the unit of probe steering)."""
        return float(self.meta.get("feature_norm", 1.0))

    def class_of(self, prop: str, f: np.ndarray) -> np.ndarray:
        return self.probe(prop).predict(f)

    def probe(self, prop: str) -> LinearProbe:
        if prop not in self.probes:
            raise UsageError(f"no probe for '{prop}'; probes exist for: {', '.join(self.probes) or 'nothing'}")
        return self.probes[prop]


MONOPHONIC_KINDS = ("note", "melody", "scale")
MONOPHONIC_SUBSET = "monophonic (" + "+".join(MONOPHONIC_KINDS) + ")"


def kind_subsets(frames: CorpusFrames, clips: Any) -> dict[str, np.ndarray]:
    """The held-out subsets worth a score of their own, from the clips' corpus labels (``kind``).

    ``{MONOPHONIC_SUBSET: mask}`` when some clips are single notes, melodies or scales (the synthetic
    corpus labels each clip's kind): Paek et al. scored pitch probes on single notes, where a frame's
    pitch is defined; on a chord or a texture CREPE reports one voice, not always the same one, so the
    all-frames pitch score mixes probe quality with the tracker's choice. Empty for clips without kinds.
    `clips` is the `corpus.ClipList` the frames were collected from (``frames.clip_ids`` index it)."""
    kinds = np.array([str((meta or {}).get("kind", "")) for _, meta in clips.entries] or [""])
    mono = np.isin(kinds, MONOPHONIC_KINDS)
    if not mono.any():
        return {}
    return {MONOPHONIC_SUBSET: mono[frames.clip_ids]}


def fit_probes(
    frames: CorpusFrames,
    sae: Any,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    weight_decay: float = 1e-4,
    max_iter: int = 150,
    max_train_frames: int = 100_000,
    baselines: bool = True,
    properties: tuple[str, ...] = tuple(desc.PROPERTIES),
    subsets: dict[str, np.ndarray] | None = None,
    log: Log | None = None,
    step: Callable[[str], None] | None = None,
) -> ProbeSet:
    """Train and score probes for every property on SAE features (and the two baselines).

    `frames` must hold SAE features (``collect_frames(..., keep_features=True)``) unless `sae` is given,
    in which case missing features are computed from the latents. `step(name)` is called after each
    probe (progress bars), `log(line)` for remarks. `subsets` (name -> boolean mask over the frames) also
    scores every probe on the held-out frames of each subset: ``metrics[prop][input]["subsets"][name]``.
    """
    for p in properties:
        if p not in desc.PROPERTIES:
            raise UsageError(f"unknown property '{p}'; known: {', '.join(desc.PROPERTIES)}")
    if len(frames) == 0:
        raise DataError("no frames to train probes on")
    feats = frames.features
    if feats.shape[1] == 0:
        if sae is None:
            raise UsageError("frames hold no SAE features and no SAE was given")
        feats = sae.encode_np(frames.latents)
    train, test = split_by_clip(frames, test_fraction, seed)
    rng = np.random.default_rng(seed)
    tr_idx = np.flatnonzero(train)
    if tr_idx.size > max_train_frames:
        tr_idx = np.sort(rng.choice(tr_idx, max_train_frames, replace=False))
    te_idx = np.flatnonzero(test)
    classes = frames.classes()
    inputs: dict[str, np.ndarray] = {"sae": feats}
    if baselines:
        inputs["latents"] = frames.latents
        rnd = random_sae_like(sae, frames.latents[tr_idx], seed=seed + 1, features=feats[tr_idx]) if sae is not None else None
        if rnd is not None:
            inputs["random_sae"] = rnd.encode_np(frames.latents)
    probes: dict[str, LinearProbe] = {}
    attrs: dict[str, np.ndarray] = {}
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    for prop in properties:
        y = classes[prop]
        nc = desc.PROPERTIES[prop]
        metrics[prop] = {}
        for name, x in inputs.items():
            t0 = time.perf_counter()
            probe = train_probe(x[tr_idx], y[tr_idx], nc, weight_decay=weight_decay, max_iter=max_iter)
            m: dict[str, Any] = dict(probe_metrics(y[te_idx], probe.predict(x[te_idx]), nc))
            m["train_accuracy"] = probe_metrics(y[tr_idx], probe.predict(x[tr_idx]), nc)["accuracy"]
            m["chance"] = float(np.bincount(y[te_idx], minlength=nc).max() / max(1, te_idx.size))
            m["seconds"] = round(time.perf_counter() - t0, 2)
            if subsets:
                m["subsets"] = {}
                for sname, mask in subsets.items():
                    sel = te_idx[np.asarray(mask, dtype=bool)[te_idx]]
                    m["subsets"][sname] = probe_metrics(y[sel], probe.predict(x[sel]), nc)
            metrics[prop][name] = m
            if name == "sae":
                probes[prop] = probe
                attrs[prop] = attribution(probe, x[tr_idx], y[tr_idx])
            if step is not None:
                step(f"{prop}/{name}")
    fnorm = float(np.linalg.norm(feats[tr_idx].astype(np.float64), axis=1).mean())
    tr_clips = np.unique(frames.clip_ids[train])
    te_clips = np.unique(frames.clip_ids[test])
    meta = {
        "feature_norm": fnorm,
        "settings": {"test_fraction": test_fraction, "seed": seed, "weight_decay": weight_decay, "max_iter": max_iter,
                     "max_train_frames": max_train_frames, "optimizer": "L-BFGS-B", "standardised": True},
        "corpus": {"clips": frames.num_clips, "frames": len(frames), "train_clips": int(tr_clips.size),
                   "test_clips": int(te_clips.size), "train_frames": int(tr_idx.size), "test_frames": int(te_idx.size),
                   "frame_rate": frames.frame_rate,
                   "test_clip_paths": [frames.clip_paths[i] for i in te_clips]},
        "binning": binning(),
    }
    return ProbeSet(probes, attrs, metrics, meta)


def binning() -> dict[str, Any]:
    return {"pitch": {"classes": desc.PROPERTIES["pitch"], "midi_min": desc.PITCH_MIDI_MIN,
                      "midi_max": desc.PITCH_MIDI_MAX, "unvoiced_class": desc.PITCH_UNVOICED,
                      "voiced_threshold": desc.VOICED_THRESHOLD, "silence_db": desc.SILENCE_DB},
            "loudness": {"classes": desc.NUM_LOUDNESS, "rms_db_range": list(desc.LOUDNESS_DB_RANGE), "scale": "dB"},
            "timbre": {"classes": desc.NUM_TIMBRE, "centroid_hz_range": list(desc.CENTROID_HZ_RANGE),
                       "scale": "log2 Hz"}}


# -- files --------------------------------------------------------------------------------------------

def save_probes(ps: ProbeSet, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write probes.safetensors then probes.json into the SAE folder, each atomically."""
    import torch
    from safetensors.torch import save

    from workbench.core.fileio import atomic_write_bytes, atomic_write_json
    from workbench.core.sae.io import _jsonable

    d = Path(folder)
    if not d.is_dir():
        raise ModelFileError(f"{d}: no such SAE folder")
    tensors: dict[str, torch.Tensor] = {}
    for prop, p in ps.probes.items():
        tensors[f"{prop}.weight"] = torch.from_numpy(np.ascontiguousarray(p.weight, np.float32))
        tensors[f"{prop}.bias"] = torch.from_numpy(np.ascontiguousarray(p.bias, np.float32))
        tensors[f"{prop}.mean"] = torch.from_numpy(np.ascontiguousarray(p.mean, np.float32))
        tensors[f"{prop}.scale"] = torch.from_numpy(np.ascontiguousarray(p.scale, np.float32))
        if prop in ps.attributions:
            tensors[f"{prop}.attribution"] = torch.from_numpy(np.ascontiguousarray(ps.attributions[prop], np.float32))
    data = save(tensors)
    props: dict[str, Any] = {}
    for prop, p in ps.probes.items():
        props[prop] = {
            "num_classes": p.num_classes,
            "class_names": desc.class_names(prop),
            "metrics": ps.metrics.get(prop, {}),
            "top_features": top_features(ps.attributions[prop]) if prop in ps.attributions else [],
        }
    doc = {"format": PROBES_FORMAT, "version": PROBES_VERSION, "d_sae": next(iter(ps.probes.values())).d_in
           if ps.probes else 0, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "safetensors_sha256": hashlib.sha256(data).hexdigest(), "properties": props, **ps.meta, **(extra or {})}
    try:
        atomic_write_bytes(d / PROBES_FILE, data)
        atomic_write_json(d / PROBES_JSON, _jsonable(doc))
    except OSError as exc:
        raise ModelFileError(f"{d}: cannot write probes ({exc.strerror or exc})") from None
    return d


def has_probes(folder: str | Path | None) -> bool:
    return folder is not None and (Path(folder) / PROBES_FILE).is_file() and (Path(folder) / PROBES_JSON).is_file()


def load_probes(folder: str | Path, d_sae: int | None = None) -> ProbeSet:
    """Probes of an SAE folder; one-line `ModelFileError` when missing, damaged or not matching."""
    from safetensors.torch import load

    d = Path(folder)
    if not has_probes(d):
        raise ModelFileError(f"{d}: this SAE has no probes; run `workbench probe AUDIO_OR_DIR... --sae {d}` first")
    try:
        raw = (d / PROBES_FILE).read_bytes()
        doc = json.loads((d / PROBES_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{d}: cannot read probes ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != PROBES_FORMAT:
        raise ModelFileError(f"{d / PROBES_JSON}: not a workbench probes file")
    if doc.get("safetensors_sha256") != hashlib.sha256(raw).hexdigest():
        raise ModelFileError(f"{d}: {PROBES_FILE} does not match {PROBES_JSON}; run `workbench probe` again")
    try:
        t = {k: v.float().numpy() for k, v in load(raw).items()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds
        raise ModelFileError(f"{d / PROBES_FILE}: not a valid safetensors file ({exc})") from None
    probes: dict[str, LinearProbe] = {}
    attrs: dict[str, np.ndarray] = {}
    for prop in doc.get("properties") or {}:
        try:
            p = LinearProbe(t[f"{prop}.weight"], t[f"{prop}.bias"], t[f"{prop}.mean"], t[f"{prop}.scale"])
        except KeyError as exc:
            raise ModelFileError(f"{d / PROBES_FILE}: tensor {exc} is missing") from None
        nc = desc.PROPERTIES.get(prop)
        if p.weight.ndim != 2 or p.bias.shape != (p.num_classes,) or (nc is not None and p.num_classes != nc):
            raise ModelFileError(f"{d / PROBES_FILE}: probe '{prop}' has an unexpected shape")
        if d_sae is not None and p.d_in != d_sae:
            raise ModelFileError(f"{d}: probes expect {p.d_in} features but the SAE has {d_sae}; run `workbench probe` again")
        if not all(np.isfinite(a).all() for a in (p.weight, p.bias)):
            raise ModelFileError(f"{d / PROBES_FILE}: probe '{prop}' holds NaN or infinite values")
        probes[prop] = p
        if f"{prop}.attribution" in t:
            attrs[prop] = t[f"{prop}.attribution"]
    metrics = {prop: info.get("metrics", {}) for prop, info in (doc.get("properties") or {}).items()}
    meta = {k: v for k, v in doc.items() if k not in ("properties",)}
    return ProbeSet(probes, attrs, metrics, meta)


# -- reporting ----------------------------------------------------------------------------------------

INPUT_NAMES = {"sae": "SAE features", "latents": "raw latents", "random_sae": "random SAE"}


def format_table(ps: ProbeSet) -> str:
    """Plain-text table: one row per property, accuracy / balanced accuracy / macro-F1 per input."""
    names = [n for n in INPUTS if any(n in m for m in ps.metrics.values())]
    head = f"{'property':<10}{'classes':>8}  " + "  ".join(f"{INPUT_NAMES[n]:>22}" for n in names) + f"  {'chance':>7}"
    sub = " " * 18 + "  ".join(f"{'acc  bal  F1':>22}" for _ in names)
    lines = [head, sub]
    for prop, m in ps.metrics.items():
        cells = []
        for n in names:
            s = m.get(n)
            cells.append(f"{s['accuracy']:.3f} {s['balanced_accuracy']:.3f} {s['macro_f1']:.3f}".rjust(22)
                         if s else f"{'-':>22}")
        chance = next((s.get("chance") for s in m.values() if s), None)
        lines.append(f"{prop:<10}{desc.PROPERTIES.get(prop, 0):>8}  " + "  ".join(cells)
                     + (f"  {chance:>7.3f}" if chance is not None else ""))
        for sub, sm in _subset_metrics(m).items():
            lines.append(f"  {sub} ({next(iter(sm.values()))['frames']} frames)")
            lines.append(" " * 18 + "  ".join(
                f"{sm[n]['accuracy']:.3f} {sm[n]['balanced_accuracy']:.3f} {sm[n]['macro_f1']:.3f}".rjust(22)
                if n in sm else f"{'-':>22}" for n in names))
    return "\n".join(lines)


def _subset_metrics(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{subset: {input: scores}}`` from one property's metrics (``fit_probes(subsets=...)``)."""
    out: dict[str, dict[str, Any]] = {}
    for n in INPUTS:
        for sub, sm in (m.get(n) or {}).get("subsets", {}).items():
            out.setdefault(sub, {})[n] = sm
    return out


def markdown_table(ps: ProbeSet) -> str:
    names = [n for n in INPUTS if any(n in m for m in ps.metrics.values())]
    out = ["| property | classes | " + " | ".join(f"{INPUT_NAMES[n]} acc / bal. acc / macro-F1" for n in names)
           + " | majority class |", "|---|---:|" + "---|" * len(names) + "---:|"]
    for prop, m in ps.metrics.items():
        cells = [f"{m[n]['accuracy']:.3f} / {m[n]['balanced_accuracy']:.3f} / {m[n]['macro_f1']:.3f}" if n in m else "-"
                 for n in names]
        chance = next((s.get("chance") for s in m.values() if s), float("nan"))
        out.append(f"| {prop} | {desc.PROPERTIES.get(prop, 0)} | " + " | ".join(cells) + f" | {chance:.3f} |")
        for sub, sm in _subset_metrics(m).items():
            cells = [f"{sm[n]['accuracy']:.3f} / {sm[n]['balanced_accuracy']:.3f} / {sm[n]['macro_f1']:.3f}"
                     if n in sm else "-" for n in names]
            out.append(f"| {prop}, {sub} | {desc.PROPERTIES.get(prop, 0)} | " + " | ".join(cells) + " | |")
    return "\n".join(out)
