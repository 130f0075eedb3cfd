"""Confidence intervals of every figure against textbook values, and through `window_metrics`."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from metrics_support import commit, dep, frames, incident

from insights.metrics.compute import compute
from insights.metrics.uncertainty import (
    count_intervals,
    poisson_bounds,
    quantile_interval,
    quantile_ranks,
    wilson,
)
from insights.metrics.windows import parse_window

W02 = parse_window("2026-W02", datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("n", "ranks"),
    # Conover, Practical Nonparametric Statistics, table A3 / the classic sign-test ranks:
    # 95 % interval for the median between the l-th and u-th smallest samples.
    [(10, (2, 9)), (20, (6, 15)), (6, (1, 6)), (30, (10, 21))],
)
def test_median_interval_uses_the_binomial_order_statistic_ranks(n, ranks):
    assert quantile_ranks(n, 0.5) == ranks


def test_median_interval_of_ten_samples_lies_between_second_and_ninth_smallest():
    samples = np.array([9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0, 10.0])
    ci = quantile_interval(samples, 0.5)
    assert (ci.low, ci.high, ci.samples) == (2.0, 9.0, 10)


def test_too_few_samples_leave_a_bound_open_instead_of_inventing_one():
    # Five samples: even the extremes cover the median only with 1 − 2/32 = 93.75 % < 95 %.
    assert quantile_ranks(5, 0.5) == (None, None)
    # The p90 of 10 samples has no order statistic far enough above it.
    low, high = quantile_ranks(10, 0.9)
    assert low is not None and high is None
    assert quantile_interval(np.array([]), 0.5).samples == 0


def test_order_statistic_interval_covers_the_true_median_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(3)
    true_median = np.log(2)  # of an exponential with mean 1
    covered = 0
    for _ in range(2000):
        ci = quantile_interval(rng.exponential(1.0, 20), 0.5)
        covered += ci.low <= true_median <= ci.high
    assert covered / 2000 >= 0.95 - 0.01  # the ranks guarantee 95.9 %; 1 point of sampling noise


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Wilson (1927) score intervals at 95 %; 0/10 and 1/18 as tabulated by Newcombe (1998).
    [(0, 10, 0.0, 0.2775), (1, 18, 0.0099, 0.2576), (18, 18, 0.8241, 1.0), (5, 10, 0.2366, 0.7634)],
)
def test_wilson_interval_matches_textbook_values(k, n, low, high):
    ci = wilson(k, n)
    assert (ci.low, ci.high, ci.samples) == (low, high, n)


def test_a_rate_without_deployments_has_no_interval():
    ci = wilson(0, 0)
    assert (ci.low, ci.high, ci.samples) == (None, None, 0)


@pytest.mark.parametrize(
    ("count", "low", "high"),
    # Exact (Garwood 1936) 95 % Poisson limits, e.g. Ulm (1990), table 1.
    [(0, 0.0, 3.689), (1, 0.0253, 5.572), (10, 4.795, 18.390), (20, 12.217, 30.888)],
)
def test_poisson_interval_matches_exact_garwood_limits(count, low, high):
    got_low, got_high = poisson_bounds(count)
    assert got_low == pytest.approx(low, abs=5e-4)
    assert got_high == pytest.approx(high, abs=5e-4)


def test_per_week_interval_is_the_count_interval_over_the_window_length_in_weeks():
    count, per_week = count_intervals(10, weeks=2.0)
    assert per_week.low == pytest.approx(count.low / 2, abs=1e-4)
    assert per_week.high == pytest.approx(count.high / 2, abs=1e-4)
    assert count.samples == per_week.samples == 10


def test_window_metrics_carry_an_interval_and_sample_size_for_each_figure():
    events = [commit(f"ab{i:02d}", f"01-0{5 + i % 5} 08:00") for i in range(10)]
    events += [
        dep(f"d{i}", f"ab{i:02d}", f"01-0{5 + i % 5} 1{i % 10}:00", commits=[f"ab{i:02d}"])
        for i in range(10)
    ]
    events.append(incident("INC-1", "01-06 12:30", "01-06 14:30", deployment_id="d1"))
    m = compute(frames(events), W02)
    ci = m.intervals
    assert ci.level == 0.95
    assert (ci.deployment_count.low, ci.deployment_count.high) == (4.7954, 18.3904)
    assert ci.deployments_per_week.samples == 10
    assert ci.change_failure_rate == wilson(1, 10)
    assert ci.rework_rate == wilson(m.rework_deployments, 10)
    assert ci.deployment_days_share == wilson(5, 7)
    lead = ci.lead_time_hours.median
    assert lead.samples == m.lead_time_hours.samples == 10
    assert lead.low <= m.lead_time_hours.median <= lead.high
    assert ci.recovery_time_hours.median.samples == 1
    assert ci.recovery_time_hours.median.low is None


def test_a_window_without_deployments_has_a_count_interval_but_no_rate_intervals():
    m = compute(frames([commit("ab01", "01-05 08:00")]), W02)
    assert (m.intervals.deployment_count.low, m.intervals.deployment_count.high) == (0.0, 3.6889)
    assert m.intervals.change_failure_rate.low is None
    assert m.intervals.deployment_days_share.samples == 0


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 10), (1, 18), (7, 9), (30, 31), (500, 1000)])
def test_wilson_closed_form_equals_scipys_proportion_ci(k, n):
    from scipy import stats

    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    got = wilson(k, n)
    assert got.low == pytest.approx(max(ci.low, 0.0), abs=1e-4)
    assert got.high == pytest.approx(min(ci.high, 1.0), abs=1e-4)
