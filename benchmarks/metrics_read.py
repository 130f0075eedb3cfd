"""GET /api/v1/metrics for one closed week on a big tenant, PostgreSQL: p50/p95 against today's
code path (recompute from the whole history) measured in the same run.

Builds a fresh PostgreSQL database with one tenant of `--services` services, `--commits`
commits (default 1,000,000) and `--deployments` successful production deployments (default
100,000, each listing the 10 commits it shipped: 1,000,000 links) spread over two years,
written set-based with `generate_series` (synthetic data; the metrics code reads it like any
other). Then, for `scope=service:svc-0` and one closed ISO week in the middle:

- reference: what the handler did before the read cache — `pipeline.compute_report` (the
  service's whole history into pandas) + `render_json` in a transaction, `--reference-runs`
  times (default 3; each takes seconds at this size);
- measured: `GET /api/v1/metrics` through the real ASGI app (FastAPI TestClient, auth, a
  transaction, the read cache), `--reads` times (default 200) after one first read.

Prints p50/p95 of both and their ratio. The target is a p95 ≤ 100 ms. The database is dropped.

    INSIGHTS_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python benchmarks/metrics_read.py [--commits 1000000] [--deployments 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from insights import pipeline
from insights.api.auth import create_token
from insights.deliver.text import render_json
from insights.metrics.result import Scope
from insights.metrics.windows import parse_window
from insights.store.db import dispose_engine, engine_for, migrate, normalize_url, unit_of_work
from insights.store.repository import TenantRepository
from insights.timeutil import now

WINDOW = "2025-W10"
SQL = """
INSERT INTO commits (tenant_id, service_id, sha, authored_at, committed_at, author, message,
                     parents)
SELECT :tenant, :first_service + (i / 10) % :services, md5(i::text),
       :start + i * :step, :start + i * :step, 'ada', 'change ' || i, '[]'::json
FROM generate_series(0, :commits - 1) AS i;

INSERT INTO deployments (tenant_id, service_id, external_id, environment, sha, status,
                         started_at, finished_at, commits_listed)
SELECT :tenant, :first_service + j % :services, 'd-' || j, 'production',
       md5((10 * j + 9)::text), 'success',
       :start + (10 * j + 9) * :step + interval '30 minutes',
       :start + (10 * j + 9) * :step + interval '1 hour', true
FROM generate_series(0, :deployments - 1) AS j;

INSERT INTO deployment_commits (tenant_id, deployment_id, sha)
SELECT :tenant, d.id, md5((10 * j + k)::text)
FROM generate_series(0, :deployments - 1) AS j
JOIN deployments d ON d.tenant_id = :tenant AND d.external_id = 'd-' || j
CROSS JOIN generate_series(0, 9) AS k;
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def load(url: str, services: int, commits: int, deployments: int) -> tuple[str, int]:
    engine = engine_for(url)
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, "big", create=True)
        ids = [repo.ensure_service(f"svc-{n}")[0].id for n in range(services)]
        token = create_token(session, "big", "bench")
        tenant_id = repo.tenant_id
    assert ids == list(range(ids[0], ids[0] + services))
    span_seconds = 2 * 365 * 86400
    params = {
        "tenant": tenant_id,
        "first_service": ids[0],
        "services": services,
        "commits": commits,
        "deployments": deployments,
        "start": "2024-01-01T00:00:00+00:00",
        "step": f"{span_seconds / commits} seconds",
    }
    sql = SQL.replace(":start", "CAST(:start AS timestamptz)").replace(
        ":step", "CAST(:step AS interval)"
    )
    with engine.begin() as conn:
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(text(statement), params)
        conn.execute(text("ANALYZE"))
    return token, tenant_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--commits", type=int, default=1_000_000)
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--reference-runs", type=int, default=3)
    args = parser.parse_args()
    base = os.environ.get("INSIGHTS_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set INSIGHTS_TEST_POSTGRES_URL (PostgreSQL) to run this benchmark")
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    name = f"insights_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalize_url(base)).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(engine_for(url))
        started = time.perf_counter()
        token, _ = load(url, args.services, args.commits, args.deployments)
        print(
            f"loaded {args.commits:,} commits, {args.deployments:,} deployments,"
            f" {10 * args.deployments:,} links in {time.perf_counter() - started:.1f} s"
        )
        window = parse_window(WINDOW, now())
        scope = Scope(kind="service", name="svc-0")

        reference: list[float] = []
        body = ""
        for _ in range(args.reference_runs):
            t0 = time.perf_counter()
            with unit_of_work(engine_for(url)) as session:
                report = pipeline.compute_report(session, "big", scope, window, history=1)
                body = render_json(report)
            reference.append(time.perf_counter() - t0)

        from fastapi.testclient import TestClient

        from insights.api.app import create_app
        from insights.config import Settings

        client = TestClient(create_app(Settings(database_url=url, config=None)))
        headers = {"Authorization": f"Bearer {token}"}
        params = {"scope": "service:svc-0", "window": WINDOW}
        first = client.get("/api/v1/metrics", params=params, headers=headers)
        assert first.status_code == 200, first.text
        assert first.text == body, "the served document differs from the computed one"
        measured: list[float] = []
        for _ in range(args.reads):
            t0 = time.perf_counter()
            response = client.get("/api/v1/metrics", params=params, headers=headers)
            measured.append(time.perf_counter() - t0)
            assert response.status_code == 200
        deployments = first.json()["deployment_count"]
        print(f"window {WINDOW}, scope service:svc-0: {deployments} deployments in the week")
        for label, samples in (("reference (recompute)", reference), ("GET (read path)", measured)):
            print(
                f"{label:>22}: n={len(samples):4d}  p50 {percentile(samples, 0.5) * 1000:9.1f} ms"
                f"  p95 {percentile(samples, 0.95) * 1000:9.1f} ms"
            )
        ratio = statistics.median(reference) / statistics.median(measured)
        print(f"ratio p50 reference / read path: {ratio:.0f}x")
        print(f"p95 target <= 100 ms: {'met' if percentile(measured, 0.95) <= 0.1 else 'MISSED'}")
    finally:
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
