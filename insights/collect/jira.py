"""Jira collector (Cloud and Data Center): issues a JQL selects are a service's incidents.

Uses `jira` (pycontribs' client). It asks the server which deployment type it is
(`/rest/api/2/serverInfo`) and we page accordingly: Jira Cloud removed `GET /search` in favour
of `GET /search/jql`, paged by `nextPageToken` (no `startAt`, no `total`) — the client's
`enhanced_search_issues`; Data Center keeps `/search` with `startAt`/`maxResults`. Auth: Cloud
takes the account e-mail (`user_env`) and an API token (`token_env`) as Basic auth; Data Center
a personal access token as Bearer (leave `user_env` unset). Mapping lives in
`insights.collect.jira_map`.

Incremental: the JQL is `(<configured JQL>) AND updated >= "<cursor − overlap>" ORDER BY updated
ASC, key ASC`. JQL dates have minute precision in the Jira user's time zone, so the query
reaches back at least a day and the cursor (the newest `fields.updated` and the keys done at
it) drops what was already read. Each page of 100 is committed with its cursor, so a stopped
or killed sync resumes there. Every later sync also lists the keys the JQL still selects and
removes the incidents of issues it no longer does (DESIGN.md: incidents follow their source).

Rate limits: the client's own retry (which sleeps whatever it likes) is off; a 429 waits its
`Retry-After` out of the sync's wait budget, then the sync stops with the cursor saved; 5xx are
retried with backoff. A 401 names the variables that hold the credentials, a 400 quotes Jira's
complaint about the JQL.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlparse

import requests
from jira import JIRA, JIRAError

from insights.collect.events import AnyEvent
from insights.collect.hostcommon import (
    HostAccess,
    UpdatedCursor,
    checked_one,
    run_until_rate_limited,
    stored_payloads,
)
from insights.collect.jira_map import FIELDS, map_issue
from insights.collect.ratelimit import SERVER_ERROR_ATTEMPTS, rate_limit_wait
from insights.collect.sync import SyncContext, register
from insights.config import ServiceConfig, TenantConfig, secret
from insights.errors import UserError
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository
from insights.timeutil import now, parse_time

log = logging.getLogger(__name__)

PAGE = 100
KIND = "incidents"
MIN_REACH_BACK = timedelta(days=1)  # JQL times are in the Jira user's zone, to the minute
_ORDER_BY = re.compile(r"\s+ORDER\s+BY\s+.*$", re.IGNORECASE | re.DOTALL)
T = TypeVar("T")


class JiraApi:
    """Searches through the `jira` client, with the sync's budget and our errors."""

    def __init__(
        self,
        base_url: str,
        access: HostAccess,
        user: tuple[str, str] | None,
        where: str,
        ca_bundle: str | None,
    ) -> None:
        """`user`: (the variable holding the Cloud account e-mail, the e-mail), or None for a
        Data Center personal access token."""
        self.where = where
        self.access = access
        self.user_env = user[0] if user else None
        auth: dict[str, Any] = (
            {"basic_auth": (user[1], access.token)} if user else {"token_auth": access.token}
        )
        options = {"rest_api_version": "2", "verify": ca_bundle or True}

        def connect() -> JIRA:
            client = JIRA(
                server=base_url,
                options=options,
                max_retries=0,  # retries are ours, within the sync's budget
                timeout=30,
                get_server_info=True,
                **auth,
            )
            # every HTTP request counts for the sync report, also the client's own lookups
            # (serverInfo, the field names); the session is the client's requests.Session
            client._session.hooks["response"].append(lambda *a, **k: access.count())
            return client

        self.client = self._call(connect)
        self.cloud = self.client.deploymentType == "Cloud"

    def close(self) -> None:
        self.client.close()

    def pages(self, jql: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues (raw JSON), Cloud by `nextPageToken`, Data Center by `startAt`."""
        token: str | None = None
        start = 0
        while True:
            if self.cloud:
                page = self._call(
                    functools.partial(
                        self.client.enhanced_search_issues,
                        jql,
                        nextPageToken=token,
                        maxResults=PAGE,
                        fields=fields,
                        json_result=True,
                    )
                )
            else:
                page = self._call(
                    functools.partial(
                        self.client.search_issues,
                        jql,
                        startAt=start,
                        maxResults=PAGE,
                        fields=fields,
                        json_result=True,
                    )
                )
            issues = list(page.get("issues") or [])
            yield issues
            if self.cloud:
                token = page.get("nextPageToken")
                if not token or page.get("isLast", False):
                    return
            else:
                start += len(issues)
                if not issues or start >= int(page.get("total", 0)):
                    return

    def _call(self, fetch: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fetch()
            except JIRAError as exc:
                status = exc.status_code or 0
                headers = dict(exc.response.headers) if exc.response is not None else {}
                if status == 429:
                    self.access.budget.wait_for_rate_limit(rate_limit_wait(headers), self.where)
                    continue
                if status >= 500 and attempt < SERVER_ERROR_ATTEMPTS - 1:
                    attempt += 1
                    self.access.budget.backoff(attempt, self.where, status)
                    continue
                raise self._error(status, exc) from None
            except requests.RequestException as exc:
                raise UserError(
                    f"{self.where}: cannot reach Jira ({type(exc).__name__}); check base_url"
                ) from None

    def _error(self, status: int, exc: JIRAError) -> UserError:
        if status == 401:
            who = f" and the e-mail in {self.user_env}" if self.user_env else ""
            return UserError(
                f"{self.where}: Jira rejected the credentials (401): check the token in"
                f" {self.access.token_env}{who} (Cloud: e-mail + API token via user_env;"
                " Data Center: a personal access token, no user_env)"
            )
        if status == 400:
            said = " ".join(str(exc.text or "").split())[:300]
            return UserError(f"{self.where}: Jira refused the JQL (400): {said}")
        if status in (403, 404):
            return UserError(
                f"{self.where}: Jira answered {status}: check base_url, the project and that"
                f" the account behind {self.access.token_env} may browse it"
            )
        return UserError(f"{self.where}: Jira answered {status}")


@register("jira")
class JiraCollector:
    """Collects the incidents of one service from the Jira issues its JQL selects."""

    source = "jira"

    def __init__(self, service: ServiceConfig, tenant: TenantConfig) -> None:
        self.service = service
        self.tenant = tenant
        self.config = service.source
        if not self.config.base_url:
            raise UserError(f"service {service.name!r}: a jira source needs base_url")
        if not (self.config.jql or self.config.project):
            raise UserError(f"service {service.name!r}: a jira source needs project or jql")
        self.base_url = self.config.base_url.rstrip("/")
        self.jql = base_jql(self.config.jql, self.config.project, self.config.issue_types)

    def repo_key(self) -> str:
        host = urlparse(self.base_url).netloc or self.base_url
        return f"{host}/jql-{hashlib.sha1(self.jql.encode()).hexdigest()[:12]}"

    def sync(self, ctx: SyncContext) -> None:
        access = HostAccess.of(ctx, self.service, "Jira")
        user = None
        if self.config.user_env:
            email = secret(self.config.user_env, f"service {self.service.name!r}: Jira e-mail")
            user = (self.config.user_env, email)
        bundle = str(self.config.ca_bundle) if self.config.ca_bundle else None
        api = JiraApi(self.base_url, access, user, f"jira {self.service.name}", bundle)
        steps = [lambda: self._sync_issues(ctx, api)]
        if ctx.cursor(KIND) is not None:  # a first sync stored only what the JQL selects
            steps.append(lambda: self._drop_unselected(ctx, api))
        run_until_rate_limited(ctx, api, steps)

    def remap(self, ctx: SyncContext) -> None:
        """Re-derive every incident from the stored issues: no request, no token needed."""
        for kind, events in self.raw_events(ctx).items():
            ctx.commit(kind, events)

    def raw_events(self, ctx: SyncContext) -> dict[str, list[AnyEvent]]:
        """The incidents the stored issues map to, per cursor kind (no request)."""
        mapped: dict[str, list[AnyEvent]] = {}
        for kind, payloads in stored_payloads(ctx, [KIND]).items():
            mapped[kind] = [
                event
                for key, raw in payloads
                for event in checked_one(
                    ctx,
                    "incident",
                    f"jira issue {key}",
                    functools.partial(
                        map_issue, self.service.name, raw, self.config.deployment_field
                    ),
                )
            ]
        return mapped

    def _drop_unselected(self, ctx: SyncContext, api: JiraApi) -> None:
        """Incidents follow their source: an issue read before that the JQL no longer selects
        (deleted, moved to another project, retyped, label removed) stops being an incident.
        Jira cannot say what left a query, so the keys it still selects are listed (one
        request per 100) and compared with the issues kept from earlier syncs."""
        stored = _stored_keys(ctx)
        if not stored:
            return
        selected: set[str] = set()
        for issues in api.pages(f"({self.jql}) ORDER BY key ASC", ["updated"]):
            selected.update(str(issue["key"]) for issue in issues)
        gone = sorted(stored - selected)
        if not gone:
            return
        with unit_of_work(ctx.engine) as session:
            repo = TenantRepository.open(session, ctx.tenant.name, create=True)
            service = repo.service(self.service.name)
            removed = repo.delete_incidents(service.id, gone) if service else 0
            repo.delete_raw(ctx.source, ctx.repo_key, KIND, gone)
        log.info("jira %s: %d issue(s) no longer selected, removed", self.service.name, removed)

    def _sync_issues(self, ctx: SyncContext, api: JiraApi) -> None:
        cursor = UpdatedCursor(ctx.cursor(KIND))
        reach = max(timedelta(days=self.config.overlap_days), MIN_REACH_BACK)
        floor = (
            parse_time(cursor.updated_at) - reach
            if cursor.updated_at
            else now() - timedelta(days=self.config.lookback_days)
        )
        jql = f'({self.jql}) AND updated >= "{floor:%Y/%m/%d %H:%M}" ORDER BY updated ASC, key ASC'
        fields = [
            *FIELDS,
            *([self.config.deployment_field] if self.config.deployment_field else []),
        ]
        for issues in api.pages(jql, fields):
            events: list[AnyEvent] = []
            raw: list[tuple[str, dict[str, Any]]] = []
            for issue in issues:
                key = str(issue["key"])
                updated = issue["fields"]["updated"]
                if not cursor.is_new(updated, key):
                    continue
                cursor.advance(updated, key)
                events += checked_one(
                    ctx,
                    "incident",
                    f"jira issue {key}",
                    functools.partial(
                        map_issue, self.service.name, issue, self.config.deployment_field
                    ),
                )
                raw.append((key, issue))
            ctx.commit(KIND, events, cursor=cursor.dump(), raw=raw)


def _stored_keys(ctx: SyncContext) -> set[str]:
    with unit_of_work(ctx.engine) as session:
        repo = TenantRepository.open(session, ctx.tenant.name, create=True)
        return {p.external_id for p in repo.raw_payloads(ctx.source, ctx.repo_key, KIND)}


def base_jql(jql: str | None, project: str | None, issue_types: list[str]) -> str:
    """The configured JQL without its ORDER BY, else `project = X AND issuetype in (…)`.

    >>> base_jql(None, "OPS", ["Incident"])
    'project = "OPS" AND issuetype in ("Incident")'
    """
    if jql:
        return _ORDER_BY.sub("", jql.strip())
    clause = f'project = "{project}"'
    if issue_types:
        clause += " AND issuetype in (" + ", ".join(f'"{t}"' for t in issue_types) + ")"
    return clause
