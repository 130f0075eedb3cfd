"""Recorded real webhook payloads (GitHub's published examples, GitLab's documented hook bodies,
see tests/fixtures/*/README.md) through the webhook endpoints, on SQLite and PostgreSQL: every
delivery is answered 2xx, mapped fields equal the payload's, incidents follow their issue."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_support import ACME_SECRET, github_headers, make_api
from sqlalchemy import select

from insights.store.db import unit_of_work
from insights.store.models import Change, Deployment, Incident, RawPayload, WebhookDelivery

FIXTURES = Path(__file__).parent / "fixtures"
GITHUB = "/webhooks/github/acme"
GITLAB = "/webhooks/gitlab/acme"

ORG = """
[[tenants]]
name = "acme"
webhook_secret_env = "ACME_HOOK_SECRET"

[[tenants.services]]
name = "hello-world"
source = { kind = "github", repo = "Codertocat/Hello-World", incident_label = "bug" }

[[tenants.services]]
name = "octo-repo"
source = { kind = "github", repo = "octo-org/octo-repo", workflow = "test.yml" }

[[tenants.services]]
name = "gitlab-test"
source = { kind = "gitlab", repo = "gitlabhq/gitlab-test", incident_label = "API" }

[[tenants.services]]
name = "pipelines"
source = { kind = "gitlab", repo = "gitlab-org/gitlab-test", workflow = "build-image" }

[[tenants.services]]
name = "deploys"
source = { kind = "gitlab", repo = "root/test-deployment-webhooks" }
"""
# deliveries GitHub sends without a repository object (organisation-level events)
NO_REPOSITORY = {
    "installation.created",
    "marketplace_purchase.purchased",
    "membership.added",
    "organization.member_added",
    "projects_v2_item.created",
    "security_advisory.published",
    "sponsorship.created",
    "team.created",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def github_example(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "github" / f"{name}.json").read_text())


def gitlab_example(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "gitlab" / f"{name}.json").read_text())


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch, org_toml=ORG)


class Hooks:
    """Posts signed deliveries, each with a fresh delivery id."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.sent = 0

    def github(self, event: str, payload: dict[str, Any]) -> Any:
        self.sent += 1
        body = json.dumps(payload).encode()
        headers = github_headers(body, event, f"gh-{self.sent}", ACME_SECRET)
        return self.api.client.post(GITHUB, content=body, headers=headers)

    def gitlab(self, payload: dict[str, Any], event: str = "Issue Hook") -> Any:
        self.sent += 1
        headers = {
            "X-Gitlab-Token": ACME_SECRET,
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": f"gl-{self.sent}",
        }
        return self.api.client.post(GITLAB, json=payload, headers=headers)

    def incidents(self) -> dict[str, Incident]:
        with unit_of_work(self.api.db.engine) as session:
            return {i.external_id: i for i in session.scalars(select(Incident))}


@pytest.fixture
def hooks(api) -> Hooks:
    return Hooks(api)


def test_every_recorded_github_example_is_answered_2xx_and_ignored_ones_are_counted(hooks):
    answers = {}
    for path in sorted((FIXTURES / "github").glob("*.json")):
        event = path.name.split(".", 1)[0]
        answers[path.stem] = hooks.github(event, json.loads(path.read_text()))
    assert {name: r.status_code for name, r in answers.items() if r.status_code >= 300} == {}
    for name in [*NO_REPOSITORY, "push.payload", "star.created"]:
        assert answers[name].status_code == 202, name
        assert answers[name].json()["status"] == "ignored", name
        assert "is not tracked" in answers[name].json()["reason"], name
    assert answers["deployment_status.payload"].json()["status"] == "stored"
    # a tracked kind without a repository object, and one from a repository with no service
    no_repository = github_example("issues.opened")
    del no_repository["repository"]
    assert "without a repository" in hooks.github("issues", no_repository).json()["reason"]
    elsewhere = github_example("issues.opened")
    elsewhere["repository"]["full_name"] = "someone/else"
    assert hooks.github("issues", elsewhere).status_code == 202
    exposition = hooks.api.client.get("/metrics").text
    for reason, count in (
        ("untracked_event", 10),
        ("no_repository", 1),
        ("unknown_repository", 1),
    ):
        line = f'insights_webhook_ignored_total{{reason="{reason}",source="github"}} {count}.0'
        assert line in exposition


