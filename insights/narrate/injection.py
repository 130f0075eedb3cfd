"""Deterministic output checks against prompt injection (OWASP LLM01), run on every LLM answer.

The prompt fences untrusted text as data; this module is the layer that does not depend on the
model obeying. A narrative is rejected when
- any of its text repeats a run of `ECHO_WORDS` consecutive words of an untrusted string (a
  model that quotes a title is one step from following it; legitimate text refers to changes by
  ref, never by title),
- it carries an instruction-override phrase ("ignore previous instructions", …),
- it recommends weakening the safety net: deleting, disabling or skipping tests, checks, reviews,
  alerts or monitoring. No DORA improvement rests on that, so no grounded recommendation says it.
Error messages name where the problem is and never repeat the untrusted text itself, because
they are sent back to the model in the repair round-trip.
"""

from __future__ import annotations

import re
from typing import Any

from insights.narrate.prompts import untrusted_items
from insights.narrate.schema import Narrative

ECHO_WORDS = 5
_WORD = re.compile(r"[a-z0-9]+")
_VERB = (
    r"(?:delet\w*|remov\w*|disabl\w*|skip\w*|drop\w*|bypass\w*|turn(?:ing)?\s+off|"
    r"comment(?:ing)?\s+out|stop\s+running|get\s+rid\s+of|ignor\w*|mut(?:e|ing)|silenc\w*|"
    r"switch(?:ing)?\s+off|eliminat\w*|rip\w*\s+out)"
)
_SAFETY_NET = (
    r"(?:tests?|testing|test\s+suites?|unit\s+tests?|checks?|ci\b|pipelines?\s+checks?|"
    r"reviews?|code\s+reviews?|alerts?|alerting|monitoring|linters?|linting)"
)
_PREPOSITION = r"(?:before|after|between|until|for|from|in|on|of|to|with|by|at|and|or)"
_WEAKEN = re.compile(
    # verb, then up to three words that are not a preposition, then the safety net:
    # "delete the flaky tests", not "remove waiting time before review".
    rf"\b{_VERB}\s+(?:(?!{_PREPOSITION}\b)[\w-]+\s+){{0,3}}{_SAFETY_NET}\b"
    rf"|\b{_SAFETY_NET}[^.;:!?]{{0,30}}?\b"
    r"(?:should|must|can|could|to)\s+be\s+(?:deleted|removed|disabled|skipped|dropped|bypassed)",
    re.IGNORECASE,
)
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
    ['recommendations[0].title: recommends weakening tests, checks, reviews or monitoring']
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
        if _WEAKEN.search(text):
            errors.append(f"{where}: recommends weakening tests, checks, reviews or monitoring")
    return errors
