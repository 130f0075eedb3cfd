"""Windows and scopes: labels, boundaries, previous windows, history, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from insights.errors import UserError
from insights.metrics.scope import parse_scope
from insights.metrics.windows import history, parse_window, previous

NOW = datetime(2026, 2, 4, 15, 0, tzinfo=UTC)  # a Wednesday of ISO week 2026-W06


def test_iso_week_runs_monday_to_monday_utc():
    w = parse_window("2026-W05", NOW)
    assert (w.start, w.end, w.label) == (
        datetime(2026, 1, 26, tzinfo=UTC),
        datetime(2026, 2, 2, tzinfo=UTC),
        "2026-W05",
    )


def test_default_window_is_the_last_complete_iso_week():
    assert parse_window(None, NOW).label == "2026-W05"
    assert parse_window("", datetime(2026, 2, 2, 0, 0, tzinfo=UTC)).label == "2026-W05"


def test_month_window_and_its_previous_crosses_the_year():
    w = parse_window("2026-01", NOW)
    assert (w.start, w.end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    assert previous(w).label == "2025-12"


def test_explicit_range_and_its_previous_has_the_same_length():
    w = parse_window("2026-01-05..2026-01-19", NOW)
    assert w.label == "2026-01-05..2026-01-19"
    p = previous(w)
    assert (p.start, p.end) == (datetime(2025, 12, 22, tzinfo=UTC), w.start)


def test_range_bounds_with_offsets_are_converted_to_utc():
    w = parse_window("2026-01-05T02:00:00+02:00..2026-01-06", NOW)
    assert w.start == datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def test_previous_week_crosses_a_53_week_year():
    assert previous(parse_window("2027-W01", NOW)).label == "2026-W53"


def test_history_is_oldest_first_and_ends_with_the_window():
    labels = [w.label for w in history(parse_window("2026-W02", NOW), 4)]
    assert labels == ["2025-W51", "2025-W52", "2026-W01", "2026-W02"]


@pytest.mark.parametrize(
    "text",
    [
        "2026-W54",
        "2025-W53",
        "2026-13",
        "2026-Q5",
        "last week",
        "2026-01-19..2026-01-05",
        "2026-01-05..soon",
    ],
)
def test_bad_window_is_a_one_line_user_error_naming_it(text):
    with pytest.raises(UserError) as err:
        parse_window(text, NOW)
    assert "\n" not in str(err.value)
    assert text.split("..")[-1] in str(err.value) or text in str(err.value)


def test_range_bound_without_time_zone_is_rejected():
    with pytest.raises(UserError, match="time zone"):
        parse_window("2026-01-05T10:00:00..2026-01-06", NOW)


def test_scopes_parse_service_team_and_tenant():
    assert parse_scope("service:checkout").model_dump() == {"kind": "service", "name": "checkout"}
    assert parse_scope("team:payments").kind == "team"
    assert parse_scope("tenant", tenant="acme").model_dump() == {"kind": "tenant", "name": "acme"}
    assert parse_scope(None).kind == "tenant"


@pytest.mark.parametrize("text", ["service:", "repo:x", "checkout", "team:bad name"])
def test_bad_scope_is_a_user_error_naming_it(text):
    with pytest.raises(UserError, match="scope"):
        parse_scope(text)


def test_quarter_window_and_its_history_are_calendar_quarters():
    w = parse_window("2022-Q1", NOW)
    assert (w.start, w.end) == (datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 4, 1, tzinfo=UTC))
    labels = [x.label for x in history(w, 5)]
    assert labels == ["2021-Q1", "2021-Q2", "2021-Q3", "2021-Q4", "2022-Q1"]
    q4 = previous(w)
    assert (q4.start, q4.end) == (datetime(2021, 10, 1, tzinfo=UTC), w.start)


def test_year_window_and_its_previous_are_calendar_years():
    w = parse_window("2025", NOW)
    assert (w.start, w.end) == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert [x.label for x in history(w, 3)] == ["2023", "2024", "2025"]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("2022-01-01..2022-04-01", "2022-Q1"),
        ("2022-10-01..2023-01-01", "2022-Q4"),
        ("2022-01-01..2023-01-01", "2022"),
        ("2022-02-01..2022-03-01", "2022-02"),
        ("2022-02-01..2022-05-01", "2022-02-01..2022-05-01"),
    ],
)
def test_a_range_that_is_exactly_a_calendar_window_becomes_one(text, label):
    assert parse_window(text, NOW).label == label


def test_a_range_quarter_steps_back_by_calendar_quarters_not_by_its_length():
    w = parse_window("2022-01-01..2022-04-01", NOW)
    p = previous(w)
    assert (p.label, p.start) == ("2021-Q4", datetime(2021, 10, 1, tzinfo=UTC))
