"""Tenant-scoped data access: every read and write goes through a `TenantRepository`.

The repository is built for one tenant and adds `tenant_id` to every statement itself, so no
caller can forget the filter. Writes are idempotent upserts on natural keys and report what they
did (new / updated / unchanged), the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Integer,
    Select,
    SmallInteger,
    String,
    Table,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from insights.config import DEFAULT_PRODUCTION_PATTERN
from insights.errors import NotFound, UserError
from insights.metrics.revert_markers import reverted_sha
from insights.model import (
    ChangeEvent,
    CommitEvent,
    CommitRows,
    DeploymentEvent,
    IncidentEvent,
)
from insights.store import bulk_rows
from insights.store.models import (
    Base,
    Change,
    ChangeCommit,
    Commit,
    Deployment,
    DeploymentCommit,
    Incident,
    MetricSnapshot,
    RawPayload,
    Service,
    SyncCursor,
    Team,
    Tenant,
    UtcDateTime,
)
from insights.timeutil import now

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 500
COPY_MIN_ROWS = 200  # PostgreSQL: from this many rows, COPY through a stage table
SELECT_CHUNK = 2000  # keys per "which of these exist" query (well under both bind limits)


@dataclass
class UpsertCounts:
    """What an upsert did, per record kind."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self

    @property
    def total(self) -> int:
        return self.new + self.updated + self.unchanged


# a change as the delivery frames hold it (the whole history's read and the window-bounded one)
CHANGE_COLUMNS = (
    Change.service_id,
    Change.external_id,
    Change.title,
    Change.opened_at,
    Change.first_commit_at,
    Change.first_review_at,
    Change.approved_at,
    Change.merged_at,
    Change.merge_sha,
    Change.commits,
    Change.reverts,
)


@dataclass
class DeliveryFrames:
    """A tenant's delivery records as DataFrames, the input of `insights.metrics`.

    Times are tz-aware UTC pandas timestamps. `service` columns hold service names.
    """

    services: pd.DataFrame  # service, team, production_pattern
    deployments: pd.DataFrame  # deployment_id, service, external_id, environment, sha, status,
    # started_at, finished_at, commits_listed
    deployment_commits: pd.DataFrame  # deployment_id, sha
    commits: pd.DataFrame  # service, sha, committed_at, authored_at, parents, reverts (the sha
    # its message says it reverts; optional)
    changes: pd.DataFrame  # service, external_id, title, opened_at, first_commit_at,
    # first_review_at, approved_at, merged_at, merge_sha, commits, reverts (optional)
    incidents: pd.DataFrame  # service, external_id, opened_at, resolved_at, severity,
    # deployment_external_id, title
    extra: dict[str, Any] = field(default_factory=dict)


def _insert(session: Session, model: type[Base] | Table) -> Any:
    """A dialect INSERT (with ON CONFLICT support) for a model or its table.

    Executing an INSERT on the *table* with a list of rows is a plain DBAPI executemany;
    on the mapped class the ORM's bulk path adds per-row bookkeeping for nothing.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise UserError(f"unsupported database dialect {dialect!r}")


def _bind_processor(column_type: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """The column type's bind processor for `dialect`; for UTC times an equivalent one-step
    version (the stacked TypeDecorator calls cost more than the insert itself)."""
    if isinstance(column_type, UtcDateTime) and dialect.name == "sqlite":
        return _sqlite_utc
    if isinstance(column_type, UtcDateTime) and dialect.name == "postgresql":
        return _postgresql_utc
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(column_type, JSON) and process is not None:
        return _plain_list_json(process)
    return process


def _plain_list_json(serialize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`serialize` (json.dumps, or psycopg's Json wrapper) with a shortcut for lists of ASCII
    letters and digits such as parent shas: their JSON text, as json.dumps writes it (nothing
    in them needs escaping). PostgreSQL casts that text to the json column like the wrapper's.
    """

    def process(value: Any) -> Any:
        if type(value) is list:
            if not value:
                return "[]"
            try:
                joined = "".join(value)
            except TypeError:
                return serialize(value)
            if joined.isascii() and joined.isalnum():
                return '["' + '", "'.join(value) + '"]'
        return serialize(value)

    return process