def test_github_deployment_status_example_stores_the_payloads_deployment(hooks):
    payload = github_example("deployment_status.payload")
    assert hooks.github("deployment_status", payload).json()["status"] == "stored"
    with unit_of_work(hooks.api.db.engine) as session:
        row = session.scalar(select(Deployment))
        kept = session.scalar(select(RawPayload))
    deployment, status = payload["deployment"], payload["deployment_status"]
    assert row.external_id == str(deployment["id"])
    assert (row.sha, row.environment, row.status) == (deployment["sha"], "production", "success")
    assert row.started_at == at(deployment["created_at"])
    assert row.finished_at == at(status["created_at"])
    assert kept.payload == payload and kept.kind == "webhook:deployment_status"


def test_completed_run_of_the_deploy_workflow_is_a_deployment_and_requested_is_not(hooks):
    requested = hooks.github("workflow_run", github_example("workflow_run.requested"))
    assert requested.status_code == 202 and requested.json()["status"] == "ignored"
    payload = github_example("workflow_run.completed")
    answer = hooks.github("workflow_run", payload)
    run = payload["workflow_run"]
    assert answer.json()["events"] == [{"type": "deployment", "id": f"run-{run['id']}"}]
    with unit_of_work(hooks.api.db.engine) as session:
        row = session.scalar(select(Deployment))
        kept = session.scalars(select(RawPayload.kind)).all()
    assert (row.sha, row.status, row.environment) == (run["head_sha"], "success", "production")
    assert row.finished_at == at(run["updated_at"])
    # the ignored delivery of a tracked kind keeps its raw payload too
    assert sorted(kept) == ["webhook:workflow_run", "webhook:workflow_run"]


def test_pull_request_examples_map_to_the_change_and_reviews_set_the_first_review(hooks):
    opened = github_example("pull_request.opened")
    assert hooks.github("pull_request", opened).json()["status"] == "stored"
    # GitHub's review example is by the pull request's own author: not a review (the
    # collector's rule); the same review by someone else is
    own = github_example("pull_request_review.submitted")
    assert hooks.github("pull_request_review", own).json()["status"] == "ignored"
    later = copy.deepcopy(own)
    later["review"]["user"]["login"] = "octocat"
    earlier = copy.deepcopy(later)
    earlier["review"]["submitted_at"] = "2019-05-15T15:20:35Z"
    assert hooks.github("pull_request_review", earlier).json()["status"] == "stored"
    assert hooks.github("pull_request_review", later).json()["status"] == "stored"
    closed = github_example("pull_request.closed")
    assert hooks.github("pull_request", closed).json()["status"] == "stored"
    with unit_of_work(hooks.api.db.engine) as session:
        change = session.scalar(select(Change))
    pull = opened["pull_request"]
    assert (change.external_id, change.title) == (str(pull["number"]), pull["title"])
    assert change.opened_at == at(pull["created_at"])
    assert change.first_review_at == at("2019-05-15T15:20:35Z")  # the earlier review stays
    assert change.merged_at is None and change.merge_sha is None  # closed without merging


