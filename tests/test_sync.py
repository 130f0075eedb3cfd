"""The sync framework and `insights sync`: summaries, bad input, and resuming after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from git_support import GitRepo, fast_history
from sqlalchemy import text
from typer.testing import CliRunner

from insights.cli import app
from insights.collect.localgit import _store_after
from insights.collect.sync import SyncContext, run_sync
from insights.config import ServiceConfig, SourceConfig, TenantConfig, load_org_config
from insights.model import CommitRows
from insights.store.db import unit_of_work

runner = CliRunner()


def write_config(path: Path, repo: Path, extra: str = "") -> Path:
    path.write_text(
        f"""
[[tenants]]
name = "default"
  [[tenants.services]]
  name = "app"
    [tenants.services.source]
    kind = "localgit"
    path = "{repo}"
  [[tenants.services]]
  name = "pushed"
{extra}
""",
        encoding="utf-8",
    )
    return path


def scalar(db, sql: str) -> int:
    with unit_of_work(db.engine) as session:
        return session.scalar(text(sql))


@pytest.fixture
def small_repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "app")
    r.commit("one", "2026-01-05T10:00:00Z")
    r.tag("v1", date="2026-01-05T12:00:00Z")
    r.commit("two", "2026-01-06T10:00:00Z")
    r.tag("v2", date="2026-01-06T12:00:00Z")
    return r


def test_sync_command_prints_counts_per_kind(cli_env, tmp_path, small_repo, monkeypatch):
    monkeypatch.setenv("INSIGHTS_CONFIG", str(write_config(tmp_path / "i.toml", small_repo.path)))
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 0, result.output
    rows = [line.replace("│", " ").split() for line in result.stdout.splitlines()]
    commit_row = next(row for row in rows if "commit" in row)
    assert commit_row[:3] == ["default", "app", "commit"]
    assert commit_row[3:6] == ["2", "0", "0"]  # new, updated, unchanged
    assert "1 of 1 source(s) synced, 4 records read" in result.stdout
    again = runner.invoke(app, ["sync", "--service", "app"])
    assert again.exit_code == 0, again.output
    assert "0 records read" in again.stdout


def test_sync_skips_services_fed_by_events(cli_env, tmp_path, small_repo, monkeypatch):
    config = load_org_config(write_config(tmp_path / "i.toml", small_repo.path))
    reports = run_sync(cli_env.engine, config)
    assert [r.service for r in reports] == ["app"]


def test_run_sync_reports_counts_and_seconds(db, tmp_path, small_repo):
    config = load_org_config(write_config(tmp_path / "i.toml", small_repo.path))
    (report,) = run_sync(db.engine, config, tenant="default", service="app")
    assert {k: (c.new, c.updated, c.unchanged) for k, c in report.counts.items()} == {
        "commit": (2, 0, 0),
        "deployment": (2, 0, 0),
    }
    assert report.seconds > 0
    assert report.batches >= 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "--service", "nope"], "error: --service nope: not configured in insights.toml"),
        (["sync", "--tenant", "acme"], "error: --tenant acme: not configured in insights.toml"),
    ],
)
def test_sync_unknown_service_or_tenant_is_one_line_error(
    cli_env, tmp_path, small_repo, monkeypatch, args, message
):
    monkeypatch.setenv("INSIGHTS_CONFIG", str(write_config(tmp_path / "i.toml", small_repo.path)))
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message


GHOST_AND_GITHUB = """
  [[tenants.services]]
  name = "ghost"
    [tenants.services.source]
    kind = "localgit"
    path = "{missing}"
  [[tenants.services]]
  name = "web"
    [tenants.services.source]
    kind = "github"
    repo = "acme/web"
    token_env = "INSIGHTS_TEST_UNSET_GITHUB_TOKEN"
  [[tenants.services]]
  name = "later"
    [tenants.services.source]
    kind = "localgit"
    path = "{repo}"
