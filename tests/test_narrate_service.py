"""narrate_report: the built-in path, the stored narrative row and its cache key."""

from __future__ import annotations

from report_support import make_report
from sqlalchemy import func, select

from insights.config import TenantConfig
from insights.narrate import builtin
from insights.narrate.facts import build_facts
from insights.narrate.ledger import cache_key
from insights.narrate.service import narrate_report
from insights.store.db import unit_of_work
from insights.store.models import Narrative as NarrativeRow
from insights.store.repository import ensure_tenant


def _rows(engine) -> list[NarrativeRow]:
    with unit_of_work(engine) as session:
        rows = list(session.scalars(select(NarrativeRow)))
        session.expunge_all()
        return rows


def test_builtin_narrative_is_stored_then_served_from_the_cache(db):
    report = make_report()
    config = TenantConfig(name="acme")
    with unit_of_work(db.engine) as session:
        ensure_tenant(session, "acme")
        first = narrate_report(session, config, report)
    assert (first.provider, first.outcome, first.prompt_version) == (
        "builtin",
        "builtin",
        builtin.VERSION,
    )
    [row] = _rows(db.engine)
    facts = build_facts(report)
    assert row.cache_key == cache_key(facts, "builtin", None, builtin.VERSION)
    assert (row.scope_kind, row.scope_name, row.window_start) == (
        "team",
        "payments",
        report.window.start,
    )
    assert row.content == first.narrative.model_dump(mode="json")
    with unit_of_work(db.engine) as session:
        second = narrate_report(session, config, report)
    assert second.outcome == "cached"
    assert second.narrative == first.narrative
    with unit_of_work(db.engine) as session:
        assert session.scalar(select(func.count()).select_from(NarrativeRow)) == 1


def test_changed_metrics_make_a_new_narrative(db):
    config = TenantConfig(name="acme")
    with unit_of_work(db.engine) as session:
        ensure_tenant(session, "acme")
        narrate_report(session, config, make_report())
        changed = narrate_report(session, config, make_report(failed_deployments=2))
    assert changed.outcome == "builtin"
    assert len(_rows(db.engine)) == 2


def test_cache_key_depends_on_facts_provider_model_and_prompt_version():
    facts = build_facts(make_report())
    base = cache_key(facts, "openai", "m1", "v1")
    assert base == cache_key(build_facts(make_report()), "openai", "m1", "v1")
    assert len({
        base,
        cache_key(facts, "bedrock", "m1", "v1"),
        cache_key(facts, "openai", "m2", "v1"),
        cache_key(facts, "openai", "m1", "v2"),
        cache_key(build_facts(make_report(failed_deployments=3)), "openai", "m1", "v1"),
    }) == 5  # fmt: skip
