"""Real facts documents for the checker corpora: every scope of the demo organisation over
three windows, and a real repository's report (pallets/flask, stored as JSON).

The demo facts are computed here, through the same event import and metric code as
`insights demo`, at a fixed "now" so the corpus is the same on every run. The flask facts were
built from a clone of https://github.com/pallets/flask read by the local-git collector
(`insights demo --repo flask --tags '*'`; every release tag is a production deployment), for
five windows (the week of the newest release, two months, two release weeks), and are kept as
data in `flask_facts.json` (rebuilt when the facts format grows: the same windows through
`build_facts`, with the service's deployment source, after `pipeline.with_sources`, and with the
verdicts of issue 19).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from insights import demo as demo_org
from insights import pipeline
from insights.metrics.result import Scope
from insights.metrics.windows import default_window, parse_window
from insights.narrate.facts import build_facts
from insights.store.db import engine_for, migrate, unit_of_work
from insights.store.repository import TenantRepository

NOW = datetime(2026, 3, 4, 12, tzinfo=UTC)
FLASK = Path(__file__).with_name("flask_facts.json")


def demo_windows() -> list[str]:
    last = default_window(NOW)
    return [last.label, "2026-W04", "2026-02"]


@cache
def demo_facts(windows: tuple[str, ...] | None = None) -> tuple[tuple[str, dict[str, Any]], ...]:
    """(label, facts) for every service, team and the tenant of the demo, per window
    (default: `demo_windows()`)."""
    engine = engine_for("sqlite://")
    migrate(engine)
    tenant_config = demo_org.demo_tenant_config()
    with unit_of_work(engine) as session:
        repo = pipeline.apply_org_config(session, tenant_config)
        pipeline.store_events(
            repo, demo_org.generate(NOW), create_services=True, tenant_config=tenant_config
        )
    out = []
    with unit_of_work(engine) as session:
        repo = TenantRepository.open(session, demo_org.TENANT)
        scopes = [Scope(kind="service", name=s.name) for s in repo.services()]
        scopes += [Scope(kind="team", name=t.name) for t in repo.teams()]
        scopes.append(Scope(kind="tenant", name=demo_org.TENANT))
        for label in windows or demo_windows():
            window = parse_window(label, NOW)
            for scope in scopes:
                report = pipeline.compute_report(session, demo_org.TENANT, scope, window)
                out.append((f"demo {scope.kind}:{scope.name} {label}", build_facts(report)))
    engine.dispose()
    return tuple(out)


@cache
def flask_facts() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(label, facts) of the real repository's reports."""
    return tuple((item["label"], item["facts"]) for item in json.loads(FLASK.read_text()))


def all_facts() -> list[tuple[str, dict[str, Any]]]:
    return [*demo_facts(), *flask_facts()]
