"""The desktop-integration files of the bundle: .desktop entry, AppStream metainfo, icon set, scripts.

Validated with the freedesktop tools when they are installed (desktop-file-validate, appstreamcli),
and always structurally (keys, ids that agree with each other, PNG sizes read from their headers).
"""

from __future__ import annotations

import configparser
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "packaging"
APP_ID = "io.github.sae_audio_workbench"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def test_desktop_entry() -> None:
    path = PKG / f"{APP_ID}.desktop"
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(path, encoding="utf-8")
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Icon"] == APP_ID
    assert entry["Exec"].split()[0] == "sae-audio-workbench"
    assert "audio/wav" in entry["MimeType"].split(";")
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert r.returncode == 0 and "error" not in r.stdout, r.stdout + r.stderr


def test_appstream_metainfo() -> None:
    path = PKG / f"{APP_ID}.metainfo.xml"
    root = ET.parse(path).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == f"{APP_ID}.desktop"
    assert root.findtext("icon") == APP_ID
    assert root.findtext("project_license") == "MIT"
    if shutil.which("appstreamcli"):
        r = subprocess.run(["appstreamcli", "validate", "--no-net", "--no-color", str(path)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_icon_set_is_complete() -> None:
    svg = PKG / "icons" / f"{APP_ID}.svg"
    assert ET.parse(svg).getroot().tag.endswith("svg")
    scalable = PKG / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    assert scalable.read_bytes() == svg.read_bytes(), "rerun packaging/render_icons.py after editing the SVG"
    for n in SIZES:
        png = PKG / "icons" / "hicolor" / f"{n}x{n}" / "apps" / f"{APP_ID}.png"
        assert png.is_file(), f"missing {png}: run packaging/render_icons.py"
        assert _png_size(png) == (n, n)


def test_render_icons_draws_the_svg(tmp_path: Path) -> None:
    pytest.importorskip("PySide6.QtSvg")
    import importlib.util

    spec = importlib.util.spec_from_file_location("_render_icons", PKG / "render_icons.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.render(PKG / "icons" / f"{APP_ID}.svg", tmp_path, sizes=(48,))
    assert _png_size(out[0]) == (48, 48)
    from PySide6.QtGui import QImage

    img = QImage(str(out[0]))
    centre = img.pixelColor(24, 24)
    corner = img.pixelColor(0, 0)
    assert corner.alpha() == 0 and centre.alpha() == 255  # rounded square on a transparent canvas


def test_bundle_scripts_parse_and_name_existing_files() -> None:
    for script in ("build_bundle.sh", "smoke_bundle.sh", "install-desktop-entry.sh"):
        r = subprocess.run(["sh", "-n", str(PKG / script)], capture_output=True, text=True)
        assert r.returncode == 0, f"{script}: {r.stderr}"
    spec = (PKG / "workbench.spec").read_text()
    assert "launcher.py" in spec and (PKG / "launcher.py").is_file()
    compile(spec, "workbench.spec", "exec")  # a spec is Python
    build = (PKG / "build_bundle.sh").read_text()
    for name in (f"{APP_ID}.desktop", f"{APP_ID}.metainfo.xml", "install-desktop-entry.sh", "workbench.spec"):
        assert (PKG / name).is_file()
        assert name in build or name.replace(APP_ID, "$ID") in build, name
