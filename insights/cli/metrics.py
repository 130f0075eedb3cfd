"""CLI commands that compute and show metrics: `compute`, `metrics`, `gate` (for CI)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from insights.cli import command, console, err_console
from insights.cli.common import (
    FromOption,
    ScopeOption,
    ServiceOption,
    TeamOption,
    TenantOption,
    ToOption,
    WindowOption,
    open_database,
    resolve_target,
    resolve_window,
)
from insights.errors import UserError

if TYPE_CHECKING:
    from insights.metrics.result import MetricReport, Scope, Window


class MetricsFormat(StrEnum):
    json = "json"
    markdown = "markdown"
    table = "table"


class GateFormat(StrEnum):
    text = "text"
    markdown = "markdown"


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%?)\s*$")


def parse_rate(text: str, option: str) -> float:
    """A rate given as a fraction (`0.15`) or a percentage (`15%`), between 0 and 1.

    >>> parse_rate("15%", "--max-change-failure-rate")
    0.15
    """
    match = _RATE.match(text)
    if match is None:
        raise UserError(f"{option} {text!r}: give a fraction (0.15) or a percentage (15%)")
    value = float(match[1]) / (100 if match[2] else 1)
    if value > 1:
        hint = f" (did you mean {text.strip()}%?)" if not match[2] and value <= 100 else ""
        raise UserError(f"{option} {text!r}: a rate is at most 1 (100%){hint}")
    return value


def _report(tenant: str, scope: Scope, window: Window) -> MetricReport:
    from insights import pipeline
    from insights.store.db import unit_of_work

    engine = open_database()
    with unit_of_work(engine) as session:
        return pipeline.compute_report(session, tenant, scope, window)


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


@command()
def compute(
    tenant: str | None = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
) -> None:
    """Compute metrics of every service, team and the tenant for a window and store snapshots.

    Example: insights compute --tenant acme --window 2026-W05
    """
    from rich.table import Table

    from insights import pipeline
    from insights.store.db import unit_of_work

    name, _ = resolve_target(tenant)
    span = resolve_window(window, start, end)
    engine = open_database()
    with unit_of_work(engine) as session:
        reports = pipeline.compute_all(session, name, span)
    table = Table(title=f"metric snapshots stored: {name} {span.label}")
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


@command()
def metrics(
    scope: str | None = ScopeOption,
    service: str | None = ServiceOption,
    team: str | None = TeamOption,
    tenant: str | None = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
    output: MetricsFormat = typer.Option(
        MetricsFormat.table, "--format", "-f", metavar="json|markdown|table", help="Output format."
    ),
) -> None:
    """Print the DORA metrics of a scope and window (with the previous window for trends).

    --format markdown also appends to $GITHUB_STEP_SUMMARY when it is set.

    Example: insights metrics --service checkout --window 2026-W05 --format json
    """
    from insights.deliver.text import render_json, render_markdown, render_table

    name, chosen = resolve_target(tenant, scope, service, team)
    report = _report(name, chosen, resolve_window(window, start, end))
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


@command()
def gate(
    max_change_failure_rate: str | None = typer.Option(
        None,
        "--max-change-failure-rate",
        metavar="RATE",
        help="Fail when the change failure rate is above this (0.15 or 15%).",
    ),
    max_lead_time: str | None = typer.Option(
        None,
        "--max-lead-time",
        metavar="DURATION",
        help="Fail when the median lead time is longer (48h, 2d, 90m).",
    ),
    min_deployments_per_week: float | None = typer.Option(
        None,
        "--min-deployments-per-week",
        metavar="N",
        help="Fail when there are fewer production deployments per week.",
    ),
    max_recovery_time: str | None = typer.Option(
        None,
        "--max-recovery-time",
        metavar="DURATION",
        help="Fail when the median failed-deployment recovery time is longer.",
    ),
    scope: str | None = ScopeOption,
    service: str | None = ServiceOption,
    team: str | None = TeamOption,
    tenant: str | None = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
    output: GateFormat = typer.Option(
        GateFormat.text, "--format", "-f", metavar="text|markdown", help="Output format."
    ),
) -> None:
    """Exit 1 when a metric breaches its limit (one line per breached rule), 0 otherwise.

    A window without deployments breaches --min-deployments-per-week; rules on rates and times
    have no data then and are reported as not evaluated (they do not fail the gate).

    Example: insights gate --max-change-failure-rate 15% --max-lead-time 48h --service api
    """
    from insights.metrics.gate import Limits, evaluate, parse_duration_hours

    limits = Limits(
        max_change_failure_rate=(
            parse_rate(max_change_failure_rate, "--max-change-failure-rate")
            if max_change_failure_rate is not None
            else None
        ),
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
    name, chosen = resolve_target(tenant, scope, service, team)
    report = _report(name, chosen, resolve_window(window, start, end))
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
