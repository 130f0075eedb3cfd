"""The lie and truth corpora: built-in narratives over real facts, each with one edited claim.

`lies(facts)` yields narratives that are true except for one claim of a category
(`CATEGORIES`): the base is the built-in narrator's narrative for those facts (true by
construction, and checked to be), the lie a templated sentence made false *for these facts*
(a count off by two, the wrong fraction, a multiple the ratio does not give, the opposite
direction, a quantifier the counts contradict, an entity the facts do not have, a verdict the
facts do not give). `truths(facts)` yields faithful paraphrases: the same base plus one true
claim in other words (synonyms, numbers in words where they are right, rounding, fractions and
multiples where the facts give them, hedged moves under "no clear change").

Both are used by tests/test_checker_corpus.py and benchmarks/checker_corpus.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from insights.narrate import builtin
from insights.narrate.facts import LOWER_IS_BETTER, half_up
from insights.narrate.schema import Narrative

CATEGORIES = (
    "number",
    "number_word",
    "count",
    "share",
    "multiple",
    "direction",
    "verdict",
    "quantifier",
    "entity",
)
LABELS = builtin.LABELS
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n: int) -> str:
    """0..99 in words: 21 → "twenty-one"."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


@dataclass(frozen=True)
class Case:
    """One corpus narrative: which facts (`source`), which category, the edited sentence."""

    source: str
    category: str
    sentence: str
    narrative: Narrative
    facts: dict[str, Any]


def _with(base: Narrative, sentence: str) -> Narrative:
    return base.model_copy(update={"summary": f"{base.summary} {sentence}"})


def _cur(facts: dict[str, Any], metric: str, key: str) -> Any:
    return (facts["metrics"][metric]["current"] or {}).get(key)


def _prev(facts: dict[str, Any], metric: str, key: str) -> Any:
    return (facts["metrics"][metric]["previous"] or {}).get(key)


def _headline(facts: dict[str, Any], metric: str) -> tuple[Any, Any]:
    key = facts["metrics"][metric]["headline"]
    return _cur(facts, metric, key), _prev(facts, metric, key)


def _moved(facts: dict[str, Any]) -> list[str]:
    """Metrics whose headline value rose or fell since the previous window."""
    out = []
    for metric in LABELS:
        cur, prev = _headline(facts, metric)
        if cur is not None and prev is not None and cur != prev:
            out.append(metric)
    return out


def _absent_int(facts: dict[str, Any], start: int) -> int:
    numbers = set(facts["quotable"]["numbers"])
    n = start
    while str(n) in numbers:
        n += 1
    return n


def _other(start: int, taken: list[Any]) -> int:
    """The first integer from `start` that is not one of `taken`."""
    n = start
    while n in taken:
        n += 1
    return n


def _with_verdict(facts: dict[str, Any], metric: str, verdict: str) -> dict[str, Any]:
    changed = copy.deepcopy(facts)
    changed["metrics"][metric]["verdict"] = {
        "previous": verdict,
        "baseline": verdict,
        "level": 0.05,
    }
    return changed


