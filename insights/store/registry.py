"""The tenant registry: tenants, teams, services and their configuration, kept in the database.

The database is the one source of truth every entry point reads (CLI, API, scheduler, workers).
`insights.toml` is one way to write it: `apply_org(session, org)` makes the registry match the
file declaratively and returns the diff; `organisation(engine, settings)` re-applies the file
automatically whenever its content hash changed, so file users never run a separate step.

Rules:
- A tenant, team or service is *registered* once a file or the admin API declared it
  (`config` column not null). Rows that events created (`insights import`, `record`) are not
  registered; a file that names them registers them.
- Without `prune`, apply only creates and updates. With `prune`, registered objects the file
  no longer has are deleted (a service's or tenant's delivery rows go with it). Unregistered
  objects are never pruned: the file never declared them.
- Applying the same file twice changes nothing the second time (empty diff).
- Secrets are references here (`token_env = "GITHUB_TOKEN"`) or stored encrypted in
  `tenant_secrets` (insights/store/secrets.py); `organisation()` points each field with a
  stored secret at it, values never enter a config object.

Example:
    with unit_of_work(engine) as session:
        changes = apply_org(session, load_org_config(Path("insights.toml")), actor="cli")
    print("\\n".join(c.line() for c in changes))   # + service acme/checkout …
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.config import (
    DEFAULT_PRODUCTION_PATTERN,
    OrgConfig,
    ServiceConfig,
    Settings,
    TeamConfig,
    TenantConfig,
    load_org_config,
)
from insights.store.db import unit_of_work
from insights.store.models import (
    AuditEntry,
    Commit,
    Deployment,
    DeploymentCommit,
    RegistryState,
    Service,
    Team,
    Tenant,
)
from insights.timeutil import now

log = logging.getLogger(__name__)

Kind = Literal["tenant", "team", "service"]
Action = Literal["create", "update", "delete", "kept"]
_SIGNS = {"create": "+", "update": "~", "delete": "-", "kept": "="}
# tenant-level keys that live in their own columns or child tables, not in tenants.config
_TENANT_COLUMNS = {"name", "timezone", "teams", "services"}
_SERVICE_COLUMNS = {"name", "team", "production_pattern"}


@dataclass(frozen=True)
class Change:
    """One difference between the registry and a desired configuration."""

    action: Action
    kind: Kind
    tenant: str
    name: str
    fields: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.tenant if self.kind == "tenant" else f"{self.tenant}/{self.name}"

    def line(self) -> str:
        """`~ service acme/checkout: source.path, team` (kept: not in the file, not pruned)."""
        text_ = f"{_SIGNS[self.action]} {self.kind} {self.target}"
        if self.fields:
            text_ += ": " + ", ".join(self.fields)
        if self.action == "kept":
            text_ += " (not in the file; --prune removes it)"
        return text_

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "tenant": self.tenant,
            "name": self.name,
            "fields": list(self.fields),
        }


# --- reading ---------------------------------------------------------------------------------


@dataclass
class _Stored:
    """A tenant as stored: its config plus which of its parts are registered."""

    config: TenantConfig
    registered: bool
    teams: dict[str, bool] = field(default_factory=dict)
    services: dict[str, bool] = field(default_factory=dict)


def _tenant_config(session: Session, tenant: Tenant) -> _Stored:
    teams = list(session.scalars(select(Team).where(Team.tenant_id == tenant.id).order_by(Team.id)))
    team_names = {t.id: t.name for t in teams}
    services = list(
        session.scalars(select(Service).where(Service.tenant_id == tenant.id).order_by(Service.id))
    )
    doc: dict[str, Any] = {
        **(tenant.config or {}),
        "name": tenant.name,
        "timezone": tenant.timezone,
        "teams": [{**(t.config or {}), "name": t.name} for t in teams],
        "services": [
            {
                **(s.config or {}),
                "name": s.name,
                "team": team_names.get(s.team_id) if s.team_id else None,
                "production_pattern": s.production_pattern,
            }
            for s in services
        ],
    }
    return _Stored(
        config=TenantConfig.model_validate(doc),
        registered=tenant.config is not None,
        teams={t.name: t.config is not None for t in teams},
        services={s.name: s.config is not None for s in services},
    )


def _stored_tenants(session: Session) -> dict[str, _Stored]:
    tenants = session.scalars(select(Tenant).order_by(Tenant.name))
    return {t.name: _tenant_config(session, t) for t in tenants}


def load_org(session: Session) -> OrgConfig:
    """Every tenant in the database as configuration (secret fields still as stored)."""
    return OrgConfig(tenants=[s.config for s in _stored_tenants(session).values()])


def load_tenant(session: Session, name: str) -> TenantConfig | None:
    tenant = session.scalars(select(Tenant).where(Tenant.name == name)).one_or_none()
    return None if tenant is None else _tenant_config(session, tenant).config


# --- diff ------------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, value


def _changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    a, b = dict(_flatten(old)), dict(_flatten(new))
    return tuple(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))


def _tenant_doc(config: TenantConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude=_TENANT_COLUMNS)


def _service_doc(config: TenantConfig, name: str) -> dict[str, Any]:
    service = config.service(name)
    assert service is not None
    return service.model_dump(mode="json")


def _team_doc(config: TenantConfig, name: str) -> dict[str, Any]:
    team = next(t for t in config.teams if t.name == name)
    return team.model_dump(mode="json")


def with_implied_teams(config: TenantConfig) -> TenantConfig:
    """A team a service names but the teams list lacks is declared too (with defaults)."""
    listed = {t.name for t in config.teams}
    implied = [s.team for s in config.services if s.team and s.team not in listed]
    if not implied:
        return config
    extra = [TeamConfig(name=name) for name in dict.fromkeys(implied)]
    return config.model_copy(update={"teams": [*config.teams, *extra]})


def diff_tenant(stored: _Stored | None, desired: TenantConfig, *, replace: bool) -> list[Change]:
    """What applying `desired` to one stored tenant changes; `replace` prunes its children."""
    desired = with_implied_teams(desired)
    name = desired.name
    changes: list[Change] = []
    if stored is None:
        changes.append(Change("create", "tenant", name, name))
        changes += [Change("create", "team", name, t.name) for t in desired.teams]
        changes += [Change("create", "service", name, s.name) for s in desired.services]
        return changes
    current = stored.config
    fields = _changed(
        {**_tenant_doc(current), "timezone": current.timezone},
        {**_tenant_doc(desired), "timezone": desired.timezone},
    )
    if not stored.registered:
        fields = ("registered", *fields)
    if fields:
        changes.append(Change("update", "tenant", name, name, fields))
    for kind, wanted, have, doc in (
        ("team", [t.name for t in desired.teams], stored.teams, _team_doc),
        ("service", [s.name for s in desired.services], stored.services, _service_doc),
    ):
        for child in wanted:
            if child not in have:
                changes.append(Change("create", kind, name, child))  # type: ignore[arg-type]
                continue
            fields = _changed(doc(current, child), doc(desired, child))
            if not have[child]:
                fields = ("registered", *fields)
            if fields:
                changes.append(Change("update", kind, name, child, fields))  # type: ignore[arg-type]
        for child, registered in have.items():
            if registered and child not in wanted:
                action: Action = "delete" if replace else "kept"
                changes.append(Change(action, kind, name, child))  # type: ignore[arg-type]
    return changes


def diff_org(session: Session, desired: OrgConfig, *, prune: bool) -> list[Change]:
    """The changes `apply_org(session, desired, prune=prune)` would make, in apply order."""
    stored = _stored_tenants(session)
    changes: list[Change] = []
    for tenant in desired.tenants:
        changes += diff_tenant(stored.get(tenant.name), tenant, replace=prune)
    wanted = {t.name for t in desired.tenants}
    for name, have in stored.items():
        if have.registered and name not in wanted:
            changes.append(Change("delete" if prune else "kept", "tenant", name, name))
    return changes


# --- writing ---------------------------------------------------------------------------------


def audit(
    session: Session,
    actor: str,
    action: str,
    tenant: str | None,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one registry change. `detail` names fields, never secret values."""
    session.add(
        AuditEntry(
            at=now(),
            actor=actor[:200],
            action=action,
            tenant=tenant,
            target=target[:300],
            detail=detail or {},
        )
    )


