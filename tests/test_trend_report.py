"""Honest trends in the HTML report: interval bands on the trend charts, ringed points for
moves beyond normal variation, and change colours only where the verdict backs them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from report_support import make_report, verdicts_of

from insights.deliver.charts import BAND_STYLE, MARK_STYLE, trend_chart
from insights.deliver.html import render_report
from insights.metrics.result import Intervals, MetricReport
from insights.metrics.uncertainty import count_intervals, wilson
from insights.narrate.builtin import as_result as builtin_result
from insights.narrate.facts import build_facts

NOW = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)


def _with_intervals(report: MetricReport, moved_at: int | None = None) -> MetricReport:
    """The report with each history window's intervals (and, at `moved_at`, a window whose
    change failure rate worsened beyond normal variation)."""
    history = []
    for i, w in enumerate(report.history):
        update: dict = {
            "intervals": Intervals(
                deployment_count=count_intervals(w.deployment_count, 1.0)[0],
                change_failure_rate=wilson(w.failed_deployments, w.deployment_count),
            ),
            "verdicts": verdicts_of(
                change_failure_rate="worsened" if i == moved_at else "no clear change"
            ),
        }
        history.append(w.model_copy(update=update))
    return report.model_copy(update={"history": history})


def test_trend_chart_draws_the_interval_as_one_band_and_no_error_bars():
    report = _with_intervals(make_report())
    _, svg = trend_chart("deployment_frequency", report.history, "t")
    assert svg.count(BAND_STYLE) == 1  # one run of 12 windows, one polygon
    assert 'class="ci"' not in svg  # pygal's per-point bars are folded into the band
    band = re.search(r'<g class="ci band"><path d="M([^"]*) Z"', svg).group(1)
    assert len(band.split(" L")) == 2 * len(report.history)  # top and bottom of each window


def test_windows_without_an_interval_break_the_band():
    report = _with_intervals(make_report())
    history = list(report.history)
    history[5] = history[5].model_copy(update={"intervals": Intervals()})
    _, svg = trend_chart("deployment_frequency", history, "t")
    assert svg.count(BAND_STYLE) == 2


def test_a_move_beyond_normal_variation_is_ringed_on_its_chart_only():
    report = _with_intervals(make_report(), moved_at=11)
    assert MARK_STYLE in trend_chart("change_failure_rate", report.history, "t")[1]
    assert MARK_STYLE not in trend_chart("lead_time", report.history, "t")[1]


def test_report_colours_a_change_only_when_its_verdict_backs_it():
    report = make_report(verdicts=verdicts_of(lead_time="improved"))
    facts = build_facts(report)
    html = render_report(report, builtin_result(facts), [], NOW, facts)
    deployments, lead, cfr, _, _ = re.findall(r'<span class="delta (\w+)">([^<]*)</span>', html)
    assert lead == ("improved", "▼ −1.3 h vs 2026-W05")
    # One deployment fewer is noise: grey, and said so (the frequency card moves by count).
    assert deployments == ("none", "▼ −1 vs 2026-W05 · within normal variation")
    assert cfr[0] == "none"
    assert "2026-W06: improved vs the previous window, improved vs the 12 windows before" in html
    assert "The shaded band is each window's 95% interval" in html


def test_a_change_with_too_few_samples_says_so_on_its_card():
    report = make_report(verdicts=verdicts_of(default="too little data"))
    facts = build_facts(report)
    html = render_report(report, builtin_result(facts), [], NOW, facts)
    assert "▼ −1.3 h vs 2026-W05 · too few deployments to judge" in html
