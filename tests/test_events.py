"""The canonical event format: validation and one-line errors naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from insights.collect.events import parse_lines
from insights.model import DeploymentEvent, EventError, parse_event


def test_offsets_are_converted_to_utc():
    event = parse_event(
        {
            "type": "deployment",
            "service": "api",
            "id": "d1",
            "sha": "ABCDEF12",
            "finished_at": "2026-01-05T12:00:00+02:00",
        }
    )
    assert isinstance(event, DeploymentEvent)
    assert event.finished_at == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert event.sha == "abcdef12"
    assert event.environment == "production"
    assert event.commits is None


def test_unknown_fields_are_ignored():
    event = parse_event(
        {
            "type": "incident",
            "service": "api",
            "id": 3,
            "opened_at": "2026-01-05T10:00:00Z",
            "pager": "x",
        }
    )
    assert event.id == "3"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"type": "deployment", "service": "api", "id": "1", "sha": "abcd", "finished_at": "x"},
            "deployment.finished_at: not an ISO-8601 time",
        ),
        (
            {"type": "deployment", "service": "api", "id": "1", "sha": "abcd"},
            "deployment.finished_at: required for a successful deployment",
        ),
        (
            {"type": "commit", "service": "api", "sha": "xyz", "committed_at": "2026-01-05T10:00Z"},
            "commit.sha: not a git sha",
        ),
        (
            {"type": "commit", "service": "api", "sha": "abcd", "committed_at": "2026-01-05T10:00"},
            "commit.committed_at: needs a time zone",
        ),
        ({"type": "incident", "service": "api", "id": "I"}, "incident.opened_at: required"),
        ({"type": "release"}, "type: must be one of commit, change, deployment, incident"),
        (
            {
                "type": "deployment",
                "service": "api",
                "id": "1",
                "sha": "abcd",
                "status": "done",
                "finished_at": "2026-01-05T10:00:00Z",
            },
            "deployment.status: must be one of success, failure, in_progress, cancelled",
        ),
        ([1, 2], "not a JSON object"),
    ],
)
def test_malformed_event_names_the_field(data, message):
    with pytest.raises(EventError) as info:
        parse_event(data)
    assert str(info.value).startswith(message)


def test_bad_lines_are_numbered_and_good_lines_kept():
    lines = [
        '{"type":"commit","service":"api","sha":"abcd","committed_at":"2026-01-05T10:00:00Z"}',
        "",
        "{not json",
        '{"type":"deployment","service":"api","id":"1","sha":"abcd","finished_at":"soon"}',
    ]
    parsed = parse_lines(lines)
    assert len(parsed.events) == 1
    assert [str(e) for e in parsed.errors] == [
        "line 3: not valid JSON (unexpected character, expected a string key at column 2)",
        "line 4: deployment.finished_at: not an ISO-8601 time",
    ]


def test_long_titles_are_cut():
    event = parse_event(
        {
            "type": "change",
            "service": "api",
            "id": "1",
            "title": "x" * 5000,
            "opened_at": "2026-01-05T10:00:00Z",
        }
    )
    assert len(event.title) == 300
