"""The built-in narrator: which facts lead to which advice, and that it never invents a number."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_support import make_report, verdicts_of, window_metrics

from insights.metrics.result import (
    LeadTimeBreakdownHours,
    LeadTimeHours,
    RecordedData,
    RecoveryTimeHours,
    Scope,
    Tiers,
)
from insights.narrate import trend_claims
from insights.narrate.builtin import narrate
from insights.narrate.facts import build_facts
from insights.narrate.verify import check

ELITE = Tiers(
    deployment_frequency="elite",
    lead_time="elite",
    change_failure_rate="elite",
    recovery_time="elite",
    overall="elite",
)


def _narrate(**overrides):
    facts = build_facts(make_report(**overrides))
    narrative = narrate(facts)
    assert check(narrative, facts) == []
    assert 3 <= len(narrative.recommendations) <= 5
    return narrative


def _topics(narrative) -> list[tuple[str, str]]:
    return [(r.metric, r.title) for r in narrative.recommendations]


def _has(narrative, metric: str, words: str) -> bool:
    return any(m == metric and words.lower() in t.lower() for m, t in _topics(narrative))


def test_review_dominating_lead_time_recommends_review_sla_and_small_prs():
    narrative = _narrate(
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=2.0, pickup=30.0, review=40.0, deploy=1.0, samples=10
        )
    )
    first = narrative.recommendations[0]
    assert first.metric == "lead_time"
    assert "review SLA" in first.title and "small" in first.title
    assert "pickup: 30 hours (41% of the path)" in first.evidence


def test_long_coding_stage_recommends_smaller_batches():
    narrative = _narrate(
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=60.0, pickup=2.0, review=3.0, deploy=1.0, samples=10
        )
    )
    assert _has(narrative, "lead_time", "smaller batches")


def test_merged_changes_waiting_for_release_recommend_continuous_delivery():
    narrative = _narrate(
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=3.0, pickup=1.0, review=2.0, deploy=48.0, samples=10
        )
    )
    assert _has(narrative, "lead_time", "deploy merged changes automatically")


def test_high_failure_rate_with_rare_deploys_recommends_smaller_more_frequent_releases():
    narrative = _narrate(
        deployment_count=2,
        deployments_per_week=2.0,
        change_failure_rate=0.5,
        failed_deployments=1,
        tier=Tiers(deployment_frequency="medium", change_failure_rate="low", overall="low"),
    )
    assert _has(narrative, "change_failure_rate", "smaller, more frequent releases")
    assert _has(narrative, "deployment_frequency", "make deploying routine")


def test_high_failure_rate_with_frequent_deploys_recommends_tests_and_canaries():
    narrative = _narrate(
        deployment_count=20,
        deployments_per_week=20.0,
        deployment_days_share=1.0,
        change_failure_rate=0.3,
        failed_deployments=6,
        tier=Tiers(deployment_frequency="elite", change_failure_rate="low", overall="medium"),
    )
    assert _has(narrative, "change_failure_rate", "canary")


def test_long_recovery_recommends_rollback_automation_and_feature_flags():
    narrative = _narrate(
        recovery_time_hours=RecoveryTimeHours(median=50.0, p90=70.0, samples=8),
        verdicts=verdicts_of(recovery_time="worsened"),
    )
    rec = next(r for r in narrative.recommendations if r.metric == "recovery_time")
    assert "rollback" in rec.title.lower() and "feature flags" in rec.title
    assert rec.evidence[:2] == ["recovery time median: 50 hours", "recovery time p90: 70 hours"]
    # It worsened beyond normal variation too: the before/after evidence joins the advice.
    assert rec.evidence[2:] == [
        "recovery time in 2026-W05: 2.3 hours",
        "recovery time in 2026-W06: 50 hours",
    ]
    assert not any("worse since" in r.title for r in narrative.recommendations)


def test_two_recoveries_are_too_few_to_call_recovery_time_worse():
    # 2.3 h → 50 h from two recoveries: the verdict is "too little data", so no regression.
    narrative = _narrate(
        recovery_time_hours=RecoveryTimeHours(median=50.0, p90=70.0, samples=2),
        verdicts=verdicts_of(recovery_time="too little data"),
    )
    rec = next(r for r in narrative.recommendations if r.metric == "recovery_time")
    assert rec.evidence == ["recovery time median: 50 hours", "recovery time p90: 70 hours"]
    highlight = next(h for h in narrative.highlights if h.startswith("Recovery time"))
    assert "(was 2.3 hours, too few recoveries to judge)" in highlight
    assert "worsened" not in narrative.summary + " ".join(narrative.highlights)


def test_high_rework_recommends_post_incident_reviews():
    narrative = _narrate(rework_rate=0.4, rework_deployments=3)
    assert _has(narrative, "rework_rate", "post-incident reviews")


def test_sharp_regression_names_the_metric_and_both_windows():
    narrative = _narrate(
        lead_time_hours=LeadTimeHours(median=60.0, p75=70.0, p90=90.0, samples=30),
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=1.0, pickup=1.0, review=1.0, deploy=1.0, samples=10
        ),
        previous=window_metrics(1, lead_time_hours=LeadTimeHours(median=20.0, samples=30)),
        verdicts=verdicts_of(lead_time="worsened"),
    )
    rec = next(r for r in narrative.recommendations if "worse since" in r.title)
    assert rec.metric == "lead_time"
    assert rec.evidence[:2] == [
        "lead time in 2026-W05: 20 hours",
        "lead time in 2026-W06: 60 hours",
    ]


def test_small_rate_moves_are_not_called_a_regression():
    # 10% → 14.3% is 43% worse but only 4.3 points: noise at this volume, not a regression.
    narrative = _narrate(
        deployment_count=7,
        deployments_per_week=7.0,
        change_failure_rate=1 / 7,
        rework_rate=0.0,
        previous=window_metrics(1, change_failure_rate=0.1, rework_rate=0.0),
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=1.0, pickup=1.0, review=1.0, deploy=1.0, samples=10
        ),
    )
    assert not any("worse since" in r.title for r in narrative.recommendations)


def test_unlinked_incidents_recommend_linking_them():
    narrative = _narrate(incidents_opened=3, incidents_without_deployment=2)
    assert _has(narrative, "change_failure_rate", "link incidents")


def test_window_without_deployments_recommends_getting_data_in():
    narrative = _narrate(
        deployment_count=0,
        deployments_per_day=0.0,
        deployments_per_week=0.0,
        deployment_days_share=0.0,
        lead_time_hours=LeadTimeHours(),
        change_failure_rate=None,
        failed_deployments=0,
        recovery_time_hours=RecoveryTimeHours(),
        rework_rate=None,
        rework_deployments=0,
        lead_time_breakdown_hours=LeadTimeBreakdownHours(),
        tier=Tiers(),
    )
    assert narrative.summary.startswith("Team payments made no production deployments")
    metrics = [r.metric for r in narrative.recommendations]
    assert metrics[0] == "deployment_frequency"
    assert {"lead_time", "change_failure_rate"} <= set(metrics)
    # nothing is recorded in this report: asking for commits is the right advice here
    assert any("Send commits" in r.title for r in narrative.recommendations)


EMPTY_WINDOW = {
    "deployment_count": 0,
    "deployments_per_day": 0.0,
    "deployments_per_week": 0.0,
    "deployment_days_share": 0.0,
    "lead_time_hours": LeadTimeHours(),
    "change_failure_rate": None,
    "failed_deployments": 0,
    "recovery_time_hours": RecoveryTimeHours(),
    "rework_rate": None,
    "rework_deployments": 0,
    "lead_time_breakdown_hours": LeadTimeBreakdownHours(),
    "incidents_opened": 0,
    "tier": Tiers(),
}


def _all_text(narrative) -> str:
    return " ".join(text for _, text in narrative.texts())


def test_window_without_deployments_but_with_commits_does_not_ask_for_commits():
    narrative = _narrate(
        recorded=RecordedData(commits=3400, changes=0, incidents=0, commits_in_window=120),
        **EMPTY_WINDOW,
    )
    text = _all_text(narrative)
    assert "Send commits" not in text
    assert "commits in 2026-W06: 120" in narrative.recommendations[0].evidence
    assert "post-incident" not in text


def test_release_tagged_library_reads_releases_and_is_not_told_to_deploy_daily():
    narrative = _narrate(
        deployment_count=2,
        deployments_per_day=round(2 / 7, 4),
        deployments_per_week=2.0,
        deployment_days_share=2 / 7,
        tier=Tiers(deployment_frequency="medium", overall="medium"),
        recorded=RecordedData(commits=500, commits_in_window=12),
        deployment_sources={"checkout": "release_tags", "billing": "release_tags"},
    )
    text = _all_text(narrative)
    assert narrative.summary.startswith("Team payments made 2 releases in 2026-W06")
    assert "every day" not in text and "deploy each merged change" not in text
    assert _has(narrative, "deployment_frequency", "release")


def test_release_window_without_release_points_at_the_waiting_commits():
    narrative = _narrate(
        recorded=RecordedData(commits=500, commits_in_window=12),
        deployment_sources={"checkout": "release_tags", "billing": "release_tags"},
        **EMPTY_WINDOW,
    )
    first = narrative.recommendations[0]
    assert first.title == "Release the work that is waiting"
    assert "commits in 2026-W06: 12" in first.evidence
    assert narrative.summary.startswith("Team payments made no releases in 2026-W06")


def test_rollback_only_rework_gets_rollback_advice_not_incident_reviews():
    narrative = _narrate(
        rework_rate=0.5,
        rework_deployments=3,
        change_failure_rate=0.5,
        failed_deployments=3,
        rolled_back_deployments=3,
        incidents_opened=0,
        recorded=RecordedData(commits=100, incidents=0),
    )
    text = _all_text(narrative)
    assert "post-incident" not in text
    assert _has(narrative, "rework_rate", "rolled back")


def test_rework_with_incidents_keeps_post_incident_reviews():
    narrative = _narrate(rework_rate=0.5, rework_deployments=3)
    assert _has(narrative, "rework_rate", "post-incident")


def test_trend_claims_count_only_windows_with_data():
    from insights.narrate.builtin import _over_windows

    history = [
        window_metrics(i, lead_time_hours=LeadTimeHours()) if i % 2 else window_metrics(i)
        for i in range(11, 0, -1)
    ]
    report = make_report()
    report = report.model_copy(update={"history": [*history, report.history[-1]]})
    trend = build_facts(report)["metrics"]["lead_time"]["trend"]
    assert (trend["windows"], trend["windows_with_data"]) == (12, 6)
    assert _over_windows(trend) == "over the 6 windows with data (of 12)"
    assert _over_windows({"windows": 12, "windows_with_data": 12}) == "over 12 windows"


def test_long_lead_times_read_in_days_and_weeks_and_pass_the_checker():
    narrative = _narrate(
        lead_time_hours=LeadTimeHours(median=4127.93, p75=5000.0, p90=6000.4, samples=171),
    )
    assert "24.6 weeks" in narrative.summary
    assert not re.search(r"\b(\d{3,}|7[3-9]|[89]\d)(\.\d)? hours\b", _all_text(narrative))


def test_healthy_team_gets_advice_to_keep_it_there():
    narrative = _narrate(
        deployment_count=30,
        deployments_per_week=30.0,
        deployment_days_share=1.0,
        lead_time_hours=LeadTimeHours(median=2.0, p75=3.0, p90=5.0, samples=60),
        change_failure_rate=0.0,
        failed_deployments=0,
        rework_rate=0.0,
        rework_deployments=0,
        recovery_time_hours=RecoveryTimeHours(),
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=0.5, pickup=0.5, review=0.5, deploy=0.5, samples=20
        ),
        tier=ELITE,
        slowest=[],
    )
    titles = [r.title for r in narrative.recommendations]
    assert all(t.startswith(("Keep", "Watch", "Rehearse")) for t in titles), titles


def test_summary_has_three_to_five_sentences_with_tiers_and_the_biggest_move():
    narrative = _narrate(
        lead_time_hours=LeadTimeHours(median=40.0, p90=80.0, samples=30),
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=6.0, pickup=3.1, review=25.0, deploy=1.2, samples=12
        ),
        previous=window_metrics(1, lead_time_hours=LeadTimeHours(median=20.0, samples=30)),
        verdicts=verdicts_of(lead_time="worsened"),
    )
    sentences = [s for s in re.split(r"(?<=\.)\s+(?=[A-Z0-9])", narrative.summary) if s]
    assert 3 <= len(sentences) <= 5, sentences
    assert "high for deployment frequency" in narrative.summary
    assert (
        "high tier for lead time; up from 20 hours in 2026-W05, mostly in review, which grew "
        "by 19 hours to 25 hours." in narrative.summary
    )
    # 1 failure in 7 → 1 in 6 is within normal variation: a move, not "worsened".
    assert (
        "The biggest other move since 2026-W05: change failure rate went from 14.3% to "
        "16.7% (1 failed deployment of 6), within normal variation." in narrative.summary
    )


def test_a_move_without_a_verdict_behind_it_is_worded_as_within_normal_variation():
    narrative = _narrate(
        lead_time_hours=LeadTimeHours(median=40.0, p90=80.0, samples=30),
        previous=window_metrics(1, lead_time_hours=LeadTimeHours(median=20.0, samples=30)),
        verdicts=verdicts_of(),
    )
    assert (
        "high tier for lead time; up from 20 hours in 2026-W05, within normal variation."
        in narrative.summary
    )
    assert not any("worse since" in r.title for r in narrative.recommendations)
    highlight = next(h for h in narrative.highlights if h.startswith("Lead time"))
    assert "(was 20 hours, within normal variation)" in highlight


def test_a_move_against_the_baseline_is_named_in_the_highlight():
    narrative = _narrate(verdicts=verdicts_of(change_failure_rate="worsened"))
    highlight = next(h for h in narrative.highlights if h.startswith("Change failure rate"))
    assert "worsened against the 12 windows before" in highlight


def test_tenant_scope_is_named_as_the_organisation():
    narrative = _narrate(scope=Scope(kind="tenant", name="acme"))
    assert narrative.summary.startswith("The acme organisation shipped")


def test_same_facts_give_the_same_narrative():
    facts = build_facts(make_report())
    assert narrate(facts) == narrate(facts)


# up to about a year: durations are written in hours, days or weeks, all quotable
_hours = st.one_of(st.none(), st.floats(min_value=0, max_value=9000, allow_nan=False))
_rate = st.one_of(st.none(), st.floats(min_value=0, max_value=1, allow_nan=False))
_tier = st.sampled_from([None, "elite", "high", "medium", "low"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deployments=st.integers(min_value=0, max_value=60),
    median=_hours,
    p90=_hours,
    recovery=_hours,
    cfr=_rate,
    rework=_rate,
    stages=st.lists(_hours, min_size=4, max_size=4),
    tiers=st.lists(_tier, min_size=5, max_size=5),
    prev_median=_hours,
    has_previous=st.booleans(),
    unlinked=st.integers(min_value=0, max_value=3),
    releases=st.booleans(),
    commits=st.integers(min_value=0, max_value=40),
    verdict=st.sampled_from(["improved", "worsened", "no clear change", "too little data"]),
)
def test_every_number_in_the_narrative_is_in_the_facts(
    deployments,
    median,
    p90,
    recovery,
    cfr,
    rework,
    stages,
    tiers,
    prev_median,
    has_previous,
    unlinked,
    releases,
    commits,
    verdict,
):
    report = make_report(
        recorded=RecordedData(commits=commits * 10, commits_in_window=commits),
        deployment_sources={"checkout": "release_tags"} if releases else {},
        deployment_count=deployments,
        deployments_per_week=float(deployments),
        deployments_per_day=deployments / 7,
        deployment_days_share=min(deployments, 7) / 7,
        lead_time_hours=LeadTimeHours(median=median, p90=p90, samples=3 if median else 0),
        recovery_time_hours=RecoveryTimeHours(median=recovery, samples=1 if recovery else 0),
        change_failure_rate=cfr if deployments else None,
        failed_deployments=round((cfr or 0) * deployments),
        rework_rate=rework if deployments else None,
        lead_time_breakdown_hours=LeadTimeBreakdownHours(
            coding=stages[0], pickup=stages[1], review=stages[2], deploy=stages[3], samples=4
        ),
        incidents_opened=unlinked + 1,
        incidents_without_deployment=unlinked,
        tier=Tiers(
            deployment_frequency=tiers[0],
            lead_time=tiers[1],
            change_failure_rate=tiers[2],
            recovery_time=tiers[3],
            overall=tiers[4],
        ),
        previous=window_metrics(1, lead_time_hours=LeadTimeHours(median=prev_median))
        if has_previous
        else None,
        verdicts=verdicts_of(verdict),
    )
    facts = build_facts(report)
    narrative = narrate(facts)
    assert check(narrative, facts) == []
    assert trend_claims.check(narrative, facts) == []
    assert 1 <= len(narrative.recommendations) <= 5
    if deployments:
        assert len(narrative.recommendations) >= 3
