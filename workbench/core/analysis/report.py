"""Static HTML feature report (`workbench report`): works from disk in any browser, no server, no scripts
fetched from anywhere.

Layout of the report folder (written aside, then renamed into place: `fileio.atomic_folder`)::

    index.html              SAE and corpus facts, label summary (+ random control), probe tables,
                            the reference sound, a sortable table of every feature
    style.css
    report.json             the numbers behind the pages (per-feature statistics, moments, labels)
    sounds/reference.wav    the mean latent decoded (what each feature's own sound adds a direction to)
    features/0012.html      one page per feature with a page (see `max_features`)
    features/0012/          its audio and pictures: top1.wav/.png ..., q50.wav/.png ..., sound.wav

Audio is 16-bit WAV at the codec's rate (``audio_format="flac"`` halves the size; every current browser
plays both). Size: about 0.5 MB of WAV per feature page with the defaults (6 top moments + 3 quantile
samples of 0.8 s + 1 s of the feature's own sound at 24 kHz), so ~120 MB for 256 pages.

A feature page: density, maximum and mean activation, an activation histogram (inline SVG), the
feature's own sound (`stats.feature_sound`), its labels with held-out AUROC (labels.json), where it
appears among the probes' top features (probes.json, read generically), and the top activating moments
and quantile samples, each with a spectrogram thumbnail (the moment marked) and an ``<audio>`` player of
the original audio around the moment.
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.analysis.stats import (
    FeatureStats,
    Moment,
    feature_sound,
    mean_latent,
    reference_sound,
    snippet,
    spectrogram_png,
    wav_bytes,
)
from workbench.core.errors import UsageError

Progress = Callable[[int, int, str], None]
DEFAULT_MAX_FEATURES = 256

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .55em; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th.asc::after { content: " \\25B2"; } table.sortable th.desc::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.dead { color: #999; } .unexplained { color: #a60; } .good { color: #070; font-weight: 600; }
.facts td:first-child { color: #555; } .note { color: #555; font-size: .9em; max-width: 60em; }
audio { height: 2em; vertical-align: middle; } img.spec { display: block; image-rendering: pixelated; }
nav a { margin-right: 1em; } svg text { font-size: 10px; fill: #444; }
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = !th.classList.contains('asc');
      t.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var nx = parseFloat(x), ny = parseFloat(y), r;
        if (!isNaN(nx) && !isNaN(ny)) r = nx - ny;
        else if (isNaN(nx) && !isNaN(ny)) r = 1; else if (!isNaN(nx) && isNaN(ny)) r = -1;
        else r = String(x).localeCompare(String(y));
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if not math.isfinite(f):
            return "–"
        if f != 0 and (abs(f) < 10 ** -digits or abs(f) >= 1e6):
            return f"{f:.{digits}g}"
        return f"{f:.{digits}f}"
    return str(v)


def _page(title: str, body: str, css: str, script: bool = False) -> str:
    js = f"<script>{SORT_JS}</script>" if script else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<link rel=\"stylesheet\" href=\"{css}\"></head><body>\n{body}\n{js}</body></html>\n")


def histogram_svg(counts: np.ndarray, edges: np.ndarray, width: int = 420, height: int = 130) -> str:
    """Bars of the non-zero activations (log count axis) as inline SVG."""
    c = np.asarray(counts, np.float64)
    if c.size == 0 or c.sum() == 0:
        return "<p class=\"note\">never fires on these clips</p>"
    left, bottom, top = 34, 18, 6
    pw, ph = width - left - 6, height - bottom - top
    hmax = math.log10(c.max() + 1)
    bw = pw / c.size
    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
             f"role=\"img\" aria-label=\"activation histogram\">",
             f"<line x1=\"{left}\" y1=\"{top + ph}\" x2=\"{left + pw}\" y2=\"{top + ph}\" stroke=\"#888\"/>"]
    for i, v in enumerate(c):
        if v <= 0:
            continue
        h = ph * math.log10(v + 1) / hmax
        parts.append(f"<rect x=\"{left + i * bw + 0.5:.1f}\" y=\"{top + ph - h:.1f}\" width=\"{max(bw - 1, 0.5):.1f}\" "
                     f"height=\"{h:.1f}\" fill=\"#5a6fc0\"><title>{_fmt(float(edges[i]))}–{_fmt(float(edges[i + 1]))}: "
                     f"{int(v)} frames</title></rect>")
    parts.append(f"<text x=\"{left}\" y=\"{height - 4}\">0</text>")
    parts.append(f"<text x=\"{left + pw}\" y=\"{height - 4}\" text-anchor=\"end\">{_fmt(float(edges[-1]))}</text>")
    parts.append(f"<text x=\"{left - 4}\" y=\"{top + 8}\" text-anchor=\"end\">{int(c.max())}</text>")
    parts.append(f"<text x=\"{left - 4}\" y=\"{top + ph}\" text-anchor=\"end\">0</text>")
    parts.append(f"<text x=\"{left + pw / 2}\" y=\"{height - 4}\" text-anchor=\"middle\">activation "
                 f"(bar height: frames, log scale)</text></svg>")
    return "".join(parts)


# -- generic JSON → HTML (probes.json is written by another module; render what is there) --------------

def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _table_of(obj: dict[str, Any]) -> str | None:
    """A dict of dicts of scalars as one table (rows = outer keys), or None if it is not that shape."""
    if not obj or not all(isinstance(v, dict) and v for v in obj.values()):
        return None
    cols: list[str] = []
    for v in obj.values():
        for k, x in v.items():
            if not _is_scalar(x):
                return None
            if k not in cols:
                cols.append(k)
    head = "".join(f"<th>{_e(c)}</th>" for c in ["", *cols])
    rows = "".join("<tr><td>" + _e(r) + "</td>" + "".join(
        f"<td class=\"num\">{_e(_fmt(v.get(c)))}</td>" for c in cols) + "</tr>" for r, v in obj.items())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def render_generic(obj: Any, depth: int = 0, max_items: int = 40) -> str:
    """Any JSON value as nested tables; long lists are cut (their length is said)."""
    if _is_scalar(obj):
        return _e(_fmt(obj))
    if isinstance(obj, list):
        if all(_is_scalar(v) for v in obj):
            shown = ", ".join(_e(_fmt(v)) for v in obj[:max_items])
            return shown + (f" … ({len(obj)} values)" if len(obj) > max_items else "")
        return f"<span class=\"note\">list of {len(obj)} entries</span>"
    if isinstance(obj, dict):
        t = _table_of(obj)
        if t is not None:
            return t
        if depth > 3:
            return f"<span class=\"note\">{len(obj)} fields</span>"
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{render_generic(v, depth + 1, max_items)}</td></tr>"
                       for k, v in list(obj.items())[:max_items])
        return f"<table class=\"facts\"><tbody>{rows}</tbody></table>"
    return _e(str(obj))


def probe_section(probes: dict[str, Any]) -> str:
    """Probe scores per property (inputs side by side) when probes.json has that shape, else generic."""
    props = probes.get("properties")
    out = ["<h2>Probes</h2>"]
    if isinstance(props, dict) and props:
        from workbench.core.analysis.explore import probe_metrics_rows
        from workbench.core.analysis.probes import INPUT_NAMES

        rows = probe_metrics_rows(probes)
        for name, p in props.items():
            metrics = p.get("metrics") if isinstance(p, dict) else None
            out.append(f"<h3>{_e(name)}</h3>")
            mine = [r for r in rows if r["property"] == name]
            if mine:
                # one table per property: the inputs side by side, then each held-out subset's scores
                cols = ("accuracy", "balanced_accuracy", "macro_f1", "frames")
                body = []
                for r in mine:
                    where = f"{r['subset']}: " if r["subset"] else ""
                    body.append(f"<tr><td>{_e(where + INPUT_NAMES.get(r['input'], r['input']))}</td>" + "".join(
                        f"<td class=\"num\">{_e(_fmt(r[c]))}</td>" for c in cols) + "</tr>")
                out.append("<table><thead><tr><th>input</th>" + "".join(f"<th>{c.replace('_', ' ')}</th>" for c in cols)
                           + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
            elif isinstance(metrics, dict) and metrics:
                out.append(render_generic(metrics))
            else:
                out.append(render_generic({k: v for k, v in p.items() if k != "top_features"}) if isinstance(p, dict)
                           else render_generic(p))
        rest = {k: v for k, v in probes.items() if k not in ("properties",) and _is_scalar(v)}
        if rest:
            out.append("<details><summary>details</summary>" + render_generic(rest) + "</details>")
    else:
        out.append(render_generic(probes))
    return "\n".join(out)


def probe_mentions(probes: dict[str, Any] | None, feature: int) -> list[tuple[str, str, int, Any]]:
    """(property, class name, rank, value) wherever `feature` is among a probe class's top features
    (probes.json ``properties.<p>.top_features[class] = [[feature, value], ...]``)."""
    out: list[tuple[str, str, int, Any]] = []
    props = (probes or {}).get("properties")
    if not isinstance(props, dict):
        return out
    for name, p in props.items():
        if not isinstance(p, dict) or not isinstance(p.get("top_features"), list):
            continue
        cn = p.get("class_names")
        cnames: list[Any] = cn if isinstance(cn, list) else []
        for k, tops in enumerate(p["top_features"]):
            if not isinstance(tops, list):
                continue
            for rank, item in enumerate(tops):
                fid = item[0] if isinstance(item, list | tuple) and item else item
                try:
                    hit = int(fid) == feature
                except (TypeError, ValueError):
                    hit = False
                if hit:
                    val = item[1] if isinstance(item, list | tuple) and len(item) > 1 else None
                    out.append((str(name), str(cnames[k]) if k < len(cnames) else f"class {k}", rank + 1, val))
    return out


# -- the report ---------------------------------------------------------------------------------------

def select_features(stats: Sequence[FeatureStats], labels: dict[str, Any] | None, max_features: int) -> list[int]:
    """Features that get a page: live ones, labelled (by held-out score) first, then by firing count."""
    feats = (labels or {}).get("features") or {}

    def key(s: FeatureStats) -> tuple[float, int, int]:
        sc = (feats.get(str(s.feature)) or {}).get("score")
        return (-(float(sc) if isinstance(sc, int | float) else 0.0), -s.fires, s.feature)

    live = [s for s in stats if s.live]
    return sorted(s.feature for s in sorted(live, key=key)[: max(0, int(max_features))])


def _label_cell(entry: dict[str, Any] | None) -> tuple[str, str]:
    if not entry:
        return "", ""
    lab = str(entry.get("label", ""))
    cls = "dead" if lab == "dead" else ("unexplained" if lab == "unexplained" else "")
    sc = entry.get("score")
    if isinstance(sc, int | float) and sc >= 0.8 and not cls:
        cls = "good"
    return lab, cls


def _summary_block(summary: dict[str, Any], method: dict[str, Any]) -> str:
    def row(name: str, s: dict[str, Any]) -> str:
        return (f"<tr><td>{_e(name)}</td><td class=\"num\">{_fmt(s.get('live'))}</td>"
                f"<td class=\"num\">{_fmt(s.get('labelled'))} ({_fmt(100 * (s.get('share_labelled') or 0), 1)}%)</td>"
                f"<td class=\"num\">{_fmt(s.get('explained'))} ({_fmt(100 * (s.get('share_explained') or 0), 1)}%)</td>"
                f"<td class=\"num\">{_fmt(s.get('median_best_auroc'))}</td><td class=\"num\">"
                f"{_fmt(s.get('mean_best_auroc'))}</td><td class=\"num\">{_fmt(s.get('median_precision'))}</td>"
                f"<td class=\"num\">{_fmt(s.get('median_lift'), 2)}</td></tr>")

    good = method.get("good_label", 0.8)
    low = method.get("unexplained_below", 0.75)
    rows = row("SAE features", summary)
    if isinstance(summary.get("random_control"), dict):
        rows += row("random directions (control)", summary["random_control"])
    groups = summary.get("by_group") or {}
    g = ", ".join(f"{_e(k)}: {int(v)}" for k, v in groups.items()) if groups else "–"
    return (f"<table><thead><tr><th></th><th>live</th><th>label AUROC ≥ {_fmt(good, 2)}</th>"
            f"<th>AUROC ≥ {_fmt(low, 2)}</th><th>median best AUROC</th><th>mean best AUROC</th>"
            f"<th>median precision</th><th>median lift</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><p class=\"note\">Scores are held-out AUROC: a feature's best concept "
            f"is chosen on the train clips and scored on disjoint clips. Below {_fmt(low, 2)} a feature is "
            f"'unexplained'. Precision: share of the held-out frames where a feature fires that have its best "
            f"concept; lift: precision over the concept's base rate. Labels ≥ {_fmt(good, 2)} by concept group: "
            f"{g}.</p>")


def _moment_rows(items: list[tuple[str, Moment]], fid: int, folder: Path, clip_names: Sequence[str],
                 audio_of: Callable[[int], np.ndarray] | None, sample_rate: int, before: float,
                 after: float, fmt: str = "wav") -> str:
    rows = []
    for tag, m in items:
        name = clip_names[m.clip] if 0 <= m.clip < len(clip_names) else f"clip {m.clip}"
        media = "<td></td><td class=\"note\">audio not available</td>"
        if audio_of is not None:
            try:
                a = audio_of(m.clip)
            except Exception:  # noqa: BLE001 - a moved or unreadable clip leaves only that cell empty
                a = None
            if a is not None and np.asarray(a).size:
                snip, off = snippet(a, sample_rate, m.time, before, after)
                (folder / f"{tag}.{fmt}").write_bytes(wav_bytes(snip, sample_rate, fmt))
                (folder / f"{tag}.png").write_bytes(spectrogram_png(snip, sample_rate, mark=off))
                rel = f"{fid:04d}/{tag}"
                media = (f"<td><img class=\"spec\" src=\"{rel}.png\" width=\"160\" height=\"64\" "
                         f"alt=\"spectrogram, moment at {off:.2f} s\"></td>"
                         f"<td><audio controls preload=\"none\" src=\"{rel}.{fmt}\"></audio></td>")
        rows.append(f"<tr><td>{_e(tag)}</td><td title=\"{_e(name)}\">{_e(os.path.basename(str(name)))}</td>"
                    f"<td class=\"num\">{m.time:.2f} s</td><td class=\"num\">{_fmt(m.activation)}</td>{media}</tr>")
    head = ("<tr><th></th><th>clip</th><th>time</th><th>activation</th><th>spectrogram</th>"
            "<th>listen</th></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def write_report(
    out: str | os.PathLike[str],
    *,
    stats: Sequence[FeatureStats],
    clip_names: Sequence[str],
    sample_rate: int,
    frame_rate: float,
    audio_of: Callable[[int], np.ndarray] | None = None,
    codec: Any = None,
    latents: np.ndarray | None = None,
    w_dec: np.ndarray | None = None,
    strength: np.ndarray | None = None,
    labels: dict[str, Any] | None = None,
    probes: dict[str, Any] | None = None,
    sae_facts: dict[str, Any] | None = None,
    corpus_facts: dict[str, Any] | None = None,
    max_features: int = DEFAULT_MAX_FEATURES,
    before: float = 0.3,
    after: float = 0.5,
    sound_seconds: float = 1.0,
    title: str = "SAE feature report",
    audio_format: str = "wav",
    progress: Progress | None = None,
) -> Path:
    """Write the report folder (module docstring). `stats` covers every feature (index table); pages are
    made for `select_features`. The feature's own sound needs `codec`, `latents` (for the mean latent),
    `w_dec` [d_sae, D] and `strength` [d_sae] (activation to add, e.g. the max activation)."""
    from workbench.core.fileio import atomic_folder

    if max_features < 0:
        raise UsageError(f"max features must be >= 0, got {max_features}")
    if audio_format not in ("wav", "flac"):
        raise UsageError(f"audio format must be wav or flac, got '{audio_format}'")
    fmt = audio_format
    if not stats:
        raise UsageError("no feature statistics to report")
    sound_ok = codec is not None and latents is not None and w_dec is not None and len(latents) > 0
    mz = mean_latent(latents) if sound_ok and latents is not None else None
    lab_feats: dict[str, Any] = (labels or {}).get("features") or {}
    pages = select_features(stats, labels, max_features)
    page_set = set(pages)
    by_id = {s.feature: s for s in stats}
    out = Path(out)
    with atomic_folder(out) as tmp:
        (tmp / "style.css").write_text(CSS, encoding="utf-8")
        (tmp / "features").mkdir()
        (tmp / "sounds").mkdir()
        has_ref = False
        if sound_ok and mz is not None:
            (tmp / "sounds" / f"reference.{fmt}").write_bytes(
                wav_bytes(reference_sound(codec, mz, sound_seconds), codec.sample_rate, fmt))
            has_ref = True
        # Feature pages.
        for n_done, fid in enumerate(pages):
            s = by_id[fid]
            folder = tmp / "features" / f"{fid:04d}"
            folder.mkdir()
            i = n_done
            nav = ["<nav><a href=\"../index.html\">index</a>"]
            if i > 0:
                nav.append(f"<a href=\"{pages[i - 1]:04d}.html\">← feature {pages[i - 1]}</a>")
            if i + 1 < len(pages):
                nav.append(f"<a href=\"{pages[i + 1]:04d}.html\">feature {pages[i + 1]} →</a>")
            nav.append("</nav>")
            entry = lab_feats.get(str(fid))
            lab, cls = _label_cell(entry)
            sc = entry.get("score") if entry else None
            head = f"Feature {fid}" + (f" — <span class=\"{cls}\">{_e(lab)}</span>" if lab else "")
            if isinstance(sc, int | float):
                head += f" <small>(held-out AUROC {_fmt(sc)})</small>"
            body = ["".join(nav), f"<h1>{head}</h1>"]
            facts = {"fires on": f"{s.fires} of {s.frames} frames", "density": _fmt(s.density, 4),
                     "max activation": _fmt(s.max_activation), "mean activation when firing": _fmt(s.mean_activation)}
            if strength is not None and fid < len(strength):
                facts["max activation (training data)"] = _fmt(float(strength[fid]))
            body.append("<table class=\"facts\"><tbody>" + "".join(
                f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in facts.items()) + "</tbody></table>")
            body.append("<h2>Activation histogram</h2>" + histogram_svg(s.hist_counts, s.hist_edges))
            if sound_ok and mz is not None and w_dec is not None:
                a = float(strength[fid]) if strength is not None and fid < len(strength) else s.max_activation
                a = a if a > 0 else s.max_activation
                y = feature_sound(codec, mz, w_dec[fid], a, sound_seconds)
                (folder / f"sound.{fmt}").write_bytes(wav_bytes(y, codec.sample_rate, fmt))
                ref = (f" Compare with <audio controls preload=\"none\" src=\"../sounds/reference.{fmt}\"></audio> "
                       "(the mean latent alone).") if has_ref else ""
                body.append(f"<h2>The feature's own sound</h2><p><audio controls preload=\"none\" "
                            f"src=\"{fid:04d}/sound.{fmt}\"></audio></p><p class=\"note\">The mean latent plus "
                            f"{_fmt(a)} × this feature's decoder direction, held for {sound_seconds:g} s and "
                            f"decoded by the codec.{ref}</p>")
            if entry and entry.get("top"):
                rows = "".join(
                    f"<tr><td>{_e(t.get('concept'))}</td><td>{_e(t.get('group', ''))}</td>"
                    f"<td class=\"num\">{_fmt(t.get('score'))}</td><td class=\"num\">{_fmt(t.get('train_score'))}</td></tr>"
                    for t in entry["top"])
                pr = ""
                if entry.get("precision") is not None:
                    pr = (f"<p class=\"note\">On held-out clips, {_fmt(100 * entry['precision'], 1)}% of the frames "
                          f"where it fires have '{_e(entry.get('concept'))}' "
                          f"({_fmt(100 * (entry.get('top_precision') or 0), 1)}% of its strongest 10%; base rate "
                          f"{_fmt(100 * (entry.get('base_rate') or 0), 1)}%), and it fires on "
                          f"{_fmt(100 * (entry.get('recall') or 0), 1)}% of the frames that have it.</p>")
                body.append("<h2>Labels</h2><table><thead><tr><th>concept</th><th>group</th><th>held-out AUROC</th>"
                            f"<th>train AUROC</th></tr></thead><tbody>{rows}</tbody></table>{pr}")
            mentions = probe_mentions(probes, fid)
            if mentions:
                rows = "".join(f"<tr><td>{_e(p)}</td><td>{_e(c)}</td><td class=\"num\">{r}</td>"
                               f"<td class=\"num\">{_e(_fmt(v))}</td></tr>" for p, c, r, v in mentions)
                body.append("<h2>In the probes</h2><table><thead><tr><th>property</th><th>class</th><th>rank</th>"
                            f"<th>attribution</th></tr></thead><tbody>{rows}</tbody></table>")
            if s.top:
                body.append("<h2>Top activating moments</h2>" + _moment_rows(
                    [(f"top{k + 1}", m) for k, m in enumerate(s.top)], fid, folder, clip_names, audio_of,
                    sample_rate, before, after, fmt))
            if s.quantiles:
                body.append("<h2>Quantile samples</h2><p class=\"note\">Moments at activation quantiles of the "
                            "frames where the feature fires: how it sounds at typical strength.</p>" + _moment_rows(
                                [(f"q{int(round(100 * q)):02d}", m) for q, m in s.quantiles], fid, folder, clip_names,
                                audio_of, sample_rate, before, after, fmt))
            (tmp / "features" / f"{fid:04d}.html").write_text(
                _page(f"Feature {fid} — {title}", "\n".join(body), "../style.css"), encoding="utf-8")
            if progress is not None:
                progress(n_done + 1, len(pages), f"feature {fid}")

        # Index.
        body = [f"<h1>{_e(title)}</h1>"]
        facts = {**(sae_facts or {}), **(corpus_facts or {}),
                 "feature pages": f"{len(pages)} of {len(stats)} features",
                 "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        body.append("<table class=\"facts\"><tbody>" + "".join(
            f"<tr><td>{_e(k)}</td><td>{_e(_fmt(v))}</td></tr>" for k, v in facts.items()) + "</tbody></table>")
        if labels and isinstance(labels.get("summary"), dict):
            body.append("<h2>Automatic labels</h2>" + _summary_block(labels["summary"], labels.get("method") or {}))
        else:
            body.append("<h2>Automatic labels</h2><p class=\"note\">No labels.json in the SAE folder: run "
                        "<code>workbench label AUDIO_OR_DIR... --sae DIR</code> first.</p>")
        if probes:
            body.append(probe_section(probes))
        if has_ref:
            body.append("<h2>Reference</h2><p>The mean latent decoded: <audio controls preload=\"none\" "
                        f"src=\"sounds/reference.{fmt}\"></audio></p>")
        index_rows: list[str] = []
        for s in stats:
            entry = lab_feats.get(str(s.feature))
            lab, cls = _label_cell(entry)
            if not s.live:
                lab, cls = lab or "dead", "dead"
            sc = entry.get("score") if entry else None
            best = str(entry.get("concept") or "") if entry else ""
            link = (f"<a href=\"features/{s.feature:04d}.html\">{s.feature}</a>" if s.feature in page_set
                    else str(s.feature))
            scv = float(sc) if isinstance(sc, int | float) else -1.0
            index_rows.append(
                f"<tr><td class=\"num\" data-v=\"{s.feature}\">{link}</td>"
                f"<td class=\"{cls}\" data-v=\"{_e(lab)}\">{_e(lab)}</td>"
                f"<td data-v=\"{_e(best)}\">{_e(best)}</td>"
                f"<td class=\"num\" data-v=\"{scv}\">{_fmt(sc)}</td>"
                f"<td class=\"num\" data-v=\"{s.density}\">{_fmt(s.density, 4)}</td>"
                f"<td class=\"num\" data-v=\"{s.fires}\">{s.fires}</td>"
                f"<td class=\"num\" data-v=\"{s.max_activation}\">{_fmt(s.max_activation)}</td>"
                f"<td class=\"num\" data-v=\"{s.mean_activation}\">{_fmt(s.mean_activation)}</td></tr>")
        body.append("<h2>Features</h2><p class=\"note\">Click a column to sort. Linked features have a page.</p>"
                    "<table class=\"sortable\" id=\"features\"><thead><tr><th>feature</th><th>label</th><th>best concept</th>"
                    "<th>held-out AUROC</th><th>density</th><th>fires</th><th>max act.</th><th>mean act.</th>"
                    f"</tr></thead><tbody>{''.join(index_rows)}</tbody></table>")
        (tmp / "index.html").write_text(_page(title, "\n".join(body), "style.css", script=True), encoding="utf-8")
        doc = {"format": "workbench-report", "version": 1, "title": title, "sample_rate": int(sample_rate),
               "frame_rate": float(frame_rate), "clips": [str(c) for c in clip_names], "pages": pages,
               "sae": sae_facts or {}, "corpus": corpus_facts or {},
               "features": [s.to_dict() for s in stats]}
        from workbench.core.sae.io import _jsonable

        (tmp / "report.json").write_text(json.dumps(_jsonable(doc)), encoding="utf-8")
    return out


def audio_sources(report_dir: str | os.PathLike[str]) -> list[tuple[Path, str, Path]]:
    """(page, src, resolved file) of every ``<audio src>`` and ``<img src>`` in the report's pages: a
    check that every player points at a file that exists."""
    import re

    root = Path(report_dir)
    out = []
    pat = re.compile(r"<(?:audio|img)\b[^>]*\bsrc=\"([^\"]+)\"")
    for page in sorted(root.rglob("*.html")):
        for src in pat.findall(page.read_text(encoding="utf-8")):
            out.append((page, html.unescape(src), (page.parent / html.unescape(src)).resolve()))
    return out


def missing_sources(report_dir: str | os.PathLike[str]) -> list[str]:
    """Pages' audio/image sources and feature links that do not resolve to a file (empty = all good)."""
    import re

    root = Path(report_dir)
    bad = [f"{p.relative_to(root)}: {src}" for p, src, f in audio_sources(root) if not f.is_file()]
    for page in sorted(root.rglob("*.html")):
        for href in re.findall(r"<a\b[^>]*\bhref=\"([^\"#]+)\"", page.read_text(encoding="utf-8")):
            if "://" in href:
                continue
            if not (page.parent / html.unescape(href)).resolve().is_file():
                bad.append(f"{page.relative_to(root)}: link {href}")
    return bad


