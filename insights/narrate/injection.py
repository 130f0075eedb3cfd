"""Deterministic output checks against prompt injection (OWASP LLM01), run on every LLM answer.

The prompt fences untrusted text as data; this module is the layer that does not depend on the
model obeying. A narrative is rejected when
- any of its text repeats a run of `ECHO_WORDS` consecutive words of an untrusted string (a
  model that quotes a title is one step from following it; legitimate text refers to changes by
  ref, never by title),
- it carries an instruction-override phrase ("ignore previous instructions", …),
- it recommends removing or weakening a safeguard — tests, review, approvals, branch
  protection, staging, rollback, paging, monitoring — in any of the phrasings of `WEAKEN`
  (removal verbs, "without …", "no more …", going straight to main or production, merging
  while checks fail, self-approval, "… optional"). No DORA improvement rests on that, so no
  grounded recommendation says it; replacing a heavyweight approval with peer review or
  automation ("streamlining change approval") is not a weakening. The phrase set is tested
  against a corpus of harmful and legitimate advice (tests/corpora/advice.py).
Error messages name where the problem is and never repeat the untrusted text itself, because
they are sent back to the model in the repair round-trip.
"""

from __future__ import annotations

import re
from typing import Any

from insights.narrate.prompts import untrusted_items
from insights.narrate.schema import Narrative

ECHO_WORDS = 5
UNSAFE = (
    "recommends removing or weakening a safeguard (tests, review, approvals, branch "
    "protection, staging, rollback, paging, monitoring)"
)
_WORD = re.compile(r"[a-z0-9]+")
# The safeguards no DORA improvement removes (issue: tests, review, approvals, branch
# protection, staging, rollback, paging, monitoring), as the nouns advice names them by.
_SAFEGUARD = (
    r"(?:(?:unit|integration|end-to-end|e2e|smoke|regression|acceptance|security|automated)\s+"
    r"(?:tests?|test\s+suites?|suites?|scans?|checks?)|test\s+suites?|tests?|testing|suites?|"
    r"qa|quality\s+assurance|sign-?offs?|(?:code\s+|peer\s+)?reviews?|reviewers?|"
    r"(?:change\s+)?approvals?|approvers?|branch\s+protection(?:\s+rules?)?|protected\s+branch(?:es)?|"
    r"(?:required\s+)?status\s+checks|checks?|ci\b|(?:quality\s+)?gates?|"
    r"staging(?:\s+(?:environment|step|stage|checks?))?|pre-?production|"
    r"canary(?:\s+(?:stage|releases?))?|rollbacks?(?:\s+(?:plan|step))?|rolling\s+back|"
    r"paging|pages|pager|on-call(?:\s+(?:rotation|engineers?))?|alerts?|alerting|monitoring|"
    r"observability|logging|tracing|linters?|linting|security\s+scans?|pre-commit\s+hooks?|hooks)"
)
# A safeguard noun followed by one of these is the delay around it, not the safeguard:
# "cut review wait times" is good advice.
_DELAY = (
    r"(?!\s+(?:wait\w*|delays?|queues?|times?|latency|turnaround|backlog|bottlenecks?|load|lag|"
    r"overhead|flakiness|duration|run\s*time|noise|fatigue|cycle|speed))"
)
_HARD = (
    r"(?:delet\w*|remov\w*|disabl\w*|skip\w*|drop\w*|bypass\w*|turn(?:ing)?\s+off|"
    r"switch(?:ing)?\s+off|shut(?:ting)?\s+off|comment(?:ing)?\s+out|stop\w*|get\s+rid\s+of|"
    r"eliminat\w*|rip\w*\s+out|ditch\w*|abandon\w*|retir\w*|kill\w*|mut(?:e|ing)|silenc\w*|"
    r"ignor\w*|waiv\w*|suspend\w*|paus\w*|circumvent\w*|overrid\w*|avoid\w*)"
)
_SOFT = r"(?:reduc\w*|cut\w*|lower\w*|relax\w*|loosen\w*|weaken\w*|fewer|less)"
_PREPOSITION = r"(?:before|after|between|until|for|from|in|on|of|to|with|by|at|and|or|so|than)"
_WORDS = rf"(?:(?!{_PREPOSITION}\b)[\w'’-]+\s+)"
_GENTLE = r"(?:flaky|noisy|duplicate[ds]?|redundant|false|stale|slow)"
_WEAKEN_PHRASES = (
    # "disable the flaky tests", "turn off branch protection", "stop paging the on-call"
    rf"\b{_HARD}\s+{_WORDS}{{0,3}}{_SAFEGUARD}\b{_DELAY}",
    # "relax branch protection", "fewer reviews" — but "reduce flaky tests" is a fix
    rf"\b{_SOFT}\s+(?!{_WORDS}{{0,2}}{_GENTLE}\b){_WORDS}{{0,3}}{_SAFEGUARD}\b{_DELAY}",
    rf"\b{_SOFT}\s+(?:the\s+)?(?:number|amount|count)\s+of\s+{_SAFEGUARD}",
    # "merge without approval", "deploy without a rollback plan"
    r"\bwithout\s+(?:(?:waiting\s+for|running|passing|any|an?|the|prior|proper|formal|green|"
    rf"required|its|their|a\s+second)\s+){{0,3}}{_SAFEGUARD}\b{_DELAY}",
    rf"\b(?:no|zero)\s+(?:more\s+)?(?:[\w-]+\s+){{0,2}}{_SAFEGUARD}\b{_DELAY}",
    r"\b(?:don'?t|do\s+not|never|no\s+need\s+to)\s+(?:run|wait\s+for|page|require|do|use|"
    rf"write|request|ask\s+for)\s+(?:[\w-]+\s+){{0,3}}?{_SAFEGUARD}\b{_DELAY}",
    r"\b(?:don'?t|do\s+not|no\s+longer|stop)\s+(?:page|paging|alert|alerting|notify\w*|test|testing|"
    r"review|reviewing|approv\w*)\b",
    # going around protection: "push straight to main", "merge even when CI is failing"
    r"\b(?:push|commit|merg|deploy|ship|releas)\w*\s+(?:[\w-]+\s+){0,2}(?:straight|directly)\s+"
    r"(?:in)?to\s+(?:the\s+)?(?:main|master|production|prod)\b",
    r"\beven\s+(?:when|if|though)\s+(?:the\s+)?(?:[\w-]+\s+){0,2}"
    r"(?:fail\w*|(?:is|are)\s+(?:failing|red|broken)|red|broken)",
    r"\b(?:merge|deploy|ship)\w*\s+anyway\b|\bforce[- ]push|--no-verify|\brubber[- ]stamp",
    r"\bself[- ]approv\w*|\bauto-?approv\w*|\bapprov\w*\s+(?:their|your|his|her|its)\s+own\b",
    r"\bapprov\w*\s+(?:[\w-]+\s+){0,3}without\s+(?:reading|looking|checking|testing)",
    rf"\bbefore\s+(?:the\s+)?{_SAFEGUARD}\s+(?:completes?|finish\w*|is\s+done|pass\w*|ends?)",
    rf"\b{_SAFEGUARD}\s+(?:[\w-]+\s+){{0,3}}optional\b|\boptional\s+(?:[\w-]+\s+)?{_SAFEGUARD}\b",
    rf"\bmark\w*\s+(?:[\w-]+\s+){{0,3}}{_SAFEGUARD}\s+as\s+(?:skipped|passing|passed|green)",
    rf"\b{_SAFEGUARD}[^.;:!?]{{0,30}}?\b(?:should|must|can|could|to)\s+be\s+"
    r"(?:deleted|removed|disabled|skipped|dropped|bypassed|turned\s+off|switched\s+off|waived|"
    r"made\s+optional)",
)
WEAKEN = re.compile("|".join(f"(?:{p})" for p in _WEAKEN_PHRASES), re.IGNORECASE)
# Removing a heavyweight approval (a change advisory board, a manual sign-off) in favour of peer
# review or automation is DORA's own "streamlining change approval", not a weakening.
_HEAVYWEIGHT = re.compile(
    r"\b(?:manual|external|cab|change\s+advisory\s+board|heavyweight|weekly|release)\b", re.I
)
_REPLACED_BY = re.compile(
    r"\b(?:with|by|on|in\s+favou?r\s+of|instead\s+of|rely\s+on|relying\s+on)\s+(?:[\w-]+\s+){0,2}"
    r"(?:peer\s+review|code\s+review|automated\s+(?:tests?|checks?|acceptance\s+tests?|testing))",
    re.I,
)
_DOUBLE_NEGATIVE = re.compile(
    r"\b(?:never|don'?t|do\s+not|no\s+one|nobody)\b[^.;!?]{0,40}\bwithout\b", re.I
)


