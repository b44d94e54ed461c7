"""Graph `users` and `groups` over the admin API: CRUD, OData, memberships, nested and dynamic groups."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from sqlalchemy import insert, update

from muster.store.tables import DEFAULT_ORG_ID, devices
from tests.harness import running_muster

GRAPH = "/graph/beta"


async def _user(admin: httpx.AsyncClient, upn: str, **extra: object) -> dict[str, object]:
    response = await admin.post(f"{GRAPH}/users", json={"userPrincipalName": upn, "displayName": upn, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _group(admin: httpx.AsyncClient, name: str, **extra: object) -> dict[str, object]:
    response = await admin.post(f"{GRAPH}/groups", json={"displayName": name, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _ref(object_id: object) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


async def test_users_crud_and_odata(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        for n in range(7):
            await _user(admin, f"user{n}@example.com", department="Sales" if n % 2 else "HR", givenName=f"U{n}")
        ada = await _user(admin, "ada@example.com", givenName="Ada", surname="Lovelace", jobTitle="Engineer")
        assert ada["accountEnabled"] is True and ada["createdDateTime"].endswith("Z")

        duplicate = await admin.post(f"{GRAPH}/users", json={"userPrincipalName": "ADA@example.com"})
        assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"
        assert (await admin.post(f"{GRAPH}/users", json={"userPrincipalName": "no-at-sign"})).status_code == 400

        assert (await admin.get(f"{GRAPH}/users/ada@example.com")).json()["id"] == ada["id"]
        patched = await admin.patch(f"{GRAPH}/users/{ada['id']}", json={"department": "Research"})
        assert patched.status_code == 204
        assert (await admin.get(f"{GRAPH}/users/{ada['id']}")).json()["department"] == "Research"

        query = {"$filter": "department eq 'sales'", "$select": "id,userPrincipalName", "$top": "2", "$count": "true"}
        page = (await admin.get(f"{GRAPH}/users", params=query)).json()
        assert page["@odata.count"] == 3 and set(page["value"][0]) == {"id", "userPrincipalName"}
        names = [u["userPrincipalName"] for u in page["value"]]
        while "@odata.nextLink" in page:
            page = (await admin.get(page["@odata.nextLink"])).json()
            names += [u["userPrincipalName"] for u in page["value"]]
        assert sorted(names) == ["user1@example.com", "user3@example.com", "user5@example.com"]
        bad_select = await admin.get(f"{GRAPH}/users", params={"$select": "password"})
        assert bad_select.status_code == 400

        assert (await admin.delete(f"{GRAPH}/users/{ada['id']}")).status_code == 204
        assert (await admin.get(f"{GRAPH}/users/{ada['id']}")).status_code == 404


async def test_assigned_and_nested_groups(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        ada = await _user(admin, "ada@example.com")
        staff, engineers = await _group(admin, "Staff"), await _group(admin, "Engineers")
        assert engineers["groupTypes"] == [] and engineers["membershipRuleProcessingState"] is None

        assert (
            await admin.post(f"{GRAPH}/groups/{engineers['id']}/members/$ref", json=_ref(ada["id"]))
        ).status_code == 204
        again = await admin.post(f"{GRAPH}/groups/{engineers['id']}/members/$ref", json=_ref(ada["id"]))
        assert again.status_code == 409
        nest = await admin.post(f"{GRAPH}/groups/{staff['id']}/members/$ref", json=_ref(engineers["id"]))
        assert nest.status_code == 204
        cycle = await admin.post(f"{GRAPH}/groups/{engineers['id']}/members/$ref", json=_ref(staff["id"]))
        assert cycle.status_code == 409 and "cycle" in cycle.json()["error"]["message"]
        unknown = await admin.post(f"{GRAPH}/groups/{staff['id']}/members/$ref", json=_ref(uuid.uuid4()))
        assert unknown.status_code == 404
        garbage = await admin.post(f"{GRAPH}/groups/{staff['id']}/members/$ref", json={"@odata.id": "x"})
        assert garbage.status_code == 400

        members = (await admin.get(f"{GRAPH}/groups/{staff['id']}/members")).json()["value"]
        assert [(m["@odata.type"], m["id"]) for m in members] == [("#microsoft.graph.group", engineers["id"])]
        transitive = (await admin.get(f"{GRAPH}/groups/{staff['id']}/transitiveMembers")).json()["value"]
        assert {m["id"] for m in transitive} == {engineers["id"], ada["id"]}
        direct = (await admin.get(f"{GRAPH}/users/{ada['id']}/memberOf")).json()["value"]
        assert [g["displayName"] for g in direct] == ["Engineers"]
        every = (await admin.get(f"{GRAPH}/users/{ada['id']}/transitiveMemberOf")).json()["value"]
        assert sorted(g["displayName"] for g in every) == ["Engineers", "Staff"]
        assert await muster.container.directory.group_ids_of(DEFAULT_ORG_ID, str(ada["id"])) == {
            engineers["id"],
            staff["id"],
        }

        removed = await admin.delete(f"{GRAPH}/groups/{engineers['id']}/members/{ada['id']}/$ref")
        assert removed.status_code == 204
        assert (await admin.get(f"{GRAPH}/users/{ada['id']}/transitiveMemberOf")).json()["value"] == []
        assert (await admin.delete(f"{GRAPH}/groups/{staff['id']}")).status_code == 204
        assert (await admin.get(f"{GRAPH}/groups/{staff['id']}")).status_code == 404


async def test_dynamic_user_group_follows_its_rule(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        ada = await _user(admin, "ada@example.com", department="Sales")
        await _user(admin, "bob@example.com", department="HR")
        sales = await _group(
            admin, "Sales", groupTypes=["DynamicMembership"], membershipRule='(user.department -eq "sales")'
        )
        assert sales["membershipRuleProcessingState"] == "On"

        async def members() -> list[str]:
            found = (await admin.get(f"{GRAPH}/groups/{sales['id']}/members")).json()["value"]
            return sorted(m["userPrincipalName"] for m in found)

        assert await members() == ["ada@example.com"]
        carol = await _user(admin, "carol@example.com", department="SALES")
        assert await members() == ["ada@example.com", "carol@example.com"]
        await admin.patch(f"{GRAPH}/users/{ada['id']}", json={"department": "HR"})
        assert await members() == ["carol@example.com"]

        refused = await admin.post(f"{GRAPH}/groups/{sales['id']}/members/$ref", json=_ref(ada["id"]))
        assert refused.status_code == 409 and "dynamic membership" in refused.json()["error"]["message"]
        removal = await admin.delete(f"{GRAPH}/groups/{sales['id']}/members/{carol['id']}/$ref")
        assert removal.status_code == 409

        rule = {"membershipRule": 'user.department -in ["HR", "Sales"]'}
        assert (await admin.patch(f"{GRAPH}/groups/{sales['id']}", json=rule)).status_code == 204
        assert await members() == ["ada@example.com", "bob@example.com", "carol@example.com"]

        bad = await admin.patch(f"{GRAPH}/groups/{sales['id']}", json={"membershipRule": "user.department -eq"})
        assert bad.status_code == 400 and "column" in bad.json()["error"]["message"]
        mixed = await admin.post(
            f"{GRAPH}/groups",
            json={
                "displayName": "Mixed",
                "groupTypes": ["DynamicMembership"],
                "membershipRule": 'user.department -eq "a" or device.model -eq "b"',
            },
        )
        assert mixed.status_code == 400
        no_rule = await admin.post(f"{GRAPH}/groups", json={"displayName": "X", "groupTypes": ["DynamicMembership"]})
        assert no_rule.status_code == 400
        typo = await admin.patch(f"{GRAPH}/groups/{sales['id']}", json={"membershipRule": 'user.departmnet -eq "x"'})
        assert typo.status_code == 400 and "unknown property 'user.departmnet'" in typo.json()["error"]["message"]


async def test_dynamic_device_group_is_refreshed_by_the_job(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        ipad = str(uuid.uuid4())
        row = {
            "org_id": DEFAULT_ORG_ID,
            "owner_type": "company",
            "enrollment_type": "appleBulkEnrollmentWithUser",
            "management_state": "managed",
            "inventory": {},
        }
        async with muster.container.engine.begin() as conn:
            await conn.execute(insert(devices), [{**row, "id": ipad, "model_name": "iPad Pro"}])
            personal = {**row, "id": str(uuid.uuid4()), "model_name": "iPad Air", "owner_type": "personal"}
            await conn.execute(insert(devices), [personal])
        rule = 'device.model -startsWith "ipad" and device.deviceOwnership -eq "Corporate"'
        ipads = await _group(admin, "iPads", groupTypes=["DynamicMembership"], membershipRule=rule)
        listed = (await admin.get(f"{GRAPH}/groups/{ipads['id']}/members")).json()["value"]
        assert [(m["@odata.type"], m["id"]) for m in listed] == [("#microsoft.graph.device", ipad)]

        iphone = str(uuid.uuid4())
        async with muster.container.engine.begin() as conn:
            await conn.execute(insert(devices), [{**row, "id": iphone, "model_name": "iPad mini"}])
            await conn.execute(update(devices).where(devices.c.id == ipad).values(model_name="iPhone 15"))
        await muster.container.directory.refresh_device_groups()
        listed = (await admin.get(f"{GRAPH}/groups/{ipads['id']}/members")).json()["value"]
        assert [m["id"] for m in listed] == [iphone]
        assert await muster.container.directory.group_ids_of(DEFAULT_ORG_ID, iphone) == {ipads["id"]}
