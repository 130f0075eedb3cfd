"""The local-git collector on real repositories built in tmp dirs, stored in real databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from git_support import GitRepo
from sqlalchemy import select, text

from insights.collect.localgit import LocalGitCollector, _commit_row, sync_local_repo
from insights.config import ServiceConfig, SourceConfig, TenantConfig
from insights.errors import UserError
from insights.model import TITLE_MAX, CommitEvent, CommitRows
from insights.store.db import unit_of_work
from insights.store.models import Commit, Deployment, DeploymentCommit
from insights.store.repository import TenantRepository


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).astimezone(UTC)


def deployments(db) -> dict[str, dict]:
    """Stored deployments by id, with their listed commits (None when not listed)."""
    with unit_of_work(db.engine) as session:
        rows = session.execute(select(Deployment)).scalars().all()
        links: dict[int, set[str]] = {}
        for dep_id, sha in session.execute(
            select(DeploymentCommit.deployment_id, DeploymentCommit.sha)
        ):
            links.setdefault(dep_id, set()).add(sha)
        return {
            d.external_id: {
                "sha": d.sha,
                "finished_at": d.finished_at,
                "environment": d.environment,
                "status": d.status,
                "commits": links.get(d.id, set()) if d.commits_listed else None,
            }
            for d in rows
        }


def commits(db) -> dict[str, Commit]:
    with unit_of_work(db.engine) as session:
        return {c.sha: c for c in session.execute(select(Commit)).scalars()}


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """main: c1 ─ c2 ─ c3 ─ M(merge of feature: f1 ─ f2) ─ c4, tags v1 (annotated) on c1,
    v2 (lightweight) on M, v3 (annotated) on c4."""
    r = GitRepo(tmp_path / "app")
    r.commit(
        "first\n\nbody line", "2026-01-05T10:00:00+02:00", author_date="2026-01-04T09:00:00-05:00"
    )
    r.tag("v1", date="2026-01-05T12:00:00Z")
    r.commit("second", "2026-01-06T10:00:00Z")
    r.checkout("feature", create=True)
    r.commit("feature one", "2026-01-06T11:00:00Z")
    r.commit("feature two", "2026-01-06T12:00:00Z")
    r.checkout("main")
    r.commit("third", "2026-01-06T13:00:00Z")
    r.merge("feature", "2026-01-07T09:00:00Z")
    r.tag("v2")
    r.commit("fourth", "2026-01-08T09:00:00Z")
    r.tag("v3", date="2026-01-08T18:00:00Z")
    return r


def test_commits_are_stored_with_utc_times_parents_and_subject(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    stored = commits(db)
    assert set(stored) == repo.rev_list("--all")
    first = stored[repo.head("v1^{commit}")]
    assert first.committed_at == at("2026-01-05T08:00:00Z")
    assert first.authored_at == at("2026-01-04T14:00:00Z")
    assert first.message == "first"
    assert first.author == "Ada"
    assert first.parents == []
    merge = stored[repo.head("v2")]
    assert merge.parents == [repo.head("v2^1"), repo.head("v2^2")]


def test_annotated_tag_deploys_at_tagger_date_and_lightweight_at_commit_date(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    found = deployments(db)
    assert found["v1"]["finished_at"] == at("2026-01-05T12:00:00Z")
    assert found["v2"]["finished_at"] == at("2026-01-07T09:00:00Z")
    assert found["v3"]["finished_at"] == at("2026-01-08T18:00:00Z")
    assert found["v1"]["sha"] == repo.head("v1^{commit}")
    assert {d["environment"] for d in found.values()} == {"production"}
    assert {d["status"] for d in found.values()} == {"success"}


def test_first_tag_lists_no_commits_and_later_tags_ship_their_range(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    found = deployments(db)
    assert found["v1"]["commits"] is None  # no predecessor: no lead-time samples
    assert found["v2"]["commits"] == repo.rev_list("v1..v2")
    assert found["v3"]["commits"] == repo.rev_list("v2..v3") == {repo.head("v3^{commit}")}


def test_merge_commit_ships_with_the_branch_commits_it_brings(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    shipped = deployments(db)["v2"]["commits"]
    assert repo.head("v2") in shipped
    assert {repo.head("feature"), repo.head("feature~1")} <= shipped
    assert len(shipped) == 5  # second, third, feature one, feature two, merge


def test_retag_of_already_deployed_sha_ships_nothing(db, repo):
    repo.tag("v4", rev="v1^{commit}", date="2026-01-09T10:00:00Z")  # rollback to the first sha
    repo.tag("v5", rev="v3^{commit}", date="2026-01-10T10:00:00Z")  # re-tag of the current sha
    sync_local_repo(db.engine, repo.path, service="app")
    found = deployments(db)
    assert found["v4"]["commits"] == set()
    assert found["v5"]["commits"] == set()
    assert found["v3"]["commits"] == {repo.head("v3^{commit}")}


def test_tags_not_matching_the_pattern_are_not_deployments(db, repo):
    repo.tag("release-7", date="2026-01-09T10:00:00Z")
    sync_local_repo(db.engine, repo.path, service="app", tag_pattern="release-*")
    assert set(deployments(db)) == {"release-7"}


def maintenance_history(path: Path) -> GitRepo:
    """v1.0, then a fix on `maint` and a feature plus a merged topic branch on main (v1.1),
    v1.0.1 tagged on `maint` after v1.1, then `maint` merged into main (v1.2)."""
    r = GitRepo(path)
    r.commit("base", "2026-02-01T10:00:00Z")
    r.tag("v1.0", date="2026-02-01T12:00:00Z")
    r.checkout("maint", create=True)
    r.commit("fix", "2026-02-02T10:00:00Z")
    r.checkout("main")
    r.commit("feature", "2026-02-02T11:00:00Z")
    r.checkout("topic", create=True)
    r.commit("topic one", "2026-02-02T12:00:00Z")
    r.checkout("main")
    r.merge("topic", "2026-02-03T09:00:00Z")
    r.tag("v1.1", date="2026-02-03T12:00:00Z")
    r.checkout("maint")
    r.tag("v1.0.1", date="2026-02-04T12:00:00Z")  # after v1.1, on the maintenance branch
    r.checkout("main")
    r.merge("maint", "2026-02-05T10:00:00Z")
    r.commit("after", "2026-02-05T11:00:00Z")
    r.tag("v1.2", date="2026-02-05T12:00:00Z")
    return r


def test_maintenance_tags_ship_each_commit_once_at_its_first_deployment(db, tmp_path):
    r = maintenance_history(tmp_path / "lib")
    sync_local_repo(db.engine, r.path, service="lib")
    found = deployments(db)
    assert found["v1.1"]["commits"] == r.rev_list("v1.1", "^v1.0")
    assert found["v1.0.1"]["commits"] == r.rev_list("v1.0.1", "^v1.0", "^v1.1")
    assert found["v1.2"]["commits"] == r.rev_list("v1.2", "^v1.0", "^v1.1", "^v1.0.1")
    # the fix shipped with v1.0.1, not again with v1.2 (prev..cur would list it twice)
    assert r.head("maint") not in found["v1.2"]["commits"]


def test_whole_history_and_step_by_step_syncs_ship_the_same_commits(db, tmp_path):
    """A first sync labels shipped commits from the parents `git log` printed; later syncs
    let `git rev-list` walk. Synced once at the end or after every tag (a fresh service per
    way), the stored links are the same (the test above checks the first way against
    `git rev-list`)."""
    r = maintenance_history(tmp_path / "lib")
    sync_local_repo(db.engine, r.path, service="whole")
    stepwise = GitRepo(tmp_path / "steps")  # the same history, synced after every tag
    for tag in ("v1.0", "v1.1", "v1.0.1", "v1.2"):
        stepwise.git("fetch", "-q", str(r.path), f"+refs/tags/{tag}:refs/tags/{tag}")
        sync_local_repo(db.engine, stepwise.path, service="steps")
    with unit_of_work(db.engine) as session:
        rows = session.execute(
            text(
                "SELECT s.name, d.external_id, l.sha FROM deployment_commits l"
                " JOIN deployments d ON d.id = l.deployment_id"
                " JOIN services s ON s.id = d.service_id"
            )
        ).all()
    by_service: dict[str, set[tuple[str, str]]] = {}
    for service, tag, sha in rows:
        by_service.setdefault(service, set()).add((tag, sha))
    assert by_service["steps"] == by_service["whole"]


def test_resync_with_nothing_new_reads_nothing(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    again = sync_local_repo(db.engine, repo.path, service="app")
    assert again.records == 0
    assert again.counts == {}


def test_resync_reads_only_new_commits_and_tags(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    repo.commit("fifth", "2026-01-09T09:00:00Z")
    repo.commit("sixth", "2026-01-09T10:00:00Z")
    repo.tag("v4", date="2026-01-09T12:00:00Z")
    again = sync_local_repo(db.engine, repo.path, service="app")
    assert {k: vars(c) for k, c in again.counts.items()} == {
        "commit": {"new": 2, "updated": 0, "unchanged": 0},
        "deployment": {"new": 1, "updated": 0, "unchanged": 0},
    }
    assert deployments(db)["v4"]["commits"] == repo.rev_list("v3..v4")


def test_backdated_tag_recomputes_the_deployments_after_it(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    repo.tag("v2.5", rev="v3~1", date="2026-01-08T12:00:00Z")  # between v2 and v3 in time
    sync_local_repo(db.engine, repo.path, service="app")
    found = deployments(db)
    assert found["v2.5"]["commits"] == repo.rev_list("v2..v2.5")
    assert found["v3"]["commits"] == repo.rev_list("v2.5..v3")


def test_deploy_log_deployments_get_shipped_commits_from_the_graph(db, repo, tmp_path):
    log = tmp_path / "deploys.ndjson"
    events = [
        {
            "type": "deployment",
            "id": "d1",
            "sha": repo.head("v1^{commit}")[:10],
            "finished_at": "2026-01-05T13:00:00Z",
        },
        {
            "type": "deployment",
            "id": "d2",
            "sha": repo.head("v2"),
            "status": "failure",
            "finished_at": "2026-01-07T10:00:00Z",
        },
        {
            "type": "deployment",
            "service": "app",
            "id": "d3",
            "sha": repo.head("v3^{commit}"),
            "finished_at": "2026-01-08T20:00:00Z",
        },
        {
            "type": "deployment",
            "id": "d4",
            "sha": repo.head("v3^{commit}"),
            "environment": "staging",
            "finished_at": "2026-01-08T19:00:00Z",
        },
    ]
    log.write_text("\n".join(json.dumps(e) for e in events) + "\n\n")
    sync_local_repo(db.engine, repo.path, service="app", deploy_log=log)
    found = deployments(db)
    assert set(found) == {"d1", "d2", "d3", "d4"}
    assert found["d1"]["sha"] == repo.head("v1^{commit}")  # short sha resolved
    assert found["d1"]["commits"] is None
    assert found["d2"]["status"] == "failure" and found["d2"]["commits"] is None
    assert found["d3"]["commits"] == repo.rev_list("v1..v3")  # the failed d2 is no predecessor
    assert found["d4"]["commits"] is None  # staging is not production


def test_deploy_log_listing_commits_keeps_them(db, repo, tmp_path):
    log = tmp_path / "deploys.ndjson"
    listed = [repo.head("v3^{commit}")]
    log.write_text(
        json.dumps(
            {
                "type": "deployment",
                "id": "d9",
                "sha": listed[0],
                "finished_at": "2026-01-08T20:00:00Z",
                "commits": listed,
            }
        )
        + "\n"
    )
    sync_local_repo(db.engine, repo.path, service="app", deploy_log=log)
    assert deployments(db)["d9"]["commits"] == set(listed)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "deploys.ndjson: line 2: not valid JSON"),
        (
            '{"type": "incident", "id": "i", "opened_at": "2026-01-01T00:00:00Z"}',
            "deploys.ndjson: line 2: type must be deployment, not incident",
        ),
        (
            '{"type": "deployment", "id": "x", "sha": "zz", "finished_at": "2026-01-01T00:00:00Z"}',
            "deploys.ndjson: line 2: deployment.sha: not a git sha",
        ),
        (
            '{"type": "deployment", "service": "other", "id": "x", "sha": "abcd",'
            ' "finished_at": "2026-01-01T00:00:00Z"}',
            "deploys.ndjson: line 2: service 'other' is not 'app'",
        ),
    ],
)
def test_bad_deploy_log_line_is_one_line_error_naming_file_and_line(
    sqlite_db, repo, tmp_path, line, message
):
    log = tmp_path / "deploys.ndjson"
    good = {
        "type": "deployment",
        "id": "d1",
        "sha": repo.head(),
        "finished_at": "2026-01-09T00:00:00Z",
    }
    log.write_text(json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(UserError) as caught:
        sync_local_repo(sqlite_db.engine, repo.path, service="app", deploy_log=log)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    with unit_of_work(sqlite_db.engine) as session:
        assert session.scalar(text("select count(*) from deployments")) == 0


def test_missing_deploy_log_is_user_error(sqlite_db, repo, tmp_path):
    with pytest.raises(UserError, match="deploy log not found"):
        sync_local_repo(sqlite_db.engine, repo.path, service="app", deploy_log=tmp_path / "no")


@pytest.mark.parametrize("where", ["missing", "plain"])
def test_path_that_is_not_a_repository_is_user_error(tmp_path, where):
    path = tmp_path / where
    if where == "plain":
        path.mkdir()
    service = ServiceConfig(name="app", source=SourceConfig(kind="localgit", path=path))
    with pytest.raises(UserError, match=str(path)):
        LocalGitCollector(service, TenantConfig(name="default", services=[service]))


def test_fast_commit_event_equals_the_validated_event():
    long_subject = "x" * 5000
    row = _commit_row(
        b"ab" * 20, b"cd" * 20, b"Ada", b"1767225600", b"1767229200", long_subject.encode(), b""
    )
    assert row is not None
    (built,) = CommitRows("app", [row]).events()
    validated = CommitEvent(
        service="app",
        sha="ab" * 20,
        committed_at="2026-01-01T01:00:00Z",
        authored_at="2026-01-01T00:00:00Z",
        parents=["cd" * 20],
        author="Ada",
        message=long_subject,
    )
    assert built == validated
    assert built.model_dump() == validated.model_dump()


def test_commit_row_decodes_like_the_whole_log_and_keeps_the_revert_line():
    """Tokens are decoded one by one; invalid UTF-8 becomes U+FFFD exactly as decoding git's
    whole output did (a NUL ends every byte sequence), text is cut by characters, not bytes."""
    author = "Zoë ".encode() + b"\xe2\x82" + "é".encode() * 400  # a cut-off sequence, 802 bytes
    subject = b'Revert "fix"'
    body = b"This reverts commit " + b"e" * 40 + b".\n\nSigned-off-by: \xff\n"
    row = _commit_row(b"ab" * 20, b"", author, b"0", b"4102444800", subject, body)
    assert row is not None
    whole = b"\0".join([author, subject, body]).decode("utf-8", "replace").split("\0")
    (event,) = CommitRows("app", [row]).events()
    validated = CommitEvent(
        service="app",
        sha="ab" * 20,
        committed_at="2100-01-01T00:00:00Z",
        authored_at="1970-01-01T00:00:00Z",
        author=whole[0],
        message=f"{whole[1]}\n\nThis reverts commit {'e' * 40}.",
    )
    assert event == validated
    assert len(event.author) == TITLE_MAX and event.author.startswith("Zoë \ufffdé")
    assert _commit_row(b"ab" * 20, b"", b"", b"0", b"4102444801", b"", b"") is None  # > 2100
    empty = _commit_row(b"ab" * 20, b"", b"", b"5", b"5", b"", b"")
    assert empty is not None and empty[2] is None and empty[5] is None  # NULL, as before


def test_fast_write_stores_times_like_the_orm_and_they_filter_in_sql(db, repo):
    sync_local_repo(db.engine, repo.path, service="app")
    with unit_of_work(db.engine) as session:
        repo_ = TenantRepository.open(session, "default")
        frames = repo_.delivery_frames()
        later = session.scalars(
            select(Commit.sha).where(Commit.committed_at >= at("2026-01-08T09:00:00Z"))
        ).all()
        session.add(
            Commit(
                tenant_id=repo_.tenant_id,
                service_id=repo_.require_service("app").id,
                sha="f" * 40,
                committed_at=at("2026-01-08T09:00:00Z"),
                parents=[],
            )
        )
        session.flush()
        if db.dialect == "sqlite":
            raw = dict(session.execute(text("select sha, committed_at from commits")).all())
            assert raw[repo.head("v3^{commit}")] == raw["f" * 40]  # same text format as the ORM
    assert later == [repo.head("v3^{commit}")]
    assert frames.commits["committed_at"].dt.tz is not None


def test_tag_of_a_tag_deploys_the_commit_it_finally_points_at(db, repo):
    repo.git("tag", "-a", "-m", "nested", "v9", "v3", date="2026-01-09T10:00:00Z")
    sync_local_repo(db.engine, repo.path, service="app")
    found = deployments(db)
    assert found["v9"]["sha"] == repo.head("v3^{commit}")
    assert found["v9"]["finished_at"] == at("2026-01-09T10:00:00Z")
    assert found["v9"]["commits"] == set()  # the same sha as v3: ships nothing


def test_pull_heads_and_other_refs_are_not_the_history_only_branches_and_tags(db, repo):
    """A mirror carries refs/pull/* (unmerged pull request heads) and notes: not commits of
    the project, so they must not inflate lead-time inputs or the coverage counts."""
    repo.checkout("pr-head", create=True, start="v3")
    unmerged = repo.commit("never merged", "2026-01-09T09:00:00Z")
    repo.checkout("main")
    repo.git("update-ref", "refs/pull/7/head", unmerged)
    repo.git("branch", "-D", "pr-head")
    repo.git("notes", "add", "-m", "a note", "v3", date="2026-01-09T10:00:00Z")
    sync_local_repo(db.engine, repo.path, service="app")
    stored = commits(db)
    assert unmerged not in stored
    assert set(stored) == repo.rev_list("--branches", "--tags")
