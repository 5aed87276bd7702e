"""Setuptools hook that ships everything under ``resources/`` inside the package.

All metadata lives in pyproject.toml; this file only adds one build step. In a wheel the repository's
``resources/`` tree (embedded default codec, default SAE, demo material, whatever is added later) is
copied to ``workbench/_resources/``, which is where `workbench.core.resources.resources_dir` looks
first when installed. Editable installs skip the copy: the source tree's ``resources/`` is found
directly. The sdist carries ``resources/`` through MANIFEST.in, so a wheel built from the sdist has
them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SKIP = shutil.ignore_patterns("__pycache__", "*.py[cod]", ".*")  # hidden: atomic writers' temp files


class build_py_with_resources(build_py):  # noqa: N801 (setuptools command naming)
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        src = HERE / "resources"
        if not src.is_dir():
            return
        dst = Path(self.build_lib) / "workbench" / "_resources"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=SKIP)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:  # type: ignore[override]
        outs = list(super().get_outputs(include_bytecode))
        dst = Path(self.build_lib) / "workbench" / "_resources"
        if dst.is_dir():
            outs += [str(p) for p in sorted(dst.rglob("*")) if p.is_file()]
        return outs


setup(cmdclass={"build_py": build_py_with_resources})
