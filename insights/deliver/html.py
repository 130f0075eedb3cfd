"""Self-contained HTML reports: one file per (tenant, scope, window) plus a per-tenant index.

Layout: `<out>/<tenant>/<window-label>/<scope>.html` where scope is `tenant`, `team-<name>`
or `service-<name>`, and `<out>/<tenant>/index.html` linking every report file found under
the tenant (newest window first). Each window folder keeps a `reports.json` manifest with the
headline numbers the index shows.

Rules: Jinja2 autoescape is on, so collected text (titles, names) always renders as text;
CSS and pygal SVG charts are inline and nothing references the network or needs JavaScript;
the numbers shown are the facts document's roundings, the same ones the narrative quotes.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from insights.deliver import charts
from insights.deliver.coverage import ServiceCoverage
from insights.metrics.result import MetricReport, Scope
from insights.narrate.builtin import LABELS
from insights.narrate.facts import STAGES, build_facts
from insights.narrate.schema import NarrativeResult
from insights.timeutil import iso, parse_time

MANIFEST = "reports.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ENV = Environment(
    loader=PackageLoader("insights", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def safe_name(text: str) -> str:
    """A file-name-safe form of a tenant, label or scope name (`team/a b` → `team_a_b`)."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    return cleaned[:120]


def scope_file(scope: Scope) -> str:
    if scope.kind == "tenant":
        return "tenant.html"
    return f"{scope.kind}-{safe_name(scope.name)}.html"


def report_path(out_dir: Path, report: MetricReport) -> Path:
    """Where the report for `report`'s tenant, window and scope is written."""
    folder = out_dir / safe_name(report.tenant) / safe_name(report.window.label)
    return folder / scope_file(report.scope)


def fmt(value: float | int | None, suffix: str = "", none: str = "—") -> str:
    """A facts value for display: whole numbers without `.0`; None as a dash."""
    if value is None:
        return none
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value}{suffix}"


def window_span(start: datetime, end: datetime) -> str:
    """A window as people read it: whole days show their last day inclusive.

    >>> window_span(datetime(2026, 1, 26, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC))
    '2026-01-26 – 2026-02-01 (UTC)'
    """
    if start.time() == time() and end.time() == time():
        last = (end - timedelta(days=1)).date().isoformat()
        return f"{start.date().isoformat()} – {last} (UTC)"
    return f"{iso(start)} – {iso(end)} (end exclusive)"


def _signed(value: float | None, suffix: str) -> str:
    if value is None:
        return ""
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{fmt(abs(value))}{suffix}"


def _signals(cfr: dict[str, Any]) -> str:
    """` (2 incident · 1 revert)`: what marked the failed deployments, when any did."""
    parts = [
        f"{cfr.get(f'failed_by_{signal}')} {signal}"
        for signal in ("incident", "rollback", "revert")
        if cfr.get(f"failed_by_{signal}")
    ]
    return f" ({' · '.join(parts)})" if parts else ""


