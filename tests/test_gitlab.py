"""GitLab collector against a local server speaking GitLab's REST v4 wire format."""

from __future__ import annotations

import logging
import math
import time

import pytest
from conftest import Database
from hosts_support import FakeGitHub, FakeGitLab, gl_at
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from insights.collect.gitlab import GitLabCollector
from insights.collect.gitlab_map import map_incident, map_merge_request
from insights.collect.sync import SyncContext, SyncReport, run_sync
from insights.config import OrgConfig, ServiceConfig, SourceConfig, TenantConfig
from insights.errors import UserError
from insights.store.db import unit_of_work
from insights.store.models import Change, Deployment, Incident
from insights.store.repository import TenantRepository

TOKEN_ENV = "TEST_GITLAB_TOKEN"


@pytest.fixture
def gitlab_server(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> FakeGitLab:
    fake = FakeGitLab(httpserver)
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    return fake


def gitlab_service(fake: FakeGitLab, name: str = "shop", **source: object) -> ServiceConfig:
    options: dict[str, object] = {
        "kind": "gitlab",
        "repo": fake.project,
        "base_url": fake.server.url_for("/").rstrip("/"),
        "token_env": TOKEN_ENV,
        "environments": ["production"],
        "max_rate_limit_wait_seconds": 1.0,
        "retry_backoff_seconds": 0.01,
    }
    options.update(source)
    return ServiceConfig(name=name, source=SourceConfig(**options))


def org(fake: FakeGitLab, **source: object) -> OrgConfig:
    service = gitlab_service(fake, **source)
    return OrgConfig(tenants=[TenantConfig(name="acme", services=[service])])


def sync(db: Database, config: OrgConfig) -> SyncReport:
    [report] = run_sync(db.engine, config, tenant="acme")
    return report


def counts(db: Database) -> dict[str, int]:
    with unit_of_work(db.engine) as session:
        return TenantRepository.open(session, "acme").counts()


def deployments_shipping_two_commits_each(fake: FakeGitLab, n: int) -> None:
    shas = fake.add_commits(2 * n + 1)
    for i in range(n):
        fake.add_deployment(shas[2 * i + 1], minutes=10 + 5 * i)


def test_full_sync_stores_rows_with_one_list_page_per_hundred_plus_per_item_calls(
    db: Database, gitlab_server: FakeGitLab
) -> None:
    n = 101
    fake = gitlab_server
    deployments_shipping_two_commits_each(fake, n)
    fake.add_merge_request(
        1,
        created=0,
        merged=40,
        commits=[fake.history[1]["id"], fake.history[2]["id"]],
        notes=[
            ("dev", "thanks", False, 3),
            ("ann", "added 1 commit", True, 4),
            ("ann", "looks risky", False, 6),
            ("bob", "approved this merge request", True, 20),
        ],
    )
    fake.add_merge_request(2, created=50, merged=70, commits=[fake.history[3]["id"]])
    fake.add_incident(4, opened=100, closed=150, labels=["sev1"], description="Deployment: 503")
    fake.add_incident(5, opened=200, closed=None, labels=[])

    report = sync(db, org(fake))

    assert report.stopped_early is None
    stored = counts(db)
    assert stored["deployments"] == n
    assert stored["deployment_commits"] == 2 * (n - 1)
    assert stored["changes"] == 2
    assert stored["incidents"] == 2
    list_pages = math.ceil(n / 100)
    compares = n - 1  # the first deployment has no predecessor
    merge_requests = 1 + 2 * 2  # list page, commits + notes per merged MR
    assert report.requests == list_pages + compares + merge_requests + 1
    assert len(fake.seen) == report.requests
    with unit_of_work(db.engine) as session:
        change = session.scalar(select(Change).where(Change.external_id == "1"))
        incident = session.scalar(select(Incident).where(Incident.external_id == "4"))
    assert change is not None and incident is not None
    assert change.first_review_at.isoformat().startswith("2026-01-05T09:06")
    assert change.approved_at.isoformat().startswith("2026-01-05T09:20")
    assert change.first_commit_at.isoformat().startswith("2026-01-05T09:01")
    assert incident.deployment_external_id == "503"
    assert incident.severity == "high"


def test_unchanged_resync_lists_only_since_the_cursor_and_fetches_nothing_per_item(
    db: Database, gitlab_server: FakeGitLab
) -> None:
    fake = gitlab_server
    deployments_shipping_two_commits_each(fake, 4)
    fake.add_merge_request(1, created=0, merged=40, commits=[fake.history[1]["id"]])
    fake.add_incident(4, opened=100, closed=150, labels=[])
    sync(db, org(fake))
    before = counts(db)
    fake.reset_log()

    report = sync(db, org(fake))

    assert [s.path.rsplit("/", 1)[-1] for s in fake.seen] == [
        "deployments",
        "merge_requests",
        "issues",
    ]
    assert all("updated_after" in s.query for s in fake.seen)
    assert report.counts == {}
    assert counts(db) == before


def test_rate_limit_429_mid_sync_stops_then_resumes_without_duplicates(
    db: Database, gitlab_server: FakeGitLab, caplog: pytest.LogCaptureFixture
) -> None:
    fake = gitlab_server
    deployments_shipping_two_commits_each(fake, 5)
    fake.fail(
        r"/repository/compare",
        429,
        {"RateLimit-Reset": str(int(time.time()) + 3600), "RateLimit-Remaining": "0"},
        {"message": "429 Too Many Requests"},
    )
    fake.seen.clear()
    with caplog.at_level(logging.WARNING):
        first = sync(db, org(fake))
    assert first.stopped_early is not None and "rate limited" in first.stopped_early
    assert counts(db)["deployments"] == 1
    assert "run sync again later" in caplog.text

    second = sync(db, org(fake))

    assert second.stopped_early is None
    stored = counts(db)
    assert stored["deployments"] == 5
    assert stored["deployment_commits"] == 2 * 4
    with unit_of_work(db.engine) as session:
        ids = session.scalars(select(Deployment.external_id)).all()
    assert sorted(ids) == ["500", "501", "502", "503", "504"]


def test_rate_limit_with_short_retry_after_is_waited_out(
    sqlite_db: Database, gitlab_server: FakeGitLab
) -> None:
    fake = gitlab_server
    deployments_shipping_two_commits_each(fake, 2)
    fake.fail(r"/deployments$", 429, {"Retry-After": "0"}, {"message": "429 Too Many Requests"})

    report = sync(sqlite_db, org(fake))

    assert report.stopped_early is None
    assert [s.status for s in fake.seen[:2]] == [429, 200]
    assert counts(sqlite_db)["deployments"] == 2


def test_server_error_502_is_retried(sqlite_db: Database, gitlab_server: FakeGitLab) -> None:
    fake = gitlab_server
    deployments_shipping_two_commits_each(fake, 2)
    fake.fail(r"/deployments$", 502, body={"message": "502 Bad Gateway"}, times=2)

    report = sync(sqlite_db, org(fake))

    assert [s.status for s in fake.seen[:3]] == [502, 502, 200]
    assert report.stopped_early is None
    assert counts(sqlite_db)["deployments"] == 2


def test_bad_token_is_one_line_error_without_the_token(
    sqlite_db: Database,
    gitlab_server: FakeGitLab,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "glpat-wrongWRONGwrong"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(UserError) as caught:
        sync(sqlite_db, org(gitlab_server))
    message = str(caught.value)
    assert message.startswith("gitlab acme/shop: the token in TEST_GITLAB_TOKEN was rejected")
    assert "read_api" in message and "\n" not in message
    out = capsys.readouterr()
    for text in (message, caplog.text, out.out, out.err):
        assert wrong not in text


def test_unknown_project_404_names_project_and_what_to_check(
    sqlite_db: Database, gitlab_server: FakeGitLab
) -> None:
    with pytest.raises(UserError) as caught:
        sync(sqlite_db, org(gitlab_server, repo="acme/nope"))
    message = str(caught.value)
    assert message.startswith("gitlab acme/nope: /deployments not found (404)")
    assert "check `repo`" in message


def test_malformed_project_is_one_line_error(
    sqlite_db: Database, gitlab_server: FakeGitLab
) -> None:
    with pytest.raises(UserError, match=r"source\.repo must be a GitLab project path"):
        sync(sqlite_db, org(gitlab_server, repo="not a project"))


def test_deployment_finishing_after_a_sync_is_updated(
    db: Database, gitlab_server: FakeGitLab
) -> None:
    fake = gitlab_server
    shas = fake.add_commits(3)
    fake.add_deployment(shas[0], minutes=0)
    fake.add_deployment(shas[2], minutes=10, status="running")
    sync(db, org(fake))
    running = fake.deployments[1]
    running.update(status="success", updated_at=gl_at(30), finished_at=gl_at(30))

    sync(db, org(fake))

    with unit_of_work(db.engine) as session:
        dep = session.scalar(select(Deployment).where(Deployment.external_id == "501"))
    assert dep is not None and dep.status == "success"
    assert counts(db)["deployment_commits"] == 2


def test_github_and_gitlab_services_sync_side_by_side_in_one_tenant(
    db: Database,
    httpserver: HTTPServer,
    gitlab_server: FakeGitLab,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github = FakeGitHub(httpserver)
    monkeypatch.setenv("TEST_GITHUB_TOKEN", github.token)
    gh_shas = github.add_commits(3)
    github.add_deployment(gh_shas[0], minutes=0)
    github.add_deployment(gh_shas[2], minutes=10)
    deployments_shipping_two_commits_each(gitlab_server, 3)
    github_service = ServiceConfig(
        name="web",
        source=SourceConfig(
            kind="github",
            repo=github.repo,
            base_url=github.url,
            token_env="TEST_GITHUB_TOKEN",
            environments=["production"],
        ),
    )
    config = OrgConfig(
        tenants=[
            TenantConfig(name="acme", services=[github_service, gitlab_service(gitlab_server)])
        ]
    )

    reports = run_sync(db.engine, config, tenant="acme")

    assert [(r.service, r.source, r.stopped_early) for r in reports] == [
        ("web", "github", None),
        ("shop", "gitlab", None),
    ]
    with unit_of_work(db.engine) as session:
        frames = TenantRepository.open(session, "acme").delivery_frames()
    per_service = frames.deployments.groupby("service").size().to_dict()
    assert per_service == {"web": 2, "shop": 3}


# -- pure mapping ------------------------------------------------------------------------------


def test_fast_forward_merge_uses_head_sha_and_author_notes_are_not_reviews() -> None:
    merge_request = {
        "iid": 9,
        "title": "t",
        "created_at": gl_at(0),
        "merged_at": gl_at(9),
        "merge_commit_sha": None,
        "squash_commit_sha": None,
        "sha": "abcdef12",
        "author": {"username": "dev"},
    }
    notes = [
        {"author": {"username": "dev"}, "body": "ping", "system": False, "created_at": gl_at(1)},
        {
            "author": {"username": "ann"},
            "body": "added 1 commit",
            "system": True,
            "created_at": gl_at(2),
        },
    ]
    change = map_merge_request("shop", merge_request, [], notes)
    assert change.merge_sha == "abcdef12"
    assert change.first_review_at is None and change.approved_at is None


def test_incident_severity_unknown_falls_back_to_label() -> None:
    issue = {
        "iid": 2,
        "created_at": gl_at(0),
        "closed_at": None,
        "title": "x",
        "labels": ["sev2", "deployment:77"],
        "description": "",
        "severity": "UNKNOWN",
    }
    event = map_incident("shop", issue)
    assert (event.severity, event.deployment_id) == ("sev2", "77")


def test_remap_rederives_every_event_from_raw_payloads_without_requests(
    db: Database, gitlab_server: FakeGitLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = gitlab_server
    deployments_shipping_two_commits_each(fake, 3)
    fake.add_merge_request(1, created=0, merged=40, commits=[fake.history[1]["id"]])
    fake.add_incident(4, opened=100, closed=150, labels=[])
    config = org(fake)
    sync(db, config)
    before = counts(db)
    fake.reset_log()
    monkeypatch.delenv(TOKEN_ENV)
    tenant = config.tenants[0]
    service = tenant.services[0]
    collector = GitLabCollector(service, tenant)
    ctx = SyncContext(db.engine, tenant, service, "gitlab", collector.repo_key())

    collector.remap(ctx)

    assert fake.seen == []
    assert counts(db) == before
    derived = {kind: c.total for kind, c in ctx.report.counts.items()}
    assert derived == {"deployment": 3, "commit": 4, "change": 1, "incident": 1}
    assert all(c.new == 0 and c.updated == 0 for c in ctx.report.counts.values())


def test_deployment_finishing_after_a_newer_one_is_stored_and_relisting_keeps_commits(
    db: Database, gitlab_server: FakeGitLab
) -> None:
    fake = gitlab_server
    shas = fake.add_commits(5)
    fake.add_deployment(shas[0], minutes=0)
    fake.add_deployment(shas[2], minutes=10)  # 501: finishes last
    fake.add_deployment(shas[4], minutes=20)
    fake.deployments[1].update(updated_at=gl_at(40), finished_at=gl_at(40))
    sync(db, org(fake))
    with unit_of_work(db.engine) as session:
        rows = dict(session.execute(select(Deployment.external_id, Deployment.status)).all())
    assert rows == {"500": "success", "501": "success", "502": "success"}
    links = counts(db)["deployment_commits"]
    fake.deployments[2]["updated_at"] = gl_at(50)  # GitLab touched a finished deployment

    report = sync(db, org(fake))

    assert "deployment" not in report.counts
    assert counts(db)["deployment_commits"] == links
    with unit_of_work(db.engine) as session:
        listed = session.scalar(
            select(Deployment.commits_listed).where(Deployment.external_id == "502")
        )
    assert listed is True


def test_incident_follows_its_issue_on_resync_reopened_retyped_or_moved(
    db: Database, gitlab_server: FakeGitLab
) -> None:
    fake = gitlab_server
    fake.add_incident(4, opened=100, closed=150, labels=[])
    fake.add_incident(5, opened=110, closed=None, labels=[])
    sync(db, org(fake))
    reopened, moved = fake.issues
    reopened.update(state="opened", updated_at=gl_at(200))  # closed_at stays, as GitLab does
    sync(db, org(fake))
    with unit_of_work(db.engine) as session:
        incident = session.scalar(select(Incident).where(Incident.external_id == "4"))
        assert incident is not None and incident.resolved_at is None
    reopened.update(issue_type="issue", type="ISSUE", updated_at=gl_at(300))
    moved.update(moved_to_id=99, state="closed", updated_at=gl_at(310))

    report = sync(db, org(fake))

    assert report.removed == {"incident": 2}
    assert counts(db)["incidents"] == 0
