"""The weekly run of a fleet on workers: wall time with 1, 2 and 4 worker processes, and a
round with one worker killed -9 midway (no job lost, none done twice), on PostgreSQL.

Builds a fresh PostgreSQL database with `--tenants` tenants (default 500) × `--services`
services (default 5, one team), each with a synthetic week of commits and deployments
(set-based SQL), every tenant routed to a local OpenAI-compatible server that answers after
`--llm-latency` seconds (default 1.0) and refuses more than `--llm-cap` requests at once
(429; default 16, also every tenant's `llm.max_concurrency`, so the shared limiter holds the
fleet to it), and a local Slack incoming webhook. A job narrates its 7 scopes up to
`--parallel-narrations` (`llm.parallel_narrations`, default 4) at a time: 4 workers ask for
at most 16 calls at once, so with the default cap the model server admits what the workers
ask and the rounds measure the workers (a lower cap measures the limiter instead).

Each round deletes the stored narratives (so every scope calls the model again), enqueues
one weekly job per tenant (INSIGHTS_QUEUE=procrastinate) and starts N `insights worker
--queue reports` processes; the round ends when every job has finished. Printed per round:
wall time, speed-up over one worker, model calls (peak in flight, 429s), Slack digests, the
load average before and after, and for the kill round: jobs that ran more than once or
never, digests sent twice.

    INSIGHTS_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python benchmarks/fleet.py [--tenants 500] [--workers 1,2,4] [--no-kill]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pg_database import postgres_database
from sqlalchemy import delete, func, select, text

from insights.config import OrgConfig, Settings, TenantConfig
from insights.store import registry
from insights.store.db import engine_for, migrate, unit_of_work
from insights.store.models import JobRun, Narrative

AT = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)  # Monday: reports the ISO week 2026-W45
# grounded in every scope's facts: each facts document has the window's length in days
ANSWER = {
    "summary": "This report covers a window of 7 days of delivery data.",
    "highlights": [],
    "recommendations": [
        {
            "title": "Keep deploying in small batches",
            "why": "A steady cadence over the 7 days keeps changes small.",
            "metric": "deployment_frequency",
            "capability": "working in small batches",
            "evidence": ["window days: 7"],
        }
    ],
}
DATA_SQL = """
INSERT INTO commits (tenant_id, service_id, sha, authored_at, committed_at, author, message,
                     parents)
SELECT s.tenant_id, s.id, md5(s.id || ':' || i), t, t, 'ada', 'change ' || i, '[]'::json
FROM services s CROSS JOIN generate_series(0, 39) AS i
CROSS JOIN LATERAL (SELECT timestamptz '2026-10-26' + i * interval '5 hours' AS t) AS w;

INSERT INTO deployments (tenant_id, service_id, external_id, environment, sha, status,
                         started_at, finished_at, commits_listed)
SELECT s.tenant_id, s.id, 'd-' || j, 'production', md5(s.id || ':' || (4 * j + 3)), 'success',
       timestamptz '2026-10-26' + (4 * j + 3) * interval '5 hours' + interval '1 hour',
       timestamptz '2026-10-26' + (4 * j + 3) * interval '5 hours' + interval '2 hours', true
FROM services s CROSS JOIN generate_series(0, 9) AS j;

