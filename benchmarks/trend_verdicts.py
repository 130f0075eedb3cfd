"""Trend verdicts: false alarms on stationary series, power on real shifts, and their cost.

1. False alarms. For each seed, 13 weeks drawn from one process (the same every week): Poisson
   deployments per week, each failing / being rework with a fixed probability, lognormal lead
   times per shipped commit (1 + Poisson(3) commits a deployment) and recovery times per
   failure. The last week is compared with the week before and with the 12 before it pooled,
   exactly as reports do (`metrics/verdicts.py`). Printed: the share of comparisons called
   "improved" or "worsened" per figure, which must be ≤ the stated level (0.05), among all
   comparisons and among those that were tested (not "too little data"); a row is flagged
   when the tested share is above the level beyond sampling noise (its 95 % interval lies
   wholly above it). A second lead-time
   row ships commits in batches that share the deployment's wait (commits of one deployment
   are not independent), to show what clustering does to the rank test.
2. Power. The same, with the last week shifted by a known amount (deployment rate halved,
   change failure and rework rate 10 % → 30 %, lead and recovery time medians doubled): the
   share of weeks called in the right direction, per sample size (deployments per week).
3. Cost. The benchmarks/compute_metrics.py synthetic tenant (smaller): the time to compute the
   verdicts of every scope (each service and the tenant; 13 windows each) against the time to
   compute their 12 windows of metrics, measured in the same run.

    python benchmarks/trend_verdicts.py [--seeds 2000] [--deployments 50000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from insights.metrics.uncertainty import wilson
from insights.metrics.verdicts import (
    LEVEL,
    WindowSample,
    compare,
    duration_test,
    per_deployment_medians,
    pool,
)

FIGURES = (
    "deployment_frequency",
    "deployment_days_share",
    "lead_time",
    "change_failure_rate",
    "recovery_time",
    "rework_rate",
)
LOWER_IS_BETTER = {"lead_time", "change_failure_rate", "recovery_time", "rework_rate"}


def draw_week(
    rng: np.random.Generator,
    rate: float,
    cfr: float = 0.1,
    rework: float = 0.1,
    lead_median: float = 20.0,
    recovery_median: float = 3.0,
    clustered: bool = False,
    per_commit: list[np.ndarray] | None = None,
) -> WindowSample:
    """One week of a team whose process has these parameters (`per_commit`: where to keep
    the raw lead time of every commit, for the per-commit test this design rejected)."""
    n = int(rng.poisson(rate))
    commits = 1 + rng.poisson(3, n)
    if clustered:
        # Each deployment's commits share its wait (half the lead time on average).
        wait = rng.lognormal(np.log(lead_median / 2), 0.8, n)
        age = rng.lognormal(np.log(lead_median / 2), 0.8, int(commits.sum()))
        lead = np.repeat(wait, commits) + age
    else:
        lead = rng.lognormal(np.log(lead_median), 1.0, int(commits.sum()))
    if per_commit is not None:
        per_commit.append(lead)
    failed = int((rng.random(n) < cfr).sum())
    day = rng.integers(0, 7, n)
    deployment = np.repeat(np.arange(n), commits)
    return WindowSample(
        deployments=n,
        failed=failed,
        rework=int((rng.random(n) < rework).sum()),
        active_days=int(np.unique(day).size),
        days=7,
        exposure_days=7.0,
        lead_hours=per_deployment_medians(deployment, lead),
        recovery_hours=rng.lognormal(np.log(recovery_median), 1.0, failed),
    )


def run(
    seeds: int,
    rate: float,
    current: Callable[[np.random.Generator], WindowSample],
    clustered: bool = False,
) -> dict[str, dict[str, dict[str, int]]]:
    """Verdict counts per figure and comparison over `seeds` series of 12 stationary weeks
    followed by one week drawn by `current`."""
    counts: dict[str, dict[str, dict[str, int]]] = {
        f: {side: {} for side in ("previous", "baseline")} for f in FIGURES
    }
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        weeks = [draw_week(rng, rate, clustered=clustered) for _ in range(12)]
        now = current(rng)
        for side, other in (("previous", weeks[-1]), ("baseline", pool(weeks))):
            for figure, comparison in compare(now, other).items():
                tally = counts[figure][side]
                tally[comparison.verdict] = tally.get(comparison.verdict, 0) + 1
    return counts


def _alarm_share(tally: dict[str, int]) -> tuple[float, float, bool]:
    """(alarms among all comparisons, among tested ones, whether the tested share is above
    the level beyond sampling noise: the lower end of its 95 % Wilson interval exceeds it)."""
    alarms = tally.get("improved", 0) + tally.get("worsened", 0)
    total = sum(tally.values())
    tested = total - tally.get("too little data", 0)
    low = wilson(alarms, tested).low if tested else None
    above = low is not None and low > LEVEL
    return alarms / total, (alarms / tested if tested else 0.0), above


def false_alarms(seeds: int) -> bool:
    print(f"1. False alarms: stationary series, {seeds} seeds each, level {LEVEL}")
    print(
        f"{'process':<26} {'figure':<22} {'vs previous':>12} {'(tested)':>9} "
        f"{'vs baseline':>12} {'(tested)':>9}"
    )
    ok = True
    for rate in (5.0, 20.0, 60.0):
        for clustered in (False, True):
            same = lambda rng, r=rate, c=clustered: draw_week(rng, r, clustered=c)  # noqa: E731
            counts = run(seeds, rate, same, clustered)
            process = f"{rate:g} deploys/week" + (", batched" if clustered else "")
            for figure in FIGURES if not clustered else ("lead_time",):
                prev_all, prev_tested, prev_above = _alarm_share(counts[figure]["previous"])
                base_all, base_tested, base_above = _alarm_share(counts[figure]["baseline"])
                flag = "  ABOVE THE LEVEL" if prev_above or base_above else ""
                ok &= not flag
                print(
                    f"{process:<26} {figure:<22} {prev_all:>12.3f} {prev_tested:>9.3f} "
                    f"{base_all:>12.3f} {base_tested:>9.3f}{flag}"
                )
    return ok


def per_commit_false_alarms(seeds: int) -> None:
    """The rejected design: the rank test on every commit's lead time, batched commits."""
    print("\n   rejected design, rank test on each commit (not per deployment), batched commits:")
    for rate in (5.0, 20.0, 60.0):
        alarms = tested = 0
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            raw: list[np.ndarray] = []
            for _ in range(13):
                draw_week(rng, rate, clustered=True, per_commit=raw)
            for other in (raw[-2], np.concatenate(raw[:-1])):
                c = duration_test(raw[-1], other)
                tested += c.verdict != "too little data"
                alarms += c.verdict in ("improved", "worsened")
        print(f"   {rate:g} deploys/week: share called improved/worsened {alarms / tested:.3f}")


