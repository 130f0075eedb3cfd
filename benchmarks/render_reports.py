"""Report throughput for the demo organisation (6 services, 3 teams, the tenant: 10 reports).

Loads the demo events into a temporary SQLite database, then times, best of --rounds:
- reference: `compute_all` alone (metrics for every scope, snapshots stored);
- build cold: `build_reports` with no stored narratives (compute, narrate, write HTML + index);
- build warm: `build_reports` again (narratives come from the cache);
- render only: `write_report` for the already computed reports (charts + template + file).
Prints reports/s for each and its time relative to the reference run in this process.

    python benchmarks/render_reports.py [--rounds 3] [--windows 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete

from insights import demo, pipeline
from insights.deliver.html import write_report
from insights.metrics.windows import default_window, previous
from insights.narrate.builtin import as_result as builtin_result
from insights.narrate.facts import build_facts
from insights.store.db import dispose_engine, engine_for, migrate, unit_of_work
from insights.store.models import Narrative


def best_of(rounds: int, action: Callable[[], int]) -> tuple[float, int]:
    """(best seconds, reports made in one run)."""
    best, made = float("inf"), 0
    for _ in range(rounds):
        started = time.perf_counter()
        made = action()
        best = min(best, time.perf_counter() - started)
    return best, made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--windows", type=int, default=1, help="weeks to report, newest first")
    args = parser.parse_args()
    stamp = datetime.now(UTC)
    config = demo.demo_tenant_config()
    windows = [default_window(stamp)]
    while len(windows) < args.windows:
        windows.append(previous(windows[-1]))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = engine_for(url)
        migrate(engine)
        events = demo.generate(stamp)
        with unit_of_work(engine) as session:
            repo = pipeline.apply_org_config(session, config)
            pipeline.store_events(repo, events, create_services=True, tenant_config=config)
        print(f"demo organisation: {len(events)} events, {len(windows)} window(s)")

        def compute() -> int:
            with unit_of_work(engine) as session:
                return sum(len(pipeline.compute_all(session, config.name, w)) for w in windows)

        def build(cold: bool) -> Callable[[], int]:
            def run() -> int:
                with unit_of_work(engine) as session:
                    if cold:
                        session.execute(delete(Narrative))
                    return sum(
                        len(
                            pipeline.build_reports(
                                session, config, w, Path(tmp) / "out", generated_at=stamp
                            ).paths
                        )
                        for w in windows
                    )

            return run

        with unit_of_work(engine) as session:
            reports = [r for w in windows for r in pipeline.compute_all(session, config.name, w)]
        narrated = [(r, builtin_result(build_facts(r))) for r in reports]

        def render() -> int:
            for report, result in narrated:
                write_report(Path(tmp) / "render", report, result, [], stamp)
            return len(narrated)

        ref_seconds, ref_count = best_of(args.rounds, compute)
        rows = [
            ("reference: compute only", ref_seconds, ref_count),
            ("build cold (narrate)", *best_of(args.rounds, build(cold=True))),
            ("build warm (cached)", *best_of(args.rounds, build(cold=False))),
            ("render only", *best_of(args.rounds, render)),
        ]
        dispose_engine(url)
    print(f"{'':26} {'seconds':>8} {'reports/s':>10} {'x reference':>12}")
    for name, seconds, count in rows:
        print(f"{name:26} {seconds:8.3f} {count / seconds:10.1f} {seconds / ref_seconds:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
