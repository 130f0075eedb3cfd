"""The canonical NDJSON event source: decode lines, validate them, report bad lines by number.

Used by `insights import`, `insights record` and `POST /api/v1/events` alike. Each line is
decoded by the bounded parser (`insights.boundedjson`: depth, numbers, UTF-8) and validated by
the event model, so a hostile line is one numbered error and the other lines are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from insights.boundedjson import JsonInputError, loads
from insights.model import ChangeEvent, CommitEvent, DeploymentEvent, EventError, IncidentEvent
from insights.model import parse_event as _parse_event

AnyEvent = CommitEvent | ChangeEvent | DeploymentEvent | IncidentEvent


@dataclass
class ParsedEvents:
    """Valid events in input order, and one error per rejected line."""

    events: list[AnyEvent] = field(default_factory=list)
    errors: list[EventError] = field(default_factory=list)
    lines: int = 0


def iter_lines(lines: Iterable[str | bytes]) -> Iterator[tuple[int, AnyEvent | EventError]]:
    """Yield (line number, event or error) for each non-blank line; numbering starts at 1."""
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            data = loads(text)
        except JsonInputError as exc:
            # one line: "at line 1 column 5" is the column within it
            reason = str(exc).replace(" at line 1 column ", " at column ")
            yield number, EventError(f"not valid JSON ({reason})", number)
            continue
        try:
            yield number, _parse_event(data)
        except EventError as exc:
            yield number, EventError(exc.message, number)


def parse_lines(lines: Iterable[str | bytes]) -> ParsedEvents:
    """Parse a whole NDJSON input into events and line-numbered errors."""
    parsed = ParsedEvents()
    for number, item in iter_lines(lines):
        parsed.lines = number
        if isinstance(item, EventError):
            parsed.errors.append(item)
        else:
            parsed.events.append(item)
    return parsed


def parse_objects(objects: Iterable[object]) -> ParsedEvents:
    """Validate already-decoded objects (a JSON array); item numbers start at 1."""
    parsed = ParsedEvents()
    for number, data in enumerate(objects, start=1):
        parsed.lines = number
        try:
            parsed.events.append(_parse_event(data))
        except EventError as exc:
            parsed.errors.append(EventError(exc.message, number))
    return parsed
