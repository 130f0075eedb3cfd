"""What counts as a deployment per source, chart labels that fit, and facts in humane units."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from report_support import make_report, window_metrics

from insights.config import ServiceConfig, SourceConfig
from insights.deliver.charts import deployments_chart, label_step, short_label, trend_chart
from insights.deliver.coverage import deployment_source
from insights.metrics.result import LeadTimeHours
from insights.narrate.facts import build_facts


def _service(**source: object) -> ServiceConfig:
    return ServiceConfig(name="app", source=SourceConfig(**source))


def test_each_source_says_what_counts_as_a_deployment():
    tags = deployment_source(_service(kind="localgit", path=Path("/src/app"), tag_pattern="v*"))
    assert (tags.kind, tags.description, tags.noun) == (
        "release_tags",
        "each tag matching v* (not pre-releases)",
        "release",
    )
    default = deployment_source(
        _service(kind="localgit", path=Path("/src/app"), tag_exclude=["*-lts"])
    )
    assert default.description == "each version tag, except *-lts (not pre-releases)"
    log = deployment_source(
        _service(kind="localgit", path=Path("/src/app"), deploy_log=Path("/x/deploys.ndjson"))
    )
    assert log.kind == "deploy_log" and log.noun == "deployment"
    assert "deploys.ndjson" in log.description
    workflow = deployment_source(_service(kind="github", repo="o/r", workflow="deploy.yml"))
    assert workflow.description == "each successful run of the GitHub Actions workflow deploy.yml"
    api = deployment_source(_service(kind="gitlab", repo="g/p", environments=["production"]))
    assert api.description == "each successful GitLab deployment to production"
    assert deployment_source(None).kind == "events"


def _x_labels(svg: str) -> list[str]:
    """The x labels pygal draws (thinned-out ones are not drawn at all)."""
    axis = svg[svg.index('<g class="axis x') :]
    axis = axis.split('<g class="axis y', 1)[0]
    return re.findall(r'<text[^>]*class="major"[^>]*>([^<]+)</text>', axis)


def test_a_year_of_days_is_drawn_per_month_and_a_quarter_per_week():
    year = {(date(2025, 1, 1) + timedelta(days=d)).isoformat(): d % 2 for d in range(365)}
    title, svg = deployments_chart(year, "y", noun="release")
    assert title == "Releases per month"
    assert _x_labels(svg)[:3] == ["Jan", "Feb", "Mar"]
    quarter = {k: v for k, v in year.items() if k < "2025-04-01"}
    title, svg = deployments_chart(quarter, "q")
    assert title == "Deployments per week"
    assert len(_x_labels(svg)) <= 14


def test_trend_labels_are_thinned_and_ranges_shortened():
    assert label_step(12, 4) == 3 and label_step(52, 12) == 5
    assert short_label("2021-12-24..2022-03-26") == "12-24"
    assert short_label("2025-Q3") == "2025-Q3" and short_label("2026-W05") == "W05"


def test_lead_time_trend_of_weeks_is_drawn_in_weeks():
    history = [
        window_metrics(i, lead_time_hours=LeadTimeHours(median=600.0 + i, samples=3))
        for i in range(3)
    ]
    title, _ = trend_chart("lead_time", history, "t")
    assert title == "Lead time, median (weeks)"


def test_facts_carry_a_cadence_and_day_week_renderings_of_durations():
    facts = build_facts(make_report(lead_time_hours=LeadTimeHours(median=4127.93, samples=9)))
    numbers = set(facts["quotable"]["numbers"])
    assert {"4127.9", "24.6", "25"} <= numbers  # hours, weeks (1 and 0 decimals)
    assert facts["metrics"]["deployment_frequency"]["current"]["cadence"] == {
        "value": 6.0,
        "per": "week",
    }
    assert facts["data"] == {
        "commits_recorded": 0,
        "changes_recorded": 0,
        "incidents_recorded": 0,
        "commits_in_window": 0,
    }


def test_the_newest_window_is_always_labelled():
    history = [window_metrics(i) for i in range(11, -1, -1)]
    _, svg = trend_chart("lead_time", history, "t")
    labels = _x_labels(svg)
    assert labels[-1] == short_label(history[-1].window.label)
    assert len(labels) <= 4


def _checked(text: str, facts: dict) -> list[str]:
    from insights.narrate.schema import Narrative, Recommendation
    from insights.narrate.verify import check

    narrative = Narrative(
        summary=text,
        recommendations=[
            Recommendation(
                title="Keep going",
                why="Because.",
                metric="lead_time",
                capability="working in small batches",
                evidence=["lead time median: 20.5 hours"],
            )
        ],
    )
    return check(narrative, facts)


def test_checker_reads_a_duration_in_days_next_to_a_stage_share_as_a_duration():
    from insights.metrics.result import LeadTimeBreakdownHours

    facts = build_facts(
        make_report(
            lead_time_breakdown_hours=LeadTimeBreakdownHours(
                coding=140.0, pickup=10.0, review=5.0, deploy=4.0, samples=4
            )
        )
    )
    share = facts["lead_time_breakdown"]["current"]["share_pct"]["coding"]
    text = f"Largest lead-time stage: coding, 5.8 days ({share:g}% of the median path)."
    assert _checked(text, facts) == []


def test_checker_reads_a_cadence_per_month_or_year():
    facts = build_facts(make_report())  # 6 deployments in a week
    per_year = facts["metrics"]["deployment_frequency"]["current"]["per_year"]
    assert _checked(f"The team made {per_year:g} deployments per year at this pace.", facts) == []
    assert _checked("The team made 999 deployments per year.", facts) != []
