"""Per-tenant credentials stored encrypted at rest (Fernet), write-only through every interface.

A tenant's configuration names each credential in a `*_env` field (`services.<name>.source.
token_env`, `services.<name>.incidents.<kind>.token_env` (PagerDuty, Jira; also `user_env` and
`webhook_secret_env`), `teams.<name>.slack_webhook_env`, `slack.webhook_url_env`,
`llm.api_key_env`, `webhook_secret_env`, and whatever `*_env` fields new sources add). That
dotted path is the credential's *slot*. A slot is filled one of two ways:
- a reference to an environment variable: the field's value in the file or API document;
- a stored secret: `insights secrets set TENANT SLOT` or `PUT /api/v1/admin/tenants/{t}/
  secrets/{slot}`. It is encrypted with the first key of `INSIGHTS_SECRET_KEYS` (comma-
  separated Fernet keys; the others still decrypt, so keys rotate without downtime:
  `insights secrets rotate` re-encrypts every secret with the first key). A stored secret wins
  over the environment reference.

Nothing reads a stored value back except `config.secret()` at the point of use: APIs and the
CLI show only whether a slot is set. The database holds ciphertext only.

Example:
    INSIGHTS_SECRET_KEYS=$(python -c 'from cryptography.fernet import Fernet;
        print(Fernet.generate_key().decode())')
    echo -n "$TOKEN" | insights secrets set acme services.ledger.source.token_env
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from insights import config as config_module
from insights.config import STORED_SECRET_PREFIX, OrgConfig, TenantConfig
from insights.errors import NotFound, UserError
from insights.store.db import unit_of_work
from insights.store.models import Tenant, TenantSecret
from insights.store.registry import audit, load_tenant
from insights.timeutil import now

KEYS_ENV = "INSIGHTS_SECRET_KEYS"
MAX_SECRET_BYTES = 16384


def keyring() -> MultiFernet:
    """The Fernet keys from INSIGHTS_SECRET_KEYS (first one encrypts); a UserError if unusable."""
    raw = os.environ.get(KEYS_ENV, "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise UserError(
            f"{KEYS_ENV} is not set: it holds the Fernet key(s) that encrypt stored secrets"
            " (create one with `insights secrets generate-key`)"
        )
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        raise UserError(
            f"{KEYS_ENV}: each key must be a url-safe base64 32-byte Fernet key"
        ) from None


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


# --- slots -----------------------------------------------------------------------------------


def _walk(doc: Any, prefix: str = "") -> Iterator[tuple[str, dict[str, Any], str]]:
    """(slot, containing dict, key) for every `*_env` field of a tenant document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            path = f"{prefix}.{key}" if prefix else key
            if key.endswith("_env") and (value is None or isinstance(value, str)):
                yield path, doc, key
            else:
                yield from _walk(value, path)
    elif isinstance(doc, list):
        seen: dict[str, int] = {}
        for item in doc:
            if not isinstance(item, dict):
                continue
            # services and teams by name; a service's incident tools (no name) by kind, the
            # second source of one kind as `jira-2`
            label = item.get("name") if isinstance(item.get("name"), str) else item.get("kind")
            if not isinstance(label, str):
                continue
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label = f"{label}-{seen[label]}"
            yield from _walk(item, f"{prefix}.{label}")


def secret_slots(config: TenantConfig) -> dict[str, str | None]:
    """Every credential slot of a tenant and the env var its configuration references."""
    doc = config.model_dump(mode="json")
    return {slot: parent[key] for slot, parent, key in _walk(doc)}


def _reference(tenant_id: int, slot: str) -> str:
    return f"{STORED_SECRET_PREFIX}{tenant_id}:{slot}"


def _tenant(session: Session, name: str) -> Tenant:
    tenant = session.scalars(select(Tenant).where(Tenant.name == name)).one_or_none()
    if tenant is None:
        raise NotFound(f"tenant {name!r}: not found")
    return tenant


def _check_slot(session: Session, tenant: str, slot: str) -> None:
    config = load_tenant(session, tenant)
    assert config is not None
    slots = secret_slots(config)
    if slot not in slots:
        raise NotFound(
            f"secret slot {slot!r}: not a credential field of tenant {tenant!r}"
            f" (slots: {', '.join(sorted(slots)) or 'none'})"
        )


# --- writing ---------------------------------------------------------------------------------