def _apply_change(session: Session, desired: TenantConfig | None, change: Change) -> None:
    tenant = session.scalars(select(Tenant).where(Tenant.name == change.tenant)).one_or_none()
    if change.kind == "tenant":
        if change.action == "delete":
            assert tenant is not None
            delete_history(session, tenant.id)
            session.delete(tenant)
            session.flush()
            return
        assert desired is not None
        if tenant is None:
            tenant = Tenant(name=desired.name, created_at=now())
            session.add(tenant)
        tenant.timezone = desired.timezone
        tenant.config = _tenant_doc(desired)
        session.flush()
        return
    assert tenant is not None
    if change.kind == "team":
        team = session.scalars(
            select(Team).where(Team.tenant_id == tenant.id, Team.name == change.name)
        ).one_or_none()
        if change.action == "delete":
            assert team is not None
            session.delete(team)
            session.flush()
            return
        assert desired is not None
        if team is None:
            team = Team(tenant_id=tenant.id, name=change.name)
            session.add(team)
        team.config = {k: v for k, v in _team_doc(desired, change.name).items() if k != "name"}
        session.flush()
        return
    service = session.scalars(
        select(Service).where(Service.tenant_id == tenant.id, Service.name == change.name)
    ).one_or_none()
    if change.action == "delete":
        assert service is not None
        delete_history(session, tenant.id, service.id)
        session.delete(service)
        session.flush()
        return
    assert desired is not None
    wanted = desired.service(change.name)
    assert wanted is not None
    team_id = None
    if wanted.team:
        team = session.scalars(
            select(Team).where(Team.tenant_id == tenant.id, Team.name == wanted.team)
        ).one_or_none()
        if team is None:  # a service may name a team the file does not list: create it
            team = Team(tenant_id=tenant.id, name=wanted.team)
            session.add(team)
            session.flush()
        team_id = team.id
    if service is None:
        service = Service(tenant_id=tenant.id, name=change.name, created_at=now())
        session.add(service)
    service.team_id = team_id
    service.production_pattern = wanted.production_pattern or DEFAULT_PRODUCTION_PATTERN
    service.config = {
        k: v for k, v in _service_doc(desired, change.name).items() if k not in _SERVICE_COLUMNS
    }
    session.flush()


