"""Change failure rate: which production deployments failed, by incident or by rollback.

Rules:
- An incident linked by `deployment_id` to a production deployment of its service marks that
  deployment failed. An incident without a link (or linked to an id that is not a successful
  production deployment) is attributed to the latest production deployment of its service that
  finished strictly before the incident opened. An incident with no such deployment is ignored
  for the change failure rate but reported (`incidents_without_deployment`).
- A deployment was rolled back when the next production deployment to the same service and
  environment runs a sha that production ran before this one (an earlier deployment's sha).
  Redeploying the current sha is not a rollback.
- Change failure rate = failed deployments / deployments of the window (None without any).

Example: d1 (sha a), d2 (sha b), d3 (sha a) in production → d2 was rolled back by d3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def rollbacks(prod: pd.DataFrame) -> pd.DataFrame:
    """Per production deployment (same index as `prod`): `rolled_back` (it failed that way),
    `is_rollback` (it undid the previous one) and `next_finished_at` (when the next deployment to
    the same service + environment finished)."""
    out = pd.DataFrame(index=prod.index)
    if prod.empty:
        out["rolled_back"] = pd.Series(dtype=bool)
        out["is_rollback"] = pd.Series(dtype=bool)
        out["next_finished_at"] = pd.Series(dtype="datetime64[ns, UTC]")
        return out
    keys = ["service", "environment"]
    first_env = prod.groupby([*keys, "sha"], sort=False)["env_pos"].transform("min")
    by_env = prod.assign(_first=first_env).groupby(keys, sort=False)
    next_sha = by_env["sha"].shift(-1)
    next_first = by_env["_first"].shift(-1)
    rolled = (
        next_sha.notna() & (next_sha != prod["sha"]) & (next_first < prod["env_pos"])
    ).to_numpy()
    out["rolled_back"] = rolled
    previous_rolled = (
        pd.Series(rolled, index=prod.index)
        .groupby([prod["service"], prod["environment"]], sort=False)
        .shift(1)
    )
    out["is_rollback"] = previous_rolled.fillna(False).astype(bool).to_numpy()
    out["next_finished_at"] = by_env["finished_at"].shift(-1)
    return out


def attribute_incidents(incidents: pd.DataFrame, prod: pd.DataFrame) -> pd.DataFrame:
    """Incidents with the production deployment they are blamed on.

    Adds `deployment_id` (NaN when none), `deployment_finished_at` and `attribution`
    (`linked`, `attributed` or None).
    """
    frame = incidents.drop_duplicates(["service", "external_id"], keep="last").reset_index(
        drop=True
    )
    frame = frame.assign(
        deployment_id=np.nan,
        deployment_finished_at=pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]"),
        attribution=pd.Series(None, index=frame.index, dtype=object),
    )
    if frame.empty or prod.empty:
        return frame
    targets = prod[["service", "external_id", "deployment_id", "finished_at"]]
    wanted = frame["deployment_external_id"].dropna().unique()
    candidates = targets[targets["external_id"].isin(wanted)] if len(wanted) else targets.iloc[:0]
    linked = frame[["service", "deployment_external_id"]].merge(
        candidates,
        left_on=["service", "deployment_external_id"],
        right_on=["service", "external_id"],
        how="left",
    )
    has_link = linked["deployment_id"].notna().to_numpy()
    frame.loc[has_link, "deployment_id"] = linked.loc[has_link, "deployment_id"].to_numpy()
    frame.loc[has_link, "deployment_finished_at"] = linked.loc[has_link, "finished_at"].to_numpy()
    frame.loc[has_link, "attribution"] = "linked"
    rest = frame.loc[~has_link, ["service", "opened_at"]].reset_index()
    if not rest.empty:
        rest = rest.sort_values("opened_at", kind="stable")
        right = targets[["service", "deployment_id", "finished_at"]].sort_values(
            "finished_at", kind="stable"
        )
        found = pd.merge_asof(
            rest,
            right,
            left_on="opened_at",
            right_on="finished_at",
            by="service",
            direction="backward",
            allow_exact_matches=False,
        )
        found = found[found["deployment_id"].notna()]
        idx = found["index"].to_numpy()
        frame.loc[idx, "deployment_id"] = found["deployment_id"].to_numpy()
        frame.loc[idx, "deployment_finished_at"] = found["finished_at"].to_numpy()
        frame.loc[idx, "attribution"] = "attributed"
    return frame


def failed_mask(
    prod: pd.DataFrame, rolled_back: np.ndarray, attributed: pd.DataFrame
) -> np.ndarray:
    """Deployments that failed: blamed for an incident, or rolled back."""
    blamed = attributed["deployment_id"].dropna().unique()
    return prod["deployment_id"].isin(blamed).to_numpy() | rolled_back
