"""The narrative checker: every number a narrator writes must be a fact, every metric known.

Deterministic code is the last layer against made-up numbers and prompt injection (DESIGN.md,
"Narration"): a narrative that fails any rule is repaired once or replaced by the built-in one.

Rules, applied to the summary, each highlight, and each recommendation's title, why and evidence:
- A number is a run of digits with an optional decimal part ("20.5", "1,200"). Digits that are
  part of a name or label are not quantities: ones glued to a letter ("p90", "sev2", "W05"),
  after a letter and a hyphen ("INC-3"), and the facts' `quotable.identifiers` (window labels,
  dates, service names, change refs like "#42").
- Each number must equal one of the facts' allowed renderings (`quotable.numbers`) after
  dropping its sign, thousands separators and trailing zeros; one followed by `%`, "percent",
  "pp" or "percentage points" must be an allowed percentage (`quotable.percent`).
- Each recommendation names a metric from `METRICS` and cites at least one evidence number.
- No links: a narrative has no reason to send a reader anywhere.

>>> check(narrative, build_facts(report))                         # doctest: +SKIP
['summary: 37.5 is not a number from the facts']
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from insights.narrate.facts import canonical
from insights.narrate.schema import METRICS, Narrative

_NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z]-)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<unit>\s?(?:%|percent\b|per\s?cent\b|pp\b|percentage points?\b))?",
    re.IGNORECASE,
)
_LINK = re.compile(r"https?://|\bwww\.|\]\(", re.IGNORECASE)


def numbers_in(text: str, identifiers: list[str] | tuple[str, ...] = ()) -> list[tuple[str, bool]]:
    """The quantities quoted in `text` as (canonical number, followed by a percent unit).

    >>> numbers_in("Median 20.50 h (p90 31 h), CFR 8%, INC-3 in 2026-W05", ["2026-W05"])
    [('20.5', False), ('31', False), ('8', True)]
    """
    for ident in sorted(identifiers, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.]){re.escape(ident)}(?!\w)", " ", text)
    found = []
    for match in _NUMBER.finditer(text):
        try:
            value = Decimal(match["num"].replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern only matches digits
            continue
        found.append((canonical(value), match["unit"] is not None))
    return found


def check(narrative: Narrative, facts: dict[str, Any]) -> list[str]:
    """Human-readable problems with `narrative` against `facts`; empty when it may ship."""
    quotable = facts.get("quotable") or {}
    numbers = set(quotable.get("numbers", ()))
    percent = set(quotable.get("percent", ()))
    identifiers = list(quotable.get("identifiers", ()))
    errors: list[str] = []
    for where, text in narrative.texts():
        if _LINK.search(text):
            errors.append(f"{where}: contains a link; narratives must not link anywhere")
        for number, is_percent in numbers_in(text, identifiers):
            if number not in numbers:
                errors.append(f"{where}: {number} is not a number from the facts")
            elif is_percent and number not in percent:
                errors.append(f"{where}: {number}% is not a percentage from the facts")
    for i, rec in enumerate(narrative.recommendations):
        if rec.metric not in METRICS:
            errors.append(
                f"recommendations[{i}].metric: {rec.metric!r} is not a known metric "
                f"(one of {', '.join(METRICS)})"
            )
        if not any(numbers_in(item, identifiers) for item in rec.evidence):
            errors.append(f"recommendations[{i}].evidence: cites no number from the facts")
    return errors
