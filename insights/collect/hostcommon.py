"""What the GitHub and GitLab collectors share: client credentials and the rate-limit stop, the
updated-time cursor, incident references, and the refusal of invalid records.

The mappings (`github_map`, `gitlab_map`) build event-model records, so an API object goes
through the same boundary as an imported line (`insights.model`: time range, non-negative
durations, Unicode). A record the model refuses is skipped with a warning naming it
(`checked`, `refusal`), counted in the sync report, and the sync goes on.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import ValidationError

from insights.collect.events import AnyEvent
from insights.collect.ratelimit import RateLimited, WaitBudget
from insights.config import ServiceConfig, secret
from insights.model import describe_validation_error
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository
from insights.timeutil import now, parse_time

if TYPE_CHECKING:
    from insights.collect.sync import SyncContext

log = logging.getLogger(__name__)
T = TypeVar("T")

_DEPLOYMENT_LABEL = re.compile(r"^deploy(?:ment)?[:=/ ]\s*#?(\S+)$", re.IGNORECASE)
_DEPLOYMENT_LINE = re.compile(
    r"^\s*\**deploy(?:ment)?(?:[ _-]?id)?\**\s*[:=]\s*#?([A-Za-z0-9._-]+)",
    re.IGNORECASE | re.MULTILINE,
)
_SEVERITY_LABEL = re.compile(r"^(sev[ -]?\d|severity[:/ ].+|p[0-4])$", re.IGNORECASE)


@dataclass
class HostAccess:
    """What a Git-host client of one sync needs: the token (read from its env var, never
    logged), that variable's name for error messages, the rate-limit wait budget, and a
    counter of requests for the sync report."""

    token: str
    token_env: str
    budget: WaitBudget
    count: Callable[[], None]

    @classmethod
    def of(cls, ctx: SyncContext, service: ServiceConfig, host: str) -> HostAccess:
        config = service.source
        token = secret(config.token_env, f"service {service.name!r}: {host} token")
        budget = WaitBudget(config.max_rate_limit_wait_seconds, config.retry_backoff_seconds)

        def count() -> None:
            ctx.report.requests += 1

        return cls(token, str(config.token_env), budget, count)


class _Closable(Protocol):
    def close(self) -> None: ...


def run_until_rate_limited(
    ctx: SyncContext, api: _Closable, steps: Sequence[Callable[[], None]]
) -> None:
    """Run the sync steps in order; a rate limit beyond the wait budget ends the sync early
    (every finished batch and its cursor are already committed) and says so in the report."""
    try:
        for step in steps:
            step()
    except RateLimited as exc:
        ctx.report.stopped_early = str(exc)
        log.warning("%s", exc)
    finally:
        api.close()


# Host clocks and ours differ by seconds; an `updated_at` further ahead is not a list position.
FUTURE_SKEW = timedelta(hours=1)


class UpdatedCursor:
    """Incremental position in a list sorted by `updated_at`: the time and the ids done at it.

    Keeping the ids seen at the newest time means two items updated in the same second are
    neither skipped (a stop between them) nor refetched forever.
    """

    def __init__(self, value: dict[str, Any] | None) -> None:
        value = value or {}
        self.updated_at: str | None = value.get("updated_at")
        self.done: set[str] = set(value.get("done", []))

    def is_new(self, updated_at: str, key: str) -> bool:
        if self.updated_at is None:
            return True
        when, last = parse_time(updated_at), parse_time(self.updated_at)
        return when > last or (when == last and key not in self.done)

    def advance(self, updated_at: str, key: str) -> None:
        """Move past an item stored at `updated_at`, unless that time lies ahead of our clock
        by more than `FUTURE_SKEW`: a position there (a hostile or broken `updated_at`,
        2099) would make every later item look already read. Such an item stays ahead of
        the cursor, so it is listed, and stored again unchanged, on each sync."""
        when = parse_time(updated_at)
        if when > now() + FUTURE_SKEW:
            log.warning("updated_at %s of item %s is in the future; cursor kept", updated_at, key)
            return
        if self.updated_at is None or when > parse_time(self.updated_at):
            self.updated_at, self.done = updated_at, set()
        if when == parse_time(self.updated_at):
            self.done.add(key)

    def dump(self, etag: str | None = None) -> dict[str, Any]:
        return {"updated_at": self.updated_at, "done": sorted(self.done), "etag": etag}


def severity_label(labels: list[str]) -> str | None:
    """The first `sev1`, `sev-2`, `severity:high` or `P1`-style label, if any."""
    return next((label for label in labels if _SEVERITY_LABEL.match(label)), None)


def deployment_reference(labels: list[str], body: str) -> str | None:
    """The deployment an incident names: a `deployment:<id>` label, else a body line.

    >>> deployment_reference(["bug"], "Broke after deploy.\\nDeployment: 1234\\n")
    '1234'
    """
    for label in labels:
        match = _DEPLOYMENT_LABEL.match(label.strip())
        if match:
            return match.group(1)
    match = _DEPLOYMENT_LINE.search(body)
    return match.group(1) if match else None


class Batch:
    """Events of one cursor kind committed every `size` items together with the latest cursor.

    Leaving the `with` block commits what is complete, also when an exception (a rate limit)
    ends the loop early: every item fetched before the stop is kept, none is half-written.
    """

    def __init__(self, ctx: SyncContext, kind: str, size: int = 25) -> None:
        self.ctx = ctx
        self.kind = kind
        self.size = size
        self._events: list[AnyEvent] = []
        self._raw: list[tuple[str, dict[str, Any]]] = []
        self._removed: list[str] = []
        self._items = 0
        self._cursor: dict[str, Any] | None = None

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def add(
        self,
        events: Sequence[AnyEvent],
        cursor: dict[str, Any],
        raw: Sequence[tuple[str, dict[str, Any]]] = (),
        removed_incidents: Sequence[str] = (),
    ) -> None:
        """Queue one item's events (or the incidents it removes); the cursor must already
        count this item as done."""
        self._events.extend(events)
        self._raw.extend(raw)
        self._removed.extend(removed_incidents)
        self.set_cursor(cursor)
        self._items += 1
        if self._items >= self.size:
            self.flush()

    def set_cursor(self, cursor: dict[str, Any]) -> None:
        self._cursor = copy.deepcopy(cursor)

    def flush(self) -> None:
        if self._cursor is None and not self._events and not self._removed:
            return
        self.ctx.commit(
            self.kind,
            self._events,
            cursor=self._cursor,
            raw=self._raw,
            removed_incidents=self._removed,
        )
        self._events, self._raw, self._removed, self._items = [], [], [], 0
        self._cursor = None


def stored_payloads(
    ctx: SyncContext, kinds: Sequence[str]
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The raw payloads kept for this (tenant, source, repo), per kind, in id order."""
    with unit_of_work(ctx.engine) as session:
        repo = TenantRepository.open(session, ctx.tenant.name, create=True)
        stored = {kind: repo.raw_payloads(ctx.source, ctx.repo_key, kind) for kind in kinds}
        return {kind: [(p.external_id, p.payload) for p in rows] for kind, rows in stored.items()}


