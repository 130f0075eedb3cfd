"""`POST /api/v1/events` (canonical NDJSON or a JSON array) and the single-event conveniences
`POST /api/v1/deployments` and `POST /api/v1/incidents` for CI steps.

Rules: the tenant is the token's; each line is validated on its own and reported with its
line number and the field at fault; valid lines are stored, bad ones skipped (`?strict=true`:
any bad line and nothing is stored); an event naming a service the tenant does not have is
rejected (the API never creates services); all of a request's writes are one transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from insights import pipeline
from insights.api.auth import Caller, CallerDep
from insights.api.idempotency import REPLAYED_HEADER, request_hash, run_idempotent
from insights.boundedjson import JsonInputError, loads
from insights.collect.events import AnyEvent, iter_lines
from insights.model import (
    DeploymentEvent,
    EventError,
    IncidentEvent,
    parse_event,
)
from insights.store.partial import fill_from_stored, lookup_key
from insights.store.repository import TenantRepository
from insights.timeutil import iso, now

router = APIRouter(prefix="/api/v1", tags=["events"])

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe key: the same key and body return the first answer unchanged.",
    ),
]

UNKNOWN_SERVICE_HINT = (
    "the API accepts only services the tenant already has: add it to insights.toml and run "
    "`insights init`, or `insights import` an event for it"
)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` references inlined (for OpenAPI bodies)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _event_schema(model: type[BaseModel], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = _inline(model.model_json_schema())
    for name in drop:
        schema["properties"].pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return schema


EVENTS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Canonical events: NDJSON (one object a line) or a JSON array.",
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": '{"type":"deployment","service":"checkout","id":"d-17",'
                '"sha":"a1b2c3d4","finished_at":"2026-01-05T12:00:00Z"}\n',
            },
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


@dataclass
class LineResult:
    """What happened to one line (or array item) of a request."""

    line: int
    status: str  # accepted | rejected
    type: str | None = None
    service: str | None = None
    id: str | None = None
    field: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _field(message: str) -> str | None:
    """The field path an EventError message starts with (`deployment.finished_at: …`)."""
    head, sep, _ = message.partition(": ")
    if sep and " " not in head and "(" not in head:
        return head
    return None


def _rejected(line: int, message: str, field: str | None = None) -> LineResult:
    return LineResult(line=line, status="rejected", field=field or _field(message), error=message)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"body: not UTF-8 (byte {exc.start})") from None


def json_body(body: bytes) -> Any:
    """The request body as bounded JSON (`insights.boundedjson`), or a 400 naming the problem.

    Every JSON body of the API and of both webhooks is decoded here.
    """
    _decode(body)  # invalid UTF-8 gets its own message, with the byte offset
    try:
        return loads(body)
    except JsonInputError as exc:
        raise HTTPException(400, f"body: not valid JSON ({exc})") from None


def parse_body(body: bytes) -> list[tuple[int, AnyEvent | EventError]]:
    """Numbered events or errors from NDJSON, or from a JSON array when the body starts `[`."""
    text = _decode(body)
    if text.lstrip().startswith("["):
        items = json_body(body)
        parsed: list[tuple[int, AnyEvent | EventError]] = []
        for number, item in enumerate(items, start=1):
            try:
                parsed.append((number, parse_event(item)))
            except EventError as exc:
                parsed.append((number, EventError(exc.message, number)))
        return parsed
    return list(iter_lines(text.splitlines()))


def _event_id(event: AnyEvent) -> str | None:
    return getattr(event, "id", None) or getattr(event, "sha", None)


def ingest(
    session: Session, caller: Caller, items: list[tuple[int, AnyEvent | EventError]], strict: bool
) -> tuple[int, dict[str, Any], dict[str, int]]:
    """Validate services and store the valid events; (status, response body, stored per type)."""
    repo = TenantRepository.open(session, caller.tenant)
    known = repo.service_ids({i.service for _, i in items if not isinstance(i, EventError)})
    results: list[LineResult] = []
    accepted: list[AnyEvent] = []
    for line, item in items:
        if isinstance(item, EventError):
            results.append(_rejected(line, item.message))
        elif item.service not in known:
            message = (
                f"service {item.service!r}: not found in tenant {caller.tenant!r} "
                f"({UNKNOWN_SERVICE_HINT})"
            )
            results.append(_rejected(line, message, field=f"{item.type}.service"))
        else:
            accepted.append(item)
            results.append(
                LineResult(
                    line=line,
                    status="accepted",
                    type=item.type,
                    service=item.service,
                    id=_event_id(item),
                )
            )
    rejected = len(results) - len(accepted)
    body: dict[str, Any] = {"tenant": caller.tenant, "accepted": len(accepted)}
    body["rejected"] = rejected
    if not results:
        raise HTTPException(422, "body: no events (send NDJSON lines or a JSON array)")
    if strict and rejected:
        body["accepted"] = 0
        body["stored"] = {}
        body["results"] = [r.as_dict() for r in results if r.status == "rejected"]
        body["detail"] = f"{rejected} line(s) rejected; strict: nothing stored"
        return 422, body, {}
    stored = pipeline.store_events(repo, accepted, create_services=False)
    body["stored"] = {kind: asdict(c) for kind, c in stored.counts.items() if c.total}
    body["results"] = [r.as_dict() for r in results]
    if not accepted:
        body["detail"] = "every line was rejected; nothing stored"
        return 422, body, {}
    per_type = {kind: c.total for kind, c in stored.counts.items() if c.total}
    return (207 if rejected else 200), body, per_type


@router.post(
    "/events",
    summary="Store canonical events (NDJSON or JSON array)",
    openapi_extra=EVENTS_BODY,
    responses={
        200: {"description": "Every line stored; per-line results."},
        207: {"description": "Some lines stored, some rejected; per-line results."},
        400: {"description": "Body is not UTF-8 or not valid JSON."},
        401: {"description": "Missing, wrong or revoked token."},
        413: {"description": "Body larger than INSIGHTS_MAX_BODY_BYTES."},
        422: {"description": "No line could be stored (or strict and any line bad)."},
    },
)
async def post_events(
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyHeader = None,
    strict: Annotated[
        bool, Query(description="Reject the whole request if any line is malformed.")
    ] = False,
) -> JSONResponse:
    """Store events; each line is reported as `accepted` or `rejected` with its field path."""
    body = await request.body()
    digest = request_hash("POST", request.url.path, f"strict={strict}", body)
    items = await run_in_threadpool(parse_body, body)  # CPU work off the event loop
    metrics = request.app.state.metrics
    stored: dict[str, int] = {}
    rejected: list[int] = []

    def work(session: Session) -> tuple[int, dict[str, Any]]:
        status, response, per_type = ingest(session, caller, items, strict)
        stored.clear()
        stored.update(per_type)
        rejected[:] = [response["rejected"]]
        return status, response

    response = await run_in_threadpool(
        run_idempotent, request.app.state.engine, caller, idempotency_key, digest, work
    )
    if rejected and REPLAYED_HEADER not in response.headers:  # this request did the work
        for kind, count in stored.items():
            metrics.events.labels(kind, "api").inc(count)
        if rejected[0]:
            metrics.rejected.labels("api").inc(rejected[0])
    return response


def _json_object(body: bytes) -> dict[str, Any]:
    data = json_body(body)
    if not isinstance(data, dict):
        raise HTTPException(422, "body: must be a JSON object")
    return data


def _unknown_service(caller: Caller, kind: object, service: str) -> dict[str, str]:
    return {
        "field": f"{kind}.service",
        "error": f"service {service!r}: not found in tenant {caller.tenant!r} "
        f"({UNKNOWN_SERVICE_HINT})",
    }


def _store_one(
    session: Session, caller: Caller, data: dict[str, Any], merge_stored: bool
) -> tuple[int, dict[str, Any]]:
    repo = TenantRepository.open(session, caller.tenant)
    name = data.get("service")
    if isinstance(name, str) and lookup_key(name) and repo.service(name.strip()) is None:
        # said first: an unknown service explains every other field better than they do
        raise HTTPException(422, _unknown_service(caller, data.get("type"), name.strip()))
    if merge_stored:
        data = fill_from_stored(repo, data)
    if data.get("type") == "incident" and data.get("opened_at") is None:
        data = {**data, "opened_at": now()}
    try:
        event = parse_event(data)
    except EventError as exc:
        raise HTTPException(422, {"field": _field(exc.message), "error": exc.message}) from None
    if repo.service(event.service) is None:
        raise HTTPException(422, _unknown_service(caller, event.type, event.service))
    counts = pipeline.store_events(repo, [event], create_services=False).counts[event.type]
    status = "new" if counts.new else "updated" if counts.updated else "unchanged"
    body = {
        "tenant": caller.tenant,
        "status": status,
        "type": event.type,
        "service": event.service,
        "id": _event_id(event),
    }
    return (201 if counts.new else 200), body


async def _post_one(
    request: Request, caller: Caller, key: str | None, data: dict[str, Any], merge: bool
) -> JSONResponse:
    body = await request.body()
    digest = request_hash("POST", request.url.path, "", body)
    response = await run_in_threadpool(
        run_idempotent,
        request.app.state.engine,
        caller,
        key,
        digest,
        lambda session: _store_one(session, caller, data, merge),
    )
    if response.status_code in (200, 201) and REPLAYED_HEADER not in response.headers:
        request.app.state.metrics.events.labels(data["type"], "api").inc()
    return response


ONE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "Stored as new."},
    200: {"description": "Already known: updated or unchanged."},
    400: {"description": "Body is not valid JSON."},
    401: {"description": "Missing, wrong or revoked token."},
    422: {"description": "Invalid field (named in `detail.field`) or unknown service."},
}


def _single_event_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a single-event endpoint: the event's fields without `type`."""
    schema = _event_schema(model, drop=("type",))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post(
    "/deployments",
    summary="Record one deployment (for a CI step)",
    status_code=201,
    responses=ONE_RESPONSES,
    openapi_extra=_single_event_body(DeploymentEvent),
)
async def post_deployment(
    request: Request, caller: CallerDep, idempotency_key: IdempotencyHeader = None
) -> JSONResponse:
    """A deployment; `id` defaults to `environment:sha:finished_at` and `finished_at` to now
    for finished statuses (success, failure, cancelled)."""
    data = _json_object(await request.body())
    data["type"] = "deployment"
    status = data.get("status", "success")
    if data.get("finished_at") is None and status in ("success", "failure", "cancelled"):
        data["finished_at"] = iso(now())
    if data.get("id") is None and isinstance(data.get("sha"), str):
        finished = data.get("finished_at")
        stamp = iso(finished) if isinstance(finished, datetime) else finished
        data["id"] = f"{data.get('environment', 'production')}:{data['sha'][:12]}:{stamp}"
    return await _post_one(request, caller, idempotency_key, data, merge=False)


@router.post(
    "/incidents",
    summary="Open, update or resolve one incident (for a CI step or an alert hook)",
    status_code=201,
    responses=ONE_RESPONSES,
    openapi_extra=_single_event_body(IncidentEvent),
)
async def post_incident(
    request: Request, caller: CallerDep, idempotency_key: IdempotencyHeader = None
) -> JSONResponse:
    """An incident; fields left out keep their stored values, so resolving later needs only
    `service`, `id` and `resolved_at`. `opened_at` defaults to now for a new incident."""
    data = _json_object(await request.body())
    data["type"] = "incident"
    return await _post_one(request, caller, idempotency_key, data, merge=True)