# -- looking at it --------------------------------------------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """A Chromium/Chrome executable on PATH (Debian: package ``chromium``), or None."""
    import shutil

    env = os.environ.get("WORKBENCH_CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in CHROMIUM_NAMES:
        hit = shutil.which(name)
        if hit:
            return hit
    return None


def screenshot(page: str | os.PathLike[str], png: str | os.PathLike[str], width: int = 1200, height: int = 1600,
               timeout: float = 120.0, chromium: str | None = None) -> Path:
    """Open a report page from disk in headless Chromium and save a screenshot (PNG)."""
    import subprocess
    import tempfile

    exe = chromium or find_chromium()
    if exe is None:
        raise UsageError("no Chromium found (Debian: apt-get install chromium; or set WORKBENCH_CHROMIUM)")
    src = Path(page).resolve()
    if not src.is_file():
        raise UsageError(f"{page}: no such page")
    dst = Path(png).resolve()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wb-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
               f"--window-size={int(width)},{int(height)}", f"--screenshot={dst}", src.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UsageError(f"Chromium did not finish within {timeout:g} s") from None
    if proc.returncode != 0 or not dst.is_file():
        tail = " ".join((proc.stderr or "").split())[-200:]
        raise UsageError(f"Chromium could not render {src.name} (exit {proc.returncode}): {tail}")
    return dst