def apply_changes(
    session: Session, desired: OrgConfig, changes: list[Change], actor: str
) -> list[Change]:
    """Make `changes` (from `diff_org`/`diff_tenant` against `desired`) and audit each one."""
    # children before their tenant is deleted is moot (cascade); deletes of children first so
    # a renamed team does not collide with the old one
    order = {"delete": 0, "create": 1, "update": 1, "kept": 2}
    kind_order = {"tenant": 0, "team": 1, "service": 2}
    from insights.store import read_cache

    wanted = {t.name: with_implied_teams(t) for t in desired.tenants}
    touched: set[str] = set()
    for change in sorted(changes, key=lambda c: (order[c.action], kind_order[c.kind])):
        if change.action == "kept":
            continue
        _apply_change(session, wanted.get(change.tenant), change)
        touched.add(change.tenant)
        audit(
            session,
            actor,
            f"{change.kind}.{change.action}",
            change.tenant,
            change.target,
            {"fields": list(change.fields)} if change.fields else {},
        )
    for name in touched:  # a team or pattern change changes metrics: stored reads are stale
        tenant = session.scalars(select(Tenant).where(Tenant.name == name)).one_or_none()
        if tenant is not None:
            read_cache.bump(session, tenant.id)
    return changes


def apply_org(
    session: Session, desired: OrgConfig, *, prune: bool = False, actor: str = "cli"
) -> list[Change]:
    """Make the registry match `desired`; returns the diff (empty when already equal)."""
    changes = diff_org(session, desired, prune=prune)
    return apply_changes(session, desired, changes, actor)


def put_tenant(session: Session, desired: TenantConfig, actor: str) -> list[Change]:
    """Replace one tenant's registered configuration (its teams/services as given)."""
    stored = _stored_tenants(session).get(desired.name)
    changes = diff_tenant(stored, desired, replace=True)
    return apply_changes(session, OrgConfig(tenants=[desired]), changes, actor)


def put_child(
    session: Session,
    tenant: str,
    kind: Literal["team", "service"],
    wanted: TeamConfig | ServiceConfig,
    actor: str,
) -> list[Change]:
    """Create or replace one team or service of an existing tenant; other children untouched."""
    stored = _stored_tenants(session)[tenant]
    current = stored.config
    if kind == "team":
        assert isinstance(wanted, TeamConfig)
        teams = [t for t in current.teams if t.name != wanted.name] + [wanted]
        desired = current.model_copy(update={"teams": teams})
    else:
        assert isinstance(wanted, ServiceConfig)
        services = [s for s in current.services if s.name != wanted.name] + [wanted]
        desired = current.model_copy(update={"services": services})
    changes = [
        c
        for c in diff_tenant(stored, desired, replace=False)
        if c.kind == kind and c.name == wanted.name
    ]
    return apply_changes(session, OrgConfig(tenants=[desired]), changes, actor)


def delete_history(session: Session, tenant_id: int, service_id: int | None = None) -> None:
    """Delete the commits and shipped-commit links of a tenant (or of one of its services)
    before the tenant or service itself. These bulk tables have no foreign key to cascade on
    PostgreSQL (migration 0006: the per-row check was a third of an ingest's server work);
    every other table still cascades from the deleted row."""
    deployments = select(Deployment.id).where(Deployment.tenant_id == tenant_id)
    commits = delete(Commit).where(Commit.tenant_id == tenant_id)
    if service_id is not None:
        deployments = deployments.where(Deployment.service_id == service_id)
        commits = commits.where(Commit.service_id == service_id)
    session.execute(
        delete(DeploymentCommit).where(
            DeploymentCommit.tenant_id == tenant_id,
            DeploymentCommit.deployment_id.in_(deployments.scalar_subquery()),
        )
    )
    session.execute(commits)


