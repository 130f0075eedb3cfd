"""Humane units for every report, digest and narrative: durations and cadences people can read.

Metrics are computed in hours and counts per window (DESIGN.md "Metric output"); people read
"3.5 days", not "84 h", and "8 per year", not "0 per day". One module decides, so the HTML
report, the Slack digest, the Markdown/table text and the built-in narrator agree, and the facts
document can list exactly the renderings the narrator will quote.

Rules:
- Durations: under 72 hours in hours, under 14 days in days, beyond that in weeks; one decimal,
  rounded half up, with a trailing `.0` dropped (`duration(4127.9)` → "24.6 weeks").
  The unit follows the value rounded in hours, so 71.96 h reads "72 hours", never "3 days" for
  a figure the facts give as 72 hours.
- Cadences: the smallest of per day / week / month / year at which the rate is at least one,
  so 8 deployments in a year read "8 per year" and 3 in a week "3 per week" (a month is
  365.25 / 12 days). A count of zero is "0 per <the window's own unit>".

>>> duration(4127.9), duration(50), duration(1)
('24.6 weeks', '50 hours', '1 hour')
>>> cadence(8, 365).text
'8 per year'
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

DurationUnit = Literal["hour", "day", "week"]
CadenceUnit = Literal["day", "week", "month", "year"]

HOURS_LIMIT = 72.0  # below this a duration is shown in hours
DAYS_LIMIT = 14.0  # below this many days, in days; beyond, in weeks
HOURS_PER: dict[DurationUnit, float] = {"hour": 1.0, "day": 24.0, "week": 168.0}
DAYS_PER: dict[CadenceUnit, float] = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}
_SHORT: dict[str, str] = {"hour": "h", "day": "d", "week": "wk"}


def round_half_up(value: float, decimals: int = 1) -> Decimal:
    """`value` rounded half away from zero (2.45 → 2.5), as people round.

    >>> str(round_half_up(2.45)), str(round_half_up(20.5, 0))
    ('2.5', '21')
    """
    quantum = Decimal(1).scaleb(-decimals)
    with localcontext(prec=400):
        return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)


def number(value: float | int | Decimal) -> str:
    """A rounded value as text: no exponent, no trailing zeros (`20.50` → `20.5`, `3.0` → `3`)."""
    text = f"{Decimal(str(value)).normalize():f}"
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Quantity:
    """A value in a chosen unit, already rounded for display: `value` is its text form."""

    value: str
    unit: str
    amount: float

    @property
    def text(self) -> str:
        return f"{self.value} {self.unit}"


def duration_unit(hours: float) -> DurationUnit:
    """The unit a duration of `hours` is shown in (see the module rules)."""
    shown = float(round_half_up(abs(hours)))
    if shown < HOURS_LIMIT:
        return "hour"
    if shown < DAYS_LIMIT * 24:
        return "day"
    return "week"


def duration_parts(hours: float, unit: DurationUnit | None = None) -> Quantity:
    """A duration as (number, plural-aware unit word): `duration_parts(84)` → 3.5 days."""
    unit = unit or duration_unit(hours)
    amount = float(round_half_up(abs(hours) / HOURS_PER[unit]))
    word = unit if amount == 1 else f"{unit}s"
    return Quantity(value=number(amount), unit=word, amount=amount)


def duration(hours: float | None, short: bool = False, none: str = "no data") -> str:
    """A duration in hours as people read it: "5.2 hours", "3.5 days", "6 weeks".

    `short=True` gives "5.2 h", "3.5 d", "6 wk" for tables and charts.

    >>> duration(84), duration(84, short=True), duration(None)
    ('3.5 days', '3.5 d', 'no data')
    """
    if hours is None:
        return none
    q = duration_parts(hours)
    if short:
        return f"{q.value} {_SHORT[q.unit.removesuffix('s')]}"
    return q.text


def duration_renderings(hours: float, decimals: tuple[int, ...] = (1, 0)) -> set[Decimal]:
    """The numbers `duration()` may show for `hours`, in the unit it picks, rounded to 1 and
    0 decimals ("24.6" and "25" weeks for 4127.9 hours): what the narrative checker must
    accept next to the hours themselves. Only that unit, so the checker stays strict."""
    per = HOURS_PER[duration_unit(hours)]
    return {round_half_up(abs(hours) / per, d) for d in decimals}


def cadence_unit(count: float, days: float) -> CadenceUnit:
    """The smallest unit at which `count` events over `days` days come to at least one."""
    if days <= 0:
        return "day"
    for unit, per in DAYS_PER.items():
        if float(round_half_up(count / days * per)) >= 1:
            return unit
    return "year"


def window_unit(days: float) -> CadenceUnit:
    """The unit a window of `days` is naturally read in (a week → per week, a year → per
    year): the unit for a count of zero, where no unit makes the rate reach one."""
    if days >= 360:
        return "year"
    if days >= 28:
        return "month"
    if days >= 7:
        return "week"
    return "day"


def cadence(count: float, days: float, unit: CadenceUnit | None = None) -> Quantity:
    """`count` events over a window of `days` days as a rate people read: "8 per year".

    >>> cadence(3, 7).text, cadence(0, 91).text, cadence(40, 7).text
    ('3 per week', '0 per month', '5.7 per day')
    """
    if unit is None:
        unit = cadence_unit(count, days) if count else window_unit(days)
    amount = float(round_half_up(count / days * DAYS_PER[unit])) if days > 0 else 0.0
    return Quantity(value=number(amount), unit=f"per {unit}", amount=amount)


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 release`, `3 releases`; `words` for irregular plurals.

    >>> plural(1, "deployment"), plural(2, "fix", "fixes")
    ('1 deployment', '2 fixes')
    """
    return f"{count} {word}" if count == 1 else f"{count} {words or word + 's'}"