def _cards(facts: dict[str, Any]) -> list[dict[str, Any]]:
    m = facts["metrics"]
    prev = facts["previous_window"]

    def delta(metric: str, suffix: str) -> tuple[str, str | None]:
        change = m[metric]["change"]
        if change["direction"] is None:
            return ("no previous data" if prev else "first window"), None
        if change["direction"] == "unchanged":
            return f"unchanged vs {prev}", "unchanged"
        arrow = "▲" if change["absolute"] > 0 else "▼"
        return f"{arrow} {_signed(change['absolute'], suffix)} vs {prev}", change["direction"]

    df, lt = m["deployment_frequency"]["current"], m["lead_time"]["current"]
    cfr, rt = m["change_failure_rate"]["current"], m["recovery_time"]["current"]
    rw = m["rework_rate"]["current"]
    specs = [
        (
            "deployment_frequency",
            "Deployment frequency",
            fmt(df["deployments"]),
            "deployments",
            f"{fmt(df['per_day'])} per day · on {fmt(df['deployment_days_pct'], '%')} of days",
            "/week",
        ),
        (
            "lead_time",
            "Lead time for changes",
            fmt(lt["median_hours"]),
            "h median",
            f"p75 {fmt(lt['p75_hours'], ' h')} · p90 {fmt(lt['p90_hours'], ' h')} · "
            f"{lt['samples']} commits",
            " h",
        ),
        (
            "change_failure_rate",
            "Change failure rate",
            fmt(cfr["rate_pct"]),
            "%" if cfr["rate_pct"] is not None else "",
            f"{cfr['failed_deployments']} of {cfr['deployments']} deployments failed"
            + _signals(cfr),
            " pp",
        ),
        (
            "recovery_time",
            "Recovery time",
            fmt(rt["median_hours"]),
            "h median" if rt["median_hours"] is not None else "",
            f"p90 {fmt(rt['p90_hours'], ' h')} · {rt['samples']} recoveries",
            " h",
        ),
        (
            "rework_rate",
            "Rework rate",
            fmt(rw["rate_pct"]),
            "%" if rw["rate_pct"] is not None else "",
            f"{rw['rework_deployments']} of {rw['deployments']} deployments were fixes",
            " pp",
        ),
    ]
    cards = []
    for key, name, value, unit, sub, suffix in specs:
        text, direction = delta(key, suffix)
        text, direction = _judged(m[key], key, text, direction)
        cards.append(
            {
                "key": key,
                "name": name,
                "value": value,
                "unit": unit,
                "sub": sub,
                "tier": m[key]["tier"],
                "delta": text,
                "direction": direction,
            }
        )
    return cards


# What a metric's verdict counts, for "too few … to judge".
_SAMPLE_NOUNS = {
    "deployment_frequency": "deployments",
    "lead_time": "deployments",
    "change_failure_rate": "deployments",
    "recovery_time": "recoveries",
    "rework_rate": "deployments",
}


def _judged(
    metric: dict[str, Any], key: str, text: str, direction: str | None
) -> tuple[str, str | None]:
    """A card's change in the colour of its verdict: green or red only when the data says the
    move is real, otherwise neutral with the reason ("within normal variation")."""
    if direction not in ("improved", "worsened"):
        return text, direction
    verdict = (metric.get("verdict") or {}).get("previous") or "too little data"
    if verdict == direction:
        return text, direction
    if verdict == "no clear change":
        return f"{text} · within normal variation", "none"
    return f"{text} · too few {_SAMPLE_NOUNS[key]} to judge", "none"


def _trend_note(report: MetricReport, metric: str) -> str:
    """Under a trend chart: the current window's verdicts against the previous window and the
    baseline."""
    verdicts = report.verdicts
    found = getattr(verdicts, metric, None) if verdicts is not None else None
    if found is None or found.previous is None:
        return ""
    text = f"{report.window.label}: {found.previous.verdict} vs the previous window"
    if found.baseline is not None:
        text += f", {found.baseline.verdict} vs the {found.baseline.windows} windows before"
    return text


def _narrator(result: NarrativeResult) -> dict[str, str]:
    if result.provider == "builtin":
        who = f"the built-in narrator ({result.prompt_version})"
    else:
        model = result.model or "default"
        who = f"{result.provider} model {model} (prompt {result.prompt_version})"
    outcomes = {
        "builtin": "",
        "accepted": "accepted on first answer",
        "repaired": "accepted after one repair",
        "fallback": "fallback from the configured model",
        "cached": "from the narrative cache",
        "over_budget": "token budget reached",
    }
    text = outcomes.get(result.outcome, result.outcome)
    if result.reason and result.outcome in ("fallback", "over_budget"):
        text += f": {result.reason}"
    return {"who": who, "outcome_text": text}


