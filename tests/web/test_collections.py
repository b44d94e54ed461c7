"""OData query options on the small admin collections evaluated in memory, over HTTP.

Each collection: `$filter`, `$orderby`, `$select`, `$top` with a nextLink walk returning every item once,
`$count`, and bad options refused with 400 in Graph's error shape; RBAC scope narrows a list before OData.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.rbac import BuiltInRole
from muster.store.tables import DEFAULT_ORG_ID, ade_profiles
from muster.store.webhooks import SqlWebhookStore
from muster.web.main import create_app
from tests.harness import DM, running_muster
from tests.web.test_admin_access import add_profile, add_token, create_tag

GRAPH = "/graph/beta"
BAD_OPTIONS = [
    ({"$filter": "colour eq 'red'"}, "$filter: unknown property 'colour'"),
    ({"$filter": "id eq"}, "$filter: unexpected end"),
    ({"$orderby": "colour desc"}, "$orderby: unknown property 'colour'"),
    ({"$select": "id,colour"}, "$select: unknown property 'colour'"),
    ({"$top": "-1"}, "$top: expected a positive integer"),
    ({"$count": "maybe"}, "$count: expected true or false"),
    ({"$skiptoken": "forged"}, "$skiptoken: malformed"),
    ({"filter": "id eq 'x'"}, "unknown query option 'filter'"),  # a misspelt option must not list everything
]


async def walk(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of the collection, following `@odata.nextLink`; each page holds at most `$top` items."""
    items: list[dict[str, Any]] = []
    response = await client.get(url, params=params)
    for _ in range(50):
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["value"]) <= int(params["$top"])
        items += body["value"]
        if "@odata.nextLink" not in body:
            return items
        response = await client.get(body["@odata.nextLink"])
    raise AssertionError("paging did not end")


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["value"]]


