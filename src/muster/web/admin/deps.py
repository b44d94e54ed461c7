"""Admin authentication and authorisation: a bearer token, the role's permission, and the scope, on every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from muster.app import Container
from muster.domain.errors import InvalidInput
from muster.domain.rbac import Permission, Principal, TaggedObject

GRAPH = "/graph/beta"
DEVICE_MANAGEMENT = f"{GRAPH}/deviceManagement"

_bearer = HTTPBearer(auto_error=False)


def container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def require(
    permission: Permission, on: TaggedObject | None = None, id_param: str = ""
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only admins holding `permission`; with `on`, only over the scope-tagged object
    the path parameter `id_param` names (checked before the body is read, so a refusal is always a 403)."""

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        admin = await container(request).authenticator.authenticate(credentials.credentials)
        if admin is None:
            raise HTTPException(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
        request.state.principal = admin  # the audit (muster.web.audit) names the actor from here
        if not admin.can(permission):
            raise HTTPException(403, f"{admin.display_name} lacks the permission {permission.value}")
        if on is not None:
            await ensure_in_scope(request, admin, permission, on, request.path_params[id_param])
        return admin

    check.required_permission = permission  # type: ignore[attr-defined]  # read by the route-coverage test
    return check


def forbid(reason: str | None) -> None:
    """Refuse the request with 403 and `reason` when there is one."""
    if reason is not None:
        raise HTTPException(403, reason)


OUT_OF_SCOPE = "the object is outside your scope tags for {permission}"


async def ensure_in_scope(
    request: Request, admin: Principal, permission: Permission, object_type: TaggedObject, object_id: str
) -> None:
    """403 unless the object carries a tag within the admin's scope for `permission`.

    A scoped admin gets the same 403 for an object that does not exist, so it learns nothing about objects
    outside its scope; an admin over every tag goes on to the route's own 404.
    """
    scope = admin.scope(permission)
    if scope.everything:
        return
    if not await container(request).roles.in_scope(object_type, [object_id], scope):
        raise HTTPException(403, OUT_OF_SCOPE.format(permission=permission.value))


def requested_tags(body: Mapping[str, Any]) -> list[str] | None:
    """The scope tags a JSON body's `roleScopeTagIds` asks for (None when it names none)."""
    wanted = body.get("roleScopeTagIds")
    if wanted is not None and (
        not isinstance(wanted, list)
        or len(wanted) > 100
        or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in wanted)
    ):
        raise InvalidInput("roleScopeTagIds must be a list of at most 100 scope tag ids")
    return wanted


async def grantable_tags(
    request: Request, admin: Principal, permission: Permission, tag_ids: Sequence[str] | None
) -> tuple[str, ...]:
    """The tags an object will carry: they must exist and be within the admin's scope. None given: the admin's
    own tags (as Intune does for scoped admins), or Default for an admin over every tag."""
    scope = admin.scope(permission)
    wanted = tag_ids or ([] if scope.everything else sorted(scope.tag_ids))
    tags = await container(request).roles.known_tags(admin.org_id, wanted)
    if not scope.includes(tags):
        outside = sorted(set(tags) - scope.tag_ids)
        raise HTTPException(403, f"scope tags {', '.join(outside)} are outside your scope for {permission.value}")
    return tags
