"""Production deployments: the rows every DORA metric starts from.

Rule: a deployment counts when its status is `success`, its environment matches the service's
`production_pattern` (a regex, `re.search`), and it has a `finished_at`; it is counted at
`finished_at`. Duplicate rows of one (service, external id) keep the last. Deployments are
ordered per service by (finished_at, external_id), so input order never matters.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from insights.errors import UserError
from insights.metrics.keys import pair_keys
from insights.metrics.nanos import epoch_ns

COLUMNS = [
    "deployment_id",
    "service",
    "external_id",
    "environment",
    "sha",
    "finished_at",
    "commits_listed",
]


def production_environments(deployments: pd.DataFrame, services: pd.DataFrame) -> np.ndarray:
    """Boolean mask: does each deployment's environment match its service's production regex."""
    names = services["service"].astype(str)
    patterns = dict(zip(names, services["production_pattern"], strict=True))
    service_codes = deployments["service"].cat.codes.to_numpy().astype(np.int64)
    environments = pd.Categorical(deployments["environment"])
    env_codes = environments.codes.astype(np.int64)
    pair_codes = service_codes * (len(environments.categories) + 1) + env_codes
    inverse, pairs = pd.factorize(pair_codes)
    matches = np.zeros(len(pairs), bool)
    for i, pair in enumerate(pairs):
        service_code, env_code = divmod(int(pair), len(environments.categories) + 1)
        if service_code < 0 or env_code < 0 or env_code >= len(environments.categories):
            continue
        service = str(deployments["service"].cat.categories[service_code])
        environment = str(environments.categories[env_code])
        pattern = patterns.get(service)
        if pattern is None:
            continue
        try:
            matches[i] = re.search(pattern, environment) is not None
        except re.error as exc:
            raise UserError(
                f"service {service!r}: production_pattern {pattern!r} is not a regex ({exc})"
            ) from None
    return matches[inverse] if len(pair_codes) else np.zeros(0, bool)


def _order(frame: pd.DataFrame) -> np.ndarray:
    """Positions sorting `frame` by (service, finished_at, external_id)."""
    service = frame["service"].cat.codes.to_numpy()
    finished = epoch_ns(frame["finished_at"])
    order = np.lexsort((finished, service))
    s, f = service[order], finished[order]
    if not ((s[1:] == s[:-1]) & (f[1:] == f[:-1])).any():
        return order
    # equal finish times of one service: the external id decides (slower, so only then)
    return np.lexsort((frame["external_id"].astype(str).to_numpy(), finished, service))


def _first_pos(service: np.ndarray, sha: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per row: the `pos` of the first row with the same (service, sha); rows are in order."""
    groups, _ = pd.factorize(pair_keys(service, sha))
    first_row = np.full(groups.max() + 1 if len(groups) else 0, len(groups), np.int64)
    np.minimum.at(first_row, groups, np.arange(len(groups), dtype=np.int64))
    return pos[first_row[groups]]


def production_deployments(deployments: pd.DataFrame, services: pd.DataFrame) -> pd.DataFrame:
    """Successful production deployments, sorted by (service, finished_at, external_id).

    `service` must be categorical (see `compute.prepare`). A row id seen twice keeps its last
    row. Adds `pos` (0-based order within the service, all production environments together),
    `env_pos` (order within service + environment) and `first_pos` (the `pos` of the service's
    first production deployment of the same sha).
    """
    frame = deployments
    if frame["deployment_id"].duplicated().any():
        frame = frame.drop_duplicates("deployment_id", keep="last")
    keep = (
        (frame["status"] == "success").to_numpy()
        & frame["finished_at"].notna().to_numpy()
        & production_environments(frame, services)
    )
    frame = frame.loc[keep, COLUMNS]
    frame = frame.iloc[_order(frame)].reset_index(drop=True)
    service = frame["service"].cat.codes.to_numpy()
    pos = _running_count(service.astype(np.int64))
    frame["pos"] = pos
    frame["first_pos"] = _first_pos(service, frame["sha"].to_numpy(), pos)
    frame["env_pos"] = _running_count(pair_keys(service, pd.factorize(frame["environment"])[0]))
    return frame


def _running_count(groups: np.ndarray) -> np.ndarray:
    """Per row, how many earlier rows share its group (a groupby's cumcount, in numpy)."""
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(groups) else []
    runs = np.diff(np.r_[starts, len(groups)]).astype(int)
    out = np.empty(len(groups), np.int64)
    first_of_run = np.repeat(np.asarray(starts, np.int64), runs)
    out[order] = np.arange(len(groups), dtype=np.int64) - first_of_run
    return out
