"""Scopes: what a metric is computed over — one service, one team's services, or the tenant."""

from __future__ import annotations

import re

from insights.errors import UserError
from insights.metrics.result import Scope

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


def parse_scope(text: str | None, tenant: str = "default") -> Scope:
    """Parse `service:NAME`, `team:NAME` or `tenant` (the default; named after `tenant`).

    >>> parse_scope("service:checkout")
    Scope(kind='service', name='checkout')
    """
    value = (text or "tenant").strip()
    if value == "tenant":
        return Scope(kind="tenant", name=tenant)
    kind, sep, name = value.partition(":")
    if not sep or kind not in ("service", "team") or not _NAME.match(name):
        raise UserError(f"scope {text!r}: use service:NAME, team:NAME or tenant")
    return Scope(kind=kind, name=name)  # type: ignore[arg-type]
