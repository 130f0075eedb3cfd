"""Narrating one metric report: facts → narrator → a stored `narratives` row, with a cache.

Rules:
- The cache key is sha256 over the facts document, provider, model and prompt version: the
  same facts narrated by the same model with the same prompt are never narrated twice; the
  stored narrative is returned with outcome `cached`.
- The built-in narrator writes the narrative when the tenant's `llm.provider` is `builtin`
  (outcome `builtin`) and whenever a configured provider cannot answer (outcome `fallback`,
  with the reason). A report always ships.
- Every narrative is checked against the facts (`verify.check`) before it is stored.
"""

from __future__ import annotations

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
