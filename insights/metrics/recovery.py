"""Failed deployment recovery time: how long production stayed broken after a failed deployment.

Rules, per failed deployment:
- Failed because of incidents: from the earliest of its incidents opened to the last of them
  resolved. While any of them is unresolved there is no sample yet.
- Failed only because it was rolled back or reverted: from its own `finished_at` to the
  `finished_at` of the deployment that restored service: the next deployment to the same
  service and environment (the rollback), or the first deployment that shipped the revert
  (`reverts.py`), whichever finished first.
- Samples belong to the window of the failed deployment (as the change failure rate does).
- Summary: median and p90 in hours (numpy linear interpolation), and the sample count.

Example: deployed 10:00, incident opened 11:00, resolved 13:30 → 2.5 hours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insights.metrics.result import RecoveryTimeHours


def recovery_hours(
    prod: pd.DataFrame,
    failed: np.ndarray,
    restored_by_deployment: np.ndarray,
    restored_at: pd.Series,
    attributed: pd.DataFrame,
) -> np.ndarray:
    """Recovery time in hours per production deployment (NaN: not failed, or not recovered)."""
    out = np.full(len(prod), np.nan)
    if not failed.any():
        return out
    blamed = attributed[attributed["deployment_id"].notna()]
    per_deployment = (
        blamed.assign(still_open=blamed["resolved_at"].isna())
        .groupby("deployment_id")
        .agg(
            opened=("opened_at", "min"),
            resolved=("resolved_at", "max"),
            open_count=("still_open", "sum"),
        )
    )
    ids = prod["deployment_id"]
    has_incident = ids.isin(per_deployment.index).to_numpy()
    if has_incident.any():
        rows = per_deployment.reindex(ids[has_incident])
        span = (rows["resolved"] - rows["opened"]) / pd.Timedelta(hours=1)
        span = span.where(rows["open_count"] == 0).clip(lower=0.0)
        out[has_incident] = span.to_numpy(dtype=float)
    by_deployment = restored_by_deployment & ~has_incident
    if by_deployment.any():
        span = (restored_at[by_deployment] - prod["finished_at"][by_deployment]) / pd.Timedelta(
            hours=1
        )
        out[by_deployment] = span.to_numpy(dtype=float)
    return out


def summarize(samples: np.ndarray) -> RecoveryTimeHours:
    """Median and p90 of recovery samples (hours); None without samples."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return RecoveryTimeHours()
    p50, p90 = np.percentile(samples, [50, 90])
    return RecoveryTimeHours(
        median=round(float(p50), 2), p90=round(float(p90), 2), samples=int(samples.size)
    )