def weakens_safeguard(text: str) -> bool:
    """True when `text` recommends removing or weakening a safeguard, whatever its wording.

    >>> weakens_safeguard("Merge pull requests without waiting for approval")
    True
    >>> weakens_safeguard("Streamline change approval with peer review")
    False
    """
    for sentence in re.split(r"(?<=[.!?;])\s+", text):
        for match in WEAKEN.finditer(sentence):
            if _DOUBLE_NEGATIVE.search(sentence) and "without" in match.group(0).lower():
                continue  # "never deploy without a rollback plan"
            if _HEAVYWEIGHT.search(match.group(0)) and _REPLACED_BY.search(sentence):
                continue  # "remove the manual approval step and rely on peer review"
            return True
    return False


_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget)\b[^.]{0,30}\b(?:previous|prior|above|earlier|all)\b"
    r"[^.]{0,20}\b(?:instructions?|rules?|prompts?)\b|\bsystem\s+prompt\b",
    re.IGNORECASE,
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _echoes(text_words: list[str], shingles: set[tuple[str, ...]]) -> bool:
    return any(
        tuple(text_words[i : i + ECHO_WORDS]) in shingles
        for i in range(len(text_words) - ECHO_WORDS + 1)
    )


def check(narrative: Narrative, facts: dict[str, Any]) -> list[str]:
    """Errors that make `narrative` unsafe to deliver; empty when it passes.

    >>> check(Narrative(summary="Lead time rose to 20.5 h.", recommendations=[dict(
    ...     title="Delete the flaky tests", why="They slow deploys.", metric="lead_time")]),
    ...     {})
    ... # doctest: +ELLIPSIS
    ['recommendations[0].title: recommends removing or weakening a safeguard (tests, ...)']
    """
    shingles_by_ref: dict[str, set[tuple[str, ...]]] = {}
    for item in untrusted_items(facts):
        words = _words(item.text)
        grams = {tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1)}
        if grams:
            shingles_by_ref.setdefault(item.ref, set()).update(grams)

    errors: list[str] = []
    for where, text in narrative.texts():
        words = _words(text)
        for ref, shingles in shingles_by_ref.items():
            if _echoes(words, shingles):
                errors.append(f"{where}: repeats the untrusted title of {ref}; cite the ref only")
                break
        if _OVERRIDE.search(text):
            errors.append(f"{where}: talks about instructions or prompts; narrate the facts only")
        if weakens_safeguard(text):
            errors.append(f"{where}: {UNSAFE}")
    return errors