def _breakdown_rows(facts: dict[str, Any]) -> list[dict[str, str]]:
    cur = facts["lead_time_breakdown"]["current"] or {}
    prev = facts["lead_time_breakdown"]["previous"] or {}
    shares = cur.get("share_pct") or {}
    return [
        {
            "stage": stage,
            "current": fmt(cur.get(f"{stage}_hours"), " h"),
            "share": fmt(shares.get(stage), "%"),
            "previous": fmt(prev.get(f"{stage}_hours"), " h"),
        }
        for stage in STAGES
    ]


def _slowest(facts: dict[str, Any]) -> list[dict[str, Any]]:
    titles = facts["untrusted"]["change_titles"]
    return [
        {
            "ref": c["ref"],
            "title": titles.get(c["ref"]),
            "lead_time": fmt(c["lead_time_hours"], " h"),
            **{s: fmt(c.get(f"{s}_hours"), " h") for s in STAGES},
        }
        for c in facts["slowest_changes"]
    ]


def _coverage_rows(coverage: list[ServiceCoverage]) -> list[dict[str, Any]]:
    rows = []
    for cov in coverage:
        row = asdict(cov)
        last = cov.last_seen
        row["last_seen"] = last.strftime("%Y-%m-%d %H:%M UTC") if last else "never"
        rows.append(row)
    return rows


def _scope_title(scope: Scope) -> str:
    if scope.kind == "tenant":
        return f"All services of {scope.name}"
    return f"{scope.kind.capitalize()} {scope.name}"


def render_report(
    report: MetricReport,
    result: NarrativeResult,
    coverage: list[ServiceCoverage],
    generated_at: datetime,
    facts: dict[str, Any] | None = None,
) -> str:
    """The HTML document for one report."""
    facts = facts or build_facts(report)
    prefix = f"{report.scope.kind}-{safe_name(report.scope.name)}"
    trend_charts = [
        {
            "title": charts.TRENDS[metric][0],
            "svg": Markup(charts.trend_chart(metric, report.history, f"{prefix}-trend-{metric}")),
            "note": _trend_note(report, metric),
        }
        for metric in charts.TRENDS
    ]
    template = _ENV.get_template("report.html.j2")
    return template.render(
        tenant=report.tenant,
        scope=report.scope,
        scope_title=_scope_title(report.scope),
        window={
            "label": report.window.label,
            "span": window_span(report.window.start, report.window.end),
        },
        previous_label=facts["previous_window"],
        overall={
            "tier": facts["tiers"]["overall"],
            "previous": facts["tiers"]["previous_overall"],
            "move": facts["tiers"]["overall_move"],
        },
        cards=_cards(facts),
        narrative=result.narrative,
        narrator=_narrator(result),
        metric_labels=LABELS,
        history_count=len(report.history),
        trend_charts=trend_charts,
        breakdown_chart=Markup(charts.breakdown_chart(report, f"{prefix}-breakdown")),
        breakdown_rows=_breakdown_rows(facts),
        breakdown_samples=report.lead_time_breakdown_hours.samples,
        per_day_chart=Markup(
            charts.deployments_per_day_chart(report.deployments_by_day, f"{prefix}-per-day")
        ),
        slowest=_slowest(facts),
        coverage=_coverage_rows(coverage),
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
    )


@dataclass
class IndexEntry:
    """One report as the index lists it (also the manifest record)."""

    file: str
    scope_kind: str
    scope_name: str
    window_label: str
    window_start: str
    window_end: str
    overall_tier: str | None
    deployments: int
    lead_time: str
    cfr: str
    narrator: str