def set_secret(session: Session, tenant: str, slot: str, value: str, actor: str) -> None:
    """Store (or replace) the tenant's credential in `slot`, encrypted; audited without it."""
    row_tenant = _tenant(session, tenant)
    _check_slot(session, tenant, slot)
    if not value or len(value.encode("utf-8")) > MAX_SECRET_BYTES:
        raise UserError(f"secret {slot}: must be 1..{MAX_SECRET_BYTES} bytes")
    token = keyring().encrypt(value.encode("utf-8")).decode("ascii")
    row = session.scalars(
        select(TenantSecret).where(
            TenantSecret.tenant_id == row_tenant.id, TenantSecret.slot == slot
        )
    ).one_or_none()
    if row is None:
        session.add(
            TenantSecret(tenant_id=row_tenant.id, slot=slot, ciphertext=token, updated_at=now())
        )
        action = "secret.create"
    else:
        row.ciphertext, row.updated_at = token, now()
        action = "secret.update"
    audit(session, actor, action, tenant, f"{tenant}/{slot}")
    session.flush()


def delete_secret(session: Session, tenant: str, slot: str, actor: str) -> bool:
    row_tenant = _tenant(session, tenant)
    row = session.scalars(
        select(TenantSecret).where(
            TenantSecret.tenant_id == row_tenant.id, TenantSecret.slot == slot
        )
    ).one_or_none()
    if row is None:
        return False
    session.delete(row)
    audit(session, actor, "secret.delete", tenant, f"{tenant}/{slot}")
    session.flush()
    return True


def rotate(session: Session, actor: str = "cli") -> int:
    """Re-encrypt every stored secret with the current (first) key; returns how many.

    After this, keys other than the first can be removed from INSIGHTS_SECRET_KEYS.
    """
    ring = keyring()
    count = 0
    for row in session.scalars(select(TenantSecret).with_for_update()):
        try:
            row.ciphertext = ring.rotate(row.ciphertext.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise UserError(
                f"secret {row.slot} (tenant id {row.tenant_id}): no key in {KEYS_ENV} decrypts"
                " it; add the old key after the new one and rotate again"
            ) from None
        row.updated_at = now()
        count += 1
    audit(session, actor, "secrets.rotate", None, "*", {"secrets": count})
    return count


# --- reading (status only, and the point of use) --------------------------------------------


def secret_status(session: Session, tenant: str) -> dict[str, dict[str, Any]]:
    """Per slot: whether a stored secret exists, the env var referenced and whether it is set.
    Never the value."""
    row_tenant = _tenant(session, tenant)
    config = load_tenant(session, tenant)
    assert config is not None
    stored = set(
        session.scalars(select(TenantSecret.slot).where(TenantSecret.tenant_id == row_tenant.id))
    )
    return {
        slot: {
            "stored": slot in stored,
            "env": env,
            "env_set": bool(env and os.environ.get(env)),
            "set": slot in stored or bool(env and os.environ.get(env)),
        }
        for slot, env in secret_slots(config).items()
    }


def read_reference(engine: Engine, reference: str) -> str | None:
    """Decrypt the secret a `stored:<tenant id>:<slot>` reference names (None if absent)."""
    body = reference.removeprefix(STORED_SECRET_PREFIX)
    tenant_id, _, slot = body.partition(":")
    if not tenant_id.isdigit():
        return None
    with unit_of_work(engine) as session:
        token = session.scalars(
            select(TenantSecret.ciphertext).where(
                TenantSecret.tenant_id == int(tenant_id), TenantSecret.slot == slot
            )
        ).one_or_none()
    if token is None:
        return None
    try:
        return keyring().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        return None


def with_stored_references(session: Session, org: OrgConfig) -> OrgConfig:
    """`org` with each slot that has a stored secret pointing at it (`stored:…`), and the
    reader for those references installed for this database."""
    rows = session.execute(
        select(Tenant.name, Tenant.id, TenantSecret.slot).join(
            TenantSecret, TenantSecret.tenant_id == Tenant.id
        )
    ).all()
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    config_module.use_stored_secrets(lambda ref: read_reference(engine, ref))
    if not rows:
        return org
    by_tenant: dict[str, dict[str, int]] = {}
    for name, tenant_id, slot in rows:
        by_tenant.setdefault(name, {})[slot] = tenant_id
    tenants = []
    for tenant in org.tenants:
        slots = by_tenant.get(tenant.name)
        if not slots:
            tenants.append(tenant)
            continue
        doc = tenant.model_dump(mode="json")
        for slot, parent, key in list(_walk(doc)):
            if slot in slots:
                parent[key] = _reference(slots[slot], slot)
        tenants.append(TenantConfig.model_validate(doc))
    return OrgConfig(tenants=tenants)
