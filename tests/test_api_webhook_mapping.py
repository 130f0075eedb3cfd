"""GitHub/GitLab webhook payloads map to canonical events (pure functions, no database)."""

from __future__ import annotations

import pytest
from webhook_payloads import (
    SHA,
    github_deployment_status,
    github_issue,
    github_pull_request,
    gitlab_deployment,
    gitlab_issue,
    gitlab_merge_request,
)

from insights.collect.webhooks import (
    PayloadError,
    github_event,
    github_repository,
    gitlab_event,
    gitlab_project,
    gitlab_time,
)
from insights.config import ServiceConfig, SourceConfig

CHECKOUT = ServiceConfig(name="checkout", source=SourceConfig(kind="github", repo="acme/c"))
PAYMENTS = ServiceConfig(name="payments-api", source=SourceConfig(kind="gitlab", repo="a/p"))
OUTAGE = ServiceConfig(name="checkout", source=SourceConfig(kind="github", incident_label="outage"))


def test_github_successful_deployment_status_maps_to_a_finished_deployment():
    mapped = github_event("deployment_status", github_deployment_status("success"), CHECKOUT)
    event = mapped.events[0]
    assert (event.id, event.sha, event.environment, event.status) == (
        "1234",
        SHA,
        "production",
        "success",
    )
    assert event.finished_at.isoformat() == "2026-01-05T12:00:00+00:00"
    assert event.started_at.isoformat() == "2026-01-05T11:50:00+00:00"
    assert event.commits is None  # shipped commits come from the commit graph


@pytest.mark.parametrize(
    ("state", "status"), [("error", "failure"), ("failure", "failure"), ("queued", "in_progress")]
)
def test_github_deployment_states_map_to_canonical_statuses(state, status):
    mapped = github_event("deployment_status", github_deployment_status(state), CHECKOUT)
    assert mapped.events[0].status == status
    assert (mapped.events[0].finished_at is None) == (status == "in_progress")


def test_github_inactive_deployment_status_is_ignored():
    mapped = github_event("deployment_status", github_deployment_status("inactive"), CHECKOUT)
    assert mapped.events == [] and "inactive" in mapped.ignored


def test_github_unmerged_pull_request_has_no_merge_sha():
    mapped = github_event("pull_request", github_pull_request(merged=False), CHECKOUT)
    assert mapped.events[0].merged_at is None and mapped.events[0].merge_sha is None
    merged = github_event("pull_request", github_pull_request(merged=True), CHECKOUT).events[0]
    assert merged.merge_sha == SHA and merged.id == "42"


def test_github_issue_is_an_incident_only_with_the_incident_label():
    incident = github_event("issues", github_issue(labels=("incident", "sev2")), CHECKOUT).events[0]
    assert (incident.id, incident.severity) == ("7", "sev2")
    assert incident.resolved_at.isoformat() == "2026-01-05T15:00:00+00:00"
    assert github_event("issues", github_issue(labels=("bug",)), CHECKOUT).removed == [
        ("incident", "7")
    ]
    custom = github_event("issues", github_issue(labels=("Outage",)), OUTAGE)
    assert custom.events


def test_github_payload_missing_a_field_names_its_path():
    payload = github_deployment_status()
    del payload["deployment"]["sha"]
    with pytest.raises(PayloadError, match=r"^deployment\.sha: required$"):
        github_event("deployment_status", payload, CHECKOUT)
    with pytest.raises(PayloadError, match=r"repository\.full_name"):
        github_repository({"repository": {}})
    assert github_repository({"installation": {"id": 1}}) is None


def test_untracked_github_event_is_ignored():
    assert github_event("push", {"ref": "refs/heads/main"}, CHECKOUT).ignored == (
        "GitHub event 'push' is not tracked"
    )


