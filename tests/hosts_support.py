"""Local GitHub and GitLab servers for collector tests, speaking each API's real wire format.

Objects carry the fields the public REST docs show (trimmed of URLs we never read), lists are
paginated with `per_page`/`page` and a `Link` header (GitLab also sends its `X-Page`/`X-Total`
headers), GitHub answers `If-None-Match` with 304, both send their rate-limit headers, and a
test can script faults (429, 403, 502) for the next matching requests.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    """ISO time `minutes` after the base time, as GitHub writes it."""
    return (BASE_TIME + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def gl_at(minutes: float) -> str:
    """ISO time as GitLab writes it (milliseconds, Z)."""
    return (BASE_TIME + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def sha_of(n: int) -> str:
    return hashlib.sha1(f"commit-{n}".encode()).hexdigest()


@dataclass
class Fault:
    """Answer the next `times` requests whose path matches `path` with this response."""

    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    times: int = 1


@dataclass
class Seen:
    """One request the fake server answered."""

    path: str
    query: dict[str, str]
    status: int
    conditional: bool


class _FakeHost:
    prefix = ""

    def __init__(self, server: HTTPServer, token: str) -> None:
        self.server = server
        self.token = token
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.remaining = 5000
        server.expect_request(re.compile(f"^{re.escape(self.prefix)}/.*")).respond_with_handler(
            self._handle
        )

    @property
    def url(self) -> str:
        return self.server.url_for(self.prefix).rstrip("/")

    def fail(
        self,
        path: str,
        status: int,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        self.faults.append(Fault(path, status, headers or {}, body or {}, times))

    def reset_log(self) -> None:
        self.seen.clear()

    def _handle(self, request: Request) -> Response:
        path = unquote(request.path)
        query = {k: v for k, v in request.args.items()}
        conditional = "If-None-Match" in request.headers
        response = self._respond(request, path, query)
        self.seen.append(Seen(path, query, response.status_code, conditional))
        return response

    def _respond(self, request: Request, path: str, query: dict[str, str]) -> Response:
        if not self._authorised(request):
            return self._error(401, {"message": "Bad credentials"})
        for fault in self.faults:
            if fault.times > 0 and re.search(fault.path, path):
                fault.times -= 1
                return Response(
                    json.dumps(fault.body),
                    fault.status,
                    {"Content-Type": "application/json", **fault.headers},
                )
        return self.route(request, path[len(self.prefix) :], query)

    def _authorised(self, request: Request) -> bool:
        raise NotImplementedError

    def route(self, request: Request, path: str, query: dict[str, str]) -> Response:
        raise NotImplementedError

    def _error(self, status: int, body: dict[str, Any]) -> Response:
        return Response(json.dumps(body), status, {"Content-Type": "application/json"})

    def _paginate(
        self,
        request: Request,
        items: list[Any],
        query: dict[str, str],
        wrap: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        per_page = min(int(query.get("per_page", self.default_per_page)), 100)
        page = int(query.get("page", 1))
        total_pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        body: Any = chunk
        if wrap:
            body = {"total_count": len(items), wrap: chunk}
        if extra:
            body = {**extra, **(body if isinstance(body, dict) else {})}
        links = []
        base = self.server.url_for(request.path)

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({**query, "page": number})}>; rel="{rel}"'

        if page < total_pages:
            links += [link(page + 1, "next"), link(total_pages, "last")]
        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        headers = {"Link": ", ".join(links)} if links else {}
        headers.update(self.page_headers(page, per_page, len(items), total_pages))
        return self._json(request, body, headers)

    default_per_page = 30

    def page_headers(self, page: int, per_page: int, total: int, pages: int) -> dict[str, str]:
        return {}

    def _json(self, request: Request, body: Any, headers: dict[str, str]) -> Response:
        text = json.dumps(body)
        return Response(text, 200, {"Content-Type": "application/json; charset=utf-8", **headers})


class FakeGitHub(_FakeHost):
    """GitHub Enterprise style REST API under `/api/v3` for one repository."""

    prefix = "/api/v3"

    def __init__(self, server: HTTPServer, repo: str = "acme/shop", token: str = "ghp_t0ps3cret"):
        self.repo = repo
        self.default_branch = "main"
        self.history: list[dict[str, Any]] = []  # linear commit history, oldest first
        self.deployments: list[dict[str, Any]] = []
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.pull_commits: dict[int, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.issues: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.workflow = "deploy.yml"
        super().__init__(server, token)

    # -- building data -----------------------------------------------------------------------

    def add_commits(self, count: int, minutes_apart: float = 1.0) -> list[str]:
        """Append `count` commits to the linear history; returns their shas."""
        shas = []
        for _ in range(count):
            n = len(self.history)
            parent = [{"sha": self.history[-1]["sha"], "url": "…"}] if self.history else []
            sha = sha_of(n)
            person = {"name": "Dev", "email": "dev@example.com", "date": at(n * minutes_apart)}
            self.history.append(
                {
                    "sha": sha,
                    "node_id": f"C_{n}",
                    "commit": {
                        "author": person,
                        "committer": person,
                        "message": f"change {n}",
                        "tree": {"sha": sha, "url": "…"},
                        "comment_count": 0,
                    },
                    "author": {"login": "dev", "id": 1, "type": "User"},
                    "committer": {"login": "dev", "id": 1, "type": "User"},
                    "parents": parent,
                    "html_url": f"https://github.example/{self.repo}/commit/{sha}",
                }
            )
            shas.append(sha)
        return shas

    def add_deployment(
        self,
        sha: str,
        minutes: float,
        states: tuple[str, ...] = ("success",),
        environment: str = "production",
    ) -> int:
        dep_id = 1000 + len(self.deployments)
        self.deployments.append(
            {
                "url": f"https://api.github.example/repos/{self.repo}/deployments/{dep_id}",
                "id": dep_id,
                "node_id": f"DE_{dep_id}",
                "sha": sha,
                "ref": "main",
                "task": "deploy",
                "payload": {},
                "original_environment": environment,
                "environment": environment,
                "description": None,
                "creator": {"login": "deployer", "id": 7, "type": "Bot"},
                "created_at": at(minutes),
                "updated_at": at(minutes),
                "statuses_url": f"https://api.github.example/repos/{self.repo}/deployments/{dep_id}/statuses",
                "repository_url": f"https://api.github.example/repos/{self.repo}",
                "transient_environment": False,
                "production_environment": environment == "production",
            }
        )
        self.statuses[dep_id] = []
        for i, state in enumerate(states):
            self.set_status(dep_id, state, minutes + 5 + i)
        return dep_id

    def set_status(self, dep_id: int, state: str, minutes: float) -> None:
        statuses = self.statuses[dep_id]
        status_id = dep_id * 100 + len(statuses)
        statuses.insert(
            0,
            {  # newest first, as the API lists them
                "url": f"https://api.github.example/repos/{self.repo}/deployments/{dep_id}/statuses/{status_id}",
                "id": status_id,
                "node_id": f"DES_{status_id}",
                "state": state,
                "creator": {"login": "deployer", "id": 7, "type": "Bot"},
                "description": "",
                "environment": "production",
                "target_url": "",
                "log_url": "",
                "created_at": at(minutes),
                "updated_at": at(minutes),
                "deployment_url": f"https://api.github.example/repos/{self.repo}/deployments/{dep_id}",
                "repository_url": f"https://api.github.example/repos/{self.repo}",
            },
        )

    def add_pull(
        self,
        number: int,
        created: float,
        merged: float | None,
        commits: list[str],
        reviews: list[tuple[str, str, float]] = (),
        author: str = "dev",
    ) -> None:
        updated = merged if merged is not None else created + 30
        self.pulls.append(
            {
                "url": f"https://api.github.example/repos/{self.repo}/pulls/{number}",
                "id": 50000 + number,
                "node_id": f"PR_{number}",
                "number": number,
                "state": "closed",
                "locked": False,
                "title": f"Pull {number}",
                "user": {"login": author, "id": 1, "type": "User"},
                "body": "…",
                "labels": [],
                "created_at": at(created),
                "updated_at": at(updated),
                "closed_at": at(updated),
                "merged_at": at(merged) if merged is not None else None,
                "merge_commit_sha": sha_of(900000 + number) if merged is not None else None,
                "draft": False,
                "head": {"ref": f"feature-{number}", "sha": commits[-1] if commits else None},
                "base": {"ref": "main"},
                "author_association": "MEMBER",
            }
        )
        self.pull_commits[number] = [c for c in self.history if c["sha"] in set(commits)]
        self.reviews[number] = [
            {
                "id": 70000 + number * 10 + i,
                "node_id": f"PRR_{number}_{i}",
                "user": {"login": login, "id": 2 + i, "type": "User"},
                "body": "",
                "state": state,
                "html_url": "…",
                "pull_request_url": "…",
                "author_association": "MEMBER",
                "submitted_at": at(minutes),
                "commit_id": commits[-1] if commits else None,
            }
            for i, (login, state, minutes) in enumerate(reviews)
        ]

    def add_issue(
        self,
        number: int,
        opened: float,
        closed: float | None,
        labels: list[str],
        body: str = "",
        pull_request: bool = False,
    ) -> None:
        updated = closed if closed is not None else opened
        issue: dict[str, Any] = {
            "url": f"https://api.github.example/repos/{self.repo}/issues/{number}",
            "id": 80000 + number,
            "node_id": f"I_{number}",
            "number": number,
            "title": f"Issue {number}",
            "user": {"login": "oncall", "id": 9, "type": "User"},
            "labels": [
                {
                    "id": i,
                    "node_id": f"LA_{i}",
                    "name": name,
                    "color": "d73a4a",
                    "default": False,
                    "description": None,
                }
                for i, name in enumerate(labels)
            ],
            "state": "closed" if closed is not None else "open",
            "locked": False,
            "comments": 0,
            "created_at": at(opened),
            "updated_at": at(updated),
            "closed_at": at(closed) if closed is not None else None,
            "body": body,
            "author_association": "MEMBER",
        }
        if pull_request:
            issue["pull_request"] = {"url": "…", "html_url": "…", "merged_at": None}
        self.issues.append(issue)

    def add_run(
        self, sha: str, minutes: float, branch: str = "main", conclusion: str = "success"
    ) -> int:
        run_id = 30000 + len(self.runs)
        self.runs.append(
            {
                "id": run_id,
                "name": "Deploy",
                "node_id": f"WFR_{run_id}",
                "head_branch": branch,
                "head_sha": sha,
                "path": ".github/workflows/deploy.yml",
                "run_number": len(self.runs) + 1,
                "event": "push",
                "status": "completed",
                "conclusion": conclusion,
                "workflow_id": 161335,
                "created_at": at(minutes),
                "updated_at": at(minutes + 4),
                "run_started_at": at(minutes + 1),
                "run_attempt": 1,
            }
        )
        return run_id

    # -- serving -----------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth in (f"token {self.token}", f"Bearer {self.token}")

    def _error(self, status: int, body: dict[str, Any]) -> Response:
        body = {**body, "documentation_url": "https://docs.github.com/rest", "status": str(status)}
        return super()._error(status, body)

    def _json(self, request: Request, body: Any, headers: dict[str, str]) -> Response:
        text = json.dumps(body)
        etag = 'W/"' + hashlib.sha256(text.encode()).hexdigest()[:40] + '"'
        limits = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "ETag": etag,
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
        }
        if request.headers.get("If-None-Match") == etag:
            # a 304 to an authorised request does not count against the primary limit
            limits["X-RateLimit-Remaining"] = str(self.remaining)
            return Response(b"", 304, {**limits})
        self.remaining -= 1
        limits["X-RateLimit-Remaining"] = str(self.remaining)
        limits["X-RateLimit-Used"] = str(5000 - self.remaining)
        return Response(
            text, 200, {"Content-Type": "application/json; charset=utf-8", **limits, **headers}
        )

    def route(self, request: Request, path: str, query: dict[str, str]) -> Response:
        repo = f"/repos/{self.repo}"
        if not path.startswith(repo):
            return self._error(404, {"message": "Not Found"})
        rest = path[len(repo) :]
        if rest == "":
            return self._json(
                request,
                {
                    "id": 1,
                    "name": self.repo.split("/")[1],
                    "full_name": self.repo,
                    "private": True,
                    "default_branch": self.default_branch,
                },
                {},
            )
        if rest == "/deployments":
            env = query.get("environment")
            items = [d for d in reversed(self.deployments) if not env or d["environment"] == env]
            return self._paginate(request, items, query)
        if m := re.fullmatch(r"/deployments/(\d+)/statuses", rest):
            return self._paginate(request, self.statuses.get(int(m.group(1)), []), query)
        if m := re.fullmatch(r"/compare/([0-9a-f]+)\.\.\.([0-9a-f]+)", rest):
            return self._compare(request, m.group(1), m.group(2), query)
        if rest == "/pulls":
            items = sorted(self.pulls, key=lambda p: p["updated_at"], reverse=True)
            return self._paginate(request, items, query)
        if m := re.fullmatch(r"/pulls/(\d+)/(commits|reviews)", rest):
            source = self.pull_commits if m.group(2) == "commits" else self.reviews
            return self._paginate(request, source.get(int(m.group(1)), []), query)
        if rest == "/issues":
            label = query.get("labels")
            items = [
                i for i in self.issues if not label or label in {x["name"] for x in i["labels"]}
            ]
            items.sort(key=lambda i: i["updated_at"], reverse=True)
            return self._paginate(request, items, query)
        if m := re.fullmatch(r"/actions/workflows/([^/]+)/runs", rest):
            if m.group(1) != self.workflow:
                return self._error(404, {"message": "Not Found"})
            items = [
                r
                for r in reversed(self.runs)
                if r["head_branch"] == query.get("branch", r["head_branch"])
                and (query.get("status") != "success" or r["conclusion"] == "success")
            ]
            return self._paginate(request, items, query, wrap="workflow_runs")
        return self._error(404, {"message": "Not Found"})

    def _compare(self, request: Request, base: str, head: str, query: dict[str, str]) -> Response:
        index = {c["sha"]: i for i, c in enumerate(self.history)}
        if base not in index or head not in index:
            return self._error(404, {"message": "Not Found"})
        lo, hi = index[base], index[head]
        commits = self.history[lo + 1 : hi + 1]
        status = "identical" if lo == hi else ("ahead" if hi > lo else "behind")
        extra = {
            "url": f"https://api.github.example/repos/{self.repo}/compare/{base}...{head}",
            "status": status,
            "ahead_by": max(0, hi - lo),
            "behind_by": max(0, lo - hi),
            "total_commits": len(commits),
            "base_commit": self.history[lo],
            "merge_base_commit": self.history[min(lo, hi)],
            "files": [],
        }
        per_page = min(int(query.get("per_page", 250)), 100) if "per_page" in query else 250
        if "per_page" not in query and "page" not in query:
            return self._json(request, {**extra, "commits": commits[:per_page]}, {})
        response = self._paginate(request, commits, query, wrap="commits", extra=extra)
        return response


class FakeGitLab(_FakeHost):
    """GitLab REST API v4 for one project."""

    prefix = "/api/v4"
    default_per_page = 20

    def __init__(
        self, server: HTTPServer, project: str = "acme/shop", token: str = "glpat-t0ps3cret"
    ):
        self.project = project
        self.history: list[dict[str, Any]] = []
        self.deployments: list[dict[str, Any]] = []
        self.merge_requests: list[dict[str, Any]] = []
        self.mr_commits: dict[int, list[dict[str, Any]]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.issues: list[dict[str, Any]] = []
        super().__init__(server, token)

    def add_commits(self, count: int) -> list[str]:
        shas = []
        for _ in range(count):
            n = len(self.history)
            sha = sha_of(n)
            self.history.append(
                {
                    "id": sha,
                    "short_id": sha[:8],
                    "title": f"change {n}",
                    "message": f"change {n}\n",
                    "author_name": "Dev",
                    "author_email": "dev@example.com",
                    "authored_date": gl_at(n),
                    "committer_name": "Dev",
                    "committer_email": "dev@example.com",
                    "committed_date": gl_at(n),
                    "created_at": gl_at(n),
                    "parent_ids": [self.history[-1]["id"]] if self.history else [],
                    "web_url": f"https://gitlab.example/{self.project}/-/commit/{sha}",
                }
            )
            shas.append(sha)
        return shas

    def add_deployment(
        self, sha: str, minutes: float, status: str = "success", environment: str = "production"
    ) -> int:
        dep_id = 500 + len(self.deployments)
        commit = next(c for c in self.history if c["id"] == sha)
        self.deployments.append(
            {
                "id": dep_id,
                "iid": len(self.deployments) + 1,
                "ref": "main",
                "sha": sha,
                "created_at": gl_at(minutes),
                "updated_at": gl_at(minutes + 5),
                "finished_at": gl_at(minutes + 5)
                if status in ("success", "failed", "canceled")
                else None,
                "status": status,
                "user": {"id": 1, "name": "Administrator", "username": "root", "state": "active"},
                "environment": {"id": 9, "name": environment, "external_url": None},
                "deployable": {
                    "id": 7000 + dep_id,
                    "status": status,
                    "stage": "deploy",
                    "name": "deploy",
                    "ref": "main",
                    "tag": False,
                    "created_at": gl_at(minutes),
                    "started_at": gl_at(minutes + 1),
                    "finished_at": gl_at(minutes + 5),
                    "commit": commit,
                },
            }
        )
        return dep_id

    def add_merge_request(
        self,
        iid: int,
        created: float,
        merged: float,
        commits: list[str],
        notes: list[tuple[str, str, bool, float]] = (),
    ) -> None:
        self.merge_requests.append(
            {
                "id": 90000 + iid,
                "iid": iid,
                "project_id": 3,
                "title": f"MR {iid}",
                "description": "…",
                "state": "merged",
                "created_at": gl_at(created),
                "updated_at": gl_at(merged),
                "merged_at": gl_at(merged),
                "closed_at": None,
                "target_branch": "main",
                "source_branch": f"feature-{iid}",
                "author": {"id": 1, "username": "dev", "name": "Dev"},
                "merge_commit_sha": sha_of(800000 + iid),
                "squash_commit_sha": None,
                "sha": commits[-1] if commits else None,
                "draft": False,
            }
        )
        wanted = set(commits)
        # GitLab lists an MR's commits newest first
        self.mr_commits[iid] = [c for c in reversed(self.history) if c["id"] in wanted]
        self.notes[iid] = [
            {
                "id": 60000 + iid * 10 + i,
                "type": None,
                "body": body,
                "author": {"id": 2 + i, "username": who, "name": who},
                "created_at": gl_at(minutes),
                "updated_at": gl_at(minutes),
                "system": system,
                "noteable_id": 90000 + iid,
                "noteable_type": "MergeRequest",
                "noteable_iid": iid,
                "resolvable": False,
            }
            for i, (who, body, system, minutes) in enumerate(notes)
        ]

    def add_incident(
        self,
        iid: int,
        opened: float,
        closed: float | None,
        labels: list[str],
        description: str = "",
    ) -> None:
        self.issues.append(
            {
                "id": 40000 + iid,
                "iid": iid,
                "project_id": 3,
                "title": f"Incident {iid}",
                "description": description,
                "state": "closed" if closed is not None else "opened",
                "created_at": gl_at(opened),
                "updated_at": gl_at(closed if closed is not None else opened),
                "closed_at": gl_at(closed) if closed is not None else None,
                "labels": labels,
                "issue_type": "incident",
                "type": "INCIDENT",
                "severity": "HIGH",
            }
        )

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("PRIVATE-TOKEN") == self.token

    def _error(self, status: int, body: dict[str, Any]) -> Response:
        if status == 401:
            body = {"message": "401 Unauthorized"}
        return super()._error(status, body)

    def page_headers(self, page: int, per_page: int, total: int, pages: int) -> dict[str, str]:
        return {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "RateLimit-Limit": "2000",
            "RateLimit-Observed": "1",
            "RateLimit-Remaining": "1999",
            "RateLimit-Reset": str(int(time.time()) + 60),
        }

    def route(self, request: Request, path: str, query: dict[str, str]) -> Response:
        base = f"/projects/{self.project}"
        if not path.startswith(base):
            return self._error(404, {"message": "404 Project Not Found"})
        rest = path[len(base) :]
        after = query.get("updated_after")
        if rest == "/deployments":
            items = [
                d
                for d in self.deployments
                if (
                    not query.get("environment") or d["environment"]["name"] == query["environment"]
                )
                and (not query.get("status") or d["status"] == query["status"])
                and (not after or d["updated_at"] >= after)
            ]
            items.sort(key=lambda d: (d["updated_at"], d["id"]))
            return self._paginate(request, items, query)
        if rest == "/repository/compare":
            index = {c["id"]: i for i, c in enumerate(self.history)}
            lo, hi = index[query["from"]], index[query["to"]]
            commits = self.history[lo + 1 : hi + 1]
            return self._json(
                request,
                {
                    "commit": self.history[hi],
                    "commits": commits,
                    "diffs": [],
                    "compare_timeout": False,
                    "compare_same_ref": lo == hi,
                    "web_url": f"https://gitlab.example/{self.project}/-/compare/{query['from']}...{query['to']}",
                },
                {},
            )
        if rest == "/merge_requests":
            items = [
                m
                for m in self.merge_requests
                if (query.get("state") in (None, m["state"]))
                and (not after or m["updated_at"] >= after)
            ]
            items.sort(key=lambda m: (m["updated_at"], m["iid"]))
            return self._paginate(request, items, query)
        if m := re.fullmatch(r"/merge_requests/(\d+)/(commits|notes)", rest):
            source = self.mr_commits if m.group(2) == "commits" else self.notes
            return self._paginate(request, source.get(int(m.group(1)), []), query)
        if rest == "/issues":
            items = [
                i
                for i in self.issues
                if query.get("issue_type") in (None, i["issue_type"])
                and (not after or i["updated_at"] >= after)
            ]
            items.sort(key=lambda i: (i["updated_at"], i["iid"]))
            return self._paginate(request, items, query)
        return self._error(404, {"message": "404 Not Found"})
