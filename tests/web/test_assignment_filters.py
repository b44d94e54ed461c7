"""Graph `assignmentFilters` over HTTP: CRUD, validateFilter, getPlatformSupportedProperties, the evaluate preview,
scope tags and permissions; the store's `get_many` for the enrollment policy engine (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from muster.domain.assignment_filters import FilterPlatform
from muster.domain.rbac import BuiltInRole
from muster.store.assignment_filters import SqlAssignmentFilterStore
from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import DM, running_muster
from tests.web.test_admin_access import create_tag

FILTERS = f"{DM}/assignmentFilters"
ODATA_TYPE = "#microsoft.graph.deviceAndAppManagementAssignmentFilter"
IPAD_16 = '(device.model -startsWith "iPad") -and (device.osVersion -ge "16.0")'


async def _create(admin: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    body = {"displayName": name, "platform": "iOS", "rule": IPAD_16, **extra}
    response = await admin.post(FILTERS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_read_update_delete(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        created = await _create(admin, "iPads on 16+", description="Shared iPads")
        assert {
            "@odata.type": ODATA_TYPE,
            "displayName": "iPads on 16+",
            "description": "Shared iPads",
            "platform": "iOS",
            "rule": IPAD_16,
            "roleScopeTags": ["0"],
            "assignmentFilterManagementType": "devices",
        }.items() <= created.items()
        assert created["createdDateTime"].endswith("Z")
        filter_url = f"{FILTERS}/{created['id']}"
        assert (await admin.get(filter_url)).json() == created
        await _create(admin, "Windows Home", platform="windows10AndLater", rule='device.operatingSystemSKU -eq "Core"')

        listed = (await admin.get(FILTERS, params={"$filter": "platform eq 'iOS'", "$count": "true"})).json()
        assert listed["@odata.count"] == 1 and listed["value"][0]["id"] == created["id"]

        patched = await admin.patch(filter_url, json={"rule": 'device.model -eq "iPad"', "description": "x"})
        assert patched.status_code == 200, patched.text
        assert patched.json()["rule"] == 'device.model -eq "iPad"' and patched.json()["description"] == "x"
        assert patched.json()["displayName"] == "iPads on 16+"

        moved = await admin.patch(filter_url, json={"platform": "macOS"})
        assert moved.status_code == 400 and "platform" in moved.json()["error"]["message"]
        same = await admin.patch(filter_url, json={"platform": "iOS", "displayName": "iPads"})
        assert same.status_code == 200 and same.json()["displayName"] == "iPads"

        assert (await admin.delete(filter_url)).status_code == 204
        assert (await admin.get(filter_url)).status_code == 404
        assert (await admin.delete(filter_url)).status_code == 404


async def test_rules_names_and_platforms_are_checked(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        await _create(admin, "Corporate")
        duplicate = await admin.post(FILTERS, json={"displayName": "CORPORATE", "platform": "macOS", "rule": IPAD_16})
        assert duplicate.status_code == 409
        bad_rule = await admin.post(
            FILTERS, json={"displayName": "b", "platform": "iOS", "rule": 'device.model -eq "a"\n-and device.x -eq "b"'}
        )
        assert bad_rule.status_code == 400
        assert "at line 2, column 6" in bad_rule.json()["error"]["message"]
        sku_on_ios = await admin.post(
            FILTERS, json={"displayName": "c", "platform": "iOS", "rule": 'device.operatingSystemSKU -eq "Core"'}
        )
        assert "cannot read device.operatingSystemSKU" in sku_on_ios.json()["error"]["message"]
        for body in (
            {"displayName": "d", "platform": "tvOS", "rule": IPAD_16},
            {"displayName": "e", "rule": IPAD_16},
            {"displayName": " ", "platform": "iOS", "rule": IPAD_16},
            {"displayName": "f", "platform": "iOS", "rule": IPAD_16, "assignmentFilterManagementType": "apps"},
        ):
            assert (await admin.post(FILTERS, json=body)).status_code == 400, body
        assert len((await admin.get(FILTERS)).json()["value"]) == 1


async def test_validate_filter_says_what_and_where(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:

        async def validate(platform: str, rule: str, **params: str) -> dict[str, Any]:
            body = {"deviceAndAppManagementAssignmentFilter": {"platform": platform, "rule": rule, "displayName": "x"}}
            response = await admin.post(f"{FILTERS}/validateFilter", json=body, params=params)
            assert response.status_code == 200, response.text
            assert response.json()["@odata.type"] == "#microsoft.graph.assignmentFilterValidationResult"
            return dict(response.json())

        assert (await validate("iOS", IPAD_16))["isValidRule"] is True
        broken = await validate("iOS", 'device.model -eq "a" -and')
        assert broken["isValidRule"] is False and (broken["line"], broken["column"]) == (1, 26)
        assert "ends too early" in broken["errorMessage"]
        # 003:7207-7222: at enrollment an iOS filter cannot read the device name; a managed-device policy can.
        assert (await validate("iOS", 'device.deviceName -eq "kiosk"'))["isValidRule"] is True
        at_enrollment = await validate("iOS", 'device.deviceName -eq "kiosk"', usage="enrollment")
        assert at_enrollment["isValidRule"] is False and "device.deviceName" in at_enrollment["errorMessage"]
        android = await validate("android", 'device.model -eq "Pixel"', usage="enrollment")  # 003:7223
        assert android["isValidRule"] is False and "cannot be used at enrollment" in android["errorMessage"]
        unknown = await admin.post(
            f"{FILTERS}/validateFilter",
            json={"deviceAndAppManagementAssignmentFilter": {"platform": "tvOS", "rule": IPAD_16}},
        )
        assert unknown.status_code == 400


async def test_platform_supported_properties(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:

        async def names(platform: str, **params: str) -> list[str]:
            response = await admin.get(
                f"{FILTERS}/getPlatformSupportedProperties(platform='{platform}')", params=params
            )
            assert response.status_code == 200, response.text
            return [prop["name"] for prop in response.json()["value"]]

        assert set(await names("iOS", usage="enrollment")) == {
            "manufacturer",
            "model",
            "osVersion",
            "deviceOwnership",
            "enrollmentProfileName",
        }
        assert set(await names("windows10AndLater", usage="enrollment")) == {
            "osVersion",
            "operatingSystemSKU",
            "enrollmentProfileName",
        }
        assert await names("android", usage="enrollment") == []
        assert {"deviceName", "deviceCategory"} <= set(await names("iOS"))
        ios = (await admin.get(f"{FILTERS}/getPlatformSupportedProperties(platform='iOS')")).json()["value"]
        ownership = next(prop for prop in ios if prop["name"] == "deviceOwnership")
        assert ownership["supportedValues"] == ["Personal", "Corporate"]
        unknown = await admin.get(f"{FILTERS}/getPlatformSupportedProperties(platform='tvOS')")
        assert unknown.status_code == 400


async def test_evaluate_previews_a_device(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        created = await _create(admin, "iPads")

        async def matches(device: dict[str, str | None]) -> bool:
            response = await admin.post(f"{FILTERS}/{created['id']}/evaluate", json={"device": device})
            assert response.status_code == 200, response.text
            return bool(response.json()["matches"])

        assert await matches({"model": "iPad Air", "osVersion": "16.10"})
        assert not await matches({"model": "iPad Air", "osVersion": "15.9"})
        assert not await matches({"model": "iPad Air", "osVersion": None})
        missing = await admin.post(f"{FILTERS}/00000000-0000-0000-0000-000000000000/evaluate", json={"device": {}})
        assert missing.status_code == 404


async def test_scope_tags_and_permissions(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        outside = await _create(admin, "B's filter", roleScopeTags=[tag_b])
        assert outside["roleScopeTags"] == [tag_b]
        admins = muster.container.admins
        scoped = await admins.create_token(
            org_id=DEFAULT_ORG_ID, name="admin of A", role=BuiltInRole.INTUNE_ADMINISTRATOR, scope_tag_ids=[tag_a]
        )
        reader = await admins.create_token(org_id=DEFAULT_ORG_ID, name="reader", role=BuiltInRole.READ_ONLY_OPERATOR)
        async with muster.admin(scoped) as admin_of_a, muster.admin(reader) as read_only:
            mine = await _create(admin_of_a, "A's filter")
            assert mine["roleScopeTags"] == [tag_a]  # the creator's own tags
            refused = await admin_of_a.post(
                FILTERS, json={"displayName": "x", "platform": "iOS", "rule": IPAD_16, "roleScopeTags": [tag_b]}
            )
            assert refused.status_code == 403
            seen = (await admin_of_a.get(FILTERS)).json()["value"]
            assert [f["id"] for f in seen] == [mine["id"]]
            # Out of scope is indistinguishable from absent.
            outside_url = f"{FILTERS}/{outside['id']}"
            assert (await admin_of_a.get(outside_url)).status_code == 404
            assert (await admin_of_a.patch(outside_url, json={"description": "mine now"})).status_code == 404
            assert (await admin_of_a.post(f"{outside_url}/evaluate", json={"device": {}})).status_code == 404
            assert (await admin_of_a.delete(outside_url)).status_code == 404
            widened = await admin_of_a.patch(f"{FILTERS}/{mine['id']}", json={"roleScopeTags": [tag_b]})
            assert widened.status_code == 403
            assert (await admin.get(outside_url)).json()["description"] is None

            assert len((await read_only.get(FILTERS)).json()["value"]) == 2
            assert (
                await read_only.post(FILTERS, json={"displayName": "r", "platform": "iOS", "rule": IPAD_16})
            ).status_code == 403
            assert (await read_only.delete(f"{FILTERS}/{mine['id']}")).status_code == 403

        retagged = await admin.patch(f"{FILTERS}/{mine['id']}", json={"roleScopeTags": [tag_a, tag_b]})
        assert sorted(retagged.json()["roleScopeTags"]) == sorted([tag_a, tag_b])
        events = (
            await admin.get(f"{DM}/auditEvents", params={"$filter": "activity eq 'createAssignmentFilter'"})
        ).json()
        assert {r["resourceId"] for e in events["value"] for r in e["resources"]} >= {mine["id"], outside["id"]}


async def test_get_many_for_the_enrollment_engine(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        first = await _create(admin, "first")
        second = await _create(admin, "second", platform="macOS", rule='device.model -contains "Mac"')
        store = SqlAssignmentFilterStore(muster.container.engine)
        found = await store.get_many(DEFAULT_ORG_ID, [second["id"], "no-such-filter", first["id"], second["id"]])
        assert sorted((row.id, row.display_name, row.platform, row.rule) for row in found) == sorted(
            [
                (first["id"], "first", FilterPlatform.IOS, IPAD_16),
                (second["id"], "second", FilterPlatform.MACOS, 'device.model -contains "Mac"'),
            ]
        )
        assert await store.get_many(DEFAULT_ORG_ID, []) == []
        assert await store.get_many("another-org", [first["id"]]) == []


async def test_a_filter_in_use_cannot_be_deleted(tmp_path: Path) -> None:
    """A restriction assigned with the filter keeps it from being deleted (its assignment would silently change);
    once the assignment goes, the filter can go (003:7177, 7187). A filter on a property unknown before enrollment
    cannot filter a restriction (003:7201-7222)."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        used = await _create(admin, "iPads")
        group = (await admin.post("/graph/beta/groups", json={"displayName": "Tablets"})).json()["id"]
        configs = f"{DM}/deviceEnrollmentConfigurations"
        restriction = await admin.post(
            configs,
            json={
                "@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration",
                "displayName": "iPad rules",
                "platformType": "ios",
                "platformRestriction": {"personalDeviceEnrollmentBlocked": True},
            },
        )
        target = {
            "@odata.type": "#microsoft.graph.groupAssignmentTarget",
            "groupId": group,
            "deviceAndAppManagementAssignmentFilterId": used["id"],
            "deviceAndAppManagementAssignmentFilterType": "include",
        }
        assign = f"{configs}/{restriction.json()['id']}/assign"
        assigned = await admin.post(assign, json={"enrollmentConfigurationAssignments": [{"target": target}]})
        assert assigned.status_code in (200, 204), assigned.text
        by_name = await _create(admin, "By name", rule='device.deviceName -startsWith "KIOSK"')
        unusable = {**target, "deviceAndAppManagementAssignmentFilterId": by_name["id"]}
        answer = await admin.post(assign, json={"enrollmentConfigurationAssignments": [{"target": unusable}]})
        assert answer.status_code == 400 and "cannot be used at enrollment" in answer.json()["error"]["message"]
        refused = await admin.delete(f"{FILTERS}/{used['id']}")
        assert refused.status_code == 409 and "iPad rules" in refused.json()["error"]["message"]
        await admin.post(assign, json={"enrollmentConfigurationAssignments": []})
        assert (await admin.delete(f"{FILTERS}/{used['id']}")).status_code == 204
