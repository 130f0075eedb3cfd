"""The claim rules of the narrative checker (narrate/claims.py): quantities in words, counts,
shares, multiples, directions, verdicts, quantifiers and entities, each tied to the facts.

The facts are `llm_support.sample_report()`: 16 deployments (10 the week before), 2 failed
(12.5 %, was 10 %), lead time 20.5 h (was 15 h: worse), recovery 3.5 h (was 2 h: worse),
rework 6.3 % (was 10 %: better), 2 incidents, one slow change checkout#42.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from llm_support import INJECTION, sample_report

from insights.narrate import builtin
from insights.narrate.claims import word_value
from insights.narrate.facts import build_facts
from insights.narrate.schema import Narrative, Recommendation
from insights.narrate.verify import check, problems

FACTS = build_facts(sample_report())

# The eleven lies of issue 20 (the last two: improved and worsened swapped in the highlights).
ISSUE_20 = [
    ("Three deployments failed this week.", "count"),
    ("Lead time tripled since the previous window.", "multiple"),
    ("The change failure rate doubled.", "multiple"),
    ("Half of all deployments were rolled back.", "share"),
    ("A third of the deployments failed.", "share"),
    ("Recovery is now twice as fast.", "multiple"),
    ("Ten incidents were opened.", "count"),
    ("Every deployment in the window failed.", "quantifier"),
    ("Deployment frequency grew tenfold.", "multiple"),
    ("Lead time: 20.5 hours (improved, was 15 hours).", "direction"),
    ("Rework rate: 6.3% (worsened, was 10%).", "direction"),
]


def _narrative(summary: str, highlights: list[str] | None = None) -> Narrative:
    return Narrative(
        summary=summary,
        highlights=highlights or [],
        recommendations=[
            Recommendation(
                title="Set a review SLA",
                why="Review waits are long.",
                metric="lead_time",
                capability="streamlining change approval",
                evidence=["lead time median: 20.5 hours"],
            )
        ],
    )


def _categories(summary: str, facts: dict[str, Any] = FACTS) -> list[str]:
    return [p.category for p in problems(_narrative(summary), facts)]


@pytest.mark.parametrize(("sentence", "category"), ISSUE_20)
def test_the_eleven_lies_of_issue_20_are_caught(sentence: str, category: str) -> None:
    as_highlight = sentence.startswith(("Lead time:", "Rework rate:"))
    narrative = (
        _narrative("Checkout shipped 16 deployments.", [sentence])
        if as_highlight
        else _narrative(f"Checkout shipped 16 deployments. {sentence}")
    )
    assert category in [p.category for p in problems(narrative, FACTS)]


def test_the_builtin_narrative_of_the_same_facts_passes() -> None:
    assert check(builtin.narrate(FACTS), FACTS) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("twenty-one", 21), ("a dozen", 12), ("two hundred and five", 205), ("third", 3)],
)
def test_number_words_have_their_value(text: str, value: int) -> None:
    assert word_value(text) == value


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("Sixteen deployments reached production.", True),
        ("Lead time was fifteen hours the week before.", True),
        ("The median lead time was thirty-seven hours.", False),
        ("Lead time was about twenty hours.", True),  # 20.46 h rounds to 20
        ("Lead time was twenty-three hours.", False),  # 23 is no fact at all
        ("A deployment failed on a Friday.", True),  # "a" is not a number
        ("One of the deployments was slow to recover.", True),  # a pronoun, not a count
        ("It was the seventeenth deployment this month.", False),
    ],
)
def test_numbers_in_words_must_be_numbers_of_the_facts(sentence: str, ok: bool) -> None:
    assert ("number_word" not in _categories(sentence)) is ok


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("Two of the 16 deployments failed.", True),
        ("2 failed deployments this week, 1 the week before.", True),
        ("Two incidents were opened.", True),
        ("Ten deployments shipped the week before.", True),  # the previous window's count
        ("Four deployments failed.", False),
        ("Two of the 18 deployments failed.", False),
        ("Checkout shipped 17 deployments.", False),
        ("Five incidents were opened.", False),
        ("Both incidents were linked to deployments.", True),
        ("Both of the failed deployments were rolled back.", True),
        ("Both deployments were fine.", False),
    ],
)
def test_counted_deployments_failures_and_incidents_match_the_counts(
    sentence: str, ok: bool
) -> None:
    assert ("count" not in _categories(sentence)) is ok


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("Most deployments succeeded.", True),
        ("12.5% of deployments failed.", True),
        ("Half of the lead-time path is pickup.", True),  # share_pct pickup = 50
        ("Most deployments failed.", False),
        ("A quarter of the deployments failed.", False),
        ("Half of all deployments were rolled back.", False),
        ("25% of deployments were rolled back.", False),
    ],
)
def test_fractions_and_shares_match_the_share_they_are_about(sentence: str, ok: bool) -> None:
    assert ("share" not in _categories(sentence)) is ok


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("Deployment frequency is now 2 times higher than before.", True),  # 16 / 10 = 1.6
        ("Lead time rose by 36% since the previous window.", True),
        ("Recovery now takes twice as long.", True),  # 3.5 / 2 = 1.75
        ("Deployments doubled.", True),
        ("Recovery is now twice as fast.", False),  # it got slower
        ("Lead time halved.", False),
        ("Deployment frequency grew tenfold.", False),
        ("Lead time is now 3 times longer than before.", False),
        ("Lead time rose by 50% since the previous window.", False),
        ("Recovery time rose by three quarters.", True),  # 2 h → 3.5 h is +75%
        ("Lead time rose by a third.", False),  # +36%
        ("Recovery time nearly doubled.", True),  # x1.75
        ("The change failure rate more than doubled.", False),  # x1.25
    ],
)
def test_multiples_equal_the_ratio_or_change_in_the_facts(sentence: str, ok: bool) -> None:
    assert ("multiple" not in _categories(sentence)) is ok


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("Lead time went up since the previous window.", True),
        ("Deployments climbed to 16 from 10.", True),
        ("Recovery got slower.", True),
        ("The rework rate improved.", True),
        ("Compared with the previous window, the change failure rate got worse.", True),
        ("Lead time fell since the previous window.", False),
        ("Lead time improved.", False),
        ("Recovery was faster than last week.", False),
        ("The change failure rate dropped.", False),
        ("Deployment frequency worsened.", False),
        ("Recovery sped up to 3.5 hours from 2 hours.", False),
        ("Recovery slowed to a median of 3.5 hours.", True),
        ("Every stability metric except the rework rate got worse.", True),
    ],
)
def test_directions_match_the_sign_of_the_change(sentence: str, ok: bool) -> None:
    assert ("direction" not in _categories(sentence)) is ok


def _judged(metric: str, verdict: str) -> dict[str, Any]:
    facts = copy.deepcopy(FACTS)
    facts["metrics"][metric]["verdict"] = {"previous": verdict, "baseline": verdict, "level": 0.05}
    return facts


@pytest.mark.parametrize(
    ("verdict", "sentence", "ok"),
    [
        ("no clear change", "Lead time worsened since the previous window.", False),
        ("too little data", "Lead time got worse.", False),
        ("no clear change", "Lead time worsened slightly, within normal variation.", True),
        ("no clear change", "Lead time rose from 15 hours to 20.5 hours.", True),  # raw, true
        ("worsened", "Lead time worsened since the previous window.", True),
        ("improved", "Lead time worsened since the previous window.", False),
    ],
)
def test_a_verdict_decides_whether_a_move_may_be_called_better_or_worse(
    verdict: str, sentence: str, ok: bool
) -> None:
    assert ("verdict" not in _categories(sentence, _judged("lead_time", verdict))) is ok


def test_builtin_narrator_hedges_a_move_the_verdict_does_not_support() -> None:
    facts = _judged("recovery_time", "no clear change")
    narrative = builtin.narrate(facts)
    assert check(narrative, facts) == []
    assert "within normal variation" in " ".join(t for _, t in narrative.texts())


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("Not every deployment succeeded.", True),
        ("Not all deployments failed.", True),
        ("Checkout deployed every day this week.", False),  # on 85.7% of days
        ("Every deployment failed.", False),
        ("No deployment failed this week.", False),
        ("All deployments succeeded.", False),
        ("No incidents were opened.", False),
        ("None of the deployments was rolled back.", False),
    ],
)
def test_quantifiers_about_deployments_and_incidents_match_the_counts(
    sentence: str, ok: bool
) -> None:
    assert ("quantifier" not in _categories(sentence)) is ok


def test_no_failures_is_true_when_none_failed() -> None:
    facts = build_facts(
        sample_report().model_copy(update={"failed_deployments": 0, "change_failure_rate": 0.0})
    )
    assert "quantifier" not in _categories("No deployment failed this week.", facts)
    assert "quantifier" in _categories("Every deployment failed.", facts)


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("The slowest change was checkout#42.", True),
        ("The checkout service shipped 16 deployments.", True),
        ("The slowest change was checkout#77.", False),
        ("Service payments-api shipped the slowest change.", False),
        ("Team search slowed down.", False),
        ("Uptime improved to 99.9%.", False),
        ("Test coverage fell this week.", False),
    ],
)
def test_entities_must_be_in_the_facts(sentence: str, ok: bool) -> None:
    assert ("entity" not in _categories(sentence)) is ok


def test_incidents_cannot_be_claimed_when_none_were_opened() -> None:
    facts = build_facts(sample_report().model_copy(update={"incidents_opened": 0}))
    assert "entity" in _categories("An incident was opened after the release.", facts)
    assert "entity" in _categories("Three incidents were opened.", facts)


def test_a_metric_without_data_cannot_be_given_a_direction() -> None:
    report = sample_report()
    empty = report.recovery_time_hours.model_copy(update={"median": None, "p90": None})
    facts = build_facts(report.model_copy(update={"recovery_time_hours": empty}))
    assert "entity" in _categories("Recovery time improved.", facts)


def test_repair_messages_name_the_claim_without_echoing_untrusted_text() -> None:
    facts = build_facts(sample_report(title=INJECTION))
    narrative = _narrative(
        f"Three deployments failed because {INJECTION}. Lead time halved. Uptime improved."
    )
    errors = check(narrative, facts)
    assert {p.category for p in problems(narrative, facts)} >= {"count", "multiple", "entity"}
    words = INJECTION.split()
    for error in errors:
        assert not any(" ".join(words[i : i + 3]) in error for i in range(len(words) - 2))
    assert any('"halved" of lead time' in e for e in errors)
