"""Who may call what: Bearer tokens, revocation, tenant isolation on every endpoint, report
files confined to the caller's tenant folder, health and Prometheus metrics."""

from __future__ import annotations

import hashlib
import socket

import pytest
from api_support import COMMIT, DEPLOYMENT, make_api, ndjson, sqlite_only
from sqlalchemy import select
from typer.testing import CliRunner

from insights.api.auth import revoke_tokens
from insights.cli import app as cli_app
from insights.store.db import unit_of_work
from insights.store.models import ApiToken

PROTECTED = [
    ("post", "/api/v1/events"),
    ("post", "/api/v1/deployments"),
    ("post", "/api/v1/incidents"),
    ("get", "/api/v1/metrics"),
    ("get", "/reports/"),
    ("get", "/reports/index.html"),
]


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch)


def call(api, method, path, headers):
    if method == "post":
        return api.client.post(path, content=b"[]", headers=headers)
    return api.client.get(path, headers=headers)


def test_every_protected_endpoint_is_401_without_a_live_token(api):
    with unit_of_work(api.db.engine) as session:
        revoke_tokens(session, "globex", "test")
    for method, path in PROTECTED:
        for headers in (
            {},
            {"Authorization": "Bearer ins_not-a-real-token"},
            {"Authorization": f"Basic {api.tokens['acme']}"},
            api.auth("globex"),  # revoked
        ):
            response = call(api, method, path, headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"


@sqlite_only
def test_tokens_are_stored_only_as_their_sha256(api):
    token = api.tokens["acme"]
    with unit_of_work(api.db.engine) as session:
        hashes = list(session.scalars(select(ApiToken.token_hash)))
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert all(token not in h for h in hashes)


def test_events_posted_by_one_tenant_are_invisible_to_another(api):
    api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=api.auth())
    assert api.counts("acme")["deployments"] == 1
    assert api.counts("globex")["deployments"] == 0
    # globex cannot write into acme's service: to globex it does not exist
    response = api.client.post(
        "/api/v1/events", content=ndjson(dict(DEPLOYMENT, id="d-9")), headers=api.auth("globex")
    )
    assert response.status_code == 422
    assert "not found in tenant 'globex'" in response.json()["results"][0]["error"]
    assert api.counts("acme")["deployments"] == 1


def test_a_tenant_field_in_the_body_is_ignored(api):
    event = dict(COMMIT, service="billing", tenant="acme")
    response = api.client.post("/api/v1/events", json=[event], headers=api.auth("globex"))
    assert response.status_code == 200 and response.json()["tenant"] == "globex"
    assert api.counts("globex")["commits"] == 1 and api.counts("acme")["commits"] == 0


def write_reports(api):
    base = api.settings.reports_dir
    (base / "acme" / "checkout").mkdir(parents=True)
    (base / "globex").mkdir(parents=True)
    (base / "acme" / "index.html").write_text("<h1>acme index</h1>")
    (base / "acme" / "checkout" / "2026-W05.html").write_text("<h1>acme checkout</h1>")
    (base / "globex" / "secret.html").write_text("<h1>globex only</h1>")
    (base / "acme" / "escape.html").symlink_to(base / "globex" / "secret.html")


@sqlite_only
def test_reports_are_served_from_the_callers_tenant_folder_only(api):
    write_reports(api)
    index = api.client.get("/reports/", headers=api.auth())
    assert index.status_code == 200 and "acme index" in index.text
    assert index.headers["content-type"].startswith("text/html")
    page = api.client.get("/reports/checkout/2026-W05.html", headers=api.auth())
    assert page.status_code == 200 and "acme checkout" in page.text
    other = api.client.get("/reports/secret.html", headers=api.auth())
    assert other.status_code == 404
    own = api.client.get("/reports/secret.html", headers=api.auth("globex"))
    assert own.status_code == 200 and "globex only" in own.text
    assert api.client.get("/reports/", headers=api.auth("globex")).status_code == 404


