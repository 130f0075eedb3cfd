"""PagerDuty collector against a local server speaking PagerDuty's REST API v2 wire format."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Database
from incident_support import FakePagerDuty, fixture, tls_server
from sqlalchemy import select

from insights.collect.pagerduty import PagerDutyCollector
from insights.collect.pagerduty_map import map_incident
from insights.collect.sync import SyncContext, SyncReport, run_sync
from insights.config import OrgConfig, ServiceConfig, SourceConfig, TenantConfig
from insights.errors import UserError
from insights.store.db import unit_of_work
from insights.store.models import Incident
from insights.store.repository import TenantRepository
from insights.timeutil import parse_time

TOKEN_ENV = "TEST_PAGERDUTY_TOKEN"
SERVICE = "PCHECK1"


@pytest.fixture
def pagerduty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePagerDuty]:
    with tls_server(tmp_path) as (server, bundle):
        fake = FakePagerDuty(server)
        fake.bundle = bundle
        monkeypatch.setenv(TOKEN_ENV, fake.token)
        yield fake


def org(fake: FakePagerDuty, **source: object) -> OrgConfig:
    options: dict[str, object] = {
        "kind": "pagerduty",
        "service_ids": [SERVICE],
        "base_url": fake.url,
        "token_env": TOKEN_ENV,
        "ca_bundle": fake.bundle,
        "lookback_days": 400,
        "max_rate_limit_wait_seconds": 1.0,
        "retry_backoff_seconds": 0.01,
    }
    options.update(source)
    service = ServiceConfig(name="checkout", incidents=[SourceConfig(**options)])
    return OrgConfig(tenants=[TenantConfig(name="acme", services=[service])])


def sync(db: Database, config: OrgConfig) -> SyncReport:
    [report] = run_sync(db.engine, config, tenant="acme")
    return report


def incidents(db: Database) -> dict[str, Incident]:
    with unit_of_work(db.engine) as session:
        rows = session.scalars(select(Incident)).all()
        session.expunge_all()
        return {row.external_id: row for row in rows}


def list_requests(fake: FakePagerDuty) -> list[dict[str, list[str]]]:
    return [q for path, q, status in fake.seen if path == "/incidents" and status == 200]


def test_full_sync_pages_incidents_of_the_configured_services_only(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    for n in range(1, 111):
        pagerduty.add(n, SERVICE, opened=n, resolved=n + 30)
    pagerduty.add(500, "POTHER9", opened=5, resolved=6)

    report = sync(db, org(pagerduty))

    stored = incidents(db)
    assert len(stored) == 110 and "PINC500" not in stored
    assert report.counts["incident"].new == 110
    pages = list_requests(pagerduty)
    offsets = [q["offset"][0] for q in pages]  # limit 100, offset pagination
    assert offsets.count("100") == 1 and set(offsets) == {"0", "100"}
    assert all(q["service_ids[]"] == [SERVICE] for q in pages)
    # creation-time windows of at most 30 days, each starting where the last ended
    windows = [(parse_time(q["since"][0]), parse_time(q["until"][0])) for q in pages]
    assert all(until - since <= timedelta(days=30) for since, until in windows)
    starts = sorted({since for since, _ in windows})
    assert all(any(u == s for _, u in windows) for s in starts[1:])
    assert pages[0]["sort_by"] == ["created_at:asc"]
    first = stored["PINC001"]
    assert first.opened_at == parse_time("2026-01-05T09:01:00Z")
    assert first.resolved_at == parse_time("2026-01-05T09:31:00Z")
    assert first.severity == "p2"


def test_resync_reads_from_the_oldest_open_incident_and_sees_its_resolution(
    sqlite_db: Database, pagerduty: FakePagerDuty
) -> None:
    pagerduty.add(1, SERVICE, opened=0, resolved=10)
    still_open = pagerduty.add(2, SERVICE, opened=60 * 24 * 20)  # triggered, 20 days later
    sync(sqlite_db, org(pagerduty, overlap_days=0))
    assert incidents(sqlite_db)["PINC002"].resolved_at is None

    still_open.update(
        status="resolved",
        resolved_at="2026-01-26T10:00:00Z",
        last_status_change_at="2026-01-26T10:00:00Z",
    )
    pagerduty.seen.clear()
    report = sync(sqlite_db, org(pagerduty, overlap_days=0))

    assert incidents(sqlite_db)["PINC002"].resolved_at == parse_time("2026-01-26T10:00:00Z")
    assert report.counts["incident"].updated == 1
    first_since = parse_time(list_requests(pagerduty)[0]["since"][0])
    assert first_since == parse_time(still_open["created_at"])  # not the lookback start
    # the resolved incident 1 was not fetched again, nor its notes
    assert not any(path == "/incidents/PINC001/notes" for path, _, _ in pagerduty.seen)


def test_reopened_incident_is_unresolved_again(db: Database, pagerduty: FakePagerDuty) -> None:
    incident = pagerduty.add(1, SERVICE, opened=0, resolved=30)
    sync(db, org(pagerduty))
    incident.update(
        status="triggered", resolved_at=None, last_status_change_at="2026-01-05T10:00:00Z"
    )
    sync(db, org(pagerduty))
    assert incidents(db)["PINC001"].resolved_at is None


def test_deployment_named_in_a_note_links_the_incident(
    sqlite_db: Database, pagerduty: FakePagerDuty
) -> None:
    pagerduty.add(1, SERVICE, opened=0, resolved=30, note="Rolled back.\nDeployment: d-42")
    pagerduty.add(2, SERVICE, opened=5, priority=None, urgency="low")
    sync(sqlite_db, org(pagerduty))
    stored = incidents(sqlite_db)
    assert stored["PINC001"].deployment_external_id == "d-42"
    assert stored["PINC002"].deployment_external_id is None
    assert stored["PINC002"].severity == "low"  # no priority: the urgency


def test_429_with_retry_after_is_waited_out(sqlite_db: Database, pagerduty: FakePagerDuty) -> None:
    pagerduty.add(1, SERVICE, opened=0, resolved=30)
    pagerduty.fail(r"^/incidents$", 429, {"Retry-After": "0"}, {"error": {"code": 2020}})
    report = sync(sqlite_db, org(pagerduty))
    assert report.stopped_early is None
    assert pagerduty.statuses()[:2] == [429, 200]
    assert len(incidents(sqlite_db)) == 1


def test_429_beyond_the_wait_budget_stops_then_resumes_without_duplicates(
    db: Database, pagerduty: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(1, 111):
        pagerduty.add(n, SERVICE, opened=n, resolved=n + 5)
    # the first page is stored, the second page is rate limited for an hour
    pagerduty.fail(r"/incidents/PINC101/notes", 429, {"ratelimit-reset": "3600"})
    with caplog.at_level(logging.WARNING):
        first = sync(db, org(pagerduty))
    assert first.stopped_early is not None and "rate limited" in first.stopped_early
    assert len(incidents(db)) == 100

    second = sync(db, org(pagerduty))

    assert second.stopped_early is None
    assert len(incidents(db)) == 110
    assert second.counts["incident"].new == 10


def test_server_errors_are_retried(sqlite_db: Database, pagerduty: FakePagerDuty) -> None:
    pagerduty.add(1, SERVICE, opened=0, resolved=30)
    pagerduty.fail(r"^/incidents$", 503, body={"error": {"message": "unavailable"}}, times=2)
    sync(sqlite_db, org(pagerduty))
    assert pagerduty.statuses()[:3] == [503, 503, 200]
    assert len(incidents(sqlite_db)) == 1


def test_persistent_server_error_is_a_one_line_error(
    sqlite_db: Database, pagerduty: FakePagerDuty
) -> None:
    pagerduty.fail(r"^/incidents$", 500, times=10)
    with pytest.raises(UserError) as caught:
        sync(sqlite_db, org(pagerduty))
    assert str(caught.value) == "pagerduty checkout: PagerDuty answered 500"


def test_bad_token_is_one_line_error_naming_the_variable_not_the_token(
    sqlite_db: Database,
    pagerduty: FakePagerDuty,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "u+wrong-key-do-not-print"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    pagerduty.add(1, SERVICE, opened=0)
    with caplog.at_level(logging.DEBUG), pytest.raises(UserError) as caught:
        sync(sqlite_db, org(pagerduty))
    message = str(caught.value)
    assert message.startswith("pagerduty checkout: the token in TEST_PAGERDUTY_TOKEN was rejected")
    assert "\n" not in message
    out = capsys.readouterr()
    for text in (message, caplog.text, out.out, out.err):
        assert wrong not in text
    assert incidents(sqlite_db) == {}


def test_source_without_service_ids_is_rejected_before_any_request(
    sqlite_db: Database, pagerduty: FakePagerDuty
) -> None:
    with pytest.raises(UserError, match="needs service_ids"):
        sync(sqlite_db, org(pagerduty, service_ids=[]))
    assert pagerduty.seen == []


def test_remap_rederives_incidents_from_raw_payloads_without_requests(
    sqlite_db: Database, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pagerduty.add(1, SERVICE, opened=0, resolved=30, note="Deployment: d-7")
    pagerduty.add(2, SERVICE, opened=10)
    config = org(pagerduty)
    sync(sqlite_db, config)
    pagerduty.seen.clear()
    monkeypatch.delenv(TOKEN_ENV)
    tenant = config.tenants[0]
    [view] = tenant.services[0].sources()
    collector = PagerDutyCollector(view, tenant)
    ctx = SyncContext(sqlite_db.engine, tenant, view, "pagerduty", collector.repo_key())

    collector.remap(ctx)

    assert pagerduty.seen == []
    assert ctx.report.counts["incident"].unchanged == 2


def test_mapping_follows_the_published_incident_example() -> None:
    incident = fixture("pagerduty/incident.json")
    event = map_incident("mail", incident, fixture("pagerduty/notes.json")["notes"])
    assert event.id == "PT4KHLK"
    assert event.opened_at == datetime(2015, 10, 6, 21, 30, 42, tzinfo=UTC)
    assert event.resolved_at == datetime(2015, 10, 6, 21, 38, 23, tzinfo=UTC)
    assert event.severity == "p2"
    assert event.title == "The server is on fire."
    assert event.deployment_id is None


def test_incident_sources_run_after_the_services_own_source(
    sqlite_db: Database, pagerduty: FakePagerDuty
) -> None:
    pagerduty.add(1, SERVICE, opened=0, resolved=30)
    config = org(pagerduty)
    with unit_of_work(sqlite_db.engine) as session:
        TenantRepository.open(session, "acme", create=True)
    reports = run_sync(sqlite_db.engine, config)
    assert [(r.service, r.source) for r in reports] == [("checkout", "pagerduty")]


def test_insights_sync_reads_a_clone_and_its_pagerduty_incidents_then_metrics_count_them(
    sqlite_db: Database, pagerduty: FakePagerDuty, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way a user runs it: a local clone (with a revert) plus PagerDuty, via the CLI."""
    import json

    from git_support import GitRepo
    from typer.testing import CliRunner

    from insights.cli import app

    repo = GitRepo(tmp_path / "shop")

    def change(name: str, message: str, date: str) -> None:
        (repo.path / name).write_text(message)
        repo.git("add", name)
        repo.commit(message, date)

    change("base.txt", "base", "2026-01-05T08:00:00Z")
    repo.tag("v1", date="2026-01-05T08:30:00Z")
    change("cache.txt", "Add cache", "2026-01-05T09:00:00Z")
    repo.tag("v2", date="2026-01-05T09:30:00Z")
    change("other.txt", "Unrelated", "2026-01-05T11:00:00Z")
    repo.tag("v3", date="2026-01-05T11:30:00Z")
    repo.git("revert", "--no-edit", "v2^{commit}", date="2026-01-05T12:00:00Z")
    repo.tag("v4", date="2026-01-05T12:30:00Z")
    # paged 20 minutes after v3 with no link: attributed to v3 by time
    pagerduty.add(1, SERVICE, opened=170, resolved=200)
    config = tmp_path / "insights.toml"
    config.write_text(
        f"""
[[tenants]]
name = "acme"
[[tenants.services]]
name = "shop"
  [tenants.services.source]
  kind = "localgit"
  path = "{repo.path}"
  [[tenants.services.incidents]]
  kind = "pagerduty"
  service_ids = ["{SERVICE}"]
  base_url = "{pagerduty.url}"
  token_env = "{TOKEN_ENV}"
  ca_bundle = "{pagerduty.bundle}"
  lookback_days = 400
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("INSIGHTS_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    synced = runner.invoke(app, ["sync", "--tenant", "acme"])
    assert synced.exit_code == 0, synced.output
    assert "2 of 2 source(s) synced" in synced.output  # the clone, then its PagerDuty source
    shown = runner.invoke(
        app,
        [
            "metrics",
            "--tenant",
            "acme",
            "--scope",
            "service:shop",
            "--window",
            "2026-W02",
            "--format",
            "json",
        ],
    )
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["deployment_count"] == 4
    assert doc["failed_deployments"] == 2  # v2 (reverted by v4) and v3 (the PagerDuty incident)


def test_incident_the_boundary_refuses_is_skipped_with_a_warning_and_the_rest_kept(
    sqlite_db: Database, pagerduty: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    pagerduty.add(1, SERVICE, opened=0, resolved=30)
    broken = pagerduty.add(2, SERVICE, opened=60, resolved=90)
    broken["resolved_at"] = "2026-01-05T08:00:00Z"  # resolved before it was created
    with caplog.at_level(logging.WARNING):
        report = sync(sqlite_db, org(pagerduty))
    assert set(incidents(sqlite_db)) == {"PINC001"}
    assert report.counts["incident"].new == 1
    assert "skipped invalid pagerduty incident PINC002: " in caplog.text
    assert report.skipped == {"incident": 1}
    assert "resolved_at" in caplog.text


def test_rebuild_of_the_service_rederives_its_pagerduty_incidents_without_requests(
    sqlite_db: Database, pagerduty: FakePagerDuty
) -> None:
    from insights.collect.rebuild import rebuild_service

    pagerduty.add(1, SERVICE, opened=0, resolved=30, note="Deployment: d-3")
    incident_source = org(pagerduty).tenants[0].services[0].incidents[0]
    service = ServiceConfig(
        name="checkout",
        source=SourceConfig(kind="github", repo="acme/checkout", token_env="UNSET_GITHUB_TOKEN"),
        incidents=[incident_source],
    )
    tenant = TenantConfig(name="acme", services=[service])
    [view] = service.sources()[1:]
    from insights.collect.sync import sync_service

    sync_service(sqlite_db.engine, tenant, view)
    pagerduty.seen.clear()

    report = rebuild_service(sqlite_db.engine, tenant, service)

    assert pagerduty.seen == []
    assert report.removed["incidents"] == 1 and report.derived["incident"] == 1
    assert incidents(sqlite_db)["PINC001"].deployment_external_id == "d-3"
