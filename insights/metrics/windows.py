"""Reporting windows: ISO weeks (the default), calendar months, quarters and years, or explicit
[from, to) ranges.

A window is a half-open UTC interval `[start, end)`. Its label says what kind it is, so the
previous window and a history of windows can be derived from the window alone:
`2026-W05` (ISO week), `2026-01` (month), `2026-Q1` (quarter), `2026` (year),
`2026-01-05..2026-01-19` (explicit range).

Calendar windows stay calendar windows: the window before `2022-Q1` is `2021-Q4`
(2021-10-01..2022-01-01), never "the 90 days before". A `--from/--to` range that is exactly a
calendar month, quarter or year is that calendar window (`2022-01-01..2022-04-01` is `2022-Q1`),
so its history is calendar-aligned too; any other range steps back by its own length.

A window the user names (`parse_window`, `--from/--to` through `parse_time_bound`) must lie in
the range every stored time lies in (`insights.timeutil`: 1970-01-01..2100-01-01 UTC); outside
it is a `UserError` naming the window (exit 2, HTTP 422), never an overflow. The previous
windows of a report's history may reach back before 1970: they simply hold no data.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from insights.errors import UserError
from insights.metrics.result import Window
from insights.timeutil import EARLIEST, LATEST, RANGE_TEXT, TimeRangeError, bounded, parse_time, utc

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_RANGE_SEP = ".."


def week(year: int, number: int) -> Window:
    """The ISO week `year-Wnumber`: Monday 00:00 UTC to the next Monday.

    >>> week(2026, 5).start.isoformat()
    '2026-01-26T00:00:00+00:00'
    """
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise UserError(f"window {year}-W{number:02d}: no such ISO week") from None
    start = datetime.combine(monday, time(), UTC)
    return Window(start=start, end=start + timedelta(days=7), label=f"{year}-W{number:02d}")


def month(year: int, number: int) -> Window:
    """The calendar month `year-number` in UTC."""
    if not 1 <= number <= 12 or year < 1:
        raise UserError(f"window {year}-{number:02d}: no such month")
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return Window(start=start, end=end, label=f"{year}-{number:02d}")


def quarter(year: int, number: int) -> Window:
    """The calendar quarter `year-Qnumber` in UTC (Q1 = January to March).

    >>> quarter(2022, 1).end.isoformat()
    '2022-04-01T00:00:00+00:00'
    """
    if not 1 <= number <= 4 or year < 1:
        raise UserError(f"window {year}-Q{number}: no such quarter")
    first = month(year, 3 * number - 2)
    end = month(year + number // 4, 3 * number % 12 + 1).start
    return Window(start=first.start, end=end, label=f"{year}-Q{number}")


def year(number: int) -> Window:
    """The calendar year `number` in UTC."""
    if not 1 <= number < 9999:
        raise UserError(f"window {number}: no such year")
    start = datetime(number, 1, 1, tzinfo=UTC)
    return Window(start=start, end=datetime(number + 1, 1, 1, tzinfo=UTC), label=str(number))


def calendar_window(start: datetime, end: datetime) -> Window | None:
    """The calendar month, quarter or year that is exactly [start, end), else None."""
    if start.time() != time() or end.time() != time() or start.day != 1 or end.day != 1:
        return None
    months = (end.year - start.year) * 12 + end.month - start.month
    if months == 1:
        return month(start.year, start.month)
    if months == 3 and start.month % 3 == 1:
        return quarter(start.year, start.month // 3 + 1)
    if months == 12 and start.month == 1:
        return year(start.year)
    return None


def aligned(start: datetime, end: datetime) -> Window:
    """The window [start, end): a calendar window when it is exactly one, else a range."""
    window = between(start, end)
    return calendar_window(window.start, window.end) or window


def _in_range(label: str, year: int) -> None:
    """Refuse a named week or month outside the accepted years before building it (a week of
    year 9999 ends past `datetime.max`)."""
    if not EARLIEST.year <= year < LATEST.year:
        raise UserError(f"window {label}: outside the accepted range {RANGE_TEXT}")


def _label_time(value: datetime) -> str:
    if value.time() == time():
        return value.date().isoformat()
    return value.isoformat().replace("+00:00", "Z")


def between(start: datetime, end: datetime) -> Window:
    """The explicit window [start, end); both must carry a time zone; end after start."""
    try:
        start, end = utc(start), utc(end)
    except ValueError as exc:
        raise UserError(f"window {start}..{end}: {exc}") from None
    if end <= start:
        raise UserError(
            f"window {_label_time(start)}..{_label_time(end)}: --to must be after --from"
        )
    return Window(start=start, end=end, label=f"{_label_time(start)}{_RANGE_SEP}{_label_time(end)}")


def parse_time_bound(text: str, what: str) -> datetime:
    """A `--from`/`--to` bound: a date (`2026-01-05`, midnight UTC) or an ISO time with offset."""
    value = text.strip()
    try:
        if len(value) == 10:
            return bounded(datetime.combine(date.fromisoformat(value), time(), UTC))
        return bounded(parse_time(value))
    except TimeRangeError as exc:
        raise UserError(f"{what} {text!r}: {exc}") from None
    except ValueError as exc:
        if "time zone" in str(exc):
            raise UserError(f"{what} {text!r}: {exc}") from None
        raise UserError(
            f"{what} {text!r}: not a date (2026-01-05) or ISO time (2026-01-05T10:00:00Z)"
        ) from None


def default_window(now: datetime) -> Window:
    """The last complete ISO week before `now` (what a weekly report covers)."""
    year, number, _ = (utc(now) - timedelta(days=7)).isocalendar()
    return week(year, number)


def current_week(now: datetime) -> Window:
    """The ISO week that contains `now`."""
    year, number, _ = utc(now).isocalendar()
    return week(year, number)


def parse_window(text: str | None, now: datetime) -> Window:
    """Parse a window label: `2026-W05`, `2026-01`, `2026-Q1`, `2026`, `2026-01-05..2026-01-19`,
    or the default.

    Empty/None means the last complete ISO week before `now`. A bad label is a `UserError`
    naming it.

    >>> parse_window("2026-01", datetime(2026, 3, 1, tzinfo=UTC)).end.isoformat()
    '2026-02-01T00:00:00+00:00'
    """
    if text is None or not text.strip():
        return default_window(now)
    value = text.strip()
    if m := _WEEK.match(value.upper()):
        _in_range(value, int(m[1]))
        return week(int(m[1]), int(m[2]))
    if m := _MONTH.match(value):
        _in_range(value, int(m[1]))
        return month(int(m[1]), int(m[2]))
    if m := _QUARTER.match(value.upper()):
        _in_range(value, int(m[1]))
        return quarter(int(m[1]), int(m[2]))
    if m := _YEAR.match(value):
        _in_range(value, int(m[1]))
        return year(int(m[1]))
    if _RANGE_SEP in value:
        left, right = value.split(_RANGE_SEP, 1)
        return aligned(parse_time_bound(left, "--from"), parse_time_bound(right, "--to"))
    raise UserError(
        f"window {text!r}: use an ISO week (2026-W05), a month (2026-01), a quarter (2026-Q1), "
        "a year (2026) or --from/--to dates"
    )


def previous(window: Window) -> Window:
    """The window just before `window`, of the same kind (week, month, quarter, year, or a
    range of the same length)."""
    if _WEEK.match(window.label):
        iso_year, number, _ = (window.start - timedelta(days=7)).isocalendar()
        return week(iso_year, number)
    if m := _MONTH.match(window.label):
        y, number = int(m[1]), int(m[2])
        return month(y - 1, 12) if number == 1 else month(y, number - 1)
    if m := _QUARTER.match(window.label):
        y, number = int(m[1]), int(m[2])
        return quarter(y - 1, 4) if number == 1 else quarter(y, number - 1)
    if m := _YEAR.match(window.label):
        return year(int(m[1]) - 1)
    return between(window.start - (window.end - window.start), window.start)


def history(window: Window, count: int) -> list[Window]:
    """`count` consecutive windows ending with `window`, oldest first."""
    if count < 1:
        raise UserError(f"history {count}: must be at least 1")
    windows = [window]
    while len(windows) < count:
        windows.append(previous(windows[-1]))
    return windows[::-1]
