"""The weekly run of one tenant: compute, narrate, write the HTML reports, send the digests.

This is what the scheduler's `weekly:<tenant>` job and `insights digest` run. Order matters:
the reports are written (and the metric snapshots and narratives stored) before anything is
delivered, so a Slack or SMTP failure never loses a report; each failure is counted and named
in the run's record, and the run is `partial` instead of `success`.

Report links in digests: with INSIGHTS_REPORT_LINK_SECRET set, a digest links to a signed,
expiring URL the built-in API opens without a token (insights/deliver/links.py):
`<base>/<tenant>/2026-W05/team-payments.html?expires=…&sig=…`, base being the API's `/reports`
URL (`https://insights.example.com/reports`; a `{tenant}` in it is replaced instead of
appending). Without the secret the link is plain: `INSIGHTS_REPORT_BASE_URL` is then the URL of
a tenant's report folder (`{tenant}` replaced), e.g. static hosting of the reports directory
(`https://reports.example.com/{tenant}` → `<base>/2026-W05/team-payments.html`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from insights.config import Settings, TenantConfig
from insights.deliver import slack
from insights.deliver.email import email_settings, send_report_email
from insights.deliver.html import report_path, safe_name
from insights.deliver.links import link_secret, signed_report_url
from insights.errors import UserError
from insights.metrics.result import MetricReport, Window
from insights.metrics.windows import parse_window
from insights.narrate.schema import NarrativeResult
from insights.narrate.service import narrate_reports
from insights.pipeline import build_reports, compute_all, with_sources
from insights.store.db import unit_of_work
from insights.timeutil import now as utcnow

log = logging.getLogger(__name__)


def report_url(
    settings: Settings, out_dir: Path, tenant: str, path: Path, now: datetime | None = None
) -> str | None:
    """The public link of a report file, or None when no base URL is configured; signed
    (valid INSIGHTS_REPORT_LINK_TTL_DAYS from `now`) when INSIGHTS_REPORT_LINK_SECRET is set."""
    base = settings.report_base_url.strip()
    if not base:
        return None
    folder = safe_name(tenant)
    relative = path.relative_to(out_dir / folder).as_posix()
    if link_secret(settings) is not None:
        return signed_report_url(settings, folder, relative, now or utcnow())
    return f"{base.replace('{tenant}', tenant).rstrip('/')}/{relative}"


@dataclass
class WeeklyBuild:
    """The reports of one tenant and window, written to disk."""

    tenant: str
    window: str
    items: list[tuple[MetricReport, NarrativeResult]]
    paths: dict[tuple[str, str], Path] = field(default_factory=dict)  # (kind, name) → file

    def team_items(self) -> list[tuple[MetricReport, NarrativeResult]]:
        return [(r, n) for r, n in self.items if r.scope.kind == "team"]

    def tenant_item(self) -> tuple[MetricReport, NarrativeResult] | None:
        return next(((r, n) for r, n in self.items if r.scope.kind == "tenant"), None)


def build_week(
    engine: Engine,
    settings: Settings,
    tenant: TenantConfig,
    window_text: str | Window | None,
    at: datetime,
    write: bool = True,
) -> WeeklyBuild:
    """Compute every scope of `tenant` for the window, narrate each and write the HTML reports
    with `pipeline.build_reports` (`write=False`: compute and narrate only, for a dry run).

    The narratives handed to the digests are the ones the reports show. A bad
    INSIGHTS_REPORT_LINK_SECRET is refused here, before any work.
    """
    link_secret(settings)
    window = window_text if isinstance(window_text, Window) else parse_window(window_text, at)
    out_dir = Path(settings.reports_dir)
    with unit_of_work(engine) as session:
        if write:
            items = build_reports(session, tenant, window, out_dir, generated_at=at).narrated
        else:
            reports = [with_sources(r, tenant) for r in compute_all(session, tenant.name, window)]
            items = list(zip(reports, narrate_reports(session, tenant, reports), strict=True))
    paths = {(r.scope.kind, r.scope.name): report_path(out_dir, r) for r, _ in items}
    return WeeklyBuild(tenant.name, window.label, items, paths)


def team_digests(
    build: WeeklyBuild, settings: Settings, team: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(team, Block Kit payload) for every team report of `build` (or the one `team`)."""
    out = []
    out_dir = Path(settings.reports_dir)
    for report, result in build.team_items():
        if team is not None and report.scope.name != team:
            continue
        path = build.paths[("team", report.scope.name)]
        url = report_url(settings, out_dir, build.tenant, path)
        out.append((report.scope.name, slack.build_digest(report, result.narrative, url)))
    if team is not None and not out:
        raise UserError(f"--team {team}: no such team in tenant {build.tenant}")
    return out


def deliver_digests(
    tenant: TenantConfig, digests: list[tuple[str, dict[str, Any]]]
) -> dict[str, str]:
    """Send each team's digest to its webhook; returns team → `sent` or what went wrong."""
    outcomes: dict[str, str] = {}
    for team, payload in digests:
        try:
            url = slack.webhook_url(tenant, team)
        except UserError as exc:
            outcomes[team] = f"not sent: {str(exc).removeprefix(f'team {team}: ')}"
            continue
        result = slack.send_digest(url, payload)
        outcomes[team] = "sent" if result.ok else f"failed: {result.error}"
        if not result.ok:
            log.warning("slack digest for team %s not delivered: %s", team, result.error)
    return outcomes


def _email(build: WeeklyBuild) -> str:
    cfg = email_settings()
    if not cfg.enabled:
        return "not configured"
    item = build.tenant_item()
    if item is None:
        return "no tenant report"
    report, result = item
    path = build.paths[("tenant", report.scope.name)]
    text = result.narrative.summary + "\n\nThe full report is attached (open it in a browser)."
    sent = send_report_email(cfg, f"DORA report {build.tenant} {build.window}", text, path)
    return "sent" if sent.ok else f"failed: {sent.error}"


def run_weekly(
    engine: Engine,
    settings: Settings,
    tenant: TenantConfig,
    at: datetime | None = None,
    window_text: str | None = None,
) -> dict[str, Any]:
    """The whole weekly job; returns the counts recorded in `job_runs`.

    `failures` counts deliveries that did not go out (a configured webhook or SMTP server
    that failed); a team without a configured webhook is reported, not counted as failed.
    """
    build = build_week(engine, settings, tenant, window_text, at or utcnow())
    digests = deliver_digests(tenant, team_digests(build, settings))
    mail = _email(build)
    failures = sum(v.startswith("failed") for v in digests.values()) + mail.startswith("failed")
    return {
        "window": build.window,
        "reports": len(build.items),
        "digests": digests,
        "email": mail,
        "failures": failures,
    }
