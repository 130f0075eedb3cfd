#!/usr/bin/env bash
# Start the app exactly as docker-compose.yml's `app` service does — migrations
# (`insights init`), then `insights serve` (API + scheduler) — against a real PostgreSQL,
# wait until GET /healthz answers 200, print its JSON, then stop the app (or keep it running).
#
# Usage: scripts/start_like_compose.sh POSTGRES_URL [PORT]
#   KEEP_RUNNING=1      leave the app running in the foreground after the check
#   WAIT_FOR_JOB=sync   also wait until /healthz shows a successful run of that job
#   HEALTH_TIMEOUT=90   seconds to wait
# Example: scripts/start_like_compose.sh postgresql+psycopg://postgres@127.0.0.1:5432/insights
set -euo pipefail
url="${1:?usage: $0 POSTGRES_URL [PORT]}"
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
port="${2:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
export INSIGHTS_DATABASE_URL="$url"
export PATH="$PWD/.venv/bin:$PATH"

# The compose command, with 127.0.0.1 instead of 0.0.0.0.
sh -c "insights init && exec insights serve --host 127.0.0.1 --port $port" &
app=$!
trap 'kill -TERM $app 2>/dev/null; wait $app 2>/dev/null || true' EXIT

"$PY" - "$port" "${HEALTH_TIMEOUT:-90}" "${WAIT_FOR_JOB:-}" "$app" <<'PYEOF'
import json, os, sys, time, urllib.request
port, timeout, job, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
deadline = time.monotonic() + timeout
body = None
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("start_like_compose: the app exited before /healthz answered")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as r:
            body = json.load(r)
            if r.status == 200 and (
                not job
                or body.get("scheduler", {}).get("last_runs", {}).get(job, {}).get("outcome")
                == "success"
            ):
                print(json.dumps(body, indent=2))
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(f"start_like_compose: /healthz not ready after {timeout:.0f}s (last: {body})")
PYEOF
echo "start_like_compose: healthy on http://127.0.0.1:$port/healthz"
if [[ "${KEEP_RUNNING:-0}" == 1 ]]; then
    wait $app
fi
