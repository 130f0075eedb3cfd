"""Hostile and extreme input at every entry point (issue 13): each case of the report is a 4xx or
a numbered line error, never a 500; good lines are kept; a row that slipped into the store
before the boundary existed is skipped by the metrics engine, not a broken tenant."""

from __future__ import annotations

import json
import logging

import pytest
from api_support import (
    ACME_SECRET,
    COMMIT,
    DEPLOYMENT,
    INCIDENT,
    github_headers,
    make_api,
    ndjson,
)
from conftest import BACKENDS, _database
from sqlalchemy import text
from typer.testing import CliRunner
from webhook_payloads import (
    github_deployment_status,
    github_pull_request,
    gitlab_deployment,
    gitlab_merge_request,
)

from insights.boundedjson import MAX_DEPTH, JsonInputError, loads
from insights.cli import app as cli
from insights.collect.events import parse_lines
from insights.model import EventError, parse_event
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository
from insights.timeutil import RANGE_TEXT

runner = CliRunner()
NDJSON = {"Content-Type": "application/x-ndjson"}
OUT_OF_RANGE = [
    "1600-01-01T00:00:00Z",
    "2300-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:30:00+01:00",  # the offset pushes it before year 1: was an OverflowError
    "9999-12-31T23:30:00-01:00",  # and past year 9999
    "1969-12-31T23:59:59Z",
    "2100-01-01T00:00:01Z",
]
NEGATIVE = "(a duration cannot be negative; check the source's clock or fields)"
DEEP = "[" * 1000 + "]" * 1000
BIG_INT = "1" * 4301


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch)


@pytest.fixture(scope="module", params=BACKENDS)
def refusing_api(request, tmp_path_factory, sqlite_template, postgres_server):
    """One app per backend for the tests that only send input which must be refused: each of
    them asserts that nothing was stored, so they can share it."""
    tmp_path = tmp_path_factory.mktemp("refusing")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for db in _database(request.param, tmp_path, sqlite_template, postgres_server):
            yield from make_api(db, tmp_path, monkeypatch)


def incident(**fields: object) -> dict:
    return {**INCIDENT, **fields}


# -- the event model (no database) ---------------------------------------------------------


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_times_outside_1970_to_2100_utc_are_rejected_naming_the_field(when):
    with pytest.raises(EventError) as info:
        parse_event(incident(opened_at=when))
    assert str(info.value).startswith("incident.opened_at: outside the accepted range")


@pytest.mark.parametrize(
    ("when", "utc"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        ("2100-01-01T00:00:00Z", "2100-01-01T00:00:00+00:00"),
        ("1970-01-01T00:30:00-01:00", "1970-01-01T01:30:00+00:00"),  # in range once applied
    ],
)
def test_the_edges_of_the_range_are_accepted_after_the_offset(when, utc):
    assert parse_event(incident(opened_at=when)).opened_at.isoformat() == utc


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            incident(opened_at="2026-01-05T13:00:00Z", resolved_at="2026-01-05T12:00:00Z"),
            "incident.resolved_at: before opened_at",
        ),
        (
            dict(DEPLOYMENT, started_at="2026-01-05T13:00:00Z"),
            "deployment.finished_at: before started_at",
        ),
        (
            {
                "type": "change",
                "service": "checkout",
                "id": "42",
                "opened_at": "2026-01-05T10:00:00Z",
                "merged_at": "2026-01-05T09:59:59Z",
            },
            "change.merged_at: before opened_at",
        ),
    ],
)
def test_negative_durations_are_rejected_naming_the_later_field(event, message):
    with pytest.raises(EventError) as info:
        parse_event(event)
    assert str(info.value).startswith(message)


def test_zero_durations_are_accepted():
    same = "2026-01-05T13:00:00Z"
    assert parse_event(incident(opened_at=same, resolved_at=same)).resolved_at is not None


