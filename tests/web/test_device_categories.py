"""Graph `deviceCategories` and a device's `deviceCategory` over HTTP (seed-catalog-A §2.7 CAT-01..07, E18).

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from muster.domain.rbac import BuiltInRole
from muster.store.tables import DEFAULT_ORG_ID, devices
from tests.harness import DM, RunningMuster, running_muster
from tests.web.test_admin_access import add_device, create_tag

CATEGORIES = f"{DM}/deviceCategories"
GROUPS = "/graph/beta/groups"


async def _category(admin: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    answer = await admin.post(CATEGORIES, json={"displayName": name, **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _token(muster: RunningMuster, role: BuiltInRole, tags: list[str] | None = None) -> str:
    return await muster.container.admins.create_token(
        org_id=DEFAULT_ORG_ID, name=f"{role} {tags}", role=role, scope_tag_ids=tags
    )


async def _set(admin: httpx.AsyncClient, device_id: str, category_id: str) -> httpx.Response:
    reference = {"@odata.id": f"https://muster.example.com{CATEGORIES}/{category_id}"}
    return await admin.put(f"{DM}/managedDevices/{device_id}/deviceCategory/$ref", json=reference)


async def test_create_list_update_delete_cat_02_003_1539(tmp_path: Path, database_url: str) -> None:
    """CAT-02 (003:1539-1548): name required and unique (ignoring case), optional description and scope tags."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        hr = await _category(
            admin, "HR", description="Human resources", **{"@odata.type": "#microsoft.graph.deviceCategory"}
        )
        assert hr["@odata.type"] == "#microsoft.graph.deviceCategory"
        assert (hr["displayName"], hr["description"], hr["roleScopeTagIds"]) == ("HR", "Human resources", ["0"])
        await _category(admin, "accounting")
        duplicate = await admin.post(CATEGORIES, json={"displayName": "hr"})
        assert duplicate.status_code == 409
        for bad in ({}, {"displayName": "  "}, {"displayName": "x" * 257}, {"displayName": "X", "color": "red"}):
            assert (await admin.post(CATEGORIES, json=bad)).status_code == 400, bad
        listed = (await admin.get(CATEGORIES)).json()["value"]
        assert [c["displayName"] for c in listed] == ["accounting", "HR"]
        filtered = (await admin.get(CATEGORIES, params={"$filter": "displayName eq 'HR'"})).json()["value"]
        assert [c["id"] for c in filtered] == [hr["id"]]
        patched = await admin.patch(f"{CATEGORIES}/{hr['id']}", json={"description": "People"})
        assert patched.status_code == 200 and patched.json()["description"] == "People"
        assert patched.json()["warnings"] == []
        assert (await admin.patch(f"{CATEGORIES}/{hr['id']}", json={"displayName": "Accounting"})).status_code == 409
        assert (await admin.get(f"{CATEGORIES}/{hr['id']}")).json()["displayName"] == "HR"
        assert (await admin.delete(f"{CATEGORIES}/{hr['id']}")).status_code == 204
        assert (await admin.get(f"{CATEGORIES}/{hr['id']}")).status_code == 404
        assert (await admin.delete(f"{CATEGORIES}/{hr['id']}")).status_code == 404


async def test_only_intune_administrators_configure_categories_cat_01_003_1537(tmp_path: Path) -> None:
    """CAT-01 (003:1537): other built-in roles read categories but cannot create, change or delete them."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        hr = await _category(admin, "HR")
        for role in (BuiltInRole.READ_ONLY_OPERATOR, BuiltInRole.POLICY_AND_PROFILE_MANAGER):
            async with muster.admin(await _token(muster, role)) as other:
                assert (await other.get(CATEGORIES)).status_code == 200
                assert (await other.post(CATEGORIES, json={"displayName": "Sales"})).status_code == 403
                assert (await other.patch(f"{CATEGORIES}/{hr['id']}", json={"description": "x"})).status_code == 403
                assert (await other.delete(f"{CATEGORIES}/{hr['id']}")).status_code == 403
        assert [c["displayName"] for c in (await admin.get(CATEGORIES)).json()["value"]] == ["HR"]


async def test_scope_tags_limit_what_an_admin_sees_e18_003_1546(tmp_path: Path, database_url: str) -> None:
    """E18 scope_tags (003:1546): an admin scoped to tag A neither sees nor changes a category tagged B."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        in_a = await _category(admin, "Sales", roleScopeTagIds=[tag_a])
        in_b = await _category(admin, "HR", roleScopeTagIds=[tag_b])
        assert in_b["roleScopeTagIds"] == [tag_b]
        async with muster.admin(await _token(muster, BuiltInRole.INTUNE_ADMINISTRATOR, [tag_a])) as scoped:
            assert [c["id"] for c in (await scoped.get(CATEGORIES)).json()["value"]] == [in_a["id"]]
            assert (await scoped.get(f"{CATEGORIES}/{in_b['id']}")).status_code == 404
            assert (await scoped.patch(f"{CATEGORIES}/{in_b['id']}", json={"description": "x"})).status_code == 404
            assert (await scoped.delete(f"{CATEGORIES}/{in_b['id']}")).status_code == 404
            refused = await scoped.post(CATEGORIES, json={"displayName": "Ops", "roleScopeTagIds": [tag_b]})
            assert refused.status_code == 403
            own = await scoped.post(CATEGORIES, json={"displayName": "Ops"})
            assert own.status_code == 201 and own.json()["roleScopeTagIds"] == [tag_a]  # the admin's own tags
        assert (await admin.get(f"{CATEGORIES}/{in_b['id']}")).json()["description"] is None


