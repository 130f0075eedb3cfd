"""PagerDuty collector: incidents of the configured PagerDuty services, via PagerDuty's client.

Uses `pagerduty` (PagerDuty's own Python client, successor of pdpyras): `RestApiV2Client`
against `https://api.pagerduty.com` (or `base_url`), `iter_all("incidents", …)` for classic
offset pagination (`limit`/`offset`/`more`), and `GET /incidents/{id}/notes` for the notes that
may name a deployment. Mapping lives in `insights.collect.pagerduty_map`.

Incremental: `GET /incidents` filters on creation time only (`since`/`until`, at most 6 months
apart; we ask 30 days at a time, in `created_at` order, so one window stays under the client's
10,000-row offset limit). The cursor keeps where the next sync starts: the creation time of
the oldest incident still open (its resolution is still to come), else the newest seen minus
`overlap_days` (so a reopen or a priority change of a recent incident is seen again). It is
committed with every batch, so a stopped or killed sync resumes there; re-reading an incident
counts it as unchanged. Webhooks (insights/api/incident_webhooks.py) carry changes of older
incidents as they happen.

Rate limits: the client would retry a 429 forever on its own timer; a transport under it
answers 429s first, waiting what `Retry-After` says out of the sync's wait budget (then the
sync stops, cursor kept), and retries 5xx a few times with backoff. A 401 names the token's
environment variable. Requests per sync: one per 100 incidents per 30-day window, plus one per
new or changed incident (its notes).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import ssl
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import httpx2
from pagerduty import Error as PagerDutyError
from pagerduty import HttpError, RestApiV2Client, UrlError

from insights.collect.events import AnyEvent
from insights.collect.hostcommon import (
    HostAccess,
    checked_one,
    run_until_rate_limited,
    stored_payloads,
)
from insights.collect.pagerduty_map import map_incident
from insights.collect.ratelimit import (
    SERVER_ERROR_ATTEMPTS,
    RateLimited,
    WaitBudget,
    rate_limit_wait,
)
from insights.collect.sync import SyncContext, register
from insights.config import ServiceConfig, TenantConfig
from insights.errors import UserError
from insights.timeutil import iso, now, parse_time

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.pagerduty.com"
PAGE = 100
WINDOW = timedelta(days=30)
KIND = "incidents"
SCOPE_HINT = "a REST API key (read-only is enough) that can see the configured services"


def retry_after(headers: Any) -> float:
    """Seconds a PagerDuty 429 asks us to wait: `Retry-After`, else `ratelimit-reset`, which
    PagerDuty sends as seconds until the limit resets (not an epoch, unlike GitLab's).

    >>> retry_after({"ratelimit-reset": "12"})
    12.0
    """
    lower = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    if "retry-after" not in lower and "ratelimit-reset" in lower:
        try:
            return max(0.0, float(lower["ratelimit-reset"]))
        except ValueError:
            pass
    return rate_limit_wait({k: v for k, v in lower.items() if k != "ratelimit-reset"})


class BudgetTransport(httpx2.BaseTransport):
    """Answers 429 and 5xx below the PagerDuty client: waits `Retry-After` out of the sync's
    wait budget (raising `RateLimited` beyond it) and retries server errors with backoff."""

    def __init__(self, budget: WaitBudget, where: str, count: Any, inner: Any = None) -> None:
        self.budget = budget
        self.where = where
        self.count = count
        self.inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        attempt = 0
        while True:
            self.count()
            response = self.inner.handle_request(request)
            if response.status_code == 429:
                response.read()
                response.close()
                self.budget.wait_for_rate_limit(retry_after(response.headers), self.where)
                continue
            if response.status_code >= 500 and attempt < SERVER_ERROR_ATTEMPTS - 1:
                response.read()
                response.close()
                attempt += 1
                self.budget.backoff(attempt, self.where, response.status_code)
                continue
            return response

    def close(self) -> None:
        self.inner.close()


class PagerDutyApi:
    """The few reads the collector makes, with our errors instead of the client's."""

    def __init__(
        self, base_url: str, access: HostAccess, where: str, ca_bundle: str | None = None
    ) -> None:
        self.where = where
        self.token_env = access.token_env
        inner = (
            httpx2.HTTPTransport(verify=ssl.create_default_context(cafile=ca_bundle))
            if ca_bundle
            else None
        )
        try:
            self.client = RestApiV2Client(
                access.token,
                base_url=base_url,
                transport=BudgetTransport(access.budget, where, access.count, inner),
            )
        except UrlError:
            raise UserError(
                f"{where}: base_url must be an https:// URL (got {base_url!r})"
            ) from None
        self.client.retry = {}  # 429s and 5xx never reach the client's own retry loop

    def close(self) -> None:
        self.client.close()

    def incidents(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        pages = self.client.iter_all("incidents", params=params, page_size=PAGE)
        while True:
            try:
                yield self._call(lambda: next(pages))
            except StopIteration:
                return

    def notes(self, incident_id: str) -> list[dict[str, Any]]:
        return list(self._call(lambda: self.client.rget(f"/incidents/{incident_id}/notes")))

    def _call(self, fetch: Any) -> Any:
        try:
            return fetch()
        except (RateLimited, StopIteration):
            raise
        except HttpError as exc:
            status = exc.response.status_code
            if status == 401:
                raise UserError(
                    f"{self.where}: the token in {self.token_env} was rejected (401): check that"
                    f" it is valid ({SCOPE_HINT}) and that base_url is your account's region"
                ) from None
            if status in (403, 404):
                raise UserError(
                    f"{self.where}: PagerDuty answered {status}: check `service_ids` and that"
                    f" the token in {self.token_env} is {SCOPE_HINT}"
                ) from None
            raise UserError(f"{self.where}: PagerDuty answered {status}") from None
        except PagerDutyError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "error"
            raise UserError(
                f"{self.where}: cannot reach the API ({cause}); check base_url"
            ) from None
        except httpx2.TransportError as exc:
            raise UserError(
                f"{self.where}: cannot reach the API ({type(exc).__name__}); check base_url"
            ) from None


@register("pagerduty")
class PagerDutyCollector:
    """Collects the incidents of one service's PagerDuty services."""

    source = "pagerduty"

    def __init__(self, service: ServiceConfig, tenant: TenantConfig) -> None:
        self.service = service
        self.tenant = tenant
        self.config = service.source
        ids = sorted({s.strip() for s in self.config.service_ids if s.strip()})
        if not ids:
            raise UserError(
                f"service {service.name!r}: a pagerduty source needs service_ids (the PagerDuty"
                ' service ids, e.g. ["PIJ90N7"])'
            )
        self.service_ids = ids
        self.base_url = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")

    def repo_key(self) -> str:
        host = urlparse(self.base_url).netloc or self.base_url
        digest = hashlib.sha1(",".join(self.service_ids).encode()).hexdigest()[:12]
        return f"{host}/services-{digest}"

    def sync(self, ctx: SyncContext) -> None:
        access = HostAccess.of(ctx, self.service, "PagerDuty")
        bundle = str(self.config.ca_bundle) if self.config.ca_bundle else None
        api = PagerDutyApi(self.base_url, access, f"pagerduty {self.service.name}", bundle)
        run_until_rate_limited(ctx, api, [lambda: self._sync_incidents(ctx, api)])

    def remap(self, ctx: SyncContext) -> None:
        """Re-derive every incident from the stored payloads: no request, no token needed."""
        for kind, events in self.raw_events(ctx).items():
            ctx.commit(kind, events)

    def raw_events(self, ctx: SyncContext) -> dict[str, list[AnyEvent]]:
        """The incidents the stored payloads map to, per cursor kind (no request)."""
        mapped: dict[str, list[AnyEvent]] = {}
        for kind, payloads in stored_payloads(ctx, [KIND]).items():
            mapped[kind] = [
                event
                for key, raw in payloads
                for event in checked_one(
                    ctx,
                    "incident",
                    f"pagerduty incident {key}",
                    functools.partial(
                        map_incident, self.service.name, raw["incident"], raw.get("notes") or []
                    ),
                )
            ]
        return mapped

    def _sync_incidents(self, ctx: SyncContext, api: PagerDutyApi) -> None:
        cursor = ctx.cursor(KIND) or {}
        until = now()
        start = (
            parse_time(cursor["since"])
            if cursor.get("since")
            else until - timedelta(days=self.config.lookback_days)
        )
        # what was stored, by id, so an unchanged incident costs no notes request
        seen: dict[str, str] = dict(cursor.get("seen", {}))
        open_since: dict[str, str] = dict(cursor.get("open", {}))
        newest: str | None = cursor.get("newest")
        overlap = timedelta(days=self.config.overlap_days)

        def next_since() -> str:
            candidates = [parse_time(t) for t in open_since.values()]
            if newest:
                candidates.append(parse_time(newest) - overlap)
            return iso(min(candidates)) if candidates else iso(start)

        def dump() -> dict[str, Any]:
            # `seen` is bounded to what the next sync can re-read (after its since)
            since = next_since()
            keep = {
                k: v
                for k, v in seen.items()
                if k in open_since or parse_time(v.split("|", 1)[0]) >= parse_time(since)
            }
            return {"since": since, "open": open_since, "newest": newest, "seen": keep}

        window_start = start
        while window_start < until:
            window_end = min(window_start + WINDOW, until)
            params = {
                "service_ids[]": self.service_ids,
                "since": iso(window_start),
                "until": iso(window_end),
                "sort_by": "created_at:asc",
                "time_zone": "UTC",
            }
            events: list[AnyEvent] = []
            raw: list[tuple[str, dict[str, Any]]] = []
            for incident in api.incidents(params):
                incident_id = str(incident["id"])
                version = _version(incident)
                if incident.get("status") == "resolved":
                    open_since.pop(incident_id, None)
                else:
                    open_since[incident_id] = incident["created_at"]
                if newest is None or parse_time(incident["created_at"]) > parse_time(newest):
                    newest = incident["created_at"]
                if seen.get(incident_id) == version:
                    continue
                notes = api.notes(incident_id)
                events += checked_one(
                    ctx,
                    "incident",
                    f"pagerduty incident {incident_id}",
                    functools.partial(map_incident, self.service.name, incident, notes),
                )
                raw.append((incident_id, {"incident": incident, "notes": notes}))
                seen[incident_id] = version
                if len(events) >= PAGE:
                    ctx.commit(KIND, events, cursor=dump(), raw=raw)
                    events, raw = [], []
            if events:
                ctx.commit(KIND, events, cursor=dump(), raw=raw)
            window_start = window_end
        ctx.commit(KIND, [], cursor=dump())


def _version(incident: dict[str, Any]) -> str:
    """What changes when an incident does: its status change time, status and priority.

    Starts with the creation time, so `seen` entries compare with the cursor's `since`."""
    priority = (incident.get("priority") or {}).get("id") or ""
    return "|".join(
        str(x)
        for x in (
            incident.get("created_at"),
            incident.get("last_status_change_at") or incident.get("updated_at"),
            incident.get("status"),
            incident.get("urgency"),
            priority,
        )
    )
