"""CLI commands that produce reports: `report` (HTML for a tenant's window) and `demo`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import typer

from insights.cli import command, console, err_console
from insights.cli.common import (
    FromOption,
    TenantOption,
    ToOption,
    WindowOption,
    resolve_target,
    resolve_window,
    settings,
)
from insights.errors import UserError

DEMO_DB = "demo.db"
# Written into the demo tenant's report folder: only a folder carrying it is cleared on the
# next run (a real tenant's reports are never deleted).
DEMO_MARKER = ".insights-demo"


def _progress(total: int) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console.get(),
        transient=True,
        disable=not err_console.is_terminal,
    )


def _writable(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the directory ({exc.strerror})") from None
    if not out.is_dir():
        raise UserError(f"--out {out}: not a directory")
    return out


@command()
def report(
    tenant: str | None = TenantOption,
    window: str | None = WindowOption,
    start: str | None = FromOption,
    end: str | None = ToOption,
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="DIR",
        help="Reports directory (default: INSIGHTS_REPORTS_DIR or ./reports).",
    ),
) -> None:
    """Write the HTML reports of a window: every service, team and the tenant, plus the index.

    Example: insights report --tenant acme --window 2026-W05 --out reports
    """
    from insights import pipeline
    from insights.cli.common import open_database
    from insights.store.db import unit_of_work
    from insights.store.repository import TenantRepository

    name, _ = resolve_target(tenant)
    chosen = resolve_window(window, start, end)
    s = settings()
    out_dir = _writable(out or s.reports_dir)
    engine = open_database(s)
    from insights.store.registry import tenant_config as registered

    tenant_config = registered(engine, s, name)
    with unit_of_work(engine) as session:
        TenantRepository.open(session, name)  # unknown tenant: one-line error
        built = pipeline.build_reports(session, tenant_config, chosen, out_dir)
    console.print(f"{len(built.paths)} reports for tenant {name}, {chosen.label}")
    console.print(str(built.index.resolve()), markup=False)


@command()
def demo(
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="DIR",
        help="Where to write (default: INSIGHTS_REPORTS_DIR or ./reports).",
    ),
    repo: Path | None = typer.Option(
        None,
        "--repo",
        metavar="PATH",
        help="Report on this local git clone instead of generated data.",
    ),
    tags: str | None = typer.Option(
        None,
        "--tags",
        metavar="GLOB",
        help="With --repo: tags matching this glob are production deployments (default:"
        " version tags like v1.2.3 or 1.2; pre-releases never).",
    ),
    window: str | None = typer.Option(
        None,
        "--window",
        "-w",
        metavar="WINDOW",
        help="Week, month, quarter (2026-Q1), year (2026) or FROM..TO; default: the last full "
        "week (with --repo: the week of the newest deployment).",
    ),
    start: str | None = FromOption,
    end: str | None = ToOption,
) -> None:
    """Build reports for a demo organisation (or a local clone) and print the index path.

    Without --repo: three teams, six services, twelve weeks of commits, pull requests,
    deployments and incidents (one team improving, one degrading) are imported through the
    normal event path. With --repo PATH: the local-git collector reads the clone (tags are
    deployments). Either way the data goes into its own SQLite database, OUT/demo.db —
    recreated on each run, never your configured database — and is then computed, narrated by
    the built-in narrator and written to OUT/demo/, which is replaced on each run too (so
    the index never mixes reports of an earlier demo).

    Examples: insights demo --out /tmp/dora-demo ;  insights demo --repo ~/src/app --tags 'v*'
    """
    from insights import demo as demo_org
    from insights import pipeline
    from insights.collect.sync import run_sync
    from insights.config import OrgConfig
    from insights.deliver.html import safe_name
    from insights.metrics.windows import default_window
    from insights.store.db import dispose_engine, engine_for, migrate, unit_of_work
    from insights.timeutil import now

    started = time.perf_counter()
    stamp = now()
    chosen = resolve_window(window, start, end) if window or start or end else None
    out_dir = _writable(out or settings().reports_dir)
    _clear_demo_reports(out_dir / safe_name(demo_org.TENANT))
    db_path = out_dir / DEMO_DB
    db_path.unlink(missing_ok=True)
    url = f"sqlite:///{db_path.resolve()}"
    engine = engine_for(url)
    try:
        migrate(engine)
        if repo is None:
            tenant_config = demo_org.demo_tenant_config()
            events = demo_org.generate(stamp)
            with unit_of_work(engine) as session:
                org_repo = pipeline.apply_org_config(session, tenant_config)
                stored = pipeline.store_events(
                    org_repo, events, create_services=True, tenant_config=tenant_config
                )
            loaded = f"{stored.stored} generated events"
        else:
            tenant_config = demo_org.local_repo_config(repo, tags)
            with unit_of_work(engine) as session:
                pipeline.apply_org_config(session, tenant_config)
            synced = run_sync(engine, OrgConfig(tenants=[tenant_config]), tenant_config.name)
            loaded = f"{sum(r.records for r in synced)} records from {repo}"
        if chosen is None:
            with unit_of_work(engine) as session:
                newest = demo_org.latest_deployment_window(session, tenant_config.name)
            chosen = newest if repo is not None and newest else default_window(stamp)
            if repo is not None and newest is None:
                for report in synced:
                    for warning in report.warnings:
                        err_console.print(f"demo: {repo}: {warning}", markup=False)
                err_console.print(f"demo: no release tag in {repo}: no deployments")
        with _progress(10) as progress, unit_of_work(engine) as session:
            task = progress.add_task(f"reports {chosen.label}", total=None)
            built = pipeline.build_reports(
                session,
                tenant_config,
                chosen,
                out_dir,
                generated_at=stamp,
                progress=lambda _r: progress.advance(task),
            )
    finally:
        dispose_engine(url)
    seconds = time.perf_counter() - started
    err_console.print(
        f"demo: {loaded}, {len(tenant_config.services)} services, "
        f"{len(built.paths)} reports for {chosen.label} in {seconds:.1f} s "
        f"(database {db_path})",
        markup=False,
    )
    console.print(str(built.index.resolve()), markup=False)


def _clear_demo_reports(folder: Path) -> None:
    """Remove the previous demo's reports (its database is recreated too); a folder of that
    name without the demo's marker belongs to a real tenant and is refused, never deleted."""
    if folder.exists():
        # demo.db beside it: written by a demo from before the marker existed
        if not (folder / DEMO_MARKER).is_file() and not (folder.parent / DEMO_DB).is_file():
            raise UserError(
                f"{folder}: holds reports that `insights demo` did not write; choose another --out"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / DEMO_MARKER).write_text("written by `insights demo`; replaced on each run\n")
