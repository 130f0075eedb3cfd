"""GitLab collector: deployments with shipped commits, merged MRs and incidents, incremental.

Uses python-gitlab against gitlab.com or a self-managed instance (`base_url` = instance root).
Every list is read with `updated_after` + `order_by=updated_at&sort=asc` and the cursor
advances per committed item, so a stopped sync resumes where it stopped. 5xx answers are
retried by python-gitlab (`retry_transient_errors`); 429s are handled here (not by
python-gitlab, whose wait has no cap) from the sync's wait budget, reading `Retry-After` /
`RateLimit-Reset` from the response. Mapping lives in `insights.collect.gitlab_map`.

Requests per sync: ceil(N/100) pages per list, plus a compare per new successful deployment
(its shipped commits) and a merged MR's commits and notes.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlparse

import gitlab
import requests
from gitlab.exceptions import GitlabAuthenticationError, GitlabHttpError
from sqlalchemy import select

from insights.collect.events import AnyEvent
from insights.collect.gitlab_map import (
    deployment_status,
    map_commits,
    map_deployment,
    map_incident,
    map_merge_request,
)
from insights.collect.hostcommon import (
    Batch,
    HostAccess,
    UpdatedCursor,
    checked,
    checked_commits,
    refusal,
    run_until_rate_limited,
    stored_payloads,
)
from insights.collect.ratelimit import (
    SERVER_ERROR_ATTEMPTS,
    WaitBudget,
    rate_limit_wait,
)
from insights.collect.sync import SyncContext, register
from insights.config import ServiceConfig, TenantConfig
from insights.errors import NotFound, UserError
from insights.model import DeploymentStatus
from insights.store.db import unit_of_work
from insights.store.models import Deployment
from insights.store.repository import TenantRepository

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://gitlab.com"
PER_PAGE = 100
INCIDENT_BATCH = 100
_PROJECT = re.compile(r"^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+|\d+)$")
SCOPE_HINT = "a token with the read_api scope and at least the Reporter role on the project"
T = TypeVar("T")


class GitLabApi:
    """GET requests for one project through python-gitlab, with a bounded 429 wait."""

    def __init__(
        self,
        base_url: str,
        project: str,
        token: str,
        token_env: str,
        budget: WaitBudget,
        on_request: Callable[[], None] = lambda: None,
    ) -> None:
        self.project = project
        self.token_env = token_env
        self.budget = budget
        self.prefix = f"/projects/{quote(project, safe='')}"
        self._on_request = on_request
        self._last_headers: dict[str, str] = {}
        self.gl = gitlab.Gitlab(
            url=base_url,
            private_token=token,
            retry_transient_errors=True,
            timeout=30,
            per_page=PER_PAGE,
        )
        self.gl.session.hooks["response"].append(self._seen)
        # obey_rate_limit off: python-gitlab would sleep whatever Retry-After says
        self._options = {"obey_rate_limit": False, "max_retries": SERVER_ERROR_ATTEMPTS - 1}

    def close(self) -> None:
        self.gl.session.close()

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._on_request()
        self._last_headers = dict(response.headers)

    def items(self, path: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following its `Link` pages one at a time."""
        pages = self._call(
            lambda: self.gl.http_list(
                self.prefix + path, query_data=query, iterator=True, **self._options
            ),
            path,
        )
        while True:
            try:
                # a failed page leaves the iterator on it, so calling next() again retries it
                item = self._call(pages.next, path)
            except StopIteration:
                return
            yield item

    def get(self, path: str, query: dict[str, Any]) -> Any:
        return self._call(
            lambda: self.gl.http_get(self.prefix + path, query_data=query, **self._options), path
        )

    def _call(self, fetch: Callable[[], T], path: str) -> T:
        where = f"gitlab {self.project}"
        while True:
            try:
                return fetch()
            except GitlabAuthenticationError:
                raise UserError(
                    f"{where}: the token in {self.token_env} was rejected (401): check that it"
                    f" is valid and not expired ({SCOPE_HINT})"
                ) from None
            except GitlabHttpError as exc:
                if exc.response_code == 429:
                    self.budget.wait_for_rate_limit(rate_limit_wait(self._last_headers), where)
                    continue
                raise self._error(exc.response_code, path, str(exc.error_message)) from None
            except requests.RequestException as exc:
                raise UserError(
                    f"{where}: cannot reach the API ({type(exc).__name__}); check base_url"
                ) from None

    def _error(self, status: int | None, path: str, message: str) -> UserError:
        where = f"gitlab {self.project}"
        if status == 404:
            return NotFound(
                f"{where}: {path} not found (404): check `repo` (group/project path or id) and"
                f" `base_url`; a private project also answers 404 when the token in"
                f" {self.token_env} cannot see it ({SCOPE_HINT})"
            )
        if status == 403:
            return UserError(
                f"{where}: access to {path} denied (403): the token in {self.token_env} needs"
                f" {SCOPE_HINT}"
            )
        return UserError(f"{where}: GitLab answered {status} for {path}: {message}")


