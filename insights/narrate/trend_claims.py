"""Directional claims must match the verdicts: a narrative may not call noise a move.

The facts give each metric a verdict against the previous window and against the baseline
(`facts["metrics"][name]["verdict"]`: "improved", "worsened", "no clear change" or "too
little data", from `metrics/verdicts.py`). A narrative that says a metric improved or worsened,
or that it rose or fell sharply, when neither verdict says so, is rejected the same way as an
invented number (repair once, else the built-in narrative).

Rules, per sentence of the summary, each highlight and each recommendation's title, why and
evidence:
- A claim word says a metric got better or worse: "improved", "is improving", "worsened",
  "is worsening", "regressed", "deteriorated", "degraded", "got better", "got worse" (not
  "improves" or "improving X": that is advice, not a report of a move); or a move of
  size: a verb of movement with an intensifier ("rose sharply", "fell significantly", "grew
  dramatically") or a verb that is itself dramatic ("surged", "spiked", "plunged", "soared").
  A rise is worse for lead time, change failure rate, recovery time and rework rate and better
  for deployment frequency; a fall the reverse.
- The claim is about the metric named nearest before it in the sentence (else the nearest after
  it). A sentence that names no metric makes no checkable claim. A negation just before the
  claim word ("has not improved") makes it no claim.
- A claim is allowed when the previous-window or the baseline verdict is that direction;
  "within normal variation", "no clear change" and "too few recoveries to judge" claim nothing.
  Facts without verdicts (a report computed without them) leave the claim to `verify.check`.

>>> check(Narrative(summary="Recovery time worsened sharply.", ...), facts)  # doctest: +SKIP
['summary: says recovery time worsened, but the verdict is "too little data" (previous) ...']
"""

from __future__ import annotations

import re
from typing import Any

from insights.narrate.schema import Narrative

# metric → the words a narrative uses for it (lower case, longest first where they overlap).
METRIC_WORDS: dict[str, tuple[str, ...]] = {
    "change_failure_rate": (
        "change failure rate",
        "change-failure rate",
        "failure rate",
        "failed deployments",
        "cfr",
    ),
    "deployment_frequency": (
        "deployment frequency",
        "deploy frequency",
        "deployments per week",
        "deployments",
        "deploys",
    ),
    "lead_time": ("lead time", "lead-time", "lead times"),
    "recovery_time": (
        "recovery time",
        "time to recover",
        "time to restore",
        "recovery",
        "recoveries",
        "mttr",
    ),
    "rework_rate": ("rework rate", "rework", "unplanned fixes"),
}
LABELS = {
    "change_failure_rate": "change failure rate",
    "deployment_frequency": "deployment frequency",
    "lead_time": "lead time",
    "recovery_time": "recovery time",
    "rework_rate": "rework rate",
}
HIGHER_IS_BETTER = {"deployment_frequency"}
DIRECTIONS = ("improved", "worsened")

# Past tense and "is improving": a move. Not "improves"/"improving review time": advice.
_BETTER = r"improved|(?:is|are|has\s+been|have\s+been)\s+improving|got\s+better|getting\s+better"
_WORSE = (
    r"worsened|(?:is|are|has\s+been|have\s+been)\s+worsening|regressed|deteriorated|degraded"
    r"|got\s+worse|getting\s+worse"
)
_UP = (
    r"r(?:ose|isen|ising|ises)|gr(?:ew|own|owing)|increas(?:ed|ing)|climb(?:ed|ing)"
    r"|jump(?:ed|ing)|went\s+up"
)
_DOWN = (
    r"f(?:ell|allen|alling)|dropp(?:ed|ing)|decreas(?:ed|ing)|declin(?:ed|ing)|shr(?:ank|unk)"
    r"|went\s+down"
)
_INTENSE = (
    r"sharply|significantly|dramatically|markedly|substantially|considerably|steeply|"
    r"strongly|a\s+lot|massively|hugely"
)
_DRAMATIC_UP = r"surg(?:ed|ing)|spik(?:ed|ing)|soar(?:ed|ing)|skyrocket(?:ed|ing)"
_DRAMATIC_DOWN = r"plung(?:ed|ing)|plummet(?:ed|ing)|collaps(?:ed|ing)|tank(?:ed|ing)"
_CLAIM = re.compile(
    rf"\b(?:(?P<better>{_BETTER})|(?P<worse>{_WORSE})"
    rf"|(?P<up>(?:{_UP})\s+(?:{_INTENSE})|(?:{_INTENSE})\s+(?:{_UP})|{_DRAMATIC_UP})"
    rf"|(?P<down>(?:{_DOWN})\s+(?:{_INTENSE})|(?:{_INTENSE})\s+(?:{_DOWN})|{_DRAMATIC_DOWN}))\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"(?:\bnot|\bno|\bnever|n't|\bneither|\bnor|\bwithout)\W+(?:\w+\W+)?$", re.IGNORECASE
)
_SENTENCE = re.compile(r"[^.;!?\n]+")
_MENTION = re.compile(
    "|".join(
        rf"(?P<{metric}>\b(?:{'|'.join(re.escape(w) for w in words)})\b)"
        for metric, words in METRIC_WORDS.items()
    ),
    re.IGNORECASE,
)


def claims_in(text: str) -> list[tuple[str, str]]:
    """(metric, claimed direction "improved"/"worsened") for each claim in `text`.

    >>> claims_in("Lead time rose sharply; recovery time was within normal variation.")
    [('lead_time', 'worsened')]
    >>> claims_in("Deployments surged, and change failure rate has not improved.")
    [('deployment_frequency', 'improved')]
    """
    found = []
    for sentence in _SENTENCE.finditer(text):
        part = sentence.group()
        mentions = [(m.start(), m.lastgroup) for m in _MENTION.finditer(part)]
        if not mentions:
            continue
        for claim in _CLAIM.finditer(part):
            if _NEGATION.search(part[: claim.start()]):
                continue
            before = [metric for at, metric in mentions if at < claim.start()]
            metric = before[-1] if before else mentions[0][1]
            if claim["better"] or claim["worse"]:
                direction = "improved" if claim["better"] else "worsened"
            else:
                rose = claim["up"] is not None
                better = rose == (metric in HIGHER_IS_BETTER)
                direction = "improved" if better else "worsened"
            found.append((str(metric), direction))
    return found


def _verdicts(facts: dict[str, Any], metric: str) -> tuple[str, str] | None:
    """The metric's (previous, baseline) verdicts; None when the facts carry none (a report
    computed without them: the number and direction checks of `verify.check` still apply)."""
    verdict = ((facts.get("metrics") or {}).get(metric) or {}).get("verdict")
    if verdict is None:
        return None
    return (
        verdict.get("previous") or "too little data",
        verdict.get("baseline") or "too little data",
    )


def check(narrative: Narrative, facts: dict[str, Any]) -> list[str]:
    """Problems with the directional claims of `narrative` against the facts' verdicts."""
    errors = []
    for where, text in narrative.texts():
        for metric, direction in claims_in(text):
            verdicts = _verdicts(facts, metric)
            if verdicts is None or direction in verdicts:
                continue
            previous, baseline = verdicts
            errors.append(
                f"{where}: says {LABELS[metric]} {direction}, but the data does not show it "
                f'(verdict against the previous window: "{previous}", against the baseline: '
                f'"{baseline}"); describe the move as within normal variation or too little data'
            )
    return errors