INSERT INTO deployment_commits (tenant_id, deployment_id, sha)
SELECT d.tenant_id, d.id, md5(d.service_id || ':' || (4 * j + k))
FROM deployments d
CROSS JOIN LATERAL (SELECT substr(d.external_id, 3)::int AS j) AS n
CROSS JOIN generate_series(0, 3) AS k;
"""


class _Model(ThreadingHTTPServer):
    def __init__(self, latency: float, cap: int) -> None:
        super().__init__(("127.0.0.1", 0), _ModelHandler)
        self.latency, self.cap = latency, cap
        self.lock = threading.Lock()
        self.in_flight = self.calls = self.refused = self.peak = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A worker killed -9 mid-call (the kill round) leaves its answer nowhere to go."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ModelHandler(BaseHTTPRequestHandler):
    server: _Model

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            if self.server.in_flight >= self.server.cap:
                self.server.refused += 1
                refuse = True
            else:
                refuse = False
                self.server.in_flight += 1
                self.server.calls += 1
                self.server.peak = max(self.server.peak, self.server.in_flight)
        if refuse:
            self._send(429, {"error": {"message": "too many requests"}}, {"Retry-After": "1"})
            return
        time.sleep(self.server.latency)
        with self.server.lock:
            self.server.in_flight -= 1
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1769500000,
            "model": "bench-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps(ANSWER)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 800, "completion_tokens": 120, "total_tokens": 920},
        }
        self._send(200, body)

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


class _Slack(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlackHandler)
        self.lock = threading.Lock()
        self.posts: Counter[str] = Counter()


class _SlackHandler(BaseHTTPRequestHandler):
    server: _Slack

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        header = next((b for b in payload.get("blocks", []) if b.get("type") == "header"), {})
        key = f"{self.path} {header.get('text', {}).get('text', '')}"
        with self.server.lock:
            self.server.posts[key] += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: Any) -> None:
        pass


def _serve(server: ThreadingHTTPServer) -> str:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _org(tenants: int, services: int, model_url: str, cap: int, parallel: int) -> OrgConfig:
    return OrgConfig(
        tenants=[
            TenantConfig.model_validate(
                {
                    "name": f"t{n:04d}",
                    "llm": {
                        "provider": "openai",
                        "model": "bench-model",
                        "base_url": f"{model_url}/v1",
                        "max_concurrency": cap,
                        "parallel_narrations": parallel,
                        "timeout_seconds": 30,
                    },
                    # one webhook per tenant, so the local Slack counts each tenant's digest
                    "slack": {"webhook_url_env": f"BENCH_SLACK_WEBHOOK_{n}"},
                    "teams": [{"name": "core"}],
                    "services": [{"name": f"s{k}", "team": "core"} for k in range(services)],
                }
            )
            for n in range(tenants)
        ]
    )


def _round(
    url: str, env: dict[str, str], org: OrgConfig, workers: int, kill: bool, stalled: float
) -> dict[str, Any]:
    from insights.ops.queue import enqueue_tenant_weekly

    engine = engine_for(url)
    with unit_of_work(engine) as session:
        session.execute(delete(Narrative))
        session.execute(delete(JobRun))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM procrastinate_jobs"))
    settings = Settings(database_url=url)
    for tenant in org.tenants:
        enqueue_tenant_weekly(engine, settings, tenant, AT)
    total = len(org.tenants)
    started = time.perf_counter()
    cmd = [
        str(Path(sys.executable).parent / "insights"),
        "worker",
        "--queue",
        "reports",
        "--stalled-seconds",
        str(stalled),
        "--heartbeat-seconds",
        str(stalled / 4),
    ]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    killed = False
    try:
        while True:
            with engine.connect() as conn:
                done = conn.execute(
                    text(
                        "SELECT count(*) FROM procrastinate_jobs"
                        " WHERE status IN ('succeeded', 'failed')"
                    )
                ).scalar_one()
            if kill and not killed and done >= total // 3:
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait(10)
                killed = True
            if done >= total:
                break
            time.sleep(0.5)
        wall = time.perf_counter() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    with unit_of_work(engine) as session:
        runs = session.execute(
            select(JobRun.run_key, JobRun.outcome, JobRun.detail).where(
                JobRun.job == "weekly-tenant"
            )
        ).all()
        narratives = session.scalar(select(func.count()).select_from(Narrative))
    return {
        "wall": wall,
        "runs": runs,
        "narratives": narratives,
        "killed": killed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--llm-latency", type=float, default=1.0)
    parser.add_argument("--llm-cap", type=int, default=16)
    parser.add_argument("--parallel-narrations", type=int, default=4)
    parser.add_argument("--stalled-seconds", type=float, default=5.0)
    parser.add_argument("--no-kill", action="store_true")
    args = parser.parse_args()
    base = os.environ.get("INSIGHTS_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set INSIGHTS_TEST_POSTGRES_URL (PostgreSQL) to run this benchmark")
    model, slack = _Model(args.llm_latency, args.llm_cap), _Slack()
    model_url, slack_url = _serve(model), _serve(slack)
    with postgres_database(base, "insights_fleet") as url:
        engine = engine_for(url)
        migrate(engine)
        org = _org(args.tenants, args.services, model_url, args.llm_cap, args.parallel_narrations)
        started = time.perf_counter()
        with unit_of_work(engine) as session:
            registry.apply_org(session, org, actor="bench")
        with engine.begin() as conn:
            for statement in filter(str.strip, DATA_SQL.split(";")):
                conn.execute(text(statement))
            conn.execute(text("ANALYZE"))
        print(
            f"{args.tenants} tenants × {args.services} services registered with a week of"
            f" history in {time.perf_counter() - started:.1f} s; model latency"
            f" {args.llm_latency} s, cap {args.llm_cap}, {args.parallel_narrations} narrations"
            " at once per job"
        )
        workdir = Path(tempfile.mkdtemp(prefix="fleet-"))
        env = {
            **os.environ,
            "INSIGHTS_DATABASE_URL": url,
            "INSIGHTS_QUEUE": "procrastinate",
            "INSIGHTS_REPORTS_DIR": str(workdir / "reports"),
            **{
                f"BENCH_SLACK_WEBHOOK_{n}": f"{slack_url}/services/T{n}/B0/bench"
                for n in range(args.tenants)
            },
        }
        env.pop("INSIGHTS_CONFIG", None)
        os.environ["INSIGHTS_QUEUE"] = "procrastinate"
        os.chdir(workdir)
        counts = [int(n) for n in args.workers.split(",")]
        rounds = [(n, False) for n in counts] + ([] if args.no_kill else [(max(counts), True)])
        baseline = None
        for workers, kill in rounds:
            model.calls = model.refused = model.peak = 0
            slack.posts.clear()
            load = os.getloadavg()[0]
            result = _round(url, env, org, workers, kill, args.stalled_seconds)
            wall = result["wall"]
            baseline = baseline or wall
            outcomes = Counter(outcome for _, outcome, _ in result["runs"])
            keys = Counter(key for key, _, _ in result["runs"])
            retried = sum(1 for _, _, d in result["runs"] if (d or {}).get("attempt", 0) > 0)
            twice = sum(1 for n in slack.posts.values() if n > 1)
            label = f"{workers} worker(s){' + kill -9' if kill else ''}"
            print(
                f"{label:>20}: {wall:7.1f} s  speed-up {baseline / wall:4.2f}x  jobs"
                f" {dict(outcomes)}  model calls {model.calls} (peak {model.peak}, 429s"
                f" {model.refused})  digests {sum(slack.posts.values())}  load"
                f" {load:.1f}→{os.getloadavg()[0]:.1f}"
            )
            if kill:
                missing = args.tenants - len(keys)
                print(
                    f"{'':>20}  worker killed: {result['killed']}; jobs never run {missing},"
                    f" retried after the kill {retried}; digests sent twice {twice}"
                )
        model.shutdown()
        slack.shutdown()


if __name__ == "__main__":
    main()
