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

from insights.metrics.keys import MISSING
from insights.metrics.nanos import NAT, epoch_ns


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
    (`linked`, `attributed` or None). `service` is the categorical `prod` has (`prepare`);
    `prod` is in `production_deployments`' order. In numpy over the incidents (pandas'
    merges and `.loc` writes cost milliseconds on a few rows).
    """
    frame = incidents.drop_duplicates(["service", "external_id"], keep="last").reset_index(
        drop=True
    )
    n = len(frame)
    deployment_id = np.full(n, np.nan)
    finished_at = np.full(n, NAT, np.int64)
    attribution = np.full(n, None, dtype=object)
    if n and len(prod):
        service = frame["service"].cat.codes.to_numpy().astype(np.int64)
        prod_service = prod["service"].cat.codes.to_numpy().astype(np.int64)
        prod_ids = prod["deployment_id"].to_numpy()
        prod_finished = epoch_ns(prod["finished_at"])
        # linked: the production deployment of its service with the id it names
        named = frame["deployment_external_id"]
        wanted = named.dropna().unique()
        candidates = (
            np.flatnonzero(prod["external_id"].isin(wanted).to_numpy()) if len(wanted) else []
        )
        external_ids = prod["external_id"].to_numpy()
        by_key = {(int(prod_service[r]), str(external_ids[r])): r for r in candidates}
        linked = np.full(n, MISSING, np.int64)
        for row, value in enumerate(named.to_numpy()):
            if isinstance(value, str):
                linked[row] = by_key.get((int(service[row]), value), MISSING)
        has_link = linked >= 0
        attribution[has_link] = "linked"
        # the rest: the last of their service's production deployments finished before they
        # opened (rows of a service are contiguous and in finish order; among equal finish
        # times, the last in that order)
        blamed = linked.copy()
        opened = epoch_ns(frame["opened_at"])
        for code in np.unique(service[~has_link]):
            rows = np.flatnonzero(~has_link & (service == code))
            lo, hi = np.searchsorted(prod_service, [code, code + 1])
            before = np.searchsorted(prod_finished[lo:hi], opened[rows], side="left") - 1
            found = (before >= 0) & (opened[rows] != NAT)
            blamed[rows[found]] = lo + before[found]
            attribution[rows[found]] = "attributed"
        has_deployment = blamed >= 0
        deployment_id[has_deployment] = prod_ids[blamed[has_deployment]]
        finished_at[has_deployment] = prod_finished[blamed[has_deployment]]
    return frame.assign(
        deployment_id=deployment_id,
        deployment_finished_at=pd.Series(
            finished_at.view("datetime64[ns]"), index=frame.index
        ).dt.tz_localize("UTC"),
        attribution=pd.Series(attribution, index=frame.index, dtype=object),
    )


def failed_mask(
    prod: pd.DataFrame, rolled_back: np.ndarray, attributed: pd.DataFrame
) -> np.ndarray:
    """Deployments that failed: blamed for an incident, or rolled back."""
    blamed = attributed["deployment_id"].dropna().unique()
    return prod["deployment_id"].isin(blamed).to_numpy() | rolled_back
