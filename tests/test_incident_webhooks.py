"""`POST /webhooks/pagerduty/{tenant}` and `/webhooks/jira/{tenant}`: signatures, the incident
lifecycle (a reopen reopens), routing to services, replays, removals; bodies shaped like the
vendors' published webhook examples (tests/fixtures/README.md)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from incident_support import fixture
from sqlalchemy import select

from insights.api.app import create_app
from insights.api.incident_webhooks import jira_signature, pagerduty_signature
from insights.config import Settings
from insights.pipeline import apply_org_config
from insights.store.db import unit_of_work
from insights.store.models import Incident, WebhookDelivery
from insights.timeutil import parse_time

PD_SECRET = "pd-generated-secret-0123456789abcdef"
JIRA_SECRET = "jira-admin-webhook-secret-42"
ORG = """
[[tenants]]
name = "acme"

[[tenants.services]]
name = "checkout"
  [[tenants.services.incidents]]
  kind = "pagerduty"
  service_ids = ["PF9KMXH"]
  webhook_secret_env = "TEST_PD_HOOK_SECRET"
  [[tenants.services.incidents]]
  kind = "jira"
  base_url = "https://acme.atlassian.net"
  project = "OPS"
  webhook_secret_env = "TEST_JIRA_HOOK_SECRET"

[[tenants.services]]
name = "search"
  [[tenants.services.incidents]]
  kind = "pagerduty"
  service_ids = ["PSEARCH"]
  webhook_secret_env = "TEST_PD_HOOK_SECRET"

[[tenants]]
name = "globex"

[[tenants.services]]
name = "billing"
"""


@pytest.fixture
def client(db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app on SQLite and on PostgreSQL (for tests of what is stored)."""
    yield from _client(db, tmp_path, monkeypatch)


