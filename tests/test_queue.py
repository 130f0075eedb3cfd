"""The work queue: workers on the real queue (procrastinate on PostgreSQL) run each job once,
a killed worker's job is retried and finished by another, failures show in `insights runs`,
and embedded mode (SQLite, no queue) runs the job inline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Database
from git_support import fast_history
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from insights.cli import app
from insights.config import OrgConfig, Settings, TenantConfig
from insights.ops.claims import claim_attempt
from insights.ops.queue import enqueue_tenant_sync
from insights.ops.runs import finish_run
from insights.store import registry
from insights.store.db import unit_of_work
from insights.store.models import Commit, JobRun

FIRE = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _tenant(repos: dict[str, Path]) -> TenantConfig:
    return TenantConfig.model_validate(
        {
            "name": "acme",
            "services": [
                {"name": name, "source": {"kind": "localgit", "path": str(path)}}
                for name, path in repos.items()
            ],
        }
    )


def _register(db: Database, tenant: TenantConfig) -> None:
    with unit_of_work(db.engine) as session:
        registry.apply_org(session, OrgConfig(tenants=[tenant]), actor="test")


def _runs(db: Database, job: str = "sync-service") -> list[JobRun]:
    with unit_of_work(db.engine) as session:
        return list(session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)))


def _wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def queue_env(pg_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Database:
    monkeypatch.setenv("INSIGHTS_QUEUE", "procrastinate")
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", pg_db.url)
    monkeypatch.delenv("INSIGHTS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return pg_db


@pytest.fixture
def workers(queue_env: Database) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra: str, batch: int | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ}
        if batch:
            env["INSIGHTS_LOCALGIT_BATCH"] = str(batch)
        cmd = [str(Path(sys.executable).parent / "insights"), "worker", *extra]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _queue_states(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM procrastinate_jobs GROUP BY 1"))
        return {str(status): int(n) for status, n in rows}


def test_two_workers_on_the_real_queue_run_every_sync_exactly_once(
    queue_env: Database, workers: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    repos = {f"svc{i}": fast_history(tmp_path / f"r{i}", 200 + i, tag_every=50) for i in range(6)}
    tenant = _tenant({name: repo.path for name, repo in repos.items()})
    _register(queue_env, tenant)
    settings = Settings(database_url=queue_env.url)
    enqueued = enqueue_tenant_sync(queue_env.engine, settings, tenant, FIRE)
    assert set(enqueued["services"].values()) == {"enqueued"}
    # the same fire enqueued again while waiting: refused by the queueing lock
    again = enqueue_tenant_sync(queue_env.engine, settings, tenant, FIRE)
    assert set(again["services"].values()) == {"already enqueued"}

    first, second = workers(), workers()
    _wait(lambda: _queue_states(queue_env) == {"succeeded": 6}, 120, "six jobs to succeed")
    runs = _runs(queue_env)
    assert sorted(r.run_key for r in runs) == sorted(
        f"sync:acme/{name}@2026-01-05T10:00:00Z" for name in repos
    )
    assert {r.outcome for r in runs} == {"success"}
    assert {r.detail["worker"] for r in runs} <= {f"pid {first.pid}", f"pid {second.pid}"}
    with unit_of_work(queue_env.engine) as session:
        assert session.scalar(select(func.count()).select_from(Commit)) == sum(
            200 + i for i in range(6)
        )

    # the same fire again once done: the queue takes it, the claim says it is done already
    enqueue_tenant_sync(queue_env.engine, settings, tenant, FIRE)
    _wait(lambda: _queue_states(queue_env) == {"succeeded": 12}, 60, "re-enqueued jobs")
    assert len(_runs(queue_env)) == 6


def test_a_job_whose_worker_is_killed_is_retried_by_another_and_done_once(
    queue_env: Database, workers: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    repo = fast_history(tmp_path / "big", 4000, tag_every=100)
    tenant = _tenant({"big": repo.path})
    _register(queue_env, tenant)
    enqueue_tenant_sync(queue_env.engine, Settings(database_url=queue_env.url), tenant, FIRE)
    timing = ("--stalled-seconds", "2", "--heartbeat-seconds", "0.5")
    doomed = workers(*timing, batch=50)
    _wait(lambda: any(r.outcome == "running" for r in _runs(queue_env)), 60, "the job to start")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    workers(*timing, batch=50)
    _wait(lambda: _queue_states(queue_env) == {"succeeded": 1}, 120, "the retried job")

    (run,) = _runs(queue_env)
    assert run.outcome == "success"
    assert run.detail["attempt"] >= 1
    assert run.detail["previous_attempt"]["outcome"] == "worker died"
    with unit_of_work(queue_env.engine) as session:
        assert session.scalar(select(func.count()).select_from(Commit)) == 4000


def test_a_user_error_fails_once_without_retries_and_shows_in_runs(
    queue_env: Database, workers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    tenant = TenantConfig.model_validate(
        {
            "name": "acme",
            "services": [
                {"name": "web", "source": {"kind": "github", "repo": "a/b", "token_env": "NOPE"}}
            ],
        }
    )
    _register(queue_env, tenant)
    os.environ.pop("NOPE", None)
    enqueue_tenant_sync(queue_env.engine, Settings(database_url=queue_env.url), tenant, FIRE)
    workers("--once")
    _wait(lambda: _queue_states(queue_env) == {"succeeded": 1}, 60, "the job to end")
    (run,) = _runs(queue_env)
    assert run.outcome == "failed" and "NOPE is not set" in run.detail["error"]
    result = CliRunner().invoke(app, ["runs", "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.output)
    assert shown[0]["outcome"] == "failed" and shown[0]["job"] == "sync-service"


def test_embedded_mode_runs_the_job_inline_without_a_queue(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INSIGHTS_QUEUE", raising=False)
    repo = fast_history(tmp_path / "r", 30, tag_every=10)
    tenant = _tenant({"app": repo.path})
    _register(sqlite_db, tenant)
    result = enqueue_tenant_sync(
        sqlite_db.engine, Settings(database_url=sqlite_db.url), tenant, FIRE
    )
    assert result == {"mode": "inline", "services": {"app": "success"}, "failures": 0}
    assert [r.outcome for r in _runs(sqlite_db)] == ["success"]


def test_the_queue_mode_needs_postgresql(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSIGHTS_QUEUE", "procrastinate")
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", sqlite_db.url)
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "INSIGHTS_QUEUE=procrastinate needs PostgreSQL" in result.output


# --- claims ----------------------------------------------------------------------------------


def _claim(db: Database, attempt: int) -> int | None:
    return claim_attempt(db.engine, "sync", None, "k@1", attempt=attempt, detail={})


def test_a_duplicate_first_attempt_steps_aside_while_the_run_is_live(sqlite_db: Database) -> None:
    assert _claim(sqlite_db, 0) is not None
    assert _claim(sqlite_db, 0) is None


def test_a_retry_takes_over_a_failed_or_dead_run_but_a_finished_run_never_runs_again(
    sqlite_db: Database,
) -> None:
    run_id = _claim(sqlite_db, 0)
    assert run_id is not None
    assert _claim(sqlite_db, 1) == run_id  # worker died mid-run: the retry takes it over
    finish_run(sqlite_db.engine, run_id, "failed", {"error": "boom"})
    assert _claim(sqlite_db, 2) == run_id
    (run,) = _runs(sqlite_db, "sync")
    assert run.detail["previous_attempt"] == {"outcome": "failed", "error": "boom"}
    finish_run(sqlite_db.engine, run_id, "success", {})
    assert _claim(sqlite_db, 3) is None
