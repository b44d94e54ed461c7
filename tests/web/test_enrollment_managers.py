"""`deviceEnrollmentManagers` over HTTP: who may become a DEM, the 150 limit under concurrent adds, permissions, and
the store's answers for the enrollment decision.

Seeds: seed-catalog-A §2.6 DEM-01..06, E17 (003_729e51c15a5a5608.txt:1442-1523).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.rbac import BuiltInRole
from muster.store.enrollment_managers import SqlEnrollmentManagerStore
from muster.store.tables import DEFAULT_ORG_ID, devices, users
from muster.store.tables_corporate_identifiers import device_enrollment_managers
from tests.harness import DM, running_muster

DEMS = f"{DM}/deviceEnrollmentManagers"
NOW = datetime(2026, 11, 23, tzinfo=UTC)


async def add_users(engine: AsyncEngine, *upns: str, enabled: bool = True) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in upns]
    async with engine.begin() as conn:
        await conn.execute(
            insert(users),
            [
                {
                    "id": user_id,
                    "org_id": DEFAULT_ORG_ID,
                    "user_principal_name": upn,
                    "display_name": upn.split("@")[0],
                    "account_enabled": enabled,
                    "source": "api",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for user_id, upn in zip(ids, upns, strict=True)
            ],
        )
    return ids


async def add_device(engine: AsyncEngine, upn: str, enrollment_type: str, unenrolled: bool = False) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(devices).values(
                id=str(uuid.uuid4()),
                org_id=DEFAULT_ORG_ID,
                owner_type="company",
                enrollment_type=enrollment_type,
                management_state="managed",
                user_principal_name=upn,
                unenrolled_at=NOW if unenrolled else None,
                inventory={},
                scope_tag_ids=["0"],
            )
        )


async def test_add_list_and_remove_a_manager_003_1470(tmp_path: Path, database_url: str) -> None:
    """DEM-01 (003_729e51c15a5a5608.txt:1470-1477) add by UPN; DEM-02 (:1479) delete; E17 enrolled devices."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        [kiosk_id] = await add_users(engine, "Kiosk@example.com")
        await add_device(engine, "kiosk@example.com", "deviceEnrollmentManager")
        await add_device(engine, "Kiosk@example.com", "deviceEnrollmentManager")
        await add_device(engine, "kiosk@example.com", "deviceEnrollmentManager", unenrolled=True)
        await add_device(engine, "kiosk@example.com", "userEnrollment")
        added = await admin.post(DEMS, json={"userPrincipalName": "KIOSK@example.com"})
        assert added.status_code == 201, added.text
        dem = added.json()
        assert dem["id"] == dem["userId"] == kiosk_id and dem["userPrincipalName"] == "Kiosk@example.com"
        assert dem["enrolledDeviceCount"] == 2 and dem["addedDateTime"].endswith("Z")
        listed = (await admin.get(DEMS, params={"$filter": "startswith(userPrincipalName,'kiosk')"})).json()
        assert [d["id"] for d in listed["value"]] == [kiosk_id]
        assert (await admin.get(f"{DEMS}/{kiosk_id}")).json() == dem
        again = await admin.post(DEMS, json={"userPrincipalName": "kiosk@example.com"})
        assert again.status_code == 409 and "already" in again.json()["error"]["message"]
        store = SqlEnrollmentManagerStore(muster.container.engine)  # what the enrollment gate reads
        assert await store.is_manager(DEFAULT_ORG_ID, "kiosk@EXAMPLE.com") and await store.is_manager(
            DEFAULT_ORG_ID, kiosk_id
        )
        assert await store.enrolled_device_count(DEFAULT_ORG_ID, "KIOSK@example.com") == 2
        assert (await admin.delete(f"{DEMS}/{kiosk_id}")).status_code == 204
        assert (await admin.get(f"{DEMS}/{kiosk_id}")).status_code == 404
        assert (await admin.delete(f"{DEMS}/{kiosk_id}")).status_code == 404
        assert not await store.is_manager(DEFAULT_ORG_ID, kiosk_id)


