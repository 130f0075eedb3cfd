"""The weekly run end to end: stored events → reports on disk → Slack digests per team."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from metrics_support import commit, dep, incident

from insights import pipeline
from insights.config import Settings, TenantConfig
from insights.model import parse_event
from insights.ops.runs import recent_runs, recorded_run
from insights.ops.weekly import report_url, run_weekly
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository

AT = datetime(2026, 2, 3, 7, 0, tzinfo=UTC)  # a Tuesday: the last complete week is 2026-W05
HOOK = "/services/T1/B1/pay-secret"


def tenant_config() -> TenantConfig:
    return TenantConfig.model_validate(
        {
            "name": "acme",
            "teams": [{"name": "payments", "slack_webhook_env": "PAY_HOOK"}, {"name": "web"}],
            "services": [
                {"name": "checkout", "team": "payments"},
                {"name": "storefront", "team": "web"},
            ],
        }
    )


def seed(db) -> TenantConfig:
    tenant = tenant_config()
    events = [
        commit("aaa1", "01-26 09:00"),
        commit("aaa2", "01-27 10:00", ("aaa1",)),
        dep("d1", "aaa1", "01-26 15:00", commits=["aaa1"]),
        dep("d2", "aaa2", "01-28 12:00", commits=["aaa2"]),
        incident("INC-1", "01-28 13:00", "01-28 15:30", deployment_id="d2"),
        commit("bbb1", "01-20 09:00"),
        dep("d0", "bbb1", "01-21 09:00", commits=["bbb1"]),
        commit("ccc1", "01-27 08:00", service="storefront"),
        dep("s-d1", "ccc1", "01-29 08:00", commits=["ccc1"], service="storefront"),
    ]
    with unit_of_work(db.engine) as session:
        pipeline.apply_org_config(session, tenant)
        repo = TenantRepository.open(session, "acme")
        pipeline.store_events(
            repo, [parse_event(e) for e in events], create_services=False, tenant_config=tenant
        )
    return tenant


@pytest.fixture
def settings(tmp_path, monkeypatch, httpserver) -> Settings:
    monkeypatch.setenv("PAY_HOOK", httpserver.url_for(HOOK))
    for name in ("INSIGHTS_SMTP_HOST", "INSIGHTS_SMTP_TO"):
        monkeypatch.delenv(name, raising=False)
    return Settings(
        database_url="sqlite://",
        reports_dir=tmp_path / "reports",
        report_base_url="https://insights.example/reports",
    )


def test_weekly_run_writes_reports_then_sends_each_team_its_digest(db, settings, httpserver):
    tenant = seed(db)
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    counts = run_weekly(db.engine, settings, tenant, at=AT)

    assert counts["window"] == "2026-W05"
    assert counts["failures"] == 0
    # payments has a webhook; web has none (and no tenant-wide one): reported, not failed.
    assert counts["digests"]["payments"] == "sent"
    assert counts["digests"]["web"].startswith("not sent: no Slack webhook")
    report = Path(settings.reports_dir) / "acme" / "2026-W05" / "team-payments.html"
    assert report.is_file()
    [(request, _)] = httpserver.log
    payload = json.loads(request.get_data())
    assert payload["blocks"][0]["text"]["text"] == "DORA digest · Team payments · 2026-W05"
    fields = next(b["fields"] for b in payload["blocks"] if "fields" in b)
    assert fields[0]["text"].startswith("*Deployments / week*\n2")
    assert payload["blocks"][-1]["elements"][0]["url"] == (
        "https://insights.example/reports/2026-W05/team-payments.html"
    )


def test_slack_500_is_reported_the_report_stays_and_the_run_is_partial(db, settings, httpserver):
    tenant = seed(db)
    httpserver.expect_request(HOOK, method="POST").respond_with_data("oops", status=500)
    result = recorded_run(
        db.engine,
        "weekly",
        "acme",
        "weekly:acme@test",
        lambda: run_weekly(db.engine, settings, tenant, at=AT),
    )
    assert result.outcome == "partial"
    assert result.detail["digests"]["payments"] == "failed: HTTP 500: oops"
    assert (Path(settings.reports_dir) / "acme" / "2026-W05" / "team-payments.html").is_file()
    [row] = recent_runs(db.engine, "acme")
    assert row.outcome == "partial" and row.detail["failures"] == 1
    assert "pay-secret" not in json.dumps(row.detail)


def test_report_links_follow_the_base_url_with_optional_tenant(tmp_path):
    out = tmp_path / "reports"
    path = out / "acme" / "2026-W05" / "team-payments.html"
    static = Settings(database_url="sqlite://", report_base_url="https://r.example/{tenant}/")
    assert report_url(static, out, "acme", path) == (
        "https://r.example/acme/2026-W05/team-payments.html"
    )
    assert report_url(Settings(database_url="sqlite://"), out, "acme", path) is None


# --- `insights digest` -----------------------------------------------------------------------

TOML = """
[[tenants]]
name = "acme"
  [[tenants.teams]]
  name = "payments"
  slack_webhook_env = "PAY_HOOK"
  [[tenants.teams]]
  name = "web"
  [[tenants.services]]
  name = "checkout"
  team = "payments"
  [[tenants.services]]
  name = "storefront"
  team = "web"
