"""Limits shared by every worker: model calls per provider endpoint, and the monthly token
budget with calls in flight, on PostgreSQL; each "worker" here has its own ProviderPool (so no
in-process semaphore is shared), like separate processes. Then one run narrating its scopes in
parallel (`narrate_reports`) within the same limits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import Database
from llm_support import as_text, chat_body, good_answer, sample_report

from insights.config import LlmConfig, TenantConfig
from insights.narrate.llm import ProviderPool
from insights.narrate.service import narrate_report, narrate_reports
from insights.store.db import unit_of_work
from insights.store.models import TokenReservation
from insights.store.repository import TenantRepository, ensure_tenant

NOW = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)


class _SlowModel(ThreadingHTTPServer):
    """An OpenAI-compatible chat endpoint that answers after `delay` s and counts how many
    requests it holds at once."""

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: _SlowModel

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.in_flight += 1
            self.server.calls += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        time.sleep(self.server.delay)
        with self.server.lock:
            self.server.in_flight -= 1
        body = json.dumps(
            chat_body(as_text(good_answer()), prompt_tokens=900, completion_tokens=210)
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def model() -> Iterator[_SlowModel]:
    server = _SlowModel(delay=0.3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _tenant(model: _SlowModel, **llm: Any) -> TenantConfig:
    config = LlmConfig(provider="openai", model="qwen2.5:7b", base_url=model.base_url, **llm)
    return TenantConfig(name="acme", llm=config)


def _narrate_in_parallel(db: Database, tenant: TenantConfig, workers: int) -> list[str]:
    with unit_of_work(db.engine) as session:
        ensure_tenant(session, tenant.name)
    outcomes: list[str] = []
    start = threading.Barrier(workers)

    def one(n: int) -> None:
        report = sample_report(tenant=tenant.name, title=f"Change number {n}")  # no cache hits
        start.wait()
        with unit_of_work(db.engine) as session:
            TenantRepository.open(session, tenant.name)
            result = narrate_report(session, tenant, report, pool=ProviderPool(), at=NOW)
        outcomes.append(result.outcome)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_model_calls_stay_within_the_provider_limit_across_workers(
    pg_db: Database, model: _SlowModel
) -> None:
    outcomes = _narrate_in_parallel(pg_db, _tenant(model, max_concurrency=2), workers=6)
    assert outcomes == ["accepted"] * 6
    assert model.calls == 6
    assert model.max_in_flight == 2


def test_the_monthly_budget_admits_no_more_calls_in_parallel_than_in_series(
    pg_db: Database, model: _SlowModel
) -> None:
    # one call spends 1110 tokens: in series, the first call uses the budget up
    tenant = _tenant(model, monthly_token_budget=1000, max_concurrency=8)
    outcomes = _narrate_in_parallel(pg_db, tenant, workers=5)
    assert sorted(outcomes) == ["accepted"] + ["over_budget"] * 4
    assert model.calls == 1
    with unit_of_work(pg_db.engine) as session:  # settled: no reservation left behind
        assert session.query(TokenReservation).count() == 0


def _reports(tenant: TenantConfig, n: int) -> list[Any]:
    return [sample_report(tenant=tenant.name, title=f"Change number {k}") for k in range(n)]


def test_one_run_narrates_its_scopes_in_parallel_and_keeps_their_order(
    db: Database, model: _SlowModel
) -> None:
    tenant = _tenant(model, parallel_narrations=3, max_concurrency=8)
    reports = _reports(tenant, 7)
    pool = ProviderPool()
    with unit_of_work(db.engine) as session:
        ensure_tenant(session, tenant.name)
        for k in (1, 4):  # narrated before: the run finds them in the cache
            narrate_report(session, tenant, reports[k], pool=pool, at=NOW)
    model.max_in_flight = model.calls = 0
    with unit_of_work(db.engine) as session:
        results = narrate_reports(session, tenant, reports, pool=pool, at=NOW)
    outcomes = [r.outcome for r in results]
    assert outcomes == ["accepted", "cached"] + ["accepted"] * 2 + ["cached"] + ["accepted"] * 2
    assert model.calls == 5
    assert model.max_in_flight == 3
    with unit_of_work(db.engine) as session:  # every narration was stored, in its own row
        again = narrate_reports(session, tenant, reports, pool=pool, at=NOW)
    assert [r.outcome for r in again] == ["cached"] * 7
    assert model.calls == 5


def test_parallel_narrations_wait_for_the_endpoint_limit(
    pg_db: Database, model: _SlowModel
) -> None:
    tenant = _tenant(model, parallel_narrations=6, max_concurrency=2)
    with unit_of_work(pg_db.engine) as session:
        ensure_tenant(session, tenant.name)
    with unit_of_work(pg_db.engine) as session:
        results = narrate_reports(session, tenant, _reports(tenant, 6), pool=ProviderPool(), at=NOW)
    assert [r.outcome for r in results] == ["accepted"] * 6
    assert model.max_in_flight == 2


def test_a_parallel_run_keeps_to_the_monthly_budget(db: Database, model: _SlowModel) -> None:
    # one call spends 1110 tokens of 1000: the first call is the last, in parallel as in series
    # (PostgreSQL: the first call's reservation counts; SQLite: the run goes one at a time)
    tenant = _tenant(model, monthly_token_budget=1000, parallel_narrations=4)
    with unit_of_work(db.engine) as session:
        ensure_tenant(session, tenant.name)
    with unit_of_work(db.engine) as session:
        results = narrate_reports(session, tenant, _reports(tenant, 5), pool=ProviderPool(), at=NOW)
    assert [r.outcome for r in results] == ["accepted"] + ["over_budget"] * 4
    assert model.calls == 1
    with unit_of_work(db.engine) as session:
        assert session.query(TokenReservation).count() == 0
