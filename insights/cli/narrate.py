"""CLI commands for narration: `insights narrate` (one narrative and who wrote it) and
`insights usage` (LLM tokens and estimated cost per tenant, provider and model)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from insights.cli import command, console
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
    settings,
)
from insights.errors import UserError

if TYPE_CHECKING:
    from insights.narrate.schema import NarrativeResult


class NarrateFormat(StrEnum):
    text = "text"
    json = "json"


def _author(result: NarrativeResult) -> str:
    """`written by: …` — the narrator, how it was obtained, and what it cost."""
    if result.provider == "builtin":
        who = "built-in narrator"
    else:
        who = f"{result.provider} {result.model or ''}".strip()
    line = f"written by: {who} ({result.outcome}"
    line += f": {result.reason})" if result.reason else ")"
    if result.tokens_in or result.tokens_out:
        line += (
            f"; {result.tokens_in} tokens in, {result.tokens_out} out, "
            f"{result.latency_ms} ms, est. ${result.cost_usd:.4f}"
        )
    return line


@command()
def narrate(
    scope: str | None = ScopeOption,
    service: str | None = ServiceOption,
    team: str | None = TeamOption,
    tenant: str | None = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
    provider: str | None = typer.Option(
        None,
        "--provider",
        metavar="NAME",
        help="Narrator instead of the tenant's: builtin, bedrock or openai.",
    ),
    fmt: NarrateFormat = typer.Option(
        NarrateFormat.text, "--format", "-f", metavar="text|json", help="Output format."
    ),
) -> None:
    """Narrate one scope and window and say which narrator wrote it.

    Uses the tenant's [tenants.llm] routing (cache, monthly budget, checks, fallback).

    Example: insights narrate --service checkout --window 2026-W05 --tenant acme
    """
    from insights import pipeline
    from insights.narrate.providers import PROVIDER_NAMES
    from insights.narrate.service import narrate_report
    from insights.store.db import unit_of_work

    if provider is not None and provider not in PROVIDER_NAMES:
        raise UserError(f"--provider {provider!r}: use one of {', '.join(PROVIDER_NAMES)}")
    from insights.store.registry import tenant_config as registered

    name, chosen = resolve_target(tenant, scope, service, team)
    span = resolve_window(window, start, end)
    s = settings()
    engine = open_database(s)
    tenant_config = registered(engine, s, name)
    if provider is not None:
        llm = tenant_config.llm.model_copy(update={"provider": provider})
        tenant_config = tenant_config.model_copy(update={"llm": llm})
    with unit_of_work(engine) as session:
        report = pipeline.compute_report(session, name, chosen, span)
        report = pipeline.with_sources(report, tenant_config)
        result = narrate_report(session, tenant_config, report)
    if fmt is NarrateFormat.json:
        console.print_json(result.model_dump_json())
        return
    narrative = result.narrative
    out = [f"{report.scope.kind} {report.scope.name}, {report.window.label}", "", narrative.summary]
    if narrative.highlights:
        out += ["", *[f"- {line}" for line in narrative.highlights]]
    out.append("")
    for i, rec in enumerate(narrative.recommendations, 1):
        out.append(f"{i}. {rec.title} [{rec.metric}]")
        if rec.capability:
            out.append(f"   DORA capability: {rec.capability}")
        out.append(f"   {rec.why}")
        if rec.evidence:
            out.append(f"   evidence: {'; '.join(rec.evidence)}")
    out += ["", _author(result)]
    console.print("\n".join(out), markup=False)


@command()
def usage(
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", metavar="NAME", help="Only this tenant (default: every tenant)."
    ),
    month: str | None = typer.Option(
        None, "--month", metavar="YYYY-MM", help="UTC calendar month (default: this month)."
    ),
) -> None:
    """LLM narrations, tokens and estimated cost per tenant, provider and model in a month,
    with each configured tenant's monthly token budget.

    Example: insights usage --tenant acme --month 2026-02
    """
    from insights.narrate import ledger
    from insights.store.db import unit_of_work
    from insights.timeutil import now

    s = settings()
    at = now()
    start, _ = ledger.month_bounds(month, at)
    engine = open_database(s)
    with unit_of_work(engine) as session:
        rows = ledger.usage(session, tenant, month, at)
    label = f"{start:%Y-%m}"
    if not rows:
        console.print(f"no narratives in {label}", markup=False)
        return
    lines = [("tenant", "provider", "model", "narratives", "tokens_in", "tokens_out", "est_usd")]
    for row in rows:
        lines.append(
            (
                row.tenant,
                row.provider,
                row.model or "-",
                str(row.narratives),
                str(row.tokens_in),
                str(row.tokens_out),
                f"{row.cost_usd:.4f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    outcomes = ["outcomes"] + [
        ", ".join(f"{k} {v}" for k, v in sorted(row.outcomes.items())) for row in rows
    ]
    console.print(f"narration usage {label} (UTC month; cost is an estimate)", markup=False)
    for line, outcome in zip(lines, outcomes, strict=True):
        cells = [
            cell.ljust(width) if i < 3 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        console.print("  ".join([*cells, outcome]), markup=False, soft_wrap=True)
    from insights.store.registry import organisation

    org = organisation(engine, s)
    for name in sorted({r.tenant for r in rows}):
        budget = org.tenant(name).llm.monthly_token_budget
        if budget:
            spent = sum(r.tokens_in + r.tokens_out for r in rows if r.tenant == name)
            console.print(
                f"{name}: {spent} of {budget} tokens ({spent / budget:.0%} of the monthly budget)",
                markup=False,
            )
