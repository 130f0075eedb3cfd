"""Metrics engine speed: our pandas engine vs a DuckDB SQL reference, same data, same run.

Synthetic tenant: 1M deployments (100 services, 2 years, 90 % production, 95 % successful,
3 % of production deployments re-run an earlier sha, i.e. rollbacks), 5M deployment→commit
links (each deployment lists 5 commits), 5M commits, 20k incidents (half linked by id), 100k
changes. Both engines compute the same DORA metrics for the tenant over the last 12 ISO weeks
(deployment count, deployment days, lead time median/p75/p90/samples, failed deployments,
recovery median/p90, rework deployments, breakdown medians) from the whole history; the
results are compared, then the times, their ratio and peak memory are printed.

The DuckDB side gets the data loaded into native tables beforehand (not timed; shas as the
same integer codes our engine receives as categorical codes) and uses all cores; ours is one
pandas process. Every deployment lists its commits, because the commit-graph
walk has no SQL counterpart.

    python benchmarks/compute_metrics.py [--deployments 1000000] [--links-per-deployment 5]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import threading
import time

import duckdb
import numpy as np
import pandas as pd

from insights.metrics.compute import prepare, window_metrics
from insights.metrics.windows import history, week
from insights.store.repository import DeliveryFrames

START = pd.Timestamp("2024-01-01", tz="UTC")
SERVICES = 100


def synthetic(deployments: int, per_deployment: int, seed: int = 7) -> DeliveryFrames:
    """The synthetic tenant described in the module docstring (vectorised, deterministic)."""
    rng = np.random.default_rng(seed)
    per_service = deployments // SERVICES
    n = per_service * SERVICES
    service_idx = np.repeat(np.arange(SERVICES), per_service)
    gaps = rng.integers(600, 12_000, size=n)  # seconds between a service's deployments
    gaps.reshape(SERVICES, per_service)[:, 0] = rng.integers(0, 3600, size=SERVICES)
    offsets = gaps.reshape(SERVICES, per_service).cumsum(axis=1).ravel()
    finished = START + pd.to_timedelta(offsets, unit="s")
    names = np.array([f"svc-{i:03d}" for i in range(SERVICES)], dtype=object)
    production = rng.random(n) >= 0.10
    success = rng.random(n) >= 0.05

    links = n * per_deployment
    commit_codes = np.arange(links, dtype=np.int64)
    sha_text = pd.Index(
        [f"{(i * 0x9E3779B97F4A7C15) % (1 << 64):016x}{i:024x}" for i in range(links)]
    )
    last_commit = commit_codes.reshape(n, per_deployment)[:, -1]
    dep_sha = last_commit.copy()
    rerun = production & (rng.random(n) < 0.03)
    rerun[np.arange(n) % per_service < 3] = False
    back = rng.integers(1, 4, size=n)
    dep_sha[rerun] = last_commit[np.flatnonzero(rerun) - back[rerun]]
    cat = pd.CategoricalDtype(sha_text)

    def shas(codes: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, dtype=cat)

    dep_frame = pd.DataFrame(
        {
            "deployment_id": np.arange(1, n + 1, dtype=np.int64),
            "service": pd.Categorical.from_codes(service_idx, categories=names),
            "external_id": pd.array([f"d-{i}" for i in range(n)], dtype="str"),
            "environment": pd.Categorical.from_codes(
                production.astype(np.int8), categories=["staging", "production"]
            ),
            "sha": shas(dep_sha),
            "status": pd.Categorical.from_codes(
                success.astype(np.int8), categories=["failure", "success"]
            ),
            "started_at": finished - pd.Timedelta(minutes=5),
            "finished_at": finished,
            "commits_listed": np.ones(n, bool),
        }
    )
    link_frame = pd.DataFrame(
        {
            "deployment_id": np.repeat(np.arange(1, n + 1, dtype=np.int64), per_deployment),
            "sha": shas(commit_codes),
        }
    )
    lag = rng.integers(1800, 96 * 3600, size=links)
    commit_frame = pd.DataFrame(
        {
            "service": pd.Categorical.from_codes(
                np.repeat(service_idx, per_deployment), categories=names
            ),
            "sha": shas(commit_codes),
            "committed_at": np.repeat(finished, per_deployment) - pd.to_timedelta(lag, unit="s"),
            "authored_at": pd.NaT,
            "parents": None,
        }
    )
    prod_rows = np.flatnonzero(production & success)
    hit = rng.choice(prod_rows, size=n // 50, replace=False)
    opened = finished[hit] + pd.to_timedelta(rng.integers(60, 6 * 3600, size=hit.size), unit="s")
    resolved = opened + pd.to_timedelta(rng.integers(300, 48 * 3600, size=hit.size), unit="s")
    resolved = resolved.where(rng.random(hit.size) >= 0.1)
    linked = rng.random(hit.size) < 0.5
    incident_frame = pd.DataFrame(
        {
            "service": names[service_idx[hit]],
            "external_id": [f"INC-{i}" for i in range(hit.size)],
            "opened_at": opened,
            "resolved_at": resolved,
            "severity": "sev2",
            "deployment_external_id": np.where(linked, [f"d-{i}" for i in hit], None),
            "title": "incident",
        }
    )
    merged_rows = rng.choice(prod_rows, size=n // 10, replace=False)
    merged_at = finished[merged_rows] - pd.to_timedelta(
        rng.integers(60, 12 * 3600, size=merged_rows.size), unit="s"
    )
    review = merged_at - pd.to_timedelta(rng.integers(60, 24 * 3600, size=merged_rows.size), "s")
    opened_c = review - pd.to_timedelta(rng.integers(60, 24 * 3600, size=merged_rows.size), "s")
    first = opened_c - pd.to_timedelta(rng.integers(60, 48 * 3600, size=merged_rows.size), "s")
    change_frame = pd.DataFrame(
        {
            "service": names[service_idx[merged_rows]],
            "external_id": [f"{i}" for i in range(merged_rows.size)],
            "title": "change",
            "opened_at": opened_c,
            "first_commit_at": first,
            "first_review_at": review,
            "approved_at": pd.NaT,
            "merged_at": merged_at,
            "merge_sha": shas(last_commit[merged_rows]),
            "commits": [[] for _ in range(merged_rows.size)],
        }
    )
    services = pd.DataFrame(
        {"service": names, "team": None, "production_pattern": r"^prod(uction)?$"}
    )
    return DeliveryFrames(
        services, dep_frame, link_frame, commit_frame, change_frame, incident_frame
    )


REFERENCE_SQL = """
CREATE OR REPLACE TEMP TABLE prod_env AS
SELECT e.service, e.environment
FROM (SELECT DISTINCT service, environment FROM deployments) e
JOIN services s ON s.service = e.service
WHERE regexp_matches(e.environment, s.production_pattern);

