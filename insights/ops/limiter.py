"""Model calls limited per provider endpoint across every worker and replica.

`llm.max_concurrency` calls at a time to one endpoint (a Bedrock region, an OpenAI-compatible
base URL), whichever process makes them. On PostgreSQL a call holds one of `max_concurrency`
slots, each a session advisory lock `(endpoint hash, slot)` on a connection of its own: a
lock held by a process that dies is released with its connection, so a killed worker never
leaks a slot. A caller that finds every slot taken retries with a short growing pause (up to
`wait_seconds`, then `SlotTimeout`, a ProviderError: the built-in narrator writes it). On
SQLite (one process) the in-process semaphore of `narrate.llm.ConcurrencyLimits` is the limit.

Example:
    with DatabaseSlots(engine, "openai:http://llm:8000/v1", 4):
        provider.complete(request)
"""

from __future__ import annotations

import random
import time
import zlib
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, text

from insights.narrate.providers import ProviderError

_NAMESPACE = zlib.crc32(b"insights.llm-slots") & 0x7FFFFFFF


class SlotTimeout(ProviderError):
    """No provider slot became free in time (the narration falls back to built-in)."""


class DatabaseSlots:
    """A context manager holding one of `size` shared slots of `endpoint` while inside."""

    def __init__(
        self, engine: Engine, endpoint: str, size: int, wait_seconds: float = 300.0
    ) -> None:
        self.engine = engine
        self.size = max(1, size)
        self.base = (zlib.crc32(endpoint.encode("utf-8")) & 0x7FFF) << 16
        self.wait_seconds = wait_seconds
        self._held: list[tuple[Any, int]] = []

    def _try(self) -> tuple[Any, int] | None:
        conn = self.engine.connect()
        try:
            for slot in random.sample(range(self.size), self.size):
                key = self.base + slot
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :key)"),
                    {"ns": _NAMESPACE, "key": key},
                ).scalar()
                conn.commit()
                if got:
                    return conn, key
        except Exception:
            conn.close()
            raise
        conn.close()
        return None

    def __enter__(self) -> DatabaseSlots:
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.02
        while True:
            held = self._try()
            if held is not None:
                self._held.append(held)
                return self
            if time.monotonic() >= deadline:
                raise SlotTimeout(f"no free model call slot in {self.wait_seconds:.0f} s")
            time.sleep(pause * (1 + random.random()))
            pause = min(pause * 2, 0.5)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, key = self._held.pop()
        try:
            conn.execute(
                text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": _NAMESPACE, "key": key}
            )
            conn.commit()
        finally:
            conn.close()


def shared_limit(engine: Engine, endpoint: str, size: int, local: Any) -> Any:
    """The limit a model call holds: database slots on PostgreSQL, else `local`."""
    if engine.dialect.name == "postgresql":
        return DatabaseSlots(engine, endpoint, size)
    return local
