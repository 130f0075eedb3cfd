"""LLM narration: ask a provider, check the answer, repair once, else fall back to built-in.

The rule (DESIGN.md, "Narration"): the answer must be one JSON object that validates as a
`Narrative`, every number in it must be in the facts (`verify.check`), every recommendation must
name a known metric, a move may be called improved/worsened or sharp only when the verdicts
say so (`trend_claims.check`), and it must pass the injection checks (`injection.check`). A
first answer that passes is `accepted`; otherwise the errors go back to the model once and a
passing second answer is `repaired`; otherwise — or when the provider fails, times out or
stays throttled — the built-in narrator writes the narrative (`fallback`, with the reason). A
report always ships.

Calls to one provider endpoint are limited to `llm.max_concurrency` at a time: per process on
SQLite, across every worker on PostgreSQL (insights/ops/limiter.py). The monthly token budget
is reserved before a call and settled after it (insights/ops/budget.py).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from insights.config import LlmConfig, TenantConfig
from insights.errors import UserError
from insights.metrics.result import MetricReport
from insights.narrate import builtin, injection, ledger, trend_claims, verify
from insights.narrate.facts import build_facts
from insights.narrate.pricing import estimate_cost
from insights.narrate.prompts import PROMPT_VERSION, render_repair, render_system, render_user
from insights.narrate.providers import (
    Completion,
    CompletionRequest,
    Message,
    Provider,
    ProviderError,
    create_provider,
)
from insights.narrate.schema import Narrative, NarrativeResult
from insights.store.repository import TenantRepository
from insights.timeutil import now

log = logging.getLogger(__name__)
MAX_ERRORS_SENT = 12
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


def parse_answer(text: str) -> tuple[Narrative | None, list[str]]:
    """The narrative in a model's answer, or the reasons it is not one.

    Tolerates a Markdown code fence and prose around the outermost JSON object, nothing else.

    >>> parse_answer('not json')[1]
    ['the answer is not a JSON object']
    """
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0:
        return None, ["the answer is not a JSON object"]
    try:
        data = json.loads(body[start : end + 1] if end > start else body[start:])
    except json.JSONDecodeError as exc:
        return None, [f"the answer is not valid JSON: {exc.msg} at position {exc.pos}"]
    if not isinstance(data, dict):
        return None, ["the answer is not a JSON object"]
    try:
        return Narrative.model_validate(data), []
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"]) or "answer"
            errors.append(f"{where}: {err['msg']}")
        return None, errors


def review(narrative: Narrative, facts: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Reasons to reject a schema-valid narrative: (number and metric errors from
    `verify.check` and directional claims the verdicts do not support from
    `trend_claims.check`, injection errors from `injection.check`)."""
    grounded = list(verify.check(narrative, facts)) + trend_claims.check(narrative, facts)
    return grounded, injection.check(narrative, facts)


class ConcurrencyLimits:
    """One bounded semaphore per provider endpoint (Bedrock region, base URL), sized by the
    `max_concurrency` of the first tenant config that uses it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, threading.BoundedSemaphore] = {}

    def for_endpoint(self, endpoint: str, size: int) -> threading.BoundedSemaphore:
        with self._lock:
            if endpoint not in self._limits:
                self._limits[endpoint] = threading.BoundedSemaphore(max(1, size))
            return self._limits[endpoint]


class ProviderPool:
    """Providers by tenant LLM config, built once and reused (a provider keeps its HTTP or
    boto3 client). `factory` defaults to the registry; tests pass one that builds a real
    provider on a local server or a Stubber-wrapped boto3 client."""

    def __init__(self, factory: Callable[[LlmConfig], Provider | None] = create_provider) -> None:
        self.factory = factory
        self.limits = ConcurrencyLimits()
        self._lock = threading.Lock()
        self._providers: dict[str, Provider | None] = {}

    def get(self, config: LlmConfig) -> Provider | None:
        key = config.model_dump_json()
        with self._lock:
            if key not in self._providers:
                self._providers[key] = self.factory(config)
            return self._providers[key]


_default_pool: ProviderPool | None = None


def default_pool() -> ProviderPool:
    """The process-wide pool (shared concurrency limits for every narration in the process)."""
    global _default_pool
    if _default_pool is None:
        _default_pool = ProviderPool()
    return _default_pool


@dataclass
class _Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    model: str | None = None

    def add(self, completion: Completion, seconds: float) -> None:
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.latency_ms += round(seconds * 1000)
        self.model = completion.model


def fallback(facts: dict[str, Any], reason: str, outcome: str = "fallback") -> NarrativeResult:
    """The built-in narrator's narrative, saying why no model wrote it."""
    return builtin.as_result(facts, outcome, reason)