SHIFTS: dict[str, tuple[str, dict[str, float]]] = {
    "deployment_frequency": ("rate halved", {"rate": 0.5}),
    "change_failure_rate": ("10% -> 30%", {"cfr": 0.3}),
    "rework_rate": ("10% -> 30%", {"rework": 0.3}),
    "lead_time": ("median doubled", {"lead_median": 40.0}),
    "recovery_time": ("median doubled", {"recovery_median": 6.0}),
}


def power(seeds: int) -> None:
    print(f"\n2. Power: the last week shifted, {seeds} seeds each; share called in the")
    print("   right direction (worsened), vs previous week / vs 12-week baseline")
    rates = (5.0, 10.0, 20.0, 40.0, 80.0)
    header = "".join(f"{f'{r:g}/week':>16}" for r in rates)
    print(f"{'figure':<22} {'shift':<16}{header}")
    for figure, (label, shift) in SHIFTS.items():
        cells = []
        for rate in rates:
            params = dict(shift)
            now_rate = rate * params.pop("rate", 1.0)
            counts = run(seeds, rate, lambda rng, r=now_rate, p=params: draw_week(rng, r, **p))
            prev = counts[figure]["previous"].get("worsened", 0) / seeds
            base = counts[figure]["baseline"].get("worsened", 0) / seeds
            cells.append(f"{prev:.2f} / {base:.2f}")
        print(f"{figure:<22} {label:<16}" + "".join(f"{c:>16}" for c in cells))


def cost(deployments: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from compute_metrics import synthetic

    from insights.metrics.compute import prepare, trend_verdicts, window_metrics
    from insights.metrics.windows import history, week

    frames = synthetic(deployments, 5)
    started = time.perf_counter()
    prepared = prepare(frames)
    prepare_s = time.perf_counter() - started
    last = frames.deployments["finished_at"].max()
    year, number, _ = (last - np.timedelta64(7, "D")).isocalendar()
    windows = history(week(year, number), 13)
    scopes: list[list[str] | None] = [None] + [
        [str(s)] for s in frames.services["service"].tolist()
    ]
    metrics_s = verdicts_s = float("inf")
    for _ in range(3):  # alternate and keep the best of each: the machine is shared
        started = time.perf_counter()
        for services in scopes:
            for w in windows[1:]:
                window_metrics(prepared, w, services)
        metrics_s = min(metrics_s, time.perf_counter() - started)
        started = time.perf_counter()
        for services in scopes:
            trend_verdicts(prepared, windows, services)
        verdicts_s = min(verdicts_s, time.perf_counter() - started)
    print(
        f"\n3. Cost: {len(frames.deployments):,} deployments, {len(scopes)} scopes "
        f"(tenant + services), 12 windows each, best of 3 alternating runs"
    )
    print(f"   prepare (whole history, once):   {prepare_s:6.2f} s")
    print(f"   window metrics (with intervals): {metrics_s:6.2f} s")
    print(f"   verdicts (13 windows, baseline): {verdicts_s:6.2f} s")
    print(f"   ratio verdicts / metrics:        {verdicts_s / metrics_s:6.2f}")
    total = prepare_s + metrics_s
    print(f"   ratio verdicts / (prepare + metrics): {verdicts_s / total:6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--deployments", type=int, default=50_000)
    args = parser.parse_args()
    ok = false_alarms(args.seeds)
    per_commit_false_alarms(max(args.seeds // 4, 100))
    power(max(args.seeds // 4, 100))
    cost(args.deployments)
    print(f"\nfalse alarms within the level (up to sampling noise) for every figure: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
