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
- Each recommendation names a metric from `METRICS`, a DORA capability that fits it
  (`capabilities.FITS`), and cites at least one evidence number.
- No links: a narrative has no reason to send a reader anywhere.
- Every claim made without digits — numbers in words, counts of deployments and incidents,
  shares, multiples, directions, verdicts, quantifiers, entities — must match the facts too
  (`narrate/claims.py`; the rule table is in docs/llm.md).

>>> check(narrative, build_facts(report))                         # doctest: +SKIP
['summary: 37.5 is not a number from the facts']
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from insights.narrate import claims
from insights.narrate.capabilities import capabilities_for, fits
from insights.narrate.facts import canonical
from insights.narrate.schema import METRICS, Narrative

_NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z]-)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<unit>\s?(?:%|percent\b|per\s?cent\b|pp\b|percentage points?\b))?",
    re.IGNORECASE,
)
# "3 times lower", "10-fold": a ratio, checked by the multiple rule (claims.py), not a quoted fact.
_MULTIPLE = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?(?=[\s-]*(?:fold\b|x\s|times\s+(?:as|more|less|fewer|higher|lower|"
    r"faster|slower|longer|shorter|larger|smaller|quicker)\b))",
    re.IGNORECASE,
)
_LINK = re.compile(r"https?://|\bwww\.|\]\(", re.IGNORECASE)


def numbers_in(text: str, identifiers: list[str] | tuple[str, ...] = ()) -> list[tuple[str, bool]]:
    """The quantities quoted in `text` as (canonical number, followed by a percent unit).

    >>> numbers_in("Median 20.50 h (p90 31 h), CFR 8%, INC-3 in 2026-W05", ["2026-W05"])
    [('20.5', False), ('31', False), ('8', True)]
    """
    text = claims.mask_identifiers(text, identifiers, " ")
    text = _MULTIPLE.sub("N", text)
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
    return [str(p) for p in problems(narrative, facts)]


def problems(narrative: Narrative, facts: dict[str, Any]) -> list[claims.Problem]:
    """Every problem with `narrative`, each with its rule category (`claims.CATEGORIES` plus
    "number", "link", "metric", "capability", "evidence")."""
    quotable = facts.get("quotable") or {}
    numbers = set(quotable.get("numbers", ()))
    percent = set(quotable.get("percent", ()))
    identifiers = list(quotable.get("identifiers", ()))
    Problem = claims.Problem
    claim_checker = claims.Checker(facts, identifiers)
    errors: list[claims.Problem] = []
    for where, text in narrative.texts():
        if _LINK.search(text):
            errors.append(
                Problem(where, "link", "contains a link; narratives must not link anywhere")
            )
        for number, is_percent in numbers_in(text, identifiers):
            if number not in numbers:
                errors.append(Problem(where, "number", f"{number} is not a number from the facts"))
            elif is_percent and number not in percent:
                errors.append(
                    Problem(where, "number", f"{number}% is not a percentage from the facts")
                )
        errors += claim_checker.problems(where, text)
    for i, rec in enumerate(narrative.recommendations):
        where = f"recommendations[{i}]"
        if rec.metric not in METRICS:
            errors.append(
                Problem(
                    f"{where}.metric",
                    "metric",
                    f"{rec.metric!r} is not a known metric (one of {', '.join(METRICS)})",
                )
            )
        elif rec.capability is None:
            errors.append(
                Problem(
                    f"{where}.capability",
                    "capability",
                    "names no DORA capability; for "
                    f"{rec.metric} use one of: {', '.join(capabilities_for(rec.metric))}",
                )
            )
        elif not fits(rec.capability, rec.metric):
            errors.append(
                Problem(
                    f"{where}.capability",
                    "capability",
                    f"{rec.capability!r} does not move {rec.metric}; use one of: "
                    f"{', '.join(capabilities_for(rec.metric))}",
                )
            )
        if not any(numbers_in(item, identifiers) for item in rec.evidence):
            errors.append(
                Problem(f"{where}.evidence", "evidence", "cites no number from the facts")
            )
    return errors
