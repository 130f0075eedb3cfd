"""Inline SVG charts for the HTML report, drawn with pygal: trends, lead-time breakdown,
deployments per day (or week, or month).

Rules: the SVG needs no network and no JavaScript — pygal's script tags (a config blob and
tooltip loader) and its comments (which carry URLs) are removed; the random chart id is
replaced by a stable one so the same report renders byte-identically; a missing value is a
gap in the line, never a zero. Charts scale with their container (viewBox, no fixed size).
Labels fit: at most `MAX_TREND_LABELS` / `MAX_BAR_LABELS` x labels are drawn whatever the
number of windows or days, and durations use the unit of their largest value.
Trend charts draw each window's 95% interval as a band around the line (pygal places the
interval of every point; the band joins them, with a gap where a window has no interval or
an open bound) and ring the points whose move from the window before is beyond normal
variation (its verdict is "improved" or "worsened").
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pygal
from pygal.style import Style

from insights import humanize
from insights.metrics.result import Interval, MetricReport, WindowMetrics

COLORS = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444")
STAGE_COLORS = ("#60a5fa", "#fbbf24", "#f87171", "#34d399")
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#334155",
    foreground_strong="#0f172a",
    foreground_subtle="#cbd5e1",
    colors=COLORS,
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=15,
    major_label_font_size=15,
    legend_font_size=15,
    value_font_size=14,
    title_font_size=17,
    no_data_font_size=28,
    guide_stroke_color="#e2e8f0",
    major_guide_stroke_color="#e2e8f0",
)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_UUID = re.compile(r"chart-([0-9a-f-]{36})")

# metric key → (title, kind, value of one window in hours/count/percent); rates are percent,
# durations are drawn in the unit (hours, days, weeks) of the history's largest value.
TRENDS = {
    "deployment_frequency": ("Deployments", "count", lambda m: float(m.deployment_count)),
    "lead_time": ("Lead time, median", "duration", lambda m: m.lead_time_hours.median),
    "change_failure_rate": (
        "Change failure rate (%)",
        "%",
        lambda m: None if m.change_failure_rate is None else m.change_failure_rate * 100,
    ),
    "recovery_time": (
        "Recovery time, median",
        "duration",
        lambda m: m.recovery_time_hours.median,
    ),
    "rework_rate": (
        "Rework rate (%)",
        "%",
        lambda m: None if m.rework_rate is None else m.rework_rate * 100,
    ),
}
MAX_TREND_LABELS = 4  # x labels a 420-unit-wide trend chart can show without overlapping
MAX_BAR_LABELS = 12  # x labels the 960-unit-wide deployments chart can show


# metric key → (its interval in a window, scale to the charted unit).
BANDS = {
    "deployment_frequency": (lambda m: m.intervals.deployment_count, 1.0),
    "lead_time": (lambda m: m.intervals.lead_time_hours.median, 1.0),
    "change_failure_rate": (lambda m: m.intervals.change_failure_rate, 100.0),
    "recovery_time": (lambda m: m.intervals.recovery_time_hours.median, 1.0),
    "rework_rate": (lambda m: m.intervals.rework_rate, 100.0),
}
BAND_STYLE = 'fill="#2563eb" fill-opacity="0.14" stroke="none"'
MARK_STYLE = "stroke: #0f172a; stroke-width: 3"
_CI = re.compile(r'<g class="ci"><path d="([^"]*)" class="nofill reactive"\s*/></g>')
_PAIR = re.compile(r"(-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)")


def moved(window: WindowMetrics, metric: str) -> str | None:
    """ "improved"/"worsened" when the window's verdict against the one before says so."""
    verdicts = window.verdicts
    found = getattr(verdicts, metric).previous if verdicts is not None else None
    return found.verdict if found and found.verdict in ("improved", "worsened") else None


def _bounds(ci: Interval, scale: float) -> tuple[float, float] | None:
    if ci.low is None or ci.high is None:
        return None
    return round(ci.low * scale, 2), round(ci.high * scale, 2)


def _polygon(tops: list[tuple[str, str]], bottoms: list[tuple[str, str]]) -> str:
    if len(tops) == 1:  # a lone window: a narrow box
        (x, y), (_, y2) = tops[0], bottoms[0]
        left, right = float(x) - 5, float(x) + 5
        corners = [(left, y), (right, y), (right, y2), (left, y2)]
        return "M" + " L".join(f"{a} {b}" for a, b in corners) + " Z"
    outline = tops + bottoms[::-1]
    return "M" + " L".join(f"{x} {y}" for x, y in outline) + " Z"


