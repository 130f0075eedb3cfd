"""Commit shas as integer codes: the engine joins millions of links, so it joins on integers.

`intern_shas` gives every distinct sha of several columns one code (missing → -1). Categorical
columns that share their categories (the cheap way to hold millions of shas in pandas) are
used as they are; anything else is factorised once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

MISSING = -1


def intern_shas(parts: Sequence[pd.Series]) -> tuple[list[np.ndarray], pd.Index]:
    """Integer codes for each series (same sha → same code across them) and the sha per code."""
    if parts and all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
        categories = parts[0].cat.categories
        if all(
            p.cat.categories is categories or p.cat.categories.equals(categories) for p in parts[1:]
        ):
            return [p.cat.codes.to_numpy().astype(np.int64) for p in parts], categories
    plain = [
        p.astype(object) if isinstance(p.dtype, pd.CategoricalDtype) or p.empty else p
        for p in parts
    ]
    joined = pd.concat(plain, ignore_index=True) if plain else pd.Series([], dtype=object)
    codes, uniques = pd.factorize(joined)
    codes = codes.astype(np.int64)
    bounds = np.cumsum([0, *(len(p) for p in parts)])
    return [codes[a:b] for a, b in itertools.pairwise(bounds)], pd.Index(uniques)


def codes_of(shas: pd.Series, index: pd.Index) -> np.ndarray:
    """Codes of `shas` in `index` (from `intern_shas`); unknown or missing → -1."""
    if shas.empty or index.empty:
        return np.full(len(shas), MISSING, np.int64)
    return index.get_indexer(shas.astype(object)).astype(np.int64)


SHA_BITS = 40  # room for 10^12 distinct shas in a (service, sha) key


def pair_keys(service_codes: np.ndarray, sha_codes: np.ndarray) -> np.ndarray:
    """One int64 per (service code, sha code)."""
    return (service_codes.astype(np.int64) << SHA_BITS) | sha_codes.astype(np.int64)


class ShaTable:
    """Finds rows by (service, sha). Direct addressing by sha code when every sha of the table
    belongs to one row (the usual case: one repository per service); a hash index otherwise."""

    def __init__(self, service_codes: np.ndarray, sha_codes: np.ndarray, sha_count: int) -> None:
        self.services = service_codes.astype(np.int64)
        self.shas = sha_codes.astype(np.int64)
        counts = np.bincount(self.shas, minlength=sha_count) if len(self.shas) else None
        self.dense = counts is None or counts.max() <= 1
        if self.dense:
            self.row_of = np.full(sha_count, MISSING, np.int64)
            self.row_of[self.shas] = np.arange(len(self.shas))
        else:
            self.index = pd.Index(pair_keys(self.services, self.shas))

    def find(self, service_codes: np.ndarray, sha_codes: np.ndarray) -> np.ndarray:
        """Row of each (service, sha) in the table, or -1."""
        sha_codes = sha_codes.astype(np.int64)
        if not self.dense:
            return self.index.get_indexer(pair_keys(service_codes, sha_codes)).astype(np.int64)
        if len(self.row_of) == 0:
            return np.full(len(sha_codes), MISSING, np.int64)
        known = (sha_codes >= 0) & (sha_codes < len(self.row_of))
        rows = np.where(known, self.row_of[np.where(known, sha_codes, 0)], MISSING)
        found = rows >= 0
        same = np.zeros(len(rows), bool)
        same[found] = self.services[rows[found]] == service_codes[found]
        return np.where(same, rows, MISSING)


def first_rows(
    rows: np.ndarray, service_codes: np.ndarray, sha_codes: np.ndarray, sha_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct (service, sha), the smallest row it appears on: (rows, sha codes)."""
    if len(rows) == 0:
        return rows.astype(np.int64), sha_codes.astype(np.int64)
    service_of = np.full(sha_count, MISSING, np.int64)
    service_of[sha_codes] = service_codes
    if (service_of[sha_codes] == service_codes).all():  # each sha within one service
        best = np.full(sha_count, np.iinfo(np.int64).max)
        np.minimum.at(best, sha_codes, rows)
        shas = np.flatnonzero(best != np.iinfo(np.int64).max)
        return best[shas], shas
    order = np.lexsort((rows, pair_keys(service_codes, sha_codes)))
    keys = pair_keys(service_codes, sha_codes)[order]
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    return rows[order][first], sha_codes[order][first]