@pytest.fixture
def sqlite_client(
    sqlite_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The app on SQLite only (for tests of request handling)."""
    yield from _client(sqlite_db, tmp_path, monkeypatch)


def _client(db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    config = tmp_path / "insights.toml"
    config.write_text(ORG)
    monkeypatch.setenv("TEST_PD_HOOK_SECRET", PD_SECRET)
    monkeypatch.setenv("TEST_JIRA_HOOK_SECRET", JIRA_SECRET)
    settings = Settings(database_url=db.url, config=config, reports_dir=tmp_path / "reports")
    with unit_of_work(db.engine) as session:
        for tenant in settings.organisation().tenants:
            apply_org_config(session, tenant)
    with TestClient(create_app(settings)) as test_client:
        test_client.db = db  # type: ignore[attr-defined]
        yield test_client


def pd_event(event_type: str, event_id: str, occurred_at: str, **data: Any) -> dict[str, Any]:
    payload = copy.deepcopy(fixture("pagerduty/webhook_incident_triggered.json"))
    payload["event"].update(id=event_id, event_type=event_type, occurred_at=occurred_at)
    payload["event"]["data"].update(data)
    return payload


def post_pd(client: TestClient, payload: dict, secret: str = PD_SECRET, tenant: str = "acme"):
    body = json.dumps(payload).encode()
    # during a secret rotation PagerDuty sends one signature per secret
    signature = f"v1={'0' * 64},{pagerduty_signature(secret, body)}"
    return client.post(
        f"/webhooks/pagerduty/{tenant}",
        content=body,
        headers={"X-PagerDuty-Signature": signature, "Content-Type": "application/json"},
    )


def incidents(client: TestClient) -> dict[str, Incident]:
    with unit_of_work(client.db.engine) as session:  # type: ignore[attr-defined]
        rows = session.scalars(select(Incident)).all()
        session.expunge_all()
        return {row.external_id: row for row in rows}


def test_pagerduty_lifecycle_triggered_resolved_reopened_resolved(client: TestClient) -> None:
    triggered = pd_event(
        "incident.triggered", "E1", "2026-01-05T10:00:00Z", created_at="2026-01-05T10:00:00Z"
    )
    response = post_pd(client, triggered)
    assert response.status_code == 200, response.text
    assert response.json()["services"] == ["checkout"]
    stored = incidents(client)["PGR0VU2"]
    assert stored.opened_at == parse_time("2026-01-05T10:00:00Z")
    assert stored.resolved_at is None
    assert stored.severity == "p1"

    resolved = pd_event(
        "incident.resolved",
        "E2",
        "2026-01-05T11:30:00Z",
        status="resolved",
        created_at="2026-01-05T10:00:00Z",
    )
    assert post_pd(client, resolved).status_code == 200
    assert incidents(client)["PGR0VU2"].resolved_at == parse_time("2026-01-05T11:30:00Z")

    reopened = pd_event(
        "incident.reopened",
        "E3",
        "2026-01-05T12:00:00Z",
        status="triggered",
        created_at="2026-01-05T10:00:00Z",
    )
    assert post_pd(client, reopened).status_code == 200
    assert incidents(client)["PGR0VU2"].resolved_at is None

    again = pd_event(
        "incident.resolved",
        "E4",
        "2026-01-05T13:00:00Z",
        status="resolved",
        created_at="2026-01-05T10:00:00Z",
    )
    post_pd(client, again)
    # a later event of a resolved incident keeps when it was resolved
    later = pd_event(
        "incident.priority_updated",
        "E5",
        "2026-01-06T09:00:00Z",
        status="resolved",
        created_at="2026-01-05T10:00:00Z",
    )
    post_pd(client, later)
    assert incidents(client)["PGR0VU2"].resolved_at == parse_time("2026-01-05T13:00:00Z")


def test_pagerduty_note_naming_a_deployment_links_the_incident(sqlite_client: TestClient) -> None:
    post_pd(
        sqlite_client,
        pd_event(
            "incident.triggered", "E1", "2026-01-05T10:00:00Z", created_at="2026-01-05T10:00:00Z"
        ),
    )
    note = pd_event("incident.annotated", "E2", "2026-01-05T10:20:00Z")
    note["event"]["data"] = {
        "incident": {
            "id": "PGR0VU2",
            "type": "incident_reference",
            "service": {"id": "PF9KMXH", "type": "service_reference"},
        },
        "id": "P8B4SDK",
        "content": "Started with the release.\nDeployment: d-88",
        "type": "incident_note",
    }
    assert post_pd(sqlite_client, note).status_code == 200
    assert incidents(sqlite_client)["PGR0VU2"].deployment_external_id == "d-88"
    # later lifecycle events, which carry no notes, keep the link
    post_pd(
        sqlite_client,
        pd_event(
            "incident.resolved",
            "E3",
            "2026-01-05T11:00:00Z",
            status="resolved",
            created_at="2026-01-05T10:00:00Z",
        ),
    )
    assert incidents(sqlite_client)["PGR0VU2"].deployment_external_id == "d-88"


def test_pagerduty_routes_by_its_service_id(sqlite_client: TestClient) -> None:
    payload = pd_event("incident.triggered", "E1", "2026-01-05T10:00:00Z")
    payload["event"]["data"]["service"]["id"] = "PSEARCH"
    assert post_pd(sqlite_client, payload).json()["services"] == ["search"]
    payload = pd_event("incident.triggered", "E2", "2026-01-05T10:00:00Z")
    payload["event"]["data"]["service"]["id"] = "PUNKNOWN"
    response = post_pd(sqlite_client, payload)
    assert response.status_code == 422
    assert "PUNKNOWN" in response.text


def test_pagerduty_replay_is_acknowledged_once(client: TestClient) -> None:
    payload = pd_event("incident.triggered", "E1", "2026-01-05T10:00:00Z")
    assert post_pd(client, payload).json()["status"] == "stored"
    assert post_pd(client, payload).json() == {"status": "duplicate", "delivery": "E1"}
    with unit_of_work(client.db.engine) as session:  # type: ignore[attr-defined]
        assert len(session.scalars(select(WebhookDelivery)).all()) == 1


def test_pagerduty_wrong_or_missing_signature_is_401_and_stores_nothing(sqlite_client) -> None:
    payload = pd_event("incident.triggered", "E1", "2026-01-05T10:00:00Z")
    assert post_pd(sqlite_client, payload, secret="not-the-secret").status_code == 401
    response = sqlite_client.post("/webhooks/pagerduty/acme", content=json.dumps(payload))
    assert response.status_code == 401
    assert incidents(sqlite_client) == {}


def test_tenant_without_incident_sources_is_404(sqlite_client: TestClient) -> None:
    payload = pd_event("incident.triggered", "E1", "2026-01-05T10:00:00Z")
    assert post_pd(sqlite_client, payload, tenant="globex").status_code == 404
    assert post_pd(sqlite_client, payload, tenant="nobody").status_code == 404


def test_untracked_pagerduty_events_are_acknowledged(sqlite_client: TestClient) -> None:
    payload = pd_event("service.updated", "E1", "2026-01-05T10:00:00Z")
    response = post_pd(sqlite_client, payload)
    assert response.status_code == 202 and response.json()["status"] == "ignored"


def test_pagerduty_bad_time_is_422_naming_the_field(sqlite_client: TestClient) -> None:
    payload = pd_event("incident.triggered", "E1", "2026-01-05T10:00:00Z", created_at="soon")
    response = post_pd(sqlite_client, payload)
    assert response.status_code == 422
    assert "opened_at" in response.text
    assert incidents(sqlite_client) == {}


def jira_body(event: str, **fields: Any) -> dict[str, Any]:
    payload = copy.deepcopy(fixture("jira/webhook_issue_updated.json"))
    payload["webhookEvent"] = event
    issue = copy.deepcopy(fixture("jira/issue.json"))
    issue["fields"].update(fields)
    payload["issue"] = issue
    return payload


def post_jira(sqlite_client: TestClient, payload: dict, delivery: str, secret: str = JIRA_SECRET):
    body = json.dumps(payload).encode()
    return sqlite_client.post(
        "/webhooks/jira/acme",
        content=body,
        headers={
            "X-Hub-Signature": jira_signature(secret, body),
            "X-Atlassian-Webhook-Identifier": delivery,
            "Content-Type": "application/json",
        },
    )


def test_jira_created_updated_reopened_and_deleted(client: TestClient) -> None:
    created = jira_body("jira:issue_created", resolutiondate=None)
    assert post_jira(client, created, "w1").json()["status"] == "stored"
    stored = incidents(client)["OPS-1"]
    assert stored.resolved_at is None and stored.deployment_external_id == "d-17"

    resolved = jira_body("jira:issue_updated")
    post_jira(client, resolved, "w2")
    assert incidents(client)["OPS-1"].resolved_at == parse_time("2026-01-05T12:30:00Z")

    reopened = jira_body("jira:issue_updated", resolutiondate=None)
    post_jira(client, reopened, "w3")
    assert incidents(client)["OPS-1"].resolved_at is None

    deleted = jira_body("jira:issue_deleted")
    response = post_jira(client, deleted, "w4")
    assert response.json() == {"status": "removed", "issue": "OPS-1", "services": ["checkout"]}
    assert incidents(client) == {}


def test_jira_issue_retyped_away_from_incident_stops_being_one(sqlite_client: TestClient) -> None:
    post_jira(sqlite_client, jira_body("jira:issue_created"), "w1")
    retyped = jira_body("jira:issue_updated")
    retyped["issue"]["fields"]["issuetype"]["name"] = "Task"
    assert post_jira(sqlite_client, retyped, "w2").json()["status"] == "removed"
    assert incidents(sqlite_client) == {}
    again = jira_body("jira:issue_updated")
    again["issue"]["fields"]["issuetype"]["name"] = "Task"
    assert post_jira(sqlite_client, again, "w3").status_code == 202


def test_jira_wrong_signature_is_401(sqlite_client: TestClient) -> None:
    response = post_jira(sqlite_client, jira_body("jira:issue_created"), "w1", secret="guess")
    assert response.status_code == 401
    assert incidents(sqlite_client) == {}


def test_body_that_is_not_bounded_json_is_400_after_the_signature(
    sqlite_client: TestClient,
) -> None:
    for body in (b"{not json", b"[" * 5000 + b"]" * 5000, b"\xff\xfe"):
        response = sqlite_client.post(
            "/webhooks/pagerduty/acme",
            content=body,
            headers={"X-PagerDuty-Signature": pagerduty_signature(PD_SECRET, body)},
        )
        assert response.status_code == 400, body[:10]
        assert response.json()["detail"].startswith("body: not a JSON payload")
    assert incidents(sqlite_client) == {}
