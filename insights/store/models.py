"""SQLAlchemy 2.0 typed models. The schema itself changes only through Alembic migrations.

Every table carries `tenant_id`; natural keys (tenant, service, external id / sha) are unique
constraints, which is what the idempotent upserts in `repository.py` conflict on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# predicates of the partial indexes that answer "does this scope have reverts?" (0007); the
# reads in `store/window_read.py` use the same text so the planners pick them
REVERT_COMMITS = "message LIKE '%This reverts commit %'"
REVERT_CHANGES = "reverts IS NOT NULL OR title LIKE 'Revert \"%'"
# deployments stored before validation that the engine's screen skips (times outside
# 1970..2100, started after finished): usually none, so a partial index answers in no time
POISONED_DEPLOYMENTS = (
    "finished_at < '1970-01-01 00:00:00+00' OR finished_at > '2100-01-01 00:00:00+00'"
    " OR started_at < '1970-01-01 00:00:00+00' OR started_at > '2100-01-01 00:00:00+00'"
    " OR finished_at < started_at"
)
# the same for changes and incidents (migration 0010)
POISONED_CHANGES = (
    "opened_at < '1970-01-01 00:00:00+00' OR opened_at > '2100-01-01 00:00:00+00'"
    " OR first_commit_at < '1970-01-01 00:00:00+00' OR first_commit_at > '2100-01-01 00:00:00+00'"
    " OR first_review_at < '1970-01-01 00:00:00+00' OR first_review_at > '2100-01-01 00:00:00+00'"
    " OR approved_at < '1970-01-01 00:00:00+00' OR approved_at > '2100-01-01 00:00:00+00'"
    " OR merged_at < '1970-01-01 00:00:00+00' OR merged_at > '2100-01-01 00:00:00+00'"
    " OR merged_at < opened_at"
)
POISONED_INCIDENTS = (
    "opened_at < '1970-01-01 00:00:00+00' OR opened_at > '2100-01-01 00:00:00+00'"
    " OR resolved_at < '1970-01-01 00:00:00+00' OR resolved_at > '2100-01-01 00:00:00+00'"
    " OR resolved_at < opened_at"
)
# an incident's duration, as PostgreSQL's index on it is written (migration 0011)
INCIDENT_DURATION = "(resolved_at - opened_at)"

# SQLite has no 64-bit autoincrement under BIGINT; use INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


# Commit ids: hex, compared byte by byte. On PostgreSQL the "C" collation (migration 0008) makes
# every index probe and insert on them a memcmp instead of a locale comparison (strcoll).
Sha = String(64).with_variant(String(64, collation="C"), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; always hands back aware UTC (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime]
    # registered configuration (llm, slack, schedule, …); None: never registered (defaults)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        # a tenant's services by id (the bulk tables' foreign-key target until 0006)
        Index("ux_services_tenant_id", "tenant_id", "id", unique=True),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(128))
    production_pattern: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    # registered source configuration; None: a service only fed by events
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Commit(Base):
    __tablename__ = "commits"
    __table_args__ = (
        UniqueConstraint("tenant_id", "service_id", "sha"),
        # No foreign key (migration 0006): PostgreSQL checks one per row with a trigger, a
        # third of a bulk ingest's server work. Rows are written only by TenantRepository
        # for a service of its own tenant; deleting a tenant or service deletes them
        # explicitly (registry.delete_history). SQLite databases keep their old keys.
        # window-bounded reads (migration 0007): recorded counts, and "any reverts?"
        Index("ix_commits_service_committed", "tenant_id", "service_id", "committed_at"),
        Index(
            "ix_commits_reverts",
            "tenant_id",
            "service_id",
            postgresql_where=text(REVERT_COMMITS),
            sqlite_where=text(REVERT_COMMITS),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(BigId)
    service_id: Mapped[int] = mapped_column(BigId)
    sha: Mapped[str] = mapped_column(Sha)
    authored_at: Mapped[datetime | None]
    committed_at: Mapped[datetime]
    author: Mapped[str | None] = mapped_column(String(300))
    message: Mapped[str | None] = mapped_column(Text)
    parents: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Change(Base):
    __tablename__ = "changes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "service_id", "external_id"),
        Index("ix_changes_service_merged", "tenant_id", "service_id", "merged_at"),
        # for window-bounded reads (migration 0010): the changes merged as a shipped sha, the
        # changes opened in a window (its recorded counts), the rows the screen skips
        Index("ix_changes_merge_sha", "tenant_id", "service_id", "merge_sha"),
        Index("ix_changes_service_opened", "tenant_id", "service_id", "opened_at"),
        Index(
            "ix_changes_poisoned",
            "tenant_id",
            "service_id",
            postgresql_where=text(POISONED_CHANGES),
        ),
        Index(
            "ix_changes_reverts",
            "tenant_id",
            "service_id",
            postgresql_where=text(REVERT_CHANGES),
            sqlite_where=text(REVERT_CHANGES),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(300))
    opened_at: Mapped[datetime]
    first_commit_at: Mapped[datetime | None]
    first_review_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    merged_at: Mapped[datetime | None]
    merge_sha: Mapped[str | None] = mapped_column(Sha)
    commits: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reverts: Mapped[str | None] = mapped_column(String(200))  # id of the change it reverts


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "service_id", "external_id"),
        Index("ix_deployments_service_finished", "tenant_id", "service_id", "finished_at"),
        # a tenant's deployments by id (registry.delete_history; the links' key until 0006)
        Index("ux_deployments_tenant_id", "tenant_id", "id", unique=True),
        Index("ix_deployments_service_sha", "tenant_id", "service_id", "sha"),
        Index(
            "ix_deployments_service_status_env", "tenant_id", "service_id", "status", "environment"
        ),
        Index(
            "ix_deployments_unlisted",
            "tenant_id",
            "service_id",
            postgresql_where=text("commits_listed IS false"),
        ),
        Index(
            "ix_deployments_poisoned",
            "tenant_id",
            "service_id",
            postgresql_where=text(POISONED_DEPLOYMENTS),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(128))
    sha: Mapped[str] = mapped_column(Sha)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # True when the source listed the shipped commits; False: derive them from the commit graph.
    commits_listed: Mapped[bool] = mapped_column(Boolean, default=False)


class DeploymentCommit(Base):
    """A commit a deployment shipped, as listed by its source (event, tag range, compare API)."""

    __tablename__ = "deployment_commits"
    # No foreign key, like `Commit`: TenantRepository.delete_deployments and
    # registry.delete_history delete the links with their deployments.
    # By sha (migration 0007): the other deployments listing a commit, for bounded reads.
    __table_args__ = (Index("ix_deployment_commits_sha", "tenant_id", "sha"),)
    tenant_id: Mapped[int] = mapped_column(BigId)
    deployment_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    sha: Mapped[str] = mapped_column(Sha, primary_key=True)


class ChangeCommit(Base):
    """A commit a change lists (its `commits`, kept as they are): which changes list a
    shipped commit, by index, for window-bounded reads (migration 0010). Written with the
    change (`TenantRepository.upsert_changes`), deleted with it."""

    __tablename__ = "change_commits"
    __table_args__ = (Index("ix_change_commits_sha", "tenant_id", "sha"),)
    change_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("changes.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    sha: Mapped[str] = mapped_column(Sha, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigId)
    service_id: Mapped[int] = mapped_column(BigId)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("tenant_id", "service_id", "external_id"),
        # for window-bounded reads (migration 0010), as on changes
        Index("ix_incidents_service_opened", "tenant_id", "service_id", "opened_at"),
        # and (migration 0011) those linked to a loaded deployment, those still open, and
        # per service the longest incident (PostgreSQL: it bounds "open at a time" by index)
        Index("ix_incidents_deployment", "tenant_id", "service_id", "deployment_external_id"),
        Index(
            "ix_incidents_open",
            "tenant_id",
            "service_id",
            "opened_at",
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
        Index("ix_incidents_duration", "tenant_id", "service_id", text(INCIDENT_DURATION)).ddl_if(
            dialect="postgresql"
        ),
        Index(
            "ix_incidents_poisoned",
            "tenant_id",
            "service_id",
            postgresql_where=text(POISONED_INCIDENTS),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    severity: Mapped[str | None] = mapped_column(String(300))
    deployment_external_id: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(300))


class SyncCursor(Base):
    """How far a collector got, per (tenant, source, repo, kind); committed with the rows."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "repo", "kind"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    repo: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class RawPayload(Base):
    """A source's response kept as fetched, so a mapping fix re-derives rows without re-fetching."""

    __tablename__ = "raw_payloads"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "repo", "kind", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    repo: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    etag: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime]


