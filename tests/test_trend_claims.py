"""The verdict rule of the narrative checker: a move may be called improved, worsened or sharp
only when the data says so; over a real OpenAI-compatible wire, such an answer is repaired or
replaced by the built-in narrative."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llm_support import as_text, chat_body, good_answer, sample_report
from pytest_httpserver import HTTPServer
from report_support import verdicts_of

from insights.config import LlmConfig
from insights.narrate.facts import build_facts
from insights.narrate.llm import narrate_with
from insights.narrate.openai_compat import OpenAICompatProvider
from insights.narrate.providers import RetryPolicy
from insights.narrate.schema import Narrative
from insights.narrate.trend_claims import check, claims_in

PATH = "/v1/chat/completions"


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        ("Recovery time worsened sharply since last week.", [("recovery_time", "worsened")]),
        ("Lead time rose sharply to 20.5 hours.", [("lead_time", "worsened")]),
        ("Lead time fell significantly.", [("lead_time", "improved")]),
        ("Deployment frequency dropped sharply.", [("deployment_frequency", "worsened")]),
        ("Deployments surged this week.", [("deployment_frequency", "improved")]),
        ("The change failure rate has improved.", [("change_failure_rate", "improved")]),
        ("Rework spiked after the migration.", [("rework_rate", "worsened")]),
        # Facts, advice and negations are not claims of a move.
        ("Lead time rose to 20.5 hours from 15 hours.", []),
        ("Recovery time was within normal variation.", []),
        ("Improving review time shortens lead time.", []),
        ("Smaller batches improve lead time.", []),
        ("Change failure rate has not improved.", []),
        ("Recovery time hasn't worsened.", []),
        ("It worsened sharply.", []),  # names no metric: nothing to check it against
    ],
)
def test_claims_are_found_with_their_metric_and_direction(text, claims):
    assert claims_in(text) == claims


def test_a_claim_belongs_to_the_metric_named_just_before_it():
    text = "Deployment frequency held steady while lead time worsened sharply."
    assert claims_in(text) == [("lead_time", "worsened")]


def _narrative(summary: str, why: str = "2 of 16 deployments failed this week.") -> Narrative:
    answer = good_answer()
    answer["summary"] = summary
    answer["recommendations"][1]["why"] = why
    return Narrative.model_validate(answer)


def _facts(**verdicts: str) -> dict[str, Any]:
    report = sample_report()
    return build_facts(report.model_copy(update={"verdicts": verdicts_of(**verdicts)}))


def test_a_narrative_claiming_a_move_the_data_does_not_support_is_rejected():
    # Recovery 2 h → 3.5 h from 2 recoveries: the verdict is "too little data".
    facts = _facts(recovery_time="too little data")
    errors = check(_narrative("Recovery time worsened sharply to 3.5 hours."), facts)
    assert errors == [
        "summary: says recovery time worsened, but the data does not show it (verdict against "
        'the previous window: "too little data", against the baseline: "too little data"); '
        "describe the move as within normal variation or too little data"
    ]


def test_noise_called_an_improvement_is_rejected_wherever_it_is_written():
    facts = _facts()  # every metric "no clear change"
    narrative = _narrative(
        "Checkout shipped 16 deployments this week.",
        why="Change failure rate improved to 12.5% but 2 of 16 deployments failed.",
    )
    errors = check(narrative, facts)
    assert len(errors) == 1 and errors[0].startswith(
        "recommendations[1].why: says change failure rate improved"
    )


def test_a_move_the_verdict_backs_is_allowed_against_previous_or_baseline():
    narrative = _narrative("Lead time worsened sharply, from 15 hours to 20.5 hours.")
    assert check(narrative, _facts(lead_time="worsened")) == []
    baseline_only = _facts()
    baseline_only["metrics"]["lead_time"]["verdict"]["baseline"] = "worsened"
    assert check(narrative, baseline_only) == []
    # The opposite direction is not backed by a "worsened" verdict.
    assert check(_narrative("Lead time improved."), _facts(lead_time="worsened")) != []


def test_facts_without_verdicts_leave_directions_to_the_number_checker():
    facts = build_facts(sample_report())  # a report computed without verdicts
    assert "verdict" not in facts["metrics"]["lead_time"]
    assert check(_narrative("Lead time worsened sharply."), facts) == []


# -- over the wire: the rule is part of the answer review ---------------------------------


def _config(httpserver: HTTPServer) -> LlmConfig:
    return LlmConfig(
        provider="openai",
        model="llama3.1:8b",
        base_url=httpserver.url_for("/v1"),
        timeout_seconds=5.0,
        max_tokens=800,
    )


def _provider(httpserver: HTTPServer) -> OpenAICompatProvider:
    fast = RetryPolicy(attempts=1, initial_wait=0.01, max_wait=1.0)
    return OpenAICompatProvider(_config(httpserver), retry=fast, sleep=lambda _: None)


def _sharp_answer() -> dict[str, Any]:
    answer = good_answer()
    answer["summary"] = (
        "Checkout shipped 16 deployments this week. Recovery time worsened sharply, and "
        "2 deployments failed (12.5%)."
    )
    return answer


def test_model_answer_calling_noise_a_sharp_move_is_sent_back_and_repaired(httpserver):
    facts = _facts(recovery_time="too little data")
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(_sharp_answer()))
    )
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(good_answer()))
    )
    result = narrate_with(_provider(httpserver), _config(httpserver), facts)

    assert result.outcome == "repaired", result.reason
    repair = json.loads(httpserver.log[1][0].get_data())["messages"][3]["content"]
    assert "says recovery time worsened, but the data does not show it" in repair
    assert "worsened" not in result.narrative.summary


def test_model_insisting_on_an_unsupported_move_falls_back_to_the_builtin_narrative(httpserver):
    facts = _facts(recovery_time="too little data")
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        chat_body(as_text(_sharp_answer()))
    )
    result = narrate_with(_provider(httpserver), _config(httpserver), facts)

    assert result.outcome == "fallback" and result.provider == "builtin"
    assert "does not show it" in (result.reason or "")
    assert check(result.narrative, facts) == []
    assert "too few recoveries to judge" in " ".join(result.narrative.highlights)


def test_facts_carry_every_metrics_verdict_in_the_agreed_keys_and_strings():
    facts = _facts(lead_time="improved", recovery_time="too little data")
    for name in (
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "rework_rate",
    ):
        verdict = facts["metrics"][name]["verdict"]
        assert {"previous", "baseline", "level"} <= set(verdict)
        assert verdict["level"] == 0.05
        assert verdict["previous"] in ("improved", "worsened", "no clear change", "too little data")
    lead = facts["metrics"]["lead_time"]["verdict"]
    assert (lead["previous"], lead["baseline"], lead["baseline_windows"]) == ("improved",) * 2 + (
        12,
    )
    assert lead["samples"] == {"current": 10, "previous": 10, "baseline": 120}
    assert "120" in facts["quotable"]["numbers"]  # sample sizes may be quoted
