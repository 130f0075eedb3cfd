"""The facts document: the only numbers a narrator may quote, built from one MetricReport.

Rules (DESIGN.md, "Narration"):
- Every number comes from the metric results; nothing is invented or looked up elsewhere.
- Values are rounded the way they may be quoted: hours and days to 1 decimal, rates as
  percent (`*_pct`, 1 decimal), changes of a rate in percentage points (`*_pp`), relative
  changes in percent, deployments per week/day to 1 decimal, counts as integers.
- `quotable` lists every allowed rendering, computed from the unrounded value: a number may be
  quoted with the 1-decimal rendering or rounded half-up to a whole number ("20.46 h" may be
  written 20.5 or 20). `quotable.percent` holds the numbers that may stand before a `%` sign;
  `quotable.identifiers` are labels (window labels, dates, names, change ids) that contain
  digits but are not quantities.
- Collected text (change titles) is untrusted: it lives only under `untrusted`, cut to
  `TITLE_MAX` characters with control characters removed, so a prompt can fence it as data.
- Durations keep their `*_hours` keys; `quotable` also holds each one in the unit
  `insights.humanize` shows it in (days from 72 hours, weeks from 14 days; 1 and 0 decimals,
  from the unrounded and the quoted hours), so "24.6 weeks" for 4127.9 hours passes the
  checker. Deployment frequency carries `cadence`, the rate in the unit where it reaches one
  ("8 per year", never "0 per day").
- `data` says what is recorded for the scope up to the window end (commits, pull/merge
  requests, incidents, commits in the window) and `deployment_source` what counts as a
  deployment (`release_tags` → the noun is "release"), so advice can follow the data it has.

>>> facts = build_facts(report)                                     # doctest: +SKIP
>>> facts["metrics"]["lead_time"]["current"]["median_hours"]        # doctest: +SKIP
20.5
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from insights import humanize
from insights.metrics.result import Comparison, MetricReport, WindowMetrics
from insights.metrics.verdicts import LEVEL
from insights.timeutil import iso

FACTS_VERSION = 1
TITLE_MAX = 120
SLOWEST_MAX = 5
STAGES = ("coding", "pickup", "review", "deploy")
# Metrics where a smaller number is better; for the rest (deployment frequency) larger is better.
LOWER_IS_BETTER = {"lead_time", "change_failure_rate", "recovery_time", "rework_rate"}
TIER_ORDER = {"low": 0, "medium": 1, "high": 2, "elite": 3}
HOUR_METRICS = {"lead_time", "recovery_time"}  # headline values that are durations
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")


def canonical(value: Decimal) -> str:
    """The plain-text form used to compare renderings: no exponent, no trailing zeros.

    >>> canonical(Decimal("20.50")), canonical(Decimal("2E+1"))
    ('20.5', '20')
    """
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def half_up(value: float, decimals: int) -> Decimal:
    """Round half away from zero (what people expect), not Python's round-half-even.

    >>> str(half_up(2.45, 1)), str(half_up(20.5, 0))
    ('2.5', '21')
    """
    quantum = Decimal(1).scaleb(-decimals)
    with localcontext(prec=400):
        return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)


class _Quoter:
    """Rounds values for the facts document and records every allowed rendering."""

    def __init__(self) -> None:
        self.numbers: set[str] = set()
        self.percent: set[str] = set()
        self.identifiers: set[str] = set()

    def _allow(self, value: float, decimals: int, percent: bool) -> None:
        for d in range(decimals + 1):
            rendered = canonical(half_up(abs(value), d))
            self.numbers.add(rendered)
            if percent:
                self.percent.add(rendered)

    def count(self, value: int | None) -> int | None:
        if value is None:
            return None
        self._allow(value, 0, False)
        return int(value)

    def num(self, value: float | None, decimals: int = 1, percent: bool = False) -> float | None:
        if value is None:
            return None
        self._allow(value, decimals, percent)
        return float(half_up(value, decimals))

    def hours(self, value: float | None) -> float | None:
        """A duration in hours (1 decimal), also quotable in days and weeks."""
        rounded = self.num(value)
        if value is None or rounded is None:
            return None
        self.numbers.update(canonical(d) for d in humanize.duration_renderings(value))
        # A narrator renders the quoted hours, not the raw ones; rounding those again to a
        # whole number would allow a double rounding (20.46 → 20.5 → 21), so 1 decimal only.
        self.numbers.update(canonical(d) for d in humanize.duration_renderings(rounded, (1,)))
        return rounded

    def pct(self, fraction: float | None) -> float | None:
        """A rate in [0, 1] as percent with 1 decimal."""
        return None if fraction is None else self.num(fraction * 100, 1, percent=True)

    def identifier(self, text: str | None) -> None:
        if text and any(c.isdigit() for c in text):
            self.identifiers.add(text)


def _rel_change(current: float | None, previous: float | None) -> float | None:
    """Relative change in percent; None when either side is unknown or the base rounds to
    zero (a change "from 0" has no meaningful ratio)."""
    if current is None or previous is None or half_up(previous, 1) == 0:
        return None
    return (current - previous) / abs(previous) * 100


def _direction(metric: str, current: float | None, previous: float | None) -> str | None:
    """`improved`, `worsened` or `unchanged` (after rounding); None when not comparable."""
    if current is None or previous is None:
        return None
    a, b = half_up(current, 1), half_up(previous, 1)
    if a == b:
        return "unchanged"
    better = a < b if metric in LOWER_IS_BETTER else a > b
    return "improved" if better else "worsened"


def _tier_move(current: str | None, previous: str | None) -> str | None:
    if current is None or previous is None:
        return None
    diff = TIER_ORDER[current] - TIER_ORDER[previous]
    return "up" if diff > 0 else "down" if diff < 0 else "same"


def _days(m: WindowMetrics) -> float:
    return (m.window.end - m.window.start).total_seconds() / 86_400


def _df(q: _Quoter, m: WindowMetrics, unit: str | None = None) -> dict[str, Any]:
    """Deployment frequency; `unit` puts the cadence in a given unit (the previous window's
    in the current one's, so "from 2 to 4 per year", never "from 0 per month to 4 per year")."""
    days = _days(m)
    cadence = humanize.cadence(m.deployment_count, days, unit)  # type: ignore[arg-type]
    q.num(cadence.amount)
    return {
        "deployments": q.count(m.deployment_count),
        "per_week": q.num(m.deployments_per_week),
        "per_day": q.num(m.deployments_per_day),
        # the cadence's other units, so "8 releases per year" can be checked like per week
        "per_month": q.num(m.deployment_count / days * humanize.DAYS_PER["month"]),
        "per_year": q.num(m.deployment_count / days * humanize.DAYS_PER["year"]),
        "cadence": {"value": cadence.amount, "per": cadence.unit.removeprefix("per ")},
        "deployment_days_pct": q.pct(m.deployment_days_share),
    }


def _lt(q: _Quoter, m: WindowMetrics) -> dict[str, Any]:
    lt = m.lead_time_hours
    return {
        "median_hours": q.hours(lt.median),
        "p75_hours": q.hours(lt.p75),
        "p90_hours": q.hours(lt.p90),
        "median_days": q.num(lt.median / 24) if lt.median is not None else None,
        "samples": q.count(lt.samples),
    }


def _cfr(q: _Quoter, m: WindowMetrics) -> dict[str, Any]:
    return {
        "rate_pct": q.pct(m.change_failure_rate),
        "failed_deployments": q.count(m.failed_deployments),
        "rolled_back": q.count(m.rolled_back_deployments),
        "deployments": q.count(m.deployment_count),
        # which signals marked them (one deployment may have several)
        "failed_by_incident": q.count(m.failed_by.incident),
        "failed_by_rollback": q.count(m.failed_by.rollback),
        "failed_by_revert": q.count(m.failed_by.revert),
    }


def _rt(q: _Quoter, m: WindowMetrics) -> dict[str, Any]:
    rt = m.recovery_time_hours
    return {
        "median_hours": q.hours(rt.median),
        "p90_hours": q.hours(rt.p90),
        "samples": q.count(rt.samples),
    }


def _rw(q: _Quoter, m: WindowMetrics) -> dict[str, Any]:
    return {
        "rate_pct": q.pct(m.rework_rate),
        "rework_deployments": q.count(m.rework_deployments),
        "deployments": q.count(m.deployment_count),
    }


# metric name → (section builder, raw headline value, headline key, is a rate, tier attribute)
_METRICS: dict[str, tuple[Any, Any, str, bool, str | None]] = {
    "deployment_frequency": (
        _df,
        lambda m: m.deployments_per_week,
        "per_week",
        False,
        "deployment_frequency",
    ),
    "lead_time": (_lt, lambda m: m.lead_time_hours.median, "median_hours", False, "lead_time"),
    "change_failure_rate": (
        _cfr,
        lambda m: m.change_failure_rate,
        "rate_pct",
        True,
        "change_failure_rate",
    ),
    "recovery_time": (
        _rt,
        lambda m: m.recovery_time_hours.median,
        "median_hours",
        False,
        "recovery_time",
    ),
    "rework_rate": (_rw, lambda m: m.rework_rate, "rate_pct", True, None),
}


def _change(
    q: _Quoter,
    metric: str,
    cur: float | None,
    prev: float | None,
    rate: bool,
    compare_scale: float = 1.0,
) -> dict:
    """How the headline value moved: absolute (hours, deployments/week or percentage points)
    and relative (percent of the previous value). The direction compares the values times
    `compare_scale` after rounding: deployments per week are compared in the unit the cadence
    is read in (9 → 8 releases a year is a move, though both are 0.2 per week)."""
    if cur is None or prev is None:
        return {"direction": None, "absolute": None, "relative_pct": None}
    scale = 100 if rate else 1
    direction = _direction(metric, cur * scale * compare_scale, prev * scale * compare_scale)
    absolute = (cur - prev) * scale
    if rate:
        # Percentage points between the two quoted percentages.
        absolute = float(half_up(cur * 100, 1) - half_up(prev * 100, 1))
    return {
        "direction": direction,
        "absolute": q.hours(absolute) if metric in HOUR_METRICS else q.num(absolute, 1, rate),
        "unit": "percentage points" if rate else None,
        "relative_pct": q.num(_rel_change(cur * scale, prev * scale), 0, percent=True),
    }


def trend_values(metric: str, history: list[WindowMetrics]) -> list[float | None]:
    """The headline value of each history window, None where the window has no data. For
    deployment frequency the windows before the first deployment of the history have none:
    a year window's history reaches back before a young project existed, and those zeros
    are not evidence of anything."""
    headline = _METRICS[metric][1]
    values: list[float | None] = [headline(w) for w in history]
    if metric == "deployment_frequency":
        first = next((i for i, w in enumerate(history) if w.deployment_count), len(history))
        values = [None] * first + values[first:]
    return values


def _trend(q: _Quoter, metric: str, history: list[WindowMetrics], rate: bool) -> dict:
    """Direction over the history windows that have data (first third vs last third) and the
    best/worst; no direction with fewer than 3 such windows. `windows_with_data` is what a
    trend claim may count ("over the 5 windows with data (of 12)")."""
    values = trend_values(metric, history)
    known = [v * (100 if rate else 1) for v in values if v is not None]
    out: dict[str, Any] = {"windows": q.count(len(history)), "windows_with_data": len(known)}
    q.count(len(known))
    # Deployment frequency's data are the windows with deployments: zeros between two
    # releases of a library are no trend.
    evidence = sum(1 for v in known if v) if metric == "deployment_frequency" else len(known)
    if len(known) < 3 or evidence < 3:
        out["direction"] = None
        return out
    third = max(1, len(known) // 3)
    first, last = sum(known[:third]) / third, sum(known[-third:]) / third
    if abs(last - first) <= 0.1 * max(abs(first), abs(last), 1e-9):
        direction = "flat"
    else:
        better = last < first if metric in LOWER_IS_BETTER else last > first
        direction = "improving" if better else "worsening"
    best = min(known) if metric in LOWER_IS_BETTER else max(known)
    worst = max(known) if metric in LOWER_IS_BETTER else min(known)

    def quote(value: float) -> float | None:
        return q.hours(value) if metric in HOUR_METRICS else q.num(value, 1, percent=rate)

    out.update(
        direction=direction,
        best=quote(best),
        worst=quote(worst),
        average=quote(sum(known) / len(known)),
    )
    return out


NO_VERDICT = "too little data"


def _verdict(q: _Quoter, report: MetricReport, metric: str) -> dict[str, Any]:
    """Whether the move is beyond normal variation (`metrics/verdicts.py`): against the
    previous window and the pooled baseline, each one of "improved", "worsened", "no clear
    change", "too little data" (a metric the report has no verdict for: "too little data"),
    with the test and
    the sample sizes each side rests on (quotable counts; p-values stay out of the facts)."""
    verdicts = report.verdicts
    found = getattr(verdicts, metric, None) if verdicts is not None else None

    def side(c: Comparison | None) -> tuple[str, int | None, int | None]:
        if c is None:
            return NO_VERDICT, None, None
        return c.verdict, q.count(c.current_samples), q.count(c.other_samples)

    previous, current_n, previous_n = side(found.previous if found else None)
    baseline, _, baseline_n = side(found.baseline if found else None)
    compared = found.previous or found.baseline if found else None
    return {
        "previous": previous,
        "baseline": baseline,
        "level": verdicts.level if verdicts is not None else LEVEL,
        "test": compared.test if compared else None,
        "samples": {"current": current_n, "previous": previous_n, "baseline": baseline_n},
        "baseline_windows": q.count(found.baseline.windows) if found and found.baseline else 0,
    }


def _breakdown(q: _Quoter, m: WindowMetrics | None) -> dict[str, Any] | None:
    if m is None:
        return None
    b = m.lead_time_breakdown_hours
    stages = {s: getattr(b, s) for s in STAGES}
    out: dict[str, Any] = {f"{s}_hours": q.hours(v) for s, v in stages.items()}
    out["samples"] = q.count(b.samples)
    known = {s: v for s, v in stages.items() if v is not None}
    total = sum(known.values())
    if known and total > 0:
        largest = max(known, key=lambda s: known[s])
        out["largest_stage"] = largest
        out["share_pct"] = {s: q.num(v / total * 100, 0, percent=True) for s, v in known.items()}
        out["total_hours"] = q.hours(total)
    else:
        out["largest_stage"] = None
        out["share_pct"] = {}
        out["total_hours"] = None
    return out


def _stage_changes(q: _Quoter, report: MetricReport) -> dict[str, Any]:
    """Per stage: hours added (+) or removed (−) since the previous window."""
    if report.previous is None:
        return {}
    cur, prev = report.lead_time_breakdown_hours, report.previous.lead_time_breakdown_hours
    out = {}
    for stage in STAGES:
        a, b = getattr(cur, stage), getattr(prev, stage)
        if a is not None and b is not None:
            out[f"{stage}_hours"] = q.hours(a - b)
    return out


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1] + "…"


def _previous_section(
    q: _Quoter, name: str, section: Any, report: MetricReport, prev: WindowMetrics | None
) -> dict[str, Any] | None:
    if prev is None:
        return None
    if name == "deployment_frequency":
        unit = humanize.cadence(report.deployment_count, _days(report)).unit
        return _df(q, prev, unit.removeprefix("per "))
    return section(q, prev)


def _cadence_scale(m: WindowMetrics) -> float:
    """Per week → the unit the window's cadence is read in, when that is coarser than a week
    (per month, per year): only ever more precise than comparing per week, never less."""
    cadence = humanize.cadence(m.deployment_count, _days(m))
    scale = humanize.DAYS_PER[cadence.unit.removeprefix("per ")] / 7  # type: ignore[index]
    return max(1.0, scale)


def _deployment_source(report: MetricReport) -> dict[str, Any]:
    """The kind of deployment the scope counts (`mixed` across kinds, None when unknown) and
    the noun to use: "release" only when every service counts release tags."""
    kinds = sorted(set(report.deployment_sources.values()))
    kind = kinds[0] if len(kinds) == 1 else ("mixed" if kinds else None)
    return {"kind": kind, "noun": "release" if kind == "release_tags" else "deployment"}


def build_facts(report: MetricReport) -> dict[str, Any]:
    """The facts document for `report` (see the module docstring for the rounding rules).

    Sections: `tenant`, `scope`, `window`, `previous_window`, `services`, `tiers`, `metrics`
    (per metric: `current`, `previous`, `change`, `trend`, `tier`, `previous_tier`, `verdict`),
    `lead_time_breakdown` (`current`, `previous`, `change`), `incidents`, `slowest_changes`,
    `untrusted` (titles, keyed by change ref) and `quotable` (allowed renderings).
    """
    q = _Quoter()
    prev = report.previous
    labels = {report.window.label} | {w.window.label for w in report.history}
    if prev is not None:
        labels.add(prev.window.label)
    for label in labels:
        q.identifier(label)
    for when in (report.window.start, report.window.end):
        q.identifier(when.date().isoformat())
    q.identifier(report.scope.name)
    for service in report.services:
        q.identifier(service)

    metrics: dict[str, Any] = {}
    for name, (section, headline, key, rate, tier_attr) in _METRICS.items():
        metrics[name] = {
            "headline": key,
            "current": section(q, report),
            "previous": _previous_section(q, name, section, report, prev),
            "change": _change(
                q,
                name,
                headline(report),
                headline(prev) if prev else None,
                rate,
                _cadence_scale(report) if name == "deployment_frequency" else 1.0,
            ),
            "trend": _trend(q, name, report.history, rate),
            "tier": getattr(report.tier, tier_attr) if tier_attr else None,
            "previous_tier": getattr(prev.tier, tier_attr) if tier_attr and prev else None,
        }
        metrics[name]["tier_move"] = _tier_move(
            metrics[name]["tier"], metrics[name]["previous_tier"]
        )
        if report.verdicts is not None:  # a report computed without them (by hand) has none
            metrics[name]["verdict"] = _verdict(q, report, name)

    slowest, titles = [], {}
    for change in report.slowest_changes[:SLOWEST_MAX]:
        ref = f"{change.service}#{change.id}"
        for ident in (ref, f"#{change.id}", f"!{change.id}"):
            q.identifier(ident)
        stages = {s: getattr(change, s) for s in STAGES if getattr(change, s) is not None}
        slowest.append(
            {
                "ref": ref,
                "service": change.service,
                "id": change.id,
                "lead_time_hours": q.hours(change.lead_time_hours),
                "lead_time_days": q.num(change.lead_time_hours / 24),
                **{f"{s}_hours": q.hours(v) for s, v in stages.items()},
                "largest_stage": max(stages, key=lambda s: stages[s]) if stages else None,
            }
        )
        if change.title:
            titles[ref] = _cut(change.title)

    return {
        "version": FACTS_VERSION,
        "tenant": report.tenant,
        "scope": {"kind": report.scope.kind, "name": report.scope.name},
        "window": {
            "label": report.window.label,
            "start": iso(report.window.start),
            "end": iso(report.window.end),
            "days": q.count(round((report.window.end - report.window.start).days)),
        },
        "previous_window": prev.window.label if prev is not None else None,
        "services": list(report.services),
        "service_count": q.count(len(report.services)),
        "tiers": {
            "overall": report.tier.overall,
            "previous_overall": prev.tier.overall if prev else None,
            "overall_move": _tier_move(report.tier.overall, prev.tier.overall if prev else None),
        },
        "metrics": metrics,
        "lead_time_breakdown": {
            "current": _breakdown(q, report),
            "previous": _breakdown(q, prev),
            "change": _stage_changes(q, report),
        },
        "incidents": {
            "opened": q.count(report.incidents_opened),
            "without_deployment": q.count(report.incidents_without_deployment),
        },
        "data": {
            "commits_recorded": q.count(report.recorded.commits),
            "changes_recorded": q.count(report.recorded.changes),
            "incidents_recorded": q.count(report.recorded.incidents),
            "commits_in_window": q.count(report.recorded.commits_in_window),
        },
        "deployment_source": _deployment_source(report),
        "slowest_changes": slowest,
        "slowest_changes_count": q.count(len(slowest)),
        "untrusted": {"change_titles": titles},
        "quotable": {
            "numbers": sorted(q.numbers, key=Decimal),
            "percent": sorted(q.percent, key=Decimal),
            "identifiers": sorted(q.identifiers),
        },
    }
