#!/bin/sh
# Smoke-test the built bundle (packaging/build_bundle.sh) the way a user would run it: from a folder
# outside the source tree, with a fresh HOME (no settings, no caches), no PYTHONPATH and no
# WORKBENCH_RESOURCES, offscreen. Checks `codecs` (embedded codec weights found in the bundle), then
# `--smoke-test`: the main window opens with the defaults, every view fills, an edit is applied and the
# steered clip decoded; exit 0.
#
#   packaging/smoke_bundle.sh [BUNDLE_DIR] [extra app arguments, e.g. --sae DIR]
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
APP=${1:-$REPO/build/bundle/dist/sae-audio-workbench}
[ $# -gt 0 ] && shift
EXE="$APP/sae-audio-workbench"
[ -x "$EXE" ] || { echo "error: no bundle at $APP (run make bundle)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
run() {
  env -i PATH=/usr/bin:/bin HOME="$TMP/home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
    OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$EXE" "$@"
}
t0=$(date +%s)
run --version
run codecs > "$TMP/codecs.txt"
cat "$TMP/codecs.txt"
grep -q "^default .* present" "$TMP/codecs.txt" || { echo "error: the bundle's default codec weights are missing" >&2; exit 1; }
if [ $# -eq 0 ] && [ ! -f "$APP/_internal/workbench/_resources/saes/default/cfg.json" ]; then
  # No default SAE shipped yet: make one with the bundle itself (synthetic corpus -> tiny SAE), which
  # also exercises FluidSynth, the activation store and training inside the frozen app.
  echo "note: the bundle has no default SAE yet; training a tiny one with the bundle for the smoke test"
  run data synth -o "$TMP/corpus" --n 6 --seed 1 --kinds note,chord,texture --no-progress
  run train "$TMP/corpus" --d-sae 64 --k 8 --steps 40 --batch-size 256 --threads 2 -o "$TMP/sae"
  set -- --sae "$TMP/sae"
fi
run --smoke-test "$@"
echo "bundle smoke test passed in $(( $(date +%s) - t0 )) s"