def _entry(report: MetricReport, result: NarrativeResult, facts: dict[str, Any]) -> IndexEntry:
    m = facts["metrics"]
    narrator = "built-in" if result.provider == "builtin" else result.provider
    if result.outcome != "builtin":
        narrator += f" ({result.outcome})"
    return IndexEntry(
        file=scope_file(report.scope),
        scope_kind=report.scope.kind,
        scope_name=report.scope.name,
        window_label=report.window.label,
        window_start=iso(report.window.start) or "",
        window_end=iso(report.window.end) or "",
        overall_tier=facts["tiers"]["overall"],
        deployments=m["deployment_frequency"]["current"]["deployments"],
        lead_time=fmt(m["lead_time"]["current"]["median_hours"], " h"),
        cfr=fmt(m["change_failure_rate"]["current"]["rate_pct"], "%"),
        narrator=narrator,
    )


def _read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {e["file"]: e for e in data if isinstance(e, dict) and "file" in e}


def write_report(
    out_dir: Path,
    report: MetricReport,
    result: NarrativeResult,
    coverage: list[ServiceCoverage],
    generated_at: datetime,
) -> Path:
    """Write one report file and record it in its window's manifest; returns the path."""
    facts = build_facts(report)
    path = report_path(out_dir, report)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render_report(report, result, coverage, generated_at, facts)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    manifest = _read_manifest(path.parent)
    manifest[path.name] = asdict(_entry(report, result, facts))
    (path.parent / MANIFEST).write_text(
        json.dumps(sorted(manifest.values(), key=lambda e: e["file"]), indent=1), encoding="utf-8"
    )
    return path


def _manifest_span(entry: dict[str, Any]) -> str:
    try:
        start = parse_time(entry["window_start"])
        end = parse_time(entry["window_end"])
    except (KeyError, TypeError, ValueError):
        return ""
    return window_span(start, end)


_KIND_ORDER = {"tenant": 0, "team": 1, "service": 2}


def write_index(out_dir: Path, tenant: str, generated_at: datetime) -> Path:
    """Write `<out>/<tenant>/index.html` listing every report file under the tenant."""
    root = out_dir / safe_name(tenant)
    root.mkdir(parents=True, exist_ok=True)
    windows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.html"))
        if not files:
            continue
        manifest = _read_manifest(folder)
        reports = []
        for file in files:
            meta = manifest.get(file.name) or {}
            kind, _, name = file.stem.partition("-")
            reports.append(
                {
                    "href": f"{folder.name}/{file.name}",
                    "scope_kind": meta.get("scope_kind", kind),
                    "scope_name": meta.get("scope_name", name or kind),
                    "overall_tier": meta.get("overall_tier"),
                    "deployments": meta.get("deployments", "—"),
                    "lead_time": meta.get("lead_time", "—"),
                    "cfr": meta.get("cfr", "—"),
                    "narrator": meta.get("narrator", ""),
                }
            )
        reports.sort(key=lambda r: (_KIND_ORDER.get(r["scope_kind"], 3), r["scope_name"]))
        first = next(iter(manifest.values()), {})
        windows.append(
            {
                "label": first.get("window_label", folder.name),
                "span": _manifest_span(first),
                "sort": first.get("window_start") or folder.name,
                "reports": reports,
            }
        )
    windows.sort(key=lambda w: w["sort"], reverse=True)
    html = _ENV.get_template("index.html.j2").render(
        tenant=tenant,
        windows=windows,
        total=sum(len(w["reports"]) for w in windows),
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
    )
    path = root / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def write_reports(
    out_dir: Path,
    items: list[tuple[MetricReport, NarrativeResult]],
    coverage: dict[str, ServiceCoverage],
    generated_at: datetime,
) -> list[Path]:
    """Write every report of `items` and refresh the index of each tenant involved.

    `coverage` maps service name → its coverage; each report shows its own services'.
    Returns the report paths followed by the index paths.
    """
    paths = []
    tenants = []
    for report, result in items:
        services = [coverage[s] for s in report.services if s in coverage]
        paths.append(write_report(out_dir, report, result, services, generated_at))
        if report.tenant not in tenants:
            tenants.append(report.tenant)
    return paths + [write_index(out_dir, tenant, generated_at) for tenant in tenants]
