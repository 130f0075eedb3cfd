"""Reverts found in the history mark the deployment that shipped the reverted change failed.

Real git repositories (`git revert` of a tagged commit, `git revert -m 1` of a merge) read by
the local-git collector into a real database, and the metrics they change; the change-level
rules (`Revert "…"` titles, `reverts` ids) on canonical events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from git_support import GitRepo
from metrics_support import change, commit, dep, frames, incident

from insights import pipeline
from insights.collect.localgit import sync_local_repo
from insights.metrics.compute import compute, prepare
from insights.metrics.revert_markers import reverted_change_ref, reverted_sha, reverted_title
from insights.metrics.scope import parse_scope
from insights.metrics.windows import parse_window
from insights.store.db import unit_of_work

NOW = datetime(2026, 3, 1, tzinfo=UTC)
W02 = parse_window("2026-W02", NOW)  # 2026-01-05 .. 2026-01-12


def _write(repo: GitRepo, name: str, text: str) -> None:
    (repo.path / name).write_text(text)
    repo.git("add", name)


def revert(repo: GitRepo, rev: str, date: str, *extra: str) -> str:
    repo.git("revert", "--no-edit", *extra, rev, date=date)
    return repo.head()


def service_metrics(db, path: Path, service: str):
    sync_local_repo(db.engine, path, tenant="acme", service=service)
    with unit_of_work(db.engine) as session:
        return pipeline.compute_report(session, "acme", parse_scope(f"service:{service}"), W02)


def test_git_revert_of_a_tagged_commit_fails_the_deployment_that_shipped_it(db, tmp_path):
    repo = GitRepo(tmp_path / "app")
    _write(repo, "a.txt", "base")
    repo.commit("base", "2026-01-05T08:00:00Z")
    repo.tag("v1.0.0", date="2026-01-05T09:00:00Z")
    _write(repo, "cache.txt", "cache")
    bad = repo.commit("Add cache", "2026-01-05T10:00:00Z")
    repo.tag("v1.1.0", date="2026-01-05T12:00:00Z")
    fix = revert(repo, bad, "2026-01-05T15:00:00Z")
    repo.tag("v1.2.0", date="2026-01-05T16:30:00Z")
    assert f"This reverts commit {bad}." in repo.git("log", "-1", "--format=%B", fix)

    report = service_metrics(db, repo.path, "app")

    assert report.deployment_count == 3
    assert report.failed_deployments == 1  # v1.1.0, the one that shipped "Add cache"
    assert report.change_failure_rate == pytest.approx(1 / 3, abs=1e-4)
    # recovered when the revert reached production: 12:00 → 16:30
    assert report.recovery_time_hours.median == 4.5
    assert report.recovery_time_hours.samples == 1
    assert report.rework_rate == pytest.approx(1 / 3, abs=1e-4)  # v1.2.0 shipped the revert


def test_revert_of_a_merge_fails_the_deployment_that_shipped_the_merge(db, tmp_path):
    repo = GitRepo(tmp_path / "shop")
    _write(repo, "a.txt", "base")
    repo.commit("base", "2026-01-05T08:00:00Z")
    repo.tag("v1", date="2026-01-05T08:30:00Z")
    repo.checkout("feature", create=True)
    _write(repo, "feature.txt", "f1")
    repo.commit("Feature part 1", "2026-01-05T09:00:00Z")
    _write(repo, "feature2.txt", "f2")
    repo.commit("Feature part 2", "2026-01-05T09:30:00Z")
    repo.checkout("main")
    merge = repo.merge("feature", "2026-01-05T10:00:00Z", "Merge branch 'feature'")
    repo.tag("v2", date="2026-01-05T11:00:00Z")
    _write(repo, "b.txt", "unrelated")
    repo.commit("Unrelated fix", "2026-01-06T09:00:00Z")
    repo.tag("v3", date="2026-01-06T10:00:00Z")
    revert(repo, merge, "2026-01-06T12:00:00Z", "-m", "1")
    repo.tag("v4", date="2026-01-06T13:00:00Z")

    report = service_metrics(db, repo.path, "shop")

    assert report.deployment_count == 4
    assert report.failed_deployments == 1  # v2 shipped the merge; v3 did not
    assert report.recovery_time_hours.median == 26.0  # v2 at 11:00 → v4 next day 13:00
    assert report.rework_rate == 0.25


def test_revert_before_production_or_in_the_same_deployment_is_no_failure(db, tmp_path):
    repo = GitRepo(tmp_path / "quiet")
    _write(repo, "a.txt", "base")
    repo.commit("base", "2026-01-05T08:00:00Z")
    repo.tag("v1", date="2026-01-05T08:30:00Z")
    _write(repo, "x.txt", "x")
    bad = repo.commit("Try something", "2026-01-05T09:00:00Z")
    revert(repo, bad, "2026-01-05T09:30:00Z")
    repo.tag("v2", date="2026-01-05T10:00:00Z")

    report = service_metrics(db, repo.path, "quiet")

    assert report.deployment_count == 2
    assert report.failed_deployments == 0
    assert report.change_failure_rate == 0.0
    assert report.rework_rate == 0.0


SHA = {name: (name * 40)[:40] for name in ("a", "b", "c", "d", "e")}


def history(*extra: dict) -> list[dict]:
    """a (d0) → b "Add cache" (d1) → c = revert of b (d2)."""
    return [
        commit(SHA["a"], "01-05 08:00"),
        commit(SHA["b"], "01-05 09:00", (SHA["a"],)),
        {
            **commit(SHA["c"], "01-05 13:00", (SHA["b"],)),
            "message": f'Revert "Add cache"\n\nThis reverts commit {SHA["b"]}.',
        },
        dep("d0", SHA["a"], "01-05 08:30"),
        dep("d1", SHA["b"], "01-05 10:00"),
        dep("d2", SHA["c"], "01-05 14:00"),
        *extra,
    ]


def test_incident_and_revert_of_one_deployment_count_it_once():
    with_incident = history(incident("INC-1", "01-05 11:00", "01-05 12:00", deployment_id="d1"))
    metrics = compute(frames(with_incident), W02)
    assert metrics.failed_deployments == 1
    # the incident's own times win over the revert's deployment: 11:00 → 12:00
    assert metrics.recovery_time_hours.median == 1.0


def test_rollback_and_revert_of_one_deployment_count_it_once_recovered_at_the_first():
    rolled = history(dep("d1b", SHA["a"], "01-05 11:00"))  # rollback to a, then the revert
    prepared = prepare(frames(rolled))
    failed = prepared.deployments.set_index("external_id")["failed"]
    assert failed.to_dict() == {"d0": False, "d1": True, "d1b": False, "d2": False}
    assert compute(frames(rolled), W02).recovery_time_hours.median == 1.0  # the rollback


def test_revert_of_a_revert_is_a_reapply_not_a_failure():
    reapply = {
        **commit(SHA["d"], "01-06 09:00", (SHA["c"],)),
        "message": f'Reapply "Add cache"\n\nThis reverts commit {SHA["c"]}.',
    }
    metrics = compute(frames(history(reapply, dep("d3", SHA["d"], "01-06 10:00"))), W02)
    assert metrics.failed_deployments == 1  # d1 only; d2 (the revert) did not fail


def _pr(id: str, title: str, merge_sha: str, at: str, **extra: object) -> dict:
    pr = change(
        id, first_commit=at, opened=at, review=None, merged=at, merge_sha=merge_sha, title=title
    )
    return {**pr, **extra}


def test_pull_request_titled_revert_fails_the_deployment_of_the_change_it_names():
    events = [
        commit(SHA["a"], "01-05 08:00"),
        commit(SHA["b"], "01-05 09:00", (SHA["a"],)),
        commit(SHA["c"], "01-05 13:00", (SHA["b"],)),
        _pr("10", "Add cache", SHA["b"], "01-05 09:00"),
        _pr("11", 'Revert "Add cache" (#10)', SHA["c"], "01-05 13:00"),
        dep("d0", SHA["a"], "01-05 08:30"),
        dep("d1", SHA["b"], "01-05 10:00"),
        dep("d2", SHA["c"], "01-05 14:00"),
    ]
    metrics = compute(frames(events), W02)
    assert metrics.failed_deployments == 1
    assert metrics.recovery_time_hours.median == 4.0


def test_change_naming_the_change_it_reverts_fails_that_changes_deployment():
    events = [
        commit(SHA["a"], "01-05 08:00"),
        commit(SHA["b"], "01-05 09:00", (SHA["a"],)),
        commit(SHA["c"], "01-05 13:00", (SHA["b"],)),
        _pr("10", "Add cache", SHA["b"], "01-05 09:00"),
        _pr("11", "Undo the cache, it leaks", SHA["c"], "01-05 13:00", reverts="10"),
        dep("d0", SHA["a"], "01-05 08:30"),
        dep("d1", SHA["b"], "01-05 10:00"),
        dep("d2", SHA["c"], "01-05 14:00"),
    ]
    assert compute(frames(events), W02).failed_deployments == 1


def test_revert_markers_are_read_from_messages_titles_and_branches():
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert reverted_sha(f'Revert "x"\n\nThis reverts commit {sha}.') == sha
    assert reverted_sha(f"This reverts commit {sha}, reversing\nchanges made to {sha}.") == sha
    assert reverted_sha("This reverts commit abc123.") is None  # abbreviated: not git's form
    assert reverted_title('Revert "Add cache"') == "Add cache"
    assert reverted_title("Revert the cache") is None
    assert reverted_change_ref("revert-42-feature/cache") == "42"
    assert reverted_change_ref("feature/revert-42", None) is None
    assert reverted_change_ref(None, "This reverts merge request !7\n\nWhy: leaks") == "7"


def test_github_revert_branch_and_gitlab_description_name_the_reverted_change():
    from insights.collect.github_map import map_pull
    from insights.collect.gitlab_map import map_merge_request

    # GitHub's "Revert" button opens a pull request from `revert-<n>-<branch>`
    pull = {
        "number": 11,
        "title": 'Revert "Add cache"',
        "created_at": "2026-01-05T12:00:00Z",
        "merged_at": "2026-01-05T13:00:00Z",
        "merge_commit_sha": SHA["c"],
        "head": {"ref": "revert-10-add-cache"},
    }
    assert map_pull("checkout", pull, [], []).reverts == "10"
    # GitLab's "Revert" button writes "This reverts merge request !n" into the description
    mr = {
        "iid": 8,
        "title": 'Revert "Add cache"',
        "created_at": "2026-01-05T12:00:00Z",
        "merged_at": "2026-01-05T13:00:00Z",
        "merge_commit_sha": SHA["c"],
        "description": "This reverts merge request !7",
    }
    assert map_merge_request("checkout", mr, [], []).reverts == "7"


def test_revert_committed_after_a_sync_is_found_by_the_next_one(sqlite_db, tmp_path):
    repo = GitRepo(tmp_path / "later")
    _write(repo, "a.txt", "base")
    repo.commit("base", "2026-01-05T08:00:00Z")
    repo.tag("v1", date="2026-01-05T08:30:00Z")
    _write(repo, "b.txt", "feature")
    bad = repo.commit("Feature", "2026-01-05T09:00:00Z")
    repo.tag("v2", date="2026-01-05T10:00:00Z")
    assert service_metrics(sqlite_db, repo.path, "later").failed_deployments == 0

    revert(repo, bad, "2026-01-06T09:00:00Z")
    repo.tag("v3", date="2026-01-06T10:00:00Z")
    report = service_metrics(sqlite_db, repo.path, "later")  # an incremental resync

    assert report.failed_deployments == 1
    assert report.recovery_time_hours.median == 24.0
