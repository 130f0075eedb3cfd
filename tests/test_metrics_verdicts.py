"""Verdicts on constructed windows: a real move is named, noise and thin data are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from metrics_support import commit, dep, frames, incident

from insights.metrics.compute import prepare, trend_verdicts
from insights.metrics.verdicts import (
    FISHER_TEST,
    MIN_SAMPLES,
    POISSON_TEST,
    RANK_TEST,
    WindowSample,
    compare,
    duration_test,
    pool,
    proportion_test,
    rate_test,
    verdicts,
)
from insights.metrics.windows import history, parse_window

W10 = parse_window("2026-W10", datetime(2026, 6, 1, tzinfo=UTC))


def week(deployments=10, failed=0, rework=0, active_days=5, lead=(), recovery=()):
    return WindowSample(
        deployments=deployments,
        failed=failed,
        rework=rework,
        active_days=active_days,
        days=7,
        exposure_days=7.0,
        lead_hours=np.asarray(lead, float),
        recovery_hours=np.asarray(recovery, float),
    )


def test_one_recovery_each_week_is_too_little_data_whatever_the_hours():
    # The example: "8.6 h → 12.4 h" from one recovery each week.
    c = duration_test(np.array([12.4]), np.array([8.6]))
    assert (c.verdict, c.p_value, c.test) == ("too little data", None, RANK_TEST)
    assert (c.current_samples, c.other_samples) == (1, 1)


def test_clearly_longer_lead_times_are_worsened_and_shorter_improved():
    short, long = np.linspace(2, 6, 20), np.linspace(20, 40, 20)
    assert duration_test(long, short).verdict == "worsened"
    assert duration_test(short, long).verdict == "improved"
    assert duration_test(long, short).p_value < 0.001


def test_interleaved_lead_times_are_no_clear_change():
    rng = np.random.default_rng(5)
    a, b = rng.exponential(10, 40), rng.exponential(10, 40)
    c = duration_test(a, b)
    assert c.verdict == "no clear change" and c.p_value >= 0.05


def test_a_shape_change_with_medians_moving_against_the_ranks_names_no_direction():
    # Current: most durations a little longer, median lower; ranks and medians disagree.
    current = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 50, 50, 50, 50, 50] * 3)
    other = np.array([2.0] * 33)
    c = duration_test(current, other)
    assert c.verdict == "no clear change"


def test_one_failure_in_each_of_two_weeks_is_no_clear_change():
    c = proportion_test(1, 18, 2, 20, higher_is_better=False)
    assert (c.verdict, c.test, c.p_value) == ("no clear change", FISHER_TEST, 1.0)


def test_change_failure_rate_from_nine_of_fifteen_to_none_is_improved():
    c = proportion_test(0, 15, 9, 15, higher_is_better=False)
    assert c.verdict == "improved" and c.p_value == pytest.approx(0.0007, abs=1e-4)
    assert proportion_test(9, 15, 0, 15, higher_is_better=False).verdict == "worsened"


def test_rates_over_fewer_than_the_minimum_deployments_are_too_little_data():
    c = proportion_test(3, MIN_SAMPLES - 1, 0, 40, higher_is_better=False)
    assert c.verdict == "too little data" and c.p_value is None


def test_twenty_deployments_down_to_two_is_worsened_nine_versus_twelve_is_noise():
    assert rate_test(2, 7, 20, 7).verdict == "worsened"
    assert rate_test(20, 7, 2, 7).verdict == "improved"
    c = rate_test(9, 7, 12, 7)
    assert (c.verdict, c.test) == ("no clear change", POISSON_TEST)


def test_deployment_counts_too_small_to_ever_reach_the_level_are_too_little_data():
    # 0 vs 3: even the most lopsided split of 3 deployments has p = 0.25.
    assert rate_test(0, 7, 3, 7).verdict == "too little data"
    assert rate_test(0, 7, 0, 7).verdict == "too little data"


def test_rate_test_accounts_for_window_length():
    # 30 deployments in a 30-day month vs 7 in a 7-day week: the same daily rate.
    assert rate_test(30, 30, 7, 7).verdict == "no clear change"


def test_baseline_pools_windows_so_a_week_can_stand_out_against_twelve():
    weeks = [week(deployments=10, failed=1) for _ in range(12)]
    base = pool(weeks)
    assert (base.deployments, base.failed, base.days, base.windows) == (120, 12, 84, 12)
    bad = week(deployments=10, failed=6)
    assert compare(bad, base)["change_failure_rate"].verdict == "worsened"
    assert compare(bad, base)["change_failure_rate"].windows == 12
    # Against a single previous week of 1/10 the same week is not yet clear.
    assert compare(bad, weeks[-1])["change_failure_rate"].verdict == "no clear change"


def test_verdicts_name_every_metric_against_previous_and_baseline():
    v = verdicts(week(), week(), pool([week()] * 12))
    assert v.level == 0.05
    for name in (
        "deployment_frequency",
        "deployment_days_share",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "rework_rate",
    ):
        metric = getattr(v, name)
        assert metric.previous is not None and metric.baseline is not None
    assert v.lead_time.previous.verdict == "too little data"  # no lead times at all
    assert v.deployment_frequency.previous.verdict == "no clear change"


def test_a_comparison_window_without_data_is_too_little_data():
    v = verdicts(week(), WindowSample(windows=0), None)
    assert v.deployment_frequency.previous.verdict == "too little data"
    assert v.deployment_frequency.baseline is None


# ------------------------------------------------------------ through the metrics engine


def _deploys(start: datetime, count: int, failed: int, prefix: str) -> list[dict]:
    """`count` deployments over a week from `start` (Monday), the first `failed` with an
    incident; each ships one commit made 4 hours earlier."""
    events = []
    for i in range(count):
        at = start + timedelta(hours=10 + i * (150 // max(count, 1)))
        sha = f"{prefix}{i:03x}".ljust(8, "0")
        events.append(commit(sha, (at - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")))
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        events.append(dep(f"{prefix}-{i}", sha, stamp, commits=[sha]))
        if i < failed:
            opened = (at + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
            resolved = (at + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
            events.append(incident(f"INC-{prefix}{i}", opened, resolved, f"{prefix}-{i}"))
    return events


@pytest.fixture(scope="module")
def thirteen_weeks():
    """Weeks W-3..W10 of 2026: 10 deployments a week with one failure, then a W10 with 10
    deployments of which 7 failed. Data starts in W-3 of the windows tested (W01)."""
    windows = history(W10, 13)  # 2025-W50 .. 2026-W10
    events = []
    for n, window in enumerate(windows[3:]):
        last = window is windows[-1]
        events += _deploys(window.start, 10, 7 if last else 1, f"a{n:x}")
    return windows, prepare(frames(events))


def test_engine_verdicts_call_a_week_of_seven_failures_worsened_against_the_baseline(
    thirteen_weeks,
):
    windows, prepared = thirteen_weeks
    out = trend_verdicts(prepared, windows)
    assert len(out) == 12  # one per window after the first
    current = out[-1]
    assert current.change_failure_rate.baseline.verdict == "worsened"
    # The baseline holds only the 9 weeks with data, not the 3 before the first deployment.
    assert current.change_failure_rate.baseline.windows == 9
    assert current.change_failure_rate.baseline.other_samples == 90
    assert current.deployment_frequency.baseline.verdict == "no clear change"
    assert current.lead_time.previous.verdict == "no clear change"  # 4 h every week


def test_engine_does_not_call_weeks_before_the_first_deployment_zero(thirteen_weeks):
    windows, prepared = thirteen_weeks
    out = trend_verdicts(prepared, windows)
    # windows[3] is the first with data; its previous (windows[2]) held none.
    assert out[2].deployment_frequency.previous.verdict == "too little data"
    assert out[2].deployment_frequency.baseline is None  # only the last window has a baseline
    assert out[3].deployment_frequency.previous.verdict == "no clear change"


# ------------------------------------------------------------ gate notes


def _gate_window(deployments: int, failed: int):
    from insights.metrics.result import Intervals, WindowMetrics
    from insights.metrics.uncertainty import wilson

    return WindowMetrics(
        window=W10,
        deployment_count=deployments,
        deployments_per_week=float(deployments),
        change_failure_rate=failed / deployments,
        failed_deployments=failed,
        intervals=Intervals(change_failure_rate=wilson(failed, deployments)),
    )


def test_gate_breach_backed_by_many_deployments_carries_no_note():
    from insights.metrics.gate import Limits, evaluate

    (verdict,) = evaluate(_gate_window(200, 60), Limits(max_change_failure_rate=0.15))
    assert verdict.outcome == "breach" and verdict.note is None


def test_gate_breach_on_one_deployment_says_so():
    from insights.metrics.gate import Limits, evaluate

    (verdict,) = evaluate(_gate_window(1, 1), Limits(max_change_failure_rate=0.15))
    assert verdict.outcome == "breach"
    assert verdict.note == "rests on only 1 deployment"  # 1/1: even the interval is above 0.15


def test_gate_few_samples_rule_is_the_verdicts_minimum():
    from insights.metrics.gate import FEW_SAMPLES

    assert FEW_SAMPLES == MIN_SAMPLES