@register("gitlab")
class GitLabCollector:
    """Collects one service's GitLab project (gitlab.com or self-managed)."""

    source = "gitlab"

    def __init__(self, service: ServiceConfig, tenant: TenantConfig) -> None:
        self.service = service
        self.tenant = tenant
        self.config = service.source
        project = (self.config.repo or "").strip().strip("/")
        if not _PROJECT.match(project):
            raise UserError(
                f"service {service.name!r}: source.repo must be a GitLab project path"
                f" 'group/project' or a numeric id (got {project!r})"
            )
        self.project = project
        base = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.base_url = base.removesuffix("/api/v4")
        self.api: GitLabApi | None = None

    def repo_key(self) -> str:
        host = urlparse(self.base_url).netloc or self.base_url
        return f"{host}/{self.project}"

    def sync(self, ctx: SyncContext) -> None:
        """Deployments, then merged MRs, then incidents; stop (cursor kept) on a rate limit."""
        access = HostAccess.of(ctx, self.service, "GitLab")
        self.api = GitLabApi(
            self.base_url,
            self.project,
            access.token,
            access.token_env,
            access.budget,
            access.count,
        )
        steps = [
            *(
                functools.partial(self._sync_deployments, ctx, environment)
                for environment in self.config.environments or [None]
            ),
            lambda: self._sync_merge_requests(ctx),
            lambda: self._sync_incidents(ctx),
        ]
        run_until_rate_limited(ctx, self.api, steps)

    def remap(self, ctx: SyncContext) -> None:
        """Re-derive every event from the stored raw payloads: no request, no token needed."""
        for kind, events in self.raw_events(ctx).items():
            ctx.commit(kind, events)

    def raw_events(self, ctx: SyncContext) -> dict[str, list[AnyEvent]]:
        """The events the stored raw payloads map to, per cursor kind (no request)."""
        streams = [f"deployments:{e or '*'}" for e in self.config.environments or [None]]
        name = self.service.name
        where = f"gitlab {self.project}"
        mapped: dict[str, list[AnyEvent]] = {}
        for kind, payloads in stored_payloads(ctx, [*streams, "changes", "incidents"]).items():
            events: list[AnyEvent] = mapped.setdefault(kind, [])
            for key, raw in payloads:
                build: Callable[[], AnyEvent | None]
                if kind == "changes":
                    record, what = "change", f"{where} merge request !{key}"
                    build = functools.partial(
                        map_merge_request, name, raw["merge_request"], raw["commits"], raw["notes"]
                    )
                elif kind == "incidents":
                    record, what = "incident", f"{where} issue #{key}"
                    build = functools.partial(map_incident, name, raw)
                else:
                    compare = raw["compare_commits"]
                    events += checked_commits(ctx, where, compare or [], "id", self._map_commits)
                    record, what = "deployment", f"{where} deployment {key}"
                    build = functools.partial(map_deployment, name, raw["deployment"], compare)
                event = checked(ctx, record, what, build)
                events += [event] if event is not None else []
        return mapped

    def _map_commits(self, commits: list[dict[str, Any]]) -> list[AnyEvent]:
        return list(map_commits(self.service.name, commits))

    def _sync_deployments(self, ctx: SyncContext, environment: str | None) -> None:
        """Deployments updated since the cursor; each new success ships the commits since the
        previous success (repository compare). The list is in `updated_at` order, not id
        order, so a deployment listed again is skipped only when it is already stored with
        the same finished status (a re-store would drop its shipped commits)."""
        assert self.api is not None
        kind = f"deployments:{environment or '*'}"
        value = ctx.cursor(kind) or {}
        cursor = UpdatedCursor(value)
        state = {
            "last_success_id": int(value.get("last_success_id", 0)),
            "last_success_sha": value.get("last_success_sha"),
        }
        query: dict[str, Any] = {"order_by": "updated_at", "sort": "asc", "per_page": PER_PAGE}
        if environment:
            query["environment"] = environment
        if cursor.updated_at:
            query["updated_after"] = cursor.updated_at

        def dump() -> dict[str, Any]:
            return {**cursor.dump(), **state}

        with Batch(ctx, kind) as batch:
            for deployment in self.api.items("/deployments", query):
                dep_id = int(deployment["id"])
                if not cursor.is_new(deployment["updated_at"], str(dep_id)):
                    continue
                cursor.advance(deployment["updated_at"], str(dep_id))
                env_name = str((deployment.get("environment") or {}).get("name", ""))
                if environment is None and not self.service.is_production(env_name):
                    continue
                status = deployment_status(deployment)
                if status is not DeploymentStatus.IN_PROGRESS and (
                    self._stored_status(ctx, dep_id) == status.value
                ):
                    continue
                shipped = None
                ships = status is DeploymentStatus.SUCCESS and dep_id > state["last_success_id"]
                if ships and state["last_success_sha"]:
                    shipped = self._compare(state["last_success_sha"], deployment["sha"])
                raw = {"deployment": deployment, "compare_commits": shipped}
                event = checked(
                    ctx,
                    "deployment",
                    f"gitlab {self.project} deployment {dep_id}",
                    functools.partial(map_deployment, self.service.name, deployment, shipped),
                )
                if event is None:
                    # refused: not the new "previous success", the next valid one ships its
                    # commits; the raw payload is kept for a remap after a mapping fix
                    batch.add([], dump(), [(str(dep_id), raw)])
                    continue
                if ships:
                    state["last_success_id"] = dep_id
                    state["last_success_sha"] = deployment["sha"]
                commits = checked_commits(
                    ctx, f"gitlab {self.project}", shipped or [], "id", self._map_commits
                )
                batch.add([*commits, event], dump(), [(str(dep_id), raw)])
            batch.set_cursor(dump())

    def _stored_status(self, ctx: SyncContext, dep_id: int) -> str | None:
        """The status this deployment is stored with, if it is stored."""
        with unit_of_work(ctx.engine) as session:
            repo = TenantRepository.open(session, ctx.tenant.name, create=True)
            service = repo.service(self.service.name)
            if service is None:
                return None
            return session.scalar(
                select(Deployment.status).where(
                    Deployment.tenant_id == repo.tenant_id,
                    Deployment.service_id == service.id,
                    Deployment.external_id == str(dep_id),
                )
            )

    def _compare(self, base: str, head: str) -> list[dict[str, Any]] | None:
        """Commits in `head` and not in `base`; None (unknown) when a sha is gone (404)."""
        assert self.api is not None
        if base == head:
            return []  # a redeploy of the same sha ships nothing
        try:
            result = self.api.get("/repository/compare", {"from": base, "to": head})
        except NotFound:
            log.warning(
                "gitlab %s: cannot compare %s...%s (404); commits unknown",
                self.project,
                base[:12],
                head[:12],
            )
            return None
        return list(result.get("commits", []))

    def _sync_merge_requests(self, ctx: SyncContext) -> None:
        """Merged MRs by `updated_after` (there is no `merged_after`) with commits and notes."""
        assert self.api is not None
        kind = "changes"
        cursor = UpdatedCursor(ctx.cursor(kind))
        query: dict[str, Any] = {
            "state": "merged",
            "order_by": "updated_at",
            "sort": "asc",
            "per_page": PER_PAGE,
        }
        if cursor.updated_at:
            query["updated_after"] = cursor.updated_at
        with Batch(ctx, kind) as batch:
            for merge_request in self.api.items("/merge_requests", query):
                iid = int(merge_request["iid"])
                if not cursor.is_new(merge_request["updated_at"], str(iid)):
                    continue
                cursor.advance(merge_request["updated_at"], str(iid))
                if not merge_request.get("merged_at"):
                    continue
                commits = list(
                    self.api.items(f"/merge_requests/{iid}/commits", {"per_page": PER_PAGE})
                )
                notes = list(
                    self.api.items(
                        f"/merge_requests/{iid}/notes",
                        {"sort": "asc", "order_by": "created_at", "per_page": PER_PAGE},
                    )
                )
                event = checked(
                    ctx,
                    "change",
                    f"gitlab {self.project} merge request !{iid}",
                    functools.partial(
                        map_merge_request, self.service.name, merge_request, commits, notes
                    ),
                )
                raw = {"merge_request": merge_request, "commits": commits, "notes": notes}
                batch.add([event] if event else [], cursor.dump(), [(str(iid), raw)])
            batch.set_cursor(cursor.dump())

    def _sync_incidents(self, ctx: SyncContext) -> None:
        """Incidents by `updated_after`, committed 100 at a time.

        The first sync lists issues of type incident; later ones list every issue updated
        since the cursor and map each like the webhook does (type incident or the incident
        label), so an issue that stopped being an incident or moved away is removed.
        """
        assert self.api is not None
        kind = "incidents"
        cursor = UpdatedCursor(ctx.cursor(kind))
        query: dict[str, Any] = {
            "scope": "all",
            "order_by": "updated_at",
            "sort": "asc",
            "per_page": PER_PAGE,
        }
        label: str | None = None
        if cursor.updated_at:
            query["updated_after"] = cursor.updated_at
            label = self.config.incident_label
        else:
            query["issue_type"] = "incident"
        with Batch(ctx, kind, size=INCIDENT_BATCH) as batch:
            for issue in self.api.items("/issues", query):
                if not cursor.is_new(issue["updated_at"], str(issue["iid"])):
                    continue
                cursor.advance(issue["updated_at"], str(issue["iid"]))
                try:
                    event = map_incident(self.service.name, issue, label)
                except ValueError as exc:  # refused by the event model: skip it, keep the rest
                    what = f"gitlab {self.project} issue #{issue['iid']}"
                    ctx.skip("incident", what, refusal(exc))
                    batch.add([], cursor.dump())
                    continue
                if event is None:
                    batch.add([], cursor.dump(), removed_incidents=[str(issue["iid"])])
                    continue
                batch.add([event], cursor.dump(), [(str(issue["iid"]), issue)])
            batch.set_cursor(cursor.dump())