def test_github_incident_lifecycle_opened_closed_reopened_unlabelled(hooks):
    """`bug` is hello-world's incident label, as in GitHub's examples."""
    opened = github_example("issues.opened")
    assert hooks.github("issues", opened).json()["events"] == [{"type": "incident", "id": "1"}]
    incident = hooks.incidents()["1"]
    issue = opened["issue"]
    assert (incident.title, incident.opened_at) == (issue["title"], at(issue["created_at"]))
    assert incident.resolved_at is None and incident.severity is None

    labeled = github_example("issues.labeled")
    for name in ("severity:high", "deployment:145988746"):
        labeled["issue"]["labels"].append({"id": 1, "name": name})
    hooks.github("issues", labeled)
    incident = hooks.incidents()["1"]
    assert (incident.severity, incident.deployment_external_id) == ("severity:high", "145988746")

    # GitHub publishes no `closed` example: the reopened one, as it was before reopening
    closed = github_example("issues.reopened")
    closed["action"], closed["issue"]["state"] = "closed", "closed"
    closed["issue"]["labels"] = labeled["issue"]["labels"]
    hooks.github("issues", closed)
    assert hooks.incidents()["1"].resolved_at == at(closed["issue"]["closed_at"])

    reopened = github_example("issues.reopened")
    assert reopened["issue"]["closed_at"] is not None  # stale, while its state is open
    reopened["issue"]["labels"] = labeled["issue"]["labels"]
    hooks.github("issues", reopened)
    incident = hooks.incidents()["1"]
    assert incident.resolved_at is None and incident.deployment_external_id == "145988746"

    edited = github_example("issues.edited")  # labels back to just `bug`: severity removed
    hooks.github("issues", edited)
    incident = hooks.incidents()["1"]
    assert incident.severity is None and incident.deployment_external_id is None

    unlabeled = github_example("issues.unlabeled")
    answer = hooks.github("issues", unlabeled)
    assert answer.status_code == 200
    assert answer.json()["removed"] == [{"type": "incident", "id": "1"}]
    assert hooks.incidents() == {}
    again = hooks.github("issues", github_example("issues.deleted"))
    assert again.status_code == 202 and again.json()["status"] == "ignored"
    with unit_of_work(hooks.api.db.engine) as session:
        assert len(session.scalars(select(RawPayload)).all()) == 7  # every delivery kept
        assert len(session.scalars(select(WebhookDelivery)).all()) == 7


def test_deleted_or_transferred_issue_stops_being_an_incident(hooks):
    hooks.github("issues", github_example("issues.opened"))
    assert hooks.github("issues", github_example("issues.deleted")).json()["removed"]
    event = {
        "type": "incident",
        "service": "octo-repo",
        "id": "1",
        "opened_at": "2019-05-15T15:20:18Z",
    }
    hooks.api.client.post("/api/v1/events", json=[event], headers=hooks.api.auth())
    transferred = hooks.github("issues", github_example("issues.transferred"))
    assert transferred.json()["removed"] == [{"type": "incident", "id": "1"}]
    assert hooks.incidents() == {}


def test_every_documented_gitlab_hook_is_answered_2xx_with_the_payloads_fields(hooks):
    deployment = gitlab_example("deployment")
    answer = hooks.gitlab(deployment, "Deployment Hook")
    assert answer.status_code == 200, answer.text
    pipeline = gitlab_example("pipeline")
    assert hooks.gitlab(pipeline, "Pipeline Hook").json()["events"] == [
        {"type": "deployment", "id": "pipeline-31"}
    ]
    merge_request = gitlab_example("merge_request")
    assert hooks.gitlab(merge_request, "Merge Request Hook").json()["status"] == "stored"
    assert hooks.gitlab(gitlab_example("issue")).json()["status"] == "stored"
    with unit_of_work(hooks.api.db.engine) as session:
        rows = {d.external_id: d for d in session.scalars(select(Deployment))}
        change = session.scalar(select(Change))
    assert rows["15"].sha == deployment["commit_url"].rsplit("/", 1)[-1]
    assert (rows["15"].environment, rows["15"].status) == ("staging", "success")
    assert rows["15"].finished_at == at("2021-04-28T19:50:00Z")  # "2021-04-28 21:50:00 +0200"
    attributes = pipeline["object_attributes"]
    assert rows["pipeline-31"].sha == attributes["sha"]
    assert rows["pipeline-31"].finished_at == at("2016-08-12T15:26:29Z")
    mr = merge_request["object_attributes"]
    assert (change.external_id, change.title) == (str(mr["iid"]), mr["title"])
    assert change.opened_at == at(mr["created_at"]) and change.merged_at is None


