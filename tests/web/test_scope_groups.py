"""Role assignments' scope groups (Intune "Scope (Groups)") decide which devices an admin may act on or change:
devices in one of the groups, or whose primary user is (nested groups included); reads follow scope tags alone."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.rbac import BuiltInRole
from muster.store.directory import SqlDirectoryStore, groups_of_members
from muster.store.engine import create_engine
from muster.store.migrate import upgrade
from muster.store.tables import DEFAULT_ORG_ID, devices, enrollments, group_members, groups, organizations
from tests.harness import DM, RunningMuster, database_rows, running_muster
from tests.web.test_admin_access import add_device, create_tag

GRAPH = "/graph/beta"


async def _enrolled_device(engine: AsyncEngine, tags: list[str], upn: str | None = None) -> str:
    """A managed device with a device channel (so actions queue commands), tagged `tags`, used by `upn`."""
    device_id = await add_device(engine, tags[0])
    async with engine.begin() as conn:
        await conn.execute(
            update(devices).where(devices.c.id == device_id).values(user_principal_name=upn, scope_tag_ids=tags)
        )
        await conn.execute(
            insert(enrollments).values(
                id=f"UDID-{device_id}",
                org_id=DEFAULT_ORG_ID,
                device_id=device_id,
                kind="device",
                enabled=True,
                topic="com.apple.mgmt.External.test",
            )
        )
    return device_id


async def _created(admin: httpx.AsyncClient, path: str, body: dict[str, object]) -> str:
    response = await admin.post(f"{GRAPH}/{path}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _add_member(admin: httpx.AsyncClient, group_id: str, member_id: str) -> None:
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{member_id}"}
    response = await admin.post(f"{GRAPH}/groups/{group_id}/members/$ref", json=ref)
    assert response.status_code == 204, response.text


async def _help_desk(admin: httpx.AsyncClient, muster: RunningMuster, scopes: list[tuple[str, list[str]]]) -> str:
    """A new API token holding, besides its own read-only role, one Help Desk Operator assignment per (tag, scope
    groups) pair."""
    container = muster.container
    token = await container.admins.create_token(
        org_id=DEFAULT_ORG_ID, name="help desk", role=BuiltInRole.READ_ONLY_OPERATOR
    )
    principal = await container.authenticator.authenticate(token)
    assert principal is not None
    roles = {r["displayName"]: r["id"] for r in (await admin.get(f"{DM}/roleDefinitions")).json()["value"]}
    for n, (tag, scope_groups) in enumerate(scopes):
        body = {
            "displayName": f"help desk {principal.id} {n}",
            "members": [principal.id],
            "roleScopeTagIds": [tag],
            "scopeMembers": scope_groups,
            "roleDefinitionId": roles[BuiltInRole.HELP_DESK_OPERATOR],
        }
        response = await admin.post(f"{DM}/roleAssignments", json=body)
        assert response.status_code == 201, response.text
        assert response.json()["scopeMembers"] == scope_groups
    return token


async def _commands(client: httpx.AsyncClient, device_id: str) -> list[str]:
    response = await client.get(f"{DM}/managedDevices/{device_id}/commands")
    assert response.status_code == 200, response.text
    return [c["requestType"] for c in response.json()["value"]]


async def test_scope_groups_decide_which_devices_of_the_tags_an_admin_manages(
    tmp_path: Path, database_url: str
) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        scope_group = await _created(admin, "groups", {"displayName": "Branch office"})
        nested = await _created(admin, "groups", {"displayName": "Branch office tellers"})
        await _add_member(admin, scope_group, nested)
        alice = await _created(admin, "users", {"userPrincipalName": "alice@example.com"})
        bob = await _created(admin, "users", {"userPrincipalName": "bob@example.com"})
        await _created(admin, "users", {"userPrincipalName": "carol@example.com"})
        await _add_member(admin, scope_group, alice)
        await _add_member(admin, nested, bob)
        in_group = await _enrolled_device(engine, [tag_a])
        await _add_member(admin, nested, in_group)
        alices = await _enrolled_device(engine, [tag_a], "alice@example.com")
        bobs = await _enrolled_device(engine, [tag_a], "BOB@example.com")  # UPNs compare case-insensitively
        carols = await _enrolled_device(engine, [tag_a], "carol@example.com")
        nobodys = await _enrolled_device(engine, [tag_a])
        tag_b_in_group = await _enrolled_device(engine, [tag_b], "alice@example.com")

        token = await _help_desk(admin, muster, [(tag_a, [scope_group])])
        async with muster.admin(token) as help_desk:
            for device_id in (in_group, alices, bobs):
                answer = await help_desk.post(f"{DM}/managedDevices/{device_id}/remoteLock", json={})
                assert answer.status_code == 202, answer.text
                assert await _commands(help_desk, device_id) == ["DeviceLock"]

            before = await database_rows(engine, skip=("audit_events", "audit_log"))
            for device_id in (carols, nobodys):
                refused = await help_desk.post(f"{DM}/managedDevices/{device_id}/remoteLock", json={})
                assert refused.status_code == 403, refused.text
                assert "scope groups" in refused.json()["error"]["message"]
                retag = await help_desk.patch(f"{DM}/managedDevices/{device_id}", json={"roleScopeTagIds": [tag_a]})
                assert retag.status_code == 403 and "scope groups" in retag.json()["error"]["message"]
                assert await _commands(help_desk, device_id) == []  # reads follow the scope tags only
            outside_tags = await help_desk.post(f"{DM}/managedDevices/{tag_b_in_group}/remoteLock", json={})
            assert outside_tags.status_code == 403 and "scope tags" in outside_tags.json()["error"]["message"]
            assert await database_rows(engine, skip=("audit_events", "audit_log")) == before

            retag = await help_desk.patch(f"{DM}/managedDevices/{alices}", json={"roleScopeTagIds": [tag_a]})
            assert retag.status_code == 200, retag.text

            bulk = await help_desk.post(
                f"{DM}/managedDevices/executeAction",
                json={"actionName": "syncDevice", "deviceIds": [in_group, carols, bobs, nobodys, tag_b_in_group]},
            )
            assert bulk.status_code == 200, bulk.text
            assert sorted(bulk.json()["successfulDeviceIds"]) == sorted([in_group, bobs])
            failures = {f["deviceId"]: f["reason"] for f in bulk.json()["failures"]}
            assert set(failures) == {carols, nobodys, tag_b_in_group}
            assert "scope groups" in failures[carols] and "scope groups" in failures[nobodys]
            assert "scope tags" in failures[tag_b_in_group]
            for device_id in (carols, nobodys):
                assert await _commands(help_desk, device_id) == []
            assert "DeviceInformation" in await _commands(help_desk, bobs)

            await _add_member(admin, scope_group, carols)  # memberships are read at each request
            answer = await help_desk.post(f"{DM}/managedDevices/{carols}/remoteLock", json={})
            assert answer.status_code == 202, answer.text


async def test_assignments_do_not_combine_tags_of_one_with_groups_of_another(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        scope_group = await _created(admin, "groups", {"displayName": "Branch office"})
        a_in_group = await _enrolled_device(engine, [tag_a])
        await _add_member(admin, scope_group, a_in_group)
        a_outside = await _enrolled_device(engine, [tag_a])
        b_outside = await _enrolled_device(engine, [tag_b])
        a_and_b_outside = await _enrolled_device(engine, [tag_a, tag_b])

        everyone_of_a = await _help_desk(admin, muster, [(tag_a, [])])
        async with muster.admin(everyone_of_a) as help_desk:
            for device_id in (a_in_group, a_outside, a_and_b_outside):
                answer = await help_desk.post(f"{DM}/managedDevices/{device_id}/rebootNow", json={})
                assert answer.status_code == 202, answer.text

        two = await _help_desk(admin, muster, [(tag_a, [scope_group]), (tag_b, [])])
        async with muster.admin(two) as help_desk:
            refused = await help_desk.post(f"{DM}/managedDevices/{a_outside}/remoteLock", json={})
            assert refused.status_code == 403 and "scope groups" in refused.json()["error"]["message"]
            for device_id in (a_in_group, b_outside, a_and_b_outside):  # the last through the tag-B assignment
                answer = await help_desk.post(f"{DM}/managedDevices/{device_id}/remoteLock", json={})
                assert answer.status_code == 202, (device_id, answer.text)
            bulk = await help_desk.post(
                f"{DM}/managedDevices/executeAction",
                json={"actionName": "remoteLock", "deviceIds": [a_in_group, a_outside, b_outside, a_and_b_outside]},
            )
            assert bulk.json()["failedDeviceIds"] == [a_outside]
            assert sorted(bulk.json()["successfulDeviceIds"]) == sorted([a_in_group, b_outside, a_and_b_outside])
            assert await _commands(help_desk, a_outside) == ["RestartDevice"]  # the first admin's, no lock


async def test_batched_memberships_match_a_reference_closure(tmp_path: Path, database_url: str) -> None:
    """`groups_of_members` (one query per nesting level for all members) agrees with a plain graph walk, loops
    included, and with the one-member lookup."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    rng = random.Random(20261123)
    group_ids = [f"g{n}" for n in range(30)]
    members = [f"m{n}" for n in range(60)]
    edges = {(rng.choice(group_ids), rng.choice(members + group_ids)) for _ in range(120)}
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(organizations).values(id=DEFAULT_ORG_ID, name="Muster", created_at=now))
            await conn.execute(
                insert(groups),
                [
                    {
                        "id": group_id,
                        "org_id": DEFAULT_ORG_ID,
                        "display_name": group_id,
                        "membership_type": "assigned",
                        "source": "api",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for group_id in group_ids
                ],
            )
            kind = {m: "group" if m in group_ids else "user" for _, m in edges}
            rows = [{"group_id": g, "member_id": m, "member_type": kind[m]} for g, m in edges]
            await conn.execute(insert(group_members), rows)
        async with engine.connect() as conn:
            found = await groups_of_members(conn, DEFAULT_ORG_ID, [*members, *group_ids, "stranger"])
        store = SqlDirectoryStore(engine)
        for member, closure in found.items():
            assert closure == _reference_closure(member, edges), member
            assert closure == await store.group_ids_of(DEFAULT_ORG_ID, member, transitive=True)
    finally:
        await engine.dispose()


def _reference_closure(member: str, edges: set[tuple[str, str]]) -> frozenset[str]:
    reached: set[str] = set()
    pending = [member]
    while pending:
        node = pending.pop()
        for group_id, member_id in edges:
            if member_id == node and group_id not in reached:
                reached.add(group_id)
                pending.append(group_id)
    return frozenset(reached)