"""


def later_repo(tmp_path: Path) -> Path:
    r = GitRepo(tmp_path / "later")
    r.commit("later one", "2026-01-07T10:00:00Z")
    r.tag("v1", date="2026-01-07T12:00:00Z")
    return r.path


def test_sync_tries_every_source_and_exits_1_when_any_failed(
    cli_env, tmp_path, small_repo, monkeypatch
):
    monkeypatch.delenv("INSIGHTS_TEST_UNSET_GITHUB_TOKEN", raising=False)
    extra = GHOST_AND_GITHUB.format(missing=tmp_path / "missing", repo=later_repo(tmp_path))
    monkeypatch.setenv(
        "INSIGHTS_CONFIG", str(write_config(tmp_path / "i.toml", small_repo.path, extra))
    )
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1, result.output
    errors = result.stderr.strip().splitlines()
    assert errors[0] == (
        f"error: default/ghost (localgit): {tmp_path / 'missing'}: no such directory"
        " (source.path of service 'ghost')"
    )
    assert errors[1].startswith("error: default/web (github): ")
    assert "INSIGHTS_TEST_UNSET_GITHUB_TOKEN" in errors[1]
    assert len(errors) == 2
    # the sources before and after the failing ones were synced, and the summary says so
    assert "2 of 4 source(s) synced" in result.stdout and "2 failed" in result.stdout
    for service, outcome in (("app", "ok"), ("ghost", "failed"), ("web", "failed")):
        row = next(line for line in result.stdout.splitlines() if f" {service} " in line)
        assert outcome in row, row
    with unit_of_work(cli_env.engine) as session:
        names = (
            session.execute(
                text(
                    "select s.name from services s join commits c on c.service_id = s.id "
                    "group by s.name order by s.name"
                )
            )
            .scalars()
            .all()
        )
    assert names == ["app", "later"]


def test_scheduled_sync_of_a_tenant_is_partial_when_one_source_fails(
    db, tmp_path, small_repo, monkeypatch
):
    from insights.config import Settings
    from insights.ops.runs import recorded_run
    from insights.ops.scheduler import Runtime, run_tenant_sync

    monkeypatch.delenv("INSIGHTS_TEST_UNSET_GITHUB_TOKEN", raising=False)
    extra = GHOST_AND_GITHUB.format(missing=tmp_path / "missing", repo=later_repo(tmp_path))
    org = load_org_config(write_config(tmp_path / "i.toml", small_repo.path, extra))
    runtime = Runtime(db.engine, Settings(database_url=db.url), org)
    result = recorded_run(
        db.engine, "sync", "default", None, lambda: run_tenant_sync(runtime, "default")
    )
    assert result.outcome == "partial"
    services = result.detail["services"]
    assert {name: s["outcome"] for name, s in services.items()} == {
        "app": "ok",
        "ghost": "failed",
        "web": "failed",
        "later": "ok",
    }
    assert "no such directory" in services["ghost"]["error"]
    assert result.detail["failures"] == 2
    assert scalar(db, "select count(*) from commits") == 3


def test_sync_without_config_is_one_line_error(cli_env):
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: nothing to sync: no tenants configured (set INSIGHTS_CONFIG)"
    )


def _insights() -> list[str]:
    script = Path(sys.executable).parent / "insights"
    return [str(script)] if script.exists() else [sys.executable, "-m", "insights.cli"]


def test_sync_killed_mid_run_resumes_without_lost_or_duplicated_rows(db, tmp_path, monkeypatch):
    total, every = 3000, 100
    repo = fast_history(tmp_path / "big", total, tag_every=every)
    config = write_config(tmp_path / "i.toml", repo.path)
    env = {
        **os.environ,
        "INSIGHTS_DATABASE_URL": db.url,
        "INSIGHTS_CONFIG": str(config),
        "INSIGHTS_LOCALGIT_BATCH": "50",
    }
    proc = subprocess.Popen(
        [*_insights(), "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        stored = scalar(db, "select count(*) from commits")
        if stored >= 200:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"sync ended before it could be killed: {proc.stderr.read()!r}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = scalar(db, "select count(*) from commits")
    assert 0 < killed_at < total
    assert scalar(db, "select count(*) from deployments") == 0

    monkeypatch.setenv("INSIGHTS_LOCALGIT_BATCH", "50")
    (report,) = run_sync(db.engine, load_org_config(config))
    # resumed from the committed cursor: no commit of the killed run is read again
    assert report.counts["commit"].new == total - killed_at
    assert report.counts["commit"].unchanged == 0
    assert scalar(db, "select count(*) from commits") == total
    assert scalar(db, "select count(distinct sha) from commits") == total
    assert scalar(db, "select count(*) from deployments") == total // every
    assert scalar(db, "select count(*) from raw_payloads") == total // every
    # every tag after the first ships exactly the `every` commits since the previous tag
    assert scalar(db, "select count(*) from deployment_commits") == total - every
    assert scalar(db, "select count(distinct sha) from deployment_commits") == total - every
    assert set(repo.rev_list("v2", "^v1")) == {
        row[0]
        for row in _rows(
            db,
            "select dc.sha from deployment_commits dc join deployments d"
            " on d.id = dc.deployment_id where d.external_id = 'v2'",
        )
    }


def _rows(db, sql: str) -> list[tuple]:
    with unit_of_work(db.engine) as session:
        return [tuple(r) for r in session.execute(text(sql))]


def test_a_commit_batch_queued_after_a_failed_one_is_never_stored(db, tmp_path):
    """Two batches may wait for the local-git writer thread; if one fails, the next must not
    commit, or its cursor would claim the failed batch's commits stored (lost on resume)."""
    service = ServiceConfig(name="app", source=SourceConfig(kind="localgit", path=tmp_path))
    ctx = SyncContext(
        db.engine,
        TenantConfig(name="default", services=[service]),
        service,
        "localgit",
        str(tmp_path),
    )
    failed: Future[None] = Future()
    failed.set_exception(RuntimeError("the batch before failed"))
    row = (b"ab" * 20, b"", b"Ada", 1_767_225_600, 1_767_225_600, b"one")
    with pytest.raises(RuntimeError, match="the batch before failed"):
        _store_after(failed, ctx, CommitRows("app", [row]), {"pass": {"done": 2}})
    assert scalar(db, "select count(*) from commits") == 0
    assert scalar(db, "select count(*) from sync_cursors") == 0
    done: Future[None] = Future()
    done.set_result(None)
    _store_after(done, ctx, CommitRows("app", [row]), {"pass": {"done": 1}})
    assert scalar(db, "select count(*) from commits") == 1
