#!/bin/sh
# Build the desktop bundle (PyInstaller, one folder) with one command: `make bundle` runs this.
#
#   packaging/build_bundle.sh            -> build/bundle/dist/sae-audio-workbench/ (+ a .tar.gz of it)
#
# Why a separate venv (build/bundle-venv): the development venv's torch is the PyPI CUDA build, whose
# libtorch_cuda.so is a hard link-time dependency (NEEDED) of torch's own libraries and pulls in
# ~3 GB of nvidia-* libraries; they cannot be left out of a bundle of that build. The bundle instead
# uses torch's CPU-only wheel (the app decodes and trains small SAEs on the CPU; GPU training is for
# `workbench train --device cuda` from a wheel install). The venv is kept between builds: only the
# project itself is reinstalled, so a rebuild after a code change costs the PyInstaller run.
#
# Environment:
#   PYTHON=python3.11         interpreter for the bundle venv (must be built with --enable-shared)
#   TORCH_WHEEL=path.whl      a CPU torch wheel to use; default: a torch-*+cpu wheel found in
#                             $PIP_FIND_LINKS, else torch from https://download.pytorch.org/whl/cpu
#   BUNDLE_VENV, BUNDLE_OUT   where the venv and the bundle go (default build/bundle-venv, build/bundle)
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3.11}
VENV=${BUNDLE_VENV:-$REPO/build/bundle-venv}
OUT=${BUNDLE_OUT:-$REPO/build/bundle}
NAME=sae-audio-workbench
t0=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP="$VENV/bin/python -m pip"

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.version.cuda is None else 1)" 2>/dev/null; then
  wheel=${TORCH_WHEEL:-}
  if [ -z "$wheel" ]; then
    for d in $(echo "${PIP_FIND_LINKS:-}" | tr ' ' '\n'); do
      d=${d#file://}
      for w in "$d"/torch-*+cpu-cp311-*linux*x86_64.whl; do [ -f "$w" ] && wheel=$w; done
    done
  fi
  if [ -n "$wheel" ]; then
    echo "installing CPU torch from $wheel"
    $PIP install -q "$wheel"
  else
    echo "installing CPU torch from download.pytorch.org"
    $PIP install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

# The project and its dependencies (torch is already satisfied by the CPU build), then the project
# itself again from the current tree: a regular (non-editable) install, so the wheel's
# workbench/_resources (codec weights, default SAE, ...) is what the bundle collects.
stamp="$VENV/.deps-$(sha256sum "$REPO/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing dependencies into $VENV"
  $PIP install -q "$REPO[bundle]"
  touch "$stamp"
fi
$PIP install -q --no-deps --force-reinstall "$REPO"
"$VENV/bin/python" -c "import torch; assert torch.version.cuda is None, 'the bundle venv must hold the CPU torch'"

echo "running PyInstaller"
rm -rf "$OUT/dist/$NAME"
cd "$REPO/packaging"
OMP_NUM_THREADS=1 "$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$OUT/dist" --workpath "$OUT/work" workbench.spec

APP="$OUT/dist/$NAME"
ID=io.github.sae_audio_workbench
cp "$REPO/packaging/$ID.desktop" "$REPO/packaging/$ID.metainfo.xml" "$REPO/packaging/install-desktop-entry.sh" "$APP/"
mkdir -p "$APP/icons"
cp -r "$REPO/packaging/icons/hicolor" "$APP/icons/"
(cd "$OUT/dist" && tar -czf "$OUT/$NAME-linux-x86_64.tar.gz" "$NAME")

t1=$(date +%s)
echo "bundle: $APP"
echo "size: $(du -sh "$APP" | cut -f1) on disk, $(du -sh "$OUT/$NAME-linux-x86_64.tar.gz" | cut -f1) as .tar.gz"
echo "build time: $((t1 - t0)) s"
echo "smoke test: packaging/smoke_bundle.sh"
