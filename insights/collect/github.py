"""GitHub collector: deployments (or workflow runs), shipped commits, merged PRs and incidents.

Fetching goes through PyGithub's requester (auth, GHE base URL, token masking in its logs) with
explicit conditional headers, because PyGithub's list calls take no ETag: every first list
page is sent with the ETag of the last complete sync, so an unchanged repository answers 304s
that cost no rate limit. Mapping API JSON to canonical events is in `insights.collect.github_map`
(pure functions); the raw payloads are stored so a mapping fix re-derives without re-fetching.

Per sync and repository the requests are: ceil(N/100) pages per list, plus per new item only
what the list does not carry: a deployment's statuses (the list has no state), a compare per
successful deployment (its shipped commits, 100 a page), a merged PR's commits and reviews
(`pulls/{n}/commits` stops at 250 commits; the merge sha still links such a PR).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

import requests
from github import Auth, Github
from github.Requester import Requester

from insights.collect.events import AnyEvent
from insights.collect.github_map import (
    deployment_outcome,
    is_deploy_run,
    map_commits,
    map_deployment,
    map_issue,
    map_pull,
    map_workflow_run,
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

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.github.com"
PER_PAGE = 100
PENDING_LIMIT = 50  # running deployments re-checked (conditionally) each sync
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
SCOPES_HINT = (
    "fine-grained token: read access to Metadata, Contents, Deployments, Pull requests, Issues"
    " and Actions; classic token: `repo` (or `public_repo` for public repositories)"
)


@dataclass
class Page:
    """One HTTP answer: 304 (`not_modified`) or a decoded JSON body with its headers."""

    status: int
    data: Any
    headers: dict[str, str]

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def next_url(self) -> str | None:
        match = _LINK_NEXT.search(self.headers.get("link", ""))
        return match.group(1) if match else None


class GitHubApi:
    """GET requests for one repository: conditional, rate-limit aware, retried on 5xx."""

    def __init__(
        self,
        base_url: str,
        repo: str,
        token: str,
        token_env: str,
        budget: WaitBudget,
        on_request: Callable[[], None] = lambda: None,
    ) -> None:
        self.repo = repo
        self.token_env = token_env
        self.budget = budget
        self._on_request = on_request
        # retry=0: rate limits and 5xx are handled here, within the sync's wait budget
        self._github = Github(
            base_url=base_url,
            auth=Auth.Token(token),
            per_page=PER_PAGE,
            retry=0,
            timeout=30,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self._requester: Requester = self._github.requester
        self._exhausted_until: float | None = None

    def close(self) -> None:
        self._github.close()

    def get(self, url: str, params: dict[str, Any] | None = None, etag: str | None = None) -> Page:
        """GET `url` (a path under the base URL, or a `Link` URL); 304 when `etag` still holds."""
        where = f"github {self.repo}"
        headers = {"Accept": "application/vnd.github+json"}
        if etag:
            headers["If-None-Match"] = etag
        attempt = 0
        while True:
            attempt += 1
            if self._exhausted_until is not None:
                # the last answer said no request is left: wait for the reset (or stop) first
                wait, self._exhausted_until = self._exhausted_until - time.time(), None
                if wait > 0:
                    self.budget.wait_for_rate_limit(wait, where)
            try:
                status, answer_headers, body = self._requester.requestJson(
                    "GET", url, dict(params or {}), dict(headers)
                )
            except requests.RequestException as exc:
                self._on_request()
                if attempt >= SERVER_ERROR_ATTEMPTS:
                    raise UserError(
                        f"{where}: cannot reach the API ({type(exc).__name__}); check base_url"
                    ) from None
                self.budget.backoff(attempt, where, type(exc).__name__)
                continue
            self._on_request()
            answer_headers = {k.lower(): v for k, v in answer_headers.items()}
            if status == 304:
                return Page(304, None, answer_headers)
            if 200 <= status < 300:
                self._note_remaining(answer_headers)
                return Page(status, json.loads(body) if body else None, answer_headers)
            message = _message(body)
            if _rate_limited(status, answer_headers, message):
                self.budget.wait_for_rate_limit(rate_limit_wait(answer_headers), where)
                continue
            if status >= 500 and attempt < SERVER_ERROR_ATTEMPTS:
                self.budget.backoff(attempt, where, status)
                continue
            raise self._error(status, url, message)

    def _note_remaining(self, headers: dict[str, str]) -> None:
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            try:
                self._exhausted_until = float(headers["x-ratelimit-reset"])
            except ValueError:
                self._exhausted_until = None

    def pages(
        self, url: str, params: dict[str, Any] | None = None, etag: str | None = None
    ) -> Iterator[Page]:
        """The first page (conditional on `etag`) and, unless it is a 304, the `Link` pages."""
        page = self.get(url, params, etag)
        yield page
        while not page.not_modified and page.next_url:
            page = self.get(page.next_url)
            yield page

    def _error(self, status: int, url: str, message: str) -> UserError:
        path = urlparse(url).path or url
        where = f"github {self.repo}"
        if status == 401:
            return UserError(
                f"{where}: the token in {self.token_env} was rejected (401 {message or 'Bad'}"
                " credentials): check that it is valid and not expired"
            )
        if status == 404:
            return NotFound(
                f"{where}: {path} not found (404): check `repo` (owner/name) and, for workflow"
                f" runs, `workflow`; a private repository also answers 404 when the token in"
                f" {self.token_env} cannot read it ({SCOPES_HINT})"
            )
        if status == 403:
            return UserError(
                f"{where}: access to {path} denied (403 {message}): the token in"
                f" {self.token_env} needs {SCOPES_HINT}"
            )
        return UserError(f"{where}: GitHub answered {status} for {path}: {message}")


def _message(body: str) -> str:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def _rate_limited(status: int, headers: dict[str, str], message: str) -> bool:
    """GitHub's primary and secondary limits: 429, or 403 with limit headers or message."""
    if status == 429:
        return True
    if status != 403:
        return False
    return (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or Requester.isRateLimitError(message)
    )


