"""The pure entry of the metrics engine: delivery DataFrames + window in, `WindowMetrics` out.

`prepare()` applies every rule that needs the whole history once (production filter, shipped
commits, first shipments, failures, rollbacks, recovery, rework); `window_metrics()` then slices a
window (and a set of services) out of the prepared data, so a report's 12-window history and
every scope of `compute_all` reuse one preparation. No I/O, no clock: all times are UTC.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from insights.metrics import (
    failures,
    frequency,
    lead_time,
    recovery,
    reverts,
    rework,
    shipped,
    tiers,
    uncertainty,
)
from insights.metrics.keys import intern_shas
from insights.metrics.nanos import NAT, epoch_ns
from insights.metrics.production import production_deployments
from insights.metrics.result import (
    FailureSignals,
    Interval,
    Intervals,
    RecordedData,
    SlowChange,
    Verdicts,
    Window,
    WindowMetrics,
)
from insights.metrics.screen import screen
from insights.metrics.verdicts import (
    BASELINE_WINDOWS,
    WindowSample,
    per_deployment_medians,
    pool,
    verdicts,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from insights.store.repository import DeliveryFrames

TIME_COLUMNS = {
    "deployments": ("started_at", "finished_at"),
    "commits": ("committed_at",),
    "changes": ("opened_at", "first_commit_at", "first_review_at", "approved_at", "merged_at"),
    "incidents": ("opened_at", "resolved_at"),
}


def _utc_ns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The frame with its time columns as datetime64[ns, UTC] (inputs may carry offsets)."""
    wanted = pd.DatetimeTZDtype("ns", "UTC")
    converted = {}
    for column in columns:
        if column not in frame.columns or frame[column].dtype == wanted:
            continue
        values = pd.to_datetime(frame[column], utc=True)
        if values.dt.tz is None:  # an all-missing column comes back naive
            values = values.dt.tz_localize("UTC")
        converted[column] = values.astype(wanted)
    return frame.assign(**converted) if converted else frame


