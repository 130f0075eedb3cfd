"""The `narratives` table as cache and usage ledger for LLM narration, tenant-scoped.

- Cache: a narrative a model wrote and the checks passed (`accepted`/`repaired`), or the built-in
  narrator's, is stored under `cache_key(facts, provider, model, prompt version)`; the same key
  later returns it without a call. Fallback and over-budget rows get a unique key of their own,
  so they never hit.
- Usage: every LLM narration stores one row with the tokens it spent (also on fallback: failed
  calls are billed too), latency, model and estimated cost. `content` is the delivered
  narrative (the same format `service.py` stores for the built-in narrator). On LLM rows
  `provider`/`model` are the routed (billed) model; the outcome says whether its text was
  delivered (`fallback`/`over_budget` rows hold the built-in narrative).
- Budget: a tenant's spend in a month is the sum of tokens in + out of its rows created in that
  UTC calendar month.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.errors import UserError
from insights.metrics.result import MetricReport
from insights.narrate.schema import Narrative, NarrativeResult
from insights.store.models import Narrative as NarrativeRow
from insights.store.repository import TenantRepository, list_tenants

# Outcomes whose narrative may be served again for the same key: a checked model answer, or
# the deterministic built-in narrative (its key names provider "builtin", so never an LLM's).
CACHEABLE = ("accepted", "repaired", "builtin")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def cache_key(facts: dict[str, Any], provider: str, model: str | None, prompt_version: str) -> str:
    """SHA-256 over the canonical facts JSON, the provider, the model and the prompt version."""
    document = json.dumps(
        {"facts": facts, "provider": provider, "model": model, "prompt": prompt_version},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(document.encode()).hexdigest()


def cached(repo: TenantRepository, key: str) -> NarrativeResult | None:
    """The stored narrative for `key`, as a `cached` result that cost nothing; None on a miss."""
    row = repo.session.scalar(
        repo.scoped(NarrativeRow).where(
            NarrativeRow.cache_key == key, NarrativeRow.outcome.in_(CACHEABLE)
        )
    )
    if row is None:
        return None
    return NarrativeResult(
        narrative=Narrative.model_validate(row.content),
        provider=row.provider,
        model=row.model,
        prompt_version=row.prompt_version,
        outcome="cached",
        reason=f"same facts, model and prompt as the narrative of {row.created_at:%Y-%m-%d}",
    )


def month_bounds(month: str | None, at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the UTC calendar month `YYYY-MM`, or of the month containing `at`.

    >>> month_bounds("2026-12", datetime(2026, 1, 1, tzinfo=UTC))[1].isoformat()
    '2027-01-01T00:00:00+00:00'
    """
    if month is None:
        year, number = at.astimezone(UTC).year, at.astimezone(UTC).month
    else:
        match = _MONTH.match(month.strip())
        if not match or not 1 <= int(match[2]) <= 12:
            raise UserError(f"--month: {month!r} is not a month like 2026-01")
        year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def tokens_used(repo: TenantRepository, at: datetime) -> int:
    """Tokens (in + out) the tenant spent in the UTC month containing `at`."""
    start, end = month_bounds(None, at)
    total = repo.session.scalar(
        select(func.coalesce(func.sum(NarrativeRow.tokens_in + NarrativeRow.tokens_out), 0)).where(
            NarrativeRow.tenant_id == repo.tenant_id,
            NarrativeRow.created_at >= start,
            NarrativeRow.created_at < end,
        )
    )
    return int(total or 0)


def record(
    repo: TenantRepository,
    report: MetricReport,
    result: NarrativeResult,
    *,
    key: str,
    billed_provider: str,
    billed_model: str | None,
    at: datetime,
) -> None:
    """Store one narration. Only CACHEABLE rows keep `key` (and so serve the cache);
    when two processes store the same key at once, the second row is dropped, not an error."""
    row = NarrativeRow(
        tenant_id=repo.tenant_id,
        cache_key=key if result.outcome in CACHEABLE else uuid.uuid4().hex,
        scope_kind=report.scope.kind,
        scope_name=report.scope.name,
        window_start=report.window.start,
        window_end=report.window.end,
        provider=billed_provider,
        model=billed_model,
        prompt_version=result.prompt_version,
        content=result.narrative.model_dump(mode="json"),
        outcome=result.outcome,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        latency_ms=result.latency_ms,
        cost_usd=result.cost_usd,
        created_at=at,
    )
    try:
        with repo.session.begin_nested():
            repo.session.add(row)
    except IntegrityError:
        pass


@dataclass
class UsageRow:
    """One tenant's spend on one provider and model in a month."""

    tenant: str
    provider: str
    model: str | None
    narratives: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)


def usage(session: Session, tenant: str | None, month: str | None, at: datetime) -> list[UsageRow]:
    """Narrations, tokens and estimated cost per (tenant, provider, model) in a UTC month;
    one tenant when `tenant` is given (a NotFound error when it does not exist)."""
    start, end = month_bounds(month, at)
    if tenant is not None:
        repos: Iterable[TenantRepository] = [TenantRepository.open(session, tenant)]
    else:
        repos = [TenantRepository(session, t) for t in list_tenants(session)]
    rows: dict[tuple[str, str, str | None], UsageRow] = {}
    for repo in repos:
        stmt = (
            select(
                NarrativeRow.provider,
                NarrativeRow.model,
                NarrativeRow.outcome,
                func.count(),
                func.sum(NarrativeRow.tokens_in),
                func.sum(NarrativeRow.tokens_out),
                func.sum(NarrativeRow.cost_usd),
            )
            .where(
                NarrativeRow.tenant_id == repo.tenant_id,
                NarrativeRow.created_at >= start,
                NarrativeRow.created_at < end,
            )
            .group_by(NarrativeRow.provider, NarrativeRow.model, NarrativeRow.outcome)
        )
        for provider, model, outcome, count, t_in, t_out, cost in session.execute(stmt):
            row = rows.setdefault(
                (repo.tenant.name, provider, model), UsageRow(repo.tenant.name, provider, model)
            )
            row.narratives += int(count)
            row.tokens_in += int(t_in or 0)
            row.tokens_out += int(t_out or 0)
            row.cost_usd += float(cost or 0.0)
            row.outcomes[outcome] = row.outcomes.get(outcome, 0) + int(count)
    return sorted(rows.values(), key=lambda r: (r.tenant, r.provider, r.model or ""))