@pytest.mark.parametrize("field", ["id", "title", "severity", "deployment_id"])
def test_lone_surrogates_in_any_text_field_are_rejected(field):
    with pytest.raises(EventError) as info:
        parse_event(incident(**{field: "a\ud800b"}))
    assert str(info.value) == f"incident.{field}: not valid Unicode (lone surrogate at character 2)"


def test_integer_ids_longer_than_an_id_may_be_are_rejected():
    with pytest.raises(EventError, match=r"incident.id: must be 1-200 characters"):
        parse_event(incident(id=10**250))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (DEEP, f"nested deeper than {MAX_DEPTH} levels"),
        ('{"a": ' + "[" * 2000 + "]" * 2000 + "}", f"nested deeper than {MAX_DEPTH} levels"),
        (BIG_INT, "number outside the 64-bit range"),
        (str(2**64), "number outside the 64-bit range"),
        ("1e400", "number outside the 64-bit range"),
        ("NaN", "unexpected character"),
        ('"a\\ud800b"', "not valid Unicode"),
        (b'"\xff"', "not valid Unicode"),
    ],
)
def test_bounded_parser_refuses_what_the_store_cannot_hold(document, reason):
    with pytest.raises(JsonInputError) as info:
        loads(document)
    assert str(info.value).startswith(reason)


def test_bounded_parser_keeps_ordinary_documents():
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(nested) is not None
    assert loads('{"n": -9223372036854775808, "s": "\\ud83d\\ude00"}') == {
        "n": -(2**63),
        "s": "😀",
    }


def test_hostile_ndjson_lines_are_numbered_errors_and_good_lines_are_kept():
    lines = [
        json.dumps(COMMIT),
        json.dumps(incident(opened_at="0001-01-01T00:30:00+01:00")),
        DEEP,
        '{"type":"incident","service":"checkout","id":"x","title":"a\\ud800",'
        '"opened_at":"2026-01-05T13:00:00Z"}',
        '{"type":"incident","service":"checkout","id":' + BIG_INT + "}",
        json.dumps(incident(resolved_at="2026-01-01T00:00:00Z")),
        json.dumps(DEPLOYMENT),
    ]
    parsed = parse_lines(lines)
    assert [e.type for e in parsed.events] == ["commit", "deployment"]
    assert [(e.line, e.message) for e in parsed.errors] == [
        (2, f"incident.opened_at: outside the accepted range {RANGE_TEXT}"),
        (3, "not valid JSON (nested deeper than 64 levels)"),
        (4, "not valid JSON (not valid Unicode (invalid UTF-8 or a lone surrogate) at column 60)"),
        (5, "not valid JSON (number outside the 64-bit range at column 46)"),
        (6, "incident.resolved_at: before opened_at " + NEGATIVE),
    ]


# -- the HTTP API (SQLite and PostgreSQL) ---------------------------------------------------


def test_out_of_range_lines_are_rejected_good_lines_stored_and_metrics_still_answer(api):
    lines = [ndjson(COMMIT, DEPLOYMENT)]
    lines += [
        ndjson(incident(id=f"INC-{n}", opened_at=when)) for n, when in enumerate(OUT_OF_RANGE)
    ]
    response = api.client.post("/api/v1/events", content="".join(lines), headers=api.auth(**NDJSON))
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, len(OUT_OF_RANGE))
    fields = {r["field"] for r in body["results"] if r["status"] == "rejected"}
    assert fields == {"incident.opened_at"}
    assert api.counts()["incidents"] == 0 and api.counts()["deployments"] == 1
    for scope in ("tenant", "service:checkout"):
        metrics = api.client.get(
            "/api/v1/metrics", params={"scope": scope, "window": "2026-W02"}, headers=api.auth()
        )
        assert metrics.status_code == 200, metrics.text
        assert metrics.json()["deployment_count"] == 1