def _band(svg: str, runs: list[int]) -> str:
    """pygal's per-point interval bars (in point order) joined into one band per run of
    consecutive windows that have an interval."""
    bars = list(_CI.finditer(svg))
    if not bars:
        return svg
    tops, bottoms = [], []
    for match in bars:
        pairs = _PAIR.findall(match.group(1))
        # A bar is drawn top, cap, top, cap, top, bottom, …: pairs 0 and 5.
        tops.append(pairs[0])
        bottoms.append(pairs[5])
    paths, at = [], 0
    for length in runs:
        paths.append(_polygon(tops[at : at + length], bottoms[at : at + length]))
        at += length
    band = "".join(f'<path d="{d}" {BAND_STYLE}/>' for d in paths)
    head = svg[: bars[0].start()] + f'<g class="ci band">{band}</g>'
    return head + _CI.sub("", svg[bars[0].end() :])


def _config(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "style": STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": False,
        "show_legend": False,
        "margin": 12,
        "no_data_text": "no data",
        "truncate_label": -1,
    }
    base.update(extra)
    return base


def clean_svg(svg: str, chart_id: str) -> str:
    """pygal output made self-contained and deterministic (see the module rules)."""
    svg = _SCRIPT.sub("", svg)
    svg = _COMMENT.sub("", svg)
    match = _UUID.search(svg)
    if match:
        svg = svg.replace(match.group(1), chart_id)
    return svg.strip()


def short_label(label: str) -> str:
    """A window label short enough for an axis: `2026-W05` → `W05`, `2026-01-05..2026-01-19`
    → `01-05` (its start); months, quarters and years unchanged."""
    if re.fullmatch(r"\d{4}-W\d{2}", label):
        return label.split("-", 1)[1]
    if ".." in label:
        start = label.split("..", 1)[0]
        return start[5:10] if re.match(r"\d{4}-\d{2}-\d{2}", start) else start[:10]
    return label