TEXT_COLUMNS = (
    "service",
    "external_id",
    "environment",
    "status",
    "deployment_external_id",
    "title",
)


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its key columns as strings or categoricals of strings (an empty frame
    from the database comes back with float columns)."""
    present = [
        c
        for c in TEXT_COLUMNS
        if c in frame.columns
        and not isinstance(frame[c].dtype, pd.StringDtype | pd.CategoricalDtype)
    ]
    if present:
        frame = frame.astype({c: "str" for c in present})
    if "deployment_id" in frame.columns:
        frame["deployment_id"] = frame["deployment_id"].astype(np.int64)
    return frame


def _service_names(column: pd.Series) -> list[str]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    return [str(n) for n in pd.unique(column.dropna().astype(object))]


def _same_services(*frames: pd.DataFrame) -> list[pd.DataFrame]:
    """`service` columns as one shared categorical, so joins and filters compare small codes."""
    names = sorted({n for f in frames for n in _service_names(f["service"])})
    dtype = pd.CategoricalDtype(names)
    out = []
    for f in frames:
        column = f["service"]
        if isinstance(column.dtype, pd.CategoricalDtype):
            same = list(column.cat.categories) == names and not column.cat.ordered
            shared = column if same else column.cat.set_categories(names)
        else:
            shared = column.astype(object).astype(dtype)
        out.append(f if shared is column else f.assign(service=shared))
    return out


def _earliest(a: pd.Series, b: pd.Series) -> pd.Series:
    """Per row, the earlier of two UTC times (a missing one loses)."""
    x, y = epoch_ns(a), epoch_ns(b)
    both = np.where(x == NAT, y, np.where(y == NAT, x, np.minimum(x, y)))
    return pd.Series(both.view("datetime64[ns]"), index=a.index).dt.tz_localize("UTC")


@dataclass(frozen=True)
class Prepared:
    """A tenant's delivery data with every whole-history rule applied.

    deployments: production deployments with `failed`, `rolled_back`, `reverted`, `is_rollback`,
    `rework`,
    `recovery_hours`, `finished_ns`. lead_times: first shipment per commit (`hours`,
    `finished_ns`). changes: merged + deployed changes with stages (`deployed_ns`).
    incidents: incidents with their blamed deployment (`opened_ns`). records: one row per
    stored commit, change and incident (`service`, `kind`, `at_ns`: committed, opened, opened),
    so a report can say what data exists before advising on it.
    """

    deployments: pd.DataFrame
    lead_times: pd.DataFrame
    changes: pd.DataFrame
    incidents: pd.DataFrame
    records: pd.DataFrame


@dataclass(frozen=True)
class _Inputs:
    """The frames in the engine's working form: UTC ns times, string keys, categorical services,
    integer sha codes (`shas` maps a code back to its sha)."""

    deployments: pd.DataFrame
    links: pd.DataFrame
    commits: pd.DataFrame
    changes: pd.DataFrame
    incidents: pd.DataFrame
    services: pd.DataFrame
    shas: pd.Index


def _inputs(frames: DeliveryFrames) -> _Inputs:
    # rows the input boundary would refuse (stored by an older version) are skipped, with a
    # warning, before pandas converts anything: one of them must not fail a whole tenant
    screened = {name: screen(getattr(frames, name), name) for name in TIME_COLUMNS}
    deployments = _keys(_utc_ns(screened["deployments"], TIME_COLUMNS["deployments"]))
    commits = _keys(_utc_ns(screened["commits"], TIME_COLUMNS["commits"]))
    changes = _keys(_utc_ns(screened["changes"], TIME_COLUMNS["changes"]))
    incidents = _keys(_utc_ns(screened["incidents"], TIME_COLUMNS["incidents"]))
    links = _keys(frames.deployment_commits)
    if len(deployments) < len(frames.deployments):  # links of a skipped deployment go too
        links = links[links["deployment_id"].isin(deployments["deployment_id"])]
    deployments, commits, changes, incidents, services = _same_services(
        deployments, commits, changes, incidents, frames.services
    )
    (dep_sha, link_sha, commit_sha, merge_sha), shas = intern_shas(
        [deployments["sha"], links["sha"], commits["sha"], changes["merge_sha"]]
    )
    return _Inputs(
        deployments.assign(sha=dep_sha),
        links.assign(sha=link_sha),
        commits.assign(sha=commit_sha),
        changes.assign(merge_sha=merge_sha),
        incidents,
        services,
        shas,
    )


def shipments(frames: DeliveryFrames) -> pd.DataFrame:
    """Which commits each production deployment ships (`shipped.py` rules): one row per
    (service, deployment external id, sha), in deployment order. For inspection and tests."""
    data = _inputs(frames)
    prod = production_deployments(data.deployments, data.services)
    rows, codes = shipped.shipped_commits(prod, data.links, data.commits, data.shas)
    order = np.lexsort((codes, rows))
    rows, codes = rows[order], codes[order]
    return pd.DataFrame(
        {
            "service": prod["service"].to_numpy()[rows].astype(str),
            "deployment": prod["external_id"].to_numpy()[rows].astype(str),
            "sha": data.shas.to_numpy()[codes].astype(str),
        }
    )


def prepare(frames: DeliveryFrames) -> Prepared:
    """Apply the DORA rules of DESIGN.md that depend on the whole history (see each module)."""
    data = _inputs(frames)
    commits, changes, incidents, shas = data.commits, data.changes, data.incidents, data.shas
    prod = production_deployments(data.deployments, data.services)
    ships = shipped.shipped_commits(prod, data.links, commits, shas)
    first = lead_time.first_shipments(prod, ships, commits, len(shas))

    backs = failures.rollbacks(prod)
    rolled = backs["rolled_back"].to_numpy(dtype=bool)
    undone = reverts.revert_failures(prod, ships, commits, changes, shas)
    reverted = undone["reverted"].to_numpy(dtype=bool)
    blamed = failures.attribute_incidents(incidents, prod)
    # one failed deployment counts once, whichever signals it has
    failed = failures.failed_mask(prod, rolled | reverted, blamed)
    # service is restored by whichever comes first: the rollback or the revert in production
    restored_at = _earliest(backs["next_finished_at"].where(rolled), undone["revert_restored_at"])
    is_rollback = backs["is_rollback"].to_numpy(dtype=bool)
    prod = prod.assign(
        failed=failed,
        by_incident=failures.failed_mask(prod, np.zeros(len(prod), bool), blamed),
        rolled_back=rolled,
        reverted=reverted,
        is_rollback=is_rollback,
        rework=rework.rework_mask(
            is_rollback | undone["ships_revert"].to_numpy(dtype=bool),
            rework.during_incidents(prod, blamed),
        ),
        recovery_hours=recovery.recovery_hours(
            prod, failed, rolled | reverted, restored_at, blamed
        ),
        finished_ns=epoch_ns(prod["finished_at"]),
    )
    stages = lead_time.change_stages(changes, first, shas)
    stages = stages.assign(deployed_ns=epoch_ns(pd.to_datetime(stages["deployed_at"], utc=True)))
    blamed = blamed.assign(opened_ns=epoch_ns(blamed["opened_at"]))
    return Prepared(prod, first, stages, blamed, _records(commits, changes, incidents))


def _records(commits: pd.DataFrame, changes: pd.DataFrame, incidents: pd.DataFrame) -> pd.DataFrame:
    parts = [
        pd.DataFrame({"service": f["service"], "kind": kind, "at_ns": epoch_ns(f[column])})
        for f, kind, column in (
            (commits, "commit", "committed_at"),
            (changes, "change", "opened_at"),
            (incidents, "incident", "opened_at"),
        )
    ]
    return pd.concat(parts, ignore_index=True)


def recorded(
    prepared: Prepared, window: Window, services: Collection[str] | None = None
) -> RecordedData:
    """Commits, changes and incidents stored for `services` before the window end, and the
    commits made in the window (a record without a time counts as before the end)."""
    records = prepared.records
    if services is not None:
        records = records[records["service"].isin(list(services)).to_numpy()]
    start, end = _bounds(window)
    at = records["at_ns"].to_numpy()
    before = at < end  # NaT is the smallest int64: an unknown time is "before"
    kinds = records["kind"].to_numpy()
    return RecordedData(
        commits=int((before & (kinds == "commit")).sum()),
        changes=int((before & (kinds == "change")).sum()),
        incidents=int((before & (kinds == "incident")).sum()),
        commits_in_window=int(((at >= start) & before & (kinds == "commit")).sum()),
    )


_NS_LOWEST = pd.Timestamp("1678-01-01", tz="UTC")  # within int64 nanoseconds (1677..2262)
_NS_HIGHEST = pd.Timestamp("2262-01-01", tz="UTC")


def _epoch_ns(value: datetime) -> int:
    """`value` as epoch nanoseconds, clamped to what int64 nanoseconds hold: the history of a
    long window reaches back centuries, where no stored time can lie anyway."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return min(max(stamp, _NS_LOWEST), _NS_HIGHEST).as_unit("ns").value


