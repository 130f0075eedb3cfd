"""Cost of the input boundary: NDJSON lines through `parse_lines` (bounded JSON parser + event
model) against the same lines through the stdlib `json.loads` + the event model, measured in
the same run. Prints both rates and their ratio (above 1: the bounded path is faster).

    python benchmarks/parse_events.py [--events 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_events import synthetic_lines

from insights.collect.events import parse_lines
from insights.model import EventError, parse_event


def stdlib_reference(lines: list[bytes]) -> int:
    """The pre-boundary path: stdlib json (unbounded depth, numbers, surrogates) + the model."""
    events = []  # kept, as parse_lines keeps them (the garbage collector sees both alike)
    for raw in lines:
        with contextlib.suppress(EventError, ValueError):
            events.append(parse_event(json.loads(raw)))
    return len(events)


def interleaved_best(repeat: int, *runs) -> list[float]:
    """Best time of each run, alternating them so load on a shared machine hits both alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for index, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lines = [line.encode() for line in synthetic_lines(args.events)]
    parsed = parse_lines(lines)
    assert not parsed.errors and len(parsed.events) == stdlib_reference(lines)
    bounded, reference = interleaved_best(
        args.repeat, lambda: parse_lines(lines), lambda: stdlib_reference(lines)
    )
    print(f"lines: {len(lines)}")
    print(f"bounded parser + model: {len(lines) / bounded:,.0f} lines/s")
    print(f"stdlib json + model (reference): {len(lines) / reference:,.0f} lines/s")
    print(f"ratio bounded/reference speed: {reference / bounded:.2f}")


if __name__ == "__main__":
    main()
