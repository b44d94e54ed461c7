"""Every admin route checks the caller and the scope: generated from the route table, so a new route cannot escape.

For every admin route: no token is a 401; a Read Only Operator changes nothing; an admin scoped to tag A gets a 403
on objects tagged B (and nothing changes) while it reaches objects tagged A. `OBJECT_ROUTES` says how each route
with a path parameter finds its object; a route with a parameter it does not know fails the test until added.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.rbac import BUILT_IN_ROLE_PERMISSIONS, READ_PERMISSIONS, BuiltInRole, Permission
from muster.store.tables import DEFAULT_ORG_ID, ade_devices, ade_profiles, devices
from muster.web.main import ADMIN_ROUTERS, create_app
from tests.harness import DM, database_rows, running_muster

# Route prefix (up to its object's parameter) -> the kind of object the route acts on. "tenant": an organisation-
# wide or directory object, not scope-tagged (as in Intune); such routes are still checked for 401 and 403.
OBJECT_ROUTES = {
    f"{DM}/managedDevices/{{device_id}}": "device",
    f"{DM}/depOnboardingSettings/{{token_id}}/enrollmentProfiles/{{profile_id}}": "profile",
    f"{DM}/depOnboardingSettings/{{token_id}}/importedAppleDeviceIdentities/{{device_id}}": "adeDevice",
    f"{DM}/depOnboardingSettings/{{token_id}}": "token",
    f"{DM}/roleScopeTags/{{tag_id}}": "scopeTag",
    f"{DM}/dataSharingConsents/{{consent_id}}": "tenant",
    f"{DM}/roleDefinitions/{{role_id}}": "tenant",
    f"{DM}/roleAssignments/{{assignment_id}}": "tenant",
    f"{DM}/auditEvents/{{event_id}}": "tenant",
    f"{DM}/auditEvents/getAuditActivityTypes(category='{{category}}')": "tenant",
    f"{DM}/webhookSubscriptions/{{subscription_id}}": "tenant",
    f"{DM}/importedDeviceIdentities/{{identity_id}}": "tenant",
    f"{DM}/deviceEnrollmentManagers/{{manager_id}}": "tenant",
    f"{DM}/enrollmentFailures/{{failure_id}}": "tenant",
    # Tagged, but out of scope answers 404 (tests/web/test_assignment_filters.py), not this module's 403.
    f"{DM}/assignmentFilters/{{filter_id}}": "assignmentFilter",
    f"{DM}/assignmentFilters/getPlatformSupportedProperties(platform='{{platform}}')": "tenant",
    # Tagged, out of scope is a 404 (tests/web/test_device_categories.py, tests/web/test_terms.py).
    f"{DM}/deviceCategories/{{category_id}}": "deviceCategory",
    f"{DM}/termsAndConditions/{{terms_id}}": "termsAndConditions",
    # Tagged, out of scope is a 404 (tests/web/test_enrollment_restrictions.py).
    f"{DM}/deviceEnrollmentConfigurations/{{restriction_id}}": "enrollmentConfiguration",
    # Tagged, out of scope is a 404 (tests/web/test_enrollment_type_profiles.py); resolve reads the directory.
    f"{DM}/appleUserInitiatedEnrollmentProfiles/{{profile_id}}": "enrollmentTypeProfile",
    f"{DM}/appleUserInitiatedEnrollmentProfiles/resolve(userPrincipalName='{{user_principal_name}}')": "tenant",
    "/graph/beta/users/{user_id}": "tenant",
    "/graph/beta/groups/{group_id}": "tenant",
    "/graph/beta/applications/{application_id}": "tenant",
    "/graph/beta/directory/provisioningTokens/{token_id}": "tenant",
}
TAGGED = {"device", "profile", "adeDevice", "token", "scopeTag"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    permission: Permission

    @property
    def kind(self) -> str | None:
        """The kind of object the route acts on (None: no path parameter)."""
        if "{" not in self.path:
            return None
        known = [p for p in OBJECT_ROUTES if self.path == p or self.path.startswith(p + "/")]
        assert known, f"{self.method} {self.path}: add its object to OBJECT_ROUTES (how to create one in scope)"
        return OBJECT_ROUTES[max(known, key=len)]


def admin_routes() -> list[Route]:
    """Every admin route with its one permission; checked against the published OpenAPI, so a route mounted some
    other way would fail here instead of escaping the check."""
    found = []
    for router in ADMIN_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            required = {getattr(d.call, "required_permission", None) for d in route.dependant.dependencies} - {None}
            assert len(required) == 1, f"{route.path} does not declare exactly one required permission"
            found += [Route(method, route.path, next(iter(required))) for method in route.methods]
    published = {
        (method.upper(), path)
        for path, operations in create_app().openapi()["paths"].items()
        if not path.startswith(("/mdm", "/scep"))
        for method in operations
    }
    assert published <= {(r.method, r.path) for r in found}, published
    return found


def test_every_admin_route_declares_a_permission_and_writes_need_write() -> None:
    routes = admin_routes()
    assert len(routes) >= 9
    for route in routes:
        route.kind  # noqa: B018  (fails for a route whose object is unknown)
        if route.method != "GET":
            assert route.permission not in READ_PERMISSIONS, f"{route.method} {route.path} needs more than a read"


# -- objects in and out of scope ---------------------------------------------------------------------------------


async def create_tag(admin: httpx.AsyncClient, name: str) -> str:
    response = await admin.post(f"{DM}/roleScopeTags", json={"displayName": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def add_device(engine: AsyncEngine, tag: str) -> str:
    device_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            insert(devices).values(
                id=device_id,
                org_id=DEFAULT_ORG_ID,
                udid=f"UDID-{device_id}",
                serial_number=f"SN-{device_id[:8]}",
                owner_type="company",
                enrollment_type="profileEnrollment",
                management_state="managed",
                inventory={},
                scope_tag_ids=[tag],
            )
        )
    return device_id


async def add_token(admin: httpx.AsyncClient, tag: str) -> str:
    await admin.post(f"{DM}/dataSharingConsents/appleEnrollmentProgram/consentToDataSharing")
    response = await admin.post(f"{DM}/depOnboardingSettings", json={"tokenName": tag, "roleScopeTagIds": [tag]})
    assert response.status_code == 201, response.text
    assert response.json()["roleScopeTagIds"] == [tag]
    return str(response.json()["id"])


async def add_profile(engine: AsyncEngine, token_id: str, tag: str) -> str:
    """Stored directly: creating one over the API needs an uploaded server token and Apple."""
    profile_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(ade_profiles).values(
                id=profile_id,
                org_id=DEFAULT_ORG_ID,
                token_id=token_id,
                platform="iOS",
                display_name=f"profile {tag}",
                settings={},
                scope_tag_ids=[tag],
                created_at=now,
                updated_at=now,
            )
        )
    return profile_id


async def add_ade_device(engine: AsyncEngine, token_id: str) -> str:
    device_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(ade_devices).values(
                id=device_id,
                org_id=DEFAULT_ORG_ID,
                token_id=token_id,
                serial_number=f"ADE-{device_id[:8]}",
                abm_status="assigned",
                assignment_status="none",
                assignment_attempts=0,
                enrollment_state="notContacted",
                created_at=now,
                updated_at=now,
            )
        )
    return device_id


@dataclass(frozen=True)
class TaggedObjects:
    tag: str
    device: str
    token: str
    profile: str
    ade_device: str

    def url(self, route: Route) -> str:
        values = {
            "device_id": self.ade_device if route.kind == "adeDevice" else self.device,
            "token_id": self.token,
            "profile_id": self.profile,
            "tag_id": self.tag,
            "action": "syncDevice",
        }
        return re.sub(
            r"\{([^}]+)\}", lambda m: values.get(m.group(1), "00000000-0000-0000-0000-000000000000"), route.path
        )


async def tagged_objects(admin: httpx.AsyncClient, engine: AsyncEngine, name: str) -> TaggedObjects:
    tag = await create_tag(admin, name)
    token = await add_token(admin, tag)
    return TaggedObjects(
        tag,
        await add_device(engine, tag),
        token,
        await add_profile(engine, token, tag),
        await add_ade_device(engine, token),
    )


async def _rows(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row but the audit trails' (refusals are audited, and that is all they may write)."""
    return await database_rows(engine, skip=("audit_events", "audit_log"))


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


