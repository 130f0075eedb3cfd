"""Digests of everything a local-git ingest stores, to show two versions of the code store the
same rows.

Ingests REPO into a fresh database (SQLite in a temp file, or a temp PostgreSQL database with
--postgres), then resyncs it (nothing new), and prints one SHA-256 per table over its rows in
natural-key order: commits (sha, times, author, message, parents), deployments, shipped-commit
links (deployment id, sha), raw payloads and cursors, plus the same for commits and links with
their surrogate ids (insertion order). Run it once per version, e.g. the current code and main
exported to a directory (`git archive main | tar -x -C /tmp/main`):

    python benchmarks/ingest_digest.py REPO [--tag-pattern 'v*'] [--postgres URL]
    PYTHONPATH=/tmp/main python benchmarks/ingest_digest.py REPO …

and compare the printed lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pg_database import postgres_database
from sqlalchemy import text

QUERIES = {
    "commits": "SELECT s.name, c.sha, c.authored_at, c.committed_at, c.author, c.message, "
    "c.parents FROM commits c JOIN services s ON s.id = c.service_id ORDER BY s.name, c.sha",
    "commit ids": "SELECT c.id, c.sha FROM commits c ORDER BY c.id",
    "deployments": "SELECT s.name, d.external_id, d.environment, d.sha, d.status, d.started_at, "
    "d.finished_at, d.commits_listed FROM deployments d JOIN services s ON s.id = d.service_id "
    "ORDER BY s.name, d.external_id",
    "links": "SELECT d.external_id, l.sha FROM deployment_commits l "
    "JOIN deployments d ON d.id = l.deployment_id ORDER BY d.external_id, l.sha",
    "link ids": "SELECT l.deployment_id, l.sha FROM deployment_commits l "
    "ORDER BY l.deployment_id, l.sha",
    "raw payloads": "SELECT source, kind, external_id, payload FROM raw_payloads "
    "ORDER BY source, kind, external_id",
    "cursors": "SELECT source, kind, value FROM sync_cursors ORDER BY source, kind",
}


def _canonical(value: Any) -> Any:
    """One text form per value, whatever the backend returns (JSON text or parsed JSON, an
    aware time or SQLite's naive UTC text)."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if hasattr(value, "isoformat"):
        if getattr(value, "tzinfo", None) is not None:
            value = value.replace(tzinfo=None) - value.utcoffset()
        return value.isoformat(" ")
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == " ":
        return value  # SQLite's stored time text: the same form as above
    return value


def digest(rows: Iterable[tuple[Any, ...]]) -> tuple[int, str]:
    sha = hashlib.sha256()
    count = 0
    for row in rows:
        sha.update(json.dumps([_canonical(v) for v in row], default=str).encode())
        sha.update(b"\n")
        count += 1
    return count, sha.hexdigest()[:16]


def ingest_and_digest(url: str, repo: Path, pattern: str | None) -> dict[str, tuple[int, str]]:
    from insights.collect.localgit import sync_local_repo
    from insights.store.db import dispose_engine, engine_for, migrate

    engine = engine_for(url)
    migrate(engine)
    sync_local_repo(engine, repo, service="bench", tag_pattern=pattern)
    again = sync_local_repo(engine, repo, service="bench", tag_pattern=pattern)
    found = {"resync records": (again.records, "")}
    with engine.connect() as conn:
        for name, query in QUERIES.items():
            found[name] = digest(tuple(r) for r in conn.execute(text(query)))
    dispose_engine(url)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--tag-pattern", default="v*")
    parser.add_argument("--postgres", default=os.environ.get("INSIGHTS_TEST_POSTGRES_URL"))
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    import insights

    print(f"code {Path(insights.__file__).parent}  repository {args.repo}")
    results = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'digest.db'}"
            results["sqlite"] = ingest_and_digest(url, args.repo, args.tag_pattern)
    if args.backend in ("postgresql", "both"):
        if not args.postgres:
            print("postgresql skipped (set INSIGHTS_TEST_POSTGRES_URL or --postgres)")
        else:
            with postgres_database(args.postgres, "insights_digest") as url:
                results["postgresql"] = ingest_and_digest(url, args.repo, args.tag_pattern)
    for backend, found in results.items():
        for table, (count, value) in found.items():
            print(f"{backend:<10} {table:<14} {count:>8,} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
