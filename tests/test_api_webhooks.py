"""`POST /webhooks/github/{tenant}` and `/webhooks/gitlab/{tenant}`: signatures, replays,
tenant isolation and stored rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging

import pytest
from api_support import ACME_SECRET, GLOBEX_SECRET, github_headers, make_api, sqlite_only
from sqlalchemy import select
from webhook_payloads import (
    SHA,
    github_deployment_status,
    github_issue,
    github_pull_request,
    gitlab_deployment,
    gitlab_issue,
    gitlab_merge_request,
)

from insights.store.db import unit_of_work
from insights.store.models import (
    Change,
    Deployment,
    DeploymentCommit,
    Incident,
    RawPayload,
    WebhookDelivery,
)

GITHUB = "/webhooks/github/acme"
GITLAB = "/webhooks/gitlab/acme"


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch)


def post_github(api, payload, event, delivery="d-0001", secret=ACME_SECRET, path=GITHUB):
    body = json.dumps(payload).encode()
    return api.client.post(
        path, content=body, headers=github_headers(body, event, delivery, secret)
    )


def gitlab_headers(token=ACME_SECRET, uuid="uuid-1", event="Deployment Hook"):
    return {"X-Gitlab-Token": token, "X-Gitlab-Event": event, "X-Gitlab-Event-UUID": uuid}


def test_signed_github_deployment_status_stores_a_deployment(api):
    response = post_github(api, github_deployment_status("success"), "deployment_status")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "stored",
        "service": "checkout",
        "events": [{"type": "deployment", "id": "1234"}],
    }
    with unit_of_work(api.db.engine) as session:
        row = session.scalar(select(Deployment))
        assert (row.sha, row.status, row.environment) == (SHA, "success", "production")
        assert session.scalar(select(RawPayload)).kind == "webhook:deployment_status"


def test_github_delivery_with_a_wrong_signature_is_401_and_stores_nothing(api):
    payload = github_deployment_status()
    body = json.dumps(payload).encode()
    headers = github_headers(body, "deployment_status", "d-1", secret="not-the-secret")
    response = api.client.post(GITHUB, content=body, headers=headers)
    assert response.status_code == 401
    tampered = github_headers(body, "deployment_status", "d-1")
    response = api.client.post(
        GITHUB, content=body.replace(b"success", b"failure"), headers=tampered
    )
    assert response.status_code == 401
    assert api.counts()["deployments"] == 0


@sqlite_only
def test_github_delivery_without_a_signature_is_401(api):
    body = json.dumps(github_deployment_status()).encode()
    headers = github_headers(body, "deployment_status", "d-1")
    del headers["X-Hub-Signature-256"]
    response = api.client.post(GITHUB, content=body, headers=headers)
    assert response.status_code == 401
    assert "missing X-Hub-Signature-256" in response.json()["detail"]


def test_replayed_github_delivery_is_acknowledged_and_ignored(api):
    first = post_github(api, github_deployment_status("in_progress"), "deployment_status", "r-1")
    assert first.json()["status"] == "stored"
    # same delivery id again, even with a different (validly signed) body: not applied
    replay = post_github(api, github_deployment_status("success"), "deployment_status", "r-1")
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "delivery": "r-1"}
    with unit_of_work(api.db.engine) as session:
        assert session.scalar(select(Deployment)).status == "in_progress"
    assert api.rows(WebhookDelivery) == 1


def test_another_tenants_secret_is_401_on_this_tenants_webhook(api):
    response = post_github(
        api, github_deployment_status(), "deployment_status", secret=GLOBEX_SECRET
    )
    assert response.status_code == 401
    assert api.counts()["deployments"] == 0 and api.counts("globex")["deployments"] == 0


@sqlite_only
def test_unknown_tenant_and_tenant_without_secret_are_the_same_404(api):
    unknown = post_github(
        api, github_deployment_status(), "deployment_status", path="/webhooks/github/nobody"
    )
    unconfigured = post_github(
        api, github_deployment_status(), "deployment_status", path="/webhooks/github/initech"
    )
    assert unknown.status_code == unconfigured.status_code == 404
    assert unknown.json() == unconfigured.json()


def test_repository_without_a_service_is_202_ignored_and_can_be_redelivered(api):
    payload = github_deployment_status()
    payload["repository"] = dict(payload["repository"], full_name="acme/unknown-repo")
    response = post_github(api, payload, "deployment_status", "x-1")
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "repository 'acme/unknown-repo'" in response.json()["reason"]
    assert api.rows(WebhookDelivery) == 0  # not recorded: a redelivery is applied later
    assert api.rows(RawPayload) == 1  # but its payload is kept for a rebuild
    ok = post_github(api, github_deployment_status(), "deployment_status", "x-1")
    assert ok.json()["status"] == "stored"


@sqlite_only
def test_payload_missing_a_field_is_422_naming_its_path(api):
    payload = github_deployment_status()
    del payload["deployment"]["sha"]
    response = post_github(api, payload, "deployment_status")
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "deployment.sha"
    assert api.rows(WebhookDelivery) == 0


@sqlite_only
def test_body_that_is_not_json_is_400(api):
    body = b"not json"
    response = api.client.post(
        GITHUB, content=body, headers=github_headers(body, "deployment_status", "d-9")
    )
    assert response.status_code == 400


@sqlite_only
def test_ping_is_answered_with_pong(api):
    assert post_github(api, {"zen": "Keep it simple."}, "ping").json() == {"status": "pong"}


def test_merged_pull_request_updates_the_change_and_keeps_stored_review_times(api):
    stored = {
        "type": "change",
        "service": "checkout",
        "id": "42",
        "opened_at": "2026-01-04T09:00:00Z",
        "first_review_at": "2026-01-04T11:00:00Z",
    }
    api.client.post("/api/v1/events", json=[stored], headers=api.auth())
    response = post_github(api, github_pull_request(42, merged=True), "pull_request")
    assert response.json()["status"] == "stored"
    with unit_of_work(api.db.engine) as session:
        change = session.scalar(select(Change))
        assert change.merge_sha == SHA and change.title == "Faster checkout"
        assert change.first_review_at.isoformat() == "2026-01-04T11:00:00+00:00"


def test_labelled_issue_becomes_an_incident_and_others_are_ignored(api):
    stored = post_github(api, github_issue(7, ("incident", "sev1")), "issues", "i-1")
    assert stored.json()["status"] == "stored"
    ignored = post_github(api, github_issue(8, ("bug",)), "issues", "i-2")
    assert ignored.status_code == 202 and ignored.json()["status"] == "ignored"
    with unit_of_work(api.db.engine) as session:
        incident = session.scalar(select(Incident))
        assert (incident.external_id, incident.severity) == ("7", "sev1")


def test_gitlab_deployment_with_the_token_is_stored_and_replay_ignored(api):
    response = api.client.post(GITLAB, json=gitlab_deployment("success"), headers=gitlab_headers())
    assert response.status_code == 200, response.text
    assert response.json()["service"] == "payments-api"
    replay = api.client.post(GITLAB, json=gitlab_deployment("failed"), headers=gitlab_headers())
    assert replay.json()["status"] == "duplicate"
    with unit_of_work(api.db.engine) as session:
        row = session.scalar(select(Deployment))
        assert (row.external_id, row.sha, row.status) == ("15", SHA, "success")


@sqlite_only
def test_gitlab_wrong_or_missing_token_is_401(api):
    wrong = api.client.post(
        GITLAB, json=gitlab_deployment(), headers=gitlab_headers(token=GLOBEX_SECRET)
    )
    headers = gitlab_headers()
    del headers["X-Gitlab-Token"]
    missing = api.client.post(GITLAB, json=gitlab_deployment(), headers=headers)
    assert wrong.status_code == missing.status_code == 401
    assert api.counts()["deployments"] == 0


def test_gitlab_merge_request_and_incident_issue_are_stored(api):
    mr = api.client.post(
        GITLAB,
        json=gitlab_merge_request(5),
        headers=gitlab_headers(uuid="u-mr", event="Merge Request Hook"),
    )
    issue = api.client.post(
        GITLAB, json=gitlab_issue(3), headers=gitlab_headers(uuid="u-is", event="Issue Hook")
    )
    assert mr.json()["events"] == [{"type": "change", "id": "5"}]
    assert issue.json()["events"] == [{"type": "incident", "id": "3"}]
    counts = api.counts()
    assert (counts["changes"], counts["incidents"]) == (1, 1)


@sqlite_only
def test_webhook_secret_never_appears_in_responses_or_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    responses = [
        post_github(api, github_deployment_status(), "deployment_status", "s-1"),
        post_github(api, github_deployment_status(), "deployment_status", "s-2", secret="bad"),
        api.client.post(GITLAB, json=gitlab_deployment(), headers=gitlab_headers(token="bad")),
    ]
    for response in responses:
        assert ACME_SECRET not in response.text
    assert ACME_SECRET not in caplog.text


def test_deployment_status_webhook_keeps_the_commits_a_collector_listed(api):
    listed = {
        "type": "deployment",
        "service": "checkout",
        "id": "1234",
        "sha": SHA,
        "status": "in_progress",
        "commits": [SHA, "abcdef12"],
    }
    api.client.post("/api/v1/events", json=[listed], headers=api.auth())
    response = post_github(api, github_deployment_status("success"), "deployment_status")
    assert response.json()["status"] == "stored"
    with unit_of_work(api.db.engine) as session:
        row = session.scalar(select(Deployment))
        assert (row.status, row.commits_listed) == ("success", True)
        shas = set(session.scalars(select(DeploymentCommit.sha)))
    assert shas == {SHA, "abcdef12"}