# -- the checks ----------------------------------------------------------------------------------------------------


async def test_no_token_is_refused_and_read_only_operators_change_nothing(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        objects = await tagged_objects(admin, muster.container.engine, "A")
        reader = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="auditor", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        before = await _rows(muster.container.engine)
        async with muster.admin("not-a-token") as stranger, muster.admin(reader) as read_only:
            for route in admin_routes():
                url = objects.url(route) if route.kind in TAGGED else _concrete(route.path)
                denied = await stranger.request(route.method, url, json={})
                assert denied.status_code == 401, (route, denied.text)
                assert denied.json()["error"]["code"] == "unauthenticated"
                answer = await read_only.request(route.method, url, json={})
                if route.permission in READ_PERMISSIONS:
                    assert answer.status_code not in (401, 403), (route, answer.text)
                else:
                    assert answer.status_code == 403, (route, answer.text)
        assert await _rows(muster.container.engine) == before


async def _check_scoped(
    muster_engine: AsyncEngine, client: httpx.AsyncClient, role: BuiltInRole, a: TaggedObjects, b: TaggedObjects
) -> int:
    """Out of scope (B): 403 and nothing changes; in scope (A): past the scope check. Returns the routes tried."""
    held = BUILT_IN_ROLE_PERMISSIONS[role]
    routes = [r for r in admin_routes() if r.kind in TAGGED and r.permission in held]
    before = await _rows(muster_engine)
    for route in routes:
        answer = await client.request(route.method, b.url(route), json={})
        assert answer.status_code == 403, (route, answer.text)
    assert await _rows(muster_engine) == before
    # Deletions last, deepest first, so that every route still finds its in-scope object.
    for route in sorted(routes, key=lambda r: (r.method == "DELETE", -len(r.path))):
        answer = await client.request(route.method, a.url(route), json={})
        assert answer.status_code != 403 and answer.status_code < 500, (route, answer.text)
    return len(routes)


async def test_scoped_admins_reach_only_objects_within_their_scope_tags(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        a = await tagged_objects(admin, engine, "A")
        b = await tagged_objects(admin, engine, "B")
        tried = 0
        for role in (BuiltInRole.HELP_DESK_OPERATOR, BuiltInRole.INTUNE_ADMINISTRATOR):
            token = await muster.container.admins.create_token(
                org_id=DEFAULT_ORG_ID, name=f"scoped {role}", role=role, scope_tag_ids=[a.tag]
            )
            async with muster.admin(token) as scoped:
                devices_seen = (await scoped.get(f"{DM}/managedDevices")).json()["value"]
                assert [d["id"] for d in devices_seen] == [a.device]
                assert devices_seen[0]["roleScopeTagIds"] == [a.tag]
                tokens_seen = (await scoped.get(f"{DM}/depOnboardingSettings")).json()["value"]
                assert [t["id"] for t in tokens_seen] == [a.token]
                tried += await _check_scoped(engine, scoped, role, a, b)
            a = await tagged_objects(admin, engine, f"A{role}")  # the in-scope pass may have deleted some
        assert tried >= 20


async def test_bulk_actions_skip_devices_outside_the_scope(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        engine = muster.container.engine
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        inside, outside = await add_device(engine, tag_a), await add_device(engine, tag_b)
        token = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="help desk A", role=BuiltInRole.HELP_DESK_OPERATOR, scope_tag_ids=[tag_a]
        )
        async with muster.admin(token) as help_desk:
            before = await _rows(engine)
            answer = await help_desk.post(
                f"{DM}/managedDevices/executeAction", json={"actionName": "syncDevice", "deviceIds": [outside]}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["failedDeviceIds"] == [outside]
            assert "outside your scope" in answer.json()["failures"][0]["reason"]
            assert await _rows(engine) == before
            answer = await help_desk.post(
                f"{DM}/managedDevices/executeAction", json={"actionName": "syncDevice", "deviceIds": [inside, outside]}
            )
            failures = {f["deviceId"]: f["reason"] for f in answer.json()["failures"]}
            assert "outside your scope" in failures[outside]
            assert "outside your scope" not in failures[inside]  # refused for its own reason: never enrolled
            retag = await help_desk.patch(f"{DM}/managedDevices/{inside}", json={"roleScopeTagIds": [tag_b]})
            assert retag.status_code == 403 and "outside your scope" in retag.json()["error"]["message"]