def narrate_with(
    provider: Provider,
    config: LlmConfig,
    facts: dict[str, Any],
    limit: AbstractContextManager[Any] | None = None,
) -> NarrativeResult:
    """Narrate `facts` with `provider`: accepted, repaired (one round-trip) or fallback.

    Tokens and latency of every call are in the result, also on fallback (they were spent).
    """
    system = render_system()
    messages: tuple[Message, ...] = (Message("user", render_user(facts)),)
    usage = _Usage(model=provider.model)
    errors: list[str] = []
    for attempt in (1, 2):
        request = CompletionRequest(
            system=system,
            messages=messages,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            timeout=config.timeout_seconds,
        )
        started = time.monotonic()
        try:
            if limit is None:
                completion = provider.complete(request)
            else:
                with limit:
                    completion = provider.complete(request)
        except ProviderError as exc:
            usage.latency_ms += round((time.monotonic() - started) * 1000)
            result = fallback(facts, f"{provider.name} failed: {exc}")
            return _with_usage(result, usage, provider)
        usage.add(completion, time.monotonic() - started)

        narrative, errors = parse_answer(completion.text)
        unsafe: list[str] = []
        if completion.truncated:
            errors.insert(0, f"the answer was cut off at max_tokens={config.max_tokens}")
        if narrative is not None and not errors:
            errors, unsafe = review(narrative, facts)
            errors += unsafe
        if narrative is not None and not errors:
            result = NarrativeResult(
                narrative=narrative,
                provider=provider.name,
                model=usage.model,
                prompt_version=PROMPT_VERSION,
                outcome="accepted" if attempt == 1 else "repaired",
            )
            return _with_usage(result, usage, provider)
        if attempt == 1:
            # An answer that echoed untrusted text is not sent back verbatim: it would put
            # that text into the conversation outside the fence.
            previous = (
                "(previous answer withheld: it failed the injection checks)"
                if unsafe
                else completion.text[:8000] or "(empty answer)"
            )
            messages = (
                *messages,
                Message("assistant", previous),
                Message("user", render_repair(errors[:MAX_ERRORS_SENT])),
            )
    reason = f"{provider.name} answer rejected after one repair: " + "; ".join(errors[:3])
    return _with_usage(fallback(facts, reason), usage, provider)


def _with_usage(result: NarrativeResult, usage: _Usage, provider: Provider) -> NarrativeResult:
    return result.model_copy(
        update={
            "tokens_in": usage.tokens_in,
            "tokens_out": usage.tokens_out,
            "latency_ms": usage.latency_ms,
            "cost_usd": estimate_cost(
                usage.model or provider.model, usage.tokens_in, usage.tokens_out
            ),
        }
    )


@dataclass
class PendingCall:
    """A narration that needs the model, prepared in the caller's session (cache missed,
    budget reserved): `call` runs it anywhere, without a session; `finish` stores it."""

    report: MetricReport
    facts: dict[str, Any]
    key: str
    provider: Provider
    held: Any  # insights.ops.budget.Reservation
    limit: AbstractContextManager[Any]

    def call(self, config: LlmConfig, tenant: str) -> NarrativeResult:
        """The model round-trips (answer, one repair); safe in a worker thread."""
        result = narrate_with(self.provider, config, self.facts, self.limit)
        log.info(
            "tenant %s: narrative %s by %s (%s), %d+%d tokens, %d ms%s",
            tenant,
            result.outcome,
            result.provider,
            self.provider.model,
            result.tokens_in,
            result.tokens_out,
            result.latency_ms,
            f": {result.reason}" if result.reason else "",
        )
        return result