async def check_collection(client: httpx.AsyncClient, url: str, order_by: str) -> list[dict[str, Any]]:
    """The options every collection honours; returns the whole collection."""
    full = await client.get(url, params={"$count": "true"})
    assert full.status_code == 200, full.text
    body = full.json()
    assert "/graph/beta/$metadata#" in body["@odata.context"]
    assert body["@odata.count"] == len(body["value"]) and "@odata.nextLink" not in body
    everything = body["value"]
    walked = await walk(client, url, {"$top": "2", "$orderby": f"{order_by} desc"})
    assert sorted(item["id"] for item in walked) == sorted(item["id"] for item in everything)
    keys = [
        (item[order_by] or "").lower() if isinstance(item[order_by] or "", str) else item[order_by] for item in walked
    ]
    assert keys == sorted(keys, reverse=True)
    selected = (await client.get(url, params={"$select": f"id,{order_by}"})).json()["value"]
    assert {name for item in selected for name in item if not name.startswith("@")} <= {"id", order_by}
    assert [item["id"] for item in selected] == [item["id"] for item in everything]
    for params, message in BAD_OPTIONS:
        refused = await client.get(url, params=params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["error"]["code"] == "badRequest"
        assert refused.json()["error"]["message"].startswith(message), refused.text
    return list(everything)


async def test_role_definitions_assignments_and_scope_tags(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        tags = [await create_tag(admin, name) for name in ("Team B", "team a", "Lab", "TEAM C")]
        roles = await check_collection(admin, f"{DM}/roleDefinitions", "displayName")
        custom = await admin.post(f"{DM}/roleDefinitions", json={"displayName": "Custom", "rolePermissions": []})
        assert custom.status_code == 201, custom.text
        only_custom = await admin.get(f"{DM}/roleDefinitions", params={"$filter": "isBuiltIn eq false"})
        assert _ids(only_custom) == [custom.json()["id"]]
        assert len(roles) >= 3
        await check_collection(admin, f"{DM}/roleScopeTags", "displayName")
        assert _ids(await admin.get(f"{DM}/roleScopeTags")) == sorted(["0", *tags])  # by default, by id
        teams = await admin.get(
            f"{DM}/roleScopeTags", params={"$filter": "startswith(displayName,'TEAM ')", "$orderby": "displayName"}
        )
        assert _ids(teams) == [tags[1], tags[0], tags[3]]  # case-insensitive: a, B, C
        help_desk = next(r["id"] for r in roles if r["displayName"] == BuiltInRole.HELP_DESK_OPERATOR)
        for name, tag in (("Lab desk", tags[2]), ("Team desk", tags[0]), ("Another", tags[1])):
            body = {
                "displayName": name,
                "members": ["someone"],
                "roleDefinitionId": help_desk,
                "roleScopeTagIds": [tag],
            }
            assert (await admin.post(f"{DM}/roleAssignments", json=body)).status_code == 201
        await check_collection(admin, f"{DM}/roleAssignments", "displayName")
        desks = await admin.get(
            f"{DM}/roleAssignments", params={"$filter": "endswith(displayName,' desk') and allScopeTags eq false"}
        )
        assert {item["displayName"] for item in desks.json()["value"]} == {"Lab desk", "Team desk"}
        mistyped = await admin.get(f"{DM}/roleAssignments", params={"$filter": "allScopeTags eq 'no'"})
        assert mistyped.status_code == 400
        assert mistyped.json()["error"]["message"] == "$filter: property 'allScopeTags' holds bool values, not 'no'"


async def _profile(engine: AsyncEngine, token_id: str, tag: str, name: str, settings: dict[str, Any]) -> str:
    profile_id = await add_profile(engine, token_id, tag)
    async with engine.begin() as conn:
        await conn.execute(
            update(ade_profiles).where(ade_profiles.c.id == profile_id).values(display_name=name, settings=settings)
        )
    return profile_id


async def test_ade_tokens_and_profiles_are_scoped_before_odata(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        token_a, token_b = await add_token(admin, tag_a), await add_token(admin, tag_b)
        await check_collection(admin, f"{DM}/depOnboardingSettings", "tokenName")
        supervised = {"supervisedModeEnabled": True, "enabledSkipKeys": ["Siri"]}
        ids = [
            await _profile(engine, token_a, tag_a, "Kiosk", supervised),
            await _profile(engine, token_a, tag_a, "kiosk 2", {}),
            await _profile(engine, token_a, tag_b, "Staff", supervised),
        ]
        profiles = f"{DM}/depOnboardingSettings/{token_a}/enrollmentProfiles"
        everything = await check_collection(admin, profiles, "displayName")
        context = (await admin.get(profiles)).json()["@odata.context"]
        assert context.endswith(
            f"/graph/beta/$metadata#deviceManagement/depOnboardingSettings('{token_a}')/enrollmentProfiles"
        )
        assert sorted(item["id"] for item in everything) == sorted(ids)
        filtered = await admin.get(
            profiles, params={"$filter": "supervisedModeEnabled eq true", "$select": "id,enabledSkipKeys"}
        )
        assert {item["id"] for item in filtered.json()["value"]} == {ids[0], ids[2]}
        assert all(item["enabledSkipKeys"] == ["Siri"] for item in filtered.json()["value"])
        scoped = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="admin of A", role=BuiltInRole.INTUNE_ADMINISTRATOR, scope_tag_ids=[tag_a]
        )
        async with muster.admin(scoped) as admin_of_a:
            tokens = await admin_of_a.get(f"{DM}/depOnboardingSettings", params={"$count": "true"})
            assert _ids(tokens) == [token_a] and tokens.json()["@odata.count"] == 1
            assert token_b not in _ids(await admin_of_a.get(f"{DM}/depOnboardingSettings", params={"$top": "5"}))
            kiosks = await admin_of_a.get(
                profiles,
                params={"$filter": "startswith(displayName,'KIOSK')", "$orderby": "displayName desc", "$count": "true"},
            )
            assert _ids(kiosks) == [ids[1], ids[0]] and kiosks.json()["@odata.count"] == 2
            walked = await walk(admin_of_a, profiles, {"$top": "1", "$orderby": "createdDateTime"})
            assert sorted(item["id"] for item in walked) == sorted(ids[:2])  # Staff is tagged B


async def test_webhooks_provisioning_tokens_and_group_members(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        hooks = f"{DM}/webhookSubscriptions"
        for n in range(3):
            body = {"notificationUrl": f"https://hooks{n}.example.com/in", "events": ["deviceEnrolled"]}
            assert (await admin.post(hooks, json={**body, "description": f"hook {n}"})).status_code == 201
        everything = await check_collection(admin, hooks, "notificationUrl")
        soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        recent = await admin.get(hooks, params={"$filter": f"createdDateTime lt {soon} and description ne 'hook 1'"})
        assert len(_ids(recent)) == 2
        store, now = SqlWebhookStore(muster.container.engine), datetime.now(UTC)
        for n in range(3):  # event-0 is the newest
            moment = now - timedelta(minutes=n)
            await store.enqueue(
                org_id=DEFAULT_ORG_ID, event_id=f"event-{n}", event_type="deviceEnrolled", body="{}", now=moment
            )
        deliveries = f"{hooks}/{everything[0]['id']}/deliveries"
        newest_first = (await admin.get(deliveries)).json()["value"]
        assert [item["eventId"] for item in newest_first] == ["event-0", "event-1", "event-2"]
        await check_collection(admin, deliveries, "eventId")
        old = await admin.get(
            deliveries, params={"$filter": f"createdDateTime lt {newest_first[0]['createdDateTime']}"}
        )
        assert [item["eventId"] for item in old.json()["value"]] == ["event-1", "event-2"]
        one = await admin.get(deliveries, params={"$filter": "eventId eq 'EVENT-1'", "$count": "true"})
        assert one.json()["@odata.count"] == 1
        assert (await admin.get(deliveries, params={"$filter": "attempts gt 'x'"})).status_code == 400
        tokens = f"{GRAPH}/directory/provisioningTokens"
        for name in ("okta", "Entra", "jumpcloud"):
            assert (await admin.post(tokens, json={"displayName": name})).status_code == 201
        await check_collection(admin, tokens, "displayName")
        group = (await admin.post(f"{GRAPH}/groups", json={"displayName": "Staff"})).json()
        for n in range(4):
            upn = f"user{n}@example.com"
            user = (await admin.post(f"{GRAPH}/users", json={"userPrincipalName": upn, "displayName": upn})).json()
            ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user['id']}"}
            assert (await admin.post(f"{GRAPH}/groups/{group['id']}/members/$ref", json=ref)).status_code == 204
        members = f"{GRAPH}/groups/{group['id']}/members"
        await check_collection(admin, members, "userPrincipalName")
        two = await admin.get(
            members, params={"$filter": "userPrincipalName in ('USER1@example.com', 'user3@example.com')"}
        )
        assert {item["userPrincipalName"] for item in two.json()["value"]} == {"user1@example.com", "user3@example.com"}
        member_of = await admin.get(
            f"{GRAPH}/users/{user['id']}/memberOf", params={"$filter": "displayName eq 'staff'"}
        )
        assert _ids(member_of) == [group["id"]]


IN_MEMORY_COLLECTIONS = [
    f"{DM}/roleDefinitions",
    f"{DM}/roleAssignments",
    f"{DM}/roleScopeTags",
    f"{DM}/webhookSubscriptions",
    f"{DM}/webhookSubscriptions/{{subscription_id}}/deliveries",
    f"{DM}/depOnboardingSettings",
    f"{DM}/depOnboardingSettings/{{token_id}}/enrollmentProfiles",
    f"{GRAPH}/directory/provisioningTokens",
    f"{GRAPH}/groups/{{group_id}}/members",
    f"{GRAPH}/groups/{{group_id}}/transitiveMembers",
    f"{GRAPH}/users/{{user_id}}/memberOf",
    f"{GRAPH}/users/{{user_id}}/transitiveMemberOf",
]


def test_the_openapi_publishes_the_query_options() -> None:
    paths = create_app().openapi()["paths"]
    for path in IN_MEMORY_COLLECTIONS:
        names = {parameter["name"] for parameter in paths[path]["get"]["parameters"]}
        assert {"$filter", "$orderby", "$select", "$top", "$skiptoken", "$count"} <= names, path
