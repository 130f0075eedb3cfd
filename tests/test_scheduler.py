"""The scheduler: cron rules, run records, and real scheduler processes sharing one database.

The process tests start `insights scheduler` twice against the same PostgreSQL with a fast
test schedule (a six-field cron firing every second) and read `job_runs` afterwards.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from insights.cli import app
from insights.config import OrgConfig, Settings, TenantConfig
from insights.errors import UserError
from insights.ops.runs import recent_runs, recorded_run, run_key
from insights.ops.scheduler import (
    JOBS_TABLE,
    create_scheduler,
    desired_jobs,
    parse_cron,
    reconcile_jobs,
)
from insights.store.models import JobRun
from insights.timeutil import parse_time, utc

INSIGHTS = str(Path(sys.executable).parent / "insights")


# --- cron rules ------------------------------------------------------------------------------


def test_weekly_cron_runs_at_local_time_in_the_tenants_zone():
    trigger = parse_cron("0 8 * * mon", "Europe/Berlin", "where")
    after = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday in winter (UTC+1)
    fire = trigger.get_next_fire_time(None, after)
    assert fire.astimezone(UTC) == datetime(2026, 1, 5, 7, 0, tzinfo=UTC)


def test_six_field_cron_has_seconds_first():
    trigger = parse_cron("*/2 * * * * *", "UTC", "where")
    after = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "message"),
    [
        ("0 25 * * *", "UTC", "tenant acme: schedule.sync_cron: invalid cron expression"),
        ("every hour", "UTC", "needs 5 fields"),
        ("0 * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_schedule_is_a_user_error_naming_tenant_and_key(cron, zone, message):
    org = OrgConfig(
        tenants=[TenantConfig(name="acme", timezone=zone, schedule={"sync_cron": cron})]
    )
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        desired_jobs(org)


def test_scheduler_command_refuses_a_bad_schedule_with_one_line(cli_env, tmp_path):
    (tmp_path / "insights.toml").write_text(
        '[[tenants]]\nname = "acme"\n[tenants.schedule]\nreport_cron = "0 8 * * funday"\n'
    )
    result = CliRunner().invoke(app, ["scheduler"])
    assert result.exit_code == 2
    assert "tenant acme: schedule.report_cron: invalid cron expression" in result.output
    assert "Traceback" not in result.output


# --- run records -----------------------------------------------------------------------------


def test_second_claim_of_the_same_fire_does_not_run(db):
    fire = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    key = run_key("sync:acme", fire)
    calls: list[int] = []

    def work() -> dict:
        calls.append(1)
        return {"services": {}}

    first = recorded_run(db.engine, "sync", "acme", key, work)
    second = recorded_run(db.engine, "sync", "acme", key, work)
    assert (first.outcome, second.outcome) == ("success", "skipped")
    assert second.run_id is None
    assert calls == [1]
    [row] = recent_runs(db.engine, "acme")
    assert (row.run_key, row.outcome) == ("sync:acme@2026-01-05T10:00:00Z", "success")
    assert row.finished_at is not None and row.finished_at >= row.started_at


def test_failed_run_is_recorded_with_its_error_and_the_next_one_still_runs(db):
    def broken() -> dict:
        raise RuntimeError("git host unreachable\nsecond line")

    failed = recorded_run(db.engine, "sync", "acme", "sync:acme@1", broken)
    ok = recorded_run(db.engine, "sync", "acme", "sync:acme@2", lambda: {"n": 1})
    assert failed.outcome == "failed"
    assert failed.detail == {"error": "RuntimeError: git host unreachable"}
    assert ok.outcome == "success"
    newest, oldest = recent_runs(db.engine, "acme")
    assert (newest.outcome, oldest.outcome) == ("success", "failed")


def test_runs_command_lists_runs_and_rejects_bad_input(cli_env):
    recorded_run(cli_env.engine, "sync", "acme", "sync:acme@x", lambda: {"services": {}})
    runner = CliRunner()
    ok = runner.invoke(app, ["runs", "--tenant", "acme", "--json"])
    assert ok.exit_code == 0, ok.output
    assert '"run_key": "sync:acme@x"' in ok.output
    assert '"outcome": "success"' in ok.output
    missing = runner.invoke(app, ["runs", "--tenant", "nobody"])
    assert missing.exit_code == 2
    assert "error: --tenant nobody: no such tenant" in missing.output
    zero = runner.invoke(app, ["runs", "--limit", "0"])
    assert zero.exit_code == 2
    assert "--limit 0" in zero.output


# --- job store -------------------------------------------------------------------------------


def _org(sync_cron: str = "0 * * * *") -> OrgConfig:
    return OrgConfig(tenants=[TenantConfig(name="acme", schedule={"sync_cron": sync_cron})])


def _stored_next_run(db) -> dict[str, float]:
    from sqlalchemy import MetaData, Table

    table = Table(JOBS_TABLE, MetaData(), autoload_with=db.engine)
    with db.engine.connect() as conn:
        return {r.id: r.next_run_time for r in conn.execute(select(table))}


def test_restart_keeps_a_pending_fire_and_a_changed_cron_replaces_it(db):
    every_second = _org("* * * * * *")
    first = create_scheduler(db.engine)
    first.start(paused=True)
    reconcile_jobs(first, desired_jobs(every_second), 3600)
    first.shutdown()
    pending = _stored_next_run(db)
    assert set(pending) == {"sync:acme", "weekly:acme"}

    time.sleep(1.5)  # the process is "down" over the next fire
    again = create_scheduler(db.engine)
    again.start(paused=True)
    reconcile_jobs(again, desired_jobs(every_second), 3600)
    assert _stored_next_run(db)["sync:acme"] == pending["sync:acme"] < time.time()
    reconcile_jobs(again, desired_jobs(_org("30 * * * *")), 3600)
    assert _stored_next_run(db)["sync:acme"] > time.time()
    reconcile_jobs(again, desired_jobs(OrgConfig()), 3600)
    assert _stored_next_run(db) == {}
    again.shutdown()


# --- two real scheduler processes on one PostgreSQL ------------------------------------------


class Proc:
    """One `insights scheduler` process with its log file."""

    def __init__(self, name: str, env: dict[str, str], tmp: Path) -> None:
        self.log = tmp / f"{name}.log"
        self.started = datetime.now(UTC)
        self.popen = subprocess.Popen(
            [INSIGHTS, "scheduler", "--poll-seconds", "0.2", "--misfire-grace", "60"],
            env=env,
            cwd=tmp,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def ran(self) -> list[str]:
        """Fire times this process says it ran (from its own log)."""
        return [
            line.split("scheduled at ")[1].split(": ")[0]
            for line in self.log.read_text().splitlines()
            if "ran sync:acme scheduled at" in line
        ]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(timeout=20)


@pytest.fixture
def scheduler_env(pg_db, tmp_path):
    (tmp_path / "insights.toml").write_text(
        '[[tenants]]\nname = "acme"\n'
        "[tenants.schedule]\n"
        'sync_cron = "* * * * * *"\n'  # test-only fast schedule: every second
        'report_cron = "0 8 * * mon"\n'
    )
    env = {
        **os.environ,
        "INSIGHTS_DATABASE_URL": pg_db.url,
        "INSIGHTS_CONFIG": str(tmp_path / "insights.toml"),
        "INSIGHTS_REPORTS_DIR": str(tmp_path / "reports"),
        "TZ": "UTC",
    }
    procs: list[Proc] = []

    def start(name: str) -> Proc:
        proc = Proc(name, env, tmp_path)
        procs.append(proc)
        return proc

    yield pg_db, start
    for proc in procs:
        proc.stop(signal.SIGKILL)


def _sync_runs(db) -> list[JobRun]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(JobRun).where(JobRun.job == "sync").order_by(JobRun.run_key)
        ).all()
    return rows


def _fire_time(run: JobRun) -> datetime:
    return parse_time(run.detail["scheduled_at"])


def _wait_for_runs(db, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_sync_runs(db)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} runs after {timeout}s"
        time.sleep(0.2)


def _pid(run: JobRun) -> int:
    return int(run.detail["holder"].split(":")[1])


@pytest.mark.slow
def test_two_schedulers_run_each_fire_once_through_failover_and_downtime(scheduler_env):
    """One scenario (process start-up is the slow part, so it is shared):
    1. two schedulers on one PostgreSQL: only the leader runs, every second's fire once;
    2. the leader is killed (SIGKILL): the follower takes over within seconds;
    3. the follower stops, everything is down for 4 s, a third process starts: the missed
       fires run once (coalesced), then on time again."""
    db, start = scheduler_env
    a, b = start("a"), start("b")
    _wait_for_runs(db, 1)
    time.sleep(4)
    before_kill = _sync_runs(db)
    leader_pid = _pid(before_kill[-1])
    assert {_pid(r) for r in before_kill} == {leader_pid}, "only the leader runs jobs"
    leader, follower = (a, b) if a.popen.pid == leader_pid else (b, a)
    leader.stop(signal.SIGKILL)
    killed_at = datetime.now(UTC)
    _wait_for_runs(db, len(before_kill) + 3)
    follower.stop()  # graceful: releases the lock; nothing runs for a while
    down_from = max(_fire_time(r) for r in _sync_runs(db))
    time.sleep(4)
    third = start("third")
    _wait_for_runs(db, len(_sync_runs(db)) + 3)
    third.stop()

    runs = _sync_runs(db)
    assert all(r.outcome == "success" for r in runs if _fire_time(r) < killed_at)
    fires = [_fire_time(r) for r in runs]
    assert len(set(fires)) == len(fires), "a fire ran twice"
    # Cross-check with what the processes themselves logged as executed: once each.
    executed = Counter(a.ran() + b.ran() + third.ran())
    assert set(executed.values()) == {1}
    assert len(executed) == len(runs)

    # 1. While the leader lived, every second's fire ran: no gaps, no repeats.
    leader_runs = [r for r in runs if _pid(r) == leader_pid]
    leader_fires = sorted(_fire_time(r) for r in leader_runs)
    assert len(leader_fires) >= 4
    _assert_every_second(leader_runs)
    # 2. The follower took over within seconds and kept firing every second.
    follower_fires = sorted(_fire_time(r) for r in runs if _pid(r) == follower.popen.pid)
    assert len(follower_fires) >= 3
    assert follower_fires[0] > leader_fires[-1]
    assert (follower_fires[0] - killed_at).total_seconds() < 5
    _assert_every_second([r for r in runs if _pid(r) == follower.popen.pid][1:])
    # 3. After the downtime: one run stood for all the missed fires, then one per second.
    after = sorted((r for r in runs if _pid(r) == third.popen.pid), key=_fire_time)
    catch_up, *regular = after
    # Fires skipped besides the one that ran: the third process became leader more than 4 s
    # after the last fire, so its first fire is at least 4 s later and at least 3 lie between.
    # (How many more depends on how fast the process starts, which a busy machine stretches.)
    missed = (_fire_time(catch_up) - down_from).total_seconds() - 1
    assert missed >= 3
    assert catch_up.detail["coalesced_fires"] == missed
    assert all("coalesced_fires" not in r.detail for r in regular)
    _assert_every_second(after)


def _assert_every_second(runs: list) -> None:
    """One run per second's fire, in order. The one exception is the rule `max_instances=1`
    (insights/ops/scheduler.py): a fire that comes while the run before it still runs is
    skipped, not queued. A fresh process's first run, or a busy machine, can take over a
    second. So every gap longer than a second must lie inside the run before it."""
    ordered = sorted(runs, key=_fire_time)
    for earlier, later in itertools.pairwise(ordered):
        step = (_fire_time(later) - _fire_time(earlier)).total_seconds()
        assert step >= 1.0 and step == int(step), f"fires {step} s apart"
        if step > 1.0:
            skipped = _fire_time(earlier) + timedelta(seconds=1)
            if earlier.finished_at is None:  # never ended (its process was killed)
                continue
            finished = utc(earlier.finished_at)
            assert finished > skipped - timedelta(seconds=0.5), (
                f"the fire at {skipped} was skipped, but the run before it had ended at {finished}"
            )


def test_settings_are_enough_to_build_the_service(sqlite_db, tmp_path):
    from insights.ops.scheduler import SchedulerService

    service = SchedulerService(Settings(database_url=sqlite_db.url), _org(), poll_seconds=0.05)
    service.leadership.poll_once()
    try:
        assert service.status()["leader"] is True
        assert set(service.status()["jobs"]) == {"sync:acme", "weekly:acme"}
    finally:
        service.stop()
    assert service.status() == {"leader": False, "jobs": {}}


def test_new_leader_abandons_a_dead_leaders_scheduled_run_but_not_a_manual_one(db):
    from insights.ops.runs import abandon_stale_runs, claim_run

    scheduled = claim_run(db.engine, "sync", "acme", "sync:acme@dead", {})
    manual = claim_run(db.engine, "digest", "acme", None, {})
    assert abandon_stale_runs(db.engine, timedelta(seconds=0)) == 1
    outcomes = {r.id: r.outcome for r in recent_runs(db.engine, "acme")}
    assert outcomes == {scheduled: "abandoned", manual: "running"}


def test_serve_refuses_an_unknown_scheduler_switch(cli_env):
    result = CliRunner().invoke(app, ["serve", "--scheduler", "maybe"])
    assert result.exit_code == 2
    assert "error: INSIGHTS_SCHEDULER='maybe': use on or off" in result.output


def test_scheduled_sync_runs_the_collectors_and_records_their_counts(db, tmp_path):
    from insights.ops.scheduler import SchedulerService, sync_job

    repo = tmp_path / "checkout"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    for args in (
        ["init", "-q", "-b", "main", str(repo)],
        ["-C", str(repo), "commit", "-q", "--allow-empty", "-m", "first"],
        ["-C", str(repo), "commit", "-q", "--allow-empty", "-m", "second"],
        ["-C", str(repo), "tag", "v1.0.0"],
    ):
        subprocess.run(["git", *args], check=True, env=env)
    org = OrgConfig.model_validate(
        {
            "tenants": [
                {
                    "name": "acme",
                    "services": [
                        {"name": "checkout", "source": {"kind": "localgit", "path": str(repo)}}
                    ],
                }
            ]
        }
    )
    service = SchedulerService(Settings(database_url=db.url), org)
    service.leadership.poll_once()
    try:
        sync_job("acme", scheduled_at=datetime(2026, 1, 5, 10, tzinfo=UTC))
    finally:
        service.stop()
    [run] = recent_runs(db.engine, "acme")
    assert (run.job, run.outcome, run.run_key) == (
        "sync",
        "success",
        "sync:acme@2026-01-05T10:00:00Z",
    )
    checkout = run.detail["services"]["checkout"]
    assert checkout["source"] == "localgit"
    assert checkout["commit"]["new"] == 2
    assert checkout["deployment"]["new"] == 1
