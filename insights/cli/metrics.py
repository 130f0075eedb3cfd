"""CLI commands that compute and show metrics: `compute`, `metrics`, `gate` (for CI)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from insights import pipeline
from insights.cli import app, console, err_console
from insights.cli.common import TenantOption, open_database
from insights.deliver.text import render_json, render_markdown, render_table
from insights.errors import UserError
from insights.metrics.gate import Limits, evaluate, parse_duration_hours
from insights.metrics.result import MetricReport, Window
from insights.metrics.scope import parse_scope
from insights.metrics.windows import between, parse_time_bound, parse_window
from insights.store.db import unit_of_work
from insights.timeutil import now

WindowOption = typer.Option(
    None,
    "--window",
    "-w",
    help="ISO week (2026-W05, the default is the last complete week) or month (2026-01).",
)
FromOption = typer.Option(None, "--from", help="Window start: a date or ISO time (UTC if Z).")
ToOption = typer.Option(None, "--to", help="Window end, excluded: a date or ISO time.")
ScopeOption = typer.Option(
    "tenant", "--scope", "-s", help="service:NAME, team:NAME or tenant (the default)."
)


class MetricsFormat(StrEnum):
    json = "json"
    markdown = "markdown"
    table = "table"


class GateFormat(StrEnum):
    text = "text"
    markdown = "markdown"


def resolve_window(window: str | None, start: str | None, end: str | None) -> Window:
    """The window from --window or --from/--to (not both); the default is last week."""
    if start is None and end is None:
        return parse_window(window, now())
    if window is not None:
        raise UserError("--window: give either --window or --from/--to, not both")
    if start is None or end is None:
        raise UserError("--from/--to: give both ends of the window")
    return between(parse_time_bound(start, "--from"), parse_time_bound(end, "--to"))


def _report(tenant: str, scope: str, window: Window) -> MetricReport:
    engine = open_database()
    with unit_of_work(engine) as session:
        return pipeline.compute_report(session, tenant, parse_scope(scope, tenant), window)


def _step_summary(markdown: str) -> None:
    """Append to GitHub Actions' job summary when `$GITHUB_STEP_SUMMARY` names a file."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    except OSError as exc:
        raise UserError(f"GITHUB_STEP_SUMMARY {target!r}: cannot append ({exc.strerror})") from None


@app.command()
def compute(
    tenant: str = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
) -> None:
    """Compute metrics of every service, team and the tenant for a window and store snapshots.

    Example: insights compute --tenant acme --window 2026-W05
    """
    span = resolve_window(window, start, end)
    engine = open_database()
    with unit_of_work(engine) as session:
        reports = pipeline.compute_all(session, tenant, span)
    table = Table(title=f"metric snapshots stored: {tenant} {span.label}")
    for column in ("scope", "deployments", "lead time h (median)", "CFR", "tier"):
        table.add_column(column, justify="left" if column == "scope" else "right")
    for r in reports:
        table.add_row(
            f"{r.scope.kind}:{r.scope.name}",
            str(r.deployment_count),
            "no data" if r.lead_time_hours.median is None else f"{r.lead_time_hours.median:g}",
            "no data" if r.change_failure_rate is None else f"{r.change_failure_rate:.0%}",
            r.tier.overall or "no data",
        )
    console.print(table)


@app.command()
def metrics(
    scope: str = ScopeOption,
    tenant: str = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
    output: MetricsFormat = typer.Option(
        MetricsFormat.table, "--format", "-f", help="json, markdown or table."
    ),
) -> None:
    """Print the DORA metrics of a scope and window (with the previous window for trends).

    --format markdown also appends to $GITHUB_STEP_SUMMARY when it is set.

    Example: insights metrics --scope service:checkout --window 2026-W05 --format json
    """
    report = _report(tenant, scope, resolve_window(window, start, end))
    if output is MetricsFormat.json:
        console.out(render_json(report), end="")
    elif output is MetricsFormat.markdown:
        text = render_markdown(report)
        console.out(text, end="")
        _step_summary(text)
    else:
        console.print(render_table(report))


def _gate_markdown(
    report: MetricReport,
    lines: list[tuple[str, str, str, str]],
    notes: Sequence[tuple[str, str]] = (),
) -> str:
    icon = {"pass": "✅ pass", "breach": "❌ breach", "no data": "➖ no data"}
    rows = "\n".join(f"| {rule} | {got} | {limit} | {icon[o]} |" for rule, got, limit, o in lines)
    failed = any(o == "breach" for *_, o in lines)
    head = (
        f"### DORA gate {'failed' if failed else 'passed'}: {report.scope.kind} "
        f"{report.scope.name}, {report.window.label}"
    )
    note = ""
    if report.deployment_count == 0:
        note = "\nNo production deployments in this window: maximum rules are not evaluated.\n"
    for rule, thin in notes:
        note += f"\n> {rule}: {thin}\n"
    return f"{head}\n\n| Rule | Actual | Limit | Result |\n|---|---:|---:|---|\n{rows}\n{note}"


@app.command()
def gate(
    max_change_failure_rate: float | None = typer.Option(
        None, help="Fail when the change failure rate is above this fraction (0.15 = 15%)."
    ),
    max_lead_time: str | None = typer.Option(
        None, help="Fail when the median lead time is longer (48h, 2d, 90m)."
    ),
    min_deployments_per_week: float | None = typer.Option(
        None, help="Fail when there are fewer production deployments per week."
    ),
    max_recovery_time: str | None = typer.Option(
        None, help="Fail when the median failed-deployment recovery time is longer."
    ),
    scope: str = ScopeOption,
    tenant: str = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
    output: GateFormat = typer.Option(GateFormat.text, "--format", "-f", help="text or markdown."),
) -> None:
    """Exit 1 when a metric breaches its limit (one line per breached rule), 0 otherwise.

    A window without deployments breaches --min-deployments-per-week; rules on rates and times
    have no data then and are reported as not evaluated (they do not fail the gate).

    Example: insights gate --max-change-failure-rate 0.15 --max-lead-time 48h --scope service:api
    """
    limits = Limits(
        max_change_failure_rate=max_change_failure_rate,
        max_lead_time_hours=(
            parse_duration_hours(max_lead_time, "--max-lead-time") if max_lead_time else None
        ),
        min_deployments_per_week=min_deployments_per_week,
        max_recovery_time_hours=(
            parse_duration_hours(max_recovery_time, "--max-recovery-time")
            if max_recovery_time
            else None
        ),
    )
    report = _report(tenant, scope, resolve_window(window, start, end))
    verdicts = evaluate(report, limits)
    breached = [v for v in verdicts if v.outcome == "breach"]
    where = f"{report.scope.kind}:{report.scope.name} {report.window.label}"
    if output is GateFormat.markdown:
        text = _gate_markdown(
            report,
            [(v.rule, v.actual, v.limit, v.outcome) for v in verdicts],
            [(v.rule, v.note) for v in verdicts if v.note],
        )
        console.out(text, end="")
        _step_summary(text)
    else:
        if report.deployment_count == 0:
            console.out(f"no production deployments in {where}")
        for v in verdicts:
            prefix = {"breach": "FAIL", "pass": "ok", "no data": "skip"}[v.outcome]
            console.out(f"{prefix}: {v.line}")
            if v.note:
                console.out(f"  note: {v.note}")
    if breached:
        err_console.print(f"gate failed: {len(breached)} rule(s) breached in {where}", markup=False)
        raise typer.Exit(1)
    if output is GateFormat.text:
        console.out(f"gate passed: {where}")
