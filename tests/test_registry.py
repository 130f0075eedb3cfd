"""The tenant registry: `insights apply` (diff, idempotence, --prune), the database following
insights.toml without `insights init`, the admin API (CRUD, isolation, audit, OpenAPI) and
credentials encrypted at rest."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import Database
from cryptography.fernet import Fernet, InvalidToken
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from insights.api.app import create_app
from insights.api.auth import create_token
from insights.cli import app
from insights.config import Settings, secret
from insights.store import registry
from insights.store import secrets as stored_secrets
from insights.store.db import unit_of_work
from insights.store.models import AuditEntry, TenantSecret

runner = CliRunner()

EVENTS = "\n".join(
    json.dumps(e)
    for e in [
        {
            "type": "commit",
            "service": "checkout",
            "sha": "a1a1a1a1",
            "committed_at": "2026-01-05T10:00:00Z",
        },
        {
            "type": "deployment",
            "service": "checkout",
            "id": "d1",
            "environment": "production",
            "sha": "a1a1a1a1",
            "status": "success",
            "finished_at": "2026-01-06T10:00:00Z",
        },
        {
            "type": "deployment",
            "service": "ledger",
            "id": "d2",
            "environment": "production",
            "sha": "b1b1b1b1",
            "status": "success",
            "finished_at": "2026-01-06T11:00:00Z",
        },
    ]
)

TEAMS_TOML = """
[[tenants]]
name = "acme"
  [[tenants.teams]]
  name = "payments"
  [[tenants.services]]
  name = "checkout"
  team = "payments"
  [[tenants.services]]
  name = "ledger"
  team = "payments"
"""

ORG_TOML = """
[[tenants]]
name = "acme"
timezone = "Europe/Berlin"
webhook_secret_env = "ACME_HOOK"
  [tenants.llm]
  provider = "openai"
  base_url = "http://127.0.0.1:9/v1"
  api_key_env = "ACME_LLM_KEY"
  [[tenants.teams]]
  name = "payments"
  slack_webhook_env = "ACME_SLACK_PAYMENTS"
  [[tenants.services]]
  name = "checkout"
  team = "payments"
    [tenants.services.source]
    kind = "github"
    repo = "acme/checkout"
    token_env = "ACME_GITHUB"
  [[tenants.services]]
  name = "ledger"
  team = "payments"

[[tenants]]
name = "globex"
  [[tenants.services]]
  name = "billing"
