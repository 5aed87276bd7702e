"""Measure the automatic labels of an SAE (issue 7): the share of live features with a label of held-out
AUROC >= 0.8, and the same for the random-direction control (a random TopK encoder of the same size).

    .venv/bin/python scripts/eval_labels.py --sae resources/saes/default \
        [--weights CODEC_DIR] [--audio runs/synth-codec] [--clips 200] [--seed 0] [--out runs/eval-labels] \
        [--write-labels] [--report DIR] [--threads 1]

Clips: a seeded permutation of the audio's clips, the first `--clips` of it (the same order the probe
work uses to warm the descriptor cache, so CREPE runs only for clips not yet described). Writes
``OUT/labels_eval.json`` and ``OUT/labels_eval.md``; `--write-labels` also writes labels.json into the SAE
folder, `--report DIR` the HTML report from the same frames. The codec's weight fingerprint is checked
against the one recorded in the SAE folder (a mismatch is reported, not fatal: the labels would then
describe a different latent space than the SAE was trained on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sae", default="resources/saes/default")
    p.add_argument("--codec", default=None, help="codec id (default: the SAE's)")
    p.add_argument("--weights", default=None, help="codec weights (default: the registry's)")
    p.add_argument("--audio", nargs="+", default=["runs/synth-codec"])
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--seed", type=int, default=0, help="clip order and train/test split")
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--min-positives", type=int, default=20)
    p.add_argument("--crepe", default="tiny", choices=["tiny", "full"])
    p.add_argument("--select", default="correlation", choices=["correlation", "auroc"])
    p.add_argument("--out", default="runs/eval-labels")
    p.add_argument("--write-labels", action="store_true", help="also write labels.json into the SAE folder")
    p.add_argument("--report", default=None, help="also write the HTML report to this folder")
    p.add_argument("--report-features", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch

    torch.set_num_threads(max(1, args.threads))
    from tqdm import tqdm

    from workbench.commands.report_cmds import open_sae_and_codec
    from workbench.core.analysis.corpus import ClipList, collect_frames, load_clips
    from workbench.core.analysis.labels import (
        GOOD_LABEL,
        UNEXPLAINED_BELOW,
        format_summary,
        label_features,
        save_labels,
    )
    from workbench.core.fileio import atomic_write_json, atomic_write_text
    from workbench.core.sae.store import codec_fingerprint

    t_start = time.time()
    sae, codec = open_sae_and_codec(args.sae, args.codec, None, args.weights)
    info = sae.info
    folder = Path(info.folder) if info is not None else Path(args.sae)
    recorded = ((info.workbench if info is not None else {}) or {}).get("codec_info", {}).get("fingerprint")
    fp = codec_fingerprint(codec)
    all_clips = load_clips(args.audio, codec.sample_rate)
    order = np.random.default_rng(args.seed).permutation(len(all_clips))[: args.clips]
    clips = ClipList([all_clips.entries[int(i)] for i in order], all_clips.sample_rate)
    bar = tqdm(total=len(clips), desc="describing clips", unit="clip", file=sys.stderr, dynamic_ncols=True)
    t0 = time.time()
    try:
        frames = collect_frames(codec, sae, clips, progress=lambda i, n, name: bar.update(1), crepe_model=args.crepe)
    finally:
        bar.close()
    t_collect = time.time() - t0
    t0 = time.time()
    res = label_features(frames, test_fraction=args.test_fraction, seed=args.seed, min_positives=args.min_positives,
                         select=args.select, log=lambda s: print(s, file=sys.stderr))
    t_label = time.time() - t0
    s = res.summary
    rc = s["random_control"]
    best = sorted(((j, e) for j, e in res.features.items() if isinstance(e.get("score"), float)),
                  key=lambda je: -je[1]["score"])
    doc = {
        "sae": str(folder), "d_sae": sae.d_sae, "architecture": getattr(sae, "architecture", None),
        "k": getattr(sae, "k", None), "codec": codec.id, "codec_weights": args.weights,
        "codec_fingerprint": fp, "sae_codec_fingerprint": recorded,
        "codec_matches_sae": recorded is None or recorded == fp,
        "audio": args.audio, "clips": len(clips), "frames": len(frames), "seed": args.seed,
        "test_fraction": args.test_fraction, "select": args.select, "good_label": GOOD_LABEL, "unexplained_below": UNEXPLAINED_BELOW,
        "summary": s, "concepts_scored": int(res.eligible.sum()), "concepts": res.bank.names,
        "best_features": [{"feature": j, "label": e["label"], "concept": e.get("concept"), "score": e["score"],
                           "train_score": e.get("train_score"), "precision": e.get("precision"),
                           "top_precision": e.get("top_precision"), "lift": e.get("lift"),
                           "recall": e.get("recall"), "density": e.get("density")} for j, e in best[:40]],
        "seconds": {"collect": round(t_collect, 1), "label": round(t_label, 1), "total": round(time.time() - t_start, 1)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from workbench.core.sae.io import _jsonable

    atomic_write_json(out / "labels_eval.json", _jsonable(doc))

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    def f3(x: object) -> str:
        return f"{x:.3f}" if isinstance(x, float) and np.isfinite(x) else "–"

    md = [f"# Automatic labels: {folder.name}", "",
          f"SAE `{folder}` ({doc['architecture']}, d_sae {sae.d_sae}, k {doc['k']}), codec `{codec.id}`"
          f"{' weights ' + args.weights if args.weights else ''} (fingerprint {fp}"
          f"{'' if doc['codec_matches_sae'] else ', DIFFERENT from the SAE’s ' + str(recorded)}).",
          f"{len(clips)} clips ({', '.join(args.audio)}; seeded permutation, seed {args.seed}), {len(frames)} frames; "
          f"{res.meta['corpus']['train_clips']} train / {res.meta['corpus']['test_clips']} held-out clips; "
          f"{doc['concepts_scored']} of {len(res.bank.names)} concepts had ≥ {args.min_positives} positive and "
          f"negative frames on both sides.", "",
          "| | live features | label AUROC ≥ 0.8 | AUROC ≥ 0.75 | testable features | label AUROC ≥ 0.8 (testable) "
          "| median best AUROC | mean best AUROC | median precision | median top-10% precision | median lift |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, x in (("SAE features", s), (f"random directions (control, k={rc['k']})", rc)):
        md.append(f"| {name} | {x['live']} | {x['labelled']} ({pct(x['share_labelled'])}) | {x['explained']} "
                  f"({pct(x['share_explained'])}) | {x['testable']} | {x['labelled_testable']} "
                  f"({pct(x['share_labelled_testable'])}) | {f3(x['median_best_auroc'])} | {f3(x['mean_best_auroc'])} | "
                  f"{f3(x.get('median_precision'))} | {f3(x.get('median_top_precision'))} | {f3(x.get('median_lift'))} |")
    md += ["", f"Held-out AUROC: each feature's best concept is chosen on the train clips (by {args.select}) and "
           "scored on the held-out clips. Testable: fires on ≥ --min-positives frames of both the train and the "
           "held-out clips. Precision: share of the held-out frames where the feature fires that have its best "
           "concept (top-10%: among its strongest activations); lift: precision / the concept's base rate. "
           "Labels ≥ 0.8 by concept group (SAE): "
           + (", ".join(f"{k} {v}" for k, v in s["by_group"].items()) or "none")
           + "; control: " + (", ".join(f"{k} {v}" for k, v in rc["by_group"].items()) or "none") + ".", "",
           "Best-labelled features:", "",
           "| feature | best concept | held-out AUROC | train AUROC | precision | top-10% precision | lift | recall "
           "| density |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for b in doc["best_features"][:20]:
        md.append(f"| {b['feature']} | {b['concept']} | {f3(b['score'])} | {f3(b['train_score'])} | "
                  f"{f3(b['precision'])} | {f3(b['top_precision'])} | {f3(b['lift'])} | {f3(b['recall'])} | "
                  f"{f3(b['density'])} |")
    md += ["", f"Time: collecting frames {doc['seconds']['collect']} s, labelling {doc['seconds']['label']} s.",
           f"Rerun: `.venv/bin/python scripts/eval_labels.py --sae {args.sae}"
           f"{' --weights ' + args.weights if args.weights else ''} --clips {args.clips} --seed {args.seed}`", ""]
    atomic_write_text(out / "labels_eval.md", "\n".join(md))
    print(format_summary(s))
    print(f"wrote {out / 'labels_eval.json'} and {out / 'labels_eval.md'}")
    if args.write_labels:
        from workbench.core.data.synth import corpus_recipes

        extra = {"codec": codec.id, "inputs": args.audio, "synth_recipes": corpus_recipes(args.audio)}
        print(f"wrote {save_labels(res, folder, extra=extra)}")
    if args.report:
        from workbench.core.analysis.labels import read_labels_doc
        from workbench.core.analysis.report import write_report
        from workbench.core.analysis.stats import ClipAudio, stats_from_frames

        labels_doc = read_labels_doc(folder) if args.write_labels else json.loads(json.dumps(_jsonable(res.to_json())))
        probes = None
        if (folder / "probes.json").is_file():
            probes = json.loads((folder / "probes.json").read_text(encoding="utf-8"))
        stats = stats_from_frames(frames, top_k=6)
        mx = info.max_activation if info is not None and info.max_activation is not None else None
        t0 = time.time()
        write_report(args.report, stats=stats, clip_names=frames.clip_paths, sample_rate=codec.sample_rate,
                     frame_rate=frames.frame_rate, audio_of=ClipAudio(frames.clip_paths, codec.sample_rate),
                     codec=codec, latents=frames.latents, w_dec=sae.W_dec_np, strength=mx, labels=labels_doc,
                     probes=probes, max_features=args.report_features,
                     sae_facts={"SAE": str(folder), "d_sae": sae.d_sae, "k": doc["k"], "codec": codec.id},
                     corpus_facts={"clips": len(clips), "frames": len(frames)},
                     title=f"SAE feature report: {folder.name}")
        print(f"wrote {Path(args.report) / 'index.html'} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
