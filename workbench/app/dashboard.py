"""Dashboard of the selected feature: labels with scores, density, maxima, an activation histogram, its top
activating moments (spectrogram thumbnail + Play each) and its own sound.

What is computed (`core.analysis.explore`) runs in the app's worker pattern (`LatestWins`: clicking
through the table only ever computes the newest feature). The examples corpus (the clips the SAE folder
names, at most 40, else the current clip) is encoded once per SAE and codec and kept, clip by clip, so a
cancelled build continues where it stopped; each feature's result is cached. Labels come from
labels.json (read once per SAE, off the GUI thread); without it, from what the SAE loader found.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.app.worker import LatestWins, Task
from workbench.core.analysis.explore import (
    ExampleCorpus,
    FeatureExamples,
    choose_clips,
    corpus_from_clip,
    feature_examples,
    fill_corpus,
    recorded_inputs,
    recorded_recipes,
    render_examples,
    start_corpus,
)
from workbench.core.codecs.base import Codec
from workbench.core.errors import DataError, WorkbenchError
from workbench.core.jobs import JobControl
from workbench.core.sae_bridge import LoadedSAE
from workbench.core.workspace import ClipAnalysis

HIST_COLOR = "#5a8fd0"
MUTED = "color: #777"


# -- off the GUI thread -------------------------------------------------------------------------------

@dataclass
class ExamplesState:
    """What the examples worker builds up for one SAE + codec (and clip, when the clip is the corpus).
    Only the worker writes it (one task at a time); the GUI reads `results`."""

    corpus: ExampleCorpus | None = None
    clip_mode: bool = False
    note: str = ""
    results: dict[int, FeatureExamples] = field(default_factory=dict)


@dataclass(frozen=True)
class ExamplesRequest:
    feature: int
    sae: LoadedSAE
    codec: Codec
    analysis: ClipAnalysis | None
    state: ExamplesState


def _w_dec(sae: LoadedSAE) -> np.ndarray:
    w = getattr(sae.model, "W_dec_np", None)
    if w is None:
        w = sae.model.W_dec
        w = w.detach().cpu().numpy() if hasattr(w, "detach") else np.asarray(w)
    return np.asarray(w, np.float32)


def run_examples(req: ExamplesRequest, job: JobControl) -> FeatureExamples:
    st, sae, codec = req.state, req.sae, req.codec
    hit = st.results.get(req.feature)
    if hit is not None:
        return hit
    if st.corpus is None:
        job.progress(0.0, "examples: finding the clips")
        paths, where = recorded_inputs(sae.folder)
        clips: list[str] = []
        if paths:
            try:
                clips = choose_clips(paths, codec.sample_rate)
            except WorkbenchError as exc:
                st.note = f"the recorded clips cannot be used ({exc.message}); showing the current clip"
        elif (recipes := recorded_recipes(sae.folder)):
            # The SAE was analysed on a synthetic corpus that is not on this machine (e.g. the shipped
            # SAE on a fresh install): its clips are rendered again from the recipe, once, into the cache.
            try:
                clips = render_examples(recipes[0], check=job.check, progress=lambda i, n: job.progress(
                    0.5 * i / max(1, n), f"examples: rendering clip {i + 1}/{n} of the synthetic corpus"))
                paths, where = clips, "of the synthetic corpus (rendered again from its recipe)"
            except WorkbenchError as exc:
                st.note = f"the synthetic corpus cannot be rendered here ({exc.message}); showing the current clip"
        if clips:
            st.corpus = start_corpus(clips, where, codec.frame_rate, codec.sample_rate)
        else:
            st.corpus = _clip_corpus(req)
            st.clip_mode = True
            if not paths and not st.note:
                st.note = "the SAE folder names no clips that are on this machine; showing the current clip"
    try:
        fill_corpus(st.corpus, codec, sae, job)
    except DataError:
        st.corpus = _clip_corpus(req)
        st.clip_mode = True
        st.note = "none of the recorded clips could be read; showing the current clip"
    job.progress(0.95, "examples: top moments")
    mx = float(sae.max_activation[req.feature])
    res = feature_examples(st.corpus, req.feature, _w_dec(sae)[req.feature],
                           strength=mx if math.isfinite(mx) and mx > 0 else None, job=job)
    st.results[req.feature] = res
    job.progress(1.0, "")
    return res


def _clip_corpus(req: ExamplesRequest) -> ExampleCorpus:
    a = req.analysis
    if a is None or a.features is None:
        raise DataError("open a clip to see this feature's examples")
    return corpus_from_clip(a.z, a.features, a.source.samples, a.frame_rate, a.source.sample_rate, a.name)


def read_label_doc(folder: Path | None) -> dict[str, Any] | None:
    """labels.json's per-feature entries (None when absent or unreadable: the table's labels remain)."""
    if folder is None:
        return None
    from workbench.core.analysis.labels import read_labels_doc

    try:
        doc = read_labels_doc(folder)
    except WorkbenchError:
        return None
    return None if doc is None else doc.get("features")


# -- widgets ------------------------------------------------------------------------------------------

def rgb_pixmap(rgb: np.ndarray) -> QPixmap:
    a = np.ascontiguousarray(rgb, np.uint8)
    h, w = a.shape[:2]
    img = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(img.copy())  # copy: the QImage must not outlive the numpy buffer


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


class ExampleRow(QFrame):
    playRequested = Signal(int)

    def __init__(self, index: int, thumb: np.ndarray, title: str, detail: str, tip: str) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.index = index
        self.play_btn = QToolButton()
        self.play_btn.setText("▶")
        self.play_btn.setToolTip("Play this moment (the codec's output around it: 0.3 s before, 0.5 s after)")
        self.play_btn.clicked.connect(lambda: self.playRequested.emit(self.index))
        self.thumb = QLabel()
        self.thumb.setPixmap(rgb_pixmap(thumb))
        self.thumb.setToolTip("Log-frequency spectrogram of the moment's surroundings; the white line marks it")
        self.text = QLabel(f"<b>{html.escape(title)}</b><br><span style='{MUTED}'>{html.escape(detail)}</span>")
        self.text.setToolTip(tip)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.play_btn)
        lay.addWidget(self.thumb)
        lay.addWidget(self.text, 1)

    def set_playing(self, on: bool) -> None:
        self.play_btn.setText("■" if on else "▶")


class FeatureDashboard(QWidget):
    """View + its worker. The window calls `set_context` (SAE, codec, clip) and `show_feature`; a Play
    press becomes `playRequested(latents, key)`, `steerRequested(feature)` adds a slider."""

    playRequested = Signal(object, object)  # (latents [T, D], key)
    stopRequested = Signal()
    steerRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sae: LoadedSAE | None = None
        self.codec: Codec | None = None
        self.analysis: ClipAnalysis | None = None
        self.feature: int | None = None
        self.result: FeatureExamples | None = None
        self.label_doc: dict[str, Any] | None = None
        self.state = ExamplesState()
        self.playing_key: Any = None
        self.rows: list[ExampleRow] = []
        self._label_task: Task | None = None

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 13pt")
        self.labels = QLabel()
        self.labels.setTextFormat(Qt.TextFormat.RichText)
        self.labels.setWordWrap(True)
        self.facts = QLabel()
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.facts.setWordWrap(True)
        self.sound_btn = QPushButton("▶  Sound of the feature")
        self.sound_btn.setToolTip("The feature's decoder direction heard through the codec: the corpus' mean "
                                  "latent plus the feature's maximum activation times its decoder row, held 1 s")
        self.sound_btn.clicked.connect(lambda: self._play_sound("sound"))
        self.ref_btn = QPushButton("▶  Reference")
        self.ref_btn.setToolTip("The mean latent alone, decoded: what the feature's sound adds its direction to")
        self.ref_btn.clicked.connect(lambda: self._play_sound("reference"))
        self.steer_btn = QPushButton("Steer")
        self.steer_btn.setToolTip("Add a steering slider for this feature")
        self.steer_btn.clicked.connect(lambda: self.feature is not None and self.steerRequested.emit(self.feature))
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.sound_btn)
        buttons.addWidget(self.ref_btn)
        buttons.addStretch(1)
        buttons.addWidget(self.steer_btn)

        self.hist = pg.PlotWidget(background="#161616")
        self.hist.setFixedHeight(110)
        self.hist.setMenuEnabled(False)
        self.hist.hideButtons()
        self.hist.setMouseEnabled(x=False, y=False)
        pi = self.hist.getPlotItem()
        for ax in ("left", "bottom"):
            pi.getAxis(ax).enableAutoSIPrefix(False)
        pi.getAxis("left").setWidth(38)
        pi.setLabel("bottom", "activation", color="#cfcfcf")
        pi.setLabel("left", "frames", color="#cfcfcf")
        self.bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush=HIST_COLOR, pen=None)
        pi.addItem(self.bars)
        self.hist_note = pg.TextItem("", color="#bbbbbb", anchor=(0, 0))
        self.hist_note.setParentItem(pi.vb)
        self.hist_note.setPos(6, 2)

        self.status = QLabel("")
        self.status.setStyleSheet(MUTED)
        self.status.setWordWrap(True)
        self.examples_title = QLabel("<b>Top activating moments</b>")
        self.examples_box = QWidget()
        self.examples_layout = QVBoxLayout(self.examples_box)
        self.examples_layout.setContentsMargins(0, 0, 0, 0)
        self.examples_layout.setSpacing(2)
        self.typical_title = QLabel("<b>Typical moments</b>", self.examples_box)
        self.typical_title.setToolTip("Where the feature fires at the 25th, 50th and 75th percentile of its activations "
                                      "on these clips: how it sounds at ordinary strength, not only at its peaks")
        self.typical_title.setContentsMargins(0, 6, 0, 0)
        self.typical_title.hide()

        # Everything below the title scrolls as one page: a short dock never squeezes parts onto each other.
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 4, 0)
        body.setSpacing(4)
        body.addWidget(self.labels)
        body.addWidget(self.facts)
        body.addLayout(buttons)
        body.addWidget(self.hist)
        body.addWidget(self.examples_title)
        body.addWidget(self.status)
        body.addWidget(self.examples_box)
        body.addStretch(1)
        self.page = QScrollArea()
        self.page.setWidgetResizable(True)
        self.page.setWidget(self.body)
        self.page.setFrameShape(QFrame.Shape.NoFrame)
        self.page.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.empty.setStyleSheet("color: #666; padding: 8px")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.page, 1)
        lay.addWidget(self.empty, 1)

        self.worker = LatestWins(run_examples, "examples", self)
        self.worker.result.connect(self._on_result)
        self.worker.error.connect(self._on_error)
        self.worker.progress.connect(lambda f, m: self.status.setText(m or "computing…"))
        self._show_empty("Select a feature in the table (or double-click a heatmap row) to see what it does.")

    # -- context ---------------------------------------------------------------------------------
    def set_context(self, sae: LoadedSAE | None, codec: Codec | None, analysis: ClipAnalysis | None) -> None:
        if sae is not self.sae or codec is not self.codec:
            self.worker.cancel()
            self.state = ExamplesState()
            self.label_doc = None
            if sae is not self.sae:
                self._load_labels(sae)
        elif analysis is not self.analysis and (self.state.clip_mode or self.state.corpus is None):
            self.worker.cancel()
            self.state = ExamplesState()
        self.sae, self.codec, self.analysis = sae, codec, analysis
        if self.feature is not None and (sae is None or self.feature >= sae.d_sae):
            self.feature = None
        self.refresh()

    def _load_labels(self, sae: LoadedSAE | None) -> None:
        folder = None if sae is None else sae.folder
        if folder is None:
            return
        t = Task(lambda job: read_label_doc(folder), "labels")
        t.succeeded.connect(lambda doc, s=sae: self._on_labels(s, doc))
        self._label_task = t.start_task()

    def _on_labels(self, sae: LoadedSAE, doc: dict[str, Any] | None) -> None:
        if sae is self.sae:
            self.label_doc = doc
            self._show_header()

    def show_feature(self, feature: int | None) -> None:
        if feature == self.feature:
            return
        self.feature = feature
        self.refresh()

    def refresh(self) -> None:
        """Show what is known now and compute the rest (only while the pane is visible)."""
        sae, j = self.sae, self.feature
        if sae is None:
            self._show_empty("No SAE loaded: open one (Model → Open SAE folder…) or train one to see its features.")
            return
        if j is None:
            self._show_empty("Select a feature in the table (or double-click a heatmap row) to see what it does.")
            return
        self.empty.hide()
        self.page.show()
        self._show_header()
        res = self.state.results.get(j)
        if res is not None:
            self._show_result(res)
            return
        self.result = None
        self._clear_examples()
        self._set_hist(None)
        self.sound_btn.setEnabled(False)
        self.ref_btn.setEnabled(False)
        if self.codec is not None and self.isVisible():
            self.status.setText("computing examples…")
            self.hist_note.setText("computing…")
            self.worker.submit(ExamplesRequest(j, sae, self.codec, self.analysis, self.state))
        else:
            self.status.setText("")

    def showEvent(self, e: Any) -> None:  # noqa: N802
        super().showEvent(e)
        if self.feature is not None and self.result is None and not self.worker.busy:
            self.refresh()

    def cancel(self) -> None:
        self.worker.cancel()

    # -- drawing ----------------------------------------------------------------------------------
    def _show_empty(self, text: str) -> None:
        self.title.setText("<b>Feature</b>")
        self.empty.setText(text)
        self.page.hide()
        self.empty.show()
        self.result = None
        self._clear_examples()

    def _show_header(self) -> None:
        sae, j = self.sae, self.feature
        if sae is None or j is None:
            return
        entry = (self.label_doc or {}).get(str(j)) if self.label_doc else None
        lab = sae.labels.get(j)
        name = entry.get("label") if isinstance(entry, dict) else (lab.label if lab else None)
        score = entry.get("score") if isinstance(entry, dict) else (lab.score if lab else None)
        head = f"<b>#{j}</b>"
        if isinstance(name, str) and name:
            concept = entry.get("concept") if isinstance(entry, dict) else None
            shown = f"{name} ({concept})" if name == "unexplained" and isinstance(concept, str) else name
            head += f"&nbsp; {html.escape(shown)}"
            if isinstance(score, int | float):
                head += f" <span style='{MUTED}'>AUROC {score:.2f}</span>"
        self.title.setText(head)
        self.labels.setText(self._labels_html(entry))
        d = float(sae.density[j]) if j < len(sae.density) else float("nan")
        mx = float(sae.max_activation[j]) if j < len(sae.max_activation) else float("nan")
        dens = "–" if not math.isfinite(d) else (f"{100 * d:.2f}%" if d >= 1e-4 else f"{100 * d:.2g}%")
        facts = [f"density <b>{dens}</b>", f"max activation <b>{_fmt(mx)}</b>"]
        r = self.state.results.get(j)
        if r is not None:
            s = r.stats
            facts.append(f"here: fires on {100 * s.density:.2g}% of {s.frames} frames, max {_fmt(s.max_activation)}, "
                         f"mean {_fmt(s.mean_activation)}")
        self.facts.setText(" · ".join(facts))
        self.facts.setToolTip("density and max activation: on the SAE's training data (max activation is the unit "
                              "of add/set edits); 'here': on the clips the examples come from")

    def _labels_html(self, entry: Any) -> str:
        if not isinstance(entry, dict):
            if self.sae is not None and self.sae.folder is not None and not (self.sae.folder / "labels.json").is_file():
                return (f"<span style='{MUTED}'>No labels yet: <code>workbench label AUDIO_OR_DIR… --sae "
                        f"{html.escape(str(self.sae.folder))}</code></span>")
            return ""
        parts = []
        top = entry.get("top")
        if isinstance(top, list):
            for t in top[:5]:
                if isinstance(t, dict) and isinstance(t.get("concept"), str):
                    sc = t.get("score")
                    shown = f"{sc:.2f}" if isinstance(sc, int | float) else "–"
                    parts.append(f"{html.escape(t['concept'])} <span style='{MUTED}'>({shown})</span>")
        extra = []
        for key, name in (("precision", "precision"), ("recall", "recall"), ("lift", "lift"),
                          ("top_precision", "precision of the top 10%")):
            v = entry.get(key)
            if isinstance(v, int | float):
                extra.append(f"{name} {v:.2f}")
        self.labels.setToolTip("Concepts by held-out AUROC (labels.json)" + (
            "; best concept on held-out clips: " + ", ".join(extra) if extra else ""))
        return ("concepts: " + ", ".join(parts)) if parts else ""

    def _set_hist(self, res: FeatureExamples | None) -> None:
        pi = self.hist.getPlotItem()
        if res is None or res.stats.fires == 0:
            self.bars.setOpts(x0=[], x1=[], height=[])
            self.hist_note.setText("" if res is None else "never fires on these clips")
            pi.getAxis("left").setTicks(None)
            return
        c = np.asarray(res.stats.hist_counts, np.float64)
        e = np.asarray(res.stats.hist_edges, np.float64)
        h = np.log10(c + 1.0)
        self.bars.setOpts(x0=e[:-1], x1=e[1:] - 0.08 * (e[1] - e[0]), height=h)
        self.hist_note.setText("")
        top = float(h.max())
        ticks = [(math.log10(v + 1), f"{v:g}") for v in (1, 10, 100, 1000, 10_000, 100_000) if math.log10(v + 1) <= top * 1.05]
        pi.getAxis("left").setTicks([ticks, []])
        pi.setXRange(0, float(e[-1]), padding=0.02)
        pi.setYRange(0, max(top, 0.5) * 1.08, padding=0)

    def _clear_examples(self) -> None:
        for r in self.rows:
            self.examples_layout.removeWidget(r)
            r.deleteLater()
        self.rows = []
        self.examples_layout.removeWidget(self.typical_title)
        self.typical_title.hide()

    def _show_result(self, res: FeatureExamples) -> None:
        self.result = res
        self._show_header()
        self._set_hist(res)
        self._clear_examples()
        for i, ex in enumerate(res.moments):
            name = Path(ex.name).name if ex.name else "clip"
            rel = ex.activation / res.strength if res.strength > 0 else float("nan")
            detail = f"activation {_fmt(ex.activation)} ({_fmt(rel, 2)}× max)"
            if i >= len(res.examples):
                q = res.typical[i - len(res.examples)][0]
                detail = f"{round(100 * q)}th percentile: {_fmt(ex.activation)} ({_fmt(rel, 2)}× max)"
            if i == len(res.examples):  # the typical moments follow the top ones, under their own title
                self.examples_layout.addWidget(self.typical_title)
                self.typical_title.show()
            row = ExampleRow(i, ex.thumbnail, f"{name} @ {ex.time:.2f} s", detail, ex.name)
            row.playRequested.connect(self._play_example)
            self.examples_layout.addWidget(row)
            self.rows.append(row)
        self.sound_btn.setEnabled(True)
        self.ref_btn.setEnabled(True)
        n = len(res.examples)
        src = f"{res.source} ({res.frames} frames)"
        self.status.setText((f"{n} moments in {src}" if n else f"never fires in {src}")
                            + (f" — {self.state.note}" if self.state.note else ""))
        self._mark_playing()

    def _on_result(self, req: ExamplesRequest, res: FeatureExamples) -> None:
        if req.state is self.state and req.feature == self.feature:
            self._show_result(res)

    def _on_error(self, req: ExamplesRequest, message: str) -> None:
        if req.state is self.state and req.feature == self.feature:
            self.status.setText(f"examples unavailable: {message}")

    # -- playing ----------------------------------------------------------------------------------
    def _play_example(self, i: int) -> None:
        res = self.result
        if res is None or i >= len(res.moments):
            return
        key = (res.feature, "example", i)
        if self.playing_key == key:
            self.stopRequested.emit()
            return
        self.playRequested.emit(res.moments[i].z, key)

    def _play_sound(self, which: str) -> None:
        res = self.result
        if res is None:
            return
        key = (res.feature, which)
        if self.playing_key == key:
            self.stopRequested.emit()
            return
        self.playRequested.emit(res.sound_z if which == "sound" else res.reference_z, key)

    def set_playing(self, key: Any) -> None:
        """The preview player's state (None: nothing plays): buttons show ■ for what plays."""
        self.playing_key = key
        self._mark_playing()

    def _mark_playing(self) -> None:
        key, res = self.playing_key, self.result
        f = None if res is None else res.feature
        for i, r in enumerate(self.rows):
            r.set_playing(key == (f, "example", i))
        self.sound_btn.setText("■  Stop" if key == (f, "sound") else "▶  Sound of the feature")
        self.ref_btn.setText("■  Stop" if key == (f, "reference") else "▶  Reference")
