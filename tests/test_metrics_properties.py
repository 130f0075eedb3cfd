"""Invariants of the metrics engine over generated delivery histories (hypothesis)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metrics_support import frames

from insights.metrics.compute import compute
from insights.metrics.windows import parse_window

WINDOW = parse_window("2026-W02", datetime(2026, 3, 1, tzinfo=UTC))
BASE = datetime(2025, 12, 29, tzinfo=UTC)  # the week before the window
SHAS = [f"{i:04x}" for i in range(1, 9)]
SERVICES = ["checkout", "search"]
MINUTES = st.integers(min_value=0, max_value=3 * 7 * 24 * 60)


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@st.composite
def histories(draw: st.DrawFn) -> list[dict]:
    """Commits (a linear history per service), deployments, incidents; ids are unique."""
    events: list[dict] = []
    for service in SERVICES:
        for i, sha in enumerate(SHAS):
            events.append(
                {
                    "type": "commit",
                    "service": service,
                    "sha": sha,
                    "committed_at": at(i * 60),
                    "parents": [SHAS[i - 1]] if i else [],
                }
            )
    for n in range(draw(st.integers(min_value=0, max_value=14))):
        event = {
            "type": "deployment",
            "service": draw(st.sampled_from(SERVICES)),
            "id": f"d{n}",
            "sha": draw(st.sampled_from(SHAS)),
            "environment": draw(st.sampled_from(["production", "production", "staging"])),
            "status": draw(st.sampled_from(["success", "success", "success", "failure"])),
            "finished_at": at(draw(MINUTES)),
        }
        if draw(st.booleans()):
            event["commits"] = draw(st.lists(st.sampled_from(SHAS), max_size=3, unique=True))
        events.append(event)
    for n in range(draw(st.integers(min_value=0, max_value=5))):
        opened = draw(MINUTES)
        event = {
            "type": "incident",
            "service": draw(st.sampled_from(SERVICES)),
            "id": f"INC-{n}",
            "opened_at": at(opened),
        }
        if draw(st.booleans()):
            event["resolved_at"] = at(opened + draw(st.integers(min_value=0, max_value=600)))
        if draw(st.booleans()):
            event["deployment_id"] = f"d{draw(st.integers(min_value=0, max_value=14))}"
        events.append(event)
    return events


PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(histories())
def test_change_failure_and_rework_rates_stay_between_0_and_1(events):
    m = compute(frames(events), WINDOW)
    assert 0 <= m.failed_deployments <= m.deployment_count
    assert 0 <= m.rework_deployments <= m.deployment_count
    if m.deployment_count == 0:
        assert m.change_failure_rate is None and m.rework_rate is None
    else:
        assert 0.0 <= m.change_failure_rate <= 1.0
        assert 0.0 <= m.rework_rate <= 1.0
    for value in (m.lead_time_hours.median, m.recovery_time_hours.median):
        assert value is None or value >= 0


@PROPERTY
@given(histories(), st.sampled_from(SHAS), MINUTES, st.sampled_from(["staging", "qa", "dev"]))
def test_adding_a_non_production_deployment_changes_nothing(events, sha, minute, env):
    extra = {
        "type": "deployment",
        "service": "checkout",
        "id": "np-1",
        "sha": sha,
        "environment": env,
        "finished_at": at(minute),
    }
    assert compute(frames([*events, extra]), WINDOW) == compute(frames(events), WINDOW)


@PROPERTY
@given(histories(), st.randoms(use_true_random=False))
def test_shuffling_the_input_order_changes_nothing(events, rnd: random.Random):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert compute(frames(shuffled), WINDOW) == compute(frames(events), WINDOW)


@PROPERTY
@given(histories())
def test_percentiles_are_ordered(events):
    lead = compute(frames(events), WINDOW).lead_time_hours
    if lead.samples:
        assert lead.median <= lead.p75 <= lead.p90
