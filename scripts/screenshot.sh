#!/usr/bin/env bash
# Render an HTML report to PNG with headless Chromium (no network needed: reports are
# self-contained). Usage: scripts/screenshot.sh REPORT.html OUT.png [WIDTH] [HEIGHT]
#   WIDTH defaults to 1280 (use 390 for a phone), HEIGHT to 2400.
# Finds chromium, chromium-browser, google-chrome or $CHROMIUM; exit 3 when none is installed
# (install one with `apt-get install -y chromium`).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH] [HEIGHT]" >&2
    exit 2
fi
html="$1"
png="$2"
width="${3:-1280}"
height="${4:-2400}"

if [[ ! -f "$html" ]]; then
    echo "screenshot: $html: file not found" >&2
    exit 2
fi

browser="${CHROMIUM:-}"
if [[ -n "$browser" ]] && ! command -v "$browser" >/dev/null 2>&1; then
    echo "screenshot: CHROMIUM=$browser: not an executable" >&2
    exit 3
fi
if [[ -z "$browser" ]]; then
    for candidate in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$candidate" >/dev/null 2>&1; then
            browser="$candidate"
            break
        fi
    done
fi
if [[ -z "$browser" ]]; then
    echo "screenshot: no chromium found (apt-get install -y chromium, or set CHROMIUM)" >&2
    exit 3
fi

abs_html="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
mkdir -p "$(dirname "$png")"
abs_png="$(cd "$(dirname "$png")" && pwd)/$(basename "$png")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT

rm -f "$abs_png"
"$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --hide-scrollbars --no-first-run --no-default-browser-check \
    --user-data-dir="$profile" --window-size="${width},${height}" \
    --screenshot="$abs_png" "file://$abs_html" >"$profile/chromium.log" 2>&1 || {
    echo "screenshot: $browser failed:" >&2
    tail -20 "$profile/chromium.log" >&2
    exit 1
}
if [[ ! -s "$abs_png" ]]; then
    echo "screenshot: $browser wrote no image" >&2
    tail -20 "$profile/chromium.log" >&2
    exit 1
fi
echo "$abs_png"
