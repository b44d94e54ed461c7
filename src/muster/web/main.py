"""The ASGI application: device endpoints, the Graph-shaped admin API and operator endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from muster import __version__
from muster.app import Container, build_container
from muster.app.jobs import background_jobs, webhook_delivery
from muster.config import Settings
from muster.web import device, device_login, errors, oauth, ops, portal
from muster.web.admin import (
    ade_profiles,
    ade_tokens,
    apple_push,
    applications,
    assignment_filters,
    audit_events,
    consents,
    corporate_identifiers,
    device_categories,
    devices,
    directory,
    enrollment,
    enrollment_attempts,
    enrollment_managers,
    enrollment_reports,
    enrollment_restrictions,
    enrollment_type_profiles,
    identity_provider,
    local_accounts,
    roles,
    terms,
    webhooks,
)
from muster.web.audit import AuditMiddleware
from muster.web.request_context import RequestContextMiddleware
from muster.web.scim import mount_scim

ADMIN_ROUTERS = (
    devices.router,
    apple_push.router,
    consents.router,
    enrollment.router,
    ade_tokens.router,
    ade_profiles.router,
    directory.router,
    roles.router,
    identity_provider.router,
    audit_events.router,
    webhooks.router,
    applications.router,
    local_accounts.router,
    assignment_filters.router,
    corporate_identifiers.router,
    enrollment_managers.router,
    device_categories.router,
    terms.router,
    enrollment_restrictions.router,
    enrollment_type_profiles.router,
    enrollment_reports.router,
    enrollment_attempts.router,
)


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """The app; it builds its container at start-up unless one is given (tests, benchmarks)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        app.state.container = container or await build_container(settings or Settings())
        jobs = background_jobs(app.state.container)
        deliveries = webhook_delivery(app.state.container)
        jobs.start()
        deliveries.start()
        try:
            yield
        finally:
            await deliveries.stop()
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
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RequestContextMiddleware)  # outermost: the audit and error handlers read its id
    ops.install_metrics(app)
    app.include_router(device.router)
    app.include_router(ops.router)
    app.include_router(portal.router)
    app.include_router(oauth.router)
    app.include_router(device_login.router)
    mount_scim(app)
    for router in ADMIN_ROUTERS:
        app.include_router(router, responses=errors.ADMIN_ERROR_RESPONSES)
    return app