def _bounds(window: Window) -> tuple[int, int]:
    return _epoch_ns(window.start), _epoch_ns(window.end)


def _in_services(frame: pd.DataFrame, services: Collection[str] | None) -> np.ndarray | None:
    """Mask of the rows of `services` (None: every row)."""
    if services is None:
        return None
    column_of_services = frame["service"]
    if isinstance(column_of_services.dtype, pd.CategoricalDtype):
        categories = column_of_services.cat.categories
        wanted = np.zeros(len(categories) + 1, bool)  # the extra slot: missing (code -1)
        wanted[:-1] = categories.isin(list(services))
        return wanted[column_of_services.cat.codes.to_numpy()]
    return column_of_services.isin(list(services)).to_numpy()


def _mask(
    frame: pd.DataFrame, column: str, window: Window, services: Collection[str] | None
) -> np.ndarray:
    """Which rows of `frame` have `column` (epoch ns) in [start, end) and are of `services`."""
    start, end = _bounds(window)
    values = frame[column].to_numpy()
    mask = (values >= start) & (values < end)
    of_services = _in_services(frame, services)
    if of_services is not None:
        mask &= of_services
    return mask


def _arrays(
    frame: pd.DataFrame,
    column: str,
    window: Window,
    services: Collection[str] | None,
    wanted: Sequence[str],
) -> dict[str, np.ndarray]:
    """The `wanted` columns of `_mask`'s rows, as arrays (selecting the rows of a whole frame
    copies every column: a millisecond on a few rows)."""
    mask = _mask(frame, column, window, services)
    return {name: frame[name].to_numpy()[mask] for name in wanted}


# what a window's metrics and verdict sample read of each production deployment
_WINDOW_COLUMNS = (
    "finished_ns",
    "failed",
    "rework",
    "recovery_hours",
    "by_incident",
    "rolled_back",
    "reverted",
)


