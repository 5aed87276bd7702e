"""Where the shipped resources (default codec, default SAE, demo material) live.

In a source checkout they are in ``<repo>/resources``; in an installed wheel they are copied into the
package as ``workbench/_resources``. ``WORKBENCH_RESOURCES`` overrides both (tests, bundles).
"""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("WORKBENCH_RESOURCES")
    if env:
        return Path(env)
    pkg = Path(__file__).resolve().parents[1]
    installed = pkg / "_resources"
    if installed.is_dir():
        return installed
    return pkg.parent / "resources"


def default_codec_dir() -> Path:
    return resources_dir() / "codecs" / "default"


def default_sae_dir() -> Path:
    return resources_dir() / "saes" / "default"


MODEL_DOCS = (("report.md", "report"), ("design.md", "design"), ("probes-eval.md", "probes"),
              ("labels-eval.md", "labels"))


def model_documents(codec: object | None, sae_folder: str | os.PathLike[str] | None) -> list[tuple[str, str, Path | None]]:
    """The documents that say how the loaded models were made and measured, as (title, markdown, folder):
    the codec's and the SAE folder's ``report.md``, ``design.md``, ``probes-eval.md`` and ``labels-eval.md``
    where they exist (the embedded ones ship all of them). A codec without a report gets its facts
    (`Codec.describe`) instead, an SAE folder without any a line saying so. Unreadable files are skipped."""
    out: list[tuple[str, str, Path | None]] = []

    def read(folder: Path | None, who: str) -> bool:
        found = False
        for name, what in MODEL_DOCS:
            p = folder / name if folder is not None else None
            if p is None or not p.is_file():
                continue
            try:
                out.append((f"{who} {what}", p.read_text(encoding="utf-8"), folder))
                found = True
            except (OSError, UnicodeDecodeError):
                continue
        return found

    if codec is not None:
        cid = str(getattr(codec, "id", "codec"))
        folder = getattr(codec, "folder", None)
        if not read(Path(folder) if folder else None, f"Codec '{cid}'"):
            describe = getattr(codec, "describe", None)
            facts = describe() if callable(describe) else {}
            rows = "\n".join(f"| {k} | {v} |" for k, v in facts.items())
            out.append((f"Codec '{cid}'", f"# Codec '{cid}'\n\nNo report ships with these weights.\n\n"
                        f"| | |\n|---|---|\n{rows}\n", None))
    if sae_folder is not None:
        sf = Path(sae_folder)
        if not read(sf, f"SAE '{sf.name}'"):
            out.append((f"SAE '{sf.name}'", f"# SAE '{sf.name}'\n\n`{sf}` holds no report.md, probes-eval.md or "
                        "labels-eval.md. `workbench probe` and `workbench label` score it; the Probes tab and the "
                        "feature table show what they wrote.\n", sf))
    return out
