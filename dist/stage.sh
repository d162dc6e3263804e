#!/usr/bin/env bash
# Lays out an installed unclip under PREFIX (usage: dist/stage.sh BINARY PREFIX): the
# binary in PREFIX/bin, the shipped model in PREFIX/share/unclip/model (where the binary
# looks first, relative to itself), the desktop entry, icons, man page and docs. The Debian
# package stages into <root>/usr, the relocatable tarball into unclip-<version>/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$1"
prefix="$2"
share="$prefix/share"

install -d "$prefix/bin" "$share/unclip" "$share/applications" "$share/man/man1" "$share/doc/unclip"
# Symbols and debug info are a quarter of the build (155 → 121 MB); an installed binary needs neither.
install -m 0755 "$bin" "$prefix/bin/unclip"
strip "$prefix/bin/unclip" 2>/dev/null || true
cp -r assets/model "$share/unclip/model"
chmod -R u=rwX,go=rX "$share/unclip/model"
install -m 0644 dist/unclip.desktop "$share/applications/unclip.desktop"
for s in 16 32 48 64 128 256; do
  install -D -m 0644 "dist/icons/unclip-$s.png" "$share/icons/hicolor/${s}x${s}/apps/unclip.png"
done
install -D -m 0644 dist/icons/unclip.svg "$share/icons/hicolor/scalable/apps/unclip.svg"
install -m 0644 README.md "$share/doc/unclip/README.md"
install -m 0644 dist/copyright "$share/doc/unclip/copyright"

# The man page is the binary's own --help, for the app and each command.
man="$share/man/man1/unclip.1"
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
{
  echo ".TH UNCLIP 1 \"$(date -u +%Y-%m-%d)\" \"unclip $("$bin" --version | cut -d' ' -f2)\" \"User Commands\""
  echo ".SH NAME"
  echo "unclip \\- unCLIP (DALL\\(pcE 2) image generation: text to image, variations, interpolation, text diffs"
  echo ".SH SYNOPSIS"
  echo ".B unclip"
  echo "[\\fIOPTIONS\\fR] [\\fIIMAGE\\fR...]"
  echo ".br"
  echo ".B unclip"
  echo "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]"
  echo ".SH DESCRIPTION"
  echo "Without a command, opens the desktop app (with one image: its variations; with two: an interpolation between them)."
  echo ".PP"
  echo ".nf"
  "$bin" --help | roff
  echo ".fi"
  for cmd in $("$bin" --help | awk '/^Commands:/{on=1; next} /^$/{on=0} on && $1 != "help" {print $1}'); do
    echo ".SH \"unclip $cmd\""
    echo ".nf"
    "$bin" "$cmd" --help | roff
    echo ".fi"
  done
  echo ".SH FILES"
  echo ".TP"
  echo ".I ../share/unclip/model"
  echo "The shipped model, relative to the binary; then /usr/share/unclip/model. \$UNCLIP_MODEL overrides both."
} >"$man"
gzip -9n "$man"
