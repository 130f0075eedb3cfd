"""Claims in narrative prose: quantities in words, shares, multiples, directions, quantifiers.

`verify.check` reads digits; this module reads what a model writes instead of digits, and ties
each such claim to a fact. The rule table is in docs/llm.md ("What the checker accepts"); in
short, per sentence and clause (split at `.`, `!`, `?`, `;` and at `, which` / `, and` / `, but`
/ `, while` / `, mostly`):

- **number words**: cardinals and ordinals (one … ninety-nine, hundred, thousand, dozen) are
  numbers and must be a quotable number, as digits must. "a"/"an" is never a number; "one" as a
  pronoun ("one of", "each one") is not either; "first" is not a count.
- **counted nouns**: "N deployments" / "N incidents" / "N failed deployments" / "N rollbacks"
  (digits or words) must equal that count in the facts (current or previous window).
- **shares**: half, a third, two thirds, a quarter, three quarters, a fifth, a tenth, and
  "N% of the deployments …", tied to the share the clause is about (failed → change failure
  rate, rolled back / unplanned → rework rate, days → deployment days, a stage → its share of
  the lead-time path), equal after rounding to a whole percent; "most" / "a majority" needs
  that share above 50 %. "…succeeded" turns a failure share into its complement.
- **multiples**: twice, doubled, tripled, quadrupled, halved, N times, N-fold, tenfold, and
  "by N%" / "by N hours" must equal the metric's current/previous ratio (rounded to a whole
  number or 1 decimal) or its change (`change.relative_pct`, `change.absolute`), in the
  direction the words say ("twice as fast" of a time is half the time).
- **directions**: rose/fell/increased/decreased/grew/dropped/up/down/higher/lower/faster/slower/
  longer/shorter (the raw value) and improved/worsened/better/worse (the judgement) claimed of a
  metric, a lead-time stage, the overall tier or a trend ("…over 12 windows") must match the
  facts; with `metrics[m].verdict.previous` present, an improvement or worsening is only a
  claim when the verdict says so — under "no clear change" / "too little data" it needs a hedge
  ("within normal variation"). In recommendations (advice, not report), comparatives count only
  next to a time anchor ("since", "than last week", "was", "now").
- **quantifiers**: every / all / none / no / not a single / zero about deployments, failures,
  incidents and unplanned fixes, with a past-tense predicate (failed, succeeded, were rolled
  back, were made, were opened), must match the counts.
- **entities**: a change ref must be one of the facts; a service or team named must be in
  scope; incidents cannot be claimed when none were opened; a metric the facts do not carry
  (uptime, coverage, error rate, …) cannot be given a number or a direction; a metric without
  data in the window cannot be given a direction.

Messages name where the claim is and the words from this module's own vocabulary that made it,
never the narrative's other text: they go back to the model in the repair message.

>>> [p.category for p in problems("summary", "Three deployments failed this week.", facts)]
... # doctest: +SKIP
['count']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from insights.narrate.facts import LOWER_IS_BETTER, canonical, half_up

CATEGORIES = (
    "number_word",
    "count",
    "share",
    "multiple",
    "direction",
    "verdict",
    "quantifier",
    "entity",
)


@dataclass(frozen=True)
class Problem:
    """One claim the facts do not support: where, which rule (`CATEGORIES`), and why."""

    where: str
    category: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


# ---------------------------------------------------------------- number words

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_ORDINALS = {
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
    "fortieth": 40,
    "fiftieth": 50,
    "sixtieth": 60,
    "seventieth": 70,
    "eightieth": 80,
    "ninetieth": 90,
    "hundredth": 100,
}
_ORDINAL_UNITS = {k: v for k, v in _ORDINALS.items() if v < 10}
_UNIT_RE = "|".join(sorted(_UNITS, key=len, reverse=True))
_TENS_RE = "|".join(_TENS)
_ORD_RE = "|".join(sorted(_ORDINALS, key=len, reverse=True))
_ORD_UNIT_RE = "|".join(_ORDINAL_UNITS)
# A compound cardinal: "twenty-one", "one hundred and five", "two thousand", "a dozen".
_CARDINAL = (
    rf"(?:(?:{_TENS_RE})(?:[\s-](?:{_UNIT_RE}|{_ORD_UNIT_RE}))?|{_UNIT_RE}|an?(?=\s+(?:hundred|thousand|dozen)\b))"
    rf"(?:\s+(?:hundred|thousand|dozen)(?:\s+and\s+(?:(?:{_TENS_RE})(?:[\s-](?:{_UNIT_RE}))?|{_UNIT_RE}))?)*"
    rf"|(?:{_ORD_RE})"
    r"|hundred|thousand|dozen"
)
NUMBER_WORD = re.compile(rf"\b(?:{_CARDINAL})\b", re.IGNORECASE)
_PRONOUN_ONE = re.compile(
    r"(?:\b(?:each|every|no|any|the|this|that|which)\s+one\b|\bone\s+(?:of|another|at\s+a\s+time|by\s+one)\b)",
    re.IGNORECASE,
)


def word_value(text: str) -> int | None:
    """The value of a number phrase ("twenty-one" → 21, "a dozen" → 12, "third" → 3).

    >>> word_value("twenty-one"), word_value("a dozen"), word_value("two hundred and five")
    (21, 12, 205)
    """
    words = re.split(r"[\s-]+", text.lower().strip())
    total, current = 0, 0
    seen = False
    for word in words:
        if word in ("a", "an"):
            current, seen = 1, True
        elif word in _UNITS:
            current += _UNITS[word]
            seen = True
        elif word in _TENS:
            current += _TENS[word]
            seen = True
        elif word in _ORDINALS:
            current += _ORDINALS[word]
            seen = True
        elif word == "dozen":
            current = (current or 1) * 12
            seen = True
        elif word == "hundred":
            current = (current or 1) * 100
            seen = True
        elif word == "thousand":
            total += (current or 1) * 1000
            current = 0
            seen = True
        elif word == "and":
            continue
        else:
            return None
    return total + current if seen else None


# ---------------------------------------------------------------- entities

_ENTITY = re.compile(
    r"(?P<rework>rework(?:\s+rate)?|unplanned\s+(?:fix(?:es)?|work|deployments?)|"
    r"rolled[\s-]+back|roll-?backs?)"
    r"|(?P<cfr_rate>change[\s-]+failure[\s-]+rate|failure\s+rate|\bcfr\b)"
    r"|(?P<cfr_count>failed\s+deployments?|deployments?\s+(?:that\s+)?failed|failures?|"
    r"failed|failing|fails?\b)"
    r"|(?P<recovery>recovery(?:\s+time)?|time\s+to\s+(?:restore|recover)|\bmttr\b|"
    r"restor(?:e|ed|ing|ation)|recover(?:s|ed|ing)?\b)"
    r"|(?P<stage>\b(?:coding|pickup|review|deploy)(?=\s+(?:stage|time|wait|hours)\b)|"
    r"(?<=\bin\s)(?:coding|pickup|review|deploy)\b(?!\s+(?:frequency|per))|^(?:coding|pickup|review)\b)"
    r"|(?P<lead>lead[\s-]+times?|commits?\s+reached\s+production)"
    r"|(?P<df_days>deployment\s+days|days\s+with\s+a\s+deployment|deploying\s+on\s+\S+\s+of\s+days)"
    r"|(?P<df_rate>deployment\s+frequency|deploy(?:ment)?s?\s+(?:per|a|each)\s+"
    r"(?:week|day|month|year))"
    r"|(?P<df_count>deployments?|deploys?\b|releases?\b|deploying|shipped)"
    r"|(?P<overall>\boverall\b|performance\s+tier)"
    r"|(?P<incidents>\bincidents?\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Entity:
    """Something a claim is about: a metric value, a lead-time stage, the overall tier."""

    kind: str  # metric, stage, overall, incidents
    metric: str | None = None
    key: str | None = None  # facts key under current/previous; None = the headline
    stage: str | None = None


# what each named group of the entity expression is about (`stage` is read from the text)
_GROUP_ENTITIES = {
    "rework": Entity("metric", "rework_rate"),
    "cfr_rate": Entity("metric", "change_failure_rate"),
    "cfr_count": Entity("metric", "change_failure_rate", "failed_deployments"),
    "recovery": Entity("metric", "recovery_time"),
    "lead": Entity("metric", "lead_time"),
    "df_days": Entity("metric", "deployment_frequency", "deployment_days_pct"),
    "df_rate": Entity("metric", "deployment_frequency"),
    "df_count": Entity("metric", "deployment_frequency", "deployments"),
    "overall": Entity("overall"),
}


def _entity(match: re.Match[str]) -> Entity:
    group = match.lastgroup
    if group == "stage":
        return Entity("stage", "lead_time", stage=match.group(0).lower().split()[0])
    return _GROUP_ENTITIES.get(group or "", Entity("incidents"))


def _mentions(clause: str) -> list[tuple[int, Entity]]:
    return [(m.start(), _entity(m)) for m in _ENTITY.finditer(clause)]


# ---------------------------------------------------------------- clauses

_SENTENCE = re.compile(r"(?<=[.!?])\s+|;\s*")
_CLAUSE = re.compile(r",\s+(?=(?:which|and|but|while|whereas|mostly|then)\b)", re.IGNORECASE)
_HEDGE = re.compile(
    r"normal\s+variation|no\s+clear\s+change|not\s+(?:a\s+)?clear|not\s+(?:statistically\s+)?"
    r"significant|(?:within|likely|could\s+be|may\s+be)\s+(?:the\s+)?noise|too\s+little\s+data|"
    r"too\s+few|by\s+chance",
    re.IGNORECASE,
)
_ANCHOR = re.compile(
    r"\b(?:since|than\s+(?:last|the\s+previous|before|in\s+ID)|previous|was|were|now|compared|"
    r"last\s+week|this\s+week|from\s+\S+\s+(?:hours?|%|deployments?)?\s*to)\b",
    re.IGNORECASE,
)


@dataclass
class _Clause:
    text: str
    sentence: int
    mentions: list[tuple[int, Entity]]


def _clauses(text: str) -> list[_Clause]:
    out: list[_Clause] = []
    for sentence, part in enumerate(re.split(r"(?<=[.!?])\s+", text)):
        for piece in re.split(r";\s*", part):
            for clause in _CLAUSE.split(piece):
                clause = clause.strip()
                if clause:
                    out.append(_Clause(clause, sentence, _mentions(clause)))
    return out


_AT_LEAST = re.compile(r"\b(?:more\s+than|over|at\s+least|upwards\s+of)\s*$", re.I)
_NEARLY = re.compile(r"\b(?:nearly|almost|close\s+to|just\s+under)\s*$", re.I)
_ABOUT = re.compile(r"\b(?:about|roughly|around|some|approximately)\s*$", re.I)


def _multiple_fits(factor: Decimal, ratio: float, before: str) -> bool:
    """Whether `factor` ("doubled" = 2) describes `ratio`: equal after rounding to a whole
    number or 1 decimal; "more than doubled" needs at least 2, "nearly doubled" 1.5 to 2,
    "about twice" within a quarter of 2."""
    f = float(factor)
    if _AT_LEAST.search(before):
        return ratio >= f
    if _NEARLY.search(before):
        return 0.75 * f <= ratio <= f
    if _ABOUT.search(before):
        return abs(ratio - f) <= 0.25 * f
    return factor in (half_up(ratio, 0), half_up(ratio, 1))


_EXCEPT = re.compile(
    r"\b(?:except(?:\s+for)?|other\s+than|apart\s+from|besides|but\s+not)\s+(?:the\s+)?$", re.I
)


def _about(clauses: list[_Clause], i: int, pos: int) -> Entity | None:
    """The entity a claim at `pos` of clause `i` is about: the nearest mention before it in the
    clause, else the last mention of an earlier clause of the same sentence, else the nearest
    mention after it in the clause."""
    clause = clauses[i]
    # "every metric except recovery time got worse" is not a claim about recovery time
    before = [e for p, e in clause.mentions if p < pos and not _EXCEPT.search(clause.text[:p])]
    if before:
        return before[-1]
    for j in range(i - 1, -1, -1):
        if clauses[j].sentence != clause.sentence:
            break
        if clauses[j].mentions:
            return clauses[j].mentions[-1][1]
    after = [e for p, e in clause.mentions if p >= pos]
    return after[0] if after else None


def _topic(clause: str) -> Entity | None:
    """What a share in `clause` is a share of: failures, rework, deployment days or a stage."""
    found = [e for _, e in _mentions(clause)]
    if _SUCCESS.search(clause):
        return Entity("metric", "change_failure_rate", "failed_deployments")
    for wanted in (("metric", "rework_rate"), ("metric", "change_failure_rate")):
        for e in found:
            if (e.kind, e.metric) == wanted:
                return e
    for e in found:
        # "on 57% of days" is a share of days; "5.8 days (88% of the path)" is a duration.
        if e.key == "deployment_days_pct" or re.search(
            r"\b(?:of|on)\s+(?:the\s+)?days\b", clause, re.I
        ):
            return Entity("metric", "deployment_frequency", "deployment_days_pct")
    for e in found:
        if e.kind == "stage":
            return e
    return None


# ---------------------------------------------------------------- reading the facts


class _Facts:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.numbers = set((raw.get("quotable") or {}).get("numbers", ()))

    def metric(self, name: str) -> dict[str, Any]:
        return (self.raw.get("metrics") or {}).get(name) or {}

    def value(self, e: Entity, side: str) -> float | None:
        """The value an entity has on `side` ("current"/"previous")."""
        if e.kind == "stage":
            b = (self.raw.get("lead_time_breakdown") or {}).get(side) or {}
            return b.get(f"{e.stage}_hours")
        if e.kind != "metric" or e.metric is None:
            return None
        m = self.metric(e.metric)
        section = m.get(side) or {}
        return section.get(e.key or m.get("headline", ""))

    def values(
        self, metric: str, key: str, sides: tuple[str, ...] = ("current", "previous")
    ) -> list[float]:
        out = []
        for side in sides:
            v = (self.metric(metric).get(side) or {}).get(key)
            if v is not None:
                out.append(v)
        return out

    def lower_is_better(self, e: Entity) -> bool:
        if e.kind == "stage":
            return True
        if e.key == "deployments" or e.key == "deployment_days_pct":
            return False
        return e.metric in LOWER_IS_BETTER

    def label(self, e: Entity) -> str:
        if e.kind == "stage":
            return f"the {e.stage} stage"
        if e.kind == "overall":
            return "the overall tier"
        if e.kind == "incidents":
            return "incidents"
        assert e.metric is not None
        label = e.metric.replace("_", " ")
        return label + (f" ({e.key.replace('_', ' ')})" if e.key else "")

    @property
    def incidents(self) -> int | None:
        return (self.raw.get("incidents") or {}).get("opened")


def _renderings(value: float, decimals: int = 1) -> set[str]:
    """The ways a rounded fact may be quoted: as given, or as a whole number either side of the
    rounding interval (5.5 in the facts may have been 5.46, quotable as 5)."""
    out = {canonical(half_up(abs(value), d)) for d in range(decimals + 1)}
    out |= {canonical(half_up(abs(value) + delta, 0)) for delta in (-0.05, 0.049)}
    return out


def _num(text: str) -> Decimal | None:
    text = text.strip().replace(",", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return Decimal(text)
    value = word_value(text)
    return None if value is None else Decimal(value)


# ---------------------------------------------------------------- the rules

_NUM = rf"(?:\d+(?:\.\d+)?|{_CARDINAL})"
_RAW_UP = (
    r"rose|risen|rise[sn]?|rising|increas(?:ed|es|ing)|grew|grown|grows|climbed|jumped|"
    r"went\s+up|higher|longer|more\s+often"
)
_RAW_DOWN = (
    r"fell|fallen|falls|dropped|drops|declined|decreas(?:ed|es|ing)|shrank|shrunk|went\s+down|"
    r"lower|shorter|less\s+often"
)
_GOOD = r"improv(?:ed|es|ing|ement)|better"
_BAD = r"worsen(?:ed|s|ing)|worse|deteriorat(?:ed|ing)|regress(?:ed|ion)"
_FAST = r"faster|quicker|sooner|sped\s+up|speeded\s+up"
_SLOW = r"slower|slowed(?:\s+down)?"
_UPDOWN = (
    r"\b(?:goes|gone|is|are|was|were|moved|been|came|ticked|edged|way)\s+(?:up|down)\b"
    r"|\b(?:up|down)(?=\s+(?:from|by|since|compared|over|this|again|sharply|slightly|week)\b)"
)
_DIRECTION = re.compile(
    rf"\b(?P<up>{_RAW_UP})\b|\b(?P<down>{_RAW_DOWN})\b|\b(?P<good>{_GOOD})\b|\b(?P<bad>{_BAD})\b"
    rf"|\b(?P<fast>{_FAST})\b|\b(?P<slow>{_SLOW})\b|(?P<updown>{_UPDOWN})",
    re.IGNORECASE,
)
_COMPARATIVE = {"up", "down", "fast", "slow"}
_TREND = re.compile(
    r"\bover\s+(?:the\s+)?(?:last\s+)?\S+\s+(?:windows|weeks|months)\b|\btrend", re.I
)
_MULTIPLE = re.compile(
    rf"\b(?P<word>twice|doubled|doubling|doubles|tripled|triples|trebled|quadrupled|halved|halves|"
    rf"cut\s+in\s+half)\b"
    rf"|\b(?P<n>{_NUM})[\s-]*(?:fold|times|x)\b(?P<after>\s+(?:as|more|less|fewer|higher|lower|"
    rf"faster|slower|longer|shorter|larger|smaller|quicker|over|what))?"
    rf"|\b(?P<nfold>(?:two|three|four|five|six|seven|eight|nine|ten|twenty|hundred)fold)\b",
    re.IGNORECASE,
)
_AFTER_MULTIPLE = (
    r"\s+(?:as|more|less|fewer|higher|lower|faster|slower|longer|shorter|larger|smaller|quicker|"
    r"over|what)\b"
)
_WORD_MULTIPLES = {
    "twice": 2,
    "doubled": 2,
    "doubling": 2,
    "doubles": 2,
    "tripled": 3,
    "triples": 3,
    "trebled": 3,
    "quadrupled": 4,
    "halved": 2,
    "halves": 2,
}
_BY = re.compile(
    rf"\bby\s+(?:about\s+|roughly\s+|nearly\s+|almost\s+)?(?P<n>{_NUM})\s*"
    r"(?P<unit>%|percent\b|per\s?cent\b|percentage\s+points?\b|pp\b|points?\b|hours?\b|h\b)",
    re.IGNORECASE,
)
_FRACTIONS = {
    "half": 50.0,
    "a third": 100 / 3,
    "one third": 100 / 3,
    "two thirds": 200 / 3,
    "a quarter": 25.0,
    "one quarter": 25.0,
    "three quarters": 75.0,
    "a fifth": 20.0,
    "one fifth": 20.0,
    "a tenth": 10.0,
    "one tenth": 10.0,
}
_BY_FRACTION = re.compile(
    r"\bby\s+(?:about\s+|roughly\s+|nearly\s+|almost\s+)?(?P<frac>two[\s-]thirds|"
    r"three[\s-]quarters|(?:a|one)[\s-](?:third|quarter|fifth|tenth)|half)\b",
    re.IGNORECASE,
)
_FRACTION = re.compile(
    r"\b(?P<frac>two[\s-]thirds|three[\s-]quarters|(?:a|one)[\s-](?:third|quarter|fifth|tenth)|half)"
    r"(?=\s+(?:of|the|all|were|was|failed|succeeded)\b)",
    re.IGNORECASE,
)
_MOST = re.compile(
    r"\b(?:most|the\s+majority|a\s+majority|the\s+bulk|majority)\b(?!\s+likely)", re.I
)
_PCT_OF = re.compile(
    r"(?<![\w.])(?P<n>\d+(?:\.\d+)?)\s*(?:%|percent\b|per\s?cent\b)\s+of\s+(?:the\s+|all\s+)?"
    r"(?:\w+\s+)?(?P<noun>deployments|days|lead\s+time|the\s+path|path|changes)",
    re.IGNORECASE,
)
_PAST_WINDOW = re.compile(
    r"\b(?:previous|last\s+week|week\s+before|before|earlier|prior|from|was|were\s+\d)\b", re.I
)
_SUCCESS = re.compile(
    r"\b(?:succeeded|successful|passed|went\s+(?:out\s+)?(?:fine|cleanly))\b", re.I
)
_COUNTED = re.compile(
    rf"(?<![\w.#-])(?:(?P<n>\d+|{_CARDINAL})|(?P<both>both)(?:\s+of\s+the|\s+the)?)\s+"
    r"(?P<adj>(?:production|failed|successful|new|unplanned|"
    r"linked|open|opened|more|separate)\s+)?"
    r"(?P<noun>deployments?|deploys?|releases?|incidents?|failures?|rollbacks?|fix(?:es)?)\b"
    r"(?P<tail>\s+(?:per|a|each)\s+(?:week|day|month|year)|"
    r"\s+(?:were\s+|was\s+)?(?:failed|rolled\s+back))?",
    re.IGNORECASE,
)
_OF_M = re.compile(
    rf"\b(?P<n>\d+|{_CARDINAL})\s+(?:out\s+)?of\s+(?:the\s+|all\s+)?(?P<m>\d+|{_CARDINAL})\s+"
    r"(?:production\s+)?(?P<noun>deployments)\b(?P<tail>\s+(?:failed|were\s+rolled\s+back))?",
    re.IGNORECASE,
)
_QUANT = re.compile(
    r"(?<!of\s)(?<!nearly\s)(?<!almost\s)(?<!virtually\s)\b(?P<q>every|each|all|none|no|not\s+a\s+single|not\s+one|zero)\b\s+"
    r"(?:of\s+(?:the\s+|its\s+|their\s+)?)?(?:\w+\s+){0,2}?"
    r"(?P<noun>deployments?|deploys?|releases?|incidents?|failures?|changes?)\b"
    r"|\b(?P<q2>none|nothing)\b",
    re.IGNORECASE,
)
_EVERY_DAY = re.compile(
    r"\b(?:deployed|shipped|released|went\s+out|(?:was|were)\s+(?:a\s+)?deploy\w*)\b[^.;]{0,30}?"
    r"\b(?:every|each)\s+(?:single\s+)?(?:working\s+)?day\b",
    re.IGNORECASE,
)
_PAST_FAILED = re.compile(r"\b(?:failed|went\s+wrong|broke)\b", re.I)
_PAST_REWORK = re.compile(
    r"\b(?:rolled\s+back|(?:was|were)\s+(?:an?\s+)?unplanned\s+fix(?:es)?)\b", re.I
)
_PAST_MADE = re.compile(
    r"\b(?:were|was)\s+(?:made|recorded|shipped|deployed)\b|\bwent\s+out\b", re.I
)
_PAST_OPENED = re.compile(
    r"\b(?:were|was)\s+(?:opened|raised|declared|reported|filed)\b|\boccurred\b|\bhappened\b", re.I
)
_INCIDENT_CLAIM = re.compile(
    r"\b(?:an?|one|several|many|some|multiple|few|new)\s+(?:\w+\s+)?incidents?\s+"
    r"(?:was|were)\s+(?:opened|raised|declared|reported|filed)",
    re.I,
)
_UNKNOWN_METRIC = re.compile(
    r"\b(?:uptime|availability|test\s+coverage|code\s+coverage|coverage|error\s+rates?|"
    r"error\s+budgets?|latency|velocity|story\s+points|mtbf|mttf|escaped\s+defects|bug\s+counts?)\b",
    re.IGNORECASE,
)
_REF = re.compile(r"(?<![\w#!])(?:[A-Za-z0-9][\w.-]*)?[#!]\d+\b")
_NAMED = re.compile(
    r"\b(?P<kind>service|team)\s+(?P<name>[a-z0-9][\w.-]*[a-z0-9]|[a-z0-9])\b"
    r"|\b(?P<name2>[a-z0-9][\w.-]*[a-z0-9])\s+(?P<kind2>service|team)\b",
    re.IGNORECASE,
)
_NAME_STOP = {
    "a", "an", "the", "this", "that", "these", "each", "every", "one", "per", "its", "their",
    "our", "your", "his", "her", "any", "no", "other", "same", "which", "whole", "single",
    "is", "was", "were", "are", "be", "been", "and", "or", "of", "to", "in", "for", "with",
    "on", "at", "by", "as", "from", "level", "levels", "owner", "owners", "has", "had", "have",
    "can", "could", "should", "will", "would", "may", "might", "must", "it", "not", "only",
    "restored", "members", "member", "lead", "leads", "wide", "s", "whose", "platform",
    "review", "reviews", "reviewer", "reviewers", "health", "name", "names", "scope", "new",
    "user", "customer", "production", "delivery", "web", "backend", "frontend", "shared",
    "affected", "agreement", "agreements", "outage", "outages", "degraded", "more", "less",
    "entire", "own", "up", "down", "changes", "change", "size", "sizes", "structure", "work",
    "practices", "practice", "agrees", "decides", "ships", "deploys", "owns", "knows", "rates",
    "rate", "shipped", "made", "did", "does",
}  # fmt: skip


def _skip_name(name: str) -> bool:
    lower = name.lower()
    return lower in _NAME_STOP or lower.endswith(("ing", "ed", "ly", "ful", "facing", "'s"))


class _Checker:
    def __init__(self, facts: dict[str, Any]) -> None:
        self.f = _Facts(facts)
        quotable = facts.get("quotable") or {}
        self.identifiers = set(quotable.get("identifiers", ()))
        scope = facts.get("scope") or {}
        self.names = {s.lower() for s in facts.get("services") or ()}
        self.scope_kind = scope.get("kind")
        self.scope_name = str(scope.get("name", "")).lower()
        self.tenant = str(facts.get("tenant", "")).lower()

    # -- numbers ----------------------------------------------------------
    def number_words(self, where: str, text: str) -> Iterator[Problem]:
        masked = _PRONOUN_ONE.sub(" ", text)
        masked = _FRACTION.sub(" ", masked)
        masked = re.sub(r"\bhalf\b", " ", masked, flags=re.I)
        for m in NUMBER_WORD.finditer(masked):
            word = m.group(0)
            lower = word.lower()
            if lower == "second" and re.search(
                r"\b(?:a|per|one|each|every)\s+$", masked[: m.start()], re.I
            ):
                continue  # "a second", the unit of time
            if lower == "second" and re.match(
                r"\s+(?:review|look|opinion|pair)", masked[m.end() :], re.I
            ):
                continue  # "a second review": an ordinal of an action, not a quantity claim
            value = word_value(word)
            if value is None:
                continue
            if str(value) not in self.f.numbers:
                yield Problem(
                    where, "number_word", f'"{lower}" ({value}) is not a number from the facts'
                )

    def counts(self, where: str, text: str) -> Iterator[Problem]:
        for sentence in re.split(r"(?<=[.!?;])\s+", text):
            # A count may be the previous window's only when the sentence says so.
            sides = ("current", "previous") if _PAST_WINDOW.search(sentence) else ("current",)
            yield from self._counts(where, sentence, sides)

    def _counts(self, where: str, text: str, sides: tuple[str, ...]) -> Iterator[Problem]:
        for m in _OF_M.finditer(text):
            total = _num(m["m"])
            allowed = {
                Decimal(str(v)) for v in self.f.values("deployment_frequency", "deployments", sides)
            }
            if total is not None and total not in allowed:
                yield Problem(
                    where,
                    "count",
                    f"{canonical(total)} deployments is not a deployment count from the facts",
                )
            part = _num(m["n"])
            tail = (m["tail"] or "").lower()
            if part is not None and tail:
                key = "failed_deployments" if "failed" in tail else "rework_deployments"
                metric = "change_failure_rate" if "failed" in tail else "rework_rate"
                if part not in {Decimal(str(v)) for v in self.f.values(metric, key, sides)}:
                    yield Problem(
                        where,
                        "count",
                        f"{canonical(part)} {key.replace('_', ' ')} is not a count from the facts",
                    )
        totals = {m.start("m") for m in _OF_M.finditer(text)}
        for m in _COUNTED.finditer(text):
            if m.start("n") in totals:
                continue  # the "M" of "N of M deployments", checked above
            value = Decimal(2) if m["both"] else _num(m["n"])
            if value is None:
                continue
            noun = m["noun"].lower()
            adj = (m["adj"] or "").strip().lower()
            tail = (m["tail"] or "").strip().lower()
            if noun.startswith("incident"):
                opened = self.f.incidents
                allowed = {
                    Decimal(str(v))
                    for v in ((self.f.raw.get("incidents") or {}).values())
                    if isinstance(v, int)
                }
                if not opened and value > 0:
                    yield Problem(
                        where,
                        "entity",
                        "claims incidents, but the facts record none in this window",
                    )
                elif value not in allowed:
                    yield Problem(
                        where,
                        "count",
                        f"{canonical(value)} incidents is not an incident count from the facts",
                    )
                continue
            if noun.startswith(("failure",)) or adj == "failed" or "failed" in tail:
                metric, key = "change_failure_rate", "failed_deployments"
            elif noun.startswith(("rollback", "fix")) or adj == "unplanned" or "rolled" in tail:
                metric, key = "rework_rate", "rework_deployments"
            elif tail.startswith(("per", "a ", "each")):
                # the cadence of humane units: per day, week, month or year (facts keys)
                key = "per_" + tail.split()[-1]
                metric = "deployment_frequency"
                trend = self.f.metric(metric).get("trend") or {}
                allowed_s = set()
                for v in [
                    *self.f.values(metric, key),
                    *(trend.get(k) for k in ("best", "worst", "average")),
                ]:
                    if v is not None:
                        allowed_s |= _renderings(v)
                if canonical(value) not in allowed_s:
                    yield Problem(
                        where,
                        "count",
                        f"{canonical(value)} deployments {tail} is not a deployment rate "
                        "from the facts",
                    )
                continue
            else:
                metric, key = "deployment_frequency", "deployments"
            allowed = {Decimal(str(v)) for v in self.f.values(metric, key, sides)}
            if key == "deployments" and adj in ("", "production", "more", "separate", "new"):
                trend = self.f.metric(metric).get("trend") or {}
                allowed |= {
                    Decimal(str(v))
                    for v in (trend.get("best"), trend.get("worst"))
                    if v is not None
                }
            if value not in allowed:
                yield Problem(
                    where,
                    "count",
                    f"{canonical(value)} {key.replace('_', ' ')} is not a count from the facts",
                )

    # -- shares -----------------------------------------------------------
    def _share_values(self, topic: Entity | None, clause: str) -> list[float] | None:
        if topic is None:
            return None
        if topic.kind == "stage":
            shares = []
            for side in ("current", "previous"):
                b = (self.f.raw.get("lead_time_breakdown") or {}).get(side) or {}
                v = (b.get("share_pct") or {}).get(topic.stage)
                if v is not None:
                    shares.append(v)
            return shares
        if topic.metric == "deployment_frequency":
            return self.f.values("deployment_frequency", "deployment_days_pct")
        values = self.f.values(topic.metric or "", "rate_pct")
        if _SUCCESS.search(clause):
            values = [100 - v for v in values]
        return values

    def shares(self, where: str, clause: str, advice: bool) -> Iterator[Problem]:
        topic = _topic(clause)
        for m in _FRACTION.finditer(clause):
            frac = re.sub(r"[\s-]+", " ", m["frac"].lower())
            target = _FRACTIONS[frac]
            values = self._share_values(topic, clause[m.start() :]) if topic else None
            if values is None:
                all_pct = {
                    canonical(half_up(float(p), 0))
                    for p in (self.f.raw.get("quotable") or {}).get("percent", ())
                }
                if canonical(half_up(target, 0)) not in all_pct:
                    yield Problem(where, "share", f'"{frac}" matches no share in the facts')
                continue
            if not values:
                yield Problem(
                    where,
                    "share",
                    f'"{frac}" of {self.f.label(topic)}: the facts have no such share',
                )
            elif not any(half_up(v, 0) == half_up(target, 0) for v in values):
                shown = ", ".join(f"{canonical(Decimal(str(v)))}%" for v in values)
                yield Problem(
                    where,
                    "share",
                    f'"{frac}" of {self.f.label(topic)} is {canonical(half_up(target, 0))}%, '
                    f"the facts give {shown}",
                )
        for m in _PCT_OF.finditer(clause):
            sub_topic = topic
            noun = m["noun"].lower()
            if noun == "days":
                sub_topic = Entity("metric", "deployment_frequency", "deployment_days_pct")
            if sub_topic is None or noun == "changes":
                continue  # a bare percentage: the digit check already ties it to the facts
            values = self._share_values(sub_topic, clause)
            value = Decimal(m["n"])
            if not values or canonical(value) not in set().union(*(_renderings(v) for v in values)):
                yield Problem(
                    where,
                    "share",
                    f"{canonical(value)}% is not the share of {self.f.label(sub_topic)} "
                    "in the facts",
                )
        for m in _MOST.finditer(clause) if not advice else ():
            word = m.group(0).lower()
            if re.match(
                r"\s+(?:of\s+all\s+)?(?:important|recent|common|useful|effective|likely|often)\b",
                clause[m.end() :],
                re.I,
            ):
                continue
            values = self._share_values(topic, clause) if topic else None
            if topic is None:
                yield Problem(where, "share", f'"{word}" is not tied to a share in the facts')
            elif not values or not any(v > 50 for v in values[:1]):
                yield Problem(
                    where,
                    "share",
                    f'"{word}" of {self.f.label(topic)}: the facts give a share of 50% or less',
                )

    # -- multiples and changes -------------------------------------------
    def _pair(self, e: Entity) -> tuple[float | None, float | None]:
        if e.kind in ("metric", "stage"):
            return self.f.value(e, "current"), self.f.value(e, "previous")
        return None, None

    def multiples(self, where: str, clauses: list[_Clause], i: int) -> Iterator[Problem]:
        clause = clauses[i].text
        for m in _MULTIPLE.finditer(clause):
            comparative = m["after"] or re.match(_AFTER_MULTIPLE, clause[m.end() :], re.I)
            counted = m["n"] or (m["word"] or "").lower() == "twice"
            if (
                counted
                and not comparative
                and not re.search(rf"\b(?:{_RAW_UP}|{_RAW_DOWN})\s*$", clause[: m.start()], re.I)
            ):
                continue  # "deployed 3 times": a count, read by the number rules
            if m["word"]:
                word = re.sub(r"\s+", " ", m["word"].lower())
                factor = Decimal(2 if word == "cut in half" else _WORD_MULTIPLES[word])
            elif m["nfold"]:
                word = m["nfold"].lower()
                factor = Decimal(word_value(word.removesuffix("fold")) or 0)
            else:
                word = re.sub(r"\s+", " ", m.group(0).strip().lower())
                factor = _num(m["n"]) or Decimal(0)
            rest = clause[m.end() : m.end() + 25].lower()
            before = clause[: m.start()].lower()
            e = _about(clauses, i, m.start())
            if e is None or e.kind not in ("metric", "stage"):
                yield Problem(where, "multiple", f'"{word}" is not tied to a metric of the facts')
                continue
            cur, prev = self._pair(e)
            if cur is None or prev is None or cur <= 0 or prev <= 0:
                yield Problem(
                    where,
                    "multiple",
                    f'"{word}" of {self.f.label(e)}: the facts give no ratio for it',
                )
                continue
            timed = e.kind == "stage" or e.metric in ("lead_time", "recovery_time")
            if word in ("halved", "halves", "cut in half") or re.match(
                r"\s*(?:fewer|lower|less|smaller|shorter)", rest
            ):
                sense = "down"
            elif re.match(r"\s*(?:as\s+)?(?:fast|quick|faster|quicker)", rest):
                sense = "down" if timed else "up"
            elif re.match(r"\s*(?:as\s+)?(?:slow|slower)", rest):
                sense = "up" if timed else "down"
            elif (
                word.startswith(("doubl", "tripl", "trebl", "quadrupl"))
                or m["nfold"]
                or "fold" in word
            ):
                sense = "down" if re.search(rf"\b(?:{_RAW_DOWN})\s*$", before) else "up"
            elif re.match(
                r"\s*(?:more|higher|larger|longer|as\s+(?:many|long|high|often|much))", rest
            ):
                sense = "up"
            else:
                sense = "either"
            ratios = {"up": cur / prev, "down": prev / cur}
            candidates = [ratios[sense]] if sense != "either" else list(ratios.values())
            if not any(_multiple_fits(factor, r, before) for r in candidates):
                shown = canonical(half_up(max(ratios.values()), 1))
                moved = "rose" if cur > prev else "fell" if cur < prev else "did not move"
                yield Problem(
                    where,
                    "multiple",
                    f'"{word}" of {self.f.label(e)}: it {moved} by a factor of {shown} '
                    "in the facts",
                )
        for m in _BY_FRACTION.finditer(clause):
            frac = re.sub(r"[\s-]+", " ", m["frac"].lower())
            e = _about(clauses, i, m.start())
            if e is None or e.kind != "metric" or e.key is not None:
                continue
            relative = (self.f.metric(e.metric or "").get("change") or {}).get("relative_pct")
            target = half_up(_FRACTIONS[frac], 0)
            if relative is None or half_up(abs(relative), 0) != target:
                yield Problem(
                    where,
                    "multiple",
                    f'by "{frac}" ({canonical(target)}%): not the relative change of '
                    f"{self.f.label(e)} in the facts",
                )
        for m in _BY.finditer(clause):
            unit = m["unit"].lower()
            value = _num(m["n"])
            e = _about(clauses, i, m.start())
            if value is None or e is None or e.kind not in ("metric", "stage"):
                continue  # a bare "by N": the number rules still tie N to the facts
            allowed: set[str] = set()
            if e.kind == "stage":
                moved = ((self.f.raw.get("lead_time_breakdown") or {}).get("change") or {}).get(
                    f"{e.stage}_hours"
                )
                if moved is not None:
                    allowed |= _renderings(moved)
            else:
                change = self.f.metric(e.metric or "").get("change") or {}
                cur, prev = self._pair(e)
                if (
                    unit.startswith(("%", "percent", "per"))
                    and change.get("relative_pct") is not None
                ):
                    allowed |= _renderings(change["relative_pct"])
                percent = unit.startswith(("%", "percent", "per"))
                if (
                    e.key is None
                    and change.get("absolute") is not None
                    and (change.get("unit") or not percent)
                ):
                    allowed |= _renderings(change["absolute"])
                if e.key is not None and cur is not None and prev is not None:
                    allowed |= _renderings(cur - prev)
            if canonical(value) not in allowed:
                yield Problem(
                    where,
                    "multiple",
                    f"by {canonical(value)} {unit}: not the change of {self.f.label(e)} "
                    "in the facts",
                )

    # -- directions -------------------------------------------------------
    def directions(
        self, where: str, clauses: list[_Clause], i: int, advice: bool
    ) -> Iterator[Problem]:
        clause = clauses[i].text
        hedged = bool(
            _HEDGE.search(" ".join(c.text for c in clauses if c.sentence == clauses[i].sentence))
        )
        for m in _DIRECTION.finditer(clause):
            kind = m.lastgroup or ""
            word = re.sub(r"\s+", " ", m.group(0).lower())
            if kind == "updown":
                word = word.split()[-1]
                kind = word
            if (
                advice
                and (
                    kind in _COMPARATIVE
                    or word
                    in (
                        "higher",
                        "lower",
                        "longer",
                        "shorter",
                        "better",
                        "worse",
                        "more often",
                        "less often",
                    )
                )
                and not _ANCHOR.search(clause)
            ):
                continue  # advice: "recover faster", "lower risk"
            if advice and word.endswith("ing") and not _ANCHOR.search(clause):
                continue
            e = _about(clauses, i, m.start())
            if e is None:
                continue
            yield from self._direction(where, word, kind, e, clause, hedged)

    def _direction(
        self, where: str, word: str, kind: str, e: Entity, clause: str, hedged: bool
    ) -> Iterator[Problem]:
        label = self.f.label(e)
        if e.kind == "overall":
            tiers = self.f.raw.get("tiers") or {}
            move = tiers.get("overall_move")
            want = {"up": "up", "good": "up", "down": "down", "bad": "down"}.get(kind)
            if want is None:
                return
            if move is None:
                yield Problem(
                    where,
                    "direction",
                    f'"{word}" of the overall tier: the facts have no previous tier',
                )
            elif move != want:
                yield Problem(
                    where,
                    "direction",
                    f'"{word}" of the overall tier: it moved {move} in the facts',
                )
            return
        if e.kind == "incidents":
            yield Problem(
                where, "entity", f'"{word}" of incidents: the facts have no previous incident count'
            )
            return
        if e.kind == "metric" and _TREND.search(clause):
            trend = (self.f.metric(e.metric or "").get("trend") or {}).get("direction")
            better = {"good": True, "bad": False}.get(kind)
            if better is None and kind in ("up", "down"):
                better = (kind == "down") == self.f.lower_is_better(e)
            if better is None:
                return
            want = "improving" if better else "worsening"
            if trend != want and not (hedged and trend == "flat"):
                yield Problem(
                    where,
                    "direction",
                    f'"{word}" of the {label} trend: the facts say {trend or "no trend"}',
                )
            return
        cur, prev = self._pair(e)
        if cur is None:
            yield Problem(where, "entity", f'"{word}" of {label}: it has no data in this window')
            return
        if prev is None:
            yield Problem(
                where, "direction", f'"{word}" of {label}: the facts have no previous value'
            )
            return
        raw = (
            1
            if half_up(cur, 1) > half_up(prev, 1)
            else -1
            if half_up(cur, 1) < half_up(prev, 1)
            else 0
        )
        lower_better = self.f.lower_is_better(e)
        timed = e.kind == "stage" or e.metric in ("lead_time", "recovery_time")
        if kind in ("fast", "slow"):
            if timed:
                kind = "down" if kind == "fast" else "up"
            elif e.metric == "deployment_frequency":
                kind = "up" if kind == "fast" else "down"
            else:
                return
        if kind in ("up", "down"):
            claimed = 1 if kind == "up" else -1
            if raw != claimed:
                actual = "rose" if raw > 0 else "fell" if raw < 0 else "did not change"
                yield Problem(where, "direction", f'"{word}" of {label}: it {actual} in the facts')
            return
        claimed_better = kind == "good"
        improved = raw != 0 and ((raw < 0) == lower_better)
        verdicts = (
            (self.f.metric(e.metric or "").get("verdict") or {})
            if e.kind == "metric" and e.key is None
            else {}
        )
        verdict = verdicts.get("previous")
        if verdict is not None:
            # Allowed when the verdict against the previous window or against the baseline
            # says so (the same reading as trend_claims.py), or when the sentence hedges.
            wanted = "improved" if claimed_better else "worsened"
            if wanted in (verdict, verdicts.get("baseline")) or hedged:
                return
            judged = (
                f'the facts judge the move "{verdict}"; say it is within normal variation'
                if verdict not in ("improved", "worsened")
                else f"the facts judge it {verdict}"
            )
            yield Problem(where, "verdict", f'"{word}" of {label}: {judged}')
            return
        if raw == 0:
            yield Problem(
                where, "direction", f'"{word}" of {label}: it did not change in the facts'
            )
        elif improved != claimed_better:
            actual = "improved" if improved else "worsened"
            yield Problem(where, "direction", f'"{word}" of {label}: it {actual} in the facts')

    # -- quantifiers ------------------------------------------------------
    def quantifiers(self, where: str, clause: str) -> Iterator[Problem]:
        deployments = (self.f.metric("deployment_frequency").get("current") or {}).get(
            "deployments"
        )
        failed = (self.f.metric("change_failure_rate").get("current") or {}).get(
            "failed_deployments"
        )
        rework = (self.f.metric("rework_rate").get("current") or {}).get("rework_deployments")
        if _EVERY_DAY.search(clause):
            days = (self.f.metric("deployment_frequency").get("current") or {}).get(
                "deployment_days_pct"
            )
            if days != 100:
                yield Problem(
                    where,
                    "quantifier",
                    f"claims a deployment every day, but the facts give {days}% of days",
                )
        for m in _QUANT.finditer(clause):
            q = (m["q"] or m["q2"] or "").lower()
            q = "no" if q in ("none", "nothing", "no", "not a single", "not one", "zero") else "all"
            noun = (m["noun"] or "").lower()
            rest = clause[m.end() :]
            if m["q2"]:
                # "none was an unplanned fix", "none failed", "nothing failed"
                noun = "deployments"
            if noun.startswith("incident"):
                if (
                    q == "no"
                    and (self.f.incidents or 0) > 0
                    and not re.match(r"\s+(?:without|linked)", rest, re.I)
                ):
                    yield Problem(
                        where,
                        "quantifier",
                        f"claims no incidents, but the facts record {self.f.incidents}",
                    )
                if q == "all" and re.search(r"\blinked\b", rest, re.I):
                    unlinked = (self.f.raw.get("incidents") or {}).get("without_deployment") or 0
                    if unlinked:
                        yield Problem(
                            where,
                            "quantifier",
                            f"claims every incident was linked, but {unlinked} were not",
                        )
                continue
            if noun.startswith("change"):
                continue  # the facts count deployments, not changes, as failed or not
            if _PAST_REWORK.search(rest):
                key, actual = "unplanned fixes", rework
            elif _PAST_FAILED.search(rest) or noun.startswith("failure"):
                key, actual = "failed deployments", failed
            elif _SUCCESS.search(rest):
                key, actual = (
                    "successful deployments",
                    None if failed is None or deployments is None else deployments - failed,
                )
            elif _PAST_MADE.search(rest) or (
                q == "no" and re.match(r"\s+(?:in|this|during|were|was)\b", rest)
            ):
                key, actual = "deployments", deployments
            else:
                continue
            if noun.startswith("failure"):
                q, key, actual = "no" if q == "no" else "all", "failed deployments", failed
                if q == "all":
                    continue  # "all failures were …" says nothing about how many
            negated = q == "all" and re.search(r"\bnot\s+$", clause[: m.start()], re.I)
            if actual is None:
                yield Problem(where, "quantifier", f"claims about {key}: the facts have no data")
            elif negated:
                # "not every deployment succeeded": at least one was not
                if deployments is not None and actual == deployments:
                    yield Problem(
                        where, "quantifier", f"claims not every deployment is among {key}"
                    )
            elif q == "no" and actual != 0:
                yield Problem(where, "quantifier", f"claims no {key}, but the facts count {actual}")
            elif q == "all" and (deployments is None or actual != deployments or deployments == 0):
                yield Problem(
                    where,
                    "quantifier",
                    f"claims every deployment among {key}, but the facts count {actual} "
                    f"of {deployments}",
                )

    # -- entities ---------------------------------------------------------
    def entities(self, where: str, text: str, raw_text: str) -> Iterator[Problem]:
        for m in _REF.finditer(raw_text):
            if m.group(0) not in self.identifiers:
                yield Problem(
                    where,
                    "entity",
                    "cites a change ref that is not among the facts' slowest changes",
                )
        for m in _NAMED.finditer(raw_text):
            kind = (m["kind"] or m["kind2"] or "").lower()
            name = (m["name"] or m["name2"] or "").lower()
            if _skip_name(name):
                continue
            if kind == "service" and name not in self.names and name != self.scope_name:
                yield Problem(
                    where, "entity", "names a service that is not in the scope of the facts"
                )
            if kind == "team" and not (self.scope_kind == "team" and name == self.scope_name):
                yield Problem(where, "entity", "names a team that is not the scope of the facts")
        if not self.f.incidents and _INCIDENT_CLAIM.search(text):
            yield Problem(
                where, "entity", "claims incidents, but the facts record none in this window"
            )
        for clause in _SENTENCE.split(text):
            m = _UNKNOWN_METRIC.search(clause)
            if m and (
                re.search(r"\d", clause) or NUMBER_WORD.search(clause) or _DIRECTION.search(clause)
            ):
                yield Problem(
                    where, "entity", f'"{m.group(0).lower()}" is not a metric of the facts'
                )


@lru_cache(maxsize=64)
def _identifier_pattern(identifiers: tuple[str, ...]) -> re.Pattern[str] | None:
    if not identifiers:
        return None
    alternatives = "|".join(re.escape(i) for i in sorted(identifiers, key=len, reverse=True))
    return re.compile(rf"(?<![\w.])(?:{alternatives})(?!\w)")


def mask_identifiers(text: str, identifiers: Iterable[str], mark: str = " ID ") -> str:
    """`text` with every identifier (window label, date, name, change ref) replaced by `mark`,
    longest first, so the digits in them are not read as quantities.

    >>> mask_identifiers("checkout#42 in 2026-W05", ["2026-W05", "checkout#42"])
    ' ID  in  ID '
    """
    pattern = _identifier_pattern(tuple(sorted(set(identifiers))))
    return text if pattern is None else pattern.sub(mark, text)


class Checker:
    """The claim rules over one facts document; `problems(where, text)` per piece of prose."""

    def __init__(self, facts: dict[str, Any], identifiers: Iterable[str] = ()) -> None:
        self._rules = _Checker(facts)
        self._identifiers = tuple(sorted(set(identifiers) | self._rules.identifiers))

    def problems(self, where: str, text: str) -> list[Problem]:
        """Every claim in `text` (found at `where`) that the facts do not support."""
        checker = self._rules
        masked = mask_identifiers(text, self._identifiers)
        advice = ".title" in where or ".why" in where
        found: list[Problem] = list(checker.entities(where, masked, text))
        found += checker.number_words(where, masked)
        found += checker.counts(where, masked)
        clauses = _clauses(masked)
        for i, clause in enumerate(clauses):
            found += checker.shares(where, clause.text, advice)
            found += checker.multiples(where, clauses, i)
            found += checker.directions(where, clauses, i, advice)
            found += checker.quantifiers(where, clause.text)
        unique: dict[str, Problem] = {}
        for p in found:
            unique.setdefault(str(p), p)
        return list(unique.values())


def problems(
    where: str, text: str, facts: dict[str, Any], identifiers: Iterable[str] = ()
) -> list[Problem]:
    """Every claim in `text` (found at `where`) that the facts do not support."""
    return Checker(facts, identifiers).problems(where, text)
