"""Which tags are deployments, on real git repositories made in the test: pre-releases and
maintenance lines left out by default, include/exclude patterns, a warning when a pattern
matches nothing, and reconciliation when the selection or the tags change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from git_support import GitRepo
from sqlalchemy import select

from insights.collect.localgit import TagSelection, sync_local_repo
from insights.collect.sync import sync_service
from insights.config import ServiceConfig, SourceConfig, TenantConfig
from insights.metrics.compute import compute
from insights.metrics.result import Window
from insights.model import IncidentEvent
from insights.pipeline import store_events
from insights.store.db import unit_of_work
from insights.store.models import Deployment, DeploymentCommit, RawPayload
from insights.store.repository import TenantRepository

YEAR = Window(
    start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2027, 1, 1, tzinfo=UTC), label="2026"
)


@pytest.mark.parametrize(
    ("tag", "selected"),
    [
        ("v2.34.0", True),
        ("2.0.0", True),
        ("1.0", True),
        ("3", True),
        ("v2.34.0-rc0", False),
        ("2.0.0rc1", False),
        ("v2.0.0.dev1", False),
        ("1.0a1", False),
        ("1.0b1", False),
        ("1.0-beta", False),
        ("1.0.0-alpha.2", False),
        ("1.0.x", False),
        ("2.0-maintenance", False),
        ("gitgui-0.10.0", False),
        ("latest", False),
    ],
)
def test_default_selection_takes_final_version_tags_only(tag, selected):
    assert TagSelection().selects(tag) is selected


def test_include_exclude_and_prerelease_switch_compose():
    assert TagSelection(include=("release-*",)).selects("release-7")
    assert not TagSelection(include=("release-*",)).selects("release-7rc1")
    assert TagSelection(prereleases=True).selects("v2.34.0-rc0")
    assert not TagSelection(prereleases=True).selects("1.0.x")
    assert not TagSelection(exclude=("0.*",)).selects("0.12")
    legacy = TagSelection.of(SourceConfig(kind="localgit", tag_pattern="v*"))
    assert legacy.include == ("v*",) and legacy.selects("v1") and not legacy.selects("1.0")


def deployments(db) -> dict[str, set[str] | None]:
    """Stored deployments by id with their listed commits (None when not listed)."""
    with unit_of_work(db.engine) as session:
        links: dict[int, set[str]] = {}
        for dep_id, sha in session.execute(
            select(DeploymentCommit.deployment_id, DeploymentCommit.sha)
        ):
            links.setdefault(dep_id, set()).add(sha)
        return {
            d.external_id: (links.get(d.id, set()) if d.commits_listed else None)
            for d in session.scalars(select(Deployment))
        }


def sync(db, repo: GitRepo, **source: object):
    service = ServiceConfig(
        name="lib", source=SourceConfig(kind="localgit", path=repo.path, **source)
    )
    return sync_service(db.engine, TenantConfig(name="default", services=[service]), service)


@pytest.fixture
def releases(tmp_path: Path) -> GitRepo:
    """main: 1.0, then release candidates and a dev tag before 2.0.0, then git-style v tags;
    a maintenance branch carries `1.0.x` (a line, not a release) and the 1.0.1 fix."""
    r = GitRepo(tmp_path / "lib")
    r.commit("base", "2026-01-05T10:00:00Z")
    r.tag("1.0", date="2026-01-05T12:00:00Z")
    r.checkout("maint", create=True)
    r.commit("fix on 1.0", "2026-01-06T10:00:00Z")
    r.tag("1.0.x")  # lightweight, moves with the branch in real projects
    r.tag("1.0.1", date="2026-01-06T12:00:00Z")
    r.checkout("main")
    r.commit("feature a", "2026-01-07T10:00:00Z")
    r.tag("2.0.0.dev1", date="2026-01-07T12:00:00Z")
    r.commit("feature b", "2026-01-08T10:00:00Z")
    r.tag("2.0.0rc1", date="2026-01-08T12:00:00Z")
    r.commit("feature c", "2026-01-09T10:00:00Z")
    r.tag("2.0.0", date="2026-01-09T12:00:00Z")
    r.commit("feature d", "2026-01-12T10:00:00Z")
    r.tag("v2.1.0-rc0", date="2026-01-12T12:00:00Z")
    r.commit("feature e", "2026-01-13T10:00:00Z")
    r.tag("v2.1.0", date="2026-01-13T12:00:00Z")
    return r


def test_prereleases_and_maintenance_lines_are_not_deployments_by_default(db, releases):
    report = sync(db, releases)
    found = deployments(db)
    assert set(found) == {"1.0", "1.0.1", "2.0.0", "v2.1.0"}
    assert report.warnings == []
    # 2.0.0 ships everything since 1.0 on main, the commits its pre-releases were cut from too
    assert found["2.0.0"] == releases.rev_list("2.0.0", "--not", "1.0", "1.0.1")
    assert found["v2.1.0"] == releases.rev_list("2.0.0..v2.1.0")


def test_prerelease_tags_count_only_when_asked(db, releases):
    sync(db, releases, tag_prereleases=True)
    assert set(deployments(db)) == {
        "1.0",
        "1.0.1",
        "2.0.0.dev1",
        "2.0.0rc1",
        "2.0.0",
        "v2.1.0-rc0",
        "v2.1.0",
    }


def test_a_maintenance_tag_makes_no_fake_rollback(db, releases):
    """`1.0.x` on the 1.0 line, taken as a release after 2.0.0, would run an old line again."""
    releases.checkout("maint")
    releases.git("tag", "-f", "1.0.x")
    releases.git("tag", "-a", "-f", "-m", "line", "1.0.x", date="2026-01-10T12:00:00Z")
    sync(db, releases, tag_include=["*"])
    with unit_of_work(db.engine) as session:
        frames = TenantRepository.open(session, "default").delivery_frames()
    assert compute(frames, YEAR).change_failure_rate == 0.0
    assert "1.0.x" not in deployments(db)


def test_changing_the_pattern_reconciles_deployments_links_and_raw_payloads(db, releases):
    sync(db, releases)
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, "default")
        incident = IncidentEvent(
            service="lib", id="INC-1", opened_at="2026-01-09T15:00:00Z", deployment_id="2.0.0"
        )
        store_events(repo, [incident], create_services=False)
    before = compute(_frames(db), YEAR)
    assert before.failed_deployments == 1

    report = sync(db, releases, tag_exclude=["2.0.0"])
    found = deployments(db)
    assert set(found) == {"1.0", "1.0.1", "v2.1.0"}
    assert report.removed == {"deployment": 1}
    # v2.1.0 now ships what 2.0.0 shipped as well: each commit still counted once
    assert found["v2.1.0"] == releases.rev_list("v2.1.0", "--not", "1.0", "1.0.1")
    with unit_of_work(db.engine) as session:
        kept = set(
            session.scalars(select(RawPayload.external_id).where(RawPayload.kind == "deployment"))
        )
        dangling = session.scalars(
            select(DeploymentCommit.deployment_id).where(
                DeploymentCommit.deployment_id.not_in(select(Deployment.id))
            )
        ).all()
    assert kept == set(found) and dangling == []
    after = compute(_frames(db), YEAR)
    # the incident that named 2.0.0 falls back to the latest deployment before it opened
    assert (after.deployment_count, after.failed_deployments) == (3, 1)

    sync(db, releases)  # back to the default: 2.0.0 again, v2.1.0 recomputed
    assert deployments(db) == {
        "1.0": None,
        "1.0.1": releases.rev_list("1.0..1.0.1"),
        "2.0.0": releases.rev_list("2.0.0", "--not", "1.0", "1.0.1"),
        "v2.1.0": releases.rev_list("2.0.0..v2.1.0"),
    }


def _frames(db):
    with unit_of_work(db.engine) as session:
        return TenantRepository.open(session, "default").delivery_frames()


def test_deleted_and_moved_tags_are_reconciled_on_the_next_sync(db, releases):
    sync(db, releases)
    releases.git("tag", "-d", "1.0.1")
    releases.commit("feature f", "2026-01-14T10:00:00Z")
    releases.git("tag", "-a", "-f", "-m", "moved", "v2.1.0", date="2026-01-14T12:00:00Z")
    sync(db, releases)
    found = deployments(db)
    assert set(found) == {"1.0", "2.0.0", "v2.1.0"}
    assert found["2.0.0"] == releases.rev_list("1.0..2.0.0")  # the fix is no longer shipped first
    with unit_of_work(db.engine) as session:
        moved = session.scalar(select(Deployment).where(Deployment.external_id == "v2.1.0"))
    assert moved.sha == releases.head("v2.1.0^{commit}")
    assert found["v2.1.0"] == releases.rev_list("2.0.0..v2.1.0")


def test_a_pattern_that_matches_nothing_warns_and_shows_tags_seen(db, tmp_path):
    """flask's tags have no `v`: the old default `v*` found nothing and said nothing."""
    r = GitRepo(tmp_path / "flask")
    for n, tag in enumerate(["0.12", "1.0", "2.0.0", "3.1.1"], start=1):
        r.commit(f"change {n}", f"2026-02-0{n}T10:00:00Z")
        r.tag(tag, date=f"2026-02-0{n}T12:00:00Z")
    report = sync_local_repo(db.engine, r.path, service="flask", tag_pattern="v*")
    assert deployments(db) == {}
    assert report.warnings[0] == (
        "tag pattern 'v*' matches none of the 4 tags (newest: 3.1.1, 2.0.0, 1.0, 0.12)"
    )
    assert "no tag is selected as a release" in report.warnings[1]
    default = sync_local_repo(db.engine, r.path, service="flask")
    assert default.warnings == [] and set(deployments(db)) == {"0.12", "1.0", "2.0.0", "3.1.1"}


