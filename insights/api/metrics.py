"""`GET /api/v1/metrics`: the DORA metrics of one scope and window, in the CLI's JSON keys.

The document is `insights.deliver.text.render_json`'s, byte for byte what
`insights metrics --format json` prints for the same tenant, scope and window. A scope naming
a service or team the caller's tenant does not have is a 404; a malformed scope or window a 422.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from insights import pipeline
from insights.api.auth import CallerDep
from insights.deliver.text import render_markdown
from insights.metrics.result import Scope
from insights.metrics.scope import parse_scope
from insights.metrics.windows import parse_window
from insights.store.db import unit_of_work
from insights.timeutil import now

router = APIRouter(prefix="/api/v1", tags=["metrics"])


class MetricsFormat(StrEnum):
    json = "json"
    markdown = "markdown"


@router.get(
    "/metrics",
    summary="DORA metrics of a scope and window (same keys as `insights metrics -f json`)",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics document (JSON) or a Markdown table.",
            "content": {"application/json": {}, "text/markdown": {}},
        },
        401: {"description": "Missing, wrong or revoked token."},
        404: {"description": "The scope's service or team does not exist in this tenant."},
        422: {"description": "Malformed scope or window (the message names it)."},
    },
)
def get_metrics(
    request: Request,
    caller: CallerDep,
    scope: Annotated[
        str, Query(max_length=300, description="`tenant`, `service:NAME` or `team:NAME`.")
    ] = "tenant",
    window: Annotated[
        str | None,
        Query(
            max_length=100,
            description="ISO week `2026-W05`, month `2026-01` or `2026-01-05..2026-01-19`; "
            "default: the last complete ISO week.",
        ),
    ] = None,
    format: Annotated[MetricsFormat, Query(description="json or markdown.")] = MetricsFormat.json,
) -> Response:
    span = parse_window(window, now())
    parsed = parse_scope(scope, caller.tenant)
    if parsed.kind == "tenant":
        parsed = Scope(kind="tenant", name=caller.tenant)
    as_json = format is MetricsFormat.json
    with unit_of_work(request.app.state.engine) as session:
        if as_json:  # a closed window is served as stored while no write reaches it
            body = pipeline.metrics_document(session, caller.tenant, parsed, span)
            return Response(body, media_type="application/json")
        # history=1: the document holds this window and the previous one only
        report = pipeline.compute_report(session, caller.tenant, parsed, span, history=1)
        return Response(render_markdown(report), media_type="text/markdown; charset=utf-8")
