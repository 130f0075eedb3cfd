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

import numpy as np
import pandas as pd

from insights.metrics.keys import MISSING, codes_of


def redeploys(prod: pd.DataFrame) -> np.ndarray:
    """Mask of production deployments whose sha production of the service already ran."""
    return (prod["first_pos"] < prod["pos"]).to_numpy()


def _walk(sha: int, parents: dict[int, list[int]], visited: set[int]) -> list[int]:
    """Commits reachable from `sha` not yet in `visited` (which this call extends)."""
    found = []
    stack = [sha]
    while stack:
        current = stack.pop()
        if current in visited or current == MISSING:
            continue
        visited.add(current)
        found.append(current)
        stack.extend(parents.get(current, ()))
    return found


def _parents(commits: pd.DataFrame, services: set[str], shas: pd.Index) -> dict[str, dict]:
    """Per service: sha code → parent codes, for the services whose history must be walked."""
    graph: dict[str, dict[int, list[int]]] = {s: {} for s in services}
    relevant = commits.loc[commits["service"].isin(services), ["service", "sha", "parents"]]
    edges = relevant.explode("parents").dropna(subset=["parents"])
    parent_codes = codes_of(edges["parents"], shas)
    for service, sha, parent in zip(edges["service"], edges["sha"], parent_codes, strict=True):
        if parent != MISSING:
            graph[service].setdefault(int(sha), []).append(int(parent))
    return graph


def _graph_shipped(
    prod: pd.DataFrame, commits: pd.DataFrame, redeploy: np.ndarray, shas: pd.Index
) -> pd.DataFrame:
    unlisted = ~prod["commits_listed"].astype(bool).to_numpy()
    groups = prod.loc[unlisted, ["service", "environment"]].drop_duplicates()
    if groups.empty:
        return pd.DataFrame({"deployment_id": [], "sha": []}, dtype=np.int64)
    graph = _parents(commits, set(groups["service"]), shas)
    wanted = set(groups.itertuples(index=False, name=None))
    ids: list[int] = []
    found_shas: list[int] = []
    frame = prod.assign(unlisted=unlisted, redeploy=redeploy)
    for (service, environment), group in frame.groupby(["service", "environment"], sort=False):
        if (service, environment) not in wanted:
            continue
        visited: set[int] = set()
        for row in group.itertuples(index=False):
            found = _walk(int(row.sha), graph[service], visited)
            if row.env_pos == 0 or not row.unlisted or row.redeploy:
                continue
            ids.extend([row.deployment_id] * len(found))
            found_shas.extend(found)
    return pd.DataFrame(
        {"deployment_id": np.array(ids, np.int64), "sha": np.array(found_shas, np.int64)}
    )


def shipped_commits(
    prod: pd.DataFrame, deployment_commits: pd.DataFrame, commits: pd.DataFrame, shas: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, sha codes): every commit a production deployment ships (rules above).

    `rows` are positions in `prod`; `sha` columns hold codes from `keys.intern_shas`, and
    `shas` maps codes back to shas (to follow `parents`).
    """
    redeploy = redeploys(prod)
    ships_listed = prod["commits_listed"].astype(bool).to_numpy() & ~redeploy
    ids = pd.Index(prod["deployment_id"].to_numpy())
    row = ids.get_indexer(deployment_commits["deployment_id"].to_numpy())
    keep = row >= 0
    keep[keep] = ships_listed[row[keep]]
    rows, codes = row[keep], deployment_commits["sha"].to_numpy(np.int64)[keep]
    graph = _graph_shipped(prod, commits, redeploy, shas)
    if graph.empty:
        return rows.astype(np.int64), codes
    graph_rows = ids.get_indexer(graph["deployment_id"].to_numpy())
    return (
        np.concatenate([rows, graph_rows]).astype(np.int64),
        np.concatenate([codes, graph["sha"].to_numpy(np.int64)]),
    )