SINGLE_EVENT_422 = [
    ("/api/v1/incidents", {"opened_at": "0001-01-01T00:30:00+01:00"}, "incident.opened_at"),
    ("/api/v1/incidents", {"opened_at": "9999-12-31T00:00:00Z"}, "incident.opened_at"),
    (
        "/api/v1/incidents",
        {"opened_at": "2026-01-05T13:00:00Z", "resolved_at": "2026-01-05T12:00:00Z"},
        "incident.resolved_at",
    ),
    (
        "/api/v1/deployments",
        {"started_at": "2026-01-05T13:00:00Z", "finished_at": "2026-01-05T12:00:00Z"},
        "deployment.finished_at",
    ),
    ("/api/v1/deployments", {"finished_at": "2300-01-01T00:00:00Z"}, "deployment.finished_at"),
]


def test_single_event_endpoints_answer_422_naming_the_field(refusing_api):
    base = {"service": "checkout", "id": "x-1", "sha": "c0ffee01"}
    for path, body, field in SINGLE_EVENT_422:
        response = refusing_api.client.post(
            path, json={**base, **body}, headers=refusing_api.auth()
        )
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["detail"]["field"] == field
    assert sum(refusing_api.counts().values()) == 0


def test_resolving_an_incident_before_it_opened_keeps_the_stored_incident(api):
    api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=api.auth())
    opened = api.client.post("/api/v1/incidents", json=incident(), headers=api.auth())
    assert opened.status_code == 201
    resolve = {"service": "checkout", "id": "INC-1", "resolved_at": "2026-01-05T12:00:00Z"}
    response = api.client.post("/api/v1/incidents", json=resolve, headers=api.auth())
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "incident.resolved_at"
    with unit_of_work(api.db.engine) as session:
        stored = session.execute(text("SELECT resolved_at FROM incidents")).scalar_one()
    assert stored is None


def _hostile_bodies() -> list[tuple[str, bytes]]:
    return [
        ("deep", DEEP.encode()),
        ("deep object", ('{"service": "checkout", "x": ' + DEEP + "}").encode()),
        ("lone surrogate", b'{"service": "checkout", "id": "a\\ud800b", "title": "x"}'),
        ("4301 digits", b'{"service": "checkout", "id": ' + BIG_INT.encode() + b"}"),
        ("NaN", b'{"service": "checkout", "id": NaN}'),
    ]


def test_hostile_json_bodies_are_400_on_every_write_endpoint(refusing_api):
    for path in ("/api/v1/events", "/api/v1/deployments", "/api/v1/incidents"):
        for case, body in _hostile_bodies():
            content = body if path != "/api/v1/events" or case == "deep" else b"[" + body + b"]"
            response = refusing_api.client.post(
                path,
                content=content,
                headers=refusing_api.auth(**{"Content-Type": "application/json"}),
            )
            assert response.status_code == 400, (path, case, response.text)
            assert response.json()["detail"].startswith("body: not valid JSON (")
    assert sum(refusing_api.counts().values()) == 0


def test_hostile_ndjson_line_is_a_numbered_rejection(api):
    content = ndjson(COMMIT) + DEEP + "\n" + '{"type":"commit","id":' + BIG_INT + "}\n"
    response = api.client.post("/api/v1/events", content=content, headers=api.auth(**NDJSON))
    assert response.status_code == 207, response.text
    rejected = [r for r in response.json()["results"] if r["status"] == "rejected"]
    assert [r["line"] for r in rejected] == [2, 3]
    assert all(r["error"].startswith("not valid JSON") for r in rejected)
    assert api.counts()["commits"] == 1


def test_hostile_json_is_400_on_both_webhooks(refusing_api):
    for case, body in _hostile_bodies():
        _both_webhooks_refuse(refusing_api, case, body)
    assert sum(refusing_api.counts().values()) == 0
    assert (
        refusing_api.client.get("/api/v1/metrics", headers=refusing_api.auth()).status_code == 200
    )


def _both_webhooks_refuse(api, case: str, body: bytes) -> None:
    github = api.client.post(
        "/webhooks/github/acme",
        content=body,
        headers=github_headers(body, "deployment_status", f"gh-{case}"),
    )
    assert github.status_code == 400, (case, github.text)
    gitlab = api.client.post(
        "/webhooks/gitlab/acme",
        content=body,
        headers={"X-Gitlab-Token": ACME_SECRET, "Content-Type": "application/json"},
    )
    assert gitlab.status_code == 400, (case, gitlab.text)


