"""Which commits each production deployment ships.

Rules (DESIGN.md, "Deployment" and "Lead time"):
- A deployment of a sha that production of the same service already ran ships nothing
  (a redeploy or a rollback does not ship its commits again).
- Otherwise, a deployment whose event listed `commits` ships exactly those.
- Otherwise the commits are derived from the commit graph: those reachable from this sha (via
  `parents`) and not from the earlier successful production deployments of the same service and
  environment — for a linear history that is "not reachable from the previous one".
- The first deployment of a service + environment has no predecessor: without listed commits it
  ships nothing we can date (no lead-time samples), though its ancestors count as shipped then.

Example: d1 runs `b` (first: ships nothing), d2 runs `d` whose history is d → c → b: d2 ships
{c, d}; d3 runs `b` again: ships nothing (production ran `b` before).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def redeploys(prod: pd.DataFrame) -> np.ndarray:
    """Mask of production deployments whose sha production of the service already ran."""
    if prod.empty:
        return np.zeros(0, bool)
    first = prod.groupby(["service", "sha"], sort=False)["pos"].transform("min")
    return (first < prod["pos"]).to_numpy()


def _walk(sha: str, parents: dict[str, Iterable[str]], visited: set[str]) -> list[str]:
    """Commits reachable from `sha` not yet in `visited` (which this call extends)."""
    found = []
    stack = [sha]
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        found.append(current)
        stack.extend(parents.get(current, ()))
    return found


def _graph_shipped(prod: pd.DataFrame, commits: pd.DataFrame, redeploy: np.ndarray) -> pd.DataFrame:
    unlisted = ~prod["commits_listed"].astype(bool).to_numpy()
    groups = prod.loc[unlisted, ["service", "environment"]].drop_duplicates()
    if groups.empty:
        return pd.DataFrame({"deployment_id": [], "sha": []})
    services = set(groups["service"])
    graph: dict[str, dict[str, Iterable[str]]] = {s: {} for s in services}
    relevant = commits[commits["service"].isin(services)]
    for service, sha, parents in relevant[["service", "sha", "parents"]].itertuples(index=False):
        graph[service][sha] = parents if parents is not None else ()
    wanted = set(groups.itertuples(index=False, name=None))
    ids: list[int] = []
    shas: list[str] = []
    frame = prod.assign(unlisted=unlisted, redeploy=redeploy)
    for (service, environment), group in frame.groupby(["service", "environment"], sort=False):
        if (service, environment) not in wanted:
            continue
        visited: set[str] = set()
        parents = graph[service]
        for row in group.itertuples(index=False):
            found = _walk(row.sha, parents, visited)
            if row.env_pos == 0 or not row.unlisted or row.redeploy:
                continue
            ids.extend([row.deployment_id] * len(found))
            shas.extend(found)
    return pd.DataFrame({"deployment_id": ids, "sha": shas})


def shipped_commits(
    prod: pd.DataFrame, deployment_commits: pd.DataFrame, commits: pd.DataFrame
) -> pd.DataFrame:
    """(deployment_id, sha) for every commit a production deployment ships (rules above)."""
    redeploy = redeploys(prod)
    listed_ids = prod.loc[
        prod["commits_listed"].astype(bool).to_numpy() & ~redeploy, "deployment_id"
    ]
    listed = deployment_commits.loc[
        deployment_commits["deployment_id"].isin(listed_ids), ["deployment_id", "sha"]
    ]
    graph = _graph_shipped(prod, commits, redeploy)
    if graph.empty:
        return listed.reset_index(drop=True)
    return pd.concat([listed, graph], ignore_index=True)
