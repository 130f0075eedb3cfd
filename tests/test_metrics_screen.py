"""The metrics engine screens out stored rows the input boundary would refuse (pure frames, no
database): out-of-range times in any column type, negative durations; the rest is computed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pandas as pd
from metrics_support import commit, dep, frames, incident

from insights.metrics import compute
from insights.metrics.screen import outside_range, screen
from insights.metrics.windows import week


def test_out_of_range_values_are_found_in_every_column_type():
    aware = pd.Series(pd.to_datetime(["1970-01-01", "2026-01-05", None], utc=True))
    assert outside_range(aware).tolist() == [False, False, False]
    old = datetime(1600, 1, 1, tzinfo=UTC)
    objects = pd.Series([old, datetime(2026, 1, 5, tzinfo=UTC), None], dtype=object)
    assert outside_range(objects).tolist() == [True, False, False]
    micro = pd.Series([old, datetime(9999, 12, 31, tzinfo=UTC)]).astype("datetime64[us, UTC]")
    assert outside_range(micro).tolist() == [True, True]
    text = pd.Series(["2300-01-01T00:00:00Z", "2026-01-05T00:00:00+01:00", "garbage"])
    assert outside_range(text).tolist() == [True, False, True]


def test_poisoned_rows_are_skipped_with_a_warning_and_the_rest_computed(caplog):
    data = frames(
        [
            commit("c0ffee01", "2026-01-05T09:00:00Z"),
            dep("d-1", "c0ffee01", "2026-01-05T12:00:00Z", commits=["c0ffee01"]),
            incident("INC-1", "01-05 13:00", "01-05 15:00", deployment_id="d-1"),
        ]
    )
    # what an old database can hand the engine: an object column with a year-1600 time and
    # an incident resolved before it opened
    poisoned = pd.DataFrame(
        {
            "service": ["checkout", "checkout"],
            "external_id": ["INC-OLD", "INC-NEG"],
            "opened_at": [
                datetime(1600, 1, 1, tzinfo=UTC),
                datetime(2026, 1, 6, 13, tzinfo=UTC),
            ],
            "resolved_at": [None, datetime(2026, 1, 6, 12, tzinfo=UTC)],
            "severity": [None, None],
            "deployment_external_id": ["d-1", "d-1"],
            "title": [None, None],
        }
    )
    data.incidents = pd.concat([data.incidents.astype(object), poisoned], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="insights.metrics"):
        result = compute.compute(data, week(2026, 2))
    assert result.deployment_count == 1
    assert result.recovery_time_hours.median == 2.0  # INC-1 only; INC-NEG is not "0 h"
    warned = [r.getMessage() for r in caplog.records]
    assert any(
        "incident 'INC-OLD' of service 'checkout': opened_at 1600-01-01" in w for w in warned
    )
    assert any("incident 'INC-NEG'" in w and "resolved_at is before opened_at" in w for w in warned)


def test_clean_frames_pass_unchanged():
    data = frames([dep("d-1", "c0ffee01", "2026-01-05T12:00:00Z")])
    assert screen(data.deployments, "deployments") is data.deployments
