"""The demo organisation and `insights demo`: realistic data through the normal import path."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from git_support import GitRepo
from typer.testing import CliRunner

from insights import demo, pipeline
from insights.cli import app
from insights.metrics.windows import default_window
from insights.model import ChangeEvent, CommitEvent, DeploymentEvent, IncidentEvent
from insights.store.db import unit_of_work

NOW = datetime(2026, 2, 11, 15, 30, tzinfo=UTC)  # a Wednesday in 2026-W07


@pytest.fixture(scope="module")
def events():
    return demo.generate(NOW)


def test_demo_has_three_teams_six_services_and_twelve_weeks(events):
    config = demo.demo_tenant_config()
    assert [t.name for t in config.teams] == ["payments", "search", "platform"]
    assert {s.name for s in config.services} == {e.service for e in events}
    assert len(config.services) == 6
    commits = [e for e in events if isinstance(e, CommitEvent)]
    span = max(c.committed_at for c in commits) - min(c.committed_at for c in commits)
    assert timedelta(weeks=11) < span <= timedelta(weeks=12, days=3)
    # Nothing is in the future of the current week's start.
    monday = datetime(2026, 2, 9, tzinfo=UTC)
    assert all(c.committed_at < monday for c in commits)
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["ChangeEvent"] > 300 and kinds["IncidentEvent"] >= 10


def test_demo_changes_have_reviews_and_deployments_cover_both_environments(events):
    changes = [e for e in events if isinstance(e, ChangeEvent)]
    assert all(c.first_commit_at <= c.opened_at < c.first_review_at < c.merged_at for c in changes)
    environments = Counter(
        (e.environment, e.status) for e in events if isinstance(e, DeploymentEvent)
    )
    assert environments[("production", "success")] > 200
    assert environments[("staging", "success")] > 200
    assert environments[("production", "failure")] > 0


def test_demo_has_a_rollback_and_linked_and_unlinked_incidents(events):
    production = [
        e
        for e in events
        if isinstance(e, DeploymentEvent)
        and e.environment == "production"
        and e.status == "success"
    ]
    rollbacks = [d for d in production if d.id.endswith("-rollback")]
    assert len(rollbacks) == 1
    rollback = rollbacks[0]
    earlier = [
        d.sha
        for d in production
        if d.service == rollback.service and d.finished_at < rollback.finished_at
    ]
    assert rollback.sha in earlier[:-1]  # a sha production ran before the failed deployment
    assert rollback.commits == ()
    incidents = [e for e in events if isinstance(e, IncidentEvent)]
    assert any(i.deployment_id for i in incidents)
    assert any(i.deployment_id is None for i in incidents)


def test_demo_is_the_same_for_the_same_week(events):
    assert demo.generate(NOW + timedelta(days=1)) == events
    assert demo.generate(NOW + timedelta(days=7)) != events


def test_demo_carries_a_hostile_title_as_data(events):
    titles = {e.title for e in events if isinstance(e, ChangeEvent)}
    assert demo.HOSTILE_TITLE in titles


def _history(reports, kind, name):
    report = next(r for r in reports if r.scope.kind == kind and r.scope.name == name)
    return report.history


def test_one_team_improves_and_one_degrades(db, events):
    config = demo.demo_tenant_config()
    with unit_of_work(db.engine) as session:
        repo = pipeline.apply_org_config(session, config)
        pipeline.store_events(repo, events, create_services=True, tenant_config=config)
    with unit_of_work(db.engine) as session:
        reports = pipeline.compute_all(session, "demo", default_window(NOW))

    def lead(history, part):
        values = [w.lead_time_hours.median for w in part(history) if w.lead_time_hours.median]
        return sum(values) / len(values)

    def first(h):
        return h[:4]

    def last(h):
        return h[-4:]

    payments, search = _history(reports, "team", "payments"), _history(reports, "team", "search")
    assert len(payments) == 12
    assert lead(payments, last) < lead(payments, first) / 2
    assert lead(search, last) > lead(search, first) * 2
    assert sum(w.deployment_count for w in last(payments)) > sum(
        w.deployment_count for w in first(payments)
    )
    assert sum(w.deployment_count for w in last(search)) < sum(
        w.deployment_count for w in first(search)
    )
    # The rollback in search-api's last week counts as a failed deployment and as rework.
    search_api = next(r for r in reports if r.scope.name == "search-api")
    assert search_api.failed_deployments >= 1 and search_api.rework_deployments >= 1
    # billing's revert fails the deployment that shipped the reverted change, without any
    # incident, and the deployment that shipped the revert is rework
    billing = next(r for r in reports if r.scope.name == "billing")
    assert billing.failed_by.revert == 1
    assert billing.failed_deployments >= 1 and billing.rework_deployments >= 1
    # gateway's incidents come from PagerDuty and still mark deployments failed
    gateway = next(r for r in reports if r.scope.name == "gateway")
    assert sum(w.failed_by.incident for w in gateway.history) >= 1


def test_demo_has_a_pagerduty_sourced_service_and_a_revert(events):
    config = demo.demo_tenant_config()
    gateway = config.service("gateway")
    assert gateway is not None and [s.kind for s in gateway.incidents] == ["pagerduty"]
    paged = [e for e in events if isinstance(e, IncidentEvent) and e.service == "gateway"]
    assert paged and all(re.fullmatch(r"Q[0-9A-F]{12}", i.id) for i in paged)
    assert {i.severity for i in paged} <= {"p2", "p3"}
    assert any(i.deployment_id for i in paged)  # named by a `Deployment:` note
    reverts = [
        e
        for e in events
        if isinstance(e, CommitEvent) and "This reverts commit" in (e.message or "")
    ]
    assert [r.service for r in reverts] == ["billing"]
    revert_prs = [e for e in events if isinstance(e, ChangeEvent) and e.reverts]
    assert len(revert_prs) == 1 and revert_prs[0].title.startswith('Revert "')


def test_demo_command_writes_reports_into_its_own_database(tmp_path: Path, monkeypatch):
    user_db = tmp_path / "mine.db"
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", f"sqlite:///{user_db}")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    index = out / "demo" / "index.html"
    assert result.output.strip().splitlines()[-1] == str(index.resolve())
    assert (out / "demo.db").is_file()
    assert not user_db.exists()  # the user's database is never touched
    html = index.read_text()
    links = sorted(re.findall(r'<a href="([^"]+)">', html))
    files = sorted(str(p.relative_to(index.parent)) for p in index.parent.glob("*/*.html"))
    assert links == files and len(files) == 10  # 6 services, 3 teams, the tenant
    # The hostile title tops search-api's slowest changes and shows as text.
    search_api = next(index.parent.glob("*/service-search-api.html")).read_text()
    assert "Escape &lt;script&gt;alert(1)&lt;/script&gt; in search snippets" in search_api
    assert "<script" not in search_api
    # Running it again starts from a fresh demo database and gives the same reports.
    again = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert sorted(re.findall(r'<a href="([^"]+)">', index.read_text())) == links
    # `demo --repo` into the same folder: its index lists only the clone's reports.
    repo = _tagged_repo(tmp_path / "shop-app")
    local = CliRunner().invoke(app, ["demo", "--repo", str(repo.path), "--out", str(out)])
    assert local.exit_code == 0, local.output
    repo_links = sorted(re.findall(r'<a href="([^"]+)">', index.read_text()))
    assert repo_links == ["2026-W03/service-shop-app.html", "2026-W03/tenant.html"]
    assert sorted(p.name for p in index.parent.glob("*/*.html")) == [
        "service-shop-app.html",
        "tenant.html",
    ]


def test_demo_refuses_to_clear_a_folder_it_did_not_write(tmp_path: Path):
    real = tmp_path / "out" / "demo" / "2026-W05"
    real.mkdir(parents=True)
    (real / "tenant.html").write_text("a real tenant named demo")
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path / 'out' / 'demo'}: holds reports that `insights demo` did not write;"
        " choose another --out"
    )
    assert (real / "tenant.html").read_text() == "a real tenant named demo"


def _tagged_repo(path: Path) -> GitRepo:
    """Commits over two weeks of January 2026, tagged v1 (2026-W02) and v2 (2026-W03)."""
    repo = GitRepo(path)
    repo.commit("start", "2026-01-05T09:00:00Z")
    repo.commit("feature a", "2026-01-06T10:00:00Z")
    repo.tag("v1", date="2026-01-07T12:00:00Z")
    repo.commit("feature b", "2026-01-12T10:00:00Z")
    repo.commit("fix <b>", "2026-01-13T15:00:00Z")
    repo.tag("v2", date="2026-01-14T16:00:00Z")
    return repo


def test_demo_with_a_local_repo_reports_the_week_of_its_newest_tag(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("INSIGHTS_DATABASE_URL", raising=False)
    repo = _tagged_repo(tmp_path / "shop-app")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["demo", "--repo", str(repo.path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = out / "demo" / "2026-W03" / "service-shop-app.html"
    assert report.is_file() and (out / "demo" / "2026-W03" / "tenant.html").is_file()
    html = report.read_text()
    assert "Service shop-app — 2026-W03" in html
    assert "localgit" in html  # the coverage table names the source
    # v2 shipped the two commits after v1: lead times 54 h and 25 h, median 39.5 h.
    assert '<div class="value">39.5 <span class="unit">hours median</span></div>' in html


def test_demo_with_a_missing_repo_is_a_one_line_error(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["demo", "--repo", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {tmp_path / 'nope'}: no such directory")
