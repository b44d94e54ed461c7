"""Operator endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.commands import PENDING
from muster.store.tables import command_deliveries

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

REQUESTS = Counter("muster_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram("muster_http_request_seconds", "HTTP request latency", ["route"])
QUEUE_DEPTH = Gauge(
    "muster_command_queue_depth", "Command deliveries not yet finished, by status (all server processes)", ["status"]
)
QUEUE_DEPTH_MAX_AGE_SECONDS = 5.0


class QueueDepth:
    """The queue-depth gauge, counted on scrape: one grouped COUNT, reused for a few seconds so that frequent or
    concurrent scrapes do not each scan the deliveries."""

    def __init__(self) -> None:
        self._counted_at = -math.inf
        self._lock = asyncio.Lock()

    async def refresh(self, engine: AsyncEngine) -> None:
        async with self._lock:
            if time.monotonic() - self._counted_at < QUEUE_DEPTH_MAX_AGE_SECONDS:
                return
            pending = [status.value for status in PENDING]
            query = (
                select(command_deliveries.c.status, func.count())
                .where(command_deliveries.c.status.in_(pending))
                .group_by(command_deliveries.c.status)
            )
            try:
                async with engine.connect() as conn:
                    counts: dict[str, int] = {status: count for status, count in (await conn.execute(query)).all()}
            except Exception as error:  # the other metrics are still worth serving; the gauge keeps its last value
                log.warning("command queue depth not counted: %s", type(error).__name__)
                return
            for status in pending:
                QUEUE_DEPTH.labels(status).set(counts.get(status, 0))
            self._counted_at = time.monotonic()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    try:
        async with request.app.state.container.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:  # any database failure means "not ready"
        return Response(f"database unavailable: {type(error).__name__}\n", status_code=503, media_type="text/plain")
    return Response("ready\n", media_type="text/plain")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    await request.app.state.queue_depth.refresh(request.app.state.container.engine)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    app.state.queue_depth = QueueDepth()

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response