def prepare_narration(
    session: Session,
    tenant_config: TenantConfig,
    report: MetricReport,
    facts: dict[str, Any] | None = None,
    *,
    pool: ProviderPool | None = None,
    at: datetime | None = None,
) -> NarrativeResult | PendingCall:
    """Everything before the model call: the cached narrative for the same facts, model and
    prompt version; the built-in narrator (stored) when the provider is unusable or the month's
    budget is spent; else a `PendingCall` holding the budget reservation and the endpoint's
    shared limit."""
    config = tenant_config.llm
    facts = facts if facts is not None else build_facts(report)
    at = at or now()
    pool = pool or default_pool()
    repo = TenantRepository.open(session, tenant_config.name, create=True)
    try:
        provider = pool.get(config)
    except UserError as exc:
        log.warning("tenant %s: LLM unusable, built-in narrator used: %s", tenant_config.name, exc)
        result = fallback(facts, f"llm configuration: {exc}")
        ledger.record(
            repo,
            report,
            result,
            key="",
            billed_provider=config.provider,
            billed_model=config.model,
            at=at,
        )
        return result
    assert provider is not None
    key = ledger.cache_key(facts, provider.name, provider.model, PROMPT_VERSION)
    hit = ledger.cached(repo, key)
    if hit is not None:
        return hit

    from insights.ops import budget as shared_budget
    from insights.ops.limiter import shared_limit

    budget = config.monthly_token_budget
    held = shared_budget.Reservation(refused=False, spent=0)
    if budget is not None:
        # reserved before the call and settled after it, so workers in parallel see each
        # other's calls in flight (insights/ops/budget.py)
        held = shared_budget.reserve(
            session, repo.tenant_id, budget, _token_estimate(config, facts), at
        )
        used = held.spent
        if held.refused:
            reason = f"monthly token budget spent ({used} of {budget} tokens in {at:%Y-%m})"
            log.warning("tenant %s: %s; built-in narrator used", tenant_config.name, reason)
            result = fallback(facts, reason, outcome="over_budget")
            ledger.record(
                repo,
                report,
                result,
                key=key,
                billed_provider=provider.name,
                billed_model=provider.model,
                at=at,
            )
            return result

    local = pool.limits.for_endpoint(provider.endpoint, config.max_concurrency)
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    limit = shared_limit(engine, provider.endpoint, config.max_concurrency, local)
    return PendingCall(report, facts, key, provider, held, limit)


def finish_narration(
    session: Session,
    tenant_config: TenantConfig,
    pending: PendingCall,
    result: NarrativeResult,
    at: datetime | None = None,
) -> NarrativeResult:
    """Store the model's narration with its usage and settle the budget reservation."""
    from insights.ops import budget as shared_budget

    repo = TenantRepository.open(session, tenant_config.name, create=True)
    ledger.record(
        repo,
        pending.report,
        result,
        key=pending.key,
        billed_provider=pending.provider.name,
        billed_model=result.model or pending.provider.model,
        at=at or now(),
    )
    shared_budget.settle(session, pending.held, result.tokens_in + result.tokens_out)
    return result


def narrate_for_tenant(
    session: Session,
    tenant_config: TenantConfig,
    report: MetricReport,
    facts: dict[str, Any] | None = None,
    *,
    pool: ProviderPool | None = None,
    at: datetime | None = None,
) -> NarrativeResult:
    """Narrate `report` with the tenant's configured model, within its budget, via the cache.

    For tenants whose `llm.provider` is not `builtin` (`service.narrate_report` routes here).
    Order: cached narrative for the same facts, model and prompt
    version (no call) → built-in with `over_budget` when the tenant's tokens this UTC month
    already reach `monthly_token_budget` (logged) → the model (accepted / repaired / fallback).
    Every model narration is stored in `narratives` with its usage. A misconfigured provider is
    logged and falls back: the report still ships.
    """
    at = at or now()
    pending = prepare_narration(session, tenant_config, report, facts, pool=pool, at=at)
    if isinstance(pending, NarrativeResult):
        return pending
    result = pending.call(tenant_config.llm, tenant_config.name)
    return finish_narration(session, tenant_config, pending, result, at)


def _token_estimate(config: LlmConfig, facts: dict[str, Any]) -> int:
    """An upper bound of a narration's tokens: two calls (answer and one repair), each at most
    the prompt (about a token per 3 characters of JSON and text) plus max_tokens."""
    prompt = len(render_system()) + len(render_user(facts)) + 8000
    return 2 * (prompt // 3 + config.max_tokens)