@sqlite_only
@pytest.mark.parametrize(
    "path",
    [
        "/reports/../globex/secret.html",
        "/reports/%2e%2e/globex/secret.html",
        "/reports/..%2fglobex%2fsecret.html",
        "/reports//etc/passwd",
        "/reports/escape.html",
        "/reports/checkout/../../globex/secret.html",
    ],
)
def test_report_paths_cannot_leave_the_tenant_folder(api, path):
    write_reports(api)
    response = api.client.get(path, headers=api.auth())
    assert response.status_code == 404, response.text
    assert "globex only" not in response.text and "root:" not in response.text


def test_healthz_reports_the_database_reachable(api):
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@sqlite_only
def test_prometheus_metrics_count_requests_and_ingested_events(api):
    api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=api.auth())
    api.client.post("/api/v1/events", content=ndjson("{bad"), headers=api.auth())
    text = api.client.get("/metrics").text
    assert 'insights_events_ingested_total{channel="api",type="deployment"} 1.0' in text
    assert 'insights_events_rejected_total{channel="api"} 1.0' in text
    assert (
        'insights_http_requests_total{method="POST",route="/api/v1/events",status="200"} 1.0'
        in text
    )
    assert "insights_http_request_duration_seconds_bucket" in text
    assert api.tokens["acme"] not in text


def test_token_create_cli_prints_the_token_once_and_stores_its_hash(cli_env):
    runner = CliRunner()
    assert runner.invoke(cli_app, ["tenant", "create", "acme"]).exit_code == 0
    result = runner.invoke(cli_app, ["tenant", "token", "create", "acme", "--name", "gha"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("ins_") and len(token) == 47
    with unit_of_work(cli_env.engine) as session:
        row = session.scalar(select(ApiToken))
        assert row.name == "gha" and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    listed = runner.invoke(cli_app, ["tenant", "token", "list", "acme"])
    assert "gha" in listed.stdout and token not in listed.stdout
    revoked = runner.invoke(cli_app, ["tenant", "token", "revoke", "acme", "--name", "gha"])
    assert revoked.exit_code == 0
    again = runner.invoke(cli_app, ["tenant", "token", "revoke", "acme", "--name", "gha"])
    assert again.exit_code == 2 and "no live token" in again.stderr


@sqlite_only
def test_token_create_for_unknown_tenant_is_a_one_line_error(cli_env):
    result = CliRunner().invoke(cli_app, ["tenant", "token", "create", "nobody"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: tenant 'nobody': not found (create it with `insights tenant create`)"
    )


def test_single_event_endpoints_cannot_touch_another_tenants_records(api):
    api.client.post("/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT), headers=api.auth())
    incident = {"service": "checkout", "id": "INC-1", "opened_at": "2026-01-05T13:00:00Z"}
    opened = api.client.post("/api/v1/incidents", json=incident, headers=api.auth())
    assert opened.status_code == 201
    resolve = {"service": "checkout", "id": "INC-1", "resolved_at": "2026-01-05T14:00:00Z"}
    response = api.client.post("/api/v1/incidents", json=resolve, headers=api.auth("globex"))
    assert response.status_code == 422
    assert "not found in tenant 'globex'" in response.json()["detail"]["error"]
    redeploy = {"service": "checkout", "id": "d-1", "sha": "deadbeef", "status": "failure"}
    response = api.client.post("/api/v1/deployments", json=redeploy, headers=api.auth("globex"))
    assert response.status_code == 422
    with unit_of_work(api.db.engine) as session:
        from insights.store.models import Deployment, Incident

        assert session.scalar(select(Incident.resolved_at)) is None
        assert session.scalar(select(Deployment.status)) == "success"


def test_unreachable_database_is_503_not_a_crash(tmp_path):
    from fastapi.testclient import TestClient

    from insights.api.app import create_app
    from insights.config import Settings
    from insights.store.db import dispose_engine

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://insights@127.0.0.1:{port}/none?connect_timeout=2"
    settings = Settings(database_url=url, reports_dir=tmp_path)
    client = TestClient(create_app(settings))
    assert client.get("/healthz").status_code == 503
    response = client.post(
        "/api/v1/events", content=b"[]", headers={"Authorization": "Bearer ins_x"}
    )
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable, retry later"}
    assert str(port) not in response.text
    dispose_engine(url)
