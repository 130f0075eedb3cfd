"""Time helpers: every timestamp inside the system is timezone-aware UTC, within one range.

The accepted range is `EARLIEST <= t <= LATEST` (1970-01-01 to 2100-01-01 UTC, after the offset
is applied). Delivery data older than Unix time or later than this century is a typo or an
attack, and the metrics engine (pandas, nanosecond timestamps) cannot hold far-off years: one
such row used to break every metric of its tenant. Every entry point checks times with
`bounded()` through the event model, so nothing outside the range is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
RANGE_TEXT = "1970-01-01T00:00:00Z..2100-01-01T00:00:00Z"


class TimeRangeError(ValueError):
    """A time outside `EARLIEST..LATEST` (or one whose offset leaves Python's range)."""


def utc(value: datetime) -> datetime:
    """Return ``value`` converted to UTC; naive datetimes are rejected, not guessed.

    An offset that pushes the time past year 1 or 9999 (``0001-01-01T00:30:00+01:00``) is a
    `TimeRangeError`, not an OverflowError.

    >>> utc(datetime.fromisoformat("2026-01-05T12:00:00+02:00")).isoformat()
    '2026-01-05T10:00:00+00:00'
    """
    if value.tzinfo is None:
        raise ValueError("needs a time zone (for example 2026-01-05T10:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise TimeRangeError(f"outside the accepted range {RANGE_TEXT}") from None


def bounded(value: datetime) -> datetime:
    """``value`` in UTC, or a `TimeRangeError` when it lies outside `EARLIEST..LATEST`.

    >>> bounded(datetime.fromisoformat("2100-01-01T01:00:00+02:00")).isoformat()
    '2099-12-31T23:00:00+00:00'
    """
    value = utc(value)
    if not EARLIEST <= value <= LATEST:
        raise TimeRangeError(f"outside the accepted range {RANGE_TEXT}")
    return value


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