def test_webhook_times_outside_the_range_are_422_not_500(refusing_api):
    payload = github_deployment_status("success")
    payload["deployment_status"]["created_at"] = "9999-12-31T23:59:59Z"
    payload["deployment_status"]["updated_at"] = "9999-12-31T23:59:59Z"
    body = json.dumps(payload).encode()
    response = refusing_api.client.post(
        "/webhooks/github/acme",
        content=body,
        headers=github_headers(body, "deployment_status", "gh-far-future"),
    )
    assert response.status_code == 422, response.text
    assert "outside the accepted range" in response.json()["detail"]["error"]
    hook = gitlab_deployment("success")
    hook["status_changed_at"] = "0001-01-01 00:30:00 +0100"
    gitlab = refusing_api.client.post(
        "/webhooks/gitlab/acme",
        json=hook,
        headers={"X-Gitlab-Token": ACME_SECRET, "X-Gitlab-Event-UUID": "gl-far-past"},
    )
    assert gitlab.status_code == 422, gitlab.text
    assert sum(refusing_api.counts().values()) == 0


def test_webhook_changes_merged_before_opened_are_422_naming_the_field(refusing_api):
    pull = github_pull_request()
    pull["pull_request"]["merged_at"] = "2026-01-01T00:00:00Z"  # before created_at
    body = json.dumps(pull).encode()
    github = refusing_api.client.post(
        "/webhooks/github/acme",
        content=body,
        headers=github_headers(body, "pull_request", "gh-merged-before-opened"),
    )
    assert github.status_code == 422, github.text
    assert github.json()["detail"]["field"] == "pull_request (merged_at)"
    assert "before opened_at" in github.json()["detail"]["error"]
    hook = gitlab_merge_request()
    hook["object_attributes"]["updated_at"] = "2026-01-01 00:00:00 UTC"  # the merge time
    gitlab = refusing_api.client.post(
        "/webhooks/gitlab/acme",
        json=hook,
        headers={"X-Gitlab-Token": ACME_SECRET, "X-Gitlab-Event-UUID": "gl-merged-before"},
    )
    assert gitlab.status_code == 422, gitlab.text
    assert gitlab.json()["detail"]["field"] == "object_attributes (merged_at)"
    assert sum(refusing_api.counts().values()) == 0


