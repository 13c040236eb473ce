#!/usr/bin/env bash
# Makes sure a Chromium for the browser test exists: $STARGAN_CHROME, Debian's chromium or
# chromium-headless-shell; otherwise installs Debian's package with apt-get (as root, or
# through sudo).
set -euo pipefail
if [ -n "${STARGAN_CHROME:-}" ] && [ -x "$STARGAN_CHROME" ]; then exit 0; fi
for c in /usr/bin/chromium /usr/bin/chromium-headless-shell /usr/bin/chromium-browser; do
  [ -x "$c" ] && exit 0
done
echo ">> installing Debian's chromium for the browser test (apt-get)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