def label_step(count: int, room: int) -> int:
    """Show every `step`-th of `count` x labels so at most `room` are drawn.

    >>> label_step(12, 4), label_step(3, 4), label_step(92, 12)
    (3, 1, 8)
    """
    return max(1, -(-count // room))


def major_labels(labels: list[str], room: int) -> list[str]:
    """The labels to draw: every `label_step`-th counted back from the newest, so the window
    the report is about is always labelled.

    >>> major_labels(list("abcdefghijkl"), 4)
    ['c', 'f', 'i', 'l']
    """
    step = label_step(len(labels), room)
    return [labels[i] for i in range(len(labels) - 1, -1, -step)][::-1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _duration_scale(values: list[float | None]) -> tuple[str, float]:
    """(unit word, hours per unit) for a set of durations: the unit of the largest."""
    known = [v for v in values if v is not None]
    unit = humanize.duration_unit(max(known)) if known else "hour"
    return unit, humanize.HOURS_PER[unit]


def trend_chart(
    metric: str, history: list[WindowMetrics], chart_id: str, noun: str = "deployment"
) -> tuple[str, str]:
    """(title, SVG): a line of one metric over the history windows (oldest first). Durations
    are drawn in hours, days or weeks (the title says which); deployments before the first
    one of the history are a gap, not zeros (the project may not have existed yet)."""
    title, kind, value = TRENDS[metric]
    raw = [value(w) for w in history]
    suffix = "%" if kind == "%" else ""
    if metric == "deployment_frequency":
        title = f"{noun.capitalize()}s"
        first = next((i for i, v in enumerate(raw) if v), len(raw))
        raw = [None] * first + raw[first:]
    if kind == "duration":
        unit, per = _duration_scale(raw)
        raw = [None if v is None else v / per for v in raw]
        title = f"{title} ({unit}s)"
        suffix = {"hour": " h", "day": " d", "week": " wk"}[unit]
    chart = pygal.Line(
        **_config(
            width=420,
            height=240,
            # the newest window's label sits on the right edge: room for it to stay whole
            margin_right=34,
            max_scale=5,
            min_scale=3,
            allow_interruptions=True,
            include_x_axis=True,
            dots_size=4,
            stroke_style={"width": 3},
            show_minor_x_labels=False,
            x_labels_major=major_labels(
                [short_label(w.window.label) for w in history], MAX_TREND_LABELS
            ),
            value_formatter=lambda v: f"{v:g}{suffix}",
        )
    )
    chart.x_labels = [short_label(w.window.label) for w in history]
    values = [_round(v) for v in raw]
    interval, scale = BANDS[metric]
    if kind == "duration":
        scale = scale / per  # the band is drawn in the line's unit (hours, days or weeks)
    points: list[dict[str, object]] = []
    runs: list[int] = []
    previous_had_band = False
    for window, v in zip(history, values, strict=True):
        bounds = _bounds(interval(window), scale) if v is not None else None
        point: dict[str, object] = {"value": v}
        if bounds and v is not None:
            point["ci"] = {"low": min(bounds[0], v), "high": max(bounds[1], v)}
            if previous_had_band:
                runs[-1] += 1
            else:
                runs.append(1)
        previous_had_band = bool(bounds)
        if v is not None and (move := moved(window, metric)):
            point.update(node={"r": 7}, style=MARK_STYLE, label=f"{move}, beyond normal variation")
        points.append(point)
    known = [v for v in values if v is not None]
    highs = [p["ci"]["high"] for p in points if "ci" in p]  # type: ignore[index]
    if highs:  # the scale must hold the band, not only the line
        top = max([*highs, *known])
        chart.config.range = (0, top * 1.05 if top else 1)
    chart.add(title, points if known else [])
    return title, clean_svg(_band(chart.render(is_unicode=True), runs), chart_id)


def breakdown_chart(report: MetricReport, chart_id: str) -> tuple[str, str]:
    """(title, SVG): median time per lead-time stage, previous window above the current one,
    in the unit (hours, days, weeks) of the longest path."""
    windows = [("current", report)]
    if report.previous is not None:
        windows.insert(0, ("previous", report.previous))
    stages = ("coding", "pickup", "review", "deploy")
    totals = [
        sum(v for s in stages if (v := getattr(w.lead_time_breakdown_hours, s)) is not None)
        for _, w in windows
    ]
    unit, per = _duration_scale([t or None for t in totals])
    chart = pygal.HorizontalStackedBar(
        **_config(
            width=520,
            height=220,
            max_scale=6,
            show_legend=True,
            legend_at_bottom=True,
            legend_at_bottom_columns=4,
            style=Style(**{**STYLE.__dict__, "colors": STAGE_COLORS}),
            value_formatter=lambda v: f"{v:g}",
        )
    )
    chart.x_labels = [name for name, _ in windows]
    has_data = False
    for stage in stages:
        values = [
            None if (v := getattr(w.lead_time_breakdown_hours, stage)) is None else _round(v / per)
            for _, w in windows
        ]
        has_data = has_data or any(v is not None for v in values)
        chart.add(stage, values)
    if not has_data:
        chart = pygal.HorizontalStackedBar(**_config(width=520, height=220))
    title = f"Median {unit}s per stage"
    return title, clean_svg(chart.render(is_unicode=True), chart_id)


def _buckets(by_day: dict[str, int]) -> tuple[str, list[tuple[str, int]]]:
    """Per day for a month or less, per ISO week up to about half a year, else per month:
    a quarter of daily bars is unreadable, a year of them is noise."""
    days = sorted(by_day)
    if len(days) <= 31:
        short = len(days) <= 14
        return "day", [
            (date.fromisoformat(d).strftime("%a %d" if short else "%d"), by_day[d]) for d in days
        ]
    grouped: dict[str, int] = {}
    kind = "week" if len(days) <= 200 else "month"
    years = {d[:4] for d in days}
    for d in days:
        day = date.fromisoformat(d)
        if kind == "week":
            monday = day - timedelta(days=day.weekday())
            key = monday.strftime("%b %d") if len(years) == 1 else monday.strftime("%Y-%m-%d")
        else:
            key = day.strftime("%b") if len(years) == 1 else day.strftime("%b %Y")
        grouped[key] = grouped.get(key, 0) + by_day[d]
    return kind, list(grouped.items())


def deployments_chart(
    by_day: dict[str, int], chart_id: str, noun: str = "deployment"
) -> tuple[str, str]:
    """(title, SVG): production deployments of the window per day, week or month (`_buckets`),
    with at most `MAX_BAR_LABELS` x labels."""
    kind, buckets = _buckets(by_day)
    counts = [c for _, c in buckets]
    top = max(counts, default=0)
    step = max(1, -(-top // 5))
    few = len(buckets) <= 14
    chart = pygal.Bar(
        **_config(
            width=960,
            height=220,
            y_labels=list(range(0, top + step, step)),
            include_x_axis=True,
            print_values=few,
            print_zeroes=False,
            value_formatter=lambda v: f"{v:g}",
            show_minor_x_labels=few,
            x_labels_major=major_labels([label for label, _ in buckets], MAX_BAR_LABELS),
        )
    )
    chart.x_labels = [label for label, _ in buckets]
    chart.add(f"{noun}s", counts if any(counts) else [])
    title = f"{noun.capitalize()}s per {kind}"
    return title, clean_svg(chart.render(is_unicode=True), chart_id)