class MetricSnapshot(Base):
    """Metric results for one (scope, window) as the JSON document of DESIGN.md's output keys."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (
        UniqueConstraint("tenant_id", "scope_kind", "scope_name", "window_start", "window_end"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_name: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime]


class MetricWrite(Base):
    """One write's reach: from `affected_from` on, metric results of `service_id` (None: every
    service of the tenant) may differ after data version `version` (`store/read_cache.py`)."""

    __tablename__ = "metric_writes"
    __table_args__ = (Index("ix_metric_writes_tenant_version", "tenant_id", "version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(BigInteger)
    service_id: Mapped[int | None] = mapped_column(BigInteger)
    affected_from: Mapped[datetime]


class Narrative(Base):
    """A narrative for one facts document, with the usage it cost; `cache_key` avoids repeats."""

    __tablename__ = "narratives"
    __table_args__ = (UniqueConstraint("tenant_id", "cache_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    cache_key: Mapped[str] = mapped_column(String(64))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_name: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(32))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime]


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the token is shown once at creation."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """A request already answered, so a retried POST with the same key is not applied twice."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """A webhook delivery id already processed; a replay is acknowledged and ignored."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "delivery_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime]


class JobRun(Base):
    """One run of a scheduled or manual job (sync, report, digest) and how it ended."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_tenant_started", "tenant_id", "started_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(64))
    run_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LeaderLease(Base):
    """Scheduler leadership on SQLite (PostgreSQL uses an advisory lock instead)."""

    __tablename__ = "leader_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class RegistryState(Base):
    """Small registry facts, e.g. the content hash of the last auto-applied insights.toml."""

    __tablename__ = "registry_state"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class TenantSecret(Base):
    """A tenant credential in one slot (`services.ledger.source.token_env`): ciphertext only."""

    __tablename__ = "tenant_secrets"
    __table_args__ = (UniqueConstraint("tenant_id", "slot"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    slot: Mapped[str] = mapped_column(String(300))
    ciphertext: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class AuditEntry(Base):
    """One registry change: who (actor), what (action, target, changed fields), when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_at", "tenant", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str | None] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TokenReservation(Base):
    """Model tokens held for a call in flight; deleted when the call settles its real usage."""

    __tablename__ = "token_reservations"
    __table_args__ = (Index("ix_token_reservations_tenant_month", "tenant_id", "month"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    tokens: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
