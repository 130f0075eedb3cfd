"""Reads of closed windows come from stored documents until the tenant's data or registry
changes; late data for a closed week shows on the next read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_support import COMMIT, DEPLOYMENT, INCIDENT, make_api, ndjson
from sqlalchemy import select

from insights.metrics.windows import current_week
from insights.store.db import unit_of_work
from insights.store.models import MetricSnapshot
from insights.timeutil import now, utc

WINDOW = "2026-W02"


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch)


def _get(api, scope: str = "service:checkout", window: str = WINDOW) -> dict:
    response = api.client.get(
        "/api/v1/metrics", params={"scope": scope, "window": window}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    return response.json()


def _stored(api, prefix: str = "read:") -> list[tuple[str, str]]:
    with unit_of_work(api.db.engine) as session:
        rows = session.execute(select(MetricSnapshot.scope_kind, MetricSnapshot.scope_name))
        return sorted((kind, name) for kind, name in rows if kind.startswith(prefix))


def _post(api, *events) -> None:
    response = api.client.post("/api/v1/events", content=ndjson(*events), headers=api.auth())
    assert response.status_code == 200, response.text


def test_a_closed_window_is_stored_once_and_served_unchanged(api):
    _post(api, COMMIT, DEPLOYMENT, INCIDENT)
    first = _get(api)
    assert _stored(api) == [("read:service", "checkout")]
    # and the results of each window the report tested: the week and the 12 before it
    assert _stored(api, "window:") == [("window:service", "checkout")] * 13
    assert _get(api) == first
    assert first["deployment_count"] == 1


def test_late_data_for_a_closed_window_shows_on_the_next_read(api):
    _post(api, COMMIT, DEPLOYMENT)
    assert _get(api)["deployment_count"] == 1
    assert _get(api)["change_failure_rate"] == 0.0
    late = {**DEPLOYMENT, "id": "d-2", "finished_at": "2026-01-06T12:00:00Z"}
    _post(api, late)
    assert _get(api)["deployment_count"] == 2
    _post(api, INCIDENT)  # an incident opened later, linked to d-1 of that week
    assert _get(api)["failed_deployments"] == 1


def test_an_unchanged_resend_keeps_the_stored_read(api):
    _post(api, COMMIT, DEPLOYMENT)
    first = _get(api)
    with unit_of_work(api.db.engine) as session:
        before = session.scalars(select(MetricSnapshot.computed_at)).all()
    _post(api, COMMIT, DEPLOYMENT)  # nothing new: the version does not move
    assert _get(api) == first
    with unit_of_work(api.db.engine) as session:
        assert session.scalars(select(MetricSnapshot.computed_at)).all() == before


def _computed_at(api) -> list:
    with unit_of_work(api.db.engine) as session:
        return sorted(session.scalars(select(MetricSnapshot.computed_at)).all())


def test_an_open_window_is_served_stored_until_a_write_reaches_it(api):
    """Its metrics are a function of the stored rows: between two writes into it the
    document is served as stored; each write into it shows on the next read; a write to
    another service leaves it stored. Window results are kept for closed windows only."""
    week = current_week(now())
    open_week = week.label
    days = [(week.start + timedelta(minutes=n)).isoformat() for n in (1, 2)]
    _post(api, COMMIT, DEPLOYMENT)
    first = _get(api, window=open_week)
    assert first["deployment_count"] == 0
    assert _stored(api) == [("read:service", "checkout")]
    with unit_of_work(api.db.engine) as session:
        ends = session.scalars(
            select(MetricSnapshot.window_end).where(MetricSnapshot.scope_kind == "window:service")
        ).all()
    assert ends and all(end <= week.start for end in map(utc, ends))  # closed weeks only
    kept = _computed_at(api)
    assert _get(api, window=open_week) == first
    assert _computed_at(api) == kept
    other = {**DEPLOYMENT, "service": "payments-api", "id": "p-1", "finished_at": days[0]}
    _post(api, {**COMMIT, "service": "payments-api"}, other)
    assert _get(api, window=open_week) == first
    assert _computed_at(api) == kept
    for n, day in enumerate(days, start=1):
        _post(api, {**DEPLOYMENT, "id": f"open-{n}", "sha": f"c0ffee0{n + 1}", "finished_at": day})
        assert _get(api, window=open_week)["deployment_count"] == n


def test_a_registry_change_invalidates_the_stored_reads(api):
    from insights.config import ServiceConfig
    from insights.store import registry

    _post(api, COMMIT, DEPLOYMENT)
    assert _get(api, scope="team:payments")["deployment_count"] == 1
    with unit_of_work(api.db.engine) as session:  # checkout leaves the team
        registry.put_child(session, "acme", "service", ServiceConfig(name="checkout"), "test")
    assert _get(api, scope="team:payments")["deployment_count"] == 0