"""


def _run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.output


def _metrics(scope: str) -> dict:
    code, out = _run(
        "metrics", "-t", "acme", "--scope", scope, "--window", "2026-W02", "--format", "json"
    )
    assert code == 0, out
    return json.loads(out)


def test_team_scope_works_after_import_once_teams_are_configured_without_init(
    cli_env: Database, tmp_path: Path
) -> None:
    (tmp_path / "events.ndjson").write_text(EVENTS)
    assert _run("tenant", "create", "acme")[0] == 0  # writes go only to existing tenants
    assert _run("import", "events.ndjson", "-t", "acme")[0] == 0
    code, out = _run("metrics", "-t", "acme", "--scope", "team:payments", "--window", "2026-W02")
    assert code == 2 and "team 'payments': not found" in out

    (tmp_path / "insights.toml").write_text(TEAMS_TOML)  # no `insights init`
    assert _metrics("team:payments")["deployment_count"] == 2
    assert _metrics("service:ledger")["deployment_count"] == 1


def test_apply_prints_the_diff_and_a_second_apply_changes_nothing(
    cli_env: Database, tmp_path: Path
) -> None:
    (tmp_path / "org.toml").write_text(ORG_TOML)
    code, out = _run("apply", "org.toml")
    assert code == 0, out
    assert "+ tenant acme" in out and "+ service acme/checkout" in out
    assert "+ team acme/payments" in out and "+ tenant globex" in out
    code, out = _run("apply", "org.toml")
    assert code == 0 and out.strip() == "no changes"

    (tmp_path / "org.toml").write_text(ORG_TOML.replace('repo = "acme/checkout"', 'repo = "a/c"'))
    code, out = _run("apply", "org.toml", "--dry-run")
    assert "~ service acme/checkout: source.repo" in out and "would be made" in out
    with unit_of_work(cli_env.engine) as session:
        checkout = registry.load_tenant(session, "acme").service("checkout")  # type: ignore[union-attr]
    assert checkout is not None and checkout.source.repo == "acme/checkout"  # dry run wrote nothing


def test_apply_keeps_what_the_file_dropped_unless_pruned(cli_env: Database, tmp_path: Path) -> None:
    (tmp_path / "org.toml").write_text(ORG_TOML)
    assert _run("apply", "org.toml")[0] == 0
    (tmp_path / "events.ndjson").write_text(EVENTS)
    assert _run("tenant", "create", "acme")[0] == 0  # writes go only to existing tenants
    assert _run("import", "events.ndjson", "-t", "acme")[0] == 0
    dropped = ORG_TOML.split('  [[tenants.services]]\n  name = "ledger"')[0]
    dropped += '\n[[tenants]]\nname = "globex"\n'
    (tmp_path / "org.toml").write_text(dropped)

    code, out = _run("apply", "org.toml")
    assert "= service acme/ledger (not in the file; --prune removes it)" in out
    assert "= service globex/billing" in out
    assert _metrics("service:ledger")["deployment_count"] == 1

    code, out = _run("apply", "org.toml", "--prune")
    assert code == 0
    assert "- service acme/ledger" in out and "- service globex/billing" in out
    code, out = _run("metrics", "-t", "acme", "--scope", "service:ledger")
    assert code == 2 and "service 'ledger': not found" in out
    assert _run("apply", "org.toml", "--prune")[1].strip() == "no changes"


def test_prune_leaves_services_that_only_events_created(cli_env: Database, tmp_path: Path) -> None:
    (tmp_path / "events.ndjson").write_text(EVENTS)
    assert _run("tenant", "create", "acme")[0] == 0  # writes go only to existing tenants
    assert _run("import", "events.ndjson", "-t", "acme")[0] == 0
    (tmp_path / "org.toml").write_text('[[tenants]]\nname = "acme"\n')
    code, out = _run("apply", "org.toml", "--prune")
    assert code == 0 and "service" not in out
    assert _metrics("service:ledger")["deployment_count"] == 1


def test_a_broken_config_file_is_one_line_naming_it_and_writes_nothing(
    cli_env: Database, tmp_path: Path
) -> None:
    (tmp_path / "org.toml").write_text('[[tenants]]\nname = "acme"\ntimezone = 3\n')
    code, out = _run("apply", "org.toml")
    assert code == 2 and "org.toml: tenants.0.timezone" in out
    with unit_of_work(cli_env.engine) as session:
        assert registry.load_tenant(session, "acme") is None


# --- admin API -------------------------------------------------------------------------------

ADMIN = "admin-token-" + "x" * 32


@pytest.fixture
def admin(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("INSIGHTS_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("INSIGHTS_SECRET_KEYS", Fernet.generate_key().decode())
    monkeypatch.chdir(tmp_path)
    client = TestClient(create_app(Settings(database_url=db.url)))
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client


def test_admin_api_creates_reads_updates_and_deletes_tenants_services_and_teams(
    admin: TestClient,
) -> None:
    r = admin.put(
        "/api/v1/admin/tenants/acme",
        json={"timezone": "Europe/Berlin", "services": [{"name": "checkout", "team": "pay"}]},
    )
    assert r.status_code == 200, r.text
    assert {(c["action"], c["kind"], c["name"]) for c in r.json()["changes"]} == {
        ("create", "tenant", "acme"),
        ("create", "team", "pay"),  # named by its service: declared too
        ("create", "service", "checkout"),
    }
    r = admin.put(
        "/api/v1/admin/tenants/acme/services/ledger",
        json={"source": {"kind": "github", "repo": "acme/ledger", "token_env": "GH"}},
    )
    assert r.json()["changes"][0]["action"] == "create"
    body = admin.get("/api/v1/admin/tenants/acme").json()
    assert body["config"]["timezone"] == "Europe/Berlin"
    assert [s["name"] for s in body["config"]["services"]] == ["checkout", "ledger"]
    assert [t["name"] for t in body["config"]["teams"]] == ["pay"]

    r = admin.put("/api/v1/admin/tenants/acme/teams/pay", json={"slack_webhook_env": "HOOK"})
    assert r.json()["changes"] == [
        {
            "action": "update",
            "kind": "team",
            "tenant": "acme",
            "name": "pay",
            "fields": ["slack_webhook_env"],
        }
    ]
    assert admin.put(
        "/api/v1/admin/tenants/acme/teams/pay", json={"slack_webhook_env": "HOOK"}
    ).json() == {"changes": []}
    assert admin.delete("/api/v1/admin/tenants/acme/services/checkout").status_code == 204
    assert admin.delete("/api/v1/admin/tenants/acme/services/checkout").status_code == 404
    names = [
        s["name"] for s in admin.get("/api/v1/admin/tenants/acme").json()["config"]["services"]
    ]
    assert names == ["ledger"]
    assert admin.delete("/api/v1/admin/tenants/acme").status_code == 204
    assert admin.get("/api/v1/admin/tenants/acme").status_code == 404


def test_admin_api_rejects_bad_documents_with_a_4xx_naming_the_field(admin: TestClient) -> None:
    r = admin.put("/api/v1/admin/tenants/acme", json={"services": [{"name": "x", "oops": 1}]})
    assert r.status_code == 422 and "oops" in r.text
    r = admin.put("/api/v1/admin/tenants/acme", json={"name": "other"})
    assert r.status_code == 422 and "does not match" in r.text
    assert admin.put("/api/v1/admin/tenants/bad name!", json={}).status_code == 422
    assert admin.put("/api/v1/admin/tenants/nope/services/x", json={}).status_code == 404
    assert admin.get("/api/v1/admin/tenants").json() == []


def test_admin_api_needs_the_admin_token_and_a_tenant_token_is_refused(
    admin: TestClient, db: Database
) -> None:
    admin.put("/api/v1/admin/tenants/acme", json={})
    with unit_of_work(db.engine) as session:
        tenant_token = create_token(session, "acme", "ci")
    anonymous = TestClient(admin.app)
    assert anonymous.get("/api/v1/admin/tenants").status_code == 401
    as_tenant = {"Authorization": f"Bearer {tenant_token}"}
    assert anonymous.get("/api/v1/admin/tenants", headers=as_tenant).status_code == 403
    assert (
        anonymous.put("/api/v1/admin/tenants/acme", headers=as_tenant, json={}).status_code == 403
    )
    # and the admin token is no tenant token
    as_admin = {"Authorization": f"Bearer {ADMIN}"}
    assert anonymous.get("/api/v1/metrics", headers=as_admin).status_code == 401


def test_admin_changes_to_one_tenant_leave_the_other_untouched(admin: TestClient) -> None:
    admin.put("/api/v1/admin/tenants/acme", json={"services": [{"name": "checkout"}]})
    admin.put("/api/v1/admin/tenants/globex", json={"services": [{"name": "checkout"}]})
    admin.put(
        "/api/v1/admin/tenants/globex/services/checkout", json={"production_pattern": "^live$"}
    )
    admin.delete("/api/v1/admin/tenants/globex/services/checkout")
    acme = admin.get("/api/v1/admin/tenants/acme").json()["config"]["services"]
    assert [(s["name"], s["production_pattern"]) for s in acme] == [("checkout", "^prod(uction)?$")]
    assert admin.get("/api/v1/admin/tenants/globex").json()["config"]["services"] == []


def test_every_admin_change_is_audited_with_who_what_and_when_but_no_secret(
    admin: TestClient,
) -> None:
    headers = {"X-Insights-Actor": "alice"}
    admin.put(
        "/api/v1/admin/tenants/acme",
        json={"services": [{"name": "checkout", "source": {"kind": "github", "repo": "a/b"}}]},
        headers=headers,
    )
    slot = "services.checkout.source.token_env"
    r = admin.put(
        f"/api/v1/admin/tenants/acme/secrets/{slot}",
        json={"value": "ghp_SeCrEt123"},
        headers=headers,
    )
    assert r.status_code == 204
    entries = admin.get("/api/v1/admin/audit", params={"tenant": "acme"}).json()
    assert [e["action"] for e in entries] == ["secret.create", "service.create", "tenant.create"]
    assert {e["actor"] for e in entries} == {"admin-api:alice"}
    assert all(e["at"].startswith("20") for e in entries)
    assert "ghp_SeCrEt123" not in json.dumps(entries)


def test_credentials_are_write_only_and_reads_show_only_whether_set(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_LLM_KEY", "sk-from-env")
    admin.put(
        "/api/v1/admin/tenants/acme",
        json={
            "llm": {"provider": "openai", "api_key_env": "ACME_LLM_KEY"},
            "services": [{"name": "checkout", "source": {"kind": "github", "repo": "a/b"}}],
        },
    )
    slot = "services.checkout.source.token_env"
    admin.put(f"/api/v1/admin/tenants/acme/secrets/{slot}", json={"value": "ghp_SeCrEt123"})
    body = admin.get("/api/v1/admin/tenants/acme").json()
    assert "ghp_SeCrEt123" not in json.dumps(body) and "sk-from-env" not in json.dumps(body)
    assert body["secrets"][slot] == {"stored": True, "env": None, "env_set": False, "set": True}
    assert body["secrets"]["llm.api_key_env"]["set"] is True
    assert body["secrets"]["webhook_secret_env"]["set"] is False
    r = admin.put("/api/v1/admin/tenants/acme/secrets/no.such.slot", json={"value": "x"})
    assert r.status_code == 404 and "slots:" in r.text


def test_a_stored_credential_reaches_its_point_of_use_and_wins_over_the_env_reference(
    admin: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GH", "from-env")
    admin.put(
        "/api/v1/admin/tenants/acme",
        json={
            "services": [
                {"name": "c", "source": {"kind": "github", "repo": "a/b", "token_env": "GH"}}
            ]
        },
    )
    org = registry.organisation(db.engine, Settings(database_url=db.url))
    ref = org.tenant("acme").service("c").source.token_env  # type: ignore[union-attr]
    assert secret(ref, "token") == "from-env"
    admin.put(
        "/api/v1/admin/tenants/acme/secrets/services.c.source.token_env", json={"value": "tok-1"}
    )
    org = registry.organisation(db.engine, Settings(database_url=db.url))
    ref = org.tenant("acme").service("c").source.token_env  # type: ignore[union-attr]
    assert ref is not None and ref.startswith("stored:")
    assert secret(ref, "token") == "tok-1"


def test_incident_tool_credentials_have_slots_and_reach_their_point_of_use(
    admin: TestClient, db: Database
) -> None:
    """PagerDuty and Jira sources (a service's `incidents`, which have no name) get slots by
    kind, the second of a kind numbered; a stored token replaces the env reference there."""
    admin.put(
        "/api/v1/admin/tenants/acme",
        json={
            "services": [
                {
                    "name": "c",
                    "source": {"kind": "events"},
                    "incidents": [
                        {"kind": "pagerduty", "token_env": "PD", "service_ids": ["P1"]},
                        {"kind": "jira", "base_url": "https://j.example", "project": "OPS"},
                        {"kind": "jira", "base_url": "https://k.example", "project": "SRE"},
                    ],
                }
            ]
        },
    )
    slots = set(admin.get("/api/v1/admin/tenants/acme").json()["secrets"])
    assert {
        "services.c.incidents.pagerduty.token_env",
        "services.c.incidents.jira.token_env",
        "services.c.incidents.jira-2.token_env",
        "services.c.incidents.jira-2.user_env",
    } <= slots
    for slot, value in (
        ("services.c.incidents.pagerduty.token_env", "pd-TOPSECRET"),
        ("services.c.incidents.jira-2.token_env", "jira-TOPSECRET"),
    ):
        r = admin.put(f"/api/v1/admin/tenants/acme/secrets/{slot}", json={"value": value})
        assert r.status_code == 204
    org = registry.organisation(db.engine, Settings(database_url=db.url))
    pagerduty, jira, second = org.tenant("acme").service("c").incidents  # type: ignore[union-attr]
    assert secret(pagerduty.token_env, "token") == "pd-TOPSECRET"
    assert jira.token_env is None or not jira.token_env.startswith("stored:")
    assert secret(second.token_env, "token") == "jira-TOPSECRET"


def test_openapi_documents_the_admin_routes(admin: TestClient) -> None:
    paths = admin.get("/openapi.json").json()["paths"]
    assert "/api/v1/admin/tenants/{tenant}" in paths
    assert set(paths["/api/v1/admin/tenants/{tenant}/secrets/{slot}"]) == {"put", "delete"}


# --- secrets at rest -------------------------------------------------------------------------


def _dump(db: Database, tmp_path: Path) -> bytes:
    """The whole database as a dump tool sees it: pg_dump, or the SQLite file's bytes + WAL."""
    if db.dialect == "postgresql":
        url = db.engine.url
        return subprocess.run(
            [
                "pg_dump",
                "-h",
                url.host or "127.0.0.1",
                "-U",
                url.username or "postgres",
                "-p",
                str(url.port or 5432),
                url.database or "",
            ],
            check=True,
            capture_output=True,
        ).stdout
    with db.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(FULL)"))
    path = Path(db.engine.url.database or "")
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_credentials_are_unreadable_in_a_database_dump_and_survive_key_rotation(
    admin: TestClient, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.put(
        "/api/v1/admin/tenants/acme",
        json={
            "slack": {},
            "services": [{"name": "c", "source": {"kind": "gitlab", "repo": "a/b"}}],
        },
    )
    values = {
        "services.c.source.token_env": "glpat-TOPSECRET-0001",
        "slack.webhook_url_env": "https://hooks.slack.test/services/T0/B0/TOPSECRET",
    }
    for slot, value in values.items():
        assert (
            admin.put(
                f"/api/v1/admin/tenants/acme/secrets/{slot}", json={"value": value}
            ).status_code
            == 204
        )
    dump = _dump(db, tmp_path)
    assert b"TOPSECRET" not in dump
    assert b"tenant_secrets" in dump or db.dialect == "sqlite"

    old = stored_secrets.keyring()
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("INSIGHTS_SECRET_KEYS", f"{new_key},{os.environ['INSIGHTS_SECRET_KEYS']}")
    with unit_of_work(db.engine) as session:
        assert stored_secrets.rotate(session, actor="test") == 2
        tokens = list(session.scalars(select(TenantSecret.ciphertext)))
    monkeypatch.setenv("INSIGHTS_SECRET_KEYS", new_key)  # the old key is gone now
    org = registry.organisation(db.engine, Settings(database_url=db.url))
    assert (
        secret(org.tenant("acme").slack.webhook_url_env, "slack") == values["slack.webhook_url_env"]
    )
    for token in tokens:
        with pytest.raises(InvalidToken):
            old.decrypt(token.encode())
    with unit_of_work(db.engine) as session:
        actions = list(session.scalars(select(AuditEntry.action)))
    assert "secrets.rotate" in actions


def test_secrets_cli_reads_the_value_from_stdin_and_never_prints_it(
    cli_env: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSIGHTS_SECRET_KEYS", Fernet.generate_key().decode())
    (tmp_path / "org.toml").write_text(ORG_TOML)
    assert _run("apply", "org.toml")[0] == 0
    code, out = _run(
        "secrets", "set", "acme", "teams.payments.slack_webhook_env", input="https://h/TOPSECRET\n"
    )
    assert code == 0 and "TOPSECRET" not in out
    code, out = _run("secrets", "list", "acme")
    assert "teams.payments.slack_webhook_env: set (stored)" in out
    assert "services.checkout.source.token_env: not set (env ACME_GITHUB)" in out
    assert "TOPSECRET" not in out
    code, out = _run("secrets", "set", "acme", "nope", input="x")
    assert code == 2 and "not a credential field" in out
    monkeypatch.delenv("INSIGHTS_SECRET_KEYS")
    code, out = _run("secrets", "set", "acme", "llm.api_key_env", input="x")
    assert code == 2 and "INSIGHTS_SECRET_KEYS is not set" in out
