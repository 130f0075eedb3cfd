"""DORA tier thresholds (2023 State of DevOps report) at and around their boundaries."""

from __future__ import annotations

import pytest

from insights.metrics.tiers import REPORT_YEAR, THRESHOLDS, overall, tier_of, tiers_for


@pytest.mark.parametrize(
    ("metric", "value", "tier"),
    [
        ("deployment_frequency", 7.0, "elite"),
        ("deployment_frequency", 6.99, "high"),
        ("deployment_frequency", 1.0, "high"),
        ("deployment_frequency", 0.25, "medium"),
        ("deployment_frequency", 0.2, "low"),
        ("lead_time", 23.9, "elite"),
        ("lead_time", 24.0, "high"),
        ("lead_time", 168.0, "medium"),
        ("lead_time", 720.0, "low"),
        ("change_failure_rate", 0.05, "elite"),
        ("change_failure_rate", 0.0501, "high"),
        ("change_failure_rate", 0.15, "medium"),
        ("change_failure_rate", 0.16, "low"),
        ("recovery_time", 0.5, "elite"),
        ("recovery_time", 1.0, "high"),
        ("recovery_time", 100.0, "medium"),
        ("recovery_time", 168.0, "low"),
    ],
)
def test_tier_boundaries(metric, value, tier):
    assert tier_of(metric, value) == tier


def test_no_value_has_no_tier_and_overall_is_the_weakest_known():
    assert tier_of("lead_time", None) is None
    assert overall([None, "elite", "medium", "high"]) == "medium"
    assert overall([None, None]) is None
    assert tiers_for(None, None, None, None).overall is None


def test_thresholds_are_one_table_citing_the_report_year():
    assert REPORT_YEAR == 2023
    assert set(THRESHOLDS) == {
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
    }
