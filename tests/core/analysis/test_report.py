"""HTML report: files exist, every <audio>/<img> source and link resolves, atomic writing, the CLI
(`workbench label` then `workbench report`), and a headless-Chromium screenshot when Chromium is there."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from analysis_helpers import sine_burst

from workbench.cli import main
from workbench.core.analysis import descriptors as d
from workbench.core.analysis.corpus import collect_frames
from workbench.core.analysis.report import (
    audio_sources,
    find_chromium,
    missing_sources,
    probe_mentions,
    render_generic,
    screenshot,
    write_report,
)
from workbench.core.analysis.stats import ClipAudio, stats_from_frames
from workbench.core.codecs.default import DefaultCodec
from workbench.core.sae.io import load_sae
from workbench.core.sae_bridge import make_random_sae

D_SAE = 12
PROBES = {
    "format": "workbench-probes", "version": 1,
    "properties": {
        "loudness": {"num_classes": 2, "class_names": ["quiet", "loud"],
                     "metrics": {"sae": {"accuracy": 0.9, "macro_f1": 0.8,
                                         "subsets": {"monophonic (note)": {"accuracy": 0.875, "frames": 12}}},
                                 "latents": {"accuracy": 0.95, "macro_f1": 0.9}},
                     "top_features": [[[3, 0.5], [1, 0.2]], [[0, 0.7]]]},
    },
    "corpus": {"clips": 4},
}


def _labels_doc() -> dict[str, Any]:
    feats: dict[str, Any] = {str(j): {"label": "unexplained", "score": 0.6, "top": []} for j in range(D_SAE)}
    feats["0"] = {"label": "loud", "score": 0.91, "train_score": 0.95, "concept": "loud", "precision": 0.8,
                  "recall": 0.7, "explained": True,
                  "top": [{"concept": "loud", "group": "loudness", "score": 0.91, "train_score": 0.95}]}
    return {"format": "workbench-labels", "version": 1, "features": feats,
            "method": {"good_label": 0.8, "unexplained_below": 0.75},
            "summary": {"live": D_SAE, "labelled": 1, "share_labelled": 1 / D_SAE, "explained": 1,
                        "share_explained": 1 / D_SAE, "median_best_auroc": 0.6, "mean_best_auroc": 0.62,
                        "by_group": {"loudness": 1},
                        "random_control": {"live": D_SAE, "labelled": 0, "share_labelled": 0.0, "explained": 0,
                                           "share_explained": 0.0, "median_best_auroc": 0.51,
                                           "mean_best_auroc": 0.52}}}


def _clips(sr: int) -> list[tuple[str, np.ndarray, None]]:
    return [(f"tone{i}", sine_burst(220.0 * (1 + i), 0.05 * (i + 1), 0.2, 0.9, 1.2, sr), None) for i in range(4)]


@pytest.fixture()
def report_inputs(tiny_codec: DefaultCodec, tmp_path: Path) -> dict[str, Any]:
    sae = load_sae(make_random_sae(tmp_path / "sae", tiny_codec.latent_dim, D_SAE, k=3))
    clips = _clips(tiny_codec.sample_rate)
    frames = collect_frames(tiny_codec, sae, clips, with_descriptors=False)
    stats = stats_from_frames(frames, top_k=3)
    return dict(stats=stats, clip_names=frames.clip_paths, sample_rate=tiny_codec.sample_rate,
                frame_rate=frames.frame_rate, audio_of=ClipAudio([], tiny_codec.sample_rate,
                                                                  arrays={i: c[1] for i, c in enumerate(clips)}),
                codec=tiny_codec, latents=frames.latents, w_dec=sae.W_dec_np,
                strength=np.ones(D_SAE, np.float32), labels=_labels_doc(), probes=PROBES,
                sae_facts={"d_sae": D_SAE}, corpus_facts={"clips": 4})


def _check_report(out: Path, n_pages: int) -> list[Path]:
    assert (out / "index.html").is_file() and (out / "style.css").is_file()
    pages = sorted((out / "features").glob("*.html"))
    assert len(pages) == n_pages
    srcs = audio_sources(out)
    audio = [f for _, s, f in srcs if s.endswith(".wav")]
    assert audio, "the report has no audio players"
    assert missing_sources(out) == []  # every <audio src>, <img src> and link points at a file
    for f in audio:
        info = sf.info(str(f))
        assert info.samplerate == 24000 and info.frames > 0
    for _, s, f in srcs:
        if s.endswith(".png"):
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            w, h = struct.unpack(">II", f.read_bytes()[16:24])
            assert (w, h) == (160, 64)
    return pages


def test_report_files_and_links(report_inputs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report"
    live = [s.feature for s in report_inputs["stats"] if s.live]
    write_report(out, max_features=3, **report_inputs)
    pages = _check_report(out, min(3, len(live)))
    index = (out / "index.html").read_text()
    # Every feature is in the index table; the labelled one first among the pages.
    assert index.count("<tr><td class=\"num\" data-v=") == D_SAE
    assert "features/0000.html" in index and "loud" in index and "random directions (control)" in index
    assert "table class=\"sortable\"" in index and "<script>" in index
    assert "Probes" in index and "loudness" in index and "0.950" in index  # the probe table
    assert "<td>monophonic (note): SAE features</td><td class=\"num\">0.875</td>" in index  # a subset's row
    p0 = (out / "features" / "0000.html").read_text()
    assert "held-out AUROC 0.910" in p0 and "<svg" in p0 and "0000/sound.wav" in p0
    assert "In the probes" in p0 and "loud" in p0  # feature 0 is the top feature of class "loud"
    assert p0.count("<audio") >= 1 + 3  # own sound + top moments
    assert (out / "sounds" / "reference.wav").is_file()
    doc = json.loads((out / "report.json").read_text())
    assert len(doc["features"]) == D_SAE and doc["pages"] == sorted(int(p.stem) for p in pages)
    # A removed snippet is caught by the check.
    victim = next((out / "features" / "0000").glob("top*.wav"))
    victim.unlink()
    assert any(victim.name in m for m in missing_sources(out))


def test_report_with_flac_snippets(report_inputs: dict[str, Any], tmp_path: Path) -> None:
    out = write_report(tmp_path / "r", max_features=1, audio_format="flac", **report_inputs)
    srcs = [s for _, s, _ in audio_sources(out) if not s.endswith(".png")]
    assert srcs and all(s.endswith(".flac") for s in srcs) and missing_sources(out) == []
    assert sf.info(str(next(out.rglob("top1.flac")))).format == "FLAC"


def test_report_without_codec_labels_or_audio(report_inputs: dict[str, Any], tmp_path: Path) -> None:
    kw = dict(report_inputs, codec=None, labels=None, probes=None, audio_of=None)
    out = write_report(tmp_path / "r", max_features=2, **kw)
    index = (out / "index.html").read_text()
    assert "workbench label" in index and "Probes" not in index
    assert audio_sources(out) == [] and missing_sources(out) == []
    assert "audio not available" in (sorted((out / "features").glob("*.html"))[0]).read_text()


def test_report_is_written_atomically(report_inputs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "reports" / "report"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("keep me")

    def boom(i: int, n: int, what: str) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_report(out, max_features=2, progress=boom, **report_inputs)
    assert (out / "old.txt").read_text() == "keep me" and not (out / "index.html").exists()
    assert [p.name for p in out.parent.iterdir()] == ["report"]  # no temp folder left behind
    write_report(out, max_features=2, **report_inputs)
    assert not (out / "old.txt").exists() and (out / "index.html").is_file()


def test_generic_rendering_helpers() -> None:
    assert probe_mentions(PROBES, 3) == [("loudness", "quiet", 1, 0.5)]
    assert probe_mentions(PROBES, 0) == [("loudness", "loud", 1, 0.7)]
    assert probe_mentions({"properties": {"x": {"top_features": "junk"}}}, 0) == []
    assert probe_mentions(None, 0) == []
    t = render_generic({"a": {"x": 1, "y": 0.5}, "b": {"x": 2}})
    assert t.startswith("<table>") and "<th>x</th>" in t and "–" in t
    assert "(100 values)" in render_generic(list(range(100)))
    assert "&lt;b&gt;" in render_generic({"k": "<b>"})  # escaped


def _fake_crepe(audio16k: np.ndarray, centres: np.ndarray, model: str = "tiny") -> tuple[np.ndarray, np.ndarray]:
    return np.full(len(centres), 220.0, np.float32), np.full(len(centres), 0.9, np.float32)


def test_cli_label_then_report(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                               tiny_resources: Path) -> None:
    from workbench.core.data.synth import generate_corpus

    monkeypatch.setenv("WORKBENCH_RESOURCES", str(tiny_resources))
    monkeypatch.setattr(d, "crepe_pitch", _fake_crepe)
    corpus = generate_corpus(tmp_path / "corpus", 8, seed=4, kinds=["note", "chord", "drums"], progress=False)
    sae = make_random_sae(tmp_path / "sae", 16, 24, k=4)

    rc = main(["label", str(corpus), "--sae", str(sae), "--threads", "1", "--min-positives", "5"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "live features" in out and "random control" in out
    doc = json.loads((sae / "labels.json").read_text())
    assert doc["format"] == "workbench-labels" and len(doc["features"]) == 24
    assert doc["summary"]["random_control"]["features"] == 24 and doc["corpus"]["clips"] == 8
    assert not list(sae.glob(".*tmp*"))

    # No audio given: the clips labels.json names are used.
    rc = main(["report", "--sae", str(sae), "-o", str(tmp_path / "rep"), "--threads", "1", "--max-features", "2",
               "--top-k", "2"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    _check_report(tmp_path / "rep", 2)
    assert "held-out AUROC" in (tmp_path / "rep" / "index.html").read_text()

    # The corpus is gone (another machine): its clips are rendered again from the recipe labels.json keeps.
    assert doc["synth_recipes"][0]["seed"] == 4 and doc["synth_recipes"][0]["n"] == 8
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    corpus.rename(tmp_path / "moved")
    rc = main(["report", "--sae", str(sae), "-o", str(tmp_path / "rep2"), "--threads", "1", "--max-features", "2",
               "--top-k", "2", "--max-clips", "3"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "rendering its clips again" in err and len(list((tmp_path / "cache").glob("corpora/*/audio/*.flac"))) == 3
    _check_report(tmp_path / "rep2", 2)
    assert "<td>clips</td><td>3</td>" in (tmp_path / "rep2" / "index.html").read_text()
    corpus = tmp_path / "moved"

    bare = make_random_sae(tmp_path / "bare", 16, 8, k=2)
    for bad, msg in ((["report", "--sae", str(bare), "-o", str(tmp_path / "x")], "no audio given"),
                     (["report", str(corpus), "--sae", str(sae), "--max-features", "-1"], "--max-features"),
                     (["label", str(corpus), "--sae", str(sae), "--test-fraction", "0"], "--test-fraction"),
                     (["label", str(tmp_path / "missing"), "--sae", str(sae)], ""),
                     (["report", str(corpus), "--sae", str(sae), "-o", str(sae)], "cannot replace")):
        rc = main(bad)
        out, err = capsys.readouterr()
        assert rc == 2 and err.count("error: ") == 1 and "Traceback" not in err and msg in err, (bad, err)
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_report_opens_in_headless_chromium(report_inputs: dict[str, Any], tmp_path: Path) -> None:
    out = write_report(tmp_path / "report", max_features=2, **report_inputs)
    assert missing_sources(out) == []
    shot = screenshot(out / "index.html", tmp_path / "index.png", width=1000, height=900)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 900)
    page = sorted((out / "features").glob("*.html"))[0]
    assert screenshot(page, tmp_path / "page.png").stat().st_size > 5000


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_index_table_sorts_in_chromium(report_inputs: dict[str, Any], tmp_path: Path) -> None:
    """Click the density header twice (descending) in headless Chromium and read back the row order."""
    import re
    import subprocess

    out = write_report(tmp_path / "report", max_features=1, **report_inputs)
    page = (out / "index.html").read_text()
    probe = ("<script>var th = document.querySelectorAll('#features th'); th[4].click(); th[4].click();"
             "document.body.setAttribute('data-order', Array.prototype.map.call("
             "document.querySelectorAll('#features tbody tr'), function (r) { return r.cells[0].getAttribute('data-v'); })"
             ".join(','));</script></body>")
    (out / "probe.html").write_text(page.replace("</body>", probe))
    exe = find_chromium()
    assert exe is not None
    dom = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'prof'}",
                          "--dump-dom", (out / "probe.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-order="([0-9,]+)"', dom)
    assert m, dom[-500:]
    order = [int(v) for v in m.group(1).split(",")]
    dens = {s.feature: s.density for s in report_inputs["stats"]}
    assert sorted(order) == list(range(D_SAE))
    assert [dens[j] for j in order] == sorted(dens.values(), reverse=True)
