"""GitHub collector against a local server speaking GitHub's REST wire format."""

from __future__ import annotations

import logging
import math
import time

import pytest
from conftest import Database
from hosts_support import FakeGitHub, at
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from insights.collect.github import GitHubCollector
from insights.collect.github_map import deployment_outcome, map_issue, map_pull
from insights.collect.sync import SyncContext, SyncReport, run_sync
from insights.config import OrgConfig, ServiceConfig, SourceConfig, TenantConfig
from insights.errors import UserError
from insights.model import DeploymentStatus
from insights.store.db import unit_of_work
from insights.store.models import Change, Deployment, Incident
from insights.store.repository import TenantRepository

TOKEN_ENV = "TEST_GITHUB_TOKEN"


@pytest.fixture
def github(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake = FakeGitHub(httpserver)
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    return fake


def org(fake: FakeGitHub, **source: object) -> OrgConfig:
    options: dict[str, object] = {
        "kind": "github",
        "repo": fake.repo,
        "base_url": fake.url,
        "token_env": TOKEN_ENV,
        "environments": ["production"],
        "max_rate_limit_wait_seconds": 1.0,
        "retry_backoff_seconds": 0.01,
    }
    options.update(source)
    service = ServiceConfig(name="shop", team="payments", source=SourceConfig(**options))
    return OrgConfig(tenants=[TenantConfig(name="acme", services=[service])])


def sync(db: Database, config: OrgConfig) -> SyncReport:
    [report] = run_sync(db.engine, config, tenant="acme")
    return report


def counts(db: Database) -> dict[str, int]:
    with unit_of_work(db.engine) as session:
        return TenantRepository.open(session, "acme").counts()


def deployments_shipping_two_commits_each(fake: FakeGitHub, n: int) -> None:
    """History of 2n+1 commits; deployment i deploys commit 2i+1, so each later one ships 2."""
    shas = fake.add_commits(2 * n + 1)
    for i in range(n):
        fake.add_deployment(shas[2 * i + 1], minutes=10 + 5 * i, states=("in_progress", "success"))


def test_full_sync_stores_rows_with_one_list_page_per_hundred_plus_per_item_calls(
    db: Database, github: FakeGitHub
) -> None:
    n = 101
    deployments_shipping_two_commits_each(github, n)
    github.add_pull(
        1,
        created=0,
        merged=20,
        commits=[github.history[1]["sha"]],
        reviews=[("dev", "COMMENTED", 5), ("rev", "COMMENTED", 8), ("rev", "APPROVED", 12)],
    )
    github.add_pull(2, created=30, merged=None, commits=[github.history[2]["sha"]])
    github.add_pull(3, created=40, merged=60, commits=[github.history[3]["sha"]])
    github.add_issue(
        7,
        opened=100,
        closed=130,
        labels=["incident", "sev2"],
        body="Checkout down.\nDeployment: 1003\n",
    )
    github.add_issue(8, opened=200, closed=None, labels=["incident"])
    github.add_issue(9, opened=210, closed=None, labels=["incident"], pull_request=True)

    report = sync(db, org(github))

    assert report.stopped_early is None
    stored = counts(db)
    assert stored["deployments"] == n
    # the first deployment has no predecessor: its commits are not listed; the others ship 2
    assert stored["deployment_commits"] == 2 * (n - 1)
    assert stored["commits"] == 2 * (n - 1)
    assert stored["changes"] == 2
    assert stored["incidents"] == 2
    list_pages = math.ceil(n / 100)
    per_item = n + (n - 1)  # statuses of each deployment, a compare per later success
    pulls = 1 + 2 * 2  # one list page, commits + reviews per merged PR
    issues = 1
    assert report.requests == list_pages + per_item + pulls + issues
    assert len(github.seen) == report.requests
    with unit_of_work(db.engine) as session:
        incident = session.scalar(select(Incident).where(Incident.external_id == "7"))
        assert incident is not None
        assert incident.deployment_external_id == "1003"
        assert incident.severity == "sev2"
        first = session.scalar(select(Deployment).where(Deployment.external_id == "1000"))
        assert first is not None and first.commits_listed is False
        assert first.status == "success"


def test_unchanged_resync_makes_only_conditional_requests_answered_304(
    db: Database, github: FakeGitHub
) -> None:
    deployments_shipping_two_commits_each(github, 5)
    github.add_pull(1, created=0, merged=20, commits=[github.history[1]["sha"]])
    github.add_issue(7, opened=100, closed=130, labels=["incident"])
    sync(db, org(github))
    before = counts(db)
    github.reset_log()

    report = sync(db, org(github))

    assert report.stopped_early is None
    assert [s.status for s in github.seen] == [304, 304, 304]
    assert all(s.conditional for s in github.seen)
    assert counts(db) == before


def test_new_deployment_after_sync_fetches_only_it_and_its_commits(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    deployments_shipping_two_commits_each(github, 3)
    sync(sqlite_db, org(github))
    new = github.add_commits(3)
    github.add_deployment(new[-1], minutes=500)
    github.reset_log()

    report = sync(sqlite_db, org(github))

    paths = [s.path.split("/acme/shop")[1] for s in github.seen]
    assert paths[0] == "/deployments"
    assert paths[1] == "/deployments/1003/statuses"
    assert paths[2].startswith("/compare/")
    assert report.counts["deployment"].new == 1
    with unit_of_work(sqlite_db.engine) as session:
        dep = session.scalar(select(Deployment).where(Deployment.external_id == "1003"))
        assert dep is not None
    assert counts(sqlite_db)["deployment_commits"] == 2 * 2 + 4


def test_rate_limit_mid_sync_stops_with_cursor_saved_and_next_sync_resumes_without_duplicates(
    db: Database, github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    deployments_shipping_two_commits_each(github, 6)
    reset = str(int(time.time()) + 3600)
    github.fail(
        r"/deployments/1003/statuses",
        429,
        {"Retry-After": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes"
            " before you try again."
        },
    )

    with caplog.at_level(logging.WARNING):
        first = sync(db, org(github))

    assert first.stopped_early is not None
    assert "rate limited" in first.stopped_early
    assert "run sync again later" in first.stopped_early
    assert counts(db)["deployments"] == 3
    github.reset_log()

    second = sync(db, org(github))

    assert second.stopped_early is None
    statuses_fetched = [s.path for s in github.seen if s.path.endswith("/statuses")]
    assert [p.split("/")[-2] for p in statuses_fetched] == ["1003", "1004", "1005"]
    stored = counts(db)
    assert stored["deployments"] == 6
    assert stored["deployment_commits"] == 2 * 5


def test_rate_limit_shorter_than_budget_is_waited_out(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    deployments_shipping_two_commits_each(github, 2)
    github.fail(
        r"/deployments$",
        403,
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()))},
        {"message": "API rate limit exceeded for user ID 1."},
    )

    report = sync(sqlite_db, org(github, max_rate_limit_wait_seconds=2.0))

    assert report.stopped_early is None
    assert [s.status for s in github.seen[:2]] == [403, 200]
    assert counts(sqlite_db)["deployments"] == 2


def test_server_error_502_is_retried_with_backoff(sqlite_db: Database, github: FakeGitHub) -> None:
    deployments_shipping_two_commits_each(github, 2)
    github.fail(r"/deployments$", 502, body={"message": "Server Error"}, times=2)

    report = sync(sqlite_db, org(github))

    assert [s.status for s in github.seen[:3]] == [502, 502, 200]
    assert report.stopped_early is None
    assert counts(sqlite_db)["deployments"] == 2


def test_persistent_server_error_is_one_line_error_naming_repo(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    github.fail(r"/deployments$", 502, body={"message": "Server Error"}, times=10)
    with pytest.raises(UserError, match=r"github acme/shop: GitHub answered 502"):
        sync(sqlite_db, org(github))


def test_bad_token_is_one_line_error_naming_repo_and_token_env_without_the_token(
    sqlite_db: Database,
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "ghp_wrongWRONGwrong"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(UserError) as caught:
        sync(sqlite_db, org(github))
    message = str(caught.value)
    assert "github acme/shop" in message and TOKEN_ENV in message and "401" in message
    assert "\n" not in message
    out = capsys.readouterr()
    for text in (message, caplog.text, out.out, out.err):
        assert wrong not in text


def test_unknown_repo_404_names_repo_and_what_to_check(db: Database, github: FakeGitHub) -> None:
    config = org(github, repo="acme/nope")
    with pytest.raises(UserError) as caught:
        sync(db, config)
    message = str(caught.value)
    assert message.startswith("github acme/nope: /repos/acme/nope/deployments not found (404)")
    assert "check `repo`" in message and "Deployments" in message


def test_token_never_appears_in_debug_logs_or_output(
    sqlite_db: Database,
    github: FakeGitHub,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployments_shipping_two_commits_each(github, 2)
    github.fail(
        r"/deployments/1001/statuses",
        429,
        {"Retry-After": "30"},
        {"message": "API rate limit exceeded"},
    )
    with caplog.at_level(logging.DEBUG):
        report = sync(sqlite_db, org(github))
    out = capsys.readouterr()
    assert report.stopped_early
    assert caplog.records, "debug logging was on"
    for text in (caplog.text, out.out, out.err, report.stopped_early):
        assert github.token not in text


def test_compare_over_250_commits_follows_link_pages(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(262)
    github.add_deployment(shas[0], minutes=0)
    github.add_deployment(shas[261], minutes=600)

    report = sync(sqlite_db, org(github))

    compares = [s for s in github.seen if "/compare/" in s.path]
    assert [s.query.get("page", "1") for s in compares] == ["1", "2", "3"]
    assert counts(sqlite_db)["deployment_commits"] == 261
    assert report.stopped_early is None


def test_redeploy_of_same_sha_ships_no_commits_and_makes_no_compare(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(3)
    github.add_deployment(shas[0], minutes=0)
    github.add_deployment(shas[2], minutes=10)
    github.add_deployment(shas[2], minutes=20)

    sync(sqlite_db, org(github))

    assert len([s for s in github.seen if "/compare/" in s.path]) == 1
    assert counts(sqlite_db)["deployment_commits"] == 2


def test_running_deployment_is_rechecked_conditionally_until_it_finishes(
    db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(3)
    github.add_deployment(shas[0], minutes=0)
    running = github.add_deployment(shas[2], minutes=10, states=("in_progress",))
    sync(db, org(github))
    github.reset_log()

    sync(db, org(github))
    assert [(s.path.rsplit("/", 1)[-1], s.status) for s in github.seen] == [
        ("deployments", 304),
        ("statuses", 304),
        ("pulls", 304),
        ("issues", 304),
    ]

    github.set_status(running, "failure", minutes=30)
    sync(db, org(github))
    with unit_of_work(db.engine) as session:
        dep = session.scalar(select(Deployment).where(Deployment.external_id == str(running)))
        assert dep is not None and dep.status == "failure"


def test_environments_unset_keeps_only_those_matching_production_pattern(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(2)
    github.add_deployment(shas[0], minutes=0, environment="staging")
    github.add_deployment(shas[1], minutes=5, environment="prod")

    sync(sqlite_db, org(github, environments=[]))

    statuses = [s.path for s in github.seen if s.path.endswith("/statuses")]
    assert len(statuses) == 1
    with unit_of_work(sqlite_db.engine) as session:
        envs = session.scalars(select(Deployment.environment)).all()
    assert envs == ["prod"]


def test_workflow_runs_on_default_branch_count_as_deployments(
    db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(4)
    github.add_run(shas[0], minutes=0)
    github.add_run(shas[1], minutes=5, branch="feature")
    github.add_run(shas[2], minutes=10, conclusion="failure")
    github.add_run(shas[3], minutes=20)

    report = sync(db, org(github, workflow="deploy.yml"))

    assert report.stopped_early is None
    runs = [s for s in github.seen if s.path.endswith("/runs")]
    assert runs[0].query["branch"] == "main" and runs[0].query["status"] == "success"
    with unit_of_work(db.engine) as session:
        rows = session.execute(
            select(Deployment.external_id, Deployment.sha, Deployment.environment).order_by(
                Deployment.external_id
            )
        ).all()
    assert [(r[0], r[1]) for r in rows] == [("run-30000", shas[0]), ("run-30003", shas[3])]
    assert counts(db)["deployment_commits"] == 3
    github.reset_log()
    sync(db, org(github, workflow="deploy.yml"))
    assert {s.status for s in github.seen} == {304}


def test_unknown_workflow_names_workflow_in_error(sqlite_db: Database, github: FakeGitHub) -> None:
    with pytest.raises(UserError, match="`workflow`"):
        sync(sqlite_db, org(github, workflow="nope.yml"))


def test_merged_pull_request_becomes_change_with_breakdown_times(
    db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(3)
    github.add_pull(
        5,
        created=10,
        merged=40,
        commits=shas[1:],
        reviews=[
            ("dev", "COMMENTED", 12),
            ("ann", "CHANGES_REQUESTED", 15),
            ("bob", "APPROVED", 30),
        ],
    )
    sync(db, org(github))
    with unit_of_work(db.engine) as session:
        change = session.scalar(select(Change).where(Change.external_id == "5"))
    assert change is not None
    assert change.first_commit_at.isoformat().startswith("2026-01-05T09:01")
    assert change.first_review_at.isoformat().startswith("2026-01-05T09:15")
    assert change.approved_at.isoformat().startswith("2026-01-05T09:30")
    assert change.merged_at.isoformat().startswith("2026-01-05T09:40")
    assert change.commits == shas[1:]


def test_malformed_repo_name_is_one_line_error(sqlite_db: Database, github: FakeGitHub) -> None:
    with pytest.raises(UserError, match=r"source\.repo must be 'owner/name'"):
        sync(sqlite_db, org(github, repo="shop"))


def test_missing_token_env_is_one_line_error(
    sqlite_db: Database, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(UserError, match=f"environment variable {TOKEN_ENV} is not set"):
        sync(sqlite_db, org(github))


# -- pure mapping ------------------------------------------------------------------------------


def test_latest_status_decides_and_inactive_keeps_an_earlier_success() -> None:
    def status(i: int, state: str) -> dict[str, object]:
        return {"id": i, "state": state, "created_at": at(i)}

    assert deployment_outcome([status(2, "failure"), status(1, "success")]) == (
        DeploymentStatus.FAILURE,
        at(2),
    )
    assert deployment_outcome([status(1, "success"), status(2, "inactive")]) == (
        DeploymentStatus.SUCCESS,
        at(1),
    )
    assert deployment_outcome([status(1, "queued"), status(2, "inactive")])[0] is (
        DeploymentStatus.CANCELLED
    )
    assert deployment_outcome([status(1, "error")])[0] is DeploymentStatus.FAILURE
    assert deployment_outcome([status(1, "pending")]) == (DeploymentStatus.IN_PROGRESS, None)
    assert deployment_outcome([]) == (DeploymentStatus.IN_PROGRESS, None)


def test_incident_deployment_reference_from_label_wins_over_body() -> None:
    issue = {
        "number": 3,
        "created_at": at(0),
        "closed_at": None,
        "title": "down",
        "labels": [{"name": "incident"}, {"name": "deployment:1042"}, {"name": "P1"}],
        "body": "Deployment: 999",
    }
    event = map_issue("shop", issue)
    assert event is not None
    assert (event.deployment_id, event.severity) == ("1042", "P1")


def test_review_by_pull_author_is_not_a_first_review() -> None:
    pull = {
        "number": 1,
        "title": "t",
        "created_at": at(0),
        "merged_at": at(50),
        "merge_commit_sha": "abcd1234",
        "user": {"login": "dev"},
    }
    reviews = [
        {"user": {"login": "dev"}, "state": "COMMENTED", "submitted_at": at(1)},
        {"user": {"login": "rev"}, "state": "PENDING", "submitted_at": None},
    ]
    change = map_pull("shop", pull, [], reviews)
    assert change.first_review_at is None and change.first_commit_at is None


def test_remap_rederives_every_event_from_raw_payloads_without_requests(
    db: Database, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployments_shipping_two_commits_each(github, 3)
    github.add_pull(1, created=0, merged=20, commits=[github.history[1]["sha"]])
    github.add_issue(7, opened=100, closed=130, labels=["incident"])
    config = org(github)
    sync(db, config)
    before = counts(db)
    github.reset_log()
    monkeypatch.delenv(TOKEN_ENV)
    tenant = config.tenants[0]
    service = tenant.services[0]
    collector = GitHubCollector(service, tenant)
    ctx = SyncContext(db.engine, tenant, service, "github", collector.repo_key())

    collector.remap(ctx)

    assert github.seen == []
    assert counts(db) == before
    derived = {kind: c.total for kind, c in ctx.report.counts.items()}
    assert derived == {"deployment": 3, "commit": 4, "change": 1, "incident": 1}
    assert all(c.new == 0 and c.updated == 0 for c in ctx.report.counts.values())


def test_deployment_whose_sha_github_no_longer_has_is_kept_with_commits_unknown(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(3)
    github.add_deployment(shas[0], minutes=0)
    github.add_deployment("deadbeef" * 5, minutes=10)  # force-pushed away

    report = sync(sqlite_db, org(github))

    assert report.stopped_early is None
    with unit_of_work(sqlite_db.engine) as session:
        dep = session.scalar(select(Deployment).where(Deployment.external_id == "1001"))
    assert dep is not None and dep.status == "success" and dep.commits_listed is False


def test_secondary_limit_without_headers_stops_with_message(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    deployments_shipping_two_commits_each(github, 1)
    github.fail(
        r"/deployments$",
        403,
        body={
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes"
            " before you try again."
        },
    )
    report = sync(sqlite_db, org(github))
    assert report.stopped_early is not None
    assert report.stopped_early.startswith("github acme/shop: rate limited; the limit resets in 60")
    assert counts(sqlite_db)["deployments"] == 0


def test_deployment_deleted_between_list_and_statuses_is_skipped(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    deployments_shipping_two_commits_each(github, 3)
    github.fail(r"/deployments/1001/statuses$", 404, body={"message": "Not Found"})

    report = sync(sqlite_db, org(github))

    assert report.stopped_early is None
    with unit_of_work(sqlite_db.engine) as session:
        ids = session.scalars(select(Deployment.external_id).order_by(Deployment.external_id))
        assert list(ids) == ["1000", "1002"]


class RootGitHub(FakeGitHub):
    """The API served at the root, as api.github.com does (no /api/v3 prefix)."""

    prefix = ""


def test_root_base_url_like_api_github_com_works(
    sqlite_db: Database, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = RootGitHub(httpserver)
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    shas = fake.add_commits(2)
    fake.add_deployment(shas[0], minutes=0)
    fake.add_deployment(shas[1], minutes=5)

    report = sync(sqlite_db, org(fake, base_url=httpserver.url_for("/")))

    assert report.stopped_early is None
    assert fake.seen[0].path == "/repos/acme/shop/deployments"
    assert counts(sqlite_db)["deployment_commits"] == 1


def test_rate_limit_during_pull_requests_resumes_after_the_last_stored_one(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    shas = github.add_commits(4)
    for number in (1, 2, 3):
        github.add_pull(number, created=10 * number, merged=10 * number + 5, commits=[shas[number]])
    github.fail(
        r"/pulls/2/reviews$",
        403,
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 600)},
        {"message": "API rate limit exceeded for installation ID 1."},
    )

    first = sync(sqlite_db, org(github))

    assert first.stopped_early is not None
    assert counts(sqlite_db)["changes"] == 1
    github.reset_log()

    second = sync(sqlite_db, org(github))

    assert second.stopped_early is None
    fetched = [s.path.split("/pulls/")[1] for s in github.seen if "/pulls/" in s.path]
    assert fetched == ["2/commits", "2/reviews", "3/commits", "3/reviews"]
    with unit_of_work(sqlite_db.engine) as session:
        ids = sorted(session.scalars(select(Change.external_id)))
    assert ids == ["1", "2", "3"]


def test_exhausted_primary_limit_stops_before_the_request_that_would_fail(
    sqlite_db: Database, github: FakeGitHub
) -> None:
    deployments_shipping_two_commits_each(github, 2)
    github.remaining = 1  # the first answer says X-RateLimit-Remaining: 0, reset in an hour

    report = sync(sqlite_db, org(github))

    assert report.stopped_early is not None and "rate limited" in report.stopped_early
    assert [s.status for s in github.seen] == [200]


def test_incident_follows_its_issue_on_resync_reopened_then_unlabelled(
    db: Database, github: FakeGitHub
) -> None:
    github.add_issue(7, opened=100, closed=130, labels=["incident", "P1"])
    github.add_issue(8, opened=110, closed=None, labels=["bug"])
    sync(db, org(github))
    issue = github.issues[0]
    # reopened: GitHub keeps the old closed_at while the state is open again
    issue.update(state="open", updated_at=at(200), labels=[{"id": 1, "name": "incident"}])
    sync(db, org(github))
    with unit_of_work(db.engine) as session:
        incident = session.scalar(select(Incident))
        assert incident is not None
        assert (incident.resolved_at, incident.severity) == (None, None)
    issue.update(updated_at=at(300), labels=[])  # the incident label removed

    report = sync(db, org(github))

    assert report.removed == {"incident": 1}
    assert counts(db)["incidents"] == 0


def test_an_updated_at_in_the_far_future_does_not_hide_later_pull_requests(
    db: Database, github: FakeGitHub
) -> None:
    """A pull request whose `updated_at` says 2099 (a broken or hostile host) is stored, but
    the cursor stays at the newest believable time, so a later pull request is still read."""
    shas = github.add_commits(4)
    github.add_pull(5, created=10, merged=40, commits=shas[1:2])
    github.add_pull(6, created=20, merged=50, commits=shas[2:3])
    github.pulls[-1]["updated_at"] = "2099-01-01T00:00:00Z"
    sync(db, org(github))
    github.add_pull(7, created=60, merged=90, commits=shas[3:])
    sync(db, org(github))
    with unit_of_work(db.engine) as session:
        stored = set(session.scalars(select(Change.external_id)))
    assert stored == {"5", "6", "7"}