def window_metrics(
    prepared: Prepared, window: Window, services: Collection[str] | None = None
) -> WindowMetrics:
    """The DORA metrics of `window` over `services` (None: all services)."""
    deps = _arrays(
        prepared.deployments,
        "finished_ns",
        window,
        services,
        _WINDOW_COLUMNS,
    )
    finished = deps["finished_ns"]
    count = len(finished)
    freq = frequency.deployment_frequency(finished, window)
    lead_hours = _arrays(prepared.lead_times, "finished_ns", window, services, ("hours",))
    lead_hours = lead_hours["hours"].astype(float)
    lead = lead_time.summarize(lead_hours)
    failed = int(deps["failed"].sum())
    reworked = int(deps["rework"].sum())
    cfr = round(failed / count, 4) if count else None
    recovery_hours = deps["recovery_hours"].astype(float)
    rec = recovery.summarize(recovery_hours)
    days = frequency.window_days(window)
    deployments_ci, per_week_ci = uncertainty.count_intervals(count, days / 7)
    intervals = Intervals(
        level=uncertainty.LEVEL,
        deployment_count=deployments_ci,
        deployments_per_week=per_week_ci,
        deployment_days_share=(
            uncertainty.wilson(
                frequency.active_days(finished, window), frequency.counted_days(window)
            )
            if count
            else Interval()
        ),
        lead_time_hours=uncertainty.duration_intervals(lead_hours),
        change_failure_rate=uncertainty.wilson(failed, count),
        recovery_time_hours=uncertainty.duration_intervals(recovery_hours),
        rework_rate=uncertainty.wilson(reworked, count),
    )
    blamed_on = _arrays(prepared.incidents, "opened_ns", window, services, ("deployment_id",))
    blamed_on = blamed_on["deployment_id"]
    changes = prepared.changes
    stages = changes.loc[_mask(changes, "deployed_ns", window, services), list(lead_time.STAGES)]
    return WindowMetrics(
        window=window,
        deployment_count=count,
        deployments_per_day=freq.per_day,
        deployments_per_week=freq.per_week,
        deployment_days_share=freq.days_share,
        deployment_weeks_share=freq.weeks_share,
        lead_time_hours=lead,
        change_failure_rate=cfr,
        failed_deployments=failed,
        failed_by=FailureSignals(
            incident=int(deps["by_incident"].sum()),
            rollback=int(deps["rolled_back"].sum()),
            revert=int(deps["reverted"].sum()),
        ),
        rolled_back_deployments=int((deps["failed"] & deps["rolled_back"]).sum()),
        recovery_time_hours=rec,
        rework_rate=round(reworked / count, 4) if count else None,
        rework_deployments=reworked,
        lead_time_breakdown_hours=lead_time.breakdown(stages),
        incidents_opened=len(blamed_on),
        incidents_without_deployment=int(pd.isna(blamed_on).sum()),
        tier=tiers.tiers_for(freq.per_week if count else None, lead.median, cfr, rec.median),
        intervals=intervals,
    )


def window_samples(
    prepared: Prepared, windows: list[Window], services: Collection[str] | None = None
) -> list[WindowSample]:
    """What the verdict tests need of each of `windows` (consecutive, oldest first): one
    selection of their whole span, split by time (`metrics/verdicts.py`)."""
    if not windows:
        return []
    span = Window(start=windows[0].start, end=windows[-1].end, label="span")
    deps = _arrays(prepared.deployments, "finished_ns", span, services, _WINDOW_COLUMNS)
    by_time = np.argsort(deps["finished_ns"], kind="stable")
    dep_ns = deps["finished_ns"][by_time]
    failed, reworked = deps["failed"][by_time].astype(bool), deps["rework"][by_time].astype(bool)
    recovery_hours = deps["recovery_hours"][by_time].astype(float)
    lead = _arrays(
        prepared.lead_times, "finished_ns", span, services, ("finished_ns", "deployment", "hours")
    )
    by_time = np.argsort(lead["finished_ns"], kind="stable")
    lead_ns, lead_deployment = lead["finished_ns"][by_time], lead["deployment"][by_time]
    lead_hours = lead["hours"][by_time].astype(float)
    out = []
    for window in windows:
        start, end = _bounds(window)
        a, b = np.searchsorted(dep_ns, [start, end])
        c, d = np.searchsorted(lead_ns, [start, end])
        recovered = recovery_hours[a:b]
        out.append(
            WindowSample(
                deployments=int(b - a),
                failed=int(failed[a:b].sum()),
                rework=int(reworked[a:b].sum()),
                # (no deployments: no day to count, and a window centuries back has a start
                # that epoch nanoseconds cannot hold)
                active_days=frequency.active_days(dep_ns[a:b], window) if b > a else 0,
                days=frequency.counted_days(window),
                exposure_days=frequency.window_days(window),
                lead_hours=per_deployment_medians(lead_deployment[c:d], lead_hours[c:d]),
                recovery_hours=recovered[~np.isnan(recovered)],
            )
        )
    return out