CREATE OR REPLACE TEMP TABLE prod AS
SELECT d.deployment_id, d.service, d.external_id, d.environment, d.sha, d.finished_at,
       d.commits_listed,
       row_number() OVER (PARTITION BY d.service ORDER BY d.finished_at, d.external_id) - 1 AS pos,
       row_number() OVER (PARTITION BY d.service, d.environment
                          ORDER BY d.finished_at, d.external_id) - 1 AS env_pos
FROM deployments d SEMI JOIN prod_env e ON e.service = d.service AND e.environment = d.environment
WHERE d.status = 'success' AND d.finished_at IS NOT NULL;

CREATE OR REPLACE TEMP TABLE prod2 AS
SELECT *, min(pos) OVER (PARTITION BY service, sha) AS first_pos,
       min(pos) OVER (PARTITION BY service, sha) < pos AS redeploy
FROM prod;

CREATE OR REPLACE TEMP TABLE prod3 AS
SELECT *,
  coalesce(lead(sha) OVER w <> sha AND lead(first_pos) OVER w < pos, false) AS rolled_back,
  lead(finished_at) OVER w AS next_finished_at
FROM prod2 WINDOW w AS (PARTITION BY service, environment ORDER BY env_pos);

CREATE OR REPLACE TEMP TABLE prod4 AS
SELECT *, coalesce(lag(rolled_back) OVER w, false) AS is_rollback
FROM prod3 WINDOW w AS (PARTITION BY service, environment ORDER BY env_pos);

CREATE OR REPLACE TEMP TABLE first_ship AS
SELECT s.service, s.sha, s.finished_at, c.committed_at,
       greatest(epoch(s.finished_at - c.committed_at) / 3600.0, 0) AS hours
FROM (
  SELECT p.service, l.sha, arg_min(p.finished_at, p.pos) AS finished_at
  FROM links l JOIN prod4 p ON p.deployment_id = l.deployment_id
  WHERE p.commits_listed AND NOT p.redeploy
  GROUP BY p.service, l.sha
) s JOIN commits c ON c.service = s.service AND c.sha = s.sha;