def test_webhook_review_time_out_of_range_is_422_not_500(refusing_api):
    pull = github_pull_request()
    review = {
        "id": 1,
        "user": {"login": "reviewer", "id": 5},
        "state": "approved",
        "submitted_at": "0001-01-01T00:30:00+01:00",  # the offset leaves Python's range
    }
    body = json.dumps({**pull, "action": "submitted", "review": review}).encode()
    response = refusing_api.client.post(
        "/webhooks/github/acme",
        content=body,
        headers=github_headers(body, "pull_request_review", "gh-review-far-past"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["field"] == "review"
    assert "outside the accepted range" in response.json()["detail"]["error"]
    assert sum(refusing_api.counts().values()) == 0


def test_metric_windows_out_of_range_are_422(refusing_api):
    for window in ("9999-W52", "0001-01", "0001-01-01..9999-12-31", "1969-12", "2100-01"):
        response = refusing_api.client.get(
            "/api/v1/metrics", params={"window": window}, headers=refusing_api.auth()
        )
        assert response.status_code == 422, (window, response.text)
        assert "outside the accepted range" in response.json()["detail"]


def test_the_widest_accepted_window_answers(api):
    api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=api.auth())
    response = api.client.get(
        "/api/v1/metrics", params={"window": "1970-01-01..2100-01-01"}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    assert response.json()["deployment_count"] == 1


def test_made_up_http_methods_share_one_prometheus_label(refusing_api):
    for method in ("FOOBAR", "BREW", "X-ANYTHING"):
        assert refusing_api.client.request(method, "/api/v1/events").status_code in (400, 404, 405)
    exposition = refusing_api.client.get("/metrics").text
    assert 'method="other"' in exposition
    assert "FOOBAR" not in exposition and "BREW" not in exposition


# -- rows stored before the boundary existed --------------------------------------------------


def _poison(db, tenant: str = "acme") -> None:
    """Rows an older version accepted, written with raw SQL as it would have stored them."""
    with unit_of_work(db.engine) as session:
        repo = TenantRepository.open(session, tenant)
        service_id = repo.require_service("checkout").id
        tid = repo.tenant_id

        def stamp(value: str) -> str:
            # SQLite holds naive UTC text, PostgreSQL a timestamptz literal
            return f"'{value}'" if db.dialect == "sqlite" else f"'{value}+00'::timestamptz"

        rows = [
            ("INC-OLD", stamp("1600-01-01 00:00:00.000000"), "NULL"),
            ("INC-FAR", stamp("9999-12-31 00:00:00.000000"), "NULL"),
            ("INC-YEAR1", stamp("0001-01-01 00:00:00.000000"), "NULL"),
            ("INC-NEG", stamp("2026-01-05 13:00:00.000000"), stamp("2026-01-05 12:00:00.000000")),
        ]
        for external_id, opened, resolved in rows:
            session.execute(
                text(
                    "INSERT INTO incidents (tenant_id, service_id, external_id, opened_at, "
                    f"resolved_at) VALUES ({tid}, {service_id}, '{external_id}', {opened}, "
                    f"{resolved})"
                )
            )
        session.execute(
            text(
                "INSERT INTO deployments (tenant_id, service_id, external_id, environment, sha, "
                f"status, started_at, finished_at, commits_listed) VALUES ({tid}, {service_id}, "
                f"'d-far', 'production', 'c0ffee01', 'success', NULL, "
                f"{stamp('2300-01-01 00:00:00.000000')}, false)"
            )
        )


def test_rows_stored_before_validation_are_skipped_with_a_warning_naming_them(api, caplog):
    api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=api.auth())
    _poison(api.db)
    with caplog.at_level(logging.WARNING, logger="insights.metrics"):
        for scope in ("tenant", "service:checkout", "team:payments"):
            response = api.client.get(
                "/api/v1/metrics",
                params={"scope": scope, "window": "2026-W02"},
                headers=api.auth(),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            # the good deployment counts; the poisoned incidents do not fail it
            assert body["deployment_count"] == 1 and body["failed_deployments"] == 0
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("INC-OLD", "INC-FAR", "INC-YEAR1", "d-far"):
        assert f"'{name}' of service 'checkout'" in warned
    assert (
        "skipped stored incident 'INC-NEG' of service 'checkout': resolved_at is before" in warned
    )


def test_cli_metrics_and_report_work_on_a_tenant_with_poisoned_rows(api, monkeypatch, tmp_path):
    api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=api.auth())
    _poison(api.db)
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", api.db.url)
    monkeypatch.setenv("INSIGHTS_CONFIG", str(tmp_path / "insights.toml"))
    metrics = runner.invoke(
        cli, ["metrics", "--tenant", "acme", "--window", "2026-W02", "--format", "json"]
    )
    assert metrics.exit_code == 0, metrics.output
    assert json.loads(metrics.stdout)["deployment_count"] == 1
    report = runner.invoke(
        cli, ["report", "--tenant", "acme", "--window", "2026-W02", "--out", str(tmp_path / "r")]
    )
    assert report.exit_code == 0, report.output


# -- the CLI ----------------------------------------------------------------------------------


def test_import_keeps_the_good_lines_of_a_file_with_an_out_of_range_line(cli_env, tmp_path):
    path = tmp_path / "events.ndjson"
    path.write_text(
        ndjson(COMMIT, incident(opened_at="0001-01-01T00:30:00+01:00"), DEPLOYMENT, DEEP)
    )
    result = runner.invoke(cli, ["import", str(path)])
    assert result.exit_code == 3, result.output  # the good lines were kept
    assert "events.ndjson: line 2: incident.opened_at: outside the accepted range" in result.stderr
    assert "events.ndjson: line 4: not valid JSON (nested deeper than 64 levels)" in result.stderr
    assert "Traceback" not in result.output
    with unit_of_work(cli_env.engine) as session:
        counts = TenantRepository.open(session, "default").counts()
    assert (counts["commits"], counts["deployments"], counts["incidents"]) == (1, 1, 0)


RECORD_DEPLOYMENT = ["record", "deployment", "-s", "checkout", "--sha", "c0ffee01"]
RECORD_INCIDENT = ["record", "incident", "-s", "checkout", "--id", "I", "--opened-at"]
CLI_OUT_OF_RANGE = [
    ["metrics", "--from", "0001-01-01", "--to", "9999-12-31"],
    ["metrics", "--window", "9999-W52"],
    ["metrics", "--window", "0001-01"],
    [*RECORD_INCIDENT, "0001-01-01T00:30:00+01:00"],
    [*RECORD_INCIDENT, "2026-01-05T13:00:00Z", "--resolved-at", "2026-01-05T12:00:00Z"],
    [*RECORD_DEPLOYMENT, "--finished-at", "2300-01-01T00:00:00Z"],
]


def test_cli_rejects_out_of_range_options_with_one_line_and_exit_2(cli_env):
    runner.invoke(cli, ["init"])
    for args in CLI_OUT_OF_RANGE:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        message = result.stderr.strip()
        assert "\n" not in message, message
        assert "outside the accepted range" in message or "before opened_at" in message
    with unit_of_work(cli_env.engine) as session:
        assert sum(TenantRepository.open(session, "default").counts().values()) == 0


def test_nul_characters_in_paths_queries_and_keys_are_4xx(refusing_api):
    api = refusing_api
    for path in (
        "/api/v1/metrics?scope=service:a%00b",
        "/api/v1/metrics?window=2026-W0%00",
        "/reports/acme/%00.html",
    ):
        response = api.client.get(path, headers=api.auth())
        assert response.status_code == 400, (path, response.text)
    for path in ("/webhooks/github/%00", "/webhooks/gitlab/a%00b"):
        assert api.client.post(path, content=b"{}").status_code == 400
    keyed = api.client.post(
        "/api/v1/incidents",
        json={"service": "checkout", "id": "INC-1", "opened_at": "2026-01-05T13:00:00Z"},
        headers=api.auth(**{"Idempotency-Key": "a\x00b"}),
    )
    assert keyed.status_code == 422
    assert keyed.json()["detail"].startswith("Idempotency-Key: must be 1-200 characters")
    assert sum(api.counts().values()) == 0


def test_import_from_stdin_reports_a_line_that_is_not_utf8_and_keeps_the_rest(cli_env):
    content = ndjson(COMMIT).encode() + b'{"type": "commit", "message": "\xff"}\n'
    result = runner.invoke(cli, ["import", "-"], input=content + ndjson(DEPLOYMENT).encode())
    assert result.exit_code == 3, result.output  # the good lines were kept
    assert "stdin: line 2: not valid JSON (not valid Unicode" in result.stderr
    with unit_of_work(cli_env.engine) as session:
        counts = TenantRepository.open(session, "default").counts()
    assert (counts["commits"], counts["deployments"]) == (1, 1)


def test_cli_arguments_that_are_not_utf8_are_one_line_errors(cli_env):
    # the shell passes bytes; Python turns a byte that is not UTF-8 into a lone surrogate
    record = ["record", "incident", "-s", "checkout", "--opened-at", "2026-01-05T10:00:00Z"]
    for extra, message in (
        (["--id", "a\udcffb"], "incident.id: not valid Unicode"),
        (["--id", "I", "--title", "a\udcffb"], "incident.title: not valid Unicode"),
        (["--id", "I", "--tenant", "a\udcffb"], "must be 1-128 characters of valid Unicode"),
    ):
        result = runner.invoke(cli, [*record, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.stderr and "Traceback" not in result.output
