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
    a, b = epoch_ns(later), epoch_ns(earlier)
    known = (a != NAT) & (b != NAT)
    out = np.full(len(a), np.nan)
    out[known] = (a[known] - b[known]) / HOUR_NS
    return pd.Series(np.where(out < 0, 0.0, out), index=later.index)


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
    committed = commits["committed_at"].to_numpy("datetime64[ns]").astype(np.int64)
    ok = found >= 0
    ok[ok] = committed[found[ok]] != NAT
    row, sha, committed_ns = row[ok], sha[ok], committed[found[ok]]
    finished_ns = prod["finished_at"].to_numpy("datetime64[ns]").astype(np.int64)[row]
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

    def shipped_ns(services: pd.Series, shas: np.ndarray) -> np.ndarray:
        found = table.find(services.cat.codes.to_numpy().astype(np.int64), shas)
        return np.where(found >= 0, finished[np.maximum(found, 0)], MISSING)

    by_merge = merged[["service", "external_id"]].assign(
        deployed_ns=shipped_ns(merged["service"], merged["merge_sha"].to_numpy(np.int64))
    )
    listed = _listed_commits(merged)
    listed = listed.assign(
        deployed_ns=shipped_ns(listed["service"], codes_of(listed["commits"], shas))
    )
    by_commits = (
        listed[listed["deployed_ns"] != MISSING]
        .groupby(["service", "external_id"], as_index=False, observed=True)["deployed_ns"]
        .max()
    )
    deployed = pd.concat(
        [by_merge[by_merge["deployed_ns"] != MISSING], by_commits], ignore_index=True
    ).drop_duplicates(["service", "external_id"], keep="first")
    deployed_at = pd.to_datetime(deployed["deployed_ns"].to_numpy().view("datetime64[ns]"))
    deployed = deployed.assign(finished_at=deployed_at.tz_localize("UTC"))
    deployed = deployed.drop(columns=["deployed_ns"])
    rows = merged.merge(deployed, on=["service", "external_id"], how="inner")
    rows = rows.rename(columns={"finished_at": "deployed_at"})
    start = rows["first_commit_at"].fillna(rows["opened_at"])
    rows["lead_time_hours"] = hours(rows["deployed_at"], start)
    rows["coding"] = hours(rows["opened_at"], rows["first_commit_at"])
    rows["pickup"] = hours(rows["first_review_at"], rows["opened_at"])
    rows["review"] = hours(rows["merged_at"], rows["first_review_at"])
    rows["deploy"] = hours(rows["deployed_at"], rows["merged_at"])
    return rows[columns]


def _listed_commits(changes: pd.DataFrame) -> pd.DataFrame:
    """One row (service, external_id, commits: one sha) per commit each change lists (a
    list, or one value), missing ones left out: `explode` + `dropna`, by hand (pandas'
    explode costs milliseconds on a few rows)."""
    rows: list[int] = []
    values: list[object] = []
    for row, listed in enumerate(changes["commits"].to_numpy()):
        for value in listed if isinstance(listed, list | tuple) else [listed]:
            if value is not None and not (isinstance(value, float) and np.isnan(value)):
                rows.append(row)
                values.append(value)
    keys = changes[["service", "external_id"]].iloc[rows]
    return keys.assign(commits=pd.Series(values, index=keys.index, dtype=object))


def breakdown(stages: pd.DataFrame) -> LeadTimeBreakdownHours:
    """Median of each stage over the given changes (None for a stage nobody has)."""
    if stages.empty:
        return LeadTimeBreakdownHours()
    medians = {}
    for stage in STAGES:
        values = stages[stage].dropna().to_numpy(dtype=float)
        medians[stage] = _round(np.median(values)) if values.size else None
    return LeadTimeBreakdownHours(**medians, samples=len(stages))