def _sqlite_utc(value: datetime) -> str:
    """An aware time as SQLAlchemy stores it in SQLite: naive UTC, microseconds always shown."""
    if value.tzinfo is UTC:  # the usual case; %-formatting is 2× faster than isoformat here
        return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
        )
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _postgresql_utc(value: datetime) -> datetime:
    """An aware time as `UtcDateTime` binds it on PostgreSQL: the same instant in UTC."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


def _binary_types(
    table: Table, names: list[str], values: list[tuple[Any, ...]], dialect: Any
) -> list[str] | None:
    """PostgreSQL type names for a binary COPY of `values` into `table`'s columns `names`,
    or None when a column has none here (the text format is used then).

    Values are already bind-processed: times aware, JSON as its text (a json value's binary
    form is its text; a column holding anything but text falls back to the text format).
    """
    types = []
    for index, name in enumerate(names):
        column_type = table.c[name].type
        if isinstance(column_type, UtcDateTime):
            types.append("timestamptz")
            continue
        impl = column_type.dialect_impl(dialect)
        if isinstance(impl, JSON):
            if any(row[index] is not None and type(row[index]) is not str for row in values):
                return None
            types.append("text")
        elif isinstance(impl, Boolean):
            types.append("bool")
        elif isinstance(impl, BigInteger):
            types.append("int8")
        elif isinstance(impl, SmallInteger):
            types.append("int2")
        elif isinstance(impl, Integer):
            types.append("int4")
        elif isinstance(impl, String):  # Text included: the binary form of both is the text
            types.append("text")
        else:
            return None
    return types


def array_param(values: list[Any], item_type: Any) -> Any:
    """One PostgreSQL array parameter holding `values`."""
    return bindparam(None, values, type_=ARRAY(item_type))


def set_local(session: Session, **settings: str) -> None:
    """`SET LOCAL` each PostgreSQL setting (`plan_cache_mode="force_custom_plan"`) in one
    statement, skipping those already set in the current transaction or savepoint (a
    savepoint's rollback undoes what was set inside it, so each one sets its own). No-op on
    other dialects."""
    if session.get_bind().dialect.name != "postgresql":
        return
    current = session.get_nested_transaction() or session.get_transaction()
    done: dict[str, tuple[Any, str]] = session.info.setdefault("set_local", {})
    wanted = {k: v for k, v in settings.items() if done.get(k) != (current, v)}
    if not wanted:
        return
    session.execute(
        select(
            *(
                func.set_config(bindparam(f"name{i}", name), bindparam(f"value{i}", value), true())
                for i, (name, value) in enumerate(wanted.items())
            )
        )
    )
    for name, value in wanted.items():
        done[name] = (current, value)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def storable_name(name: str) -> bool:
    """Whether `name` can be a tenant name: 1-128 characters of valid Unicode, no NUL (a
    command-line argument that is not UTF-8 arrives with lone surrogates, which the database
    driver cannot encode)."""
    if not 0 < len(name) <= 128 or "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def get_tenant(session: Session, name: str) -> Tenant | None:
    if not storable_name(name):
        return None  # no such tenant can exist
    return session.scalar(select(Tenant).where(Tenant.name == name))


def ensure_tenant(session: Session, name: str, timezone: str = "UTC") -> tuple[Tenant, bool]:
    """The tenant named `name`, created if missing; returns (tenant, created)."""
    if not storable_name(name):
        raise UserError(
            f"tenant {name!r}: must be 1-128 characters of valid Unicode (UTF-8), without NUL"
        )
    tenant = get_tenant(session, name)
    if tenant is not None:
        return tenant, False
    stmt = _insert(session, Tenant).values(name=name, timezone=timezone, created_at=now())
    session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    tenant = get_tenant(session, name)
    assert tenant is not None
    return tenant, True


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.name)))


class TenantRepository:
    """All data access for one tenant."""

    def __init__(self, session: Session, tenant: Tenant) -> None:
        self.session = session
        self.tenant = tenant
        self.tenant_id = tenant.id

    @classmethod
    def open(cls, session: Session, tenant_name: str, create: bool = False) -> TenantRepository:
        """Repository for `tenant_name`; a missing tenant is created or is a NotFound error."""
        if create:
            tenant, _ = ensure_tenant(session, tenant_name)
        else:
            found = get_tenant(session, tenant_name)
            if found is None:
                raise NotFound(
                    f"tenant {tenant_name!r}: not found (create it with `insights tenant create`"
                    " or import events with --tenant)"
                )
            tenant = found
        return cls(session, tenant)

    # -- scoping -----------------------------------------------------------------------------

    def scoped(self, model: type[Base]) -> Select[Any]:
        """`SELECT model WHERE tenant_id = this tenant`; the base of every read."""
        return select(model).where(model.tenant_id == self.tenant_id)  # type: ignore[attr-defined]

    # -- teams and services ------------------------------------------------------------------

    def teams(self) -> list[Team]:
        return list(self.session.scalars(self.scoped(Team).order_by(Team.name)))

    def team(self, name: str) -> Team | None:
        return self.session.scalar(self.scoped(Team).where(Team.name == name))

    def ensure_team(self, name: str) -> Team:
        team = self.team(name)
        if team is None:
            team = Team(tenant_id=self.tenant_id, name=name)
            self.session.add(team)
            self.session.flush()
        return team

    def services(self) -> list[Service]:
        return list(self.session.scalars(self.scoped(Service).order_by(Service.name)))

    def service(self, name: str) -> Service | None:
        return self.session.scalar(self.scoped(Service).where(Service.name == name))

    def require_service(self, name: str) -> Service:
        found = self.service(name)
        if found is None:
            raise NotFound(f"service {name!r}: not found in tenant {self.tenant.name!r}")
        return found

    def ensure_service(
        self,
        name: str,
        team: str | None = None,
        production_pattern: str | None = None,
    ) -> tuple[Service, bool]:
        """The service, created (or its team/pattern updated from config); (service, created)."""
        team_id = self.ensure_team(team).id if team else None
        service = self.service(name)
        if service is None:
            service = Service(
                tenant_id=self.tenant_id,
                name=name,
                team_id=team_id,
                production_pattern=production_pattern or DEFAULT_PRODUCTION_PATTERN,
                created_at=now(),
            )
            self.session.add(service)
            self.session.flush()
            return service, True
        if team_id is not None:
            service.team_id = team_id
        if production_pattern is not None:
            service.production_pattern = production_pattern
        return service, False

    def service_ids(self, names: Iterable[str]) -> dict[str, int]:
        rows = self.session.execute(
            select(Service.name, Service.id).where(
                Service.tenant_id == self.tenant_id, Service.name.in_(list(set(names)))
            )
        )
        return {name: sid for name, sid in rows}

    # -- idempotent upserts ------------------------------------------------------------------

    def _upsert(
        self,
        model: type[Base],
        key: str,
        rows: list[dict[str, Any]],
    ) -> tuple[UpsertCounts, dict[tuple[int, str], dict[str, Any]]]:
        """Insert or update `rows` keyed by (tenant_id, service_id, key).

        Returns the counts and the rows that were written (new or changed), by natural key.
        Rows identical to what is stored are not written at all.
        """
        counts = UpsertCounts()
        latest: dict[tuple[int, str], dict[str, Any]] = {}
        for row in rows:  # the last of duplicate events in one batch wins
            latest[(row["service_id"], row[key])] = row
        # Rows are written (and so locked) in natural-key order: two concurrent batches that
        # share keys then wait on each other in the same order instead of deadlocking.
        latest = {natural: latest[natural] for natural in sorted(latest)}
        written: dict[tuple[int, str], dict[str, Any]] = {}
        if not latest:
            return counts, written
        columns = [c for c in next(iter(latest.values())) if c not in ("service_id", key)]
        table = model.__table__  # type: ignore[attr-defined]
        conflict = ["tenant_id", "service_id", key]
        if not self._stored(table, key, next(iter(latest))):
            latest = self._insert_new(table, key, conflict, latest, counts, written)
            if not latest:
                return counts, written
        stored = select(table.c.service_id, table.c[key], *[table.c[c] for c in columns]).where(
            table.c.tenant_id == self.tenant_id, *self._among(table, key)
        )
        to_write: list[dict[str, Any]] = []
        for chunk in _chunks(list(latest.items()), SELECT_CHUNK):
            service_ids = {sid for (sid, _), _ in chunk}
            keys = [k for (_, k), _ in chunk]
            existing = {
                (r[0], r[1]): r[2:]
                for r in self.session.execute(
                    stored, {"service_ids": list(service_ids), "keys": keys}
                )
            }
            for natural, row in chunk:
                old = existing.get(natural)
                if old is None:
                    counts.new += 1
                elif any(o != row[c] for o, c in zip(old, columns, strict=True)):
                    counts.updated += 1
                else:
                    counts.unchanged += 1
                    continue
                to_write.append(row)
                written[natural] = row
        if to_write:
            self._write_rows(table, conflict, columns, to_write)
        return counts, written

    def _stored(self, table: Table, key: str, natural: tuple[int, str]) -> bool:
        """Whether the row with this natural key is stored (one index probe)."""
        found = self.session.execute(
            select(table.c.id).where(
                table.c.tenant_id == self.tenant_id,
                table.c.service_id == natural[0],
                table.c[key] == natural[1],
            )
        ).first()
        return found is not None

    def _copy_fresh(
        self, table: Table, conflict: list[str], rows: list[dict[str, Any]]
    ) -> int | None:
        """PostgreSQL, big batches: COPY the rows straight into the table inside a savepoint;
        None (nothing written) when a key was already stored or this is not such a batch."""
        if self.session.get_bind().dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
            return None
        from psycopg.errors import UniqueViolation  # PostgreSQL only: not loaded on SQLite

        try:
            with self.session.begin_nested():
                return self._write_rows(table, conflict, [], rows, fresh=True)
        except UniqueViolation:
            return None

    def _insert_new(
        self,
        table: Table,
        key: str,
        conflict: list[str],
        latest: dict[tuple[int, str], dict[str, Any]],
        counts: UpsertCounts,
        written: dict[tuple[int, str], dict[str, Any]],
    ) -> dict[tuple[int, str], dict[str, Any]]:
        """Insert the rows whose key is not stored (`ON CONFLICT DO NOTHING`), count them as
        new, and return the others, which the caller compares with what is stored.

        A first ingest writes only new rows: one INSERT instead of looking every key up first.
        The rows this INSERT added are the ones with an id above the largest id before it;
        only when some key already existed are they read back to tell the two apart.
        """
        before = self.session.execute(select(func.max(table.c.id))).scalar() or 0
        rows = list(latest.values())
        inserted = self._copy_fresh(table, conflict, rows)
        if inserted is None:
            inserted = self._write_rows(table, conflict, [], rows)
        if inserted == len(latest):
            counts.new += inserted
            written.update(latest)
            return {}
        added: set[tuple[int, str]] = set()
        for chunk in _chunks(list(latest), SELECT_CHUNK):
            keys = [k for _, k in chunk]
            added.update(
                (r[0], r[1])
                for r in self.session.execute(
                    select(table.c.service_id, table.c[key]).where(
                        table.c.tenant_id == self.tenant_id,
                        table.c.id > before,
                        self._in(table.c[key], keys, String),
                    )
                )
            )
        rest = {}
        for natural, row in latest.items():
            if natural in added:
                counts.new += 1
                written[natural] = row
            else:
                rest[natural] = row
        return rest

    def _among(self, table: Table, key: str) -> list[Any]:
        """`service_id` among :service_ids and `key` among :keys, for this dialect.

        PostgreSQL gets `= ANY(array)`: one parameter, an index scan whatever the list length.
        A long `IN (p1, p2, …)` of separate parameters turns, once psycopg prepares the
        statement, into a generic plan that compares every row with every key (seconds per
        query on 10⁵ rows). SQLite keeps `IN`, which it probes through the index.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            # Plan with the actual keys: a generic plan for a growing table, cached while its
            # statistics are stale, filters every row against the array instead of probing
            # the index (minutes on 10⁵ rows). Lasts until the caller's transaction ends.
            set_local(self.session, plan_cache_mode="force_custom_plan")
            return [
                table.c.service_id == any_(bindparam("service_ids", type_=ARRAY(BigInteger))),
                table.c[key] == any_(bindparam("keys", type_=ARRAY(String))),
            ]
        return [
            table.c.service_id.in_(bindparam("service_ids", expanding=True)),
            table.c[key].in_(bindparam("keys", expanding=True)),
        ]

    def _in(self, column: Any, values: list[Any], item_type: Any) -> Any:
        """`column IN values`; on PostgreSQL `= ANY(array)`, planned per call (see `_among`)."""
        if self.session.get_bind().dialect.name == "postgresql":
            set_local(self.session, plan_cache_mode="force_custom_plan")
            return column == any_(array_param(values, item_type))
        return column.in_(values)

    def _write_rows(
        self,
        table: Table,
        conflict: list[str],
        update: list[str],
        rows: list[dict[str, Any]],
        *,
        fresh: bool = False,
    ) -> int:
        """`INSERT … ON CONFLICT (conflict) DO UPDATE SET update…` of this tenant's `rows`, as
        one DBAPI executemany; returns the number of rows inserted or updated.

        `fresh`: the caller knows no row conflicts (a conflict then raises); on PostgreSQL big
        batches are COPYed straight into the table, without a stage table.

        Values go through each column type's own bind processor for the dialect (exactly the
        conversion SQLAlchemy applies), column by column, without SQLAlchemy's per-row
        statement bookkeeping, which was most of the cost of importing 10⁵ rows.
        """
        connection = self.session.connection()
        dialect = connection.dialect
        quote = dialect.identifier_preparer.quote
        names = list(rows[0])
        columns: list[Any] = [[row[name] for row in rows] for name in names]
        for index, name in enumerate(names):
            process = _bind_processor(table.c[name].type, dialect)
            if process is not None:
                columns[index] = [None if v is None else process(v) for v in columns[index]]
        names.append("tenant_id")
        columns.append([self.tenant_id] * len(rows))
        action = (
            "UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
            if update
            else "NOTHING"
        )
        target = f"{quote(table.name)} ({', '.join(quote(n) for n in names)})"
        on_conflict = f"ON CONFLICT ({', '.join(quote(c) for c in conflict)}) DO {action}"
        values = list(zip(*columns, strict=True))
        if dialect.name == "postgresql" and len(values) >= COPY_MIN_ROWS:
            if fresh:
                return self._copy_into(table, names, values)
            return self._copy_upsert(table, names, values, on_conflict, conflict)
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        sql = f"INSERT INTO {target} VALUES ({', '.join(mark for _ in names)}) {on_conflict}"
        return connection.exec_driver_sql(sql, values).rowcount

    def _copy_into(self, table: Table, names: list[str], values: list[tuple[Any, ...]]) -> int:
        """PostgreSQL: COPY rows straight into `table` (any key conflict raises), in the binary
        format when every column has a binary form here (`_binary_types`): times and numbers
        then travel as integers instead of text, which halved the COPY's client time."""
        dialect = self.session.get_bind().dialect
        quote = dialect.identifier_preparer.quote
        column_list = ", ".join(quote(n) for n in names)
        types = _binary_types(table, names, values, dialect)
        options = " (FORMAT BINARY)" if types is not None else ""
        driver = self.session.connection().connection.driver_connection
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {quote(table.name)} ({column_list}) FROM STDIN{options}") as copy,
        ):
            if types is not None:
                copy.set_types(types)
            for row in values:
                copy.write_row(row)
        return len(values)

    def _copy_upsert(
        self,
        table: Table,
        names: list[str],
        values: list[tuple[Any, ...]],
        on_conflict: str,
        key: list[str],
    ) -> int:
        """PostgreSQL: COPY the rows into a temporary stage table, then one
        `INSERT … SELECT … ON CONFLICT` moves them in. Row-by-row INSERTs cost the server a
        statement each; this is one stream and one statement (≈10× faster on 10⁵ rows)."""
        quote = self.session.get_bind().dialect.identifier_preparer.quote
        stage = quote(f"stage_{table.name}")
        column_list = ", ".join(quote(n) for n in names)
        driver = self.session.connection().connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
                f"SELECT {column_list} FROM {quote(table.name)} WITH NO DATA"
            )
            with cursor.copy(f"COPY {stage} ({column_list}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
            # ORDER BY the key: rows are locked in one order whatever order they came in
            cursor.execute(
                f"INSERT INTO {quote(table.name)} ({column_list}) "
                f"SELECT {column_list} FROM {stage} "
                f"ORDER BY {', '.join(quote(c) for c in key)} {on_conflict}"
            )
            moved = cursor.rowcount
            cursor.execute(f"TRUNCATE {stage}")
        return moved

    def upsert_commits(self, service_id: int, events: Sequence[CommitEvent]) -> UpsertCounts:
        copied = self._copy_new_commits(service_id, events)
        if copied is not None:
            return copied
        rows = [
            {
                "service_id": service_id,
                "sha": e.sha,
                "authored_at": e.authored_at,
                "committed_at": e.committed_at,
                "author": e.author,
                "message": e.message,
                "parents": list(e.parents),
            }
            for e in events
        ]
        return self._upsert(Commit, "sha", rows)[0]

    def insert_commit_rows(
        self,
        service_id: int,
        batch: CommitRows,
        slice_size: int,
        before_write: Callable[[], None] = lambda: None,
    ) -> UpsertCounts:
        """`upsert_commits` of `batch.events()` one slice of `slice_size` after the other (as
        `store_events` writes them), faster when none of the batch is stored (a first ingest):
        the rows are encoded straight into what the database takes (`insights.store.bulk_rows`),
        each slice in sha order (the order `_upsert` writes and locks in), so they get the
        same ids as well.

        PostgreSQL: one binary COPY of every slice inside a savepoint, after one probe of each
        slice's first sha (each statement is a round trip, and under load each one waits for
        the server to be scheduled). SQLite: one executemany `ON CONFLICT DO NOTHING` per
        slice. When a probed sha is stored, a sha repeats, or the COPY meets a stored one,
        each slice is written on its own and, where needed, by the general upsert, which tells
        new, updated and unchanged apart as always. `before_write` is called once before any of
        those writes, not when the one COPY wrote the whole batch (none of it was stored).
        """
        rows = batch.rows
        slices = [
            sorted(rows[start : start + slice_size], key=itemgetter(0))
            for start in range(0, len(rows), slice_size)
        ]
        table = Commit.__table__
        if len(slices) > 1 and self.session.get_bind().dialect.name == "postgresql":
            from psycopg.errors import UniqueViolation  # PostgreSQL only: not loaded on SQLite

            # one branch per sha: each probes the unique index like `_stored` (`sha = ANY`
            # planned without statistics filters the service's whole key range instead)
            probe = union_all(
                *(
                    select(table.c.id).where(
                        table.c.tenant_id == self.tenant_id,
                        table.c.service_id == service_id,
                        table.c.sha == part[0][0].decode(),
                    )
                    for part in slices
                )
            )
            if self.session.execute(probe).first() is None:
                stream = bulk_rows.postgres_commits(
                    self.tenant_id, service_id, chain.from_iterable(slices)
                )
                try:
                    with self.session.begin_nested():
                        self._copy_binary(table, bulk_rows.COMMIT_COLUMNS, stream)
                    return UpsertCounts(new=len(rows))
                except UniqueViolation:
                    pass  # a repeated or stored sha: slice by slice
        before_write()
        counts = UpsertCounts()
        for part in slices:
            counts += self._insert_commit_slice(service_id, CommitRows(batch.service, part))
        return counts

    def _insert_commit_slice(self, service_id: int, part: CommitRows) -> UpsertCounts:
        """`insert_commit_rows` of one slice, its rows in sha order."""
        rows = part.rows
        if not rows:
            return UpsertCounts()
        table = Commit.__table__
        if len({row[0] for row in rows}) != len(rows) or self._stored(
            table, "sha", (service_id, rows[0][0].decode())
        ):
            return self.upsert_commits(service_id, part.events())
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            from psycopg.errors import UniqueViolation  # PostgreSQL only: not loaded on SQLite

            stream = bulk_rows.postgres_commits(self.tenant_id, service_id, rows)
            try:
                with self.session.begin_nested():
                    self._copy_binary(table, bulk_rows.COMMIT_COLUMNS, stream)
            except UniqueViolation:
                return self.upsert_commits(service_id, part.events())
            return UpsertCounts(new=len(rows))
        before = self.session.execute(select(func.max(table.c.id))).scalar() or 0
        names = ["service_id", "sha", "authored_at", "committed_at", "author", "message"]
        columns = ", ".join([*names, "parents", "tenant_id"])
        inserted = connection.exec_driver_sql(
            f"INSERT INTO commits ({columns}) VALUES ({', '.join('?' * 8)}) "
            "ON CONFLICT (tenant_id, service_id, sha) DO NOTHING",
            bulk_rows.sqlite_commits(self.tenant_id, service_id, rows),
        ).rowcount
        if inserted == len(rows):
            return UpsertCounts(new=inserted)
        added: set[str] = set()
        for chunk in _chunks([row[0].decode() for row in rows], SELECT_CHUNK):
            added.update(
                self.session.scalars(
                    select(table.c.sha).where(
                        table.c.tenant_id == self.tenant_id,
                        table.c.service_id == service_id,
                        table.c.id > before,
                        table.c.sha.in_(list(chunk)),
                    )
                )
            )
        skipped = CommitRows(part.service, [r for r in rows if r[0].decode() not in added])
        counts = self.upsert_commits(service_id, skipped.events())
        counts.new += len(added)
        return counts

    def _copy_binary(self, table: Table, names: Sequence[str], stream: bytes) -> None:
        """PostgreSQL: COPY a complete binary stream (`insights.store.bulk_rows`) into
        `table`'s columns `names`; a key conflict raises."""
        quote = self.session.get_bind().dialect.identifier_preparer.quote
        column_list = ", ".join(quote(n) for n in names)
        driver = self.session.connection().connection.driver_connection
        with (
            driver.cursor() as cursor,
            cursor.copy(
                f"COPY {quote(table.name)} ({column_list}) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.write(stream)

    def _copy_new_commits(
        self, service_id: int, events: Sequence[CommitEvent]
    ) -> UpsertCounts | None:
        """PostgreSQL, a big batch of commits none of which is stored (a first ingest): one
        COPY of rows made straight from the events, in sha order (the order `_upsert` locks
        in), inside a savepoint. None when this is not such a batch: a stored or repeated
        sha aborts the savepoint before anything is kept, and the general upsert takes over.

        The general path builds a dict per row, then columns, then tuples: for 10⁵ commits
        that was a third of a local-git ingest's Python time, for rows that need none of it.
        """
        connection = self.session.connection()
        if connection.dialect.name != "postgresql" or len(events) < COPY_MIN_ROWS:
            return None
        table = Commit.__table__
        ordered = sorted(events, key=attrgetter("sha"))
        if self._stored(table, "sha", (service_id, ordered[0].sha)):
            return None
        from psycopg.errors import UniqueViolation  # PostgreSQL only: not loaded on SQLite

        parents = _bind_processor(table.c.parents.type, connection.dialect)
        assert parents is not None
        tenant = self.tenant_id
        values = [
            (
                service_id,
                e.sha,
                e.authored_at,
                e.committed_at,
                e.author,
                e.message,
                parents(list(e.parents)),
                tenant,
            )
            for e in ordered
        ]
        names = ["service_id", "sha", "authored_at", "committed_at", "author", "message"]
        try:
            with self.session.begin_nested():
                self._copy_into(table, [*names, "parents", "tenant_id"], values)
        except UniqueViolation:
            return None
        return UpsertCounts(new=len(values))

    def upsert_changes(self, service_id: int, events: Sequence[ChangeEvent]) -> UpsertCounts:
        rows = [
            {
                "service_id": service_id,
                "external_id": e.id,
                "title": e.title,
                "opened_at": e.opened_at,
                "first_commit_at": e.first_commit_at,
                "first_review_at": e.first_review_at,
                "approved_at": e.approved_at,
                "merged_at": e.merged_at,
                "merge_sha": e.merge_sha,
                "commits": list(e.commits),
                "reverts": e.reverts,
            }
            for e in events
        ]
        counts, written = self._upsert(Change, "external_id", rows)
        if written:
            self._replace_change_commits(
                service_id, {key: row["commits"] for (_, key), row in written.items()}
            )
        return counts

    def _ids_by_external_id(
        self, model: type[Change] | type[Deployment], service_id: int, keys: Sequence[str]
    ) -> dict[str, int]:
        """The row ids of one service's `model` rows (changes, deployments) by external id."""
        return dict(
            self.session.execute(
                select(model.external_id, model.id).where(
                    model.tenant_id == self.tenant_id,
                    model.service_id == service_id,
                    self._in(model.external_id, list(keys), String),
                )
            ).all()
        )

    def _replace_change_commits(self, service_id: int, listed: dict[str, list[str]]) -> None:
        """Make the `change_commits` rows of each written change (by external id) its listed
        commits (`ChangeCommit`: an index of the JSON list)."""
        table = ChangeCommit.__table__
        for chunk in _chunks(sorted(listed)):  # sorted: one lock order (see `_upsert`)
            ids = self._ids_by_external_id(Change, service_id, chunk)
            self.session.execute(
                delete(table).where(
                    table.c.tenant_id == self.tenant_id,
                    self._in(table.c.change_id, list(ids.values()), BigInteger),
                )
            )
            links = [
                {
                    "change_id": ids[x],
                    "sha": sha,
                    "tenant_id": self.tenant_id,
                    "service_id": service_id,
                }
                for x in chunk
                for sha in sorted(set(listed[x]))
            ]
            if links:
                self.session.execute(insert(table), links)

    def upsert_deployments(
        self, service_id: int, events: Sequence[DeploymentEvent]
    ) -> UpsertCounts:
        """Upsert deployments; a deployment listing its commits gets exactly those links."""
        rows = [
            {
                "service_id": service_id,
                "external_id": e.id,
                "environment": e.environment,
                "sha": e.sha,
                "status": e.status.value,
                "started_at": e.started_at,
                "finished_at": e.finished_at,
                "commits_listed": e.commits is not None,
            }
            for e in events
        ]
        counts, written = self._upsert(Deployment, "external_id", rows)
        listed = {e.id: sorted(set(e.commits)) for e in events if e.commits is not None}
        if listed:
            relinked = self._replace_deployment_commits(service_id, listed)
            # a deployment whose only change is its commit list was counted as unchanged
            moved = len({x for x in relinked if (service_id, x) not in written})
            counts.unchanged -= moved
            counts.updated += moved
        return counts

    def _replace_deployment_commits(
        self, service_id: int, listed: dict[str, list[str]]
    ) -> set[str]:
        """Make each deployment's links equal to its listed commits; returns those changed."""
        changed: set[str] = set()
        for chunk in _chunks(sorted(listed)):  # sorted: one lock order (see `_upsert`)
            ids = self._ids_by_external_id(Deployment, service_id, chunk)
            current: dict[int, list[str]] = {i: [] for i in ids.values()}
            for dep_id, sha in self.session.execute(
                select(DeploymentCommit.deployment_id, DeploymentCommit.sha)
                .where(
                    DeploymentCommit.tenant_id == self.tenant_id,
                    self._in(DeploymentCommit.deployment_id, list(ids.values()), BigInteger),
                )
                .order_by(DeploymentCommit.sha)
            ):
                current[dep_id].append(sha)
            stale_ids = [x for x in chunk if current[ids[x]] != listed[x]]
            if not stale_ids:
                continue
            changed.update(stale_ids)
            stale = [ids[x] for x in stale_ids]
            if any(current[dep_id] for dep_id in stale):
                self.session.execute(
                    delete(DeploymentCommit).where(
                        DeploymentCommit.tenant_id == self.tenant_id,
                        self._in(DeploymentCommit.deployment_id, stale, BigInteger),
                    )
                )
            by_id = {ids[x]: listed[x] for x in chunk}
            # the deployments' links were just deleted and each list is duplicate-free
            table = DeploymentCommit.__table__
            if self.session.get_bind().dialect.name == "postgresql" and (
                sum(len(by_id[dep_id]) for dep_id in stale) >= COPY_MIN_ROWS
            ):
                stream = bulk_rows.postgres_links(
                    self.tenant_id, [(dep_id, by_id[dep_id]) for dep_id in stale]
                )
                self._copy_binary(table, bulk_rows.LINK_COLUMNS, stream)
                continue
            links = [
                {"deployment_id": dep_id, "sha": sha} for dep_id in stale for sha in by_id[dep_id]
            ]
            if links:
                self._write_rows(table, ["deployment_id", "sha"], [], links, fresh=True)
        return changed

    def upsert_incidents(self, service_id: int, events: Sequence[IncidentEvent]) -> UpsertCounts:
        rows = [
            {
                "service_id": service_id,
                "external_id": e.id,
                "opened_at": e.opened_at,
                "resolved_at": e.resolved_at,
                "severity": e.severity,
                "deployment_external_id": e.deployment_id,
                "title": e.title,
            }
            for e in events
        ]
        return self._upsert(Incident, "external_id", rows)[0]

    def delete_deployments(self, service_id: int, external_ids: Iterable[str]) -> int:
        """Remove deployments (and their shipped-commit links) of one service; returns how many.

        Used when the source no longer has them (a tag deleted or no longer selected). Nothing
        else stores a deployment's consequences: rollbacks and failure attribution are derived
        from the rows at metric time, so they follow on the next computation.
        """
        wanted = sorted(set(external_ids))
        reached = self._reach(service_id, deployments=wanted)
        removed = 0
        for chunk in _chunks(wanted):
            ids = list(
                self.session.scalars(
                    select(Deployment.id).where(
                        Deployment.tenant_id == self.tenant_id,
                        Deployment.service_id == service_id,
                        self._in(Deployment.external_id, list(chunk), String),
                    )
                )
            )
            if not ids:
                continue
            self.session.execute(
                delete(DeploymentCommit).where(
                    DeploymentCommit.tenant_id == self.tenant_id,
                    self._in(DeploymentCommit.deployment_id, ids, BigInteger),
                )
            )
            self.session.execute(
                delete(Deployment).where(
                    Deployment.tenant_id == self.tenant_id,
                    self._in(Deployment.id, ids, BigInteger),
                )
            )
            removed += len(ids)
        if removed:
            self._data_changed(service_id, reached)
        return removed

    def _reach(
        self, service_id: int, *, deployments: Sequence[str] = (), incidents: Sequence[str] = ()
    ) -> datetime | None:
        """How far back removing these records reaches (`store/write_reach.py`)."""
        from insights.store import write_reach

        keys = write_reach.Keys(deployments=list(deployments), incidents=list(incidents))
        return write_reach.reach(self, service_id, keys)

    def _data_changed(self, service_id: int, reached: datetime | None) -> None:
        """The stored metric reads of this service from `reached` on are stale
        (insights/store/read_cache.py)."""
        from insights.store import read_cache

        read_cache.bump(
            self.session, self.tenant_id, {service_id: reached} if reached is not None else {}
        )

    def deployment_ids(self, service_id: int) -> set[str]:
        """External ids of every stored deployment of one service."""
        return set(
            self.session.scalars(
                select(Deployment.external_id).where(
                    Deployment.tenant_id == self.tenant_id, Deployment.service_id == service_id
                )
            )
        )

    def delete_incidents(self, service_id: int, external_ids: Iterable[str]) -> int:
        """Remove incidents of one service (an issue that lost its label, was deleted or moved)."""
        wanted = sorted(set(external_ids))
        reached = self._reach(service_id, incidents=wanted)
        removed = 0
        for chunk in _chunks(wanted):
            result = self.session.execute(
                delete(Incident).where(
                    Incident.tenant_id == self.tenant_id,
                    Incident.service_id == service_id,
                    self._in(Incident.external_id, list(chunk), String),
                )
            )
            removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        if removed:
            self._data_changed(service_id, reached)
        return removed

    def clear_service_records(self, service_id: int) -> dict[str, int]:
        """Delete a service's changes, deployments (with links) and incidents, keeping its
        commits, raw payloads and the service itself: what `insights rebuild` re-derives."""
        removed = {
            "deployments": self.delete_deployments(service_id, self.deployment_ids(service_id))
        }
        for name, model in (("changes", Change), ("incidents", Incident)):
            result = self.session.execute(
                delete(model).where(
                    model.tenant_id == self.tenant_id,  # type: ignore[attr-defined]
                    model.service_id == service_id,  # type: ignore[attr-defined]
                )
            )
            removed[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if any(removed.values()):
            from insights.store.read_cache import BEGINNING

            self._data_changed(service_id, BEGINNING)
        return removed

    def delete_cursors(self, source: str, repo: str) -> None:
        """Forget every cursor of one (source, repo): the next sync reads it all again."""
        self.session.execute(
            delete(SyncCursor).where(
                SyncCursor.tenant_id == self.tenant_id,
                SyncCursor.source == source,
                SyncCursor.repo == repo,
            )
        )

    def delete_raw(self, source: str, repo: str, kind: str, external_ids: Iterable[str]) -> None:
        """Drop kept payloads the source no longer has, so a rebuild cannot bring them back."""
        for chunk in _chunks(sorted(set(external_ids))):
            self.session.execute(
                delete(RawPayload).where(
                    RawPayload.tenant_id == self.tenant_id,
                    RawPayload.source == source,
                    RawPayload.repo == repo,
                    RawPayload.kind == kind,
                    self._in(RawPayload.external_id, list(chunk), String),
                )
            )

    def raw_payloads_like(self, source: str, repo: str, kind_prefix: str) -> list[RawPayload]:
        """Kept payloads whose kind starts with `kind_prefix`, in the order they were kept."""
        return list(
            self.session.scalars(
                self.scoped(RawPayload)
                .where(
                    RawPayload.source == source,
                    RawPayload.repo == repo,
                    RawPayload.kind.startswith(kind_prefix, autoescape=True),
                )
                .order_by(RawPayload.fetched_at, RawPayload.id)
            )
        )

    # -- sync state --------------------------------------------------------------------------

    def get_cursor(self, source: str, repo: str, kind: str) -> dict[str, Any] | None:
        row = self.session.scalar(
            self.scoped(SyncCursor).where(
                SyncCursor.source == source, SyncCursor.repo == repo, SyncCursor.kind == kind
            )
        )
        return None if row is None else dict(row.value)

    def set_cursor(self, source: str, repo: str, kind: str, value: dict[str, Any]) -> None:
        stmt = _insert(self.session, SyncCursor).values(
            tenant_id=self.tenant_id,
            source=source,
            repo=repo,
            kind=kind,
            value=value,
            updated_at=now(),
        )
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "source", "repo", "kind"],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
        )

    def save_raw(
        self,
        source: str,
        repo: str,
        kind: str,
        payloads: Sequence[tuple[str, dict[str, Any]]],
        etag: str | None = None,
    ) -> None:
        """Keep source responses as fetched, keyed by (source, repo, kind, external id)."""
        if not payloads:
            return
        fetched = now()
        rows = [
            {
                "tenant_id": self.tenant_id,
                "source": source,
                "repo": repo,
                "kind": kind,
                "external_id": external_id,
                "payload": payload,
                "etag": etag,
                "fetched_at": fetched,
            }
            for external_id, payload in payloads
        ]
        stmt = _insert(self.session, RawPayload.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "source", "repo", "kind", "external_id"],
            set_={
                "payload": stmt.excluded.payload,
                "etag": stmt.excluded.etag,
                "fetched_at": stmt.excluded.fetched_at,
            },
        )
        for chunk in _chunks(rows):
            self.session.execute(stmt, list(chunk))

    def raw_payloads(self, source: str, repo: str, kind: str) -> list[RawPayload]:
        return list(
            self.session.scalars(
                self.scoped(RawPayload)
                .where(
                    RawPayload.source == source, RawPayload.repo == repo, RawPayload.kind == kind
                )
                .order_by(RawPayload.external_id)
            )
        )

    # -- metric snapshots --------------------------------------------------------------------

    def save_snapshot(
        self,
        scope_kind: str,
        scope_name: str,
        window_start: datetime,
        window_end: datetime,
        data: dict[str, Any],
    ) -> None:
        stmt = _insert(self.session, MetricSnapshot).values(
            tenant_id=self.tenant_id,
            scope_kind=scope_kind,
            scope_name=scope_name,
            window_start=window_start,
            window_end=window_end,
            data=data,
            computed_at=now(),
        )
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    "tenant_id",
                    "scope_kind",
                    "scope_name",
                    "window_start",
                    "window_end",
                ],
                set_={"data": stmt.excluded.data, "computed_at": stmt.excluded.computed_at},
            )
        )

    def snapshot(
        self, scope_kind: str, scope_name: str, window_start: datetime, window_end: datetime
    ) -> MetricSnapshot | None:
        return self.session.scalar(
            self.scoped(MetricSnapshot).where(
                MetricSnapshot.scope_kind == scope_kind,
                MetricSnapshot.scope_name == scope_name,
                MetricSnapshot.window_start == window_start,
                MetricSnapshot.window_end == window_end,
            )
        )

    # -- reads for metrics -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows per record kind for this tenant (for summaries and tests)."""
        from sqlalchemy import func

        out = {}
        for name, model in (
            ("commits", Commit),
            ("changes", Change),
            ("deployments", Deployment),
            ("deployment_commits", DeploymentCommit),
            ("incidents", Incident),
        ):
            out[name] = self.session.scalar(
                select(func.count()).select_from(model).where(model.tenant_id == self.tenant_id)
            )
        return out

    def _frame(self, stmt: Select[Any], time_columns: Sequence[str] = ()) -> pd.DataFrame:
        import pandas as pd  # only metric reads need it: `insights record` stays fast
        from pandas.errors import OutOfBoundsDatetime

        result = self.session.execute(stmt)
        frame = pd.DataFrame(result.all(), columns=list(result.keys()))
        for column in time_columns:
            # a row stored before the time range was enforced can be beyond what pandas
            # converts; the metrics engine screens such rows out (insights.metrics.screen),
            # so the column then keeps its values as they are
            with suppress(OutOfBoundsDatetime, OverflowError):
                frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def delivery_frames(self, services: Sequence[str] | None = None) -> DeliveryFrames:
        """All delivery records of the tenant (or of `services`) as DataFrames for metrics."""
        import pandas as pd

        svc = self.scoped(Service)
        if services is not None:
            svc = svc.where(Service.name.in_(list(services)))
        service_rows = list(self.session.scalars(svc))
        names = {s.id: s.name for s in service_rows}
        team_names = {t.id: t.name for t in self.teams()}
        ids = list(names)
        service_frame = pd.DataFrame(
            {
                "service": [s.name for s in service_rows],
                "team": [team_names.get(s.team_id) if s.team_id else None for s in service_rows],
                "production_pattern": [s.production_pattern for s in service_rows],
            }
        )

        def named(frame: pd.DataFrame) -> pd.DataFrame:
            frame.insert(0, "service", frame.pop("service_id").map(names))
            return frame

        t = self.tenant_id
        deployments = named(
            self._frame(
                select(
                    Deployment.id.label("deployment_id"),
                    Deployment.service_id,
                    Deployment.external_id,
                    Deployment.environment,
                    Deployment.sha,
                    Deployment.status,
                    Deployment.started_at,
                    Deployment.finished_at,
                    Deployment.commits_listed,
                ).where(Deployment.tenant_id == t, Deployment.service_id.in_(ids)),
                ("started_at", "finished_at"),
            )
        )
        links = self._frame(
            select(DeploymentCommit.deployment_id, DeploymentCommit.sha)
            .join(Deployment, Deployment.id == DeploymentCommit.deployment_id)
            .where(DeploymentCommit.tenant_id == t, Deployment.service_id.in_(ids))
        )
        commits = named(
            self._frame(
                select(
                    Commit.service_id,
                    Commit.sha,
                    Commit.committed_at,
                    Commit.authored_at,
                    Commit.parents,
                ).where(Commit.tenant_id == t, Commit.service_id.in_(ids)),
                ("committed_at", "authored_at"),
            )
        )
        # only revert commits' messages are read: the rest would cost memory for nothing
        reverting = {
            (names[service_id], sha): reverted_sha(message)
            for service_id, sha, message in self.session.execute(
                select(Commit.service_id, Commit.sha, Commit.message).where(
                    Commit.tenant_id == t,
                    Commit.service_id.in_(ids),
                    Commit.message.like("%This reverts commit %"),
                )
            )
        }
        commits["reverts"] = pd.Series(
            [reverting.get(key) for key in zip(commits["service"], commits["sha"], strict=True)],
            index=commits.index,
            dtype=object,
        )
        changes = named(
            self._frame(
                select(*CHANGE_COLUMNS).where(Change.tenant_id == t, Change.service_id.in_(ids)),
                ("opened_at", "first_commit_at", "first_review_at", "approved_at", "merged_at"),
            )
        )
        incidents = named(
            self._frame(
                select(
                    Incident.service_id,
                    Incident.external_id,
                    Incident.opened_at,
                    Incident.resolved_at,
                    Incident.severity,
                    Incident.deployment_external_id,
                    Incident.title,
                ).where(Incident.tenant_id == t, Incident.service_id.in_(ids)),
                ("opened_at", "resolved_at"),
            )
        )
        return DeliveryFrames(service_frame, deployments, links, commits, changes, incidents)
