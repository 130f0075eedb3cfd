"""`insights import`, `record` and `tenant` run the way a user runs them (Typer's CliRunner)."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from insights.cli import app
from insights.store.db import unit_of_work
from insights.store.models import Deployment, Incident
from insights.store.repository import TenantRepository

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


def test_malformed_lines_are_reported_by_number_and_skipped(cli_env, tmp_path):
    bad = dict(GOOD[1], id="d-2", finished_at="tomorrow-ish")
    path = write(tmp_path / "e.ndjson", [*GOOD, json.dumps(bad), "{oops"])
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 2
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
