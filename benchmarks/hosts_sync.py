"""GitHub/GitLab sync cost: full sync of N deployments vs an unchanged resync vs one new deployment.

Runs each collector against the local fake servers of the test suite (real HTTP, real wire
format) into a fresh SQLite file, and prints requests, rate-limited requests (GitHub counts a
304 as free) and seconds, with each resync's ratio to the full sync measured in the same process.

    python benchmarks/hosts_sync.py [--deployments 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from pytest_httpserver import HTTPServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hosts_support import FakeGitHub, FakeGitLab

from insights.collect.sync import run_sync
from insights.config import OrgConfig, ServiceConfig, SourceConfig, TenantConfig
from insights.store.db import dispose_engine, engine_for, migrate


def _org(kind: str, fake: FakeGitHub | FakeGitLab, base_url: str) -> OrgConfig:
    source = SourceConfig(
        kind=kind,
        repo=fake.repo if isinstance(fake, FakeGitHub) else fake.project,
        base_url=base_url,
        token_env=f"BENCH_{kind.upper()}_TOKEN",
        environments=["production"],
    )
    return OrgConfig(
        tenants=[TenantConfig(name="bench", services=[ServiceConfig(name=kind, source=source)])]
    )


def _run(engine, config: OrgConfig, fake: FakeGitHub | FakeGitLab) -> tuple[int, int, float]:
    fake.reset_log()
    started = time.perf_counter()
    [report] = run_sync(engine, config, tenant="bench")
    seconds = time.perf_counter() - started
    assert report.stopped_early is None, report.stopped_early
    charged = sum(1 for seen in fake.seen if seen.status != 304)
    return report.requests, charged, seconds


def bench(kind: str, deployments: int) -> None:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        if kind == "github":
            fake: FakeGitHub | FakeGitLab = FakeGitHub(server)
            base_url = fake.url
        else:
            fake = FakeGitLab(server)
            base_url = server.url_for("/").rstrip("/")
        os.environ[f"BENCH_{kind.upper()}_TOKEN"] = fake.token
        shas = fake.add_commits(2 * deployments + 3)
        for i in range(deployments):
            fake.add_deployment(shas[2 * i + 1], minutes=10 + 5 * i)
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            engine = engine_for(url)
            migrate(engine)
            config = _org(kind, fake, base_url)
            full = _run(engine, config, fake)
            unchanged = _run(engine, config, fake)
            fake.add_deployment(shas[-1], minutes=10 + 5 * deployments)
            one_new = _run(engine, config, fake)
            dispose_engine(url)
        print(f"{kind}: {deployments} deployments")
        print(f"  {'run':<18}{'requests':>9}{'charged':>9}{'seconds':>9}{'vs full':>9}")
        for name, (requests, charged, seconds) in (
            ("full sync", full),
            ("unchanged resync", unchanged),
            ("one new deploy", one_new),
        ):
            ratio = seconds / full[2]
            print(f"  {name:<18}{requests:>9}{charged:>9}{seconds:>9.3f}{ratio:>9.3f}")
    finally:
        server.clear()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=500)
    args = parser.parse_args()
    for kind in ("github", "gitlab"):
        bench(kind, args.deployments)


if __name__ == "__main__":
    main()
