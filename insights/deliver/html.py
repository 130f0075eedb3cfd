"""Self-contained HTML reports: one file per (tenant, scope, window) plus a per-tenant index.

Layout: `<out>/<tenant>/<window-label>/<scope>.html` where scope is `tenant`, `team-<name>`
or `service-<name>`, and `<out>/<tenant>/index.html` linking every report file found under
the tenant (newest window first). Each window folder keeps a `reports.json` manifest with the
headline numbers the index shows.

Rules: Jinja2 autoescape is on, so collected text (titles, names) always renders as text;
CSS and pygal SVG charts are inline and nothing references the network or needs JavaScript;
the numbers shown are the facts document's roundings, the same ones the narrative quotes,
written in humane units (`insights.humanize`: hours → days → weeks; a cadence per day, week,
month or year). Every sentence holds on any window: the trend heading says how many windows
have data, the slowest-changes note tells pull-request samples from commit samples, and each
service says what counts as a deployment there (release tags read "releases").
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

from insights import humanize
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
    """`+2.4 pp`, `−1.3 h`; suffix `duration` writes the value in humane units (`−3.5 d`)."""
    if value is None:
        return ""
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    if suffix == "duration":
        return f"{sign}{humanize.duration(abs(value), short=True)}"
    return f"{sign}{fmt(abs(value))}{suffix}"


def _signals(cfr: dict[str, Any]) -> str:
    """` (2 incident · 1 revert)`: what marked the failed deployments, when any did."""
    parts = [
        f"{cfr.get(f'failed_by_{signal}')} {signal}"
        for signal in ("incident", "rollback", "revert")
        if cfr.get(f"failed_by_{signal}")
    ]
    return f" ({' · '.join(parts)})" if parts else ""


def dur(hours: float | None, none: str = "—") -> str:
    """A duration for tables and cards: `5.2 h`, `3.5 d`, `24.6 wk`; None as a dash."""
    return humanize.duration(hours, short=True, none=none)


def _duration_value(hours: float | None, what: str) -> tuple[str, str]:
    """(number, unit words) for a card: `("3.5", "days median")`; no data is a dash."""
    if hours is None:
        return "—", ""
    q = humanize.duration_parts(hours)
    return q.value, f"{q.unit} {what}"


def _cards(facts: dict[str, Any]) -> list[dict[str, Any]]:
    m = facts["metrics"]
    prev = facts["previous_window"]
    noun = (facts.get("deployment_source") or {}).get("noun", "deployment")

    def delta(metric: str, suffix: str) -> tuple[str, str | None]:
        change = m[metric]["change"]
        if change["direction"] is None:
            return ("no previous data" if prev else "first window"), None
        if change["direction"] == "unchanged":
            return f"unchanged vs {prev}", "unchanged"
        if metric == "deployment_frequency":
            # The card shows a count, so its delta is a count too ("+4 vs 2025-Q2"), not a
            # per-week rate that reads "+0.3/week" for a quarter.
            now = m[metric]["current"]["deployments"]
            before = (m[metric]["previous"] or {}).get("deployments", now)
            if now != before:
                arrow = "▲" if now > before else "▼"
                return f"{arrow} {_signed(now - before, '')} vs {prev}", change["direction"]
        arrow = "▲" if change["absolute"] > 0 else "▼"
        return f"{arrow} {_signed(change['absolute'], suffix)} vs {prev}", change["direction"]

    df, lt = m["deployment_frequency"]["current"], m["lead_time"]["current"]
    cfr, rt = m["change_failure_rate"]["current"], m["recovery_time"]["current"]
    rw = m["rework_rate"]["current"]
    cadence = df.get("cadence") or {}
    df_sub = f"{fmt(cadence.get('value'))} per {cadence.get('per', 'week')}"
    if facts["window"]["days"] <= 31 or noun != "release":
        df_sub += f" · on {fmt(df['deployment_days_pct'], '%')} of days"
    lt_value, lt_unit = _duration_value(lt["median_hours"], "median")
    rt_value, rt_unit = _duration_value(rt["median_hours"], "median")
    specs = [
        (
            "deployment_frequency",
            "Release frequency" if noun == "release" else "Deployment frequency",
            fmt(df["deployments"]),
            humanize.plural(df["deployments"], noun).split(" ", 1)[1],
            df_sub,
            "/week",
        ),
        (
            "lead_time",
            "Lead time for changes",
            lt_value,
            lt_unit,
            f"p75 {dur(lt['p75_hours'])} · p90 {dur(lt['p90_hours'])} · "
            f"{humanize.plural(lt['samples'], 'commit')}",
            "duration",
        ),
        (
            "change_failure_rate",
            "Change failure rate",
            fmt(cfr["rate_pct"]),
            "%" if cfr["rate_pct"] is not None else "",
            f"{cfr['failed_deployments']} of {cfr['deployments']} {noun}s failed" + _signals(cfr),
            " pp",
        ),
        (
            "recovery_time",
            "Recovery time",
            rt_value,
            rt_unit,
            f"p90 {dur(rt['p90_hours'])} · "
            f"{humanize.plural(rt['samples'], 'recovery', 'recoveries')}",
            "duration",
        ),
        (
            "rework_rate",
            "Rework rate",
            fmt(rw["rate_pct"]),
            "%" if rw["rate_pct"] is not None else "",
            f"{rw['rework_deployments']} of {rw['deployments']} {noun}s were fixes",
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
            "current": dur(cur.get(f"{stage}_hours")),
            "share": fmt(shares.get(stage), "%"),
            "previous": dur(prev.get(f"{stage}_hours")),
        }
        for stage in STAGES
    ]


def _slowest(facts: dict[str, Any]) -> list[dict[str, Any]]:
    titles = facts["untrusted"]["change_titles"]
    return [
        {
            "ref": c["ref"],
            "title": titles.get(c["ref"]),
            "lead_time": dur(c["lead_time_hours"]),
            **{s: dur(c.get(f"{s}_hours")) for s in STAGES},
        }
        for c in facts["slowest_changes"]
    ]


def _coverage_rows(coverage: list[ServiceCoverage]) -> list[dict[str, Any]]:
    rows = []
    for cov in coverage:
        row = asdict(cov)
        last = cov.last_seen
        row["last_seen"] = last.strftime("%Y-%m-%d %H:%M UTC") if last else "never"
        row["counted"] = cov.deployments_counted.description
        row["noun"] = cov.deployments_counted.noun
        rows.append(row)
    return rows


def _scope_title(scope: Scope) -> str:
    if scope.kind == "tenant":
        return f"All services of {scope.name}"
    return f"{scope.kind.capitalize()} {scope.name}"


def window_kind(label: str) -> str:
    """What a window label names, in words: `2026-Q1` → "quarter" (plural: add an s)."""
    if re.fullmatch(r"\d{4}-W\d{2}", label):
        return "week"
    if re.fullmatch(r"\d{4}-\d{2}", label):
        return "month"
    if re.fullmatch(r"\d{4}-Q[1-4]", label):
        return "quarter"
    if re.fullmatch(r"\d{4}", label):
        return "year"
    return "window"


def _trend_heading(report: MetricReport, noun: str) -> str:
    """ "Trends over 12 quarters (deployments in 5)": how many history windows carry data."""
    kind = window_kind(report.window.label)
    total = len(report.history)
    text = f"Trends over {humanize.plural(total, kind)}"
    with_data = sum(1 for w in report.history if w.deployment_count)
    if with_data < total:
        text += f" ({noun}s in {with_data} of them)"
    return text


def _counted(coverage: list[ServiceCoverage]) -> str | None:
    """One line saying what counts as a deployment, when all services agree; else None
    (the coverage table then says it per service)."""
    kinds = {c.deployments_counted.description for c in coverage}
    if len(kinds) != 1:
        return None
    return kinds.pop()


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
    noun = (facts.get("deployment_source") or {}).get("noun", "deployment")
    trend_charts = []
    for metric in charts.TRENDS:
        title, svg = charts.trend_chart(
            metric, report.history, f"{prefix}-trend-{metric}", noun=noun
        )
        trend_charts.append(
            {"title": title, "svg": Markup(svg), "note": _trend_note(report, metric)}
        )
    per_title, per_svg = charts.deployments_chart(
        report.deployments_by_day, f"{prefix}-per-day", noun=noun
    )
    breakdown_title, breakdown_svg = charts.breakdown_chart(report, f"{prefix}-breakdown")
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
        trends=_trend_heading(report, noun),
        trend_charts=trend_charts,
        breakdown_title=breakdown_title,
        breakdown_chart=Markup(breakdown_svg),
        breakdown_rows=_breakdown_rows(facts),
        breakdown_samples=report.lead_time_breakdown_hours.samples,
        any_breakdown=bool(
            report.lead_time_breakdown_hours.samples
            or (report.previous and report.previous.lead_time_breakdown_hours.samples)
        ),
        commit_samples=report.lead_time_hours.samples,
        per_day_title=per_title,
        per_day_chart=Markup(per_svg),
        counted=_counted(coverage),
        noun=noun,
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
        lead_time=dur(m["lead_time"]["current"]["median_hours"]),
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