CREATE OR REPLACE TEMP TABLE blamed AS
WITH linked AS (
  SELECT i.*, p.deployment_id, p.finished_at AS deployment_finished_at
  FROM incidents i JOIN prod4 p
    ON p.service = i.service AND p.external_id = i.deployment_external_id
), rest AS (
  SELECT i.* FROM incidents i ANTI JOIN linked l
    ON l.service = i.service AND l.external_id = i.external_id
)
SELECT service, external_id, opened_at, resolved_at, deployment_id, deployment_finished_at
FROM linked
UNION ALL
SELECT r.service, r.external_id, r.opened_at, r.resolved_at, p.deployment_id,
       p.finished_at AS deployment_finished_at
FROM rest r ASOF LEFT JOIN prod4 p ON r.service = p.service AND r.opened_at > p.finished_at;

CREATE OR REPLACE TEMP TABLE per_dep AS
SELECT deployment_id, min(opened_at) AS opened, max(resolved_at) AS resolved,
       count(*) - count(resolved_at) AS open_count
FROM blamed WHERE deployment_id IS NOT NULL GROUP BY deployment_id;

CREATE OR REPLACE TEMP TABLE during AS
SELECT DISTINCT p.deployment_id
FROM prod4 p JOIN blamed b ON b.service = p.service
WHERE b.deployment_id IS NOT NULL
  AND p.finished_at >= greatest(b.opened_at, b.deployment_finished_at + INTERVAL 1 MICROSECOND)
  AND (b.resolved_at IS NULL OR p.finished_at < b.resolved_at);

CREATE OR REPLACE TEMP TABLE deps AS
SELECT p.deployment_id, p.service, p.finished_at,
       (d.deployment_id IS NOT NULL OR p.rolled_back) AS failed,
       (p.is_rollback OR r.deployment_id IS NOT NULL) AS rework,
       CASE WHEN d.deployment_id IS NOT NULL THEN
              CASE WHEN d.open_count = 0
                   THEN greatest(epoch(d.resolved - d.opened) / 3600.0, 0) END
            WHEN p.rolled_back THEN epoch(p.next_finished_at - p.finished_at) / 3600.0
       END AS recovery_hours
FROM prod4 p LEFT JOIN per_dep d USING (deployment_id) LEFT JOIN during r USING (deployment_id);

CREATE OR REPLACE TEMP TABLE stages AS
SELECT ch.service, ch.external_id, f.finished_at AS deployed_at,
       greatest(epoch(ch.opened_at - ch.first_commit_at) / 3600.0, 0) AS coding,
       greatest(epoch(ch.first_review_at - ch.opened_at) / 3600.0, 0) AS pickup,
       greatest(epoch(ch.merged_at - ch.first_review_at) / 3600.0, 0) AS review,
       greatest(epoch(f.finished_at - ch.merged_at) / 3600.0, 0) AS deploy
FROM changes ch JOIN first_ship f ON f.service = ch.service AND f.sha = ch.merge_sha
WHERE ch.merged_at IS NOT NULL;
"""

WINDOW_SQL = """
SELECT w.label,
  (SELECT count(*) FROM deps d WHERE d.finished_at >= w.s AND d.finished_at < w.e) AS deployments,
  (SELECT count(DISTINCT date_trunc('day', d.finished_at)) FROM deps d
     WHERE d.finished_at >= w.s AND d.finished_at < w.e) AS days,
  (SELECT count(*) FILTER (WHERE failed) FROM deps d
     WHERE d.finished_at >= w.s AND d.finished_at < w.e) AS failed,
  (SELECT count(*) FILTER (WHERE rework) FROM deps d
     WHERE d.finished_at >= w.s AND d.finished_at < w.e) AS rework,
  (SELECT [quantile_cont(hours, 0.5), quantile_cont(hours, 0.75), quantile_cont(hours, 0.9),
           count(hours)] FROM first_ship f WHERE f.finished_at >= w.s AND f.finished_at < w.e)
     AS lead,
  (SELECT [quantile_cont(recovery_hours, 0.5), quantile_cont(recovery_hours, 0.9),
           count(recovery_hours)] FROM deps d WHERE d.finished_at >= w.s AND d.finished_at < w.e)
     AS recovery,
  (SELECT [median(coding), median(pickup), median(review), median(deploy)] FROM stages st
     WHERE st.deployed_at >= w.s AND st.deployed_at < w.e) AS breakdown