def lies(source: str, facts: dict[str, Any]) -> Iterator[Case]:
    """Narratives over `facts`, each true except one claim."""
    base = builtin.narrate(facts)
    deployments = _cur(facts, "deployment_frequency", "deployments") or 0
    failed = _cur(facts, "change_failure_rate", "failed_deployments")
    rework = _cur(facts, "rework_rate", "rework_deployments")
    incidents = facts["incidents"]["opened"] or 0
    cfr = _cur(facts, "change_failure_rate", "rate_pct")
    rework_pct = _cur(facts, "rework_rate", "rate_pct")

    def case(category: str, sentence: str, narrative: Narrative | None = None, f=None) -> Case:
        return Case(source, category, sentence, narrative or _with(base, sentence), f or facts)

    numbers = set(facts["quotable"]["numbers"])
    made_up = next(f"{i}.5" for i in range(37, 999) if f"{i}.5" not in numbers)
    yield case("number", f"The median lead time was {made_up} hours.")
    n = _absent_int(facts, 13)
    if n < 100:
        yield case("number_word", f"The median lead time was {words(n)} hours.")
    if failed is not None:
        wrong = _other(
            failed + 2, [failed, _prev(facts, "change_failure_rate", "failed_deployments")]
        )
        yield case("count", f"{words(wrong).capitalize()} deployments failed this week.")
    else:
        yield case("count", f"{words(incidents + 3).capitalize()} incidents were opened.")
    if deployments:
        trend = facts["metrics"]["deployment_frequency"]["trend"]
        taken = [deployments, _prev(facts, "deployment_frequency", "deployments")]
        taken += [trend.get("best"), trend.get("worst")]
        wrong = _other(deployments + 5, taken)
        yield case("count", f"The team shipped {wrong} deployments in this window.")
    if cfr is not None:
        shares = {
            half_up(v, 0)
            for v in (cfr, _prev(facts, "change_failure_rate", "rate_pct"))
            if v is not None
        }
        text = next(
            t for t, pct in (("A third", 33), ("Half", 50), ("A quarter", 25)) if pct not in shares
        )
        yield case("share", f"{text} of the deployments failed.")
    if rework_pct is not None and half_up(rework_pct, 0) != 50:
        yield case("share", "Half of all deployments were rolled back.")
    for metric in _moved(facts)[:2]:
        cur, prev = _headline(facts, metric)
        if cur <= 0 or prev <= 0:
            continue
        ratio = max(cur / prev, prev / cur)
        factor = int(half_up(ratio, 0)) + 2
        up = cur > prev
        word = {2: "doubled", 3: "tripled", 4: "quadrupled"}.get(factor)
        if up and word:
            sentence = f"{LABELS[metric].capitalize()} {word} since the previous window."
        elif up:
            sentence = f"{LABELS[metric].capitalize()} grew {words(factor)}fold."
        else:
            sentence = f"{LABELS[metric].capitalize()} is now {factor} times lower than before."
        yield case("multiple", sentence)
    if _cur(facts, "recovery_time", "median_hours") and _prev(
        facts, "recovery_time", "median_hours"
    ):
        cur, prev = _headline(facts, "recovery_time")
        if not (cur > 0 and half_up(prev / cur, 0) == 2):
            yield case("multiple", "Recovery is now twice as fast.")
    moved = _moved(facts)
    swapped = [
        h.replace("(improved", "(WORSENED")
        .replace("(worsened", "(improved")
        .replace("(WORSENED", "(worsened")
        for h in base.highlights
    ]
    if swapped != base.highlights:
        yield case(
            "direction",
            "highlights: improved and worsened swapped",
            base.model_copy(update={"highlights": swapped}),
        )
    for metric in moved[:2]:
        cur, prev = _headline(facts, metric)
        verb = "fell" if cur > prev else "rose"
        yield case("direction", f"{LABELS[metric].capitalize()} {verb} since the previous window.")
    for metric in moved[:1]:
        direction = facts["metrics"][metric]["change"]["direction"]
        if direction not in ("improved", "worsened"):
            continue
        judged = _with_verdict(facts, metric, "no clear change")
        sentence = f"{LABELS[metric].capitalize()} {direction} since the previous window."
        yield case("verdict", sentence, _with(builtin.narrate(judged), sentence), judged)
        opposite = "worsened" if direction == "improved" else "improved"
        judged = _with_verdict(facts, metric, opposite)
        sentence = f"{LABELS[metric].capitalize()} {direction} since the previous window."
        yield case("verdict", sentence, _with(builtin.narrate(judged), sentence), judged)
    if deployments and failed:
        yield case("quantifier", "No deployment failed in this window.")
    if deployments and failed is not None and failed < deployments:
        yield case("quantifier", "Every deployment in the window failed.")
    if incidents:
        yield case("quantifier", "No incidents were opened.")
    if deployments and rework:
        yield case("quantifier", "None of the deployments was rolled back.")
    if not incidents:
        yield case("entity", "An incident was opened after the last deployment.")
    yield case("entity", "Service ghost-ledger shipped the slowest change.")
    yield case("entity", "Uptime improved to 99.9% this week.")
    yield case("entity", "The slowest change was ghost#4242.")


