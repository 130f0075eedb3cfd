"""The canonical event format (DESIGN.md): one pydantic model per record type, UTC everywhere.

The same models validate `insights import`, `insights record` and `POST /api/v1/events`, so a
malformed event gets the same one-line error wherever it comes from.
"""

from __future__ import annotations

import re
from datetime import datetime
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

from insights.timeutil import parse_time, utc

TITLE_MAX = 300
MESSAGE_MAX = 2000
_SHA = re.compile(r"^[0-9a-f]{4,64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


def _to_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        try:
            return utc(value)
        except ValueError as exc:
            raise PydanticCustomError("naive_time", str(exc)) from None
    if not isinstance(value, str):
        raise PydanticCustomError("iso_time", "not an ISO-8601 time")
    try:
        return parse_time(value)
    except ValueError as exc:
        if "time zone" in str(exc):
            raise PydanticCustomError("naive_time", str(exc)) from None
        raise PydanticCustomError("iso_time", "not an ISO-8601 time") from None


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
    text = str(value).strip()
    if not text or len(text) > 200:
        raise PydanticCustomError("id", "must be 1-200 characters")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        raise PydanticCustomError("id", "must not contain NUL characters")
    return text


def _cut(limit: int) -> Any:
    def cut(value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace("\x00", "")  # PostgreSQL text cannot hold NUL
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
    problem = {
        "missing": "required",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "enum": "must be one of " + ", ".join(s.value for s in DeploymentStatus),
    }.get(err["type"], err["msg"])
    return f"{path}: {problem}" if path else problem