async def test_only_enabled_non_admin_directory_users_003_1442(tmp_path: Path, database_url: str) -> None:
    """DEM-01/LIC-04 (003_729e51c15a5a5608.txt:1444, 1476) a directory user; DEM-04 (:1442) not an administrator:
    not a member of any role assignment, directly or through a (nested) group."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        unknown = await admin.post(DEMS, json={"userPrincipalName": "nobody@example.com"})
        assert unknown.status_code == 400 and "no user" in unknown.json()["error"]["message"]
        await add_users(engine, "off@example.com", enabled=False)
        disabled = await admin.post(DEMS, json={"userPrincipalName": "off@example.com"})
        assert disabled.status_code == 400 and "disabled" in disabled.json()["error"]["message"]
        [direct, nested] = await add_users(engine, "admin@example.com", "nested@example.com")
        outer = (await admin.post("/graph/beta/groups", json={"displayName": "IT"})).json()["id"]
        inner = (await admin.post("/graph/beta/groups", json={"displayName": "IT Paris"})).json()["id"]
        for group, member in ((inner, nested), (outer, inner)):
            ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{member}"}
            assert (await admin.post(f"/graph/beta/groups/{group}/members/$ref", json=ref)).status_code == 204
        roles = {r["displayName"]: r["id"] for r in (await admin.get(f"{DM}/roleDefinitions")).json()["value"]}
        assignment = await admin.post(
            f"{DM}/roleAssignments",
            json={
                "displayName": "IT",
                "members": [direct, outer],
                "roleDefinitionId": roles[BuiltInRole.HELP_DESK_OPERATOR],
            },
        )
        assert assignment.status_code == 201, assignment.text
        for upn in ("admin@example.com", "nested@example.com"):
            refused = await admin.post(DEMS, json={"userPrincipalName": upn})
            assert refused.status_code == 409 and "administrator" in refused.json()["error"]["message"]


async def test_at_most_150_managers_even_when_added_concurrently_003_1523(tmp_path: Path, database_url: str) -> None:
    """DEM-06 (003_729e51c15a5a5608.txt:1521-1523): the 151st is refused, with a message; concurrent adds cannot
    pass the limit."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        existing = await add_users(engine, *(f"dem{n}@example.com" for n in range(147)))
        async with engine.begin() as conn:
            rows = [{"user_id": u, "org_id": DEFAULT_ORG_ID, "added_by": "test", "added_at": NOW} for u in existing]
            await conn.execute(insert(device_enrollment_managers), rows)
        await add_users(engine, *(f"late{n}@example.com" for n in range(6)))
        answers = await asyncio.gather(
            *(admin.post(DEMS, json={"userPrincipalName": f"late{n}@example.com"}) for n in range(6))
        )
        assert sorted(a.status_code for a in answers) == [201] * 3 + [409] * 3
        assert all("150" in a.json()["error"]["message"] for a in answers if a.status_code == 409)
        assert len((await admin.get(DEMS, params={"$top": "1000"})).json()["value"]) == 150


async def test_permissions_003_1461(tmp_path: Path) -> None:
    """DEM-03 (003_729e51c15a5a5608.txt:1444, 1461-1468): viewing needs DeviceEnrollmentManagers_Read, adding and
    deleting _Update (the built-in "Device Enrollment Manager Administrator" holds both)."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        await add_users(muster.container.engine, "kiosk@example.com")
        tokens = {
            role: await muster.container.admins.create_token(org_id=DEFAULT_ORG_ID, name=role.value, role=role)
            for role in (
                BuiltInRole.READ_ONLY_OPERATOR,
                BuiltInRole.HELP_DESK_OPERATOR,
                BuiltInRole.ENROLLMENT_MANAGER_ADMINISTRATOR,
            )
        }
        async with muster.admin(tokens[BuiltInRole.HELP_DESK_OPERATOR]) as help_desk:
            assert (await help_desk.get(DEMS)).status_code == 403
        async with muster.admin(tokens[BuiltInRole.READ_ONLY_OPERATOR]) as reader:
            assert (await reader.get(DEMS)).status_code == 200
            assert (await reader.post(DEMS, json={"userPrincipalName": "kiosk@example.com"})).status_code == 403
        async with muster.admin(tokens[BuiltInRole.ENROLLMENT_MANAGER_ADMINISTRATOR]) as manager_admin:
            added = await manager_admin.post(DEMS, json={"userPrincipalName": "kiosk@example.com"})
            assert added.status_code == 201
            assert (await manager_admin.delete(f"{DEMS}/{added.json()['id']}")).status_code == 204
        assert (await admin.get(DEMS)).json()["value"] == []
