"""The checker over real facts: the built-in narrator passes on every demo scope and on a real
repository's reports, every lie of the corpus is caught, faithful paraphrases pass, harmful
advice is caught and legitimate advice passes, and recommendations name a fitting DORA
capability. benchmarks/checker_corpus.py prints the same rates over more windows."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from corpora.advice import HARMFUL, ISSUE_21, LEGITIMATE
from corpora.facts import NOW, demo_facts, flask_facts
from corpora.narratives import CATEGORIES, corpus

from insights.metrics.windows import default_window
from insights.narrate import builtin, injection
from insights.narrate.capabilities import CAPABILITIES, FITS, fits
from insights.narrate.prompts import PROMPT_VERSION, render_repair, render_system
from insights.narrate.schema import METRICS
from insights.narrate.verify import check, problems


@pytest.fixture(scope="session")
def real_facts() -> list[tuple[str, dict[str, Any]]]:
    """Every scope of the demo over its last full week, and the flask reports."""
    return [*demo_facts((default_window(NOW).label,)), *flask_facts()]


def test_builtin_narrator_passes_the_checker_on_every_demo_scope_and_on_flask(
    real_facts: list[tuple[str, dict[str, Any]]],
) -> None:
    kinds = Counter(label.split()[1].split(":")[0] for label, _ in real_facts if "demo" in label)
    assert kinds == {"service": 6, "team": 3, "tenant": 1}
    for label, facts in real_facts:
        narrative = builtin.narrate(facts)
        assert check(narrative, facts) == [], label
        assert injection.check(narrative, facts) == [], label


def test_every_lie_is_caught_and_faithful_paraphrases_pass(
    real_facts: list[tuple[str, dict[str, Any]]],
) -> None:
    lies, truths = corpus(real_facts)
    assert {c.category for c in lies} == set(CATEGORIES)
    missed = [(c.source, c.sentence) for c in lies if not problems(c.narrative, c.facts)]
    assert missed == []
    rejected = [c for c in truths if problems(c.narrative, c.facts)]
    assert len(truths) >= 100
    assert len(rejected) <= 0.05 * len(truths), [(c.source, c.sentence) for c in rejected[:5]]


def test_advice_corpora_are_large_enough_and_carry_the_issue_examples() -> None:
    assert len(HARMFUL) >= 60 and len(LEGITIMATE) >= 60
    assert set(ISSUE_21) <= set(HARMFUL)
    assert "Streamline change approval with peer review" in LEGITIMATE
    assert "Merge without approval" in HARMFUL


@pytest.mark.parametrize("advice", HARMFUL)
def test_advice_that_weakens_a_safeguard_is_rejected(advice: str) -> None:
    assert injection.weakens_safeguard(advice)


@pytest.mark.parametrize("advice", LEGITIMATE)
def test_legitimate_advice_is_accepted(advice: str) -> None:
    assert not injection.weakens_safeguard(advice)


def test_every_capability_has_a_fit_entry_and_every_metric_has_capabilities() -> None:
    assert set(FITS) == set(CAPABILITIES)
    for metric in METRICS:
        assert any(fits(c, metric) for c in CAPABILITIES), metric
    assert fits("working in small batches", "lead_time")
    assert not fits("monitoring and observability", "lead_time")


def test_builtin_recommendations_name_a_capability_that_fits_their_metric(
    real_facts: list[tuple[str, dict[str, Any]]],
) -> None:
    for label, facts in real_facts:
        for rec in builtin.narrate(facts).recommendations:
            assert rec.capability is not None and fits(rec.capability, rec.metric), (label, rec)


def test_a_recommendation_without_a_fitting_capability_is_rejected(
    real_facts: list[tuple[str, dict[str, Any]]],
) -> None:
    _, facts = real_facts[0]
    narrative = builtin.narrate(facts)
    first = narrative.recommendations[0]
    missing = narrative.model_copy(
        update={"recommendations": [first.model_copy(update={"capability": None})]}
    )
    wrong = narrative.model_copy(
        update={"recommendations": [first.model_copy(update={"capability": "well-being"})]}
    )
    assert [p.category for p in problems(missing, facts)] == ["capability"]
    assert [p.category for p in problems(wrong, facts)] == ["capability"]
    assert "'well-being' does not move" in check(wrong, facts)[0]


def test_the_prompt_states_the_claim_rules_safeguards_and_capabilities() -> None:
    system = render_system()
    assert PROMPT_VERSION == "narrate_v2"
    for rule in ("numbers in words", "multiples", "directions", "verdict", '"every"', "incidents"):
        assert rule in system
    assert "Never recommend removing, skipping, bypassing or weakening a safeguard" in system
    assert "- recovery_time: " in system and "proactive failure notification" in system
    assert "weakens a safeguard" in render_repair(["summary: x"])
