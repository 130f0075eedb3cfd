"""Metric reports as text for CI and terminals: JSON (DESIGN.md "Metric output"), Markdown, table.

`output_document()` is the one place that maps a `MetricReport` to the stable output keys;
`render_json`, `render_markdown` and `render_table` present that document. JSON keeps hours
and fractions (DESIGN.md); Markdown and the table write durations in humane units (`5.2 h`,
`3.5 d`, `24.6 wk`) and the deployment rate per day, week, month or year (`insights.humanize`).
"""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from insights import humanize
from insights.metrics.result import MetricReport, WindowMetrics
from insights.timeutil import iso


def _metric_keys(m: WindowMetrics) -> dict[str, Any]:
    breakdown = m.lead_time_breakdown_hours
    return {
        "window": {"start": iso(m.window.start), "end": iso(m.window.end)},
        "deployment_count": m.deployment_count,
        "deployments_per_week": m.deployments_per_week,
        "deployment_days_share": m.deployment_days_share,
        "lead_time_hours": m.lead_time_hours.model_dump(),
        "change_failure_rate": m.change_failure_rate,
        "failed_deployments": m.failed_deployments,
        "recovery_time_hours": m.recovery_time_hours.model_dump(),
        "rework_rate": m.rework_rate,
        "lead_time_breakdown_hours": {
            "coding": breakdown.coding,
            "pickup": breakdown.pickup,
            "review": breakdown.review,
            "deploy": breakdown.deploy,
        },
        "tier": m.tier.model_dump(),
    }


def output_document(report: MetricReport) -> dict[str, Any]:
    """The report as the stable output keys of DESIGN.md, with `previous` in the same keys."""
    return {
        "tenant": report.tenant,
        "scope": report.scope.model_dump(),
        **_metric_keys(report),
        "previous": _metric_keys(report.previous) if report.previous else None,
    }


def render_json(report: MetricReport) -> str:
    """The output document as indented JSON (null for unknown values, never NaN)."""
    return json.dumps(output_document(report), indent=2, allow_nan=False) + "\n"


def _num(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "no data"
    if isinstance(value, int):
        return f"{value}{unit}"
    return f"{value:.2f}".rstrip("0").rstrip(".") + unit


def _dur(hours: float | None) -> str:
    return humanize.duration(hours, short=True)


def _rate(m: WindowMetrics) -> str:
    days = (m.window.end - m.window.start).total_seconds() / 86_400
    return humanize.cadence(m.deployment_count, days).text


def _pct(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.1f}%"


def _rows(report: MetricReport) -> list[tuple[str, str, str, str]]:
    """(metric, this window, previous window, tier) for the headline metrics."""
    p = report.previous or WindowMetrics(window=report.window)
    t = report.tier
    return [
        ("Deployments", _num(report.deployment_count), _num(p.deployment_count), ""),
        (
            "Deployment rate",
            _rate(report),
            _rate(p),
            t.deployment_frequency or "",
        ),
        (
            "Days with a deployment",
            _pct(report.deployment_days_share),
            _pct(p.deployment_days_share),
            "",
        ),
        (
            "Lead time, median",
            _dur(report.lead_time_hours.median),
            _dur(p.lead_time_hours.median),
            t.lead_time or "",
        ),
        (
            "Lead time, p90",
            _dur(report.lead_time_hours.p90),
            _dur(p.lead_time_hours.p90),
            "",
        ),
        (
            "Change failure rate",
            _pct(report.change_failure_rate),
            _pct(p.change_failure_rate),
            t.change_failure_rate or "",
        ),
        (
            "Recovery time, median",
            _dur(report.recovery_time_hours.median),
            _dur(p.recovery_time_hours.median),
            t.recovery_time or "",
        ),
        ("Rework rate", _pct(report.rework_rate), _pct(p.rework_rate), ""),
    ]


def _title(report: MetricReport) -> str:
    return f"DORA metrics — {report.scope.kind} {report.scope.name} — {report.window.label}"


def _cell(text: str) -> str:
    """Untrusted text as one Markdown table cell: no column breaks, line breaks or raw HTML."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def render_markdown(report: MetricReport) -> str:
    """A GitHub-flavoured Markdown summary: the headline table, tier, breakdown, slowest changes."""
    previous = report.previous.window.label if report.previous else "previous"
    lines = [
        f"### {_cell(_title(report))}",
        "",
        f"Tenant `{_cell(report.tenant)}`, window {iso(report.window.start)} – "
        f"{iso(report.window.end)} (end excluded). Overall tier: "
        f"**{report.tier.overall or 'no data'}**.",
        "",
        f"| Metric | {report.window.label} | {previous} | Tier |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {m} | {now} | {before} | {tier} |" for m, now, before, tier in _rows(report)]
    b = report.lead_time_breakdown_hours
    if b.samples:
        lines += [
            "",
            f"Lead-time breakdown (medians over {b.samples} changes): coding "
            f"{_dur(b.coding)}, pickup {_dur(b.pickup)}, review {_dur(b.review)}, "
            f"deploy {_dur(b.deploy)}.",
        ]
    if report.slowest_changes:
        lines += ["", "| Slowest change | Service | Lead time |", "|---|---|---:|"]
        for c in report.slowest_changes:
            title = _cell(f"{c.id} {c.title or ''}".strip()[:120])
            lines.append(f"| {title} | {_cell(c.service)} | {_dur(c.lead_time_hours)} |")
    if report.incidents_without_deployment:
        lines += [
            "",
            f"{report.incidents_without_deployment} incident(s) opened before any production "
            "deployment of their service: not counted in the change failure rate.",
        ]
    return "\n".join(lines) + "\n"


def render_table(report: MetricReport) -> Table:
    """The headline metrics as a rich table for `--format table`."""
    previous = report.previous.window.label if report.previous else "previous"
    table = Table(title=_title(report))
    table.add_column("metric")
    table.add_column(report.window.label, justify="right")
    table.add_column(previous, justify="right")
    table.add_column("tier")
    for row in _rows(report):
        table.add_row(*row)
    table.caption = f"overall tier: {report.tier.overall or 'no data'}"
    return table
