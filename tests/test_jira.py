"""Jira collector against local servers speaking Jira Cloud's and Data Center's wire formats."""

from __future__ import annotations

import logging

import pytest
from conftest import Database
from incident_support import FakeJira, fixture
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from insights.collect.jira import JiraCollector, base_jql
from insights.collect.jira_map import is_incident, map_issue
from insights.collect.sync import SyncContext, SyncReport, run_sync
from insights.config import OrgConfig, ServiceConfig, SourceConfig, TenantConfig
from insights.errors import UserError
from insights.store.db import unit_of_work
from insights.store.models import Incident
from insights.timeutil import parse_time

TOKEN_ENV = "TEST_JIRA_TOKEN"
USER_ENV = "TEST_JIRA_EMAIL"


@pytest.fixture(params=["cloud", "datacenter"])
def jira(
    request: pytest.FixtureRequest, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> FakeJira:
    fake = FakeJira(httpserver, cloud=request.param == "cloud")
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    monkeypatch.setenv(USER_ENV, fake.email)
    return fake


def org(fake: FakeJira, **source: object) -> OrgConfig:
    options: dict[str, object] = {
        "kind": "jira",
        "base_url": fake.url,
        "project": "OPS",
        "token_env": TOKEN_ENV,
        "lookback_days": 400,
        "max_rate_limit_wait_seconds": 1.0,
        "retry_backoff_seconds": 0.01,
    }
    if fake.cloud:
        options["user_env"] = USER_ENV
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


def searches(fake: FakeJira) -> list[dict[str, list[str]]]:
    return [q for path, q, status in fake.seen if "/search" in path and status == 200]


def test_full_sync_pages_the_search_the_way_the_deployment_type_requires(
    sqlite_db: Database, jira: FakeJira
) -> None:
    for n in range(1, 131):
        jira.add(n, opened=n, resolved=n + 60 if n % 2 else None)
    jira.add(900, opened=3, project="WEB")  # another project: not selected by the JQL

    report = sync(sqlite_db, org(jira))

    stored = incidents(sqlite_db)
    assert len(stored) == 130 and "WEB-900" not in stored
    assert report.counts["incident"].new == 130
    paths = {path for path, _, _ in jira.seen if "/search" in path}
    pages = searches(jira)
    if jira.cloud:
        assert paths == {"/rest/api/2/search/jql"}
        assert [q.get("nextPageToken", [""])[0] for q in pages] == ["", "100"]
    else:
        assert paths == {"/rest/api/2/search"}
        assert [q["startAt"][0] for q in pages] == ["0", "100"]
    jql = pages[0]["jql"][0]
    assert jql.startswith('(project = "OPS" AND issuetype in ("Incident")) AND updated >= "')
    assert jql.endswith("ORDER BY updated ASC, key ASC")
    first = stored["OPS-1"]
    assert first.opened_at == parse_time("2026-01-05T09:01:00Z")
    assert first.resolved_at == parse_time("2026-01-05T10:01:00Z")
    assert stored["OPS-2"].resolved_at is None
    assert first.severity == "high"


def test_resync_reads_only_what_changed_and_a_reopen_reopens(db: Database, jira: FakeJira) -> None:
    issue = jira.add(1, opened=0, resolved=30)
    jira.add(2, opened=10, resolved=40)
    sync(db, org(jira))
    # reopened a day later: Jira clears the resolution date and bumps `updated`
    issue["fields"].update(resolutiondate=None, updated="2026-01-06T09:00:00.000+0000")

    report = sync(db, org(jira))

    assert incidents(db)["OPS-1"].resolved_at is None
    assert report.counts["incident"].updated == 1
    assert report.counts["incident"].total == 1  # OPS-2 was filtered by the cursor


def test_429_with_retry_after_is_waited_out(sqlite_db: Database, jira: FakeJira) -> None:
    jira.add(1, opened=0, resolved=30)
    jira.fail(r"/search", 429, {"Retry-After": "0"}, {"errorMessages": ["Rate limit exceeded."]})
    report = sync(sqlite_db, org(jira))
    assert report.stopped_early is None
    assert len(incidents(sqlite_db)) == 1


def test_429_beyond_the_budget_stops_then_resumes(
    db: Database, jira: FakeJira, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(1, 151):
        jira.add(n, opened=n, resolved=n + 5)
    config = org(jira)
    second_page = r"nextPageToken=100" if jira.cloud else r"startAt=100"
    jira.fail(
        r"/search",
        429,
        {"Retry-After": "3600"},
        {"errorMessages": ["Rate limit"]},
        query=second_page,
    )
    with caplog.at_level(logging.WARNING):
        stopped = sync(db, config)
    assert stopped.stopped_early is not None and "rate limited" in stopped.stopped_early
    assert len(incidents(db)) == 100  # the first page and its cursor were committed

    resumed = sync(db, config)

    assert resumed.stopped_early is None
    assert len(incidents(db)) == 150
    assert resumed.counts["incident"].new == 50


def test_server_errors_are_retried(sqlite_db: Database, jira: FakeJira) -> None:
    jira.add(1, opened=0, resolved=30)
    jira.fail(r"/search", 503, body={"errorMessages": ["unavailable"]}, times=2)
    sync(sqlite_db, org(jira))
    assert jira.statuses().count(503) == 2
    assert len(incidents(sqlite_db)) == 1


def test_bad_credentials_are_a_one_line_error_naming_the_variables(
    sqlite_db: Database,
    jira: FakeJira,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "wrong-token-never-printed"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(UserError) as caught:
        sync(sqlite_db, org(jira))
    message = str(caught.value)
    assert message.startswith("jira checkout: Jira rejected the credentials (401)")
    assert TOKEN_ENV in message and "\n" not in message
    out = capsys.readouterr()
    for text in (message, caplog.text, out.out, out.err):
        assert wrong not in text


def test_bad_jql_quotes_jiras_complaint(sqlite_db: Database, jira: FakeJira) -> None:
    jira.fail(
        r"/search",
        400,
        body={"errorMessages": ["Field 'colour' does not exist or you do not have permission."]},
    )
    with pytest.raises(UserError) as caught:
        sync(sqlite_db, org(jira, jql="colour = red"))
    assert "Jira refused the JQL (400)" in str(caught.value)
    assert "colour" in str(caught.value)


def test_remap_rederives_incidents_from_raw_payloads_without_requests(
    sqlite_db: Database, jira: FakeJira, monkeypatch: pytest.MonkeyPatch
) -> None:
    jira.add(1, opened=0, resolved=30, description="Deployment: d-9")
    config = org(jira)
    sync(sqlite_db, config)
    jira.seen.clear()
    monkeypatch.delenv(TOKEN_ENV)
    tenant = config.tenants[0]
    [view] = tenant.services[0].sources()
    collector = JiraCollector(view, tenant)
    ctx = SyncContext(sqlite_db.engine, tenant, view, "jira", collector.repo_key())

    collector.remap(ctx)

    assert jira.seen == []
    assert ctx.report.counts["incident"].unchanged == 1
    assert incidents(sqlite_db)["OPS-1"].deployment_external_id == "d-9"


def test_mapping_follows_the_published_issue_example() -> None:
    issue = fixture("jira/issue.json")
    event = map_issue("checkout", issue)
    assert event.id == "OPS-1"
    assert event.resolved_at == parse_time("2026-01-05T12:30:00Z")
    assert event.severity == "high"
    assert event.deployment_id == "d-17"  # the description's `Deployment:` line
    issue["fields"]["customfield_10050"] = {"value": "d-99"}
    assert map_issue("checkout", issue, "customfield_10050").deployment_id == "d-99"
    assert is_incident(issue, "OPS", ["Incident"])
    assert not is_incident(issue, "OPS", ["Bug"])
    assert not is_incident(issue, "WEB", [])


def test_configured_jql_loses_its_order_by_and_a_source_needs_a_selection() -> None:
    assert base_jql("labels = incident ORDER BY created DESC", None, []) == "labels = incident"
    service = ServiceConfig(
        name="x", incidents=[SourceConfig(kind="jira", base_url="https://jira.example.com")]
    )
    tenant = TenantConfig(name="acme", services=[service])
    with pytest.raises(UserError, match="needs project or jql"):
        run_sync(None, OrgConfig(tenants=[tenant]))  # type: ignore[arg-type]


def test_issue_the_jql_no_longer_selects_stops_being_an_incident(
    db: Database, jira: FakeJira
) -> None:
    jira.add(1, opened=0, resolved=30)
    moved = jira.add(2, opened=10, resolved=40)
    sync(db, org(jira))
    assert set(incidents(db)) == {"OPS-1", "OPS-2"}
    moved["fields"]["project"]["key"] = "WEB"  # moved to another project (a new key, in Jira)

    sync(db, org(jira))

    assert set(incidents(db)) == {"OPS-1"}
    # and remap cannot bring it back: its kept payload went with it
    config = org(jira)
    tenant = config.tenants[0]
    [view] = tenant.services[0].sources()
    collector = JiraCollector(view, tenant)
    ctx = SyncContext(db.engine, tenant, view, "jira", collector.repo_key())
    collector.remap(ctx)
    assert set(incidents(db)) == {"OPS-1"}
