"""Rework rate: the share of production deployments that were unplanned fixes.

Rules: a deployment is rework when it is a rollback (it runs a sha production ran before the
deployment it replaces, see `failures.py`), when it ships a revert that failed an earlier
deployment (`reverts.py`), or when it finished while an incident blamed on an
earlier deployment of the same service was open (opened ≤ finished_at < resolved; an unresolved
incident stays open). Rework rate = rework deployments / deployments (None without any).

Example: d1 at 10:00, incident on d1 open 11:00–15:00, d2 at 12:00 (a hotfix) → d2 is rework.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_NS = np.int64


def _union(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, non-overlapping intervals covering the same instants as [starts, ends)."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(len(starts), bool)
    new[1:] = starts[1:] > reach[:-1]
    group = np.cumsum(new) - 1
    merged_starts = starts[new]
    merged_ends = np.zeros(len(merged_starts), dtype=ends.dtype)
    np.maximum.at(merged_ends, group, ends)
    return merged_starts, merged_ends


def during_incidents(prod: pd.DataFrame, attributed: pd.DataFrame) -> np.ndarray:
    """Mask of deployments that finished while an incident blamed on an earlier one was open."""
    out = np.zeros(len(prod), bool)
    blamed = attributed[attributed["deployment_id"].notna()]
    if blamed.empty or prod.empty:
        return out
    opened = blamed["opened_at"].to_numpy("datetime64[ns]").astype(_NS)
    after = blamed["deployment_finished_at"].to_numpy("datetime64[ns]").astype(_NS) + 1
    starts = np.maximum(opened, after)  # the blamed deployment itself is never rework for it
    resolved = blamed["resolved_at"]
    ends = np.where(
        resolved.isna().to_numpy(),
        np.iinfo(_NS).max,
        resolved.to_numpy("datetime64[ns]").astype(_NS),
    )
    finished = prod["finished_at"].to_numpy("datetime64[ns]").astype(_NS)
    prod_services = prod["service"].cat.codes.to_numpy()  # prod is sorted by service
    services = blamed["service"].cat.codes.to_numpy()
    for service in np.unique(services):
        mine = services == service
        s, e = _union(starts[mine], ends[mine])
        lo, hi = np.searchsorted(prod_services, [service, service + 1])
        t = finished[lo:hi]
        i = np.searchsorted(s, t, side="right") - 1
        out[lo:hi] = (i >= 0) & (t < e[np.maximum(i, 0)])
    return out


def rework_mask(undid: np.ndarray, during: np.ndarray) -> np.ndarray:
    """Rework deployments: rollbacks and reverts (`undid`), and deployments made during an open
    incident."""
    return undid | during
