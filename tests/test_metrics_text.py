"""JSON/Markdown/table rendering of metric reports (DESIGN.md "Metric output")."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from metrics_support import change, commit, dep, frames
from rich.console import Console

from insights.deliver.text import output_document, render_json, render_markdown, render_table
from insights.metrics.compute import prepare, slowest_changes, window_metrics
from insights.metrics.result import MetricReport, Scope
from insights.metrics.windows import parse_window, previous

W02 = parse_window("2026-W02", datetime(2026, 3, 1, tzinfo=UTC))
EVENTS = [
    commit("aa01", "01-05 08:00"),
    commit("bb02", "01-05 09:00", ("aa01",)),
    dep("d1", "aa01", "01-05 08:30"),
    change(
        "7",
        first_commit="01-05 08:45",
        opened="01-05 09:00",
        review="01-05 09:30",
        merged="01-05 10:00",
        merge_sha="bb02",
        title="fix | table\nbreak <b>",
    ),
    dep("d2", "bb02", "01-05 12:00"),
]


def report(events=EVENTS) -> MetricReport:
    p = prepare(frames(events))
    return MetricReport(
        **dict(window_metrics(p, W02)),
        tenant="acme",
        scope=Scope(kind="service", name="checkout"),
        previous=window_metrics(p, previous(W02)),
        slowest_changes=slowest_changes(p, W02),
    )


def test_json_output_of_an_empty_window_is_null_not_zero_or_nan():
    doc = json.loads(render_json(report([])))
    assert doc["deployment_count"] == 0
    assert doc["deployment_days_share"] == 0  # days are its denominator: known, not null
    assert doc["change_failure_rate"] is None
    assert doc["lead_time_hours"] == {"median": None, "p75": None, "p90": None, "samples": 0}
    assert doc["tier"]["overall"] is None
    assert "NaN" not in render_json(report([]))


def test_output_document_previous_has_the_metric_keys_of_its_own_window():
    doc = output_document(report())
    assert doc["previous"]["window"] == {
        "start": "2025-12-29T00:00:00Z",
        "end": "2026-01-05T00:00:00Z",
    }
    assert doc["lead_time_hours"]["samples"] == 1  # bb02, shipped by d2 (d1 was the first)


def test_markdown_quotes_untrusted_titles_inside_one_table_cell():
    text = render_markdown(report())
    row = next(line for line in text.splitlines() if line.startswith("| `7 "))
    assert "`7 fix \\| table break <b>`" in row
    assert row.count(" | ") == 2  # three cells: title, service, lead time
    assert "| Deployments | 2 | 0 |" in text


HOSTILE_TITLES = [
    "[click me](https://evil.test) ![img](https://evil.test/x.png)",
    "ping @octocat and @acme/security-team",
    "<img src=https://evil.test/x.png onerror=alert(1)> <a href='https://evil.test'>x</a>",
    "https://evil.test/autolink and www.evil.test",
    "`code` ``double`` and a trailing backtick`",
]


def _rendered_title_cells(title: str) -> list:
    """The slowest-change cells of the Markdown rendered as CommonMark + GFM tables."""
    from markdown_it import MarkdownIt

    events = [*EVENTS[:3], dict(EVENTS[3], title=title), EVENTS[4]]
    html = MarkdownIt("commonmark").enable("table").render(render_markdown(report(events)))
    return [cell for cell in html.split("<td>")[1:] if cell.startswith("<code>7 ")]


def test_markdown_neutralises_links_mentions_and_html_in_titles():
    for title in HOSTILE_TITLES:
        (cell,) = _rendered_title_cells(title)
        body = cell.split("</td>")[0]
        assert body.startswith("<code>") and body.endswith("</code>"), (title, body)
        # one code span: no link, image or raw HTML element is produced, and GitHub does not
        # turn @names or URLs inside code into mentions or autolinks
        assert body.count("<code>") == 1, (title, body)
        assert "<a " not in body and "<img" not in body, (title, body)


def test_table_renders_every_headline_metric():
    out = io.StringIO()
    Console(file=out, width=120).print(render_table(report()))
    text = out.getvalue()
    for label in ("Deployment rate", "Lead time, median", "Change failure rate", "Rework"):
        assert label in text


STABLE_KEYS = {
    "tenant",
    "scope",
    "window",
    "deployment_count",
    "deployments_per_week",
    "deployment_days_share",
    "lead_time_hours",
    "change_failure_rate",
    "failed_deployments",
    "recovery_time_hours",
    "rework_rate",
    "lead_time_breakdown_hours",
    "tier",
    "previous",
}


def _report_with_verdicts() -> MetricReport:
    from insights.metrics.compute import trend_verdicts
    from insights.metrics.windows import history

    p = prepare(frames(EVENTS))
    verdicts = trend_verdicts(p, history(W02, 13))[-1]
    return report().model_copy(update={"verdicts": verdicts})


def test_json_keeps_todays_keys_and_adds_intervals_and_verdicts_under_new_keys():
    doc = json.loads(render_json(_report_with_verdicts()))
    assert set(doc) == STABLE_KEYS | {"intervals", "verdicts"}
    assert doc["lead_time_hours"] == {"median": 3.0, "p75": 3.0, "p90": 3.0, "samples": 1}
    assert doc["intervals"]["level"] == 0.95
    assert doc["intervals"]["deployment_count"] == {"low": 0.2422, "high": 7.2247, "samples": 2}
    assert doc["intervals"]["lead_time_hours"]["median"] == {
        "low": None,
        "high": None,
        "samples": 1,
    }
    assert set(doc["previous"]) == STABLE_KEYS - {"tenant", "scope", "previous"} | {"intervals"}
    cfr = doc["verdicts"]["change_failure_rate"]
    assert doc["verdicts"]["level"] == 0.05
    assert cfr["previous"]["verdict"] == "too little data"  # 2 deployments, none before
    assert cfr["previous"]["test"] == "Fisher exact"


def test_markdown_shows_each_figures_interval_sample_size_and_verdict():
    text = render_markdown(_report_with_verdicts())
    assert "| Metric | 2026-W02 | 2026-W01 | Tier | 95% interval | Change |" in text
    row = next(line for line in text.splitlines() if line.startswith("| Deployments |"))
    assert row.endswith("| 0.24–7.22 (n=2) | too little data |")
