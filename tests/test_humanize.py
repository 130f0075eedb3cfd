"""Humane units: durations in hours, days or weeks and cadences that never read "0 per day"."""

from __future__ import annotations

import doctest

import pytest

from insights import humanize
from insights.humanize import cadence, duration, duration_parts, duration_renderings


def test_module_examples_hold() -> None:
    assert doctest.testmod(humanize).failed == 0


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (0.5, "0.5 hours"),
        (1, "1 hour"),
        (71.9, "71.9 hours"),
        (72, "3 days"),
        (84, "3.5 days"),
        (24 * 13.9, "13.9 days"),
        (24 * 14, "2 weeks"),
        (4127.9, "24.6 weeks"),
    ],
)
def test_durations_move_from_hours_to_days_to_weeks(hours: float, text: str) -> None:
    assert duration(hours) == text


def test_no_hour_figure_reaches_72_hours() -> None:
    for tenths in range(0, 20000, 7):
        parts = duration_parts(tenths / 10)
        if parts.unit.startswith("hour"):
            assert parts.amount < 72


def test_short_durations_for_tables() -> None:
    assert duration(5.25, short=True) == "5.3 h"
    assert duration(100, short=True) == "4.2 d"
    assert duration(1000, short=True) == "6 wk"
    assert duration(None, short=True, none="—") == "—"


def test_every_shown_duration_number_is_among_its_renderings() -> None:
    for hours in (0.04, 7.25, 71.96, 84.0, 335.9, 4127.93):
        shown = duration_parts(hours).value
        assert shown in {humanize.number(d) for d in duration_renderings(hours)}


@pytest.mark.parametrize(
    ("count", "days", "text"),
    [
        (8, 365, "8 per year"),
        (3, 7, "3 per week"),
        (1, 7, "1 per week"),
        (40, 7, "5.7 per day"),
        (5, 91, "1.7 per month"),
        (0, 7, "0 per week"),
        (0, 365, "0 per year"),
        (0, 92, "0 per month"),
    ],
)
def test_cadence_picks_the_unit_where_the_rate_reaches_one(
    count: int, days: float, text: str
) -> None:
    assert cadence(count, days).text == text