def refusal(exc: ValueError) -> str:
    """The one-line reason the event model (or a time the mapping reads) refused a record:
    `merged_at: before opened_at (…)`, `opened_at: outside the accepted range …`."""
    if isinstance(exc, ValidationError):
        # a model-level check names its field after a "." (the record type is not in the path)
        return describe_validation_error(exc).lstrip(".")
    return str(exc)


def checked(ctx: SyncContext, kind: str, what: str, build: Callable[[], T]) -> T | None:
    """`build()` (a mapping that constructs event records), or None when the event model
    refuses what it builds: the record is skipped with a warning naming `what` and counted
    under `kind` in the sync report. A `ValueError` is the model's (pydantic's
    ValidationError is one) or `parse_time`'s on a time the mapping compares."""
    try:
        return build()
    except ValueError as exc:
        ctx.skip(kind, what, refusal(exc))
        return None


def checked_one(ctx: SyncContext, kind: str, what: str, build: Callable[[], T]) -> list[T]:
    """`checked()` as a list of none or one record, for mappings that yield one per item
    (an incident per PagerDuty incident or Jira issue)."""
    record = checked(ctx, kind, what, build)
    return [] if record is None else [record]


def checked_commits(
    ctx: SyncContext,
    where: str,
    commits: Sequence[dict[str, Any]],
    sha_key: str,
    build: Callable[[list[dict[str, Any]]], list[AnyEvent]],
) -> list[AnyEvent]:
    """Map commits one by one, so one commit with an impossible date skips only itself."""
    events: list[AnyEvent] = []
    for commit in commits:
        sha = str(commit.get(sha_key))[:12]
        one = functools.partial(build, [commit])
        events += checked(ctx, "commit", f"{where} commit {sha}", one) or []
    return events
