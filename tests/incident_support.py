"""Local PagerDuty and Jira servers for the incident-source tests, speaking each wire format.

Payloads are built from the vendor-shaped fixtures in tests/fixtures/ (sources named in
tests/fixtures/README.md). PagerDuty: `GET /incidents` with `service_ids[]`, `since`/`until` on
creation time, `limit`/`offset`/`more`; `GET /incidents/{id}/notes`; `Authorization: Token
token=…`. Jira: Data Center `GET /rest/api/2/search` (`startAt`/`maxResults`/`total`) and Cloud
`GET /rest/api/2/search/jql` (`nextPageToken`, `isLast`), `GET /rest/api/2/serverInfo` (the
client asks it which deployment type it talks to), Basic auth (Cloud) or Bearer (Data Center).
A test can script faults (429, 401, 5xx) for the next matching requests.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).parent / "fixtures"
BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def pd_time(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def jira_time(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@contextmanager
def tls_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, Path]]:
    """A local HTTPS server (PagerDuty's client refuses plain http) and the PEM file of the
    throwaway CA that signed its certificate, for the source's `ca_bundle`."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    bundle = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server = HTTPServer(host="localhost", port=0, ssl_context=context)
    server.start()
    try:
        yield server, bundle
    finally:
        server.clear()
        server.stop()


@dataclass
class Fault:
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int = 1
    query: str | None = None  # a regex the query string must match too


class _Fake:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, dict[str, list[str]], int]] = []
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def fail(
        self,
        path: str,
        status: int,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        query: str | None = None,
    ) -> None:
        self.faults.append(Fault(path, status, headers or {}, body, times, query))

    def statuses(self) -> list[int]:
        return [status for _, _, status in self.seen]

    def _handle(self, request: Request) -> Response:
        query = {k: request.args.getlist(k) for k in request.args}
        for fault in self.faults:
            asked = request.query_string.decode()
            if (
                fault.times > 0
                and re.search(fault.path, request.path)
                and (fault.query is None or re.search(fault.query, asked))
            ):
                fault.times -= 1
                self.seen.append((request.path, query, fault.status))
                return Response(
                    json.dumps(fault.body or {}),
                    fault.status,
                    fault.headers,
                    content_type="application/json",
                )
        if not self._authorized(request):
            self.seen.append((request.path, query, 401))
            return self._unauthorized()
        status, body = self.answer(request.path, query)
        self.seen.append((request.path, query, status))
        return Response(json.dumps(body), status, content_type="application/json")

    def _authorized(self, request: Request) -> bool:
        raise NotImplementedError

    def _unauthorized(self) -> Response:
        raise NotImplementedError

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        raise NotImplementedError