def test_pipeline_whose_deploy_job_did_not_succeed_is_not_a_deployment(hooks, api):
    pipeline = gitlab_example("pipeline")
    pipeline["project"]["path_with_namespace"] = "root/test-deployment-webhooks"
    answer = hooks.gitlab(pipeline, "Pipeline Hook")  # that service has no workflow
    assert answer.status_code == 202 and "source.workflow" in answer.json()["reason"]
    skipped = gitlab_example("pipeline")
    skipped["builds"] = [b for b in skipped["builds"] if b["name"] == "production"]
    skipped["builds"][0]["name"] = "build-image"  # the deploy job, skipped (manual)
    assert hooks.gitlab(skipped, "Pipeline Hook").status_code == 202
    assert api.counts()["deployments"] == 0


def test_gitlab_incident_lifecycle_opened_closed_reopened_unlabelled(hooks):
    """`API` is gitlab-test's incident label, as in GitLab's documented issue hook."""
    opened = gitlab_example("issue")
    hooks.gitlab(opened)
    incident = hooks.incidents()["23"]
    attributes = opened["object_attributes"]
    assert (incident.title, incident.severity) == (attributes["title"], "high")
    assert incident.opened_at == at(attributes["created_at"]) and incident.resolved_at is None

    # steps without a documented body, derived from the documented one
    closed = copy.deepcopy(opened)
    closed["object_attributes"].update(
        action="close", state="closed", closed_at="2013-12-03 18:00:00 UTC"
    )
    hooks.gitlab(closed)
    assert hooks.incidents()["23"].resolved_at == at("2013-12-03T18:00:00Z")

    reopened = copy.deepcopy(closed)  # GitLab keeps closed_at after a reopen
    reopened["object_attributes"].update(action="reopen", state="opened")
    hooks.gitlab(reopened)
    assert hooks.incidents()["23"].resolved_at is None

    unlabelled = copy.deepcopy(opened)  # the documented `changes`: API → Platform
    current = opened["changes"]["labels"]["current"]
    unlabelled["labels"] = unlabelled["object_attributes"]["labels"] = current
    unlabelled["object_attributes"]["action"] = "update"
    answer = hooks.gitlab(unlabelled)
    assert answer.json()["removed"] == [{"type": "incident", "id": "23"}]
    assert hooks.incidents() == {}

    moved = copy.deepcopy(opened)
    hooks.gitlab(moved)
    moved["object_attributes"].update(moved_to_id=99, state="closed", action="close")
    assert hooks.gitlab(moved).json()["removed"] == [{"type": "incident", "id": "23"}]


def test_rebuild_rederives_a_service_from_its_kept_deliveries_in_arrival_order(hooks, api):
    from insights.collect.rebuild import rebuild_service

    hooks.github("issues", github_example("issues.opened"))
    labeled = github_example("issues.labeled")
    labeled["issue"]["labels"].append({"id": 2, "name": "P1"})
    hooks.github("issues", labeled)
    hooks.github("deployment_status", github_example("deployment_status.payload"))
    expected = {i: (r.severity, r.resolved_at) for i, r in hooks.incidents().items()}
    with unit_of_work(api.db.engine) as session:  # lose what the deliveries stored
        session.execute(Incident.__table__.update().values(severity=None))
        session.execute(Deployment.__table__.delete())
    tenant = api.settings.organisation().tenant("acme")
    report = rebuild_service(api.db.engine, tenant, tenant.service("hello-world"))
    assert (report.deliveries, report.skipped) == (3, 0)
    assert report.removed == {"deployments": 0, "changes": 0, "incidents": 1}
    assert {i: (r.severity, r.resolved_at) for i, r in hooks.incidents().items()} == expected
    assert expected["1"][0] == "P1" and api.counts()["deployments"] == 1
