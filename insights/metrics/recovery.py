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

from insights.metrics.nanos import HOUR_NS, LAST, NAT, epoch_ns
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
    # per blamed deployment: its incidents' first opening, last resolution and how many are
    # still open (numpy on int64 nanoseconds: a pandas groupby costs milliseconds on a few rows)
    blamed = attributed["deployment_id"].to_numpy(dtype=float)
    blamed_rows = ~np.isnan(blamed)
    blamed_ids, group = np.unique(blamed[blamed_rows], return_inverse=True)
    ids = prod["deployment_id"].to_numpy(dtype=float)
    has_incident = np.isin(ids, blamed_ids)
    if has_incident.any():
        opened = epoch_ns(attributed["opened_at"])[blamed_rows]
        resolved = epoch_ns(attributed["resolved_at"])[blamed_rows]
        first_opened = np.full(blamed_ids.size, LAST)
        np.minimum.at(first_opened, group, np.where(opened == NAT, LAST, opened))
        last_resolved = np.full(blamed_ids.size, NAT)
        np.maximum.at(last_resolved, group, resolved)
        still_open = np.bincount(group, weights=resolved == NAT, minlength=blamed_ids.size)
        at = np.searchsorted(blamed_ids, ids[has_incident])
        first, last = first_opened[at], last_resolved[at]
        known = (still_open[at] == 0) & (first != LAST) & (last != NAT)
        span = np.full(at.size, np.nan)
        span[known] = (last[known] - first[known]) / HOUR_NS
        out[has_incident] = np.maximum(span, 0.0)
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
