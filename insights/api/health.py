"""`GET /healthz` (is the database reachable?) and `GET /metrics` (Prometheus exposition)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

router = APIRouter(tags=["operations"])
log = logging.getLogger("insights.api")


@router.get("/healthz", summary="Liveness and database reachability (no auth)")
def healthz(request: Request) -> JSONResponse:
    """200 `{"status": "ok"}` when the database answers, else 503 naming the problem."""
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        # the driver's message can name hosts and users: log it, answer without it
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        log.warning("healthz: database unreachable: %s", first)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    from insights.ops.scheduler import health

    return JSONResponse(
        {"status": "ok", "database": "ok", "scheduler": health(request.app.state, engine)}
    )


@router.get("/metrics", summary="Prometheus metrics (no auth)", response_class=Response)
def prometheus(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
