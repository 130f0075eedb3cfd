"""Per-tenant LLM routing on a real database: cache, monthly token budget, usage ledger,
two tenants on two models, misconfiguration, and the per-provider concurrency limit."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from llm_support import (
    as_text,
    chat_body,
    converse_response,
    good_answer,
    sample_report,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from insights.config import LlmConfig, TenantConfig
from insights.metrics.windows import parse_window
from insights.model import parse_event
from insights.narrate import ledger
from insights.narrate.bedrock import BedrockProvider
from insights.narrate.facts import build_facts
from insights.narrate.llm import ProviderPool, narrate_with
from insights.narrate.openai_compat import OpenAICompatProvider
from insights.narrate.providers import RetryPolicy, create_provider
from insights.narrate.service import narrate_report
from insights.pipeline import build_reports, store_events
from insights.store.db import unit_of_work
from insights.store.models import Narrative as NarrativeRow
from insights.store.repository import TenantRepository

PATH = "/v1/chat/completions"
NOW = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=1.0)


def openai_tenant(httpserver: HTTPServer, name: str = "acme", **llm: Any) -> TenantConfig:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "qwen2.5:7b",
        "base_url": httpserver.url_for("/v1"),
        "timeout_seconds": 5.0,
    }
    values.update(llm)
    return TenantConfig(name=name, llm=LlmConfig(**values))


def narrate(db: Any, tenant: TenantConfig, pool: ProviderPool, at: datetime = NOW, **kw: Any):
    report = sample_report(tenant=tenant.name, **kw)
    with unit_of_work(db.engine) as session:
        TenantRepository.open(session, tenant.name, create=True)
        return narrate_report(session, tenant, report, pool=pool, at=at)


def rows(db: Any) -> list[NarrativeRow]:
    with unit_of_work(db.engine) as session:
        found = session.query(NarrativeRow).order_by(NarrativeRow.id).all()
        session.expunge_all()
        return found


def test_same_facts_model_and_prompt_are_served_from_the_cache(
    db: Any, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()), model="qwen2.5:7b")
    )
    pool = ProviderPool()
    first = narrate(db, openai_tenant(httpserver), pool)
    second = narrate(db, openai_tenant(httpserver), pool)

    assert (first.outcome, second.outcome) == ("accepted", "cached")
    assert second.narrative == first.narrative
    assert (second.tokens_in, second.model) == (0, "qwen2.5:7b")
    assert len(httpserver.log) == 1
    # Another model is another cache entry: it makes its own call.
    third = narrate(db, openai_tenant(httpserver, model="llama3.1:8b"), pool)
    assert third.outcome == "accepted" and len(httpserver.log) == 2
    assert [r.outcome for r in rows(db)] == ["accepted", "accepted"]


def test_fallback_is_not_cached_so_the_next_run_asks_again(db: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "model not found"}}, status=404
    )
    pool = ProviderPool()
    first = narrate(db, openai_tenant(httpserver), pool)
    second = narrate(db, openai_tenant(httpserver), pool)
    assert (first.outcome, second.outcome) == ("fallback", "fallback")
    assert "HTTP 404: model not found" in (first.reason or "")
    assert len(httpserver.log) == 2
    stored = rows(db)
    assert [r.outcome for r in stored] == ["fallback", "fallback"]
    assert stored[0].content == first.narrative.model_dump(mode="json")  # what was delivered
    assert (stored[0].provider, stored[0].model) == ("openai", "qwen2.5:7b")  # who was asked


def test_over_budget_tenant_gets_the_builtin_narrator_without_a_call(
    db: Any, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()), prompt_tokens=900, completion_tokens=210)
    )
    tenant = openai_tenant(httpserver, monthly_token_budget=1000)
    pool = ProviderPool()
    # Last month's spend does not count against this month.
    january = datetime(2026, 1, 20, tzinfo=UTC)
    last_month = narrate(db, tenant, pool, at=january, title="Tune the cache")
    first = narrate(db, tenant, pool)  # 0 spent before: 1110 tokens
    with caplog.at_level(logging.WARNING, logger="insights.narrate.llm"):
        second = narrate(db, tenant, pool, title="Split the payment module")  # 1110 ≥ 1000: over

    assert (last_month.outcome, first.outcome, second.outcome) == (
        "accepted",
        "accepted",
        "over_budget",
    )
    assert second.provider == "builtin" and second.narrative.recommendations
    assert second.reason == "monthly token budget spent (1110 of 1000 tokens in 2026-02)"
    assert len(httpserver.log) == 2
    assert "acme: monthly token budget spent" in caplog.text
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        assert ledger.tokens_used(repo, NOW) == 1110


def test_two_tenants_are_each_narrated_by_their_own_model(db: Any, httpserver: HTTPServer) -> None:
    def answer(request: Request) -> Response:
        model = json.loads(request.get_data())["model"]
        return Response(json.dumps(chat_body(as_text(good_answer()), model=model)))

    httpserver.expect_request(PATH, method="POST").respond_with_handler(answer)
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    profile = "us.amazon.nova-lite-v1:0"
    with Stubber(client) as stubber:
        stubber.add_response(
            "converse",
            converse_response(as_text(good_answer()), input_tokens=1000, output_tokens=250),
            expected_params={
                "modelId": profile,
                "system": ANY,
                "messages": ANY,
                "inferenceConfig": ANY,
            },
        )

        def factory(config: LlmConfig):
            if config.provider == "bedrock":
                return BedrockProvider(config, client=client, retry=FAST)
            return create_provider(config)

        pool = ProviderPool(factory)
        acme = openai_tenant(httpserver, "acme", model="qwen2.5:7b")
        globex = TenantConfig(
            name="globex",
            llm=LlmConfig(
                provider="bedrock",
                model="amazon.nova-lite-v1:0",
                inference_profile=profile,
                region="us-east-1",
            ),
        )
        a, g = narrate(db, acme, pool), narrate(db, globex, pool)
        stubber.assert_no_pending_responses()

    assert (a.provider, a.model, a.outcome) == ("openai", "qwen2.5:7b", "accepted")
    assert (g.provider, g.model, g.outcome) == ("bedrock", profile, "accepted")
    assert [json.loads(r.get_data())["model"] for r, _ in httpserver.log] == ["qwen2.5:7b"]

    with unit_of_work(db.engine) as session:
        usage = ledger.usage(session, None, "2026-02", NOW)
    by_tenant = {(u.tenant, u.provider, u.model): u for u in usage}
    assert set(by_tenant) == {("acme", "openai", "qwen2.5:7b"), ("globex", "bedrock", profile)}
    nova = by_tenant[("globex", "bedrock", profile)]
    assert (nova.narratives, nova.tokens_in, nova.tokens_out) == (1, 1000, 250)
    assert nova.cost_usd == pytest.approx(1000 * 0.06e-6 + 250 * 0.24e-6)
    assert by_tenant[("acme", "openai", "qwen2.5:7b")].cost_usd == 0.0  # local model: unpriced


def test_usage_filters_by_tenant_and_month(db: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()), prompt_tokens=100, completion_tokens=50)
    )
    pool = ProviderPool()
    narrate(db, openai_tenant(httpserver, "acme"), pool)
    narrate(
        db,
        openai_tenant(httpserver, "acme"),
        pool,
        at=datetime(2026, 3, 1, tzinfo=UTC),
        title="Upgrade the ORM",
    )
    narrate(db, openai_tenant(httpserver, "globex"), pool)
    with unit_of_work(db.engine) as session:
        feb_acme = ledger.usage(session, "acme", "2026-02", NOW)
        march = ledger.usage(session, None, "2026-03", NOW)
    assert [(u.tenant, u.narratives, u.tokens_in) for u in feb_acme] == [("acme", 1, 100)]
    assert [(u.tenant, u.outcomes) for u in march] == [("acme", {"accepted": 1})]


def test_misconfigured_provider_falls_back_and_names_the_key(db: Any) -> None:
    tenant = TenantConfig(name="acme", llm=LlmConfig(provider="openai", model="qwen2.5:7b"))
    result = narrate(db, tenant, ProviderPool())
    assert result.outcome == "fallback" and result.provider == "builtin"
    assert "llm.base_url" in (result.reason or "")


def test_builtin_tenant_is_narrated_without_a_model(db: Any, httpserver: HTTPServer) -> None:
    result = narrate(db, TenantConfig(name="acme"), ProviderPool())
    assert (result.outcome, result.provider, result.reason) == ("builtin", "builtin", None)
    assert httpserver.log == []
    assert [(r.provider, r.tokens_in) for r in rows(db)] == [("builtin", 0)]


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.mark.parametrize(("limit", "allowed_peaks"), [(1, {1}), (3, {2, 3})])
def test_concurrent_calls_to_one_endpoint_stay_within_max_concurrency(
    threaded_server: HTTPServer, limit: int, allowed_peaks: set[int]
) -> None:
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def slow(request: Request) -> Response:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.5)
        with lock:
            in_flight[0] -= 1
        return Response(json.dumps(chat_body(as_text(good_answer()))))

    threaded_server.expect_request(PATH, method="POST").respond_with_handler(slow)
    config = LlmConfig(
        provider="openai",
        model="qwen2.5:7b",
        base_url=threaded_server.url_for("/v1"),
        max_concurrency=limit,
    )
    pool = ProviderPool()
    provider = pool.get(config)
    assert isinstance(provider, OpenAICompatProvider)
    semaphore = pool.limits.for_endpoint(provider.endpoint, config.max_concurrency)
    facts = build_facts(sample_report())
    outcomes: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(narrate_with(provider, config, facts, semaphore).outcome)
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == ["accepted"] * 3
    assert peak[0] in allowed_peaks  # never above the limit; overlapping when allowed


def _events(service: str, sha: str) -> list[Any]:
    return [
        parse_event(
            {
                "type": "commit",
                "service": service,
                "sha": sha,
                "committed_at": "2026-01-26T09:00:00Z",
            }
        ),
        parse_event(
            {
                "type": "deployment",
                "service": service,
                "id": f"{service}-1",
                "sha": sha,
                "finished_at": "2026-01-27T09:00:00Z",
                "commits": [sha],
            }
        ),
    ]


def test_budget_running_out_mid_run_still_writes_every_report(
    db: Any, httpserver: HTTPServer, tmp_path: Path
) -> None:
    # Every facts document has the window's length in days, so this answer is grounded for
    # every scope of the run.
    answer = {
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
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(json.dumps(answer), prompt_tokens=900, completion_tokens=210)
    )
    tenant = openai_tenant(httpserver, monthly_token_budget=1000)
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "acme", create=True)
        store_events(
            repo, _events("checkout", "a" * 40) + _events("search", "b" * 40), create_services=True
        )
    with unit_of_work(db.engine) as session:
        window = parse_window("2026-W05", NOW)
        built = build_reports(session, tenant, window, tmp_path, generated_at=NOW)

    assert built.outcomes == {"openai:accepted": 1, "builtin:over_budget": 2}
    assert len(built.paths) == 3 and all(p.exists() for p in built.paths)
    assert len(httpserver.log) == 1
