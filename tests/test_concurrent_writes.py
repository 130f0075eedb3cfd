"""Concurrent writers on PostgreSQL: overlapping batches never reach the client as a deadlock.

Writers lock rows in natural-key order, and a deadlock or serialization failure that still
happens is retried inside the server (`insights.store.retry`), so ten clients posting
overlapping, shuffled batches at once all get a 2xx, and what is stored is the union of the
batches. A real outage stays a 503 "database unavailable" (tests/test_api_access.py).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from api_support import ORG_TOML, ndjson
from sqlalchemy import text

from insights.api.app import create_app
from insights.api.auth import create_token
from insights.config import Settings
from insights.pipeline import apply_org_config
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository
from insights.store.retry import DatabaseBusy, conflict_kind, run_in_transaction

COMMITS = 400
CLIENTS = 10
POSTS_PER_CLIENT = 5


@pytest.fixture
def server(pg_db, tmp_path):
    """`create_app` on PostgreSQL, served by a real uvicorn on a free loopback port."""
    config = tmp_path / "insights.toml"
    config.write_text(ORG_TOML)
    settings = Settings(database_url=pg_db.url, config=config, reports_dir=tmp_path / "reports")
    with unit_of_work(pg_db.engine) as session:
        for tenant in settings.organisation().tenants:
            apply_org_config(session, tenant)
        token = create_token(session, "acme", "ci")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", token, pg_db
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _sha(n: int) -> str:
    return f"{n:08x}c0ffee"


def _batch(rng: random.Random) -> str:
    """An overlapping batch: a random half or more of the shared commits, deployments that
    list some of them, incidents on those deployments; shuffled. Some batches are small
    (row-by-row upserts), most large (PostgreSQL COPY through a stage table)."""
    size = rng.choice([60, 250, 300, 350])
    picked = rng.sample(range(COMMITS), size)
    events: list[dict] = [
        {
            "type": "commit",
            "service": "checkout",
            "sha": _sha(n),
            "committed_at": f"2026-01-05T{n % 24:02d}:{n % 60:02d}:00Z",
        }
        for n in picked
    ]
    for d in rng.sample(range(20), 8):
        events.append(
            {
                "type": "deployment",
                "service": "checkout",
                "id": f"d-{d}",
                "sha": _sha(d),
                "finished_at": f"2026-01-06T{d:02d}:00:00Z",
                "commits": [_sha(d), _sha(d + 20)],
            }
        )
        events.append(
            {
                "type": "incident",
                "service": "checkout",
                "id": f"INC-{d}",
                "opened_at": f"2026-01-06T{d:02d}:30:00Z",
                "deployment_id": f"d-{d}",
            }
        )
    rng.shuffle(events)
    return ndjson(*events)


def test_ten_concurrent_overlapping_batches_all_succeed(server):
    url, token, db = server
    rng = random.Random(13)
    bodies = [[_batch(rng) for _ in range(POSTS_PER_CLIENT)] for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)

    def client(batches: list[str]) -> list[int]:
        statuses = []
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait()
            for body in batches:
                response = http.post(
                    "/api/v1/events",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/x-ndjson",
                    },
                )
                statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for result in pool.map(client, bodies) for s in result]
    assert len(statuses) == CLIENTS * POSTS_PER_CLIENT
    assert set(statuses) == {200}, sorted(statuses)
    every_sha = {line for batches in bodies for body in batches for line in body.splitlines()}
    sent_commits = {s for s in every_sha if '"type": "commit"' in s}
    with unit_of_work(db.engine) as session:
        counts = TenantRepository.open(session, "acme").counts()
    assert counts["commits"] == len(sent_commits)
    assert counts["deployment_commits"] == 2 * counts["deployments"]
    assert counts["incidents"] == counts["deployments"]
    metrics = httpx.get(
        f"{url}/api/v1/metrics",
        params={"window": "2026-W02"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert metrics.status_code == 200


def test_a_real_deadlock_is_retried_until_both_transactions_commit(pg_db):
    """Two transactions that lock two rows in opposite orders: PostgreSQL aborts one of them
    with a deadlock; `run_in_transaction` re-runs it and both commit."""
    with unit_of_work(pg_db.engine) as session:
        session.execute(text("CREATE TABLE lock_probe (id int PRIMARY KEY, hits int)"))
        session.execute(text("INSERT INTO lock_probe VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2, timeout=10)
    attempts: list[str] = []
    seen: list[str | None] = []

    def work(first: int, second: int) -> None:
        def body(session) -> None:
            attempts.append(f"{first}->{second}")
            session.execute(text(f"UPDATE lock_probe SET hits = hits + 1 WHERE id = {first}"))
            if len(attempts) <= 2:  # only the first round meets at the barrier
                both_hold_one.wait()
            session.execute(text(f"UPDATE lock_probe SET hits = hits + 1 WHERE id = {second}"))

        try:
            run_in_transaction(pg_db.engine, body)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            seen.append(conflict_kind(exc) or repr(exc))

    threads = [threading.Thread(target=work, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert seen == []
    assert len(attempts) == 3  # one of the two was aborted once and re-run
    with unit_of_work(pg_db.engine) as session:
        hits = dict(session.execute(text("SELECT id, hits FROM lock_probe")).all())
    assert hits == {1: 2, 2: 2}  # the aborted attempt left nothing behind


def test_retries_used_up_are_database_busy_and_roll_back(pg_db):
    """With one attempt allowed, the transaction PostgreSQL aborts raises `DatabaseBusy` (the
    API's 503 "database busy"), and its writes are gone."""
    with unit_of_work(pg_db.engine) as session:
        session.execute(text("CREATE TABLE lock_probe (id int PRIMARY KEY, hits int)"))
        session.execute(text("INSERT INTO lock_probe VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2, timeout=10)
    outcomes: list[str] = []

    def work(first: int, second: int) -> None:
        def body(session) -> None:
            session.execute(text(f"UPDATE lock_probe SET hits = hits + 1 WHERE id = {first}"))
            both_hold_one.wait()
            session.execute(text(f"UPDATE lock_probe SET hits = hits + 1 WHERE id = {second}"))

        try:
            run_in_transaction(pg_db.engine, body, attempts=1)
            outcomes.append("committed")
        except DatabaseBusy as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=work, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["committed", "deadlock after 1 attempts"]
    with unit_of_work(pg_db.engine) as session:
        hits = dict(session.execute(text("SELECT id, hits FROM lock_probe")).all())
    assert hits == {1: 1, 2: 1}  # only the committed transaction's two updates