def delete_child(
    session: Session, tenant: str, kind: Literal["team", "service"], name: str, actor: str
) -> bool:
    """Delete one team (its services lose their team) or service (with its history)."""
    row = session.scalars(select(Tenant).where(Tenant.name == tenant)).one_or_none()
    if row is None:
        return False
    model = Team if kind == "team" else Service
    child = session.scalars(
        select(model).where(model.tenant_id == row.id, model.name == name)
    ).one_or_none()
    if child is None:
        return False
    if isinstance(child, Service):
        delete_history(session, row.id, child.id)
    session.delete(child)
    audit(session, actor, f"{kind}.delete", tenant, f"{tenant}/{name}")
    session.flush()
    from insights.store import read_cache

    read_cache.bump(session, row.id)
    return True


def delete_tenant(session: Session, name: str, actor: str) -> bool:
    tenant = session.scalars(select(Tenant).where(Tenant.name == name)).one_or_none()
    if tenant is None:
        return False
    delete_history(session, tenant.id)
    session.delete(tenant)
    audit(session, actor, "tenant.delete", name, name)
    session.flush()
    return True


# --- auto-apply ------------------------------------------------------------------------------

_STATE_KEY = "applied-config"
_APPLY_LOCK = 0x1A5E_7E5A  # pg advisory lock id: one auto-apply at a time across replicas


def config_path(settings: Settings) -> Path | None:
    """INSIGHTS_CONFIG, else ./insights.toml when it exists, else None."""
    if settings.config is not None:
        return settings.config
    local = Path("insights.toml")
    return local if local.exists() else None


def _content_hash(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        from insights.errors import UserError

        raise UserError(f"{path}: config file not found (set INSIGHTS_CONFIG)") from None
    return hashlib.sha256(data).hexdigest()


def sync_file(engine: Engine, settings: Settings) -> list[Change] | None:
    """Apply the configuration file when its content changed since the last apply.

    Returns the changes made, or None when the file is absent or unchanged. Never prunes:
    what the file dropped stays until `insights apply --prune` (it may hold history).
    """
    path = config_path(settings)
    if path is None:
        return None
    digest = _content_hash(path)
    with unit_of_work(engine) as session:
        state = session.get(RegistryState, _STATE_KEY)
        if state is not None and state.value == digest:
            return None
    org = load_org_config(path)  # a broken file is a UserError before anything is written
    for attempt in (1, 2):
        try:
            with unit_of_work(engine) as session:
                if engine.dialect.name == "postgresql":
                    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPLY_LOCK})
                state = session.get(RegistryState, _STATE_KEY)
                if state is not None and state.value == digest:
                    return None  # another process applied it while we waited
                changes = apply_org(session, org, actor=f"auto-apply:{path.name}")
                if state is None:
                    session.add(RegistryState(key=_STATE_KEY, value=digest, updated_at=now()))
                else:
                    state.value, state.updated_at = digest, now()
            break
        except IntegrityError:
            if attempt == 2:
                raise
    made = [c for c in changes if c.action != "kept"]
    if made:
        log.info("applied %s: %d change(s)", path, len(made))
    for kept in (c for c in changes if c.action == "kept"):
        log.info("%s", kept.line())
    return changes


def organisation(engine: Engine, settings: Settings) -> OrgConfig:
    """The registry as configuration, after applying a changed config file; stored secrets
    are referenced (`stored:…`) so `config.secret()` reads them where they are used."""
    from insights.store import secrets

    sync_file(engine, settings)
    with unit_of_work(engine) as session:
        org = load_org(session)
        return secrets.with_stored_references(session, org)


def registered_tenants(engine: Engine) -> set[str]:
    """Names of the tenants a file or the admin API declared (not those only events made)."""
    with unit_of_work(engine) as session:
        return set(session.scalars(select(Tenant.name).where(Tenant.config.is_not(None))))


def tenant_config(engine: Engine, settings: Settings, name: str) -> TenantConfig:
    """One tenant's configuration (defaults when the registry has no such tenant)."""
    return organisation(engine, settings).tenant(name)


def record_applied_file(session: Session, path: Path) -> None:
    """Remember `path`'s content as applied, so auto-apply does not repeat `insights apply`."""
    digest = _content_hash(path)
    state = session.get(RegistryState, _STATE_KEY)
    if state is None:
        session.add(RegistryState(key=_STATE_KEY, value=digest, updated_at=now()))
    else:
        state.value, state.updated_at = digest, now()
