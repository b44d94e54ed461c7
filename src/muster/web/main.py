"""The ASGI application: device endpoints, the Graph-shaped admin API and operator endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from muster import __version__
from muster.app import Container, background_jobs, build_container
from muster.config import Settings
from muster.web import device, errors, ops
from muster.web.admin import ade_profiles, ade_tokens, apple_push, consents, devices, enrollment

ADMIN_ROUTERS = (
    devices.router,
    apple_push.router,
    consents.router,
    enrollment.router,
    ade_tokens.router,
    ade_profiles.router,
)


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """The app; it builds its container at start-up unless one is given (tests, benchmarks)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        app.state.container = container or await build_container(settings or Settings())
        jobs = background_jobs(app.state.container)
        jobs.start()
        try:
            yield
        finally:
            await jobs.stop()
            if owned:
                await app.state.container.aclose()

    app = FastAPI(
        title="Muster",
        version=__version__,
        lifespan=lifespan,
        description="Self-hosted device enrollment and management. Admin API shaped like Microsoft Graph.",
    )
    if container is not None:
        app.state.container = container
    errors.install(app)
    ops.install_metrics(app)
    app.include_router(device.router)
    app.include_router(ops.router)
    for router in ADMIN_ROUTERS:
        app.include_router(router)
    return app
