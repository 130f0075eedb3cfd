"""Screening of stored rows before the metrics engine: what the input boundary would refuse is
skipped, with a warning naming the row, instead of failing the whole tenant.

Every entry point validates times (1970-01-01..2100-01-01 UTC) and durations (resolved ≥ opened,
finished ≥ started, merged ≥ opened) before storing, but a database written by an older version
may still hold a row that is out of range (pandas cannot hold year 1600 or 9999 in nanoseconds:
every metric of the tenant was a 500) or negative (an incident resolved before it opened would
count as a 0-hour recovery). Such a row is left out of the metrics and logged once per
computation:

    skipped stored incident 'INC-9' of service 'checkout': opened_at 1600-01-01T00:00:00+00:00
    is outside 1970-01-01T00:00:00Z..2100-01-01T00:00:00Z

Pure: DataFrames in, DataFrames out (and log records).
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd

from insights.metrics.nanos import NAT, epoch_ns
from insights.timeutil import EARLIEST, LATEST, RANGE_TEXT, bounded, parse_time

log = logging.getLogger("insights.metrics")

WARNINGS_PER_KIND = 20  # a poisoned import of 10⁵ rows must not flood the log

# frame name -> (record kind, time columns, (later, earlier) pairs that must not be negative)
RULES: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "deployments": ("deployment", ("started_at", "finished_at"), (("finished_at", "started_at"),)),
    "commits": ("commit", ("committed_at", "authored_at"), ()),
    "changes": (
        "change",
        ("opened_at", "first_commit_at", "first_review_at", "approved_at", "merged_at"),
        (("merged_at", "opened_at"),),
    ),
    "incidents": ("incident", ("opened_at", "resolved_at"), (("resolved_at", "opened_at"),)),
}


def _outside_one(value: object) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return False
    if isinstance(value, float):
        return not np.isnan(value)  # a number is not a time
    try:
        bounded(value if isinstance(value, datetime) else parse_time(str(value)))
    except (ValueError, TypeError):
        return True
    return False


_EARLIEST_NS = pd.Timestamp(EARLIEST).value
_LATEST_NS = pd.Timestamp(LATEST).value


def _nanoseconds(values: pd.Series) -> np.ndarray | None:
    """Aware times held in nanoseconds as int64 (NaT: `NAT`); None for any other column."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns":
        return epoch_ns(values)
    return None


def outside_range(values: pd.Series) -> np.ndarray:
    """Which values are times outside `EARLIEST..LATEST` (missing values are not)."""
    ns = _nanoseconds(values)
    if ns is not None:  # integers: pandas' comparison of aware times costs far more
        return (ns != NAT) & ((ns < _EARLIEST_NS) | (ns > _LATEST_NS))
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return ((values < EARLIEST) | (values > LATEST)).to_numpy(dtype=bool)
    if pd.api.types.is_datetime64_dtype(values.dtype):  # naive: stored times are UTC
        aware = values.dt.tz_localize("UTC")
        return ((aware < EARLIEST) | (aware > LATEST)).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.notna().to_numpy(dtype=bool)  # numbers are not times
    # objects or text: the store could not convert the column, so check value by value
    return np.fromiter((_outside_one(v) for v in values), bool, len(values))


def _times(values: pd.Series) -> pd.Series:
    """In-range times (or missing) as one comparable UTC series."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values
    return pd.to_datetime(values, utc=True)


def _before(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    """Which `later` times lie before their `earlier` ones (a missing one: no)."""
    a, b = _nanoseconds(later), _nanoseconds(earlier)
    if a is not None and b is not None:
        return (a != NAT) & (b != NAT) & (a < b)
    return (_times(later) < _times(earlier)).to_numpy(dtype=bool)


def _name(frame: pd.DataFrame, row: int, kind: str) -> str:
    key = "sha" if kind == "commit" else "external_id"
    ident = frame[key].iloc[row] if key in frame.columns else "?"
    service = frame["service"].iloc[row] if "service" in frame.columns else "?"
    return f"{kind} {str(ident)!r} of service {str(service)!r}"


def screen(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """`frame` (one of `RULES`' frames) without the rows the input boundary would refuse."""
    kind, columns, pairs = RULES[name]
    present = [c for c in columns if c in frame.columns]
    if frame.empty or not present:
        return frame
    bad = np.zeros(len(frame), bool)
    reasons: dict[int, str] = {}
    for column in present:
        outside = outside_range(frame[column]) & ~bad
        for row in np.flatnonzero(outside)[:WARNINGS_PER_KIND]:
            reasons[int(row)] = f"{column} {frame[column].iloc[row]} is outside {RANGE_TEXT}"
        bad |= outside
    if pairs:
        kept = frame[~bad] if bad.any() else frame  # no copy in the usual, clean case
        for later, earlier in pairs:
            if later not in kept.columns or earlier not in kept.columns:
                continue
            negative = np.zeros(len(frame), bool)
            negative[~bad] = _before(kept[later], kept[earlier])
            for row in np.flatnonzero(negative & ~bad)[:WARNINGS_PER_KIND]:
                reasons[int(row)] = f"{later} is before {earlier} (a negative duration)"
            bad |= negative
    if not bad.any():
        return frame
    shown = sorted(reasons)[:WARNINGS_PER_KIND]
    for row in shown:
        log.warning("skipped stored %s: %s", _name(frame, row, kind), reasons[row])
    if int(bad.sum()) > len(shown):
        log.warning(
            "skipped %d more stored %s rows that fail validation", bad.sum() - len(shown), kind
        )
    return frame[~bad]
