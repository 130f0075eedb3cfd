"""Change failure rate: which production deployments failed, by incident or by rollback.

Rules:
- An incident linked by `deployment_id` to a production deployment of its service marks that
  deployment failed. An incident without a link (or linked to an id that is not a successful
  production deployment) is attributed to the latest production deployment of its service that
  finished strictly before the incident opened. An incident with no such deployment is ignored
  for the change failure rate but reported (`incidents_without_deployment`).
- A deployment was rolled back when the next production deployment to the same service and
  environment runs a sha that production of the service (any production environment) ran
  before this one. Redeploying the current sha is not a rollback.
- Change failure rate = failed deployments / deployments of the window (None without any).

Example: d1 (sha a), d2 (sha b), d3 (sha a) in production → d2 was rolled back by d3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def rollbacks(prod: pd.DataFrame) -> pd.DataFrame:
    """Per production deployment (same index as `prod`): `rolled_back` (it failed that way),
    `is_rollback` (it undid the previous one) and `next_finished_at` (when the next deployment to
    the same service + environment finished).

    `prod` comes from `production_deployments` (rows in order per service, `first_pos` = the
    position of the service's first production deployment of that sha)."""
    n = len(prod)
    service = prod["service"].cat.codes.to_numpy()
    environment = pd.factorize(prod["environment"])[0]
    within = np.lexsort((np.arange(n), environment, service))  # each environment in order
    same = (service[within][1:] == service[within][:-1]) & (
        environment[within][1:] == environment[within][:-1]
    )
    following = np.full(n, -1, np.int64)
    following[within[:-1][same]] = within[1:][same]
    has_next = following >= 0
    nxt = following[has_next]
    sha = prod["sha"].to_numpy()
    first_pos = prod["first_pos"].to_numpy()
    rolled = np.zeros(n, bool)
    rolled[has_next] = (sha[nxt] != sha[has_next]) & (
        first_pos[nxt] < prod["pos"].to_numpy()[has_next]
    )
    is_rollback = np.zeros(n, bool)
    is_rollback[following[rolled]] = True
    finished = prod["finished_at"].to_numpy("datetime64[ns]")
    next_finished = np.full(n, np.datetime64("NaT"), "datetime64[ns]")
    next_finished[has_next] = finished[nxt]
    return pd.DataFrame(
        {
            "rolled_back": rolled,
            "is_rollback": is_rollback,
            "next_finished_at": pd.Series(next_finished, index=prod.index).dt.tz_localize("UTC"),
        },
        index=prod.index,
    )


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
