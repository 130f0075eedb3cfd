"""One test per DORA rule and edge case of DESIGN.md, on the pure metrics functions."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from metrics_support import change, commit, dep, frames, incident

from insights.metrics.compute import compute, prepare, window_metrics
from insights.metrics.windows import parse_window

NOW = datetime(2026, 3, 1, tzinfo=UTC)
W02 = parse_window("2026-W02", NOW)  # 2026-01-05 (Mon) .. 2026-01-12


def metrics(events, window=W02, **kw):
    return compute(frames(events, **kw), window)


def linear_history():
    """a ← b ← c ← d, each commit one hour after the previous, from 01-05 08:00."""
    return [
        commit("aa01", "01-05 08:00"),
        commit("bb02", "01-05 09:00", ("aa01",)),
        commit("cc03", "01-05 10:00", ("bb02",)),
        commit("dd04", "01-05 11:00", ("cc03",)),
    ]


def test_listed_commits_give_one_lead_time_sample_each():
    m = metrics([*linear_history(), dep("d1", "bb02", "01-05 12:00", commits=["aa01", "bb02"])])
    assert m.lead_time_hours.samples == 2
    assert m.lead_time_hours.median == 3.5  # 4h and 3h


def test_first_deployment_without_listed_commits_gives_no_lead_time_samples():
    m = metrics([*linear_history(), dep("d1", "bb02", "01-05 12:00")])
    assert m.deployment_count == 1
    assert m.lead_time_hours.samples == 0
    assert m.lead_time_hours.median is None


def test_graph_derived_commits_are_reachable_from_this_sha_not_from_the_previous():
    m = metrics(
        [*linear_history(), dep("d1", "bb02", "01-05 12:00"), dep("d2", "dd04", "01-05 13:00")]
    )
    assert m.lead_time_hours.samples == 2  # cc03 (3h) and dd04 (2h)
    assert m.lead_time_hours.median == 2.5


def test_redeploy_of_same_sha_ships_no_commits():
    events = [
        *linear_history(),
        dep("d1", "bb02", "01-05 12:00", commits=["aa01", "bb02"]),
        dep("d2", "bb02", "01-05 14:00", commits=["aa01", "bb02"]),
    ]
    m = metrics(events)
    assert m.deployment_count == 2
    assert m.lead_time_hours.samples == 2
    assert m.lead_time_hours.p90 < 5  # samples are from d1 (12:00), not from d2 (14:00)


def test_each_commit_counts_once_at_its_first_production_deployment():
    events = [
        *linear_history(),
        dep("d1", "bb02", "01-05 12:00", commits=["aa01", "bb02"]),
        dep("d2", "cc03", "01-05 15:00", commits=["bb02", "cc03"]),
    ]
    m = metrics(events)
    assert m.lead_time_hours.samples == 3  # aa01 4h, bb02 3h (at d1), cc03 5h


def test_rollback_marks_the_rolled_back_deployment_failed():
    events = [
        *linear_history(),
        dep("d1", "bb02", "01-05 12:00"),
        dep("d2", "dd04", "01-05 13:00"),
        dep("d3", "bb02", "01-05 13:30"),
    ]
    m = metrics(events)
    assert m.failed_deployments == 1
    assert m.change_failure_rate == round(1 / 3, 4)
    assert m.recovery_time_hours.median == 0.5  # d2 finished 13:00, d3 restored 13:30
    assert m.rework_deployments == 1  # d3 is a rollback


def test_redeploying_the_current_sha_is_not_a_rollback():
    events = [
        *linear_history(),
        dep("d1", "bb02", "01-05 12:00"),
        dep("d2", "dd04", "01-05 13:00"),
        dep("d3", "dd04", "01-05 14:00"),
    ]
    m = metrics(events)
    assert m.failed_deployments == 0
    assert m.change_failure_rate == 0.0


def test_rollback_is_judged_per_environment():
    events = [
        *linear_history(),
        dep("e1", "bb02", "01-05 12:00", env="prod-eu"),
        dep("u1", "dd04", "01-05 12:30", env="prod-us"),
        dep("e2", "dd04", "01-05 13:00", env="prod-eu"),
        dep("u2", "dd04", "01-05 14:00", env="prod-us"),
    ]
    m = metrics(events, services={"checkout": "^prod-"})
    assert m.deployment_count == 4
    assert m.failed_deployments == 0  # u2 redeploys prod-us's current sha


def test_incident_linked_by_deployment_id_fails_that_deployment():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        dep("d2", "bb02", "01-05 12:00"),
        incident("INC-1", "01-05 13:00", "01-05 15:00", deployment_id="d1"),
    ]
    m = window_metrics(prepare(frames(events)), W02)
    assert m.failed_deployments == 1
    p = prepare(frames(events))
    blamed = p.incidents.set_index("external_id")["deployment_id"]
    d1 = p.deployments.set_index("external_id").loc["d1", "deployment_id"]
    assert blamed["INC-1"] == d1
    assert m.recovery_time_hours.median == 2.0


def test_incident_attributed_to_latest_production_deployment_finished_before_it_opened():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        dep("d2", "bb02", "01-05 12:00"),
        dep("s1", "cc03", "01-05 12:30", env="staging"),
        dep("d3", "cc03", "01-05 14:00"),
        incident("INC-1", "01-05 13:00", "01-05 13:45"),
    ]
    p = prepare(frames(events))
    d2 = p.deployments.set_index("external_id").loc["d2", "deployment_id"]
    assert p.incidents.loc[0, "deployment_id"] == d2
    assert p.incidents.loc[0, "attribution"] == "attributed"
    m = window_metrics(p, W02)
    assert (m.failed_deployments, m.deployment_count) == (1, 3)
    assert m.recovery_time_hours.median == 0.75


def test_incident_opening_exactly_at_a_deployment_finish_blames_the_one_before():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        dep("d2", "bb02", "01-05 12:00"),
        incident("INC-1", "01-05 12:00"),
    ]
    p = prepare(frames(events))
    d1 = p.deployments.set_index("external_id").loc["d1", "deployment_id"]
    assert p.incidents.loc[0, "deployment_id"] == d1


def test_incident_before_any_deployment_is_ignored_for_cfr_but_reported():
    events = [incident("INC-0", "01-05 08:00", "01-05 09:00"), dep("d1", "aa01", "01-05 10:00")]
    m = metrics(events)
    assert m.change_failure_rate == 0.0
    assert m.incidents_opened == 1
    assert m.incidents_without_deployment == 1
    assert m.recovery_time_hours.samples == 0


def test_failed_deployments_do_not_count():
    events = [
        dep("d1", "aa01", "01-05 10:00", status="failure"),
        dep("d2", "aa01", "01-05 11:00", status="cancelled"),
        dep("d3", "bb02", "01-05 12:00"),
    ]
    m = metrics(events)
    assert m.deployment_count == 1


def test_non_production_environments_are_ignored():
    events = [
        *linear_history(),
        dep("s1", "bb02", "01-05 09:30", env="staging", commits=["aa01", "bb02"]),
        dep("d1", "bb02", "01-05 12:00", commits=["aa01", "bb02"]),
        dep("p1", "dd04", "01-06 12:00", env="preprod"),
    ]
    m = metrics(events)
    assert m.deployment_count == 1
    assert m.lead_time_hours.median == 3.5  # measured to production (12:00), not staging


def test_production_pattern_of_the_service_decides():
    m = metrics([dep("d1", "aa01", "01-05 10:00", env="live")], services={"checkout": "^live$"})
    assert m.deployment_count == 1


def test_empty_window_has_zero_counts_and_null_rates_and_times():
    m = metrics([dep("d1", "aa01", "01-20 10:00")])
    assert m.deployment_count == 0 and m.failed_deployments == 0
    assert m.deployments_per_week == 0.0
    assert m.change_failure_rate is None and m.rework_rate is None
    assert m.deployment_days_share == 0.0 and m.deployment_weeks_share == 0.0
    assert m.lead_time_hours.median is None and m.recovery_time_hours.median is None
    assert m.tier.overall is None
    dumped = m.model_dump_json()
    assert "NaN" not in dumped


def test_deployments_at_window_boundaries_are_half_open():
    events = [
        dep("d0", "aa01", "01-04 23:59"),
        dep("d1", "bb02", "01-05 00:00"),
        dep("d2", "cc03", "01-11 23:59"),
        dep("d3", "dd04", "01-12 00:00"),
    ]
    m = metrics(events)
    assert m.deployment_count == 2


def test_time_zone_offsets_are_converted_to_utc_before_windowing():
    m = metrics([dep("d1", "aa01", "2026-01-05T01:30:00+02:00")])  # = 01-04 23:30 UTC
    assert m.deployment_count == 0


def test_out_of_order_and_duplicate_events_give_the_same_metrics():
    events = [
        *linear_history(),
        dep("d1", "bb02", "01-05 12:00"),
        dep("d2", "dd04", "01-05 13:00"),
        dep("d3", "bb02", "01-05 13:30"),
        incident("INC-1", "01-05 13:10", "01-05 13:40"),
    ]
    shuffled = list(reversed(events)) + events[3:6]
    assert metrics(shuffled) == metrics(events)


def test_deployment_frequency_per_week_and_share_of_days():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        dep("d2", "bb02", "01-05 11:00"),
        dep("d3", "cc03", "01-07 11:00"),
    ]
    m = metrics(events)
    assert m.deployments_per_week == 3.0
    assert math.isclose(m.deployments_per_day, 3 / 7, abs_tol=1e-4)
    assert m.deployment_days_share == round(2 / 7, 4)
    assert m.deployment_weeks_share == 1.0


def test_percentiles_use_numpy_linear_interpolation():
    shas = [f"{i:04x}" for i in range(1, 6)]
    events = [commit(s, f"01-05 0{i}:00") for i, s in enumerate(shas)]
    events.append(dep("d1", shas[-1], "01-05 10:00", commits=shas))
    m = metrics(events)
    samples = np.array([10.0, 9.0, 8.0, 7.0, 6.0])
    assert m.lead_time_hours.p75 == round(float(np.percentile(samples, 75)), 2)
    assert m.lead_time_hours.p90 == round(float(np.percentile(samples, 90)), 2)


def test_unresolved_incident_gives_no_recovery_sample_and_makes_hotfixes_rework():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        incident("INC-1", "01-05 11:00"),
        dep("d2", "bb02", "01-05 12:00"),
    ]
    m = metrics(events)
    assert m.failed_deployments == 1
    assert m.recovery_time_hours.samples == 0
    assert m.rework_deployments == 1
    assert m.rework_rate == 0.5


def test_deployment_after_the_incident_resolved_is_not_rework():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        incident("INC-1", "01-05 11:00", "01-05 11:30"),
        dep("d2", "bb02", "01-05 12:00"),
    ]
    assert metrics(events).rework_deployments == 0


def test_lead_time_breakdown_from_changes():
    events = [
        *linear_history(),
        dep("d1", "aa01", "01-05 08:30"),
        change(
            "42",
            first_commit="01-05 09:00",
            opened="01-05 10:00",
            review="01-05 12:00",
            merged="01-05 15:00",
            merge_sha="dd04",
            commits=("bb02", "cc03"),
        ),
        dep("d2", "dd04", "01-05 19:00"),
    ]
    b = metrics(events).lead_time_breakdown_hours
    assert (b.coding, b.pickup, b.review, b.deploy, b.samples) == (1.0, 2.0, 3.0, 4.0, 1)


def test_tiers_follow_the_dora_table():
    events = [*linear_history(), dep("d1", "bb02", "01-05 12:00", commits=["aa01", "bb02"])]
    tier = metrics(events).tier
    assert tier.lead_time == "elite"  # 3.5 h < 24 h
    assert tier.deployment_frequency == "high"  # 1 per week
    assert tier.change_failure_rate == "elite"  # 0 %
    assert tier.recovery_time is None
    assert tier.overall == "high"


def test_graph_walk_follows_merge_commits_through_both_parents():
    events = [
        commit("aa01", "01-05 08:00"),
        commit("bb02", "01-05 09:00", ("aa01",)),  # main
        commit("cc03", "01-05 09:30", ("aa01",)),  # feature branch
        commit("dd04", "01-05 10:00", ("bb02", "cc03")),  # merge
        dep("d1", "aa01", "01-05 08:30"),
        dep("d2", "dd04", "01-05 11:00"),
    ]
    m = metrics(events)
    assert m.lead_time_hours.samples == 3  # bb02 2h, cc03 1.5h, dd04 1h
    assert m.lead_time_hours.median == 1.5


def test_commits_reached_by_an_earlier_deployment_are_not_shipped_again_after_a_rollback():
    events = [
        *linear_history(),
        dep("d1", "aa01", "01-05 08:30"),
        dep("d2", "cc03", "01-05 12:00"),  # ships bb02, cc03
        dep("d3", "aa01", "01-05 12:30"),  # rollback: ships nothing
        dep("d4", "dd04", "01-05 13:00"),  # ships dd04 only
    ]
    m = metrics(events)
    assert m.lead_time_hours.samples == 3
    assert m.failed_deployments == 1  # d2 rolled back
    assert m.rework_deployments == 1  # d3


def test_first_deployment_of_each_production_environment_has_no_predecessor():
    events = [
        *linear_history(),
        dep("e1", "bb02", "01-05 12:00", env="prod-eu"),
        dep("u1", "cc03", "01-05 12:30", env="prod-us"),  # first in prod-us: nothing datable
        dep("e2", "dd04", "01-05 13:00", env="prod-eu"),  # ships cc03, dd04 (after e1's bb02)
        dep("u2", "dd04", "01-05 14:00", env="prod-us"),  # production already ran dd04
    ]
    m = metrics(events, services={"checkout": "^prod-"})
    assert m.deployment_count == 4
    assert m.lead_time_hours.samples == 2
    assert m.lead_time_hours.median == 2.5  # cc03 3h and dd04 2h, both at e2 (13:00)


def test_incident_linked_to_a_non_production_deployment_is_attributed_by_time():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        dep("s1", "bb02", "01-05 10:30", env="staging"),
        incident("INC-1", "01-05 11:00", "01-05 12:00", deployment_id="s1"),
    ]
    p = prepare(frames(events))
    assert p.incidents.loc[0, "attribution"] == "attributed"
    assert window_metrics(p, W02).failed_deployments == 1


def test_incident_linked_to_an_unknown_deployment_id_is_attributed_by_time():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        incident("INC-1", "01-05 11:00", deployment_id="d-nope"),
    ]
    assert metrics(events).failed_deployments == 1


def test_incidents_only_blame_deployments_of_their_own_service():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        dep("x1", "aa01", "01-05 10:30", service="search"),
        incident("INC-1", "01-05 11:00", "01-05 12:00", service="search"),
    ]
    p = prepare(frames(events))
    assert window_metrics(p, W02, ["checkout"]).failed_deployments == 0
    assert window_metrics(p, W02, ["search"]).failed_deployments == 1


def test_several_incidents_on_one_deployment_count_it_failed_once_and_recover_at_the_last():
    events = [
        dep("d1", "aa01", "01-05 10:00"),
        incident("INC-1", "01-05 11:00", "01-05 12:00", deployment_id="d1"),
        incident("INC-2", "01-05 11:30", "01-05 14:00", deployment_id="d1"),
    ]
    m = metrics(events)
    assert (m.failed_deployments, m.change_failure_rate) == (1, 1.0)
    assert m.recovery_time_hours.median == 3.0  # 11:00 → 14:00


def test_recovery_of_a_rolled_back_deployment_with_an_incident_uses_the_incident():
    events = [
        *linear_history(),
        dep("d1", "bb02", "01-05 12:00"),
        dep("d2", "dd04", "01-05 13:00"),
        incident("INC-1", "01-05 13:15", "01-05 13:45"),
        dep("d3", "bb02", "01-05 16:00"),
    ]
    m = metrics(events)
    assert m.failed_deployments == 1
    assert m.recovery_time_hours.median == 0.5


def test_invalid_production_pattern_is_a_user_error_naming_the_service():
    import pytest

    from insights.errors import UserError

    with pytest.raises(UserError, match="service 'checkout': production_pattern"):
        metrics([dep("d1", "aa01", "01-05 10:00")], services={"checkout": "(prod"})


def test_slowest_changes_are_ranked_by_lead_time_with_their_breakdown():
    from insights.metrics.compute import slowest_changes

    events = [
        *linear_history(),
        dep("d1", "aa01", "01-05 08:30"),
        change(
            "1",
            first_commit="01-05 09:00",
            opened="01-05 09:10",
            review=None,
            merged="01-05 09:20",
            merge_sha="bb02",
            title="fast | pipe",
        ),
        change(
            "2",
            first_commit="01-04 09:00",
            opened="01-04 10:00",
            review="01-04 12:00",
            merged="01-05 10:00",
            merge_sha="cc03",
            title="slow",
        ),
        dep("d2", "dd04", "01-05 12:00"),
    ]
    top = slowest_changes(prepare(frames(events)), W02)
    assert [c.id for c in top] == ["2", "1"]
    assert top[0].lead_time_hours == 27.0
    assert (top[0].coding, top[0].pickup, top[0].review, top[0].deploy) == (1.0, 2.0, 22.0, 2.0)
    assert top[1].pickup is None and top[1].title == "fast | pipe"


def test_scope_filter_selects_services():
    events = [dep("d1", "aa01", "01-05 10:00"), dep("x1", "aa01", "01-05 11:00", service="search")]
    p = prepare(frames(events))
    assert window_metrics(p, W02, ["search"]).deployment_count == 1
    assert window_metrics(p, W02, []).deployment_count == 0
    assert window_metrics(p, W02).deployment_count == 2


def test_rollback_to_a_sha_another_production_environment_ran_before():
    events = [
        *linear_history(),
        dep("e1", "bb02", "01-05 12:00", env="prod-eu"),
        dep("u1", "dd04", "01-05 12:30", env="prod-us"),
        dep("u2", "bb02", "01-05 13:00", env="prod-us"),  # back to what prod-eu ran at 12:00
    ]
    m = metrics(events, services={"checkout": "^prod-"})
    assert m.failed_deployments == 1  # u1
    assert m.rework_deployments == 1  # u2
    assert m.recovery_time_hours.median == 0.5