def test_gitlab_deployment_takes_the_full_sha_from_the_commit_url():
    payload = gitlab_deployment("success")
    assert gitlab_project(payload) == "acme/payments/api"
    event = gitlab_event(payload, PAYMENTS).events[0]
    assert (event.id, event.sha, event.status) == ("15", SHA, "success")
    assert event.finished_at.isoformat() == "2026-01-05T12:50:00+00:00"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("failed", "failure"), ("canceled", "cancelled"), ("running", "in_progress")],
)
def test_gitlab_deployment_statuses_map_to_canonical_ones(status, expected):
    assert gitlab_event(gitlab_deployment(status), PAYMENTS).events[0].status == expected


def test_gitlab_merge_is_dated_by_the_merge_action():
    merged = gitlab_event(gitlab_merge_request(action="merge"), PAYMENTS).events[0]
    assert merged.merged_at.isoformat() == "2026-01-05T10:00:00+00:00"
    assert merged.merge_sha == SHA
    assert merged.opened_at.isoformat() == "2026-01-03T09:00:00+00:00"
    opened = gitlab_event(gitlab_merge_request(action="open"), PAYMENTS).events[0]
    assert opened.merged_at is None and opened.merge_sha is None


def test_gitlab_issue_is_an_incident_when_labelled_or_typed_incident():
    assert gitlab_event(gitlab_issue(labels=("incident",)), PAYMENTS).events[0].id == "3"
    assert gitlab_event(gitlab_issue(labels=("bug",)), PAYMENTS).removed == [("incident", "3")]
    typed = gitlab_issue(labels=())
    typed["object_attributes"]["issue_type"] = "incident"
    resolved = gitlab_event(typed, PAYMENTS).events[0].resolved_at
    assert resolved.isoformat() == "2026-01-05T14:00:00+00:00"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2021-04-28 21:50:00 +0200", "2021-04-28T21:50:00+02:00"),
        ("2013-12-03 17:23:34 UTC", "2013-12-03T17:23:34+00:00"),
        ("2013-12-03T17:23:34Z", "2013-12-03T17:23:34+00:00"),
        ("2013-12-03T17:23:34.123+05:30", "2013-12-03T17:23:34.123+05:30"),
        ("yesterday", "yesterday"),
    ],
)
def test_gitlab_time_formats_become_iso_8601(text, iso):
    assert gitlab_time(text) == iso


def test_environment_names_are_made_valid_like_the_collectors_do():
    payload = github_deployment_status(environment="Production EU")
    mapped = github_event("deployment_status", payload, CHECKOUT)
    assert mapped.events[0].environment == "Production-EU"
    gitlab = gitlab_deployment()
    gitlab["environment"] = "review/feature x"
    assert gitlab_event(gitlab, PAYMENTS).events[0].environment == "review/feature-x"


@pytest.mark.parametrize(
    ("labels", "body", "severity", "deployment"),
    [
        (("incident", "severity:high"), "", "severity:high", None),
        (("Incident", "P1", "deployment:1042"), "Deployment: 999", "P1", "1042"),
        (("incident",), "Broke after the deploy.\nDeployment: 77\n", None, "77"),
    ],
)
def test_webhook_and_collector_read_an_issue_identically(labels, body, severity, deployment):
    from insights.collect.github_map import map_issue

    payload = github_issue(labels=labels)
    payload["issue"]["body"] = body
    webhook = github_event("issues", payload, CHECKOUT).events[0]
    collector = map_issue("checkout", payload["issue"], "incident")
    assert webhook == collector
    assert (webhook.severity, webhook.deployment_id) == (severity, deployment)


def test_gitlab_webhook_and_collector_read_an_incident_identically():
    from insights.collect.gitlab_map import map_incident

    payload = gitlab_issue(labels=("incident", "P2"))
    payload["object_attributes"]["description"] = "Deployment: 15"
    webhook = gitlab_event(payload, PAYMENTS).events[0]
    rest = dict(payload["object_attributes"], labels=["incident", "P2"], issue_type="incident")
    assert webhook == map_incident("payments-api", rest)
    assert (webhook.severity, webhook.deployment_id) == ("p2", "15")
