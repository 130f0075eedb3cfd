"""Lead time for changes, and its breakdown from changes (PR/MR).

Rules:
- Each shipped commit counts once, at its first production deployment (of its service):
  `lead time = deployment.finished_at − commit.committed_at`, in hours. A commit time after the
  deployment (clock skew) counts as 0. Commits we have no record of give no sample.
- Samples belong to the window that contains that deployment's `finished_at`.
- Summary: median, p75, p90 (numpy linear interpolation) and the sample count.
- Breakdown per merged change, counted when it was deployed: coding (first commit → opened),
  pickup (opened → first review), review (first review → merged), deploy (merged → the first
  production deployment that shipped its merge sha, else its last listed commit). Medians.

Example: commit at 10:00, first deployed 16:00 → one sample of 6.0 hours.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from insights.metrics.keys import MISSING, ShaTable, codes_of, first_rows
from insights.metrics.nanos import HOUR_NS, NAT, epoch_ns
from insights.metrics.result import LeadTimeBreakdownHours, LeadTimeHours

STAGES = ("coding", "pickup", "review", "deploy")


def hours(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """(later − earlier) in hours, negative clipped to 0, missing stays NaN (UTC times; in
    numpy on their nanoseconds: the same float as pandas' Timedelta division, without its
    per-call cost on small frames)."""
    return pd.Series(ns_hours(epoch_ns(later), epoch_ns(earlier)), index=later.index)


def ns_hours(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """`hours` of int64 nanoseconds (NaT: `NAT`)."""
    known = (later != NAT) & (earlier != NAT)
    out = np.full(len(later), np.nan)
    out[known] = (later[known] - earlier[known]) / HOUR_NS
    return np.where(out < 0, 0.0, out)


def first_shipments(
    prod: pd.DataFrame,
    shipped: tuple[np.ndarray, np.ndarray],
    commits: pd.DataFrame,
    sha_count: int,
) -> pd.DataFrame:
    """Per (service, sha): the first production deployment that shipped it, and the lead time.

    `shipped` holds (rows in `prod`, sha codes); `prod` rows are in deployment order per
    service. Columns: service, sha, finished_ns, hours (commits we have no record of are left
    out).
    """
    service_codes = prod["service"].cat.codes.to_numpy().astype(np.int64)
    shipped_rows, shipped_shas = shipped
    row, sha = first_rows(shipped_rows, service_codes[shipped_rows], shipped_shas, sha_count)
    table = ShaTable(commits["service"].cat.codes.to_numpy(), commits["sha"].to_numpy(), sha_count)
    found = table.find(service_codes[row], sha)
    committed = epoch_ns(commits["committed_at"])
    ok = found >= 0
    ok[ok] = committed[found[ok]] != NAT
    row, sha, committed_ns = row[ok], sha[ok], committed[found[ok]]
    finished_ns = epoch_ns(prod["finished_at"])[row]
    return pd.DataFrame(
        {
            "service": pd.Categorical.from_codes(service_codes[row], dtype=prod["service"].dtype),
            "sha": sha,
            "deployment": row,
            "finished_ns": finished_ns,
            "hours": np.maximum((finished_ns - committed_ns) / 3.6e12, 0.0),
        }
    )


def _round(value: float) -> float:
    return round(float(value), 2)


def summarize(samples: np.ndarray) -> LeadTimeHours:
    """Median/p75/p90 of lead-time samples (hours); all None without samples."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return LeadTimeHours()
    p50, p75, p90 = np.percentile(samples, [50, 75, 90])
    return LeadTimeHours(
        median=_round(p50), p75=_round(p75), p90=_round(p90), samples=int(samples.size)
    )