def first_deployment_ns(prepared: Prepared, services: Collection[str] | None = None) -> int | None:
    """When the first production deployment of `services` finished (epoch ns), if any: the
    scope's data begins there, so earlier windows hold no data rather than zero deployments."""
    finished = prepared.deployments["finished_ns"].to_numpy()
    of_services = _in_services(prepared.deployments, services)
    if of_services is not None:
        finished = finished[of_services]
    return int(finished.min()) if finished.size else None


def trend_verdicts(
    prepared: Prepared,
    windows: list[Window],
    services: Collection[str] | None = None,
    baseline_windows: int = BASELINE_WINDOWS,
) -> list[Verdicts]:
    """Verdicts for `windows[1:]` (consecutive, oldest first): each against the window before
    it, and the last one also against its baseline, the up to `baseline_windows` windows just
    before it pooled. Windows that ended before the scope's first production deployment are
    no data: left out of the baseline, "too little data" as a previous window."""
    samples = window_samples(prepared, windows, services)
    first = first_deployment_ns(prepared, services)
    return sample_verdicts(samples, windows, first, len(windows) - 1, baseline_windows)


def sample_verdicts(
    samples: list[WindowSample],
    windows: list[Window],
    first: int | None,
    last: int,
    baseline_windows: int = BASELINE_WINDOWS,
) -> list[Verdicts]:
    """`trend_verdicts` of the last `last` of `windows` from their samples (`window_samples`,
    stored or computed) and the scope's first deployment (`first_deployment_ns`)."""
    samples = [
        s if first is not None and _bounds(w)[1] > first else WindowSample(windows=0)
        for w, s in zip(windows, samples, strict=True)
    ]
    if last < 1 or len(samples) < 2:
        return []
    pairs = list(itertools.pairwise(samples))[-last:]
    out = [verdicts(cur, prev, None) for prev, cur in pairs[:-1]]
    before = [s for s in samples[:-1][-baseline_windows:] if s.windows]
    out.append(verdicts(samples[-1], samples[-2], pool(before)))
    return out


def compute(frames: DeliveryFrames, window: Window) -> WindowMetrics:
    """DORA metrics of all services in `frames` over `window` (the one-call pure entry)."""
    return window_metrics(prepare(frames), window)


def slowest_changes(
    prepared: Prepared, window: Window, services: Collection[str] | None = None, limit: int = 5
) -> list[SlowChange]:
    """The `limit` changes deployed in `window` with the longest lead time, slowest first."""
    changes = prepared.changes
    shown = ["service", "external_id", "title", "lead_time_hours", *lead_time.STAGES]
    stages = changes.loc[_mask(changes, "deployed_ns", window, services), shown]
    top = stages.sort_values(
        ["lead_time_hours", "service", "external_id"], ascending=[False, True, True]
    ).head(limit)

    def num(value: object) -> float | None:
        return None if pd.isna(value) else round(float(value), 2)  # type: ignore[arg-type]

    return [
        SlowChange(
            service=row.service,
            id=str(row.external_id),
            title=None if pd.isna(row.title) else str(row.title),
            lead_time_hours=round(float(row.lead_time_hours), 2),
            coding=num(row.coding),
            pickup=num(row.pickup),
            review=num(row.review),
            deploy=num(row.deploy),
        )
        for row in top.itertuples(index=False)
    ]


def deployments_by_day(
    prepared: Prepared, window: Window, services: Collection[str] | None = None
) -> dict[str, int]:
    """Production deployments per UTC day of `window` (`2026-01-05` → count), every day listed."""
    finished = _arrays(prepared.deployments, "finished_ns", window, services, ("finished_ns",))
    days = pd.date_range(
        pd.Timestamp(window.start).floor("D"),
        pd.Timestamp(window.end) - pd.Timedelta(1, "ns"),
        freq="D",
    )
    counts = {day.date().isoformat(): 0 for day in days}
    utc_days = finished["finished_ns"].astype("datetime64[ns]").astype("datetime64[D]")
    for day, n in zip(*np.unique(utc_days, return_counts=True), strict=True):
        counts[str(day)] = int(n)
    return dict(sorted(counts.items()))
