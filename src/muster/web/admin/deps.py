"""Admin authentication and authorisation: a bearer API token and the role's permission, on every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from muster.app import Container
from muster.services.admins import Admin, Permission

GRAPH = "/graph/beta"
DEVICE_MANAGEMENT = f"{GRAPH}/deviceManagement"

_bearer = HTTPBearer(auto_error=False)


def container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def require(permission: Permission) -> Callable[..., Awaitable[Admin]]:
    """A dependency that admits only admins whose role grants `permission`."""

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Admin:
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        admin = await container(request).admins.authenticate(credentials.credentials)
        if admin is None:
            raise HTTPException(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
        if not admin.can(permission):
            raise HTTPException(403, f"the role {admin.role.value} may not {permission.value} here")
        return admin

    check.required_permission = permission  # type: ignore[attr-defined]  # read by the route-coverage test
    return check


reader = require(Permission.READ)
writer = require(Permission.WRITE)
