"""Metric reports as text for CI and terminals: JSON (DESIGN.md "Metric output"), Markdown, table.

`output_document()` is the one place that maps a `MetricReport` to the stable output keys;
`render_json`, `render_markdown` and `render_table` present that document. JSON keeps hours
and fractions (DESIGN.md); Markdown and the table write durations in humane units (`5.2 h`,
`3.5 d`, `24.6 wk`) and the deployment rate per day, week, month or year (`insights.humanize`),
and show each figure's 95% interval with its sample size and the verdicts of its changes
("no clear change" is what most week-to-week differences are).

Markdown goes into PR comments and job summaries, where GitHub renders links, images, HTML
and `@mentions`. Text from outside (change titles, ids) is therefore shown as an inline code
span (`inert()`): nothing inside one renders or pings anyone — `[x](https://evil)` stays
text, `@octocat` is not notified, `<img>` is shown, not loaded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.table import Table

from insights import humanize
from insights.metrics.result import Interval, MetricReport, WindowMetrics
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


def _with_intervals(m: WindowMetrics) -> dict[str, Any]:
    return {**_metric_keys(m), "intervals": m.intervals.model_dump()}


def output_document(report: MetricReport) -> dict[str, Any]:
    """The report as the stable output keys of DESIGN.md, with `previous` in the same keys,
    plus `intervals` (a confidence interval and sample size for each figure, in the window and
    in `previous`) and `verdicts` (per metric, against the previous window and the baseline;
    null when the report was computed without them)."""
    return {
        "tenant": report.tenant,
        "scope": report.scope.model_dump(),
        **_with_intervals(report),
        "previous": _with_intervals(report.previous) if report.previous else None,
        "verdicts": report.verdicts.model_dump() if report.verdicts else None,
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


def _days(m: WindowMetrics) -> float:
    return (m.window.end - m.window.start).total_seconds() / 86_400


def _rate(m: WindowMetrics, like: WindowMetrics | None = None) -> str:
    """The deployment rate of `m`; in the unit `like`'s rate is shown in, when given, so a
    row reads "4 per year" beside "0 per year", not beside "0 per month"."""
    unit = None
    if like is not None:
        c = humanize.cadence(like.deployment_count, _days(like))
        unit = c.unit.removeprefix("per ")
    return humanize.cadence(m.deployment_count, _days(m), unit).text


def _pct(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.1f}%"


def _interval(ci: Interval, pct: bool = False, unit: str = "") -> str:
    """`low–high (n=samples)`; an open bound is `…`; nothing without samples."""
    if ci.samples == 0 and ci.low is None and ci.high is None:
        return ""

    def bound(value: float | None) -> str:
        if value is None:
            return "…"
        return f"{value * 100:.1f}%" if pct else _num(value, unit)

    return f"{bound(ci.low)}–{bound(ci.high)} (n={ci.samples})"


def _rate_interval(per_week: Interval, m: WindowMetrics) -> str:
    """The per-week interval of the deployment rate in the unit its row shows:
    `0.1–22.1 per year (n=1)`."""
    if per_week.samples == 0 and per_week.low is None and per_week.high is None:
        return ""
    unit = humanize.cadence(m.deployment_count, _days(m)).unit.removeprefix("per ")
    scale = humanize.DAYS_PER[unit] / 7  # type: ignore[index]

    def bound(value: float | None) -> str:
        return "…" if value is None else humanize.number(humanize.round_half_up(value * scale))

    return f"{bound(per_week.low)}–{bound(per_week.high)} per {unit} (n={per_week.samples})"


def _verdict(report: MetricReport, metric: str | None) -> str:
    """The verdict against the previous window, and against the baseline when it differs."""
    if metric is None or report.verdicts is None:
        return ""
    found = getattr(report.verdicts, metric)
    previous = found.previous.verdict if found.previous else ""
    baseline = found.baseline.verdict if found.baseline else ""
    if baseline and baseline != previous:
        return f"{previous}; {baseline} vs baseline"
    return previous


def _rows(report: MetricReport) -> list[tuple[str, str, str, str, str, str]]:
    """(metric, this window, previous window, tier, 95% interval, verdict) for the headline
    metrics."""
    p = report.previous or WindowMetrics(window=report.window)
    t = report.tier
    ci = report.intervals
    return [
        (
            "Deployments",
            _num(report.deployment_count),
            _num(p.deployment_count),
            "",
            _interval(ci.deployment_count),
            _verdict(report, "deployment_frequency"),
        ),
        (
            "Deployment rate",
            _rate(report),
            _rate(p, like=report),
            t.deployment_frequency or "",
            _rate_interval(ci.deployments_per_week, report),
            "",
        ),
        (
            "Days with a deployment",
            _pct(report.deployment_days_share),
            _pct(p.deployment_days_share),
            "",
            _interval(ci.deployment_days_share, pct=True),
            _verdict(report, "deployment_days_share"),
        ),
        (
            "Lead time, median",
            _dur(report.lead_time_hours.median),
            _dur(p.lead_time_hours.median),
            t.lead_time or "",
            _interval(ci.lead_time_hours.median, unit=" h"),
            _verdict(report, "lead_time"),
        ),
        (
            "Lead time, p90",
            _dur(report.lead_time_hours.p90),
            _dur(p.lead_time_hours.p90),
            "",
            _interval(ci.lead_time_hours.p90, unit=" h"),
            "",
        ),
        (
            "Change failure rate",
            _pct(report.change_failure_rate),
            _pct(p.change_failure_rate),
            t.change_failure_rate or "",
            _interval(ci.change_failure_rate, pct=True),
            _verdict(report, "change_failure_rate"),
        ),
        (
            "Recovery time, median",
            _dur(report.recovery_time_hours.median),
            _dur(p.recovery_time_hours.median),
            t.recovery_time or "",
            _interval(ci.recovery_time_hours.median, unit=" h"),
            _verdict(report, "recovery_time"),
        ),
        (
            "Rework rate",
            _pct(report.rework_rate),
            _pct(p.rework_rate),
            "",
            _interval(ci.rework_rate, pct=True),
            _verdict(report, "rework_rate"),
        ),
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


_BACKTICKS = re.compile(r"`+")


def inert(text: str) -> str:
    """Untrusted text as one inline code span for a Markdown table cell: no link, image,
    HTML or mention renders inside it. The fence is one backtick longer than any run in the
    text (CommonMark's rule); `|` is escaped because GFM splits cells even inside code.

    >>> inert("Fix @octocat's [link](https://x.test)")
    "`Fix @octocat's [link](https://x.test)`"
    """
    flat = " ".join(text.split())
    if not flat:
        return ""
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat.replace('|', chr(92) + '|')}{pad}{fence}"


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
        f"| Metric | {report.window.label} | {previous} | Tier | 95% interval | Change |",
        "|---|---:|---:|---|---:|---|",
    ]
    lines += [
        f"| {m} | {now} | {before} | {tier} | {ci} | {verdict} |"
        for m, now, before, tier, ci, verdict in _rows(report)
    ]
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
            title = inert(f"{c.id} {c.title or ''}".strip()[:120])
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
    table.add_column("metric", no_wrap=True)
    table.add_column(report.window.label, justify="right")
    table.add_column(previous, justify="right")
    table.add_column("tier")
    table.add_column("95% interval", justify="right")
    for *row, _ in _rows(report):
        table.add_row(*row)
    # The verdicts go under the table: a sixth column does not fit an 80-column terminal.
    table.caption = f"overall tier: {report.tier.overall or 'no data'}\n{_moves(report)}"
    return table


def _moves(report: MetricReport) -> str:
    """The changes beyond normal variation, in one line."""
    if report.verdicts is None:
        return "changes: not judged"
    moves = []
    for metric, label in _LABELS.items():
        found = getattr(report.verdicts, metric)
        for side, name in ((found.previous, "previous"), (found.baseline, "baseline")):
            if side is not None and side.verdict in ("improved", "worsened"):
                moves.append(f"{label} {side.verdict} vs {name}")
    if not moves:
        return "changes: all within normal variation or too little data"
    return "changes beyond normal variation: " + "; ".join(moves)


_LABELS = {
    "deployment_frequency": "deployments",
    "deployment_days_share": "days with a deployment",
    "lead_time": "lead time",
    "change_failure_rate": "change failure rate",
    "recovery_time": "recovery time",
    "rework_rate": "rework rate",
}
