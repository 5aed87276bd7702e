"""`workbench.core` never imports Qt (DESIGN.md): everything in core must run headless.

Two checks, because each misses what the other sees: a static scan of every file's imports (catches
imports in functions that no test happens to call), and a real import of every core module in a
clean interpreter (catches Qt pulled in indirectly, e.g. by a third-party package or a plotting backend).
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import workbench.core

QT_NAMES = frozenset(
    {"PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "pyqtgraph", "superqt", "qtpy", "sip"}
)
CORE = Path(workbench.core.__file__).resolve().parent
REPO = CORE.parents[1]


def _top(name: str) -> str:
    return name.split(".")[0]


def qt_imports(source: str, filename: str) -> list[str]:
    """Qt modules named by import statements, or as string literals given to importlib.import_module /
    __import__ (lazy imports are imports too)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module] if node.module and node.level == 0 else []
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0] if node.args else None
            names = []
            if fname in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                names = [arg.value] if isinstance(arg.value, str) else []
        else:
            continue
        found += [f"{filename}:{node.lineno}: {n}" for n in names if _top(n) in QT_NAMES]
    return found


def test_scanner_sees_every_import_form() -> None:
    src = textwrap.dedent(
        """
        import os
        import PySide6.QtCore
        from pyqtgraph import PlotWidget
        def later():
            import superqt
            importlib.import_module("PyQt6.QtWidgets")
            __import__("qtpy")
        from . import sibling
        """
    )
    hits = qt_imports(src, "x.py")
    expected = ["PySide6.QtCore", "pyqtgraph", "superqt", "PyQt6.QtWidgets", "qtpy"]
    assert [h.split(": ")[1] for h in hits] == expected


def core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert CORE / "audio.py" in files
    return files


def test_no_qt_imports_in_core_sources() -> None:
    hits: list[str] = []
    for path in core_files():
        hits += qt_imports(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert not hits, "workbench/core must not import Qt:\n" + "\n".join(hits)


def core_module_names() -> list[str]:
    """Every module under workbench/core: pkgutil's walk, plus module names derived from the files
    (so a folder that lacks __init__.py is not silently skipped by the walk)."""
    walked = {m.name for m in pkgutil.walk_packages(workbench.core.__path__, "workbench.core.")}
    from_files = set()
    for path in core_files():
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        from_files.add(".".join(parts))
    return sorted(walked | from_files)


CHILD = textwrap.dedent(
    """
    import importlib, json, sys, traceback
    names, qt = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
    failures = {}
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            failures[name] = traceback.format_exc(limit=3)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in qt)
    print(json.dumps({"failures": failures, "qt": loaded}))
    """
)


def test_importing_all_of_core_loads_no_qt() -> None:
    names = core_module_names()
    assert "workbench.core.audio" in names and "workbench.core.errors" in names
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(names), json.dumps(sorted(QT_NAMES))],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["failures"], "core modules failed to import:\n" + "\n".join(
        f"{k}:\n{v}" for k, v in result["failures"].items()
    )
    assert not result["qt"], f"importing workbench.core loaded Qt modules: {result['qt']}"
