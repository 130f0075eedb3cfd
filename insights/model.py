"""The canonical event format (DESIGN.md): one pydantic model per record type, UTC everywhere.

The same models validate `insights import`, `insights record`, `POST /api/v1/events`, the
single-event endpoints and both webhooks, so a malformed event gets the same one-line error
wherever it comes from. This is the input boundary; what passes it the store and the metrics
engine can hold:
- times carry an offset and lie in 1970-01-01..2100-01-01 UTC after it is applied
  (`insights.timeutil.bounded`);
- durations inside one record are never negative: an incident is resolved at or after it
  opened, a deployment finishes at or after it started, a change merges at or after it opened.
  Such a record is a data error at its source (a swapped field, a clock off by hours); storing
  it clipped to 0 would report an elite recovery time that never happened;
- text is valid Unicode (no lone surrogates, which no database encoding can store) without NUL;
- ids are at most 200 characters, integer ids at most 200 digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from insights.timeutil import TimeRangeError, bounded, parse_time

TITLE_MAX = 300
MESSAGE_MAX = 2000
_SHA = re.compile(r"^[0-9a-f]{4,64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
ID_INT_BITS = 664  # 2**664 has 200 decimal digits: an integer id longer than an id may be


def _to_utc(value: Any) -> datetime:
    try:
        if isinstance(value, datetime):
            return bounded(value)
        if not isinstance(value, str):
            raise PydanticCustomError("iso_time", "not an ISO-8601 time")
        return bounded(parse_time(value))
    except TimeRangeError as exc:
        raise PydanticCustomError("time_range", str(exc)) from None
    except ValueError as exc:
        if "time zone" in str(exc):
            raise PydanticCustomError("naive_time", str(exc)) from None
        raise PydanticCustomError("iso_time", "not an ISO-8601 time") from None


def _unicode(text: str) -> str:
    """`text` if it is valid Unicode; a lone surrogate (from a JSON `\\ud800` escape or a
    command-line argument that was not UTF-8) cannot be encoded for any database."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            "unicode",
            "not valid Unicode (lone surrogate at character {position})",
            {"position": exc.start + 1},
        ) from None
    return text


def _to_sha(value: Any) -> str:
    if not isinstance(value, str) or not _SHA.match(value.strip().lower()):
        raise PydanticCustomError("sha", "not a git sha (4 to 64 hex digits)")
    return value.strip().lower()


def _to_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value.strip()):
        raise PydanticCustomError(
            "name", "must be 1-128 letters, digits, '.', '_', '-' or '/', starting alphanumeric"
        )
    return value.strip()


def _to_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("id", "must be a string or an integer")
    if isinstance(value, int) and value.bit_length() > ID_INT_BITS:
        raise PydanticCustomError("id", "must be 1-200 characters")
    text = _unicode(str(value).strip())
    if not text or len(text) > 200:
        raise PydanticCustomError("id", "must be 1-200 characters")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        raise PydanticCustomError("id", "must not contain NUL characters")
    return text


def _cut(limit: int) -> Any:
    def cut(value: Any) -> Any:
        if isinstance(value, str):
            value = _unicode(value).replace("\x00", "")  # PostgreSQL text cannot hold NUL
            if len(value) > limit:
                return value[: limit - 1] + "…"
        return value

    return cut


UtcTime = Annotated[datetime, BeforeValidator(_to_utc)]
Sha = Annotated[str, BeforeValidator(_to_sha)]
Name = Annotated[str, BeforeValidator(_to_name)]
ExternalId = Annotated[str, BeforeValidator(_to_id)]
Title = Annotated[str, BeforeValidator(_cut(TITLE_MAX))]
Message = Annotated[str, BeforeValidator(_cut(MESSAGE_MAX))]


