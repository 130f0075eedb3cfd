"""What the GitHub and GitLab collectors share: the updated-time cursor and incident references."""

from __future__ import annotations

import re
from typing import Any

from insights.timeutil import parse_time

_DEPLOYMENT_LABEL = re.compile(r"^deploy(?:ment)?[:=/ ]\s*#?(\S+)$", re.IGNORECASE)
_DEPLOYMENT_LINE = re.compile(
    r"^\s*\**deploy(?:ment)?(?:[ _-]?id)?\**\s*[:=]\s*#?([A-Za-z0-9._-]+)",
    re.IGNORECASE | re.MULTILINE,
)
_SEVERITY_LABEL = re.compile(r"^(sev[ -]?\d|severity[:/ ].+|p[0-4])$", re.IGNORECASE)


class UpdatedCursor:
    """Incremental position in a list sorted by `updated_at`: the time and the ids done at it.

    Keeping the ids seen at the newest time means two items updated in the same second are
    neither skipped (a stop between them) nor refetched forever.
    """

    def __init__(self, value: dict[str, Any] | None) -> None:
        value = value or {}
        self.updated_at: str | None = value.get("updated_at")
        self.done: set[str] = set(value.get("done", []))

    def is_new(self, updated_at: str, key: str) -> bool:
        if self.updated_at is None:
            return True
        when, last = parse_time(updated_at), parse_time(self.updated_at)
        return when > last or (when == last and key not in self.done)

    def advance(self, updated_at: str, key: str) -> None:
        if self.updated_at is None or parse_time(updated_at) > parse_time(self.updated_at):
            self.updated_at, self.done = updated_at, set()
        if parse_time(updated_at) == parse_time(self.updated_at):
            self.done.add(key)

    def dump(self, etag: str | None = None) -> dict[str, Any]:
        return {"updated_at": self.updated_at, "done": sorted(self.done), "etag": etag}


def severity_label(labels: list[str]) -> str | None:
    """The first `sev1`, `sev-2`, `severity:high` or `P1`-style label, if any."""
    return next((label for label in labels if _SEVERITY_LABEL.match(label)), None)


def deployment_reference(labels: list[str], body: str) -> str | None:
    """The deployment an incident names: a `deployment:<id>` label, else a body line.

    >>> deployment_reference(["bug"], "Broke after deploy.\\nDeployment: 1234\\n")
    '1234'
    """
    for label in labels:
        match = _DEPLOYMENT_LABEL.match(label.strip())
        if match:
            return match.group(1)
    match = _DEPLOYMENT_LINE.search(body)
    return match.group(1) if match else None