async def test_device_category_is_set_and_deleting_unassigns_cat_07_003_1566_cat_05_003_1564(
    tmp_path: Path, database_url: str
) -> None:
    """CAT-07 (003:1566-1575): an admin sets a device's category; CAT-05 (003:1564): deleting the category leaves
    the device "Unassigned"."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        device = await add_device(muster.container.engine, "0")
        category_of = f"{DM}/managedDevices/{device}/deviceCategory"
        assert (await admin.get(category_of)).status_code == 404  # none yet: Unassigned
        hr = await _category(admin, "HR")
        assert (await _set(admin, device, hr["id"])).status_code == 204
        assert (await admin.get(category_of)).json()["displayName"] == "HR"
        listed = await admin.get(f"{DM}/managedDevices", params={"$filter": "deviceCategoryDisplayName eq 'HR'"})
        assert [d["id"] for d in listed.json()["value"]] == [device]  # CAT-04: the list's category column
        assert (await _set(admin, device, "no-such-category")).status_code == 404
        bad = await admin.put(f"{category_of}/$ref", json={"@odata.id": "https://x/groups/1"})
        assert bad.status_code == 400
        assert (await _set(admin, "no-such-device", hr["id"])).status_code == 404
        assert (await admin.delete(f"{CATEGORIES}/{hr['id']}")).status_code == 204
        assert (await admin.get(category_of)).status_code == 404
        shown = (await admin.get(f"{DM}/managedDevices/{device}")).json()
        assert shown["deviceCategoryDisplayName"] == "Unassigned"
        async with muster.container.engine.connect() as conn:
            stored = (await conn.execute(select(devices.c.device_category_id).where(devices.c.id == device))).scalar()
        assert stored is None
        sales = await _category(admin, "Sales")
        assert (await _set(admin, device, sales["id"])).status_code == 204
        assert (await admin.delete(f"{category_of}/$ref")).status_code == 204
        assert (await admin.get(category_of)).status_code == 404


async def test_setting_a_category_needs_the_device_and_the_category_in_scope(tmp_path: Path) -> None:
    """CAT-07 with scope tags: a help desk operator scoped to A sets categories on A's devices only, and only to a
    category it can see."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        engine = muster.container.engine
        device_a, device_b = await add_device(engine, tag_a), await add_device(engine, tag_b)
        category_a = await _category(admin, "Sales", roleScopeTagIds=[tag_a])
        category_b = await _category(admin, "HR", roleScopeTagIds=[tag_b])
        async with muster.admin(await _token(muster, BuiltInRole.HELP_DESK_OPERATOR, [tag_a])) as help_desk:
            assert (await _set(help_desk, device_b, category_a["id"])).status_code == 403
            assert (await _set(help_desk, device_a, category_b["id"])).status_code == 404
            assert (await _set(help_desk, device_a, category_a["id"])).status_code == 204
        shown = await admin.get(f"{DM}/managedDevices/{device_a}/deviceCategory")
        assert shown.json()["id"] == category_a["id"]


async def test_dynamic_device_group_by_category_cat_03_003_1552(tmp_path: Path, database_url: str) -> None:
    """CAT-03 (003:1529, 1552-1556): `device.deviceCategory -eq "HR"` puts the HR devices in the group."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        hr_device, other_device = await add_device(engine, "0"), await add_device(engine, "0")
        hr = await _category(admin, "HR")
        sales = await _category(admin, "Sales")
        await _set(admin, other_device, sales["id"])
        group = await admin.post(
            GROUPS,
            json={
                "displayName": "HR devices",
                "groupTypes": ["DynamicMembership"],
                "membershipRule": 'device.deviceCategory -eq "hr"',
            },
        )
        assert group.status_code == 201, group.text
        members = f"{GROUPS}/{group.json()['id']}/members"
        assert (await admin.get(members)).json()["value"] == []
        await _set(admin, hr_device, hr["id"])
        await muster.container.directory.refresh_device_groups()  # the periodic job
        assert [m["id"] for m in (await admin.get(members)).json()["value"]] == [hr_device]
        await admin.delete(f"{CATEGORIES}/{hr['id']}")
        await muster.container.directory.refresh_device_groups()
        assert (await admin.get(members)).json()["value"] == []


async def test_renaming_names_the_dynamic_groups_it_affects_cat_06_003_1568(tmp_path: Path) -> None:
    """CAT-06 (003:1568): a rename answers with the dynamic groups whose rules test the old name."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        hr = await _category(admin, "HR")
        rules = {
            "HR devices": 'device.deviceCategory -eq "HR"',
            "Not HR": 'not (device.deviceCategory -in ["hr", "Legal"])',
            "Sales devices": 'device.deviceCategory -eq "Sales"',
            "iPads": 'device.model -startsWith "iPad"',
        }
        for name, rule in rules.items():
            created = await admin.post(
                GROUPS, json={"displayName": name, "groupTypes": ["DynamicMembership"], "membershipRule": rule}
            )
            assert created.status_code == 201, created.text
        renamed = await admin.patch(f"{CATEGORIES}/{hr['id']}", json={"displayName": "People"})
        assert renamed.status_code == 200 and renamed.json()["displayName"] == "People"
        warnings = renamed.json()["warnings"]
        assert len(warnings) == 2
        assert "'HR devices'" in warnings[0] and "'Not HR'" in warnings[1] and "'HR'" in warnings[0]
        same_name = await admin.patch(f"{CATEGORIES}/{hr['id']}", json={"displayName": "People"})
        assert same_name.json()["warnings"] == []
