"""Local-git ingest speed: a full `insights` sync of REPO against raw `git log` in one run.

For SQLite (a temp file) and PostgreSQL (a temp database, when INSIGHTS_TEST_POSTGRES_URL or
--postgres is set) it prints the full ingest time, the raw `git log --format=…` time of the
refs the collector reads (branches, remote-tracking branches and tags: the same commits; a
mirror's `refs/pull/*` is not history, see insights/collect/localgit.py), measured just
before and just after it (the reference is their mean), their ratio, rows/s,
CPU seconds, peak RSS of the ingesting process and of its git children, and the time of an
immediate resync (nothing new to read). Each ingest runs in a fresh child process so that its
peak RSS is its own.

    python benchmarks/localgit_ingest.py REPO [--tag-pattern 'v*'] [--postgres URL]
        [--backend sqlite|postgresql|both] [--rounds N] [--against DIR]

With `--against DIR` (another version of the project, e.g. main exported with `git archive main
| tar -x -C DIR`) every round ingests with both versions, alternating which goes first, and
a summary lists each version's ratios: on a shared machine only runs of the same minutes
compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pg_database import postgres_database

LOG_FORMAT = "%H%x00%P%x00%an%x00%at%x00%ct%x00%s"
HISTORY = ("--branches", "--remotes", "--tags")  # = localgit.HISTORY_REFS


def raw_git_log(repo: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and lines of `git log --branches --remotes --tags --format=…`
    (the commits the collector stores), read through a pipe."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "log", *HISTORY, f"--format={LOG_FORMAT}"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines = 0
    while chunk := proc.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
    proc.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, lines


def child(url: str, repo: Path, pattern: str) -> None:
    """Ingest `repo` into `url`, then resync; print the measurements as JSON."""
    from insights.collect.localgit import sync_local_repo
    from insights.store.db import engine_for, migrate, unit_of_work
    from insights.store.repository import TenantRepository

    engine = engine_for(url)
    migrate(engine)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    report = sync_local_repo(engine, repo, service="bench", tag_pattern=pattern)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    resync_started = time.perf_counter()
    again = sync_local_repo(engine, repo, service="bench", tag_pattern=pattern)
    resync = time.perf_counter() - resync_started
    with unit_of_work(engine) as session:
        counts = TenantRepository.open(session, "default").counts()
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu_self": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
                "cpu_git": children.ru_utime + children.ru_stime,
                "rss_mib": after.ru_maxrss / 1024,
                "git_rss_mib": children.ru_maxrss / 1024,
                "counts": counts,
                "records_read": report.records,
                "resync_wall": resync,
                "resync_records": again.records,
            }
        )
    )


def measure(label: str, url: str, repo: Path, pattern: str, code: Path | None) -> float:
    """One ingest of `repo` into the fresh database `url` by the code in `code` (a checkout or
    export of this project, put first on PYTHONPATH; None: this one), printed; its ratio."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    ref_before = raw_git_log(repo)
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, str(repo), "--tag-pattern", pattern],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    ref_after = raw_git_log(repo)
    if done.returncode != 0:
        print(f"{label}: ingest failed:\n{done.stderr}", file=sys.stderr)
        raise SystemExit(1)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    reference = (ref_before[0] + ref_after[0]) / 2
    reference_cpu = (ref_before[1] + ref_after[1]) / 2
    counts = got["counts"]
    rows = counts["commits"] + counts["deployments"] + counts["deployment_commits"]
    print(
        f"{label:<10} commits {counts['commits']:,}  deployments {counts['deployments']:,}  "
        f"shipped links {counts['deployment_commits']:,}  (raw git log lines {ref_before[2]:,})"
    )
    print(
        f"{'':<10} ingest {got['wall']:6.2f} s   raw git log {reference:5.2f} s "
        f"({ref_before[0]:.2f} before, {ref_after[0]:.2f} after)   "
        f"ratio {got['wall'] / reference:4.2f}x"
    )
    cpu = got["cpu_self"] + got["cpu_git"]
    print(
        f"{'':<10} cpu {cpu:6.2f} s (python {got['cpu_self']:.2f}, git {got['cpu_git']:.2f})   "
        f"raw git log cpu {reference_cpu:5.2f} s   cpu ratio {cpu / reference_cpu:4.2f}x"
    )
    print(
        f"{'':<10} {rows / got['wall']:,.0f} rows/s ({counts['commits'] / got['wall']:,.0f} "
        f"commits/s)   peak RSS python {got['rss_mib']:.0f} MiB, git {got['git_rss_mib']:.0f} MiB"
    )
    print(
        f"{'':<10} resync with nothing new: {got['resync_wall']:.2f} s, "
        f"{got['resync_records']} records read   (load average now {os.getloadavg()[0]:.1f})"
    )
    return got["wall"] / reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--tag-pattern", default="v*")
    parser.add_argument("--postgres", default=os.environ.get("INSIGHTS_TEST_POSTGRES_URL"))
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=1, help="ingests per backend and code")
    parser.add_argument(
        "--against",
        type=Path,
        help="another version of this project (e.g. `git archive main | tar -x -C DIR`): "
        "each round ingests with it too, alternating, so both run in the same minutes",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repo, args.tag_pattern)
        return 0
    if not args.repo.is_dir():
        print(f"error: {args.repo}: no such directory", file=sys.stderr)
        return 2
    codes: list[tuple[str, Path | None]] = [("this", None)]
    if args.against is not None:
        codes.append(("against", args.against.resolve()))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not args.postgres:
        print("postgresql skipped (set INSIGHTS_TEST_POSTGRES_URL or --postgres)")
        backends.remove("postgresql")
    print(f"repository {args.repo}  (load average {os.getloadavg()[0]:.1f})")
    ratios: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for backend in backends:
            for name, code in codes if round_ % 2 == 0 else codes[::-1]:
                label = backend if len(codes) == 1 else f"{backend} {name}"
                if backend == "sqlite":
                    with tempfile.TemporaryDirectory() as tmp:
                        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                        ratio = measure(label, url, args.repo, args.tag_pattern, code)
                else:
                    with postgres_database(args.postgres) as url:
                        ratio = measure(label, url, args.repo, args.tag_pattern, code)
                ratios.setdefault((backend, name), []).append(ratio)
    if args.rounds > 1 or len(codes) > 1:
        for (backend, name), found in ratios.items():
            listed = ", ".join(f"{r:.2f}x" for r in found)
            median = statistics.median(found)
            print(f"{backend:<10} {name:<8} ratios {listed}  (median {median:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
