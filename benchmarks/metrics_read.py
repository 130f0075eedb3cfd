"""GET /api/v1/metrics on a big tenant, PostgreSQL: p50/p95 of the read path against the
whole-history recompute, measured in the same run, for a closed week (served from its snapshot
after the first read), the week still open between writes (served from its snapshot too: no
write since reaches it), the week still open after a write of today before each read (computed,
its previous week and baseline from stored window results), the first read of a closed week
after a write of today (which reaches no further back than the deployment before it: the
snapshot stays valid), after a late deployment to staging inside that closed week (it
changes no metric and reaches nothing: still stored), and after a late production deployment
into that week (it reaches the week: computed, the baseline before it from stored window
results).

Builds a fresh PostgreSQL database with one tenant of `--services` services, `--commits`
commits (default 1,000,000) and `--deployments` successful production deployments (default
100,000, each listing the 10 commits it shipped: 1,000,000 links) spread over the two years
up to now, one merged change per deployment (listing its 10 commits, merged as the sha it
deploys, with every review stage) and one incident per 50 deployments (linked to it,
resolved two hours later), written set-based with `generate_series` (synthetic data; the
metrics code reads it like any other). Then, for `scope=service:svc-0`:

- reference: `pipeline.compute_report(..., whole_history=True)` (the service's whole history
  into pandas, what every computed read did before window-bounded reads) + `render_json`, in a
  transaction, `--reference-runs` times per window (default 3; seconds each at this size), in
  a child process (a whole-history load leaves a process's heap slow for later reads);
- closed: `GET /api/v1/metrics` of the week 52 weeks ago through the real ASGI app (FastAPI
  TestClient, auth, a transaction, the read cache), `--reads` times (default 200) after one
  first read;
- open: `GET` of the current ISO week, `--computed-reads` times (default 30): the first read
  computes it from the window-bounded rows, the next ones are served as stored;
- open after a write: one deployment recorded for svc-0 today (not timed; it lists no
  commit), then `GET` of the current week (the write reaches it: computed, and compared with
  a reference computed after the last write), `--computed-reads` times;
- after a write: one deployment recorded for svc-0 today (not timed), then `GET` of the
  closed week (its snapshot is still valid), `--computed-reads` times;
- late staging: one deployment to `staging` recorded for svc-0 inside the closed week (not
  timed; it changes no metric, so it reaches nothing: the snapshot stays valid), then `GET`
  of the closed week, `--computed-reads` times;
- late write: one production deployment recorded for svc-0 inside the closed week (not
  timed; it reaches the week: its snapshot and stored window results are stale), then `GET`
  of the closed week (computed, the baseline before it from stored window results; each read
  counts one more deployment, the last compared with a reference computed after the last
  write), `--computed-reads` times.

Every computed document is compared with the reference's bytes. Prints p50/p95 of each and
their ratios. The target is a p95 <= 100 ms. The database is dropped.

    INSIGHTS_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python benchmarks/metrics_read.py [--commits 1000000] [--deployments 100000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta

from pg_database import postgres_database
from sqlalchemy import text

from insights import pipeline
from insights.api.auth import create_token
from insights.deliver.text import render_json
from insights.metrics.result import Scope, Window
from insights.metrics.windows import current_week, parse_window
from insights.model import DeploymentEvent
from insights.store.db import dispose_engine, engine_for, migrate, unit_of_work
from insights.store.repository import TenantRepository
from insights.timeutil import now

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

INSERT INTO changes (tenant_id, service_id, external_id, title, opened_at, first_commit_at,
                     first_review_at, approved_at, merged_at, merge_sha, commits)
SELECT :tenant, d.service_id, 'pr-' || j, 'change ' || j,
       d.finished_at - interval '6 hours', d.finished_at - interval '8 hours',
       d.finished_at - interval '4 hours', d.finished_at - interval '3 hours',
       d.finished_at - interval '2 hours', d.sha,
       (SELECT json_agg(md5((10 * j + k)::text) ORDER BY k) FROM generate_series(0, 9) AS k)
FROM generate_series(0, :deployments - 1) AS j
JOIN deployments d ON d.tenant_id = :tenant AND d.external_id = 'd-' || j;

INSERT INTO change_commits (change_id, sha, tenant_id, service_id)
SELECT c.id, e.value, c.tenant_id, c.service_id
FROM changes c, json_array_elements_text(c.commits) AS e
WHERE c.tenant_id = :tenant;

INSERT INTO incidents (tenant_id, service_id, external_id, opened_at, resolved_at, severity,
                       deployment_external_id, title)
SELECT :tenant, d.service_id, 'INC-' || j, d.finished_at + interval '30 minutes',
       d.finished_at + interval '150 minutes', 'sev2', d.external_id, 'errors after d-' || j
FROM generate_series(0, :deployments - 1, 50) AS j
JOIN deployments d ON d.tenant_id = :tenant AND d.external_id = 'd-' || j;
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def load(
    url: str, services: int, commits: int, deployments: int, start: datetime
) -> tuple[str, int]:
    engine = engine_for(url)
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, "big", create=True)
        ids = [repo.ensure_service(f"svc-{n}")[0].id for n in range(services)]
        token = create_token(session, "big", "bench")
        tenant_id = repo.tenant_id
    assert ids == list(range(ids[0], ids[0] + services))
    span_seconds = (now() - start).total_seconds()  # the history ends now
    params = {
        "tenant": tenant_id,
        "first_service": ids[0],
        "services": services,
        "commits": commits,
        "deployments": deployments,
        "start": start.isoformat(),
        "step": f"{span_seconds / commits} seconds",
    }
    sql = SQL.replace(":start", "CAST(:start AS timestamptz)").replace(
        ":step", "CAST(:step AS interval)"
    )
    with engine.begin() as conn:
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(text(statement), params)
        conn.execute(text("ANALYZE"))
    # what autovacuum does soon after a bulk load: the visibility map that index-only
    # lookups need (both paths read the same vacuumed tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return token, tenant_id


def _reference(url: str, label: str, runs: int) -> tuple[list[float], str]:
    """The whole-history computation of svc-0's `label` document, `runs` times (seconds)."""
    import scipy.stats  # noqa: F401 (imports are not what is measured)

    import insights.metrics.compute  # noqa: F401

    window = parse_window(label, now())
    scope = Scope(kind="service", name="svc-0")
    samples, body = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        with unit_of_work(engine_for(url)) as session:
            report = pipeline.compute_report(
                session, "big", scope, window, history=1, whole_history=True
            )
            body = render_json(report)
        samples.append(time.perf_counter() - t0)
    dispose_engine(url)
    return samples, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--commits", type=int, default=1_000_000)
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--reference-runs", type=int, default=3)
    parser.add_argument("--computed-reads", type=int, default=30)
    args = parser.parse_args()
    base = os.environ.get("INSIGHTS_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set INSIGHTS_TEST_POSTGRES_URL (PostgreSQL) to run this benchmark")
    with postgres_database(base) as url:
        migrate(engine_for(url))
        started = time.perf_counter()
        history_start = current_week(now()).start - timedelta(weeks=104)
        token, _ = load(url, args.services, args.commits, args.deployments, history_start)
        print(
            f"loaded {args.commits:,} commits, {args.deployments:,} deployments,"
            f" {10 * args.deployments:,} links, {args.deployments:,} changes,"
            f" {(args.deployments + 49) // 50:,} incidents in {time.perf_counter() - started:.1f} s"
        )
        closed = current_week(now() - timedelta(weeks=52))
        open_window = current_week(now())

        # the references run in a child process: a whole-history load leaves this process's
        # heap large and fragmented, which slows every later read in it about twofold
        spawn = multiprocessing.get_context("spawn")

        def reference(window: Window) -> tuple[list[float], str]:
            with spawn.Pool(1) as pool:
                return pool.apply(_reference, (url, window.label, args.reference_runs))

        from fastapi.testclient import TestClient

        from insights.api.app import create_app, preload_for_serving
        from insights.config import Settings

        client = TestClient(create_app(Settings(database_url=url, config=None)))
        preload_for_serving()  # as `insights serve` does before it answers
        headers = {"Authorization": f"Bearer {token}"}

        def get(window: Window) -> tuple[float, str]:
            params = {"scope": "service:svc-0", "window": window.label}
            t0 = time.perf_counter()
            response = client.get("/api/v1/metrics", params=params, headers=headers)
            elapsed = time.perf_counter() - t0
            assert response.status_code == 200, response.text
            return elapsed, response.text

        rows: list[tuple[str, list[float], list[float]]] = []
        closed_reference, body = reference(closed)
        _, first = get(closed)
        assert first == body, "the served closed-week document differs from the reference"
        rows.append(("closed week", closed_reference, [get(closed)[0] for _ in range(args.reads)]))
        print(
            f"closed {closed.label}: {json.loads(body)['deployment_count']} deployments;"
            f" open {open_window.label}"
        )

        open_reference, open_body = reference(open_window)
        open_reads = []
        for _ in range(args.computed_reads):
            elapsed, text_ = get(open_window)
            assert text_ == open_body, "the open-week document differs from the reference"
            open_reads.append(elapsed)
        rows.append(("open week", open_reference, open_reads))

        def write(external_id: str, environment: str, finished_at: datetime) -> None:
            """One successful deployment of svc-0 that lists no commit (not timed)."""
            with unit_of_work(engine_for(url)) as session:
                repo = TenantRepository.open(session, "big")
                deployment = DeploymentEvent(
                    service="svc-0",
                    id=external_id,
                    environment=environment,
                    sha=uuid.uuid5(uuid.NAMESPACE_URL, external_id).hex.ljust(40, "0"),
                    status="success",
                    finished_at=finished_at,
                    commits=(),
                )
                pipeline.store_events(repo, [deployment], create_services=False)

        def written_reads(label: str, window: Window, first: str, prefix: str, at) -> None:
            """A production deployment at `at(n)` before each GET of `window`: each read
            counts one more deployment than `first` did, the last equals a reference computed
            after the last write."""
            measured: list[tuple[float, str]] = []
            for n in range(args.computed_reads):
                write(f"{prefix}-{n}", "production", at(n))
                measured.append(get(window))
            written_reference, last = reference(window)
            assert measured[-1][1] == last, f"{label}: the last document differs"
            counted = [json.loads(b)["deployment_count"] for _, b in measured]
            start = json.loads(first)["deployment_count"] + 1
            assert counted == list(range(start, start + len(counted))), (
                f"{label}: each write shows in the next read"
            )
            rows.append((label, written_reference, [t for t, _ in measured]))

        written_reads("open, written", open_window, open_body, "today", lambda n: now())

        def unchanged_reads(label: str, environment: str, prefix: str, at) -> None:
            """A deployment at `at(n)` before each GET of the closed week, which it leaves
            unchanged: served as stored."""
            measured = []
            for n in range(args.computed_reads):
                write(f"{prefix}-{n}", environment, at(n))
                elapsed, text_ = get(closed)
                assert text_ == body, f"{label}: the closed-week document differs"
                measured.append(elapsed)
            rows.append((label, closed_reference, measured))

        late = closed.start + timedelta(days=2)
        unchanged_reads("after a write", "production", "later", lambda n: now())
        unchanged_reads(
            "late staging", "staging", "late-staging", lambda n: late + timedelta(minutes=n)
        )
        written_reads(
            "late write", closed, body, "late-production", lambda n: late + timedelta(minutes=n)
        )

        for label, ref, measured in rows:
            print(
                f"{label:>14}: reference n={len(ref):3d} p50 {percentile(ref, 0.5) * 1000:8.1f} ms"
                f" p95 {percentile(ref, 0.95) * 1000:8.1f} ms | GET n={len(measured):3d}"
                f" p50 {percentile(measured, 0.5) * 1000:7.1f} ms"
                f" p95 {percentile(measured, 0.95) * 1000:7.1f} ms"
                f" | ratio p50 {statistics.median(ref) / statistics.median(measured):5.0f}x"
                f" | p95 <= 100 ms: {'met' if percentile(measured, 0.95) <= 0.1 else 'MISSED'}"
            )


if __name__ == "__main__":
    main()
