#!/bin/sh
# Add the unpacked bundle to the desktop menu for this user (run from inside the bundle folder):
#   ./install-desktop-entry.sh            installs into ~/.local (bin symlink, menu entry, icons, metainfo)
#   ./install-desktop-entry.sh --remove   takes them out again
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ID=io.github.sae_audio_workbench
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
BIN=$HOME/.local/bin
if [ "${1:-}" = "--remove" ]; then
  rm -f "$BIN/sae-audio-workbench" "$DATA/applications/$ID.desktop" "$DATA/metainfo/$ID.metainfo.xml"
  find "$DATA/icons/hicolor" -name "$ID.*" -delete 2>/dev/null || true
  echo "removed"
  exit 0
fi
mkdir -p "$BIN" "$DATA/applications" "$DATA/metainfo" "$DATA/icons"
ln -sf "$HERE/sae-audio-workbench" "$BIN/sae-audio-workbench"
sed "s|^Exec=sae-audio-workbench|Exec=\"$HERE/sae-audio-workbench\"|; s|^TryExec=.*|TryExec=$HERE/sae-audio-workbench|" \
  "$HERE/$ID.desktop" > "$DATA/applications/$ID.desktop"
cp "$HERE/$ID.metainfo.xml" "$DATA/metainfo/"
cp -r "$HERE/icons/hicolor" "$DATA/icons/"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" 2>/dev/null || true
echo "installed: $BIN/sae-audio-workbench and the menu entry '$(sed -n 's/^Name=//p' "$HERE/$ID.desktop")'"