def truths(source: str, facts: dict[str, Any]) -> Iterator[Case]:
    """Narratives over `facts` with one more true claim, in other words than the facts'."""
    base = builtin.narrate(facts)
    deployments = _cur(facts, "deployment_frequency", "deployments") or 0
    failed = _cur(facts, "change_failure_rate", "failed_deployments")
    rework = _cur(facts, "rework_rate", "rework_deployments")
    incidents = facts["incidents"]["opened"] or 0
    cfr = _cur(facts, "change_failure_rate", "rate_pct")
    median = _cur(facts, "lead_time", "median_hours")

    def case(category: str, sentence: str, f=None) -> Case:
        narrative = _with(builtin.narrate(f) if f else base, sentence)
        return Case(source, category, sentence, narrative, f or facts)

    if median is not None and str(int(half_up(median, 0))) in facts["quotable"]["numbers"]:
        yield case(
            "number",
            f"Changes took about {int(half_up(median, 0))} hours from commit to production.",
        )
    if median is not None:
        yield case("number", f"Median lead time: {builtin.n(median)} hours, commit to production.")
    days = _cur(facts, "deployment_frequency", "deployment_days_pct")
    if days is not None and deployments:
        yield case("share", f"Releases went out on {builtin.n(days)}% of days.")
    if 1 < deployments < 100:
        yield case("number_word", f"In this window the team deployed {words(deployments)} times.")
    if 0 < deployments < 100:
        yield case(
            "number_word",
            f"{words(deployments).capitalize()} production deployments went out in this window.",
        )
    if failed is not None and deployments:
        yield case(
            "count", f"{words(failed).capitalize()} of the {deployments} deployments failed."
        )
        yield case("count", f"There were {failed} failed deployments out of {deployments}.")
    if incidents:
        yield case("count", f"{words(incidents).capitalize()} incidents were opened.")
    if cfr is not None and cfr < 50:
        yield case("share", "Most deployments succeeded.")
    if cfr is not None:
        for name, pct in (("Half", 50), ("A quarter", 25), ("A third", 100 / 3), ("A fifth", 20)):
            if half_up(cfr, 0) == half_up(pct, 0):
                yield case("share", f"{name} of the deployments failed.")
        yield case("share", f"{builtin.n(cfr)}% of the deployments failed.")
    for metric in _moved(facts):
        cur, prev = _headline(facts, metric)
        label = LABELS[metric].capitalize()
        up = cur > prev
        yield case(
            "direction", f"{label} {'went up' if up else 'went down'} since the previous window."
        )
        yield case(
            "direction",
            f"Since the previous window, {LABELS[metric]} has {'risen' if up else 'fallen'}.",
        )
        now_text, before_text = builtin.n(cur), builtin.n(prev)
        if facts["metrics"][metric]["headline"] == "rate_pct":
            yield case(
                "direction",
                f"At {now_text}%, the {LABELS[metric]} was {'higher' if up else 'lower'} than "
                f"the {before_text}% of the previous window.",
            )
        direction = facts["metrics"][metric]["change"]["direction"]
        verdict = facts["metrics"][metric].get("verdict") or {}
        judged = verdict.get("previous") in (None, direction)
        if direction in ("improved", "worsened") and judged:
            word = "got better" if direction == "improved" else "got worse"
            yield case("direction", f"Compared with the previous window, {LABELS[metric]} {word}.")
        if direction in ("improved", "worsened"):
            judged = _with_verdict(facts, metric, "no clear change")
            yield case(
                "verdict",
                f"{label} {direction} a little, but that is within normal variation.",
                judged,
            )
            yield case(
                "verdict",
                f"{label} {direction} since the previous window.",
                _with_verdict(facts, metric, direction),
            )
        if cur > 0 and prev > 0:
            ratio = cur / prev if up else prev / cur
            factor = half_up(ratio, 0)
            if factor >= 2 and factor == half_up(ratio, 0):
                word = {2: "doubled", 3: "tripled"}.get(int(factor)) if up else None
                yield case(
                    "multiple",
                    f"{label} {word} since the previous window."
                    if word
                    else f"{label} is now {factor} times {'higher' if up else 'lower'} "
                    "than before.",
                )
        relative = facts["metrics"][metric]["change"]["relative_pct"]
        if relative is not None and facts["metrics"][metric]["change"]["unit"] is None:
            yield case(
                "multiple",
                f"{label} {'rose' if up else 'fell'} by {builtin.n(abs(relative))}% "
                "since the previous window.",
            )
    if deployments and failed == 0:
        yield case("quantifier", "No deployment failed in this window.")
        yield case("quantifier", "All deployments succeeded.")
    if deployments and rework == 0:
        yield case("quantifier", "None of the deployments was rolled back.")
    if not incidents:
        yield case("quantifier", "No incidents were opened in this window.")
    if facts["slowest_changes"]:
        ref = facts["slowest_changes"][0]["ref"]
        yield case("entity", f"The slowest change was {ref}.")
    services = facts["services"]
    if services:
        yield case("entity", f"The {services[0]} service is in this report.")


def corpus(items: list[tuple[str, dict[str, Any]]]) -> tuple[list[Case], list[Case]]:
    """(lies, truths) over every (source, facts) of `items`."""
    lie_cases = [c for source, facts in items for c in lies(source, facts)]
    truth_cases = [c for source, facts in items for c in truths(source, facts)]
    return lie_cases, truth_cases


def rate(part: int, whole: int) -> str:
    return "n/a" if not whole else f"{Decimal(part * 100) / whole:.1f} %"


assert set(LOWER_IS_BETTER) <= set(LABELS)
