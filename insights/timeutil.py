"""Time helpers: every timestamp inside the system is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(value: datetime) -> datetime:
    """Return ``value`` converted to UTC; naive datetimes are rejected, not guessed.

    >>> utc(datetime.fromisoformat("2026-01-05T12:00:00+02:00")).isoformat()
    '2026-01-05T10:00:00+00:00'
    """
    if value.tzinfo is None:
        raise ValueError("needs a time zone (for example 2026-01-05T10:00:00Z)")
    return value.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time with an offset (``Z`` allowed) into UTC."""
    return utc(datetime.fromisoformat(text.strip().replace("z", "Z")))


def iso(value: datetime | None) -> str | None:
    """Format a UTC time as ``2026-01-05T10:00:00Z``; ``None`` stays ``None``."""
    if value is None:
        return None
    return utc(value).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    """The current time in UTC. Only the shell (pipeline, CLI, API) calls this, never metrics."""
    return datetime.now(UTC)
