"""Every admin route checks the caller: generated from the route table, so a new route cannot escape."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute

from muster.domain.rbac import READ_PERMISSIONS, BuiltInRole, Permission
from muster.store.tables import DEFAULT_ORG_ID
from muster.web.main import ADMIN_ROUTERS, create_app
from tests.harness import running_muster


def admin_routes() -> list[tuple[str, str, Permission]]:
    """(method, path, permission) of every admin route; checked against the published OpenAPI, so a route
    mounted some other way would fail here instead of escaping the check."""
    found = []
    for router in ADMIN_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            required = {getattr(d.call, "required_permission", None) for d in route.dependant.dependencies} - {None}
            assert len(required) == 1, f"{route.path} does not declare exactly one required permission"
            permission = next(iter(required))
            found += [(method, route.path, permission) for method in route.methods]
    published = {
        (method.upper(), path)
        for path, operations in create_app().openapi()["paths"].items()
        if not path.startswith(("/mdm", "/scep"))
        for method in operations
    }
    assert published <= {(method, path) for method, path, _ in found}, published
    return found


def test_every_admin_route_declares_a_permission_and_writes_need_write() -> None:
    routes = admin_routes()
    assert len(routes) >= 9
    for method, path, permission in routes:
        if method != "GET":
            assert permission not in READ_PERMISSIONS, f"{method} {path} must require more than a read permission"


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


async def test_no_token_is_refused_and_read_only_operators_change_nothing(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster:
        reader = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="auditor", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        async with muster.admin("not-a-token") as stranger, muster.admin(reader) as read_only:
            for method, path, permission in admin_routes():
                url = _concrete(path)
                denied = await stranger.request(method, url, json={})
                assert denied.status_code == 401, (method, path, denied.text)
                assert denied.json()["error"]["code"] == "unauthenticated"
                answer = await read_only.request(method, url, json={})
                if permission in READ_PERMISSIONS:
                    assert answer.status_code not in (401, 403), (method, path, answer.text)
                else:
                    assert answer.status_code == 403, (method, path, answer.text)
            certificate = (await read_only.get("/graph/beta/deviceManagement/applePushNotificationCertificate")).json()
            assert certificate["certificateUploadStatus"] == "notUploaded"  # the refused writes changed nothing
