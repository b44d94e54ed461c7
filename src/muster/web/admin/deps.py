"""Admin authentication and authorisation: a bearer API token and the role's permission, on every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from muster.app import Container
from muster.domain.rbac import Permission, Principal

GRAPH = "/graph/beta"
DEVICE_MANAGEMENT = f"{GRAPH}/deviceManagement"

_bearer = HTTPBearer(auto_error=False)


def container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only admins holding `permission` (somewhere: the route then checks the scope)."""

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        admin = await container(request).admins.authenticate(credentials.credentials)
        if admin is None:
            raise HTTPException(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
        if not admin.can(permission):
            raise HTTPException(403, f"{admin.display_name} lacks the permission {permission.value}")
        return admin

    check.required_permission = permission  # type: ignore[attr-defined]  # read by the route-coverage test
    return check