class FakePagerDuty(_Fake):
    """PagerDuty REST API v2 (the parts the collector reads)."""

    token = "u+fake-pagerduty-key"
    bundle: Path | None = None

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.incidents: list[dict[str, Any]] = []
        self.notes: dict[str, list[dict[str, Any]]] = {}

    def add(
        self,
        number: int,
        service_id: str,
        opened: float,
        resolved: float | None = None,
        status: str | None = None,
        priority: str | None = "P2",
        urgency: str = "high",
        note: str | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        incident = copy.deepcopy(fixture("pagerduty/incident.json"))
        incident_id = f"PINC{number:03d}"
        incident.update(
            id=incident_id,
            incident_number=number,
            title=title or f"Incident {number}",
            summary=f"[#{number}] {title or f'Incident {number}'}",
            created_at=pd_time(opened),
            urgency=urgency,
            status=status or ("resolved" if resolved is not None else "triggered"),
            resolved_at=pd_time(resolved) if resolved is not None else None,
            last_status_change_at=pd_time(resolved if resolved is not None else opened),
            updated_at=pd_time(resolved if resolved is not None else opened),
        )
        incident["service"]["id"] = service_id
        incident["priority"] = (
            {**incident["priority"], "summary": priority} if priority is not None else None
        )
        self.incidents.append(incident)
        notes = copy.deepcopy(fixture("pagerduty/notes.json"))["notes"]
        if note:
            notes.append({**notes[0], "id": f"N{number}", "content": note})
        self.notes[incident_id] = notes
        return incident

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Token token={self.token}"

    def _unauthorized(self) -> Response:
        return Response(
            json.dumps({"error": {"message": "Unauthorized", "code": 2006}}),
            401,
            content_type="application/json",
        )

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        notes = re.fullmatch(r"/incidents/([^/]+)/notes", path)
        if notes:
            return 200, {"notes": self.notes.get(notes.group(1), [])}
        if path != "/incidents":
            return 404, {"error": {"message": "Not Found", "code": 2100}}
        wanted = set(query.get("service_ids[]", []))
        since = query["since"][0]
        until = query["until"][0]
        rows = [
            i
            for i in self.incidents
            if (not wanted or i["service"]["id"] in wanted)
            and _t(since) <= _t(i["created_at"]) < _t(until)
        ]
        rows.sort(key=lambda i: i["created_at"])
        limit = int(query.get("limit", ["25"])[0])
        offset = int(query.get("offset", ["0"])[0])
        page = rows[offset : offset + limit]
        return 200, {
            "incidents": page,
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(rows),
            "total": None,
        }


class FakeJira(_Fake):
    """Jira REST API v2 search, as Cloud (`/search/jql`) or Data Center (`/search`)."""

    email = "ops@example.com"
    token = "fake-jira-api-token"

    def __init__(self, server: HTTPServer, cloud: bool) -> None:
        super().__init__(server)
        self.cloud = cloud
        self.issues: list[dict[str, Any]] = []

    def add(
        self,
        number: int,
        opened: float,
        resolved: float | None = None,
        priority: str | None = "High",
        labels: tuple[str, ...] = (),
        description: str | None = None,
        project: str = "OPS",
        updated: float | None = None,
    ) -> dict[str, Any]:
        issue = copy.deepcopy(fixture("jira/issue.json"))
        issue["id"] = str(10000 + number)
        issue["key"] = f"{project}-{number}"
        fields = issue["fields"]
        fields["summary"] = f"Incident {number}"
        fields["description"] = description
        fields["created"] = jira_time(opened)
        last = updated if updated is not None else (resolved if resolved is not None else opened)
        fields["updated"] = jira_time(last)
        fields["resolutiondate"] = jira_time(resolved) if resolved is not None else None
        if resolved is None:
            fields["resolution"] = None
        fields["priority"] = {**fields["priority"], "name": priority} if priority else None
        fields["labels"] = list(labels)
        fields["project"]["key"] = project
        self.issues.append(issue)
        return issue

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.cloud:
            expected = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {self.token}"

    def _unauthorized(self) -> Response:
        return Response(
            json.dumps({"errorMessages": ["You are not authenticated."], "errors": {}}),
            401,
            content_type="application/json",
        )

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == "/rest/api/2/serverInfo":
            return 200, {
                "baseUrl": self.url,
                "version": "1001.0.0-SNAPSHOT" if self.cloud else "9.12.4",
                "versionNumbers": [1001, 0, 0] if self.cloud else [9, 12, 4],
                "deploymentType": "Cloud" if self.cloud else "Server",
                "buildNumber": 100250,
                "serverTitle": "Jira",
            }
        if path == "/rest/api/2/field":
            return 200, []
        jql = query.get("jql", [""])[0]
        rows = self._select(jql)
        limit = int(query.get("maxResults", ["50"])[0])
        if self.cloud and path == "/rest/api/2/search/jql":
            offset = int(query.get("nextPageToken", ["0"])[0] or 0)
            page = rows[offset : offset + limit]
            body: dict[str, Any] = {"issues": page, "isLast": offset + limit >= len(rows)}
            if offset + limit < len(rows):
                body["nextPageToken"] = str(offset + limit)
            return 200, body
        if path == "/rest/api/2/search":
            if self.cloud:  # removed on Cloud
                return 410, {"errorMessages": ["The requested API has been removed."]}
            offset = int(query.get("startAt", ["0"])[0])
            return 200, {
                "expand": "schema,names",
                "startAt": offset,
                "maxResults": limit,
                "total": len(rows),
                "issues": rows[offset : offset + limit],
            }
        return 404, {"errorMessages": [f"no {path}"]}

    def _select(self, jql: str) -> list[dict[str, Any]]:
        """The few JQL clauses the collector writes: `updated >= "yyyy/MM/dd HH:mm"`,
        ordering by updated; the configured part selects the project."""
        rows = list(self.issues)
        project = re.search(r"project\s*=\s*\"?([A-Z]+)", jql)
        if project:
            rows = [i for i in rows if i["fields"]["project"]["key"] == project.group(1)]
        after = re.search(r'updated\s*>=\s*"(\d{4}/\d{2}/\d{2} \d{2}:\d{2})"', jql)
        if after:
            floor = datetime.strptime(after.group(1), "%Y/%m/%d %H:%M").replace(tzinfo=UTC)
            rows = [i for i in rows if _t(i["fields"]["updated"]) >= floor]
        rows.sort(key=lambda i: (_t(i["fields"]["updated"]), int(i["id"])))
        return rows


def _t(text: str) -> datetime:
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)
