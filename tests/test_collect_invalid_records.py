"""Collectors validate through the event-model boundary (issue 13): a record a Git host or a
clone sends with a time outside 1970..2100 or a negative duration is skipped with a warning
naming it, counted as skipped in the sync report, and the rest of the sync is stored."""

from __future__ import annotations

import pytest
from conftest import Database
from git_support import GitRepo
from hosts_support import FakeGitHub, FakeGitLab
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from insights.collect.localgit import sync_local_repo
from insights.collect.rebuild import rebuild_service
from insights.collect.sync import SyncReport, run_sync
from insights.config import OrgConfig, ServiceConfig, SourceConfig, TenantConfig
from insights.store.db import unit_of_work
from insights.store.models import Change, Commit, Deployment, Incident

TOKEN_ENV = "TEST_HOST_TOKEN"


def _org(kind: str, repo: str, url: str) -> OrgConfig:
    source = SourceConfig(
        kind=kind,
        repo=repo,
        base_url=url,
        token_env=TOKEN_ENV,
        environments=["production"],
        max_rate_limit_wait_seconds=1.0,
        retry_backoff_seconds=0.01,
    )
    service = ServiceConfig(name="shop", team="payments", source=source)
    return OrgConfig(tenants=[TenantConfig(name="acme", services=[service])])


def _ids(db: Database, model: type) -> set[str]:
    with unit_of_work(db.engine) as session:
        return set(session.scalars(select(model.external_id)))


def _shas(db: Database) -> set[str]:
    with unit_of_work(db.engine) as session:
        return set(session.scalars(select(Commit.sha)))


def _warned(report: SyncReport, *parts: str) -> None:
    assert any(all(part in w for part in parts) for w in report.warnings), report.warnings


def test_github_sync_skips_out_of_range_and_negative_records_and_stores_the_rest(
    db: Database, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = FakeGitHub(httpserver)
    monkeypatch.setenv(TOKEN_ENV, github.token)
    shas = github.add_commits(6)
    github.history[2]["commit"]["committer"]["date"] = "1600-01-01T00:00:00Z"
    github.add_deployment(shas[1], minutes=10)
    far = github.add_deployment(shas[3], minutes=20)
    github.deployments[-1]["created_at"] = "2300-01-01T00:00:00Z"
    github.add_deployment(shas[5], minutes=30)
    github.add_pull(1, created=0, merged=20, commits=[shas[1]])
    github.add_pull(2, created=50, merged=40, commits=[shas[3]])  # merged before it opened
    github.add_pull(3, created=60, merged=70, commits=[shas[5]])
    github.add_issue(10, opened=30, closed=40, labels=["incident"])
    github.issues[-1]["created_at"] = "1600-01-01T00:00:00Z"
    github.add_issue(11, opened=35, closed=45, labels=["incident"])

    [report] = run_sync(db.engine, _org("github", github.repo, github.url), tenant="acme")

    assert report.skipped == {"deployment": 1, "change": 1, "incident": 1, "commit": 1}
    _warned(report, f"deployment {far}", "started_at", "outside the accepted range")
    _warned(report, "pull request #2", "merged_at: before opened_at")
    _warned(report, "issue #10", "opened_at", "outside the accepted range")
    _warned(report, f"commit {shas[2][:12]}", "committed_at")
    assert _ids(db, Deployment) == {"1000", "1002"}
    assert _ids(db, Change) == {"1", "3"}
    assert _ids(db, Incident) == {"11"}
    # the skipped deployment is not the next one's base: 1002 ships commits 2..5 (2 refused)
    assert _shas(db) == {shas[3], shas[4], shas[5]}
    # the cursor moved past them: a second sync refuses nothing again and stores the same
    [again] = run_sync(db.engine, _org("github", github.repo, github.url), tenant="acme")
    assert again.skipped == {}
    assert _ids(db, Deployment) == {"1000", "1002"}
    # a rebuild from the kept raw payloads refuses the same records, by name, and keeps the rest
    config = _org("github", github.repo, github.url).tenants[0]
    rebuilt = rebuild_service(db.engine, config, config.services[0])
    assert rebuilt.skipped >= 3
    assert any("pull request #2" in w for w in rebuilt.warnings), rebuilt.warnings
    assert (_ids(db, Deployment), _ids(db, Change), _ids(db, Incident)) == (
        {"1000", "1002"},
        {"1", "3"},
        {"11"},
    )


def test_gitlab_sync_skips_out_of_range_and_negative_records_and_stores_the_rest(
    db: Database, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gitlab = FakeGitLab(httpserver)
    monkeypatch.setenv(TOKEN_ENV, gitlab.token)
    shas = gitlab.add_commits(4)
    gitlab.add_deployment(shas[1], minutes=10)
    far = gitlab.add_deployment(shas[2], minutes=20)
    gitlab.deployments[-1]["deployable"]["started_at"] = "2300-01-01T00:00:00.000Z"
    gitlab.add_deployment(shas[3], minutes=30)
    gitlab.add_merge_request(1, created=0, merged=20, commits=[shas[1]])
    gitlab.add_merge_request(2, created=50, merged=40, commits=[shas[2]])
    gitlab.add_incident(5, opened=30, closed=40, labels=["incident"])
    gitlab.issues[-1]["created_at"] = "1600-01-01T00:00:00.000Z"
    gitlab.add_incident(6, opened=35, closed=45, labels=["incident"])

    [report] = run_sync(db.engine, _org("gitlab", gitlab.project, gitlab.url), tenant="acme")

    assert report.skipped == {"deployment": 1, "change": 1, "incident": 1}
    _warned(report, f"deployment {far}", "started_at", "outside the accepted range")
    _warned(report, "merge request !2", "merged_at: before opened_at")
    _warned(report, "issue #5", "opened_at", "outside the accepted range")
    assert _ids(db, Deployment) == {"500", "502"}
    assert _ids(db, Change) == {"1"}
    assert _ids(db, Incident) == {"6"}
    assert _shas(db) == {shas[2], shas[3]}  # 502 ships what the refused 501 would have


def test_localgit_sync_skips_a_tag_and_a_commit_dated_2300(db: Database, tmp_path) -> None:
    repo = GitRepo(tmp_path / "app")
    first = repo.commit("first", "2026-01-05T10:00:00Z")
    repo.tag("v1.0.0", date="2026-01-05T11:00:00Z")
    far = repo.commit("from the future", "@10413792000 +0000")  # 2300-01-01
    repo.tag("v1.1.0", date="@10413792000 +0000")
    last = repo.commit("third", "2026-01-06T10:00:00Z")
    repo.tag("v1.2.0", date="2026-01-06T11:00:00Z")

    report = sync_local_repo(db.engine, repo.path, service="app")

    assert report.skipped == {"commit": 1, "deployment": 1}
    _warned(report, "tag 'v1.1.0'", "finished_at", "outside the accepted range")
    _warned(report, f"commit {far[:12]}", "outside")
    assert _ids(db, Deployment) == {"v1.0.0", "v1.2.0"}
    assert _shas(db) == {first, last}
