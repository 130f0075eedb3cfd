"""`POST /api/v1/events`, `/deployments`, `/incidents`: per-line results, partial acceptance,
strict mode, unknown services, size limits and Idempotency-Key, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from api_support import COMMIT, DEPLOYMENT, INCIDENT, MAX_BODY, make_api, ndjson, sqlite_only
from sqlalchemy import select

from insights.store.db import unit_of_work
from insights.store.models import IdempotencyKey, Incident

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch)


def test_ndjson_events_are_stored_and_reported_per_line(api):
    response = api.client.post(
        "/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT, INCIDENT), headers=api.auth(**NDJSON)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 3 and body["rejected"] == 0
    assert [r["line"] for r in body["results"]] == [1, 2, 3]
    assert body["results"][1] == {
        "line": 2,
        "status": "accepted",
        "type": "deployment",
        "service": "checkout",
        "id": "d-1",
    }
    assert body["stored"]["deployment"] == {"new": 1, "updated": 0, "unchanged": 0}
    counts = api.counts()
    assert (counts["commits"], counts["deployments"], counts["incidents"]) == (1, 1, 1)


def test_json_array_body_is_accepted_like_ndjson(api):
    response = api.client.post("/api/v1/events", json=[COMMIT, DEPLOYMENT], headers=api.auth())
    assert response.status_code == 200, response.text
    assert api.counts()["deployment_commits"] == 1


def test_malformed_lines_are_rejected_with_line_and_field_while_valid_lines_are_stored(api):
    bad_time = dict(DEPLOYMENT, id="d-2", finished_at="tomorrow-ish")
    content = ndjson(COMMIT, bad_time, "{oops", DEPLOYMENT)
    response = api.client.post("/api/v1/events", content=content, headers=api.auth(**NDJSON))
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    rejected = [r for r in body["results"] if r["status"] == "rejected"]
    assert rejected[0] == {
        "line": 2,
        "status": "rejected",
        "field": "deployment.finished_at",
        "error": "deployment.finished_at: not an ISO-8601 time",
    }
    assert rejected[1]["line"] == 3 and rejected[1]["error"].startswith("not valid JSON")
    assert api.counts()["deployments"] == 1


def test_strict_request_with_a_bad_line_stores_nothing(api):
    content = ndjson(COMMIT, dict(DEPLOYMENT, sha="not-a-sha"))
    response = api.client.post(
        "/api/v1/events?strict=true", content=content, headers=api.auth(**NDJSON)
    )
    assert response.status_code == 422
    body = response.json()
    assert body["results"] == [
        {
            "line": 2,
            "status": "rejected",
            "field": "deployment.sha",
            "error": "deployment.sha: not a git sha (4 to 64 hex digits)",
        }
    ]
    assert api.counts()["commits"] == 0


def test_unknown_service_is_422_naming_it_and_nothing_is_created(api):
    content = ndjson(dict(COMMIT, service="ghost"))
    response = api.client.post("/api/v1/events", content=content, headers=api.auth(**NDJSON))
    assert response.status_code == 422
    error = response.json()["results"][0]
    assert error["field"] == "commit.service"
    assert "service 'ghost': not found in tenant 'acme'" in error["error"]
    with unit_of_work(api.db.engine) as session:
        from insights.store.repository import TenantRepository

        assert TenantRepository.open(session, "acme").service("ghost") is None


@sqlite_only
def test_body_that_is_not_json_or_utf8_is_400(api):
    response = api.client.post("/api/v1/events", content=b'[{"type": "commit",', headers=api.auth())
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    response = api.client.post("/api/v1/events", content=b"\xff\xfe{}", headers=api.auth())
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["detail"]


@sqlite_only
def test_empty_body_is_422(api):
    response = api.client.post("/api/v1/events", content=b"\n\n", headers=api.auth(**NDJSON))
    assert response.status_code == 422
    assert "no events" in response.json()["detail"]


@sqlite_only
def test_body_over_the_limit_is_413_and_nothing_is_stored(api):
    line = json.dumps(COMMIT) + "\n"
    content = line * (MAX_BODY // len(line) + 1)
    response = api.client.post("/api/v1/events", content=content, headers=api.auth(**NDJSON))
    assert response.status_code == 413
    assert api.counts()["commits"] == 0


@sqlite_only
def test_chunked_body_over_the_limit_is_413(api):
    chunk = (json.dumps(COMMIT) + "\n").encode() * 100

    def stream():
        for _ in range(MAX_BODY // len(chunk) + 2):
            yield chunk

    response = api.client.post("/api/v1/events", content=stream(), headers=api.auth(**NDJSON))
    assert response.status_code == 413
    assert api.counts()["commits"] == 0


def test_same_idempotency_key_and_body_returns_the_stored_answer_without_reapplying(api):
    headers = api.auth(**NDJSON, **{"Idempotency-Key": "ci-run-42"})
    first = api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=headers)
    assert first.status_code == 200
    second = api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=headers)
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert second.json()["stored"]["deployment"]["new"] == 1  # the first answer, verbatim
    assert api.counts()["deployments"] == 1


def test_same_idempotency_key_with_a_different_body_is_422(api):
    headers = api.auth(**NDJSON, **{"Idempotency-Key": "ci-run-43"})
    api.client.post("/api/v1/events", content=ndjson(COMMIT), headers=headers)
    response = api.client.post("/api/v1/events", content=ndjson(DEPLOYMENT), headers=headers)
    assert response.status_code == 422
    assert "already used with a different request" in response.json()["detail"]
    assert api.counts()["deployments"] == 0


def test_idempotency_keys_are_per_tenant(api):
    key = {"Idempotency-Key": "shared-key"}
    acme = api.client.post(
        "/api/v1/events", content=ndjson(COMMIT), headers=api.auth("acme", **NDJSON, **key)
    )
    globex = api.client.post(
        "/api/v1/events",
        content=ndjson(dict(COMMIT, service="billing")),
        headers=api.auth("globex", **NDJSON, **key),
    )
    assert acme.status_code == globex.status_code == 200
    assert "Idempotent-Replayed" not in globex.headers
    assert api.counts("globex")["commits"] == 1


def test_rejected_request_does_not_consume_its_idempotency_key(api):
    headers = api.auth(**NDJSON, **{"Idempotency-Key": "retry-me"})
    bad = api.client.post("/api/v1/events", content=ndjson(dict(COMMIT, sha="zz")), headers=headers)
    assert bad.status_code == 422
    with unit_of_work(api.db.engine) as session:
        assert session.scalar(select(IdempotencyKey)) is None
    good = api.client.post("/api/v1/events", content=ndjson(COMMIT), headers=headers)
    assert good.status_code == 200


def test_deployment_convenience_creates_then_reports_unchanged(api):
    payload = {"service": "checkout", "sha": "abc1234", "environment": "production"}
    payload["finished_at"] = "2026-01-06T10:00:00Z"
    first = api.client.post("/api/v1/deployments", json=payload, headers=api.auth())
    assert first.status_code == 201, first.text
    assert first.json()["id"] == "production:abc1234:2026-01-06T10:00:00Z"
    again = api.client.post("/api/v1/deployments", json=payload, headers=api.auth())
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    assert api.counts()["deployments"] == 1


@sqlite_only
def test_deployment_convenience_names_the_bad_field(api):
    response = api.client.post(
        "/api/v1/deployments",
        json={"service": "checkout", "sha": "abc1234", "status": "exploded"},
        headers=api.auth(),
    )
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "deployment.status"


def test_deployment_convenience_for_unknown_service_is_422_naming_it(api):
    response = api.client.post(
        "/api/v1/deployments", json={"service": "nope", "sha": "abc1234"}, headers=api.auth()
    )
    assert response.status_code == 422
    assert "service 'nope': not found" in response.json()["detail"]["error"]
    assert api.counts()["deployments"] == 0


@sqlite_only
def test_deployment_convenience_rejects_non_object_json(api):
    response = api.client.post("/api/v1/deployments", json=[1, 2], headers=api.auth())
    assert response.status_code == 422
    response = api.client.post("/api/v1/deployments", content=b"{", headers=api.auth())
    assert response.status_code == 400


def test_resolving_an_incident_keeps_what_was_stored(api):
    opened = {
        "service": "checkout",
        "id": "INC-9",
        "opened_at": "2026-01-05T13:00:00Z",
        "title": "500s on pay",
        "severity": "sev2",
    }
    assert api.client.post("/api/v1/incidents", json=opened, headers=api.auth()).status_code == 201
    resolved = {"service": "checkout", "id": "INC-9", "resolved_at": "2026-01-05T15:00:00Z"}
    response = api.client.post("/api/v1/incidents", json=resolved, headers=api.auth())
    assert response.status_code == 200 and response.json()["status"] == "updated"
    with unit_of_work(api.db.engine) as session:
        row = session.scalar(select(Incident).where(Incident.external_id == "INC-9"))
        assert (row.title, row.severity) == ("500s on pay", "sev2")
        assert row.opened_at.isoformat() == "2026-01-05T13:00:00+00:00"
        assert row.resolved_at.isoformat() == "2026-01-05T15:00:00+00:00"


def test_nul_characters_never_reach_the_database(api):
    events = [
        dict(COMMIT, message="fixes\x00 things", author="a\x00b"),
        dict(INCIDENT, id="INC\x00-2", deployment_id=None),
    ]
    response = api.client.post("/api/v1/events", json=events, headers=api.auth())
    assert response.status_code == 207, response.text
    assert response.json()["results"][1]["error"] == "incident.id: must not contain NUL characters"
    with unit_of_work(api.db.engine) as session:
        from insights.store.models import Commit

        assert session.scalar(select(Commit.message)) == "fixes things"
