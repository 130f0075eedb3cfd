"""Waiting on Git-host rate limits and server errors within a bounded budget.

Both host collectors ask this module how long a 403/429 tells them to wait (`Retry-After`,
`X-RateLimit-Reset` / `RateLimit-Reset`) and spend it from one `WaitBudget` per sync. When the
next wait would overrun the budget the sync stops with `RateLimited`: the collector has already
committed its cursor, so the next run resumes where this one stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

DEFAULT_WAIT_WHEN_UNSAID = 60.0  # GitHub's advice for a secondary limit without Retry-After
SERVER_ERROR_ATTEMPTS = 4


class RateLimited(Exception):
    """The host's rate limit outlasts the wait budget; the message says when to retry."""


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds a rate-limited response asks us to wait.

    `Retry-After` (seconds) wins; otherwise the reset epoch (`X-RateLimit-Reset` on GitHub,
    `RateLimit-Reset` on GitLab) minus now; otherwise one minute.

    >>> rate_limit_wait({"retry-after": "7"})
    7.0
    >>> rate_limit_wait({"x-ratelimit-reset": "1000"}, now=990.0)
    10.0
    """
    lower = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    try:
        if "retry-after" in lower:
            return max(0.0, float(lower["retry-after"]))
        for name in ("x-ratelimit-reset", "ratelimit-reset"):
            if name in lower:
                return max(0.0, float(lower[name]) - now)
    except ValueError:
        pass
    return DEFAULT_WAIT_WHEN_UNSAID


class WaitBudget:
    """At most `max_seconds` of rate-limit waiting in one sync, then `RateLimited`.

    `backoff_seconds` is the first pause before retrying a 5xx (doubling each attempt).
    `sleep` is injectable so a benchmark can count waits without sleeping.
    """

    def __init__(
        self,
        max_seconds: float,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_seconds = max_seconds
        self.backoff_seconds = backoff_seconds
        self.waited = 0.0
        self._sleep = sleep

    def wait_for_rate_limit(self, seconds: float, where: str) -> None:
        """Sleep `seconds` if the budget allows, else raise `RateLimited` naming `where`."""
        if self.waited + seconds > self.max_seconds:
            raise RateLimited(
                f"{where}: rate limited; the limit resets in {seconds:.0f}s, more than the "
                f"remaining wait budget ({self.max_seconds - self.waited:.0f}s of "
                f"max_rate_limit_wait_seconds={self.max_seconds:g}); progress is saved, "
                "run sync again later"
            )
        log.info("%s: rate limited, waiting %.1fs", where, seconds)
        self._sleep(seconds)
        self.waited += seconds

    def backoff(self, attempt: int, where: str, status: int | str) -> None:
        """Pause before retry number `attempt` (1-based) of a server error."""
        pause = self.backoff_seconds * 2 ** (attempt - 1)
        log.info("%s: server answered %s, retry %d in %.1fs", where, status, attempt, pause)
        self._sleep(pause)
