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

from insights.metrics.result import LeadTimeBreakdownHours, LeadTimeHours

HOUR = np.timedelta64(3600, "s")
STAGES = ("coding", "pickup", "review", "deploy")


def hours(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """(later − earlier) in hours, negative clipped to 0, missing stays NaN."""
    return ((later - earlier) / pd.Timedelta(hours=1)).clip(lower=0.0).astype(float)


def first_shipments(
    prod: pd.DataFrame, shipped: pd.DataFrame, commits: pd.DataFrame
) -> pd.DataFrame:
    """Per (service, sha): the first production deployment that shipped it, and the lead time.

    Columns: service, sha, deployment_id, finished_at, committed_at, hours.
    """
    deployments = prod[["deployment_id", "service", "pos", "finished_at"]]
    rows = shipped.merge(deployments, on="deployment_id", how="inner", sort=False)
    rows = rows.sort_values("pos", kind="stable").drop_duplicates(["service", "sha"])
    rows = rows.merge(
        commits[["service", "sha", "committed_at"]].drop_duplicates(["service", "sha"]),
        on=["service", "sha"],
        how="left",
    )
    rows["hours"] = hours(rows["finished_at"], rows["committed_at"])
    return rows[["service", "sha", "deployment_id", "finished_at", "committed_at", "hours"]]


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


def change_stages(changes: pd.DataFrame, first: pd.DataFrame) -> pd.DataFrame:
    """Per merged change that reached production: its stages in hours and when it deployed.

    Columns: service, external_id, title, deployed_at, lead_time_hours, coding, pickup, review,
    deploy.
    """
    columns = ["service", "external_id", "title", "deployed_at", "lead_time_hours", *STAGES]
    merged = changes[changes["merged_at"].notna()]
    if merged.empty or first.empty:
        return pd.DataFrame({c: [] for c in columns})
    shipped_at = first[["service", "sha", "finished_at"]]
    by_merge = merged[["service", "external_id", "merge_sha"]].merge(
        shipped_at, left_on=["service", "merge_sha"], right_on=["service", "sha"], how="inner"
    )
    listed = merged[["service", "external_id", "commits"]].explode("commits").dropna()
    by_commits = (
        listed.merge(
            shipped_at, left_on=["service", "commits"], right_on=["service", "sha"], how="inner"
        )
        .groupby(["service", "external_id"], as_index=False)["finished_at"]
        .max()
    )
    deployed = pd.concat(
        [by_merge[["service", "external_id", "finished_at"]], by_commits], ignore_index=True
    ).drop_duplicates(["service", "external_id"], keep="first")
    rows = merged.merge(deployed, on=["service", "external_id"], how="inner")
    rows = rows.rename(columns={"finished_at": "deployed_at"})
    start = rows["first_commit_at"].fillna(rows["opened_at"])
    rows["lead_time_hours"] = hours(rows["deployed_at"], start)
    rows["coding"] = hours(rows["opened_at"], rows["first_commit_at"])
    rows["pickup"] = hours(rows["first_review_at"], rows["opened_at"])
    rows["review"] = hours(rows["merged_at"], rows["first_review_at"])
    rows["deploy"] = hours(rows["deployed_at"], rows["merged_at"])
    return rows[columns]


def breakdown(stages: pd.DataFrame) -> LeadTimeBreakdownHours:
    """Median of each stage over the given changes (None for a stage nobody has)."""
    if stages.empty:
        return LeadTimeBreakdownHours()
    medians = {}
    for stage in STAGES:
        values = stages[stage].dropna().to_numpy(dtype=float)
        medians[stage] = _round(np.median(values)) if values.size else None
    return LeadTimeBreakdownHours(**medians, samples=len(stages))