"""


@pytest.fixture
def digest_cli(cli_env, tmp_path, monkeypatch, httpserver):
    (tmp_path / "insights.toml").write_text(TOML)
    monkeypatch.setenv("INSIGHTS_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("PAY_HOOK", httpserver.url_for(HOOK))
    seed(cli_env)
    return cli_env


def test_digest_dry_run_prints_the_payload_and_sends_nothing(digest_cli, httpserver, tmp_path):
    from typer.testing import CliRunner

    from insights.cli import app

    args = ["digest", "-t", "acme", "--team", "payments", "--window", "2026-W05", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["blocks"][0]["text"]["text"] == "DORA digest · Team payments · 2026-W05"
    assert len(payload["blocks"]) <= 50
    assert httpserver.log == []
    assert not (tmp_path / "reports" / "acme" / "2026-W05" / "team-payments.html").exists()


def test_digest_send_failure_exits_1_and_keeps_the_report(digest_cli, httpserver, tmp_path):
    from typer.testing import CliRunner

    from insights.cli import app

    httpserver.expect_request(HOOK, method="POST").respond_with_data("oops", status=500)
    result = CliRunner().invoke(app, ["digest", "-t", "acme", "--window", "2026-W05"])
    assert result.exit_code == 1
    assert "team payments: failed: HTTP 500: oops" in result.output
    assert "team web: not sent: no Slack webhook configured" in result.output
    assert "pay-secret" not in result.output
    assert (tmp_path / "reports" / "acme" / "2026-W05" / "team-payments.html").is_file()
    [run] = recent_runs(digest_cli.engine, "acme")
    assert (run.job, run.outcome, run.run_key) == ("digest", "partial", None)


def test_digest_dry_run_for_a_team_has_no_setup_hint_for_the_channel(digest_cli):
    from typer.testing import CliRunner

    from insights.cli import app

    args = ["digest", "-t", "acme", "--team", "payments", "--window", "2026-W05", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "INSIGHTS_REPORT_BASE_URL" not in result.output


@pytest.mark.parametrize(
    ("hook", "line"),
    [
        (None, "team payments: not sent: Slack webhook: environment variable"),
        ("xoxb-not-a-url", "team payments: not sent: Slack webhook in PAY_HOOK:"),
        ("http://127.0.0.1:9/hook", "team payments: failed: cannot reach the Slack webhook"),
    ],
)
def test_digest_missing_bad_or_unreachable_webhook_is_one_line_and_exit_1(
    digest_cli, monkeypatch, hook, line
):
    from typer.testing import CliRunner

    from insights.cli import app

    if hook is None:
        monkeypatch.delenv("PAY_HOOK")
    else:
        monkeypatch.setenv("PAY_HOOK", hook)
    args = ["digest", "-t", "acme", "--team", "payments", "--window", "2026-W05"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(line), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and "xoxb" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "2026-W99"], "error: window 2026-W99: no such ISO week"),
        (["--team", "nobody", "--dry-run"], "error: --team nobody: no such team in tenant acme"),
        (["--team", "nobody"], "error: --team nobody: no such team in tenant acme"),
    ],
)
def test_digest_bad_input_is_one_line_exit_2(digest_cli, args, message):
    from typer.testing import CliRunner

    from insights.cli import app

    result = CliRunner().invoke(app, ["digest", "-t", "acme", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_scheduled_weekly_job_reports_the_week_before_its_fire_time(db, settings, httpserver):
    from insights.config import OrgConfig
    from insights.ops.scheduler import SchedulerService, weekly_job

    tenant = seed(db)
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    service = SchedulerService(
        settings.model_copy(update={"database_url": db.url}), OrgConfig(tenants=[tenant])
    )
    service.leadership.poll_once()  # elected: the job runtime is set
    try:
        weekly_job("acme", scheduled_at=AT)
        weekly_job("acme", scheduled_at=AT)  # the same fire again (another replica): skipped
    finally:
        service.stop()
    [run] = recent_runs(db.engine, "acme")
    assert (run.job, run.outcome, run.run_key) == (
        "weekly",
        "success",
        "weekly:acme@2026-02-03T07:00:00Z",
    )
    assert run.detail["window"] == "2026-W05"
    assert run.detail["digests"]["payments"] == "sent"
    assert len(httpserver.log) == 1


def test_digest_takes_from_and_to_like_every_windowed_command(digest_cli):
    from typer.testing import CliRunner

    from insights.cli import app

    args = ["digest", "-t", "acme", "--team", "payments", "--dry-run"]
    result = CliRunner().invoke(app, [*args, "--from", "2026-01-26", "--to", "2026-02-02"])
    assert result.exit_code == 0, result.output
    header = json.loads(result.output)["blocks"][0]["text"]["text"]
    assert header == "DORA digest · Team payments · 2026-01-26..2026-02-02"
