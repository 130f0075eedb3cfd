"""`GET /api/v1/metrics`: the CLI's JSON document, scoped to the caller's tenant."""

from __future__ import annotations

import json

import pytest
from api_support import COMMIT, DEPLOYMENT, INCIDENT, make_api, ndjson, sqlite_only
from typer.testing import CliRunner

from insights.cli import app as cli_app

WINDOW = "2026-W02"  # 2026-01-05 .. 2026-01-12, holds the sample deployment


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    yield from make_api(db, tmp_path, monkeypatch)


def seed(api):
    response = api.client.post(
        "/api/v1/events", content=ndjson(COMMIT, DEPLOYMENT, INCIDENT), headers=api.auth()
    )
    assert response.status_code == 200


def test_metrics_document_is_the_clis_json_byte_for_byte(api, monkeypatch):
    seed(api)
    response = api.client.get(
        "/api/v1/metrics",
        params={"scope": "service:checkout", "window": WINDOW},
        headers=api.auth(),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["deployment_count"] == 1 and body["failed_deployments"] == 1
    assert body["lead_time_hours"]["samples"] == 1 and body["lead_time_hours"]["median"] == 3.0
    assert body["scope"] == {"kind": "service", "name": "checkout"}
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", api.db.url)
    cli = CliRunner().invoke(
        cli_app,
        ["metrics", "-t", "acme", "--scope", "service:checkout", "-w", WINDOW, "--format", "json"],
    )
    assert cli.exit_code == 0, cli.output
    assert cli.stdout == response.text


def test_team_and_tenant_scopes_and_markdown(api):
    seed(api)
    team = api.client.get(
        "/api/v1/metrics", params={"scope": "team:payments", "window": WINDOW}, headers=api.auth()
    )
    assert team.json()["deployment_count"] == 1
    tenant = api.client.get("/api/v1/metrics", params={"window": WINDOW}, headers=api.auth())
    assert tenant.json()["scope"] == {"kind": "tenant", "name": "acme"}
    markdown = api.client.get(
        "/api/v1/metrics", params={"window": WINDOW, "format": "markdown"}, headers=api.auth()
    )
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "|" in markdown.text


def test_another_tenants_service_is_404_and_its_data_never_counted(api):
    seed(api)
    other = api.client.get(
        "/api/v1/metrics",
        params={"scope": "service:checkout", "window": WINDOW},
        headers=api.auth("globex"),
    )
    assert other.status_code == 404
    assert "service 'checkout': not found in tenant 'globex'" in other.json()["detail"]
    own = api.client.get("/api/v1/metrics", params={"window": WINDOW}, headers=api.auth("globex"))
    assert own.status_code == 200 and json.loads(own.text)["deployment_count"] == 0


@sqlite_only
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scope": "repo:checkout"}, "scope 'repo:checkout'"),
        ({"window": "last-tuesday"}, "window 'last-tuesday'"),
        ({"window": "2026-W60"}, "2026-W60"),
    ],
)
def test_malformed_scope_or_window_is_422_naming_it(api, params, message):
    response = api.client.get("/api/v1/metrics", params=params, headers=api.auth())
    assert response.status_code == 422
    assert message in response.json()["detail"]


@sqlite_only
def test_metrics_need_a_token(api):
    assert api.client.get("/api/v1/metrics").status_code == 401