class DeploymentStatus(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    IN_PROGRESS = "in_progress"
    CANCELLED = "cancelled"


def _not_before(later: datetime | None, earlier: datetime | None, field: str, other: str) -> None:
    """A negative duration inside one record is rejected, naming the later field."""
    if later is not None and earlier is not None and later < earlier:
        raise PydanticCustomError(
            "negative_duration",
            "before {other} (a duration cannot be negative; check the source's clock or fields)",
            {"field": field, "other": other},
        )


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    service: Name


class CommitEvent(_Event):
    """A commit of a service's repository."""

    type: Literal["commit"] = "commit"
    sha: Sha
    committed_at: UtcTime
    authored_at: UtcTime | None = None
    parents: tuple[Sha, ...] = ()
    author: Title | None = None
    message: Message | None = None


# One commit in the compact form of a bulk insert (`CommitRows`), as git prints it:
# (sha, parents, author, authored_at, committed_at, message). The sha is ASCII hex, the
# parents are git's `%P` (the parent shas separated by one space; empty for a root commit),
# author and message UTF-8 or None, the times epoch seconds.
CommitRow = tuple[bytes, bytes, bytes | None, int, int, bytes | None]
_COMMIT_FIELDS = frozenset(CommitEvent.model_fields)
_set = object.__setattr__


@dataclass(frozen=True)
class CommitRows:
    """A batch of one service's commits as plain tuples of git's bytes, for a bulk ingest (a
    local clone's `git log`, 10⁵ commits): no event object per commit, no time objects, no
    text decoded only to be encoded again for the database.

    Each row must already be what `CommitEvent` validation would make of it: lower-case hex
    shas, author and message valid UTF-8 without NUL, cut to `TITLE_MAX` / `MESSAGE_MAX`
    characters, times within 1970..2100 UTC, each sha once. Whoever builds the rows checks that
    (`insights.collect.localgit._commit_row`); the store writes them as they are, and
    `events()` gives the same records as events (a test pins the equality).
    """

    service: str
    rows: list[CommitRow]

    def events(self) -> list[CommitEvent]:
        """The rows as CommitEvents, assembled the way pydantic's `model_construct` does (the
        rows are valid already; the validators cost more than reading the commits from git)."""
        events = []
        for sha, parents, author, authored, committed, message in self.rows:
            event = CommitEvent.__new__(CommitEvent)
            _set(
                event,
                "__dict__",
                {
                    "service": self.service,
                    "type": "commit",
                    "sha": sha.decode(),
                    "committed_at": datetime.fromtimestamp(committed, UTC),
                    "authored_at": datetime.fromtimestamp(authored, UTC),
                    "parents": tuple(parents.decode().split()),
                    "author": None if author is None else author.decode(),
                    "message": None if message is None else message.decode(),
                },
            )
            _set(event, "__pydantic_fields_set__", _COMMIT_FIELDS)
            _set(event, "__pydantic_extra__", None)
            _set(event, "__pydantic_private__", None)
            events.append(event)
        return events


class ChangeEvent(_Event):
    """A pull/merge request; its timestamps feed the lead-time breakdown."""

    type: Literal["change"] = "change"
    id: ExternalId
    title: Title | None = None
    opened_at: UtcTime
    first_commit_at: UtcTime | None = None
    first_review_at: UtcTime | None = None
    approved_at: UtcTime | None = None
    merged_at: UtcTime | None = None
    merge_sha: Sha | None = None
    commits: tuple[Sha, ...] = ()
    # the id of the change this one reverts (GitHub `revert-<n>-` branch, GitLab "!n")
    reverts: ExternalId | None = None

    @model_validator(mode="after")
    def _merged_after_opened(self) -> ChangeEvent:
        _not_before(self.merged_at, self.opened_at, "merged_at", "opened_at")
        return self


class DeploymentEvent(_Event):
    """A deployment of one sha to one environment.

    ``commits`` is ``None`` when the event does not list them: shipped commits are then derived
    from the commit graph. An explicit empty list means "this deployment shipped nothing".
    """

    type: Literal["deployment"] = "deployment"
    id: ExternalId
    environment: Name = "production"
    sha: Sha
    status: DeploymentStatus = DeploymentStatus.SUCCESS
    started_at: UtcTime | None = None
    finished_at: UtcTime | None = None
    commits: tuple[Sha, ...] | None = None

    @model_validator(mode="after")
    def _finished_when_successful(self) -> DeploymentEvent:
        if self.status is DeploymentStatus.SUCCESS and self.finished_at is None:
            raise PydanticCustomError("finished_required", "required for a successful deployment")
        _not_before(self.finished_at, self.started_at, "finished_at", "started_at")
        return self


class IncidentEvent(_Event):
    """A production incident; ``deployment_id`` links it to the deployment that caused it."""

    type: Literal["incident"] = "incident"
    id: ExternalId
    opened_at: UtcTime
    resolved_at: UtcTime | None = None
    severity: Title | None = None
    deployment_id: ExternalId | None = None
    title: Title | None = None

    @model_validator(mode="after")
    def _resolved_after_opened(self) -> IncidentEvent:
        _not_before(self.resolved_at, self.opened_at, "resolved_at", "opened_at")
        return self


Event = Annotated[
    CommitEvent | ChangeEvent | DeploymentEvent | IncidentEvent, Field(discriminator="type")
]
EVENT_TYPES = ("commit", "change", "deployment", "incident")
_EVENT = TypeAdapter(Event)


class EventError(ValueError):
    """One event that failed validation; ``str()`` is the one-line message for the user."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


def parse_event(data: Any) -> CommitEvent | ChangeEvent | DeploymentEvent | IncidentEvent:
    """Validate one decoded JSON object as an event, or raise ``EventError`` naming the field.

    >>> parse_event({"type": "incident", "service": "api", "id": 3,
    ...              "opened_at": "2026-01-05T10:00:00Z"}).id
    '3'
    """
    if not isinstance(data, dict):
        raise EventError("not a JSON object")
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise EventError(f"type: must be one of {', '.join(EVENT_TYPES)} (got {kind!r})")
    try:
        return _EVENT.validate_python(data)
    except ValidationError as exc:
        raise EventError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """First error of a pydantic ValidationError as ``kind.field: problem``."""
    err = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in err["loc"] if not str(part).startswith("function-"))
    if err["type"] == "finished_required":
        path += ".finished_at"
    elif err["type"] == "negative_duration":
        path += "." + str(err.get("ctx", {}).get("field", ""))
    problem = {
        "missing": "required",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "enum": "must be one of " + ", ".join(s.value for s in DeploymentStatus),
    }.get(err["type"], err["msg"])
    return f"{path}: {problem}" if path else problem
