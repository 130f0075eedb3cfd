"""`insights sync`: run the collectors configured in insights.toml, with progress and a summary.

Every source is tried even when an earlier one fails (a missing token, an unreachable host);
the summary gives each source's outcome and the exit code is 1 when any source failed (what
the others stored is kept).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer

from insights.cli import command, console, err_console
from insights.cli.common import ServiceOption, open_database, settings
from insights.errors import UserError

if TYPE_CHECKING:
    from insights.collect.sync import SyncReport
    from insights.config import ServiceConfig, TenantConfig


@command()
def sync(
    tenant: str | None = typer.Option(
        None,
        "--tenant",
        "-t",
        envvar="INSIGHTS_TENANT",
        metavar="NAME",
        help="Only this tenant (default: every tenant in insights.toml).",
    ),
    service: str | None = ServiceOption,
) -> None:
    """Fetch new delivery data for the services configured in insights.toml.

    Each source keeps a cursor in the database, so a sync reads only what changed; a sync that
    is interrupted (even kill -9) resumes from its last committed batch. Every source is
    tried; the exit code is 1 when any of them failed.

    Example: INSIGHTS_CONFIG=insights.toml insights sync --service checkout
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from insights.collect.sync import run_sync
    from insights.store.registry import organisation

    s = settings()
    engine = open_database(s)
    org = organisation(engine, s)
    if not org.tenants:
        raise UserError("nothing to sync: no tenants configured (set INSIGHTS_CONFIG)")
    if tenant and tenant not in org.by_name:
        raise UserError(f"--tenant {tenant}: not configured in insights.toml")
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[records]:>9,} records  {task.fields[kind]}"),
        TimeElapsedColumn(),
        console=err_console.get(),
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        # keyed by source too: a service's incident tools run as their own collectors
        tasks: dict[tuple[str, str, str], int] = {}

        def on_start(tenant_config: TenantConfig, service_config: ServiceConfig) -> None:
            key = (tenant_config.name, service_config.name, service_config.source.kind)
            tasks[key] = progress.add_task(
                f"{tenant_config.name}/{service_config.name} ({service_config.source.kind})",
                records=0,
                kind="",
            )

        def on_batch(report: SyncReport, kind: str) -> None:
            task = tasks.get((report.tenant, report.service, report.source))
            if task is not None:
                progress.update(task, records=report.records, kind=kind)

        reports = run_sync(
            engine,
            org,
            tenant=tenant,
            service=service,
            on_batch=on_batch,
            on_start=on_start,
            keep_going=True,
        )
    console.print(summary_table(reports))
    for report in reports:
        for warning in report.warnings:
            err_console.print(f"warning: {report.tenant}/{report.service}: {warning}", markup=False)
        if report.removed:
            gone = ", ".join(f"{count} {kind}(s)" for kind, count in sorted(report.removed.items()))
            err_console.print(
                f"{report.tenant}/{report.service}: removed {gone} the source no longer selects",
                markup=False,
            )
        if report.stopped_early:  # e.g. a rate limit outlasting the wait budget: cursor kept
            err_console.print(
                f"warning: {report.tenant}/{report.service} stopped early: {report.stopped_early}",
                markup=False,
            )
    failed = [r for r in reports if r.error]
    for report in failed:
        err_console.print(
            f"error: {report.tenant}/{report.service} ({report.source}): {report.error}",
            markup=False,
        )
    total = sum(r.records for r in reports)
    console.print(
        f"{len(reports) - len(failed)} of {len(reports)} source(s) synced, {total} records "
        f"read in {time.perf_counter() - started:.1f} s"
        + (f"; {len(failed)} failed" if failed else "")
    )
    if failed:
        raise typer.Exit(1)


def summary_table(reports: list[SyncReport]) -> Any:
    """Records new/updated/unchanged per service and kind, the records of each kind skipped as
    invalid (refused by the event model, each named in a warning), the time each took and
    its outcome (ok, stopped early, failed)."""
    from rich.table import Table

    table = Table(title="sync")
    numbers = ("new", "updated", "unchanged", "skipped")
    widths = {
        "tenant": max([6] + [len(r.tenant) for r in reports]),
        "service": max([7] + [len(r.service) for r in reports]),
        "kind": 10,
        "outcome": max([7] + [len(r.outcome) for r in reports]),
    }
    for column in ("tenant", "service", "kind", *numbers, "seconds", "outcome"):
        # words are never cut to fit an 80-column terminal; the number headers wrap instead
        table.add_column(
            column,
            justify="right" if column in {*numbers, "seconds"} else "left",
            no_wrap=column in widths,
            min_width=widths.get(column),
        )
    for report in reports:
        kinds = sorted(set(report.counts) | set(report.skipped)) or ["-"]
        for index, kind in enumerate(kinds):
            first = index == 0
            counts = report.counts.get(kind)
            table.add_row(
                report.tenant if first else "",
                report.service if first else "",
                kind,
                str(counts.new) if counts else "0",
                str(counts.updated) if counts else "0",
                str(counts.unchanged) if counts else "0",
                str(report.skipped.get(kind, 0)),
                f"{report.seconds:.1f}" if first else "",
                report.outcome if first else "",
            )
    return table


@command()
def rebuild(
    service: str = typer.Option(
        ..., "--service", "-s", metavar="NAME", help="The service to rebuild."
    ),
    tenant: str | None = typer.Option(
        None,
        "--tenant",
        "-t",
        envvar="INSIGHTS_TENANT",
        metavar="NAME",
        help="Its tenant (needed when several tenants have a service of that name).",
    ),
) -> None:
    """Re-derive one service's records from its kept raw data (GitHub, GitLab) or its clone.

    GitHub/GitLab: its changes, deployments and incidents are deleted and mapped again from the
    kept API payloads and webhook deliveries, in one transaction, with no request. Local git:
    its cursors are dropped and the clone is read again, so deployments equal the tags the
    configuration selects now. Run it after changing a mapping rule or the tag selection.

    Example: insights rebuild --service checkout
    """
    from insights.collect.rebuild import rebuild_service

    s = settings()
    org = s.organisation()
    tenants = [org.tenant(tenant)] if tenant else org.tenants
    found = [(t, t.service(service)) for t in tenants if t.service(service) is not None]
    if not found:
        where = f" of tenant {tenant!r}" if tenant else ""
        raise UserError(f"--service {service}: not configured in insights.toml{where}")
    if len(found) > 1:
        names = ", ".join(t.name for t, _ in found)
        raise UserError(f"--service {service}: several tenants have it ({names}); add --tenant")
    tenant_config, service_config = found[0]
    assert service_config is not None
    engine = open_database(s)
    report = rebuild_service(engine, tenant_config, service_config)
    for warning in report.warnings:
        err_console.print(f"warning: {report.tenant}/{report.service}: {warning}", markup=False)
    removed = ", ".join(f"{n} {k}" for k, n in sorted(report.removed.items()) if n) or "nothing"
    derived = ", ".join(f"{n} {k}" for k, n in sorted(report.derived.items())) or "nothing"
    console.print(f"{report.tenant}/{report.service} ({report.source}): removed {removed}")
    console.print(f"derived again: {derived}", markup=False)
    if report.source in ("github", "gitlab"):
        skipped = f", {report.skipped} skipped (rejected now)" if report.skipped else ""
        console.print(f"{report.deliveries} kept webhook deliveries replayed{skipped}")
