"""Narrating one metric report: facts → narrator → a stored `narratives` row, with a cache.

Rules:
- The cache key is sha256 over the facts document, provider, model and prompt version: the
  same facts narrated by the same model with the same prompt are never narrated twice; the
  stored narrative is returned with outcome `cached`.
- The built-in narrator writes the narrative when the tenant's `llm.provider` is `builtin`
  (outcome `builtin`) and whenever a configured provider cannot answer (outcome `fallback`,
  with the reason). A report always ships.
- Every narrative is checked against the facts (`verify.check`) before it is stored.
- A run's reports (`narrate_reports`) wait for the model up to `llm.parallel_narrations` at a
  time: the model calls run in threads; everything that touches the session (cache, budget
  reservation, the stored row) stays in the caller's thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime

from sqlalchemy.orm import Session

from insights.config import TenantConfig
from insights.metrics.result import MetricReport
from insights.narrate import builtin, ledger, llm
from insights.narrate.facts import build_facts
from insights.narrate.schema import NarrativeResult
from insights.store.repository import TenantRepository
from insights.timeutil import now

BUILTIN = "builtin"


def narrate_report(
    session: Session,
    tenant_config: TenantConfig,
    report: MetricReport,
    *,
    pool: llm.ProviderPool | None = None,
    at: datetime | None = None,
) -> NarrativeResult:
    """Narrate `report` with the tenant's configured narrator, from the cache when possible.

    A tenant on `bedrock` or `openai` goes through `llm.narrate_for_tenant` (cache, monthly
    budget, verify/repair, fallback to the built-in narrator); `pool` and `at` are for tests
    and long-running processes that share providers.
    """
    repo = TenantRepository.open(session, report.tenant)
    facts = build_facts(report)
    provider = tenant_config.llm.provider
    if provider != BUILTIN:
        return llm.narrate_for_tenant(session, tenant_config, report, facts, pool=pool, at=at)
    key = ledger.cache_key(facts, BUILTIN, None, builtin.VERSION)
    cached = ledger.cached(repo, key)
    if cached is not None:
        return cached
    result = builtin.as_result(facts)
    ledger.record(
        repo, report, result, key=key, billed_provider=BUILTIN, billed_model=None, at=now()
    )
    return result


def narrate_reports(
    session: Session,
    tenant_config: TenantConfig,
    reports: Sequence[MetricReport],
    *,
    pool: llm.ProviderPool | None = None,
    at: datetime | None = None,
) -> list[NarrativeResult]:
    """`narrate_report` for each of `reports` (one tenant; the results in the reports'
    order), with up to `llm.parallel_narrations` model calls waiting at once.

    One at a time for the built-in narrator, and on SQLite when a monthly budget is set (its
    check there sees no calls in flight). A budget is reserved only when its call is about to
    start, so at most `parallel_narrations` reservations of this run are open at once.
    """
    config = tenant_config.llm
    width = min(config.parallel_narrations, len(reports))
    bind = session.get_bind()
    if config.monthly_token_budget is not None and bind.dialect.name != "postgresql":
        width = 1
    if config.provider == BUILTIN or width <= 1:
        return [narrate_report(session, tenant_config, r, pool=pool, at=at) for r in reports]
    at = at or now()
    results: dict[int, NarrativeResult] = {}
    running: dict[Future[NarrativeResult], tuple[int, llm.PendingCall]] = {}
    queue = iter(enumerate(reports))
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="narrate") as executor:

        def start_next() -> None:
            while len(running) < width and (item := next(queue, None)) is not None:
                index, report = item
                prepared = llm.prepare_narration(session, tenant_config, report, pool=pool, at=at)
                if isinstance(prepared, NarrativeResult):
                    results[index] = prepared
                    continue
                future = executor.submit(prepared.call, config, tenant_config.name)
                running[future] = (index, prepared)

        start_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index, pending = running.pop(future)
                result = future.result()
                results[index] = llm.finish_narration(session, tenant_config, pending, result, at)
            start_next()
    return [results[index] for index in range(len(reports))]
