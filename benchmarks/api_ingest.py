"""API ingest throughput: events/s through `POST /api/v1/events` on loopback, PostgreSQL.

Starts `insights serve` (uvicorn, its own process) on 127.0.0.1 against a fresh PostgreSQL
database, posts synthetic canonical events in NDJSON batches, and prints events/s. The
reference run stores the same events in-process with `pipeline.store_events` (no HTTP) into
another fresh database; the ratio says what HTTP + auth + per-line reporting cost. Bounded:
`--events` (default 20,000) and `--seconds` (default 60; posting stops there and reports what
it did). Nothing is left behind.

    INSIGHTS_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python benchmarks/api_ingest.py [--events 20000] [--batch 1000] [--concurrency 2] \\
        [--changes]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from import_events import synthetic_lines
from pg_database import postgres_database

from insights.api.auth import create_token
from insights.collect.events import parse_lines
from insights.pipeline import store_events
from insights.store.db import dispose_engine, engine_for, migrate, unit_of_work
from insights.store.repository import TenantRepository

SERVICES = [f"svc-{n}" for n in range(6)]


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A migrated, empty database for one measurement, dropped afterwards."""
    with postgres_database(base_url, "insights_apibench") as url:
        migrate(engine_for(url))
        yield url


def prepare_tenant(url: str) -> str:
    with unit_of_work(engine_for(url)) as session:
        repo = TenantRepository.open(session, "bench", create=True)
        for service in SERVICES:
            repo.ensure_service(service)
        return create_token(session, "bench", "benchmark")


def reference(url: str, lines: list[str]) -> float:
    """events/s of parse + store in-process, no HTTP."""
    prepare_tenant(url)
    started = time.perf_counter()
    parsed = parse_lines(lines)
    with unit_of_work(engine_for(url)) as session:
        repo = TenantRepository.open(session, "bench")
        stored = store_events(repo, parsed.events, create_services=False)
    elapsed = time.perf_counter() - started
    assert stored.stored == len(lines)
    return len(lines) / elapsed


@contextmanager
def running_server(url: str) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "INSIGHTS_DATABASE_URL": url}
        env.pop("INSIGHTS_CONFIG", None)
        log = Path(tmp) / "server.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "insights"), "serve", "--port", str(port)],
                env=env,
                cwd=tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=15)


def post_batches(
    base: str, token: str, lines: list[str], batch: int, concurrency: int, seconds: float
) -> tuple[int, float]:
    """(events stored, elapsed seconds); stops starting new batches after `seconds`."""
    bodies = ["\n".join(lines[i : i + batch]) + "\n" for i in range(0, len(lines), batch)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    started = time.perf_counter()

    def send(body: str) -> int:
        if time.perf_counter() - started > seconds:
            return 0
        with httpx.Client(timeout=120) as client:
            response = client.post(f"{base}/api/v1/events", content=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"POST /api/v1/events: {response.status_code} {response.text[:300]}")
        return response.json()["accepted"]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        stored = sum(pool.map(send, bodies))
    return stored, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000, help="events per request")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound for posting")
    parser.add_argument(
        "--changes",
        action="store_true",
        help="a merged change before each deployment that ships commits (writes change_commits)",
    )
    parser.add_argument("--postgres", default=os.environ.get("INSIGHTS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not args.postgres:
        print("needs PostgreSQL: set INSIGHTS_TEST_POSTGRES_URL or --postgres", file=sys.stderr)
        return 2
    lines = synthetic_lines(args.events, changes=args.changes)
    with fresh_database(args.postgres) as url:
        ref = reference(url, lines)
    with fresh_database(args.postgres) as url:
        token = prepare_tenant(url)
        dispose_engine(url)
        with running_server(url) as base:
            stored, elapsed = post_batches(
                base, token, lines, args.batch, args.concurrency, args.seconds
            )
    rate = stored / elapsed
    print(f"{stored} events in {elapsed:.2f} s, {args.batch}/request, {args.concurrency} in flight")
    print(f"api (HTTP, PostgreSQL)     {rate:9.0f} events/s")
    print(f"reference (in-process)     {ref:9.0f} events/s")
    print(f"ratio api/reference        {rate / ref:9.2f}")
    print(f"target >= 1000 events/s    {'met' if rate >= 1000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
