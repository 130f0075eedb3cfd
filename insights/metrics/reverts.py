"""Reverts found in the history: the deployment that shipped a reverted change failed.

Rules (DESIGN.md, "Reverts are failures too"; docs/metrics.md has the full rule):
- A revert commit is a commit whose message carries git's `This reverts commit <sha>.` (also
  `…<sha>, reversing changes made to …` for `git revert -m 1` of a merge). Its target is
  `<sha>` (a full 40- or 64-hex id, as git writes it).
- A reverting change is a pull/merge request that names the change it reverts (`reverts`:
  GitHub's `revert-<n>-…` head branch, GitLab's "This reverts merge request !n"), or, failing
  that, whose title is `Revert "<title>"`: its target is the latest change of the service with
  that title merged before it. A change's commits are its merge sha and its listed commits.
- The failed deployment is the first production deployment that shipped the target (for a
  change, the earliest of its commits). The revert reaches production with the first production
  deployment that ships the revert commit (for a change, the last of its commits to ship).
- Only a revert that ships in a LATER deployment than its target marks a failure: a change
  reverted before production, or reverted within the same deployment, never broke production.
- A revert of a revert (a re-apply) marks nothing: the reverted revert was the fix, not a fault.
- Recovery ends when the revert reaches production; the deployment that ships it is rework.
- A deployment counts as failed once, whatever signals it has (incident, rollback, revert).

Example: v1 ships c1, v2 ships `Revert "c1"` (This reverts commit c1.) → v1 failed, recovered at
v2's finish, v2 is rework.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insights.metrics.keys import MISSING, ShaTable, codes_of, first_rows
from insights.metrics.nanos import LAST, NAT, epoch_ns
from insights.metrics.revert_markers import reverted_title


def looks_like_revert(titles: np.ndarray) -> np.ndarray:
    """Mask of titles starting with `Revert "` (cheap pre-filter before the regex)."""
    return pd.Series(titles, dtype=object).astype(str).str.startswith('Revert "').to_numpy()


def _change_targets(changes: pd.DataFrame) -> list[tuple[int, int]]:
    """(reverting change position, reverted change position) pairs in `changes`."""
    if changes.empty:
        return []
    service = changes["service"].astype(str).to_numpy()
    ids = changes["external_id"].astype(str).to_numpy()
    titles = changes["title"].to_numpy(object)
    merged = changes["merged_at"]
    refs = changes["reverts"].to_numpy(object) if "reverts" in changes.columns else None
    # only changes that look like reverts are examined one by one (few, even in big histories)
    by_title_looks = looks_like_revert(titles)
    looks = by_title_looks | (changes["reverts"].notna().to_numpy() if refs is not None else False)
    if not looks.any():
        return []
    by_id = {(s, i): n for n, (s, i) in enumerate(zip(service, ids, strict=True))}
    by_title: dict[tuple[str, str], list[int]] = {}
    wanted = {t for t in (reverted_title(x) for x in titles[by_title_looks]) if t}
    for n, title in enumerate(titles):
        if title in wanted and not pd.isna(merged.iloc[n]):
            by_title.setdefault((service[n], title), []).append(n)
    pairs = []
    for n in np.flatnonzero(looks & merged.notna().to_numpy()).tolist():
        ref = refs[n] if refs is not None else None
        target = by_id.get((service[n], str(ref))) if isinstance(ref, str) and ref else None
        title = reverted_title(titles[n]) if isinstance(titles[n], str) else None
        if target is None and title is not None:
            earlier = [m for m in by_title.get((service[n], title), []) if m != n]
            earlier = [m for m in earlier if merged.iloc[m] <= merged.iloc[n]]
            target = max(earlier, key=lambda m: merged.iloc[m], default=None)
        if target is not None and target != n:
            pairs.append((n, target))
    return pairs


def revert_failures(
    prod: pd.DataFrame,
    ships: tuple[np.ndarray, np.ndarray],
    commits: pd.DataFrame,
    changes: pd.DataFrame,
    shas: pd.Index,
) -> pd.DataFrame:
    """Per production deployment (same index as `prod`): `reverted` (it shipped a change a
    later deployment reverted), `revert_restored_at` (when the first such revert reached
    production) and `ships_revert` (it shipped a revert that failed an earlier deployment).

    `ships` holds (rows in `prod`, sha codes) from `shipped.shipped_commits`; `commits` may
    carry a `reverts` column (the sha its message reverts), `changes` a `reverts` column (the
    id of the change it reverts); without them only titles are read.
    """
    n = len(prod)
    reverted = np.zeros(n, bool)
    ships_revert = np.zeros(n, bool)
    restored = np.full(n, LAST, np.int64)
    out_columns = {"reverted": reverted, "ships_revert": ships_revert}
    rows, sha_codes = ships
    marked = commits.iloc[:0]
    if "reverts" in commits.columns:
        marked = commits[commits["reverts"].notna()]
    change_pairs = _change_targets(changes)
    if n == 0 or len(rows) == 0 or (marked.empty and not change_pairs):
        return _frame(prod, out_columns, restored)  # the usual case costs next to nothing
    service_codes = prod["service"].cat.codes.to_numpy().astype(np.int64)
    first_row, first_sha = first_rows(rows, service_codes[rows], sha_codes, len(shas))
    table = ShaTable(service_codes[first_row], first_sha, len(shas))

    def shipped_at(services: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The prod row that first shipped each (service, sha), or -1."""
        found = table.find(services, codes)
        return np.where(found >= 0, first_row[np.maximum(found, 0)], MISSING)

    # (service code, reverting rows, reverted rows) from commits, then from changes
    pairs: list[tuple[int, int]] = []
    if not marked.empty:
        services = marked["service"].cat.codes.to_numpy().astype(np.int64)
        target = codes_of(marked["reverts"], shas)
        own = marked["sha"].to_numpy().astype(np.int64)
        # a revert of a revert re-applies the change: the reverted revert was no fault
        reapply = np.isin(target, own)
        fix = shipped_at(services, own)
        bad = shipped_at(services, target)
        keep = ~reapply & (target != MISSING)
        pairs += list(zip(fix[keep].tolist(), bad[keep].tolist(), strict=True))
    for fixing, target in change_pairs:
        fix_rows = _change_rows(changes, fixing, shipped_at, shas)
        bad_rows = _change_rows(changes, target, shipped_at, shas)
        if reverted_title(changes["title"].iloc[target]) is not None:
            continue  # the target is itself a revert: a re-apply
        if fix_rows.size and bad_rows.size and (fix_rows >= 0).all():
            known = bad_rows[bad_rows >= 0]
            if known.size:
                pairs.append((int(fix_rows.max()), int(known.min())))
    finished = epoch_ns(prod["finished_at"])
    for fix, bad in pairs:
        # rows are in deployment order within a service: a later row is a later deployment
        if fix < 0 or bad < 0 or fix <= bad or service_codes[fix] != service_codes[bad]:
            continue
        reverted[bad] = True
        ships_revert[fix] = True
        restored[bad] = min(restored[bad], finished[fix])
    return _frame(prod, out_columns, restored)


def _change_rows(
    changes: pd.DataFrame, position: int, shipped_at: object, shas: pd.Index
) -> np.ndarray:
    """Prod rows that first shipped each commit of one change (its merge sha and listed
    commits); -1 for a commit not (yet) in production."""
    row = changes.iloc[position]
    codes = [int(row["merge_sha"])] if row["merge_sha"] != MISSING else []
    listed = row["commits"] if isinstance(row["commits"], list | tuple) else []
    if listed:
        codes += codes_of(pd.Series(list(listed), dtype=object), shas).tolist()
    codes = [c for c in codes if c != MISSING]
    if not codes:
        return np.zeros(0, np.int64)
    service = np.full(len(codes), changes["service"].cat.codes.iloc[position], np.int64)
    return shipped_at(service, np.asarray(codes, np.int64))  # type: ignore[operator]


def _frame(
    prod: pd.DataFrame, columns: dict[str, np.ndarray], restored: np.ndarray
) -> pd.DataFrame:
    none = restored == LAST
    values = np.where(none, NAT, restored).view("datetime64[ns]")
    return pd.DataFrame(
        {
            **columns,
            "revert_restored_at": pd.Series(values, index=prod.index).dt.tz_localize("UTC"),
        },
        index=prod.index,
    )
