"""Import throughput: 100k canonical events through the normal import path.

Prints events/s for SQLite (a temp file) and for PostgreSQL when INSIGHTS_TEST_POSTGRES_URL (or
--postgres URL) is set. Each run uses a fresh database; nothing is left behind.

    python benchmarks/import_events.py [--events 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pg_database import postgres_database

from insights.collect.events import parse_lines
from insights.pipeline import store_events
from insights.store.db import dispose_engine, engine_for, migrate, unit_of_work
from insights.store.repository import TenantRepository


def synthetic_lines(count: int, seed: int = 7, changes: bool = False) -> list[str]:
    """Commits (70%), deployments listing their commits (20%), incidents (10%) over 6 services;
    with `changes`, each deployment that ships commits comes after its merged change (listing
    those commits, merged as the sha it deploys: its `change_commits` rows are written too)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lines: list[str] = []
    pending: dict[str, list[str]] = {}
    counters = {"c": 0, "d": 0, "i": 0}
    services = [f"svc-{n}" for n in range(6)]
    while len(lines) < count:
        service = rng.choice(services)
        at = start + timedelta(minutes=len(lines))
        roll = rng.random()
        if roll < 0.7:
            counters["c"] += 1
            sha = f"{counters['c']:040x}"
            pending.setdefault(service, []).append(sha)
            lines.append(
                json.dumps(
                    {
                        "type": "commit",
                        "service": service,
                        "sha": sha,
                        "committed_at": at.isoformat(),
                        "author": "dev",
                        "message": "change",
                    }
                )
            )
        elif roll < 0.9:
            counters["d"] += 1
            shipped = pending.pop(service, [])
            sha = shipped[-1] if shipped else f"{counters['c']:040x}"
            if changes and shipped:
                lines.append(
                    json.dumps(
                        {
                            "type": "change",
                            "service": service,
                            "id": f"pr-{counters['d']}",
                            "title": "change",
                            "opened_at": (at - timedelta(hours=3)).isoformat(),
                            "merged_at": at.isoformat(),
                            "merge_sha": sha,
                            "commits": shipped,
                        }
                    )
                )
            lines.append(
                json.dumps(
                    {
                        "type": "deployment",
                        "service": service,
                        "id": f"d-{counters['d']}",
                        "sha": sha,
                        "finished_at": at.isoformat(),
                        "commits": shipped,
                    }
                )
            )
        else:
            counters["i"] += 1
            lines.append(
                json.dumps(
                    {
                        "type": "incident",
                        "service": service,
                        "id": f"i-{counters['i']}",
                        "opened_at": at.isoformat(),
                        "resolved_at": (at + timedelta(hours=2)).isoformat(),
                    }
                )
            )
    return lines


def run(url: str, lines: list[str]) -> float:
    engine = engine_for(url)
    migrate(engine)
    started = time.perf_counter()
    parsed = parse_lines(lines)
    assert not parsed.errors, parsed.errors[:3]
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, "bench", create=True)
        result = store_events(repo, parsed.events, create_services=True)
    elapsed = time.perf_counter() - started
    assert result.stored == len(lines)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("INSIGHTS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    lines = synthetic_lines(args.events)
    print(f"{len(lines)} events")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        seconds = run(url, lines)
        dispose_engine(url)
        print(f"sqlite      {seconds:7.2f} s  {len(lines) / seconds:9.0f} events/s")
    if args.postgres:
        with postgres_database(args.postgres) as url:
            seconds = run(url, lines)
            print(f"postgresql  {seconds:7.2f} s  {len(lines) / seconds:9.0f} events/s")
    else:
        print("postgresql  skipped (set INSIGHTS_TEST_POSTGRES_URL or --postgres)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
