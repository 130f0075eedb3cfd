"""Fixtures for the API tests: an app on the `db` fixture with two tenants, tokens and config."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from insights.api.app import create_app
from insights.api.auth import create_token
from insights.api.limits import ApiSettings
from insights.config import Settings
from insights.pipeline import apply_org_config
from insights.store.db import unit_of_work
from insights.store.models import Base
from insights.store.repository import TenantRepository

ACME_SECRET = "acme-hook-secret-0123456789"
GLOBEX_SECRET = "globex-hook-secret-9876543210"
MAX_BODY = 64 * 1024

ORG_TOML = """
[[tenants]]
name = "acme"
webhook_secret_env = "ACME_HOOK_SECRET"
teams = [{ name = "payments" }]

[[tenants.services]]
name = "checkout"
team = "payments"
source = { kind = "github", repo = "acme/checkout-service" }

[[tenants.services]]
name = "payments-api"
team = "payments"
source = { kind = "gitlab", repo = "acme/payments/api" }

[[tenants]]
name = "globex"
webhook_secret_env = "GLOBEX_HOOK_SECRET"

[[tenants.services]]
name = "billing"

[[tenants]]
name = "initech"

[[tenants.services]]
name = "tps"
"""


@dataclass
class Api:
    """A running app (TestClient) on a real database, with one token per tenant."""

    client: TestClient
    db: Any
    tokens: dict[str, str]
    settings: Settings

    def auth(self, tenant: str = "acme", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[tenant]}", **extra}

    def counts(self, tenant: str = "acme") -> dict[str, int]:
        with unit_of_work(self.db.engine) as session:
            return TenantRepository.open(session, tenant).counts()

    def rows(self, model: type[Base], tenant: str = "acme") -> int:
        with unit_of_work(self.db.engine) as session:
            repo = TenantRepository.open(session, tenant)
            return session.scalar(
                select(func.count()).select_from(model).where(model.tenant_id == repo.tenant_id)  # type: ignore[attr-defined]
            )


def make_api(
    db: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    max_body: int = MAX_BODY,
    org_toml: str = ORG_TOML,
) -> Iterator[Api]:
    config = tmp_path / "insights.toml"
    config.write_text(org_toml)
    monkeypatch.setenv("ACME_HOOK_SECRET", ACME_SECRET)
    monkeypatch.setenv("GLOBEX_HOOK_SECRET", GLOBEX_SECRET)
    settings = Settings(database_url=db.url, config=config, reports_dir=tmp_path / "reports")
    tokens = {}
    with unit_of_work(db.engine) as session:
        for tenant in settings.organisation().tenants:
            apply_org_config(session, tenant)
            tokens[tenant.name] = create_token(session, tenant.name, "test")
    app = create_app(settings, ApiSettings(max_body_bytes=max_body))
    with TestClient(app) as client:
        yield Api(client, db, tokens, settings)


def ndjson(*events: dict[str, Any] | str) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)


def github_headers(body: bytes, event: str, delivery: str, secret: str = ACME_SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
        "Content-Type": "application/json",
    }


COMMIT = {
    "type": "commit",
    "service": "checkout",
    "sha": "c0ffee01",
    "committed_at": "2026-01-05T09:00:00Z",
}
DEPLOYMENT = {
    "type": "deployment",
    "service": "checkout",
    "id": "d-1",
    "sha": "c0ffee01",
    "finished_at": "2026-01-05T12:00:00Z",
    "commits": ["c0ffee01"],
}
INCIDENT = {
    "type": "incident",
    "service": "checkout",
    "id": "INC-1",
    "opened_at": "2026-01-05T13:00:00Z",
    "deployment_id": "d-1",
}


# Request handling that does not depend on the database engine runs on SQLite only; storage,
# isolation, idempotency and replay tests run on both.
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
