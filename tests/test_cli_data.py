"""`insights import`, `record` and `tenant` run the way a user runs them (Typer's CliRunner)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from insights.cli import app
from insights.cli.common import ci_run_id
from insights.store.db import unit_of_work
from insights.store.models import Deployment, Incident, Tenant
from insights.store.repository import TenantRepository

CI_VARIABLES = (
    "GITHUB_RUN_ID",
    "CI_PIPELINE_ID",
    "BUILDKITE_BUILD_ID",
    "CIRCLE_WORKFLOW_ID",
    "BUILD_BUILDID",
    "BUILD_TAG",
)

runner = CliRunner()

GOOD = [
    {
        "type": "commit",
        "service": "checkout",
        "sha": "c0ffee01",
        "committed_at": "2026-01-05T09:00:00Z",
    },
    {
        "type": "deployment",
        "service": "checkout",
        "id": "d-1",
        "sha": "c0ffee01",
        "finished_at": "2026-01-05T12:00:00Z",
    },
    {"type": "incident", "service": "checkout", "id": "INC-1", "opened_at": "2026-01-05T13:00:00Z"},
]


def write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def counts(db, tenant="default"):
    with unit_of_work(db.engine) as session:
        return TenantRepository.open(session, tenant).counts()


def test_import_valid_file_creates_service_and_rows(cli_env, tmp_path):
    result = runner.invoke(app, ["import", str(write(tmp_path / "e.ndjson", GOOD))])
    assert result.exit_code == 0, result.output
    assert "new service: checkout" in result.stdout
    assert "3 events stored" in result.stdout
    assert counts(cli_env)["deployments"] == 1


def test_importing_the_same_file_twice_changes_nothing(cli_env, tmp_path):
    path = write(tmp_path / "e.ndjson", GOOD)
    runner.invoke(app, ["import", str(path)])
    before = counts(cli_env)
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0
    assert "new service" not in result.stdout
    assert counts(cli_env) == before
    assert "│ deployment │   0 │       0 │         1 │" in result.stdout


def test_malformed_lines_are_reported_by_number_and_skipped_with_exit_3(cli_env, tmp_path):
    bad = dict(GOOD[1], id="d-2", finished_at="tomorrow-ish")
    path = write(tmp_path / "e.ndjson", [*GOOD, json.dumps(bad), "{oops"])
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 3  # the good lines were kept
    assert "e.ndjson: line 4: deployment.finished_at: not an ISO-8601 time" in result.stderr
    assert "e.ndjson: line 5: not valid JSON" in result.stderr
    assert counts(cli_env)["deployments"] == 1


def test_strict_import_writes_nothing_when_any_line_is_bad(cli_env, tmp_path):
    path = write(tmp_path / "e.ndjson", [*GOOD, {"type": "deployment", "service": "checkout"}])
    result = runner.invoke(app, ["import", str(path), "--strict", "--tenant", "acme"])
    assert result.exit_code == 2
    assert "--strict: nothing imported" in result.stderr
    assert "Traceback" not in result.output
    with unit_of_work(cli_env.engine) as session:
        assert session.scalars(select(Deployment)).all() == []


def test_import_where_no_line_is_valid_writes_nothing_and_exits_2(cli_env, tmp_path):
    path = write(tmp_path / "e.ndjson", ["{oops", {"type": "deployment", "service": "x"}])
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: e.ndjson: no valid events; nothing imported"
    )
    with unit_of_work(cli_env.engine) as session:
        assert session.scalars(select(Tenant)).all() == []


def test_import_accepts_a_json_array_file(cli_env, tmp_path):
    path = tmp_path / "events.json"
    path.write_text(json.dumps(GOOD, indent=2))
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 events stored" in result.stdout
    path.write_text(json.dumps([*GOOD, {"type": "incident", "service": "checkout"}]))
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 3
    assert "events.json: item 4: incident.id" in result.stderr


def test_a_broken_json_array_is_one_clear_line(cli_env, tmp_path):
    path = tmp_path / "events.json"
    path.write_text('[{"type": "commit",\n')
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: events.json: starts with '[' but is not a JSON array")
    assert len(result.stderr.strip().splitlines()) == 1


def test_import_from_stdin(cli_env):
    result = runner.invoke(app, ["import", "-"], input="\n".join(json.dumps(r) for r in GOOD))
    assert result.exit_code == 0, result.output
    assert counts(cli_env)["incidents"] == 1


def test_missing_file_is_one_line_exit_2(cli_env):
    result = runner.invoke(app, ["import", "nope.ndjson"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: nope.ndjson: file not found"


def test_record_deployment_then_incident_then_resolve(cli_env):
    result = runner.invoke(
        app,
        [
            "record",
            "deployment",
            "-s",
            "api",
            "--sha",
            "abc12345",
            "--id",
            "r-1",
            "--finished-at",
            "2026-01-05T12:00:00Z",
            "--commit",
            "abc12345",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "recorded deployment r-1" in result.stdout
    result = runner.invoke(
        app,
        [
            "record",
            "incident",
            "-s",
            "api",
            "--id",
            "INC-9",
            "--opened-at",
            "2026-01-05T13:00:00Z",
            "--deployment-id",
            "r-1",
            "--title",
            "checkout 500s",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["record", "incident", "-s", "api", "--id", "INC-9", "--resolved-at", "now"]
    )
    assert result.exit_code == 0, result.output
    assert "updated incident INC-9" in result.stdout
    with unit_of_work(cli_env.engine) as session:
        incident = session.scalars(select(Incident)).one()
    assert incident.deployment_external_id == "r-1"
    assert incident.title == "checkout 500s"
    assert incident.resolved_at is not None


def test_record_with_bad_sha_names_the_field(cli_env):
    result = runner.invoke(app, ["record", "deployment", "-s", "api", "--sha", "not-a-sha"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: record deployment: deployment.sha: not a git sha (4 to 64 hex digits)"
    )


def test_debug_shows_the_traceback(cli_env):
    result = runner.invoke(app, ["--debug", "import", "nope.ndjson"])
    assert result.exit_code != 0
    assert result.exception is not None


def test_tenant_create_and_list(cli_env):
    assert (
        runner.invoke(app, ["tenant", "create", "acme", "--timezone", "Europe/Berlin"]).exit_code
        == 0
    )
    again = runner.invoke(app, ["tenant", "create", "acme"])
    assert "already exists" in again.stdout
    bad = runner.invoke(app, ["tenant", "create", "x", "--timezone", "Mars/Olympus"])
    assert bad.exit_code == 2
    listing = runner.invoke(app, ["tenant", "list"])
    assert "acme" in listing.stdout and "Europe/Berlin" in listing.stdout


def test_every_command_has_help():
    for args in (
        ["--help"],
        ["import", "--help"],
        ["record", "deployment", "--help"],
        ["record", "incident", "--help"],
        ["record", "commit", "--help"],
        ["tenant", "create", "--help"],
        ["init", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, args
        assert "Usage" in result.stdout


def test_record_incident_without_opened_at_opens_it_now(cli_env):
    # the README line, exactly: no --opened-at
    args = ["record", "incident", "-s", "checkout", "--id", "INC-3", "--deployment-id", "d-17"]
    before = datetime.now(UTC)
    result = runner.invoke(app, [*args, "--title", "500s on pay"])
    assert result.exit_code == 0, result.output
    assert "recorded incident INC-3" in result.stdout
    resolved = runner.invoke(
        app, ["record", "incident", "-s", "checkout", "--id", "INC-3", "--resolved-at", "now"]
    )
    assert resolved.exit_code == 0, resolved.output
    with unit_of_work(cli_env.engine) as session:
        incident = session.scalars(select(Incident)).one()
        opened = incident.opened_at.replace(tzinfo=incident.opened_at.tzinfo or UTC)
    assert before - timedelta(seconds=1) <= opened <= datetime.now(UTC)
    assert incident.title == "500s on pay" and incident.resolved_at is not None


def test_a_mistyped_tenant_on_a_write_is_refused_and_creates_nothing(cli_env, tmp_path):
    assert runner.invoke(app, ["tenant", "create", "acme"]).exit_code == 0
    record = ["record", "deployment", "-s", "api", "--sha", "abc12345", "-t", "acem"]
    for args in (record, ["import", str(write(tmp_path / "e.ndjson", GOOD)), "--tenant", "acem"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            "error: --tenant acem: no such tenant (create it with `insights tenant create acem`,"
            " or name it in insights.toml)"
        )
    with unit_of_work(cli_env.engine) as session:
        assert [t.name for t in session.scalars(select(Tenant))] == ["acme"]


def test_default_tenant_is_created_only_on_a_fresh_database(cli_env):
    record = ["record", "deployment", "-s", "api", "--sha", "abc12345", "--id", "r-1"]
    assert runner.invoke(app, record).exit_code == 0  # fresh: `default` appears
    assert counts(cli_env)["deployments"] == 1


def test_default_tenant_is_refused_once_other_tenants_exist(cli_env):
    assert runner.invoke(app, ["tenant", "create", "acme"]).exit_code == 0
    result = runner.invoke(app, ["record", "deployment", "-s", "api", "--sha", "abc12345"])
    assert result.exit_code == 2
    assert "--tenant default: no such tenant" in result.stderr


def test_a_tenant_named_in_insights_toml_is_created_on_first_write(cli_env, tmp_path, monkeypatch):
    config = tmp_path / "insights.toml"
    config.write_text('[[tenants]]\nname = "acme"\n', encoding="utf-8")
    monkeypatch.setenv("INSIGHTS_CONFIG", str(config))
    assert runner.invoke(app, ["tenant", "create", "other"]).exit_code == 0
    result = runner.invoke(app, ["import", str(write(tmp_path / "e.ndjson", GOOD)), "-t", "acme"])
    assert result.exit_code == 0, result.output
    assert counts(cli_env, "acme")["deployments"] == 1


def _deploy(sha: str, *extra: str):
    return runner.invoke(
        app, ["record", "deployment", "-s", "checkout", "--sha", sha, "-e", "production", *extra]
    )


def _deployments(db) -> list[tuple[str, str, datetime | None]]:
    with unit_of_work(db.engine) as session:
        rows = session.scalars(select(Deployment).order_by(Deployment.id)).all()
        return [(d.external_id, d.sha, d.finished_at) for d in rows]


@pytest.fixture
def no_ci(monkeypatch):
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert ci_run_id() is None


def test_a_retried_record_in_the_same_ci_run_counts_once(cli_env, no_ci, monkeypatch):
    monkeypatch.setenv("GITHUB_RUN_ID", "9001")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "1")
    assert _deploy("c0ffee01").exit_code == 0
    first = _deployments(cli_env)
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")  # "re-run failed jobs"
    retry = _deploy("c0ffee01")
    assert retry.exit_code == 0, retry.output
    assert "unchanged deployment production:c0ffee01:run-9001" in retry.stdout
    assert _deployments(cli_env) == first  # one row, and its finish time is the first one
    monkeypatch.setenv("GITHUB_RUN_ID", "9002")  # a new pipeline deploying the same sha
    assert _deploy("c0ffee01").exit_code == 0
    assert [d[0] for d in _deployments(cli_env)] == [
        "production:c0ffee01:run-9001",
        "production:c0ffee01:run-9002",
    ]


def test_gitlab_pipeline_id_identifies_the_run(cli_env, no_ci, monkeypatch):
    monkeypatch.setenv("CI_PIPELINE_ID", "77")
    assert _deploy("c0ffee01").exit_code == 0
    assert _deploy("c0ffee01").exit_code == 0
    assert [d[0] for d in _deployments(cli_env)] == ["production:c0ffee01:run-77"]


def test_outside_ci_a_repeat_of_the_current_sha_is_a_retry_but_a_rollback_is_new(cli_env, no_ci):
    assert _deploy("aaaa1111", "--status", "in_progress").exit_code == 0
    assert _deploy("aaaa1111").exit_code == 0  # the same deployment finishing
    assert _deploy("aaaa1111").exit_code == 0  # a retried step
    assert _deploy("bbbb2222").exit_code == 0
    assert _deploy("aaaa1111").exit_code == 0  # back to the old sha: a rollback, counted
    rows = _deployments(cli_env)
    assert [sha for _, sha, _ in rows] == ["aaaa1111", "bbbb2222", "aaaa1111"]
    assert len({external_id for external_id, _, _ in rows}) == 3
    assert all(finished is not None for _, _, finished in rows)


def test_an_explicit_id_is_used_as_given(cli_env, no_ci):
    assert _deploy("aaaa1111", "--id", "d-17").exit_code == 0
    assert _deploy("aaaa1111", "--id", "d-17").exit_code == 0
    assert [d[0] for d in _deployments(cli_env)] == ["d-17"]