@register("github")
class GitHubCollector:
    """Collects one service's GitHub repository (github.com or GitHub Enterprise Server)."""

    source = "github"

    def __init__(self, service: ServiceConfig, tenant: TenantConfig) -> None:
        self.service = service
        self.tenant = tenant
        self.config = service.source
        repo = (self.config.repo or "").strip()
        if not _REPO.match(repo):
            raise UserError(
                f"service {service.name!r}: source.repo must be 'owner/name' (got {repo!r})"
            )
        self.repo = repo
        self.base_url = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api: GitHubApi | None = None

    def repo_key(self) -> str:
        host = urlparse(self.base_url).netloc or self.base_url
        return f"{host}/{self.repo}"

    def sync(self, ctx: SyncContext) -> None:
        """Deployments (or workflow runs), then merged PRs, then incidents; stop on rate limit."""
        access = HostAccess.of(ctx, self.service, "GitHub")
        self.api = GitHubApi(
            self.base_url, self.repo, access.token, access.token_env, access.budget, access.count
        )
        if self.config.workflow:
            deployments = [lambda: self._sync_workflow_runs(ctx)]
        else:
            deployments = [
                functools.partial(self._sync_deployments, ctx, environment)
                for environment in self.config.environments or [None]
            ]
        steps = [*deployments, lambda: self._sync_pulls(ctx), lambda: self._sync_incidents(ctx)]
        run_until_rate_limited(ctx, self.api, steps)

    def remap(self, ctx: SyncContext) -> None:
        """Re-derive every event from the stored raw payloads: no request, no token needed."""
        for kind, events in self.raw_events(ctx).items():
            ctx.commit(kind, events)

    def raw_events(self, ctx: SyncContext) -> dict[str, list[AnyEvent]]:
        """The events the stored raw payloads map to, per cursor kind (no request)."""
        environment = self.config.environments[0] if self.config.environments else None
        name = self.service.name
        mapped: dict[str, list[AnyEvent]] = {}
        for kind, payloads in stored_payloads(ctx, self._raw_kinds()).items():
            events: list[AnyEvent] = mapped.setdefault(kind, [])
            for key, raw in payloads:
                build: Callable[[], AnyEvent | None]
                if kind == "changes":
                    what = f"github {self.repo} pull request #{key}"
                    build = functools.partial(
                        map_pull, name, raw["pull"], raw["commits"], raw["reviews"]
                    )
                    record = "change"
                elif kind == "incidents":
                    what = f"github {self.repo} issue #{key}"
                    build = functools.partial(map_issue, name, raw, self.config.incident_label)
                    record = "incident"
                else:
                    compare = raw["compare_commits"]
                    events += checked_commits(
                        ctx, f"github {self.repo}", compare or [], "sha", self._map_commits
                    )
                    record = "deployment"
                    if raw["statuses"] is None:
                        what = f"github {self.repo} workflow run {key}"
                        build = functools.partial(
                            map_workflow_run, name, raw["deployment"], environment, compare
                        )
                    else:
                        what = f"github {self.repo} deployment {key}"
                        build = functools.partial(
                            map_deployment, name, raw["deployment"], raw["statuses"], compare
                        )
                event = checked(ctx, record, what, build)
                events += [event] if event is not None else []
        return mapped

    def _map_commits(self, commits: list[dict[str, Any]]) -> list[AnyEvent]:
        return list(map_commits(self.service.name, commits))

    def _raw_kinds(self) -> list[str]:
        if self.config.workflow:
            streams = ["workflow_runs"]
        else:
            streams = [f"deployments:{e or '*'}" for e in self.config.environments or [None]]
        return [*streams, "changes", "incidents"]

    # -- deployments -------------------------------------------------------------------------

    @property
    def _path(self) -> str:
        return f"/repos/{self.repo}"

    def _sync_deployments(self, ctx: SyncContext, environment: str | None) -> None:
        """Deployments of one environment (or of all, kept when production_pattern matches).

        The list is newest first with no state, so each new deployment needs its statuses;
        deployments still running are re-checked next sync with a conditional request.
        """
        assert self.api is not None
        kind = f"deployments:{environment or '*'}"
        cursor = ctx.cursor(kind) or {}
        params: dict[str, Any] = {"per_page": PER_PAGE}
        if environment:
            params["environment"] = environment
        max_id = int(cursor.get("max_id", 0))
        new, first_etag = self._new_items(
            f"{self._path}/deployments",
            params,
            cursor.get("etag"),
            lambda item: int(item["id"]) > max_id,
        )
        state = _DeployState.load(cursor)
        queue = [(p["deployment"], p.get("etag")) for p in state.pending.values()]
        queue += [(item, None) for item in new]
        with Batch(ctx, kind) as batch:
            for deployment, etag in sorted(queue, key=lambda pair: int(pair[0]["id"])):
                dep_id = int(deployment["id"])
                state.max_id = max(state.max_id, dep_id)
                if environment is None and not self.service.is_production(
                    str(deployment.get("environment", ""))
                ):
                    continue
                try:
                    page = self.api.get(
                        f"{self._path}/deployments/{dep_id}/statuses", {"per_page": PER_PAGE}, etag
                    )
                except NotFound:  # deleted since it was listed
                    state.pending.pop(str(dep_id), None)
                    continue
                if page.not_modified:
                    continue
                statuses = page.data or []
                status, _ = deployment_outcome(statuses)
                if status is DeploymentStatus.IN_PROGRESS:
                    state.pending[str(dep_id)] = {"deployment": deployment, "etag": page.etag}
                    for stale in sorted(state.pending, key=int)[:-PENDING_LIMIT]:
                        del state.pending[stale]  # never finished: stop re-checking the oldest
                else:
                    state.pending.pop(str(dep_id), None)
                events, raw = self._ship(
                    ctx, state, dep_id, str(deployment["sha"]), status, deployment, statuses
                )
                batch.add(events, state.dump(None), raw)
            batch.set_cursor(state.dump(first_etag))

    def _sync_workflow_runs(self, ctx: SyncContext) -> None:
        """Successful runs of `source.workflow` on the default branch count as deployments."""
        assert self.api is not None and self.config.workflow
        kind = "workflow_runs"
        cursor = ctx.cursor(kind) or {}
        repo_page = self.api.get(self._path, etag=cursor.get("repo_etag"))
        if repo_page.not_modified:
            branch = cursor["default_branch"]
        else:
            branch = repo_page.data["default_branch"]
        max_id = int(cursor.get("max_id", 0))
        workflow = quote(self.config.workflow, safe="")
        new, first_etag = self._new_items(
            f"{self._path}/actions/workflows/{workflow}/runs",
            {"branch": branch, "status": "success", "per_page": PER_PAGE},
            cursor.get("etag"),
            lambda run: int(run["id"]) > max_id,
            key="workflow_runs",
        )
        state = _DeployState.load(cursor)
        state.extra = {
            "repo_etag": repo_page.etag or cursor.get("repo_etag"),
            "default_branch": branch,
        }
        with Batch(ctx, kind) as batch:
            for run in sorted(new, key=lambda r: int(r["id"])):
                state.max_id = max(state.max_id, int(run["id"]))
                if not is_deploy_run(run, self.config.workflow, branch):
                    continue
                events, raw = self._ship(
                    ctx,
                    state,
                    int(run["id"]),
                    str(run["head_sha"]),
                    DeploymentStatus.SUCCESS,
                    run,
                    None,
                )
                batch.add(events, state.dump(None), raw)
            batch.set_cursor(state.dump(first_etag))

    def _ship(
        self,
        ctx: SyncContext,
        state: _DeployState,
        dep_id: int,
        sha: str,
        status: DeploymentStatus,
        payload: dict[str, Any],
        statuses: list[dict[str, Any]] | None,
    ) -> tuple[list[AnyEvent], list[tuple[str, dict[str, Any]]]]:
        """One deployment's events: it and the commits it shipped since the previous success.

        A deployment the event model refuses is skipped (its raw payload is still kept) and
        is not the new "previous success": the next valid one ships its commits instead.
        """
        compare: list[dict[str, Any]] | None = None
        ships = status is DeploymentStatus.SUCCESS and dep_id > state.last_success_id
        if ships and state.last_success_sha is not None:
            compare = self._compare(state.last_success_sha, sha)
        build: Callable[[], AnyEvent]
        if statuses is None:
            environment = self.config.environments[0] if self.config.environments else None
            what = f"github {self.repo} workflow run {dep_id}"
            build = functools.partial(
                map_workflow_run, self.service.name, payload, environment, compare
            )
        else:
            what = f"github {self.repo} deployment {dep_id}"
            build = functools.partial(map_deployment, self.service.name, payload, statuses, compare)
        raw = [
            (str(dep_id), {"deployment": payload, "statuses": statuses, "compare_commits": compare})
        ]
        event = checked(ctx, "deployment", what, build)
        if event is None:
            return [], raw
        if ships:
            state.last_success_id, state.last_success_sha = dep_id, sha
        commits = checked_commits(
            ctx, f"github {self.repo}", compare or [], "sha", self._map_commits
        )
        return [*commits, event], raw

    def _compare(self, base: str, head: str) -> list[dict[str, Any]] | None:
        """Commits reachable from `head` and not from `base`, oldest first, every page.

        None (shipped commits unknown) when GitHub no longer has one of the shas, e.g. after a
        force-push: the deployment is still stored, it only lists no commits.
        """
        assert self.api is not None
        if base == head:
            return []  # a redeploy of the same sha ships nothing
        commits: list[dict[str, Any]] = []
        try:
            for page in self.api.pages(
                f"{self._path}/compare/{base}...{head}", {"per_page": PER_PAGE}
            ):
                commits.extend(page.data.get("commits", []))
        except NotFound:
            log.warning(
                "github %s: cannot compare %s...%s (404); commits unknown",
                self.repo,
                base[:12],
                head[:12],
            )
            return None
        return commits

    def _new_items(
        self,
        url: str,
        params: dict[str, Any],
        etag: str | None,
        is_new: Callable[[dict[str, Any]], bool],
        key: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Items of a newest-first list until the first one already synced.

        Returns the new items and the first page's ETag, or ([], etag) when it answered 304.
        """
        assert self.api is not None
        items: list[dict[str, Any]] = []
        first_etag = etag
        for number, page in enumerate(self.api.pages(url, params, etag)):
            if page.not_modified:
                return [], etag
            if number == 0:
                first_etag = page.etag
            rows = page.data[key] if key else page.data
            fresh = [row for row in rows if is_new(row)]
            items.extend(fresh)
            if len(fresh) < len(rows):
                break
        return items, first_etag

    # -- pull requests -----------------------------------------------------------------------

    def _sync_pulls(self, ctx: SyncContext) -> None:
        """Merged PRs with their commits and reviews, by `updated_at` (no merged filter)."""
        assert self.api is not None
        kind = "changes"
        value = ctx.cursor(kind) or {}
        cursor = UpdatedCursor(value)
        listed, first_etag = self._new_items(
            f"{self._path}/pulls",
            {"state": "closed", "sort": "updated", "direction": "desc", "per_page": PER_PAGE},
            value.get("etag"),
            lambda pr: cursor.is_new(pr["updated_at"], str(pr["number"])),
        )
        with Batch(ctx, kind) as batch:
            for pull in sorted(listed, key=lambda pr: (pr["updated_at"], pr["number"])):
                cursor.advance(pull["updated_at"], str(pull["number"]))
                if not pull.get("merged_at"):
                    continue
                number = pull["number"]
                commits = self._all(f"{self._path}/pulls/{number}/commits")
                reviews = self._all(f"{self._path}/pulls/{number}/reviews")
                event = checked(
                    ctx,
                    "change",
                    f"github {self.repo} pull request #{number}",
                    functools.partial(map_pull, self.service.name, pull, commits, reviews),
                )
                raw = {"pull": pull, "commits": commits, "reviews": reviews}
                batch.add([event] if event else [], cursor.dump(), [(str(number), raw)])
            batch.set_cursor(cursor.dump(first_etag))

    def _all(self, url: str) -> list[dict[str, Any]]:
        """Every item of a small list (an item's commits or reviews), all pages."""
        assert self.api is not None
        items: list[dict[str, Any]] = []
        for page in self.api.pages(url, {"per_page": PER_PAGE}):
            items.extend(page.data)
        return items

    # -- incidents ---------------------------------------------------------------------------

    def _sync_incidents(self, ctx: SyncContext) -> None:
        """Issues with `incident_label` (pull requests in the issues list are skipped).

        The first sync lists only labelled issues; later ones list every issue updated since
        the cursor, so an issue that lost the label stops being an incident (deleted and
        transferred issues leave the list: the `issues` webhook reports those).
        """
        assert self.api is not None
        kind = "incidents"
        value = ctx.cursor(kind) or {}
        cursor = UpdatedCursor(value)
        params: dict[str, Any] = {
            "state": "all",
            "sort": "updated",
            "direction": "desc",
            "per_page": PER_PAGE,
        }
        if cursor.updated_at is None:
            params["labels"] = self.config.incident_label
        listed, first_etag = self._new_items(
            f"{self._path}/issues",
            params,
            value.get("etag"),
            lambda issue: cursor.is_new(issue["updated_at"], str(issue["number"])),
        )
        events = []
        raw = []
        gone = []
        for issue in listed:
            cursor.advance(issue["updated_at"], str(issue["number"]))
            try:
                event = map_issue(self.service.name, issue, self.config.incident_label)
            except ValueError as exc:  # refused by the event model: skip it, keep the rest
                ctx.skip("incident", f"github {self.repo} issue #{issue['number']}", refusal(exc))
                continue
            if event is not None:
                events.append(event)
                raw.append((str(issue["number"]), issue))
            elif "pull_request" not in issue:
                gone.append(str(issue["number"]))
        ctx.commit(kind, events, cursor=cursor.dump(first_etag), raw=raw, removed_incidents=gone)


@dataclass
class _DeployState:
    """Cursor of a deployment stream: newest id seen, last success, still-running ones."""

    max_id: int
    last_success_id: int
    last_success_sha: str | None
    pending: dict[str, dict[str, Any]]
    extra: dict[str, Any]

    @classmethod
    def load(cls, value: dict[str, Any]) -> _DeployState:
        return cls(
            max_id=int(value.get("max_id", 0)),
            last_success_id=int(value.get("last_success_id", 0)),
            last_success_sha=value.get("last_success_sha"),
            pending=dict(value.get("pending", {})),
            extra={k: value[k] for k in ("repo_etag", "default_branch") if k in value},
        )

    def dump(self, etag: str | None) -> dict[str, Any]:
        return {
            "max_id": self.max_id,
            "last_success_id": self.last_success_id,
            "last_success_sha": self.last_success_sha,
            "pending": self.pending,
            "etag": etag,
            **self.extra,
        }
