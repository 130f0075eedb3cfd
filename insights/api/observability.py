"""Prometheus metrics of the API process: requests, latency, events ingested, webhooks.

Each app gets its own registry, so several apps in one process (tests) never clash. Every
label takes a bounded set of values, whatever clients send: the route label is the route
template (`/reports/{path:path}`, or `unmatched`), never the raw path; the method label is one of
the standard HTTP methods or `other` (a client can send any token as a method).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


def method_label(method: str) -> str:
    """The request method as a label value: a standard method, or `other`."""
    return method if method in KNOWN_METHODS else "other"


class ApiMetrics:
    """The counters and histograms the API exposes at `GET /metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "insights_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "insights_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.events = Counter(
            "insights_events_ingested",
            "Canonical events stored, by event type and channel (api, webhook).",
            ["type", "channel"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "insights_events_rejected",
            "Event lines rejected by validation, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "insights_webhook_deliveries",
            "Webhook deliveries, by source and outcome (stored, ignored, duplicate, rejected).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.webhooks_ignored = Counter(
            "insights_webhook_ignored",
            "Webhook deliveries acknowledged without storing anything, by source and reason"
            " (untracked_event, no_repository, unknown_repository, not_tracked).",
            ["source", "reason"],
            registry=self.registry,
        )


class RequestMetrics:
    """ASGI middleware recording each HTTP request's count and latency."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = method_label(scope.get("method", ""))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
