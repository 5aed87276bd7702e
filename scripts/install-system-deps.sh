#!/bin/sh
# Debian packages the workbench needs; installs only what is missing (idempotent, quiet when done).
set -e
PKGS="python3-venv libportaudio2 portaudio19-dev libsndfile1 libfluidsynth3 ffmpeg xvfb xauth \
libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
libxcb-xinerama0 libxcb-randr0 libxcb-shape0 libegl1 libgl1 libfontconfig1 libdbus-1-3 \
chromium"  # chromium: headless check of the HTML feature report (tests skip it when absent)
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
