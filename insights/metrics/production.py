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

COLUMNS = [
    "deployment_id",
    "service",
    "external_id",
    "environment",
    "sha",
    "finished_at",
    "commits_listed",
]


def production_environments(deployments: pd.DataFrame, services: pd.DataFrame) -> pd.Series:
    """Boolean mask: does each deployment's environment match its service's production regex."""
    patterns = dict(zip(services["service"], services["production_pattern"], strict=True))
    pairs = deployments[["service", "environment"]].drop_duplicates()
    matches = {}
    for service, environment in pairs.itertuples(index=False):
        pattern = patterns.get(service)
        if pattern is None:
            matches[(service, environment)] = False
            continue
        try:
            matches[(service, environment)] = re.search(pattern, environment) is not None
        except re.error as exc:
            raise UserError(
                f"service {service!r}: production_pattern {pattern!r} is not a regex ({exc})"
            ) from None
    if not matches:
        return pd.Series(np.zeros(len(deployments), bool), index=deployments.index)
    keys = pd.MultiIndex.from_frame(deployments[["service", "environment"]])
    lookup = pd.Series(matches)
    return pd.Series(lookup.reindex(keys).to_numpy(dtype=bool), index=deployments.index)


def production_deployments(deployments: pd.DataFrame, services: pd.DataFrame) -> pd.DataFrame:
    """Successful production deployments, sorted by (service, finished_at, external_id).

    Adds `pos` (0-based order within the service, all production environments together) and
    `env_pos` (order within service + environment).
    """
    if deployments.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype=object) for c in COLUMNS}
            | {"finished_at": pd.Series(dtype="datetime64[ns, UTC]")}
            | {"pos": pd.Series(dtype=np.int64), "env_pos": pd.Series(dtype=np.int64)}
        )
    frame = deployments.drop_duplicates(["service", "external_id"], keep="last")
    keep = (
        (frame["status"] == "success").to_numpy()
        & frame["finished_at"].notna().to_numpy()
        & production_environments(frame, services).to_numpy()
    )
    frame = frame.loc[keep, COLUMNS]
    frame = frame.sort_values(["service", "finished_at", "external_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["pos"] = frame.groupby("service", sort=False).cumcount().astype(np.int64)
    frame["env_pos"] = (
        frame.groupby(["service", "environment"], sort=False).cumcount().astype(np.int64)
    )
    return frame
