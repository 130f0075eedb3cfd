#!/usr/bin/env bash
# Screenshots of reports for long windows (a quarter and a year by default) at desktop and
# phone width, for a local git clone: runs `insights demo --repo` for each window, then
# scripts/screenshot.sh on the service report at 1280 and 390 px.
# Usage: scripts/screenshot_windows.sh REPO OUT_DIR [TAG_PATTERN] [WINDOW ...]
#   TAG_PATTERN: a glob for release tags, '' for the default (version tags such as v1.2.3 or
#   1.2, never pre-releases); WINDOWS default to 2025-Q3 2025.
# Writes OUT_DIR/<window>-desktop.png and OUT_DIR/<window>-phone.png and prints their paths.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 REPO OUT_DIR [TAG_PATTERN] [WINDOW ...]" >&2
    exit 2
fi
repo="$1"
out="$2"
tags="${3:-}"
shift $(( $# >= 3 ? 3 : 2 ))
windows=("$@")
if [[ ${#windows[@]} -eq 0 ]]; then
    windows=(2025-Q3 2025)
fi
here="$(cd "$(dirname "$0")" && pwd)"
insights="${INSIGHTS:-$here/../.venv/bin/insights}"
if [[ ! -d "$repo" ]]; then
    echo "screenshot_windows: $repo: not a directory" >&2
    exit 2
fi
mkdir -p "$out"
service="$(basename "$(cd "$repo" && pwd)")"
for window in "${windows[@]}"; do
    reports="$out/reports-$window"
    tag_args=()
    if [[ -n "$tags" ]]; then
        tag_args=(--tags "$tags")
    fi
    index="$("$insights" demo --repo "$repo" "${tag_args[@]}" --window "$window" --out "$reports")"
    page="$(dirname "$index")/$window/service-$service.html"
    if [[ ! -f "$page" ]]; then
        echo "screenshot_windows: no report $page" >&2
        exit 1
    fi
    "$here/screenshot.sh" "$page" "$out/$window-desktop.png" 1280 3400
    "$here/screenshot.sh" "$page" "$out/$window-phone.png" 390 7000
done
