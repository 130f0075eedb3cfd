"""The FastAPI application: `create_app(settings)` wires routes, middleware and error handling.

Startup work lives in `lifespan` (the scheduler of `insights serve` hooks in there). The app
holds one SQLAlchemy engine; every request runs its work in one `unit_of_work`, so a request
either writes everything it was asked to or nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError

from insights.api import admin, events, health, incident_webhooks, metrics, reports, webhooks
from insights.api.limits import ApiSettings, BodySizeLimit
from insights.api.observability import ApiMetrics, RequestMetrics
from insights.config import Settings
from insights.deliver import links
from insights.errors import NotFound, UserError
from insights.store.db import engine_for
from insights.store.retry import DatabaseBusy

log = logging.getLogger("insights.api")

DESCRIPTION = """\
Delivery events in, DORA metrics and reports out. Every `/api/v1` and `/reports` call needs
`Authorization: Bearer <token>` (`insights tenant token create TENANT`); the token decides the
tenant. A report can also be opened by a signed, expiring link
(`/reports/<tenant>/<path>?expires=…&sig=…`, from the weekly Slack digest). Webhooks from
GitHub and GitLab are authenticated by their signature or secret token, PagerDuty and Jira
webhooks by their HMAC signature.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Process startup and shutdown; `insights serve` extends this with the scheduler."""
    yield


YOUNG_COLLECTION_THRESHOLD = 10_000


def preload_for_serving() -> None:
    """What `insights serve` does once before it answers requests.

    - Import the libraries a computed metrics read uses (pandas, numpy, scipy): the first
      such read would otherwise pay about a second of imports.
    - Freeze the heap built so far (`gc.freeze`): the interpreter's full collections then
      skip its long-lived objects (libraries, app, engine). A full collection in the middle
      of a metrics read took 106–155 ms unfrozen and 2–4 ms frozen
      (benchmarks/metrics_read.py, 1M commits, 100k deployments).
    - Collect the young generation after 10,000 allocations, not 700: a computed metrics
      read allocates enough containers (pandas, SQLAlchemy rows) to trigger 13 young
      collections, about 4 ms of it with the heap frozen; 1.3 ms at this threshold (same
      benchmark). The older generations keep their thresholds.
    """
    import gc

    import scipy.stats  # noqa: F401 (imported for what it loads: the verdicts' tests)

    import insights.deliver.text
    import insights.metrics.compute  # noqa: F401

    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def create_app(
    settings: Settings | None = None, api_settings: ApiSettings | None = None
) -> FastAPI:
    """Build the API for `settings` (default: from the environment)."""
    settings = settings or Settings()
    api_settings = api_settings or ApiSettings()
    app = FastAPI(
        title="DORA Insights API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    links.link_secret(settings)  # a too-short INSIGHTS_REPORT_LINK_SECRET stops startup
    app.state.settings = settings
    app.state.engine = engine_for(settings.database_url)
    app.state.metrics = ApiMetrics()

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)  # from the COPY paths, unwrapped
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        # the driver's message can name hosts and users: log it, answer without it
        cause = getattr(exc, "orig", None) or exc
        log.error("database unavailable: %s", (str(cause).strip().splitlines() or ["?"])[0])
        return JSONResponse(
            {"detail": "database unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # a value the database refuses (the input boundary should have named it first):
        # the request's fault, so a 422, and its transaction was rolled back whole
        log.warning("request refused by the database: %s", type(exc.orig or exc).__name__)
        return JSONResponse(
            {"detail": "request holds a value the database cannot store"}, status_code=422
        )

    @app.exception_handler(DatabaseBusy)
    async def _database_busy(_: Request, exc: DatabaseBusy) -> JSONResponse:
        # conflicts outlasted every retry: not the client's fault, and not an outage either
        log.error("database busy: %s", exc)
        return JSONResponse(
            {"detail": "database busy with conflicting concurrent writes, retry shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for module in (events, metrics, reports, webhooks, incident_webhooks, health, admin):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, limit=api_settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    return app