FROM windows w ORDER BY w.s
"""


def ours(frames: DeliveryFrames, windows: list) -> list[tuple]:
    prepared = prepare(frames)
    rows = []
    for w in windows:
        m = window_metrics(prepared, w)
        days = None if m.deployment_days_share is None else round(m.deployment_days_share * 7)
        lt, rec, b = m.lead_time_hours, m.recovery_time_hours, m.lead_time_breakdown_hours
        rows.append(
            (
                w.label,
                m.deployment_count,
                days,
                m.failed_deployments,
                m.rework_deployments,
                (lt.median, lt.p75, lt.p90, lt.samples),
                (rec.median, rec.p90, rec.samples),
                (b.coding, b.pickup, b.review, b.deploy),
            )
        )
    return rows


def reference(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    con.execute(REFERENCE_SQL)
    rows = []
    for label, deps, days, failed, rework, lead, rec, b in con.execute(WINDOW_SQL).fetchall():

        def r(values: list) -> tuple:
            return tuple(None if v is None else round(float(v), 2) for v in values)

        rows.append(
            (
                label,
                deps,
                days if deps else None,
                failed,
                rework,
                (*r(lead[:3]), int(lead[3])),
                (*r(rec[:2]), int(rec[2])),
                r(b),
            )
        )
    return rows


def load(con: duckdb.DuckDBPyConnection, frames: DeliveryFrames, windows: list) -> None:
    """Native DuckDB tables from the same frames. Shas go in as the same integer codes our
    engine joins on (the categorical codes), names as text, times as TIMESTAMPTZ."""
    con.execute("SET TimeZone = 'UTC'")
    tables = {
        "services": frames.services,
        "deployments": frames.deployments,
        "links": frames.deployment_commits,
        "commits": frames.commits.drop(columns=["parents"]),
        "changes": frames.changes.drop(columns=["commits"]),
        "incidents": frames.incidents,
    }
    for name, frame in tables.items():
        converted = {}
        for column in frame.columns:
            if not isinstance(frame[column].dtype, pd.CategoricalDtype):
                continue
            if column in ("sha", "merge_sha"):
                converted[column] = frame[column].cat.codes.astype(np.int64)
            else:
                converted[column] = frame[column].astype(str)
        view = frame.assign(**converted)
        con.register("incoming", view)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
        con.unregister("incoming")
        del view
        gc.collect()
    con.execute("CREATE TABLE windows (label VARCHAR, s TIMESTAMPTZ, e TIMESTAMPTZ)")
    con.executemany(
        "INSERT INTO windows VALUES (?, ?, ?)", [(w.label, w.start, w.end) for w in windows]
    )


def rss_gib() -> float:
    """Peak resident memory of the process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def current_rss_gib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 1024**3


class RssSampler:
    """Samples the resident memory every 5 ms on a thread; `peak` is the highest seen."""

    def __enter__(self) -> RssSampler:
        self.peak = current_rss_gib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, current_rss_gib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_gib())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1_000_000)
    parser.add_argument("--links-per-deployment", type=int, default=5)
    args = parser.parse_args()
    t0 = time.perf_counter()
    frames = synthetic(args.deployments, args.links_per_deployment)
    last = frames.deployments["finished_at"].max()
    year, number, _ = (last - pd.Timedelta(days=7)).isocalendar()
    windows = history(week(year, number), 12)
    print(
        f"data: {len(frames.deployments):,} deployments, {len(frames.deployment_commits):,} "
        f"commit links, {len(frames.commits):,} commits, {len(frames.incidents):,} incidents, "
        f"{len(frames.changes):,} changes ({time.perf_counter() - t0:.1f} s to generate); "
        f"windows {windows[0].label}..{windows[-1].label}"
    )
    started = time.perf_counter()
    import scipy.stats  # noqa: F401  (the intervals load it lazily: a one-off import, not engine time)

    print(f"scipy.stats import (once per process): {time.perf_counter() - started:.2f} s")
    gc.collect()
    before = current_rss_gib()
    with RssSampler() as sampler:
        started = time.perf_counter()
        mine = ours(frames, windows)
        ours_s = time.perf_counter() - started
    print(
        f"ours:      {ours_s:7.2f} s   peak RSS while computing {sampler.peak:.2f} GiB "
        f"(of which input frames {before:.2f} GiB; target <= 2 GiB)"
    )
    con = duckdb.connect()
    load(con, frames, windows)
    started = time.perf_counter()
    theirs = reference(con)
    duck_s = time.perf_counter() - started
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"duckdb:    {duck_s:7.2f} s   ({threads} threads, tables preloaded)")
    print(f"ratio:     {ours_s / duck_s:7.2f}   (ours / duckdb; target <= 1.5)")
    print(f"peak RSS:  {rss_gib():7.2f} GiB for the whole run (data generation and DuckDB too)")
    if mine != theirs:
        for a, b in zip(mine, theirs, strict=True):
            if a != b:
                print(f"MISMATCH ours {a}\n         duck {b}")
        return 1
    print(
        f"results:   identical for all {len(windows)} windows "
        f"(e.g. {mine[-1][0]}: {mine[-1][1]} deployments, lead median {mine[-1][5][0]} h)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