def write_config(path: Path, repo: GitRepo, extra: str = "") -> Path:
    path.write_text(
        f"""
[[tenants]]
name = "default"

[[tenants.services]]
name = "lib"
source = {{ kind = "localgit", path = "{repo.path}"{extra} }}

[[tenants.services]]
name = "pushed"
""",
        encoding="utf-8",
    )
    return path


def test_sync_prints_the_warning_and_rebuild_restores_the_selected_deployments(
    db, releases, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from insights.cli import app

    runner = CliRunner()
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", db.url)
    config = write_config(tmp_path / "insights.toml", releases, ', tag_pattern = "v9*"')
    monkeypatch.setenv("INSIGHTS_CONFIG", str(config))
    synced = runner.invoke(app, ["sync"])
    assert synced.exit_code == 0, synced.output
    assert "tag pattern 'v9*' matches none of the 8 tags (newest: v2.1.0," in synced.output
    write_config(config, releases, ', tag_exclude = ["1.0*"]')
    runner.invoke(app, ["sync"])
    write_config(config, releases)
    runner.invoke(app, ["sync"])
    expected = deployments(db)
    write_config(config, releases, ', tag_exclude = ["1.0*"]')
    excluded = runner.invoke(app, ["sync"])
    assert "default/lib: removed 2 deployment(s) the source no longer selects" in excluded.output
    write_config(config, releases)
    with unit_of_work(db.engine) as session:  # damage what sync derived
        session.execute(DeploymentCommit.__table__.delete())
        session.execute(Deployment.__table__.update().values(finished_at=None))
    rebuilt = runner.invoke(app, ["rebuild", "--service", "lib"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "default/lib (localgit)" in rebuilt.output
    assert deployments(db) == expected
    refused = runner.invoke(app, ["rebuild", "--service", "pushed"])
    assert refused.exit_code == 2
    assert "source kind 'events' keeps no raw data" in refused.output
    unknown = runner.invoke(app, ["rebuild", "--service", "nope"])
    assert unknown.exit_code == 2 and "--service nope: not configured" in unknown.output