def change_stages(changes: pd.DataFrame, first: pd.DataFrame, shas: pd.Index) -> pd.DataFrame:
    """Per merged change that reached production: its stages in hours and when it deployed.

    Columns: service, external_id, title, deployed_at, lead_time_hours, coding, pickup, review,
    deploy.
    """
    columns = ["service", "external_id", "title", "deployed_at", "lead_time_hours", *STAGES]
    merged = changes[changes["merged_at"].notna()]
    if merged.empty or first.empty:
        return pd.DataFrame({c: [] for c in columns})
    table = ShaTable(first["service"].cat.codes.to_numpy(), first["sha"].to_numpy(), len(shas))
    finished = first["finished_ns"].to_numpy()
    service = merged["service"].cat.codes.to_numpy().astype(np.int64)

    def shipped_ns(services: np.ndarray, sha_codes: np.ndarray) -> np.ndarray:
        found = table.find(services, sha_codes)
        return np.where(found >= 0, finished[np.maximum(found, 0)], MISSING)

    # per change (service, external_id): the first shipment of its merge sha (its first row's
    # that has one), else the latest first shipment among the commits its rows list; in numpy
    # over a code per change (pandas' concat, groupby and merge cost milliseconds on a few
    # rows, and a loop over a whole history's listed commits a second)
    by_merge = shipped_ns(service, merged["merge_sha"].to_numpy(np.int64))
    rows, listed = _listed_commits(merged)
    by_commits = shipped_ns(service[rows], codes_of(listed, shas))
    codes: dict[tuple[int, str], int] = {}
    keys = [
        codes.setdefault(key, len(codes))
        for key in zip(service.tolist(), merged["external_id"].tolist(), strict=True)
    ]
    key = np.array(keys, np.int64)
    shipped = by_merge != MISSING
    first_rows = np.unique(key[shipped], return_index=True)
    deployed = np.full(len(codes), MISSING, np.int64)
    deployed[first_rows[0]] = by_merge[shipped][first_rows[1]]
    found = by_commits != MISSING
    latest = np.full(len(codes), NAT, np.int64)
    np.maximum.at(latest, key[rows[found]], by_commits[found])
    by_listed = (deployed == MISSING) & (latest != NAT)
    deployed[by_listed] = latest[by_listed]
    kept = np.flatnonzero(deployed[key] != MISSING)
    at = deployed[key[kept]]
    opened, first_commit, first_review, merged_at = (
        epoch_ns(merged[column])[kept]
        for column in ("opened_at", "first_commit_at", "first_review_at", "merged_at")
    )
    out = merged[["service", "external_id", "title"]].iloc[kept].reset_index(drop=True)
    return out.assign(
        deployed_at=pd.DatetimeIndex(at.view("datetime64[ns]")).tz_localize("UTC"),
        lead_time_hours=ns_hours(at, np.where(first_commit == NAT, opened, first_commit)),
        coding=ns_hours(opened, first_commit),
        pickup=ns_hours(first_review, opened),
        review=ns_hours(merged_at, first_review),
        deploy=ns_hours(at, merged_at),
    )[columns]


def _listed_commits(changes: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """Per commit each change lists (a list, or one value; missing ones left out): the
    change's row and the sha (`explode` + `dropna`, by hand: pandas' explode costs
    milliseconds on a few rows)."""
    column = changes["commits"].to_numpy()
    if all(type(listed) is list for listed in column):  # as stored: a JSON list each
        lengths = np.fromiter(map(len, column), np.int64, len(column))
        rows = np.repeat(np.arange(len(column), dtype=np.int64), lengths)
        flat = itertools.chain.from_iterable(column)
        values = np.fromiter(flat, dtype=object, count=int(lengths.sum()))
        present = ~pd.isna(values)  # JSON's null (None), and NaN
        return rows[present], pd.Series(values[present], dtype=object)
    out_rows: list[int] = []
    out_values: list[object] = []
    for row, listed in enumerate(column):
        for value in listed if isinstance(listed, list | tuple) else [listed]:
            if not _missing(value):
                out_rows.append(row)
                out_values.append(value)
    return np.array(out_rows, np.int64), pd.Series(out_values, dtype=object)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def breakdown(stages: pd.DataFrame) -> LeadTimeBreakdownHours:
    """Median of each stage over the given changes (None for a stage nobody has)."""
    if stages.empty:
        return LeadTimeBreakdownHours()
    medians = {}
    for stage in STAGES:
        values = stages[stage].dropna().to_numpy(dtype=float)
        medians[stage] = _round(np.median(values)) if values.size else None
    return LeadTimeBreakdownHours(**medians, samples=len(stages))
