"""Storing one mapped webhook delivery: gaps filled from the stored rows, events upserted,
incidents the source no longer has removed. Used by the webhook API and by `insights rebuild`
(which replays kept deliveries), inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from insights.collect.events import AnyEvent
from insights.collect.webhooks import Mapped
from insights.model import parse_event
from insights.store.partial import fill_from_stored
from insights.store.repository import TenantRepository


@dataclass
class Applied:
    """What a delivery changed: events stored (counts per type) and records removed."""

    events: list[AnyEvent] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    removed: list[tuple[str, str]] = field(default_factory=list)


def apply_mapped(repo: TenantRepository, service: str, mapped: Mapped) -> Applied:
    """Store `mapped` for `service`; a field the delivery leaves out keeps its stored value
    (except `mapped.stated` ones), and `mapped.earliest` fields keep the earlier time.

    Raises `EventError` when a filled event does not validate (the API answers 422).
    """
    from insights.pipeline import store_events

    applied = Applied()
    for event in mapped.events:
        data = event.model_dump(mode="json")
        data = {k: v for k, v in data.items() if v is not None or k in mapped.stated}
        data = fill_from_stored(repo, data, stated=mapped.stated, earliest=mapped.earliest)
        applied.events.append(parse_event(data))
    stored = store_events(repo, applied.events, create_services=False)
    applied.counts = {kind: c.total for kind, c in stored.counts.items() if c.total}
    service_row = repo.service(service)
    if service_row is None:
        return applied
    for kind, external_id in mapped.removed:
        if kind == "incident" and repo.delete_incidents(service_row.id, [external_id]):
            applied.removed.append((kind, external_id))
    return applied
