"""How long the CLI takes to start: `insights --help`, `record deployment`, `metrics`.

Each command runs as a fresh process (what a CI step pays), `--repeat` times, against a SQLite
database prepared beforehand (migrated, one tenant, 200 deployments), next to the reference
measured in the same run: `python -c "import typer"`, the floor for any Typer CLI (and, for
context, `import sqlalchemy.orm`, the floor of any command that writes). Wall time
and CPU time (user + system of the child, from getrusage) are medians.

Targets: `--help` within 3x of the reference, `record` under 1 s.

    .venv/bin/python benchmarks/cli_startup.py --repeat 7
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
INSIGHTS = str(BIN / "insights")


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process; a non-zero exit is an error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def seed(env: dict[str, str], folder: Path) -> None:
    """Migrate the database and import 200 deployments of `checkout` in 2026-W05 and before."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    lines = []
    for i in range(200):
        at = start + timedelta(hours=4 * i)
        sha = f"{i + 1:08x}"
        lines.append(
            {"type": "commit", "service": "checkout", "sha": sha, "committed_at": at.isoformat()}
        )
        lines.append(
            {
                "type": "deployment",
                "service": "checkout",
                "id": f"d-{i}",
                "sha": sha,
                "finished_at": (at + timedelta(hours=2)).isoformat(),
                "commits": [sha],
            }
        )
    events = folder / "events.ndjson"
    events.write_text("\n".join(json.dumps(e) for e in lines) + "\n", encoding="utf-8")
    subprocess.run([INSIGHTS, "import", str(events)], env=env, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median)")
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "INSIGHTS_DATABASE_URL": f"sqlite:///{folder / 'insights.db'}",
            "INSIGHTS_TENANT": "default",
        }
        env.pop("INSIGHTS_CONFIG", None)
        for name in ("GITHUB_RUN_ID", "CI_PIPELINE_ID"):
            env.pop(name, None)
        seed(env, folder)
        commands = {
            'python -c "import typer"': [sys.executable, "-c", "import typer"],
            # the floor of any command that writes through the ORM, for context
            'python -c "import sqlalchemy.orm"': [sys.executable, "-c", "import sqlalchemy.orm"],
            "insights --help": [INSIGHTS, "--help"],
            "insights record deployment": [
                INSIGHTS,
                "record",
                "deployment",
                "-s",
                "checkout",
                "--sha",
                "{sha}",
            ],
            "insights metrics --format json": [
                INSIGHTS,
                "metrics",
                "--service",
                "checkout",
                "--window",
                "2026-W05",
                "--format",
                "json",
            ],
        }
        results: dict[str, tuple[float, float]] = {}
        # interleaved rounds, so a burst of load on the shared machine hits every command alike
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for round_ in range(repeat):
            for name, args in commands.items():
                argv = [a.format(sha=f"{0xABC000 + round_:08x}") for a in args]
                samples[name].append(run_once(argv, env))
        for name, runs in samples.items():
            results[name] = (
                statistics.median(w for w, _ in runs),
                statistics.median(c for _, c in runs),
            )
    base_wall, base_cpu = results['python -c "import typer"']
    print(f"CLI start-up, median of {repeat} runs each (fresh processes, SQLite)")
    print(f"{'command':34} {'wall s':>8} {'cpu s':>8} {'wall ×ref':>10} {'cpu ×ref':>9}")
    for name, (wall, cpu) in results.items():
        print(f"{name:34} {wall:8.3f} {cpu:8.3f} {wall / base_wall:10.2f} {cpu / base_cpu:9.2f}")
    help_ratio = results["insights --help"][0] / base_wall
    record_wall = results["insights record deployment"][0]
    print(
        f"targets: --help within 3x of the reference: {help_ratio:.2f}x "
        f"({'met' if help_ratio <= 3 else 'NOT met'}); record under 1 s: {record_wall:.2f} s "
        f"({'met' if record_wall < 1 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
