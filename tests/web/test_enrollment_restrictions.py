"""Graph `deviceEnrollmentConfigurations` over HTTP: enrollment platform and device limit restrictions
(seed-catalog-C §1.11, §1.12, §2.P-§2.S), their priorities, assignments and scope tags, and the policies the
enrollment decision reads. Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from muster.domain.enrollment_decision import EnrollmentAttempt, EnrollmentMethod, decide
from muster.domain.enrollment_restrictions import RestrictionPlatform
from muster.domain.rbac import BuiltInRole
from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import DM, running_muster
from tests.web.test_admin_access import create_tag

CONFIGS = f"{DM}/deviceEnrollmentConfigurations"
PLATFORM_TYPE = "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration"
DEFAULTS_TYPE = "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration"
LIMIT_TYPE = "#microsoft.graph.deviceEnrollmentLimitConfiguration"
ALL_USERS = {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}


async def _platform(admin: httpx.AsyncClient, name: str, platform: str = "ios", **restriction: Any) -> dict[str, Any]:
    body = {"@odata.type": PLATFORM_TYPE, "displayName": name, "platformType": platform}
    answer = await admin.post(CONFIGS, json={**body, "platformRestriction": restriction})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _limit(admin: httpx.AsyncClient, name: str, limit: int = 3, **extra: Any) -> dict[str, Any]:
    answer = await admin.post(CONFIGS, json={"@odata.type": LIMIT_TYPE, "displayName": name, "limit": limit, **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _group(admin: httpx.AsyncClient, name: str) -> str:
    answer = await admin.post("/graph/beta/groups", json={"displayName": name})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _filter(admin: httpx.AsyncClient, name: str, platform: str) -> str:
    body = {"displayName": name, "platform": platform, "rule": 'device.model -startsWith "i"'}
    answer = await admin.post(f"{DM}/assignmentFilters", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _assign(admin: httpx.AsyncClient, config_id: str, *targets: dict[str, Any]) -> httpx.Response:
    body = {"enrollmentConfigurationAssignments": [{"target": target} for target in targets]}
    return await admin.post(f"{CONFIGS}/{config_id}/assign", json=body)


async def _priorities(admin: httpx.AsyncClient, kind: str, platform: str | None = None) -> list[tuple[str, int]]:
    query = f"deviceEnrollmentConfigurationType eq '{kind}'"
    if platform:
        query += f" and platformType eq '{platform}'"
    listed = (await admin.get(CONFIGS, params={"$filter": query, "$orderby": "priority"})).json()["value"]
    return [(c["displayName"], c["priority"]) for c in listed]


async def test_r179_one_editable_default_of_each_type_priority_0(tmp_path: Path, database_url: str) -> None:
    """R-179 (003:6969, 7132, 7263): one default per type, editable, not deletable, not assignable, not
    reprioritized (R-208, 003:7341); shown with priority 0 (R-210, 003:7415). Default limit 5 (A-01)."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        listed = (await admin.get(CONFIGS)).json()["value"]
        assert (await admin.get(CONFIGS)).json()["value"] == listed  # created once, whoever asks first
        by_type = {c["deviceEnrollmentConfigurationType"]: c for c in listed}
        assert set(by_type) == {"defaultLimit", "defaultPlatformRestrictions"}
        limit, platforms = by_type["defaultLimit"], by_type["defaultPlatformRestrictions"]
        assert (limit["@odata.type"], limit["limit"], limit["priority"]) == (LIMIT_TYPE, 5, 0)
        assert platforms["@odata.type"] == DEFAULTS_TYPE and platforms["priority"] == 0
        assert platforms["iosRestriction"]["platformBlocked"] is False
        assert limit["id"] == f"{DEFAULT_ORG_ID}_DefaultLimit" and limit["roleScopeTagIds"] == ["0"]
        patched = await admin.patch(f"{CONFIGS}/{limit['id']}", json={"limit": 10})
        assert patched.status_code == 200 and (patched.json()["limit"], patched.json()["version"]) == (10, 2)
        blocked = {"platformBlocked": True}
        patched = await admin.patch(f"{CONFIGS}/{platforms['id']}", json={"androidRestriction": blocked})
        assert patched.json()["androidRestriction"]["platformBlocked"] is True
        assert patched.json()["iosRestriction"]["platformBlocked"] is False
        for answer in (
            await admin.delete(f"{CONFIGS}/{limit['id']}"),
            await _assign(admin, limit["id"], ALL_USERS),
            await admin.post(f"{CONFIGS}/{platforms['id']}/setPriority", json={"priority": 1}),
        ):
            assert answer.status_code == 409 and "default" in answer.json()["error"]["message"], answer.text
        answer = await admin.post(CONFIGS, json={"@odata.type": DEFAULTS_TYPE, "displayName": "second default"})
        assert answer.status_code == 400 and "exists already" in answer.text


async def test_r205_r208_new_policies_go_just_above_the_default_per_list(tmp_path: Path) -> None:
    """R-205 (003:7318), R-208 (003:7341): a new one gets priority N (just above the default); limit
    restrictions form one list, platform restrictions one list per platform tab (003:7145-7150)."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        first = await _platform(admin, "iOS 1")
        assert (first["priority"], first["version"], first["platformType"]) == (1, 1, "ios")
        assert first["deviceEnrollmentConfigurationType"] == "singlePlatformRestriction"
        assert (await _platform(admin, "iOS 2"))["priority"] == 2
        assert (await _platform(admin, "Windows 1", "windows"))["priority"] == 1
        assert (await _limit(admin, "Limit 1"))["priority"] == 1
        assert await _priorities(admin, "singlePlatformRestriction", "ios") == [("iOS 1", 1), ("iOS 2", 2)]


async def test_r195_r203_at_most_25_policies_per_list(tmp_path: Path) -> None:
    """R-195 (003:7126), R-203 (003:7257): 25 plus the default; the 26th is refused with a clear message."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        for index in range(25):
            await _limit(admin, f"Limit {index}")
        answer = await admin.post(CONFIGS, json={"@odata.type": LIMIT_TYPE, "displayName": "26th", "limit": 2})
        assert answer.status_code == 409 and "25" in answer.json()["error"]["message"]
        assert (await _platform(admin, "another list"))["priority"] == 1


async def test_r209_set_priority_and_delete_keep_a_permutation(tmp_path: Path, database_url: str) -> None:
    """R-209 (003:7343-7345): moving a policy shifts the others; deleting one closes the gap; concurrent moves
    (here 20 at once) leave the list a permutation 1..N."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        ids = [(await _platform(admin, f"P{index}"))["id"] for index in range(6)]
        moved = await admin.post(f"{CONFIGS}/{ids[4]}/setPriority", json={"priority": 1})
        assert moved.status_code == 204
        assert [name for name, _ in await _priorities(admin, "singlePlatformRestriction")] == [
            "P4", "P0", "P1", "P2", "P3", "P5"
        ]  # fmt: skip
        assert (await admin.post(f"{CONFIGS}/{ids[0]}/setPriority", json={"priority": 0})).status_code == 400
        assert (await admin.delete(f"{CONFIGS}/{ids[1]}")).status_code == 204
        assert await _priorities(admin, "singlePlatformRestriction") == [
            ("P4", 1), ("P0", 2), ("P2", 3), ("P3", 4), ("P5", 5)
        ]  # fmt: skip
        remaining = [i for i in ids if i != ids[1]]
        moves = [
            admin.post(f"{CONFIGS}/{remaining[n % 5]}/setPriority", json={"priority": (n * 3) % 5 + 1})
            for n in range(20)
        ]
        assert {answer.status_code for answer in await asyncio.gather(*moves)} == {204}
        assert sorted(p for _, p in await _priorities(admin, "singlePlatformRestriction")) == [1, 2, 3, 4, 5]


async def test_validation_gives_a_clear_400(tmp_path: Path) -> None:
    """R-180 (limit 1-15), R-183 (no macOS bounds), R-184 (formats, min ≤ max), R-186 (manufacturers on Android
    only); `@odata.type` must match; priority only through setPriority; platformType is fixed."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        ios = await _platform(admin, "iOS")
        base = {"@odata.type": PLATFORM_TYPE, "displayName": "x", "platformType": "ios"}
        for body, message in [
            ({**base, "platformRestriction": {"osMinimumVersion": "16"}}, "major.minor"),
            ({**base, "platformRestriction": {"osMinimumVersion": "17.0", "osMaximumVersion": "16.0"}}, "above"),
            ({**base, "platformType": "mac", "platformRestriction": {"osMinimumVersion": "14.0"}}, "no OS version"),
            ({**base, "platformRestriction": {"blockedManufacturers": ["Acme"]}}, "Android"),
            ({**base, "platformType": "windowsPhone"}, "platformType must be one of"),
            ({**base, "displayName": " "}, "displayName"),
            ({**base, "priority": 1}, "setPriority"),
            ({**base, "colour": "red"}, "not a property"),
            ({"@odata.type": LIMIT_TYPE, "displayName": "x", "limit": 16}, "from 1 to 15"),
            ({"@odata.type": LIMIT_TYPE, "displayName": "x"}, "limit is required"),
            ({"displayName": "x"}, "@odata.type must be"),
        ]:
            answer = await admin.post(CONFIGS, json=body)
            assert answer.status_code == 400 and message in answer.json()["error"]["message"], (body, answer.text)
        for body, message in [
            ({"@odata.type": LIMIT_TYPE}, "@odata.type must be"),
            ({"platformType": "windows"}, "cannot change"),
            ({"limit": 3}, "not a property"),
            ({"platformRestriction": {"platformBlocked": "no"}}, "true or false"),
        ]:
            answer = await admin.patch(f"{CONFIGS}/{ios['id']}", json=body)
            assert answer.status_code == 400 and message in answer.json()["error"]["message"], (body, answer.text)
        windows = await _platform(admin, "Windows", "windows", osMinimumVersion="10.0.19045.0")
        assert windows["platformRestriction"]["osMinimumVersion"] == "10.0.19045.0"
        patched = await admin.patch(f"{CONFIGS}/{windows['id']}", json={**windows, "description": "edited"})
        assert patched.status_code == 200 and patched.json()["version"] == 2  # edits count


async def test_r197_r200_assignments(tmp_path: Path) -> None:
    """R-197 (003:7176): assigned to groups or all users (R-193: users); groups must exist; filters for iOS,
    macOS and Windows, not Android (R-200, 003:7177, 7223), of the restriction's platform; device limits take
    none; assign replaces."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        sales = await _group(admin, "Sales")
        ios = await _platform(admin, "iOS")
        android = await _platform(admin, "Android", "android")
        group = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": sales}
        assert (await _assign(admin, ios["id"], group, ALL_USERS)).status_code == 204
        listed = (await admin.get(f"{CONFIGS}/{ios['id']}/assignments")).json()["value"]
        assert [a["target"]["@odata.type"] for a in listed] == [group["@odata.type"], ALL_USERS["@odata.type"]]
        assert listed[0]["@odata.type"] == "#microsoft.graph.enrollmentConfigurationAssignment"
        assert (await admin.get(f"{CONFIGS}/{ios['id']}")).json()["version"] == 2
        filtered = {**group, "deviceAndAppManagementAssignmentFilterId": "f1"}
        filtered["deviceAndAppManagementAssignmentFilterType"] = "include"
        for config_id, target, message in [
            (android["id"], filtered, "not available for android"),
            (ios["id"], filtered, "no iOS assignment filter"),
            (ios["id"], {**group, "groupId": "nope"}, "no such group"),
            (ios["id"], {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}, "cannot be used"),
        ]:
            answer = await _assign(admin, config_id, target)
            assert answer.status_code == 400 and message in answer.json()["error"]["message"], answer.text
        limit = await _limit(admin, "Limit")
        assert "device limit" in (await _assign(admin, limit["id"], filtered)).json()["error"]["message"]
        ipad, mac = await _filter(admin, "iPads", "iOS"), await _filter(admin, "Macs", "macOS")
        by_mac = {**filtered, "deviceAndAppManagementAssignmentFilterId": mac}
        assert "no iOS assignment filter" in (await _assign(admin, ios["id"], by_mac)).json()["error"]["message"]
        by_ipad = {**filtered, "deviceAndAppManagementAssignmentFilterId": ipad}
        assert (await _assign(admin, ios["id"], by_ipad)).status_code == 204
        shown = (await admin.get(f"{CONFIGS}/{ios['id']}/assignments")).json()["value"][0]["target"]
        assert shown["deviceAndAppManagementAssignmentFilterId"] == ipad
        assert (await _assign(admin, ios["id"])).status_code == 204
        assert (await admin.get(f"{CONFIGS}/{ios['id']}/assignments")).json()["value"] == []


async def test_r198_scope_tags_limit_what_an_admin_sees_and_reorders(tmp_path: Path, database_url: str) -> None:
    """R-198 (003:7169-7173): only in-scope admins view, manage, reorder; they still see relative priority, and
    their moves keep the hidden policies' relative order."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        a1 = await _platform(admin, "A1")
        await admin.patch(f"{CONFIGS}/{a1['id']}", json={"roleScopeTagIds": [tag_a]})
        b1 = (await admin.post(CONFIGS, json={"@odata.type": PLATFORM_TYPE, "displayName": "B1", "platformType": "ios",
                                              "roleScopeTagIds": [tag_b]})).json()  # fmt: skip
        a2 = await _platform(admin, "A2")
        await admin.patch(f"{CONFIGS}/{a2['id']}", json={"roleScopeTagIds": [tag_a]})
        token = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="scoped", role=BuiltInRole.POLICY_AND_PROFILE_MANAGER, scope_tag_ids=[tag_a]
        )
        async with muster.admin(token) as scoped:
            seen = (await scoped.get(CONFIGS)).json()["value"]
            assert [(c["displayName"], c["priority"]) for c in seen] == [("A1", 1), ("A2", 3)]
            for answer in (
                await scoped.get(f"{CONFIGS}/{b1['id']}"),
                await scoped.get(f"{CONFIGS}/{b1['id']}/assignments"),
                await scoped.patch(f"{CONFIGS}/{b1['id']}", json={"description": "x"}),
                await scoped.delete(f"{CONFIGS}/{b1['id']}"),
                await scoped.post(f"{CONFIGS}/{b1['id']}/setPriority", json={"priority": 1}),
                await _assign(scoped, b1["id"], ALL_USERS),
            ):
                assert answer.status_code == 404, answer.text
            assert (await scoped.post(f"{CONFIGS}/{a2['id']}/setPriority", json={"priority": 1})).status_code == 204
            moved = await scoped.patch(f"{CONFIGS}/{a1['id']}", json={"roleScopeTagIds": [tag_b]})
            assert moved.status_code == 403
        assert await _priorities(admin, "singlePlatformRestriction") == [("A2", 1), ("A1", 2), ("B1", 3)]


async def test_f15_policies_for_feed_the_decision(tmp_path: Path, database_url: str) -> None:
    """F-15 / R-207 (003:7333): the stored policies, loaded in one query, decide: Sales users on iOS are blocked
    by their assigned restriction; others get the default; the limit restriction assigned to all users applies."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        sales = await _group(admin, "Sales")
        blocked = await _platform(admin, "Block iOS for Sales", platformBlocked=True)
        assert (await _assign(admin, blocked["id"], {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
                                                      "groupId": sales})).status_code == 204  # fmt: skip
        await _platform(admin, "Windows", "windows")
        two = await _limit(admin, "Two devices", 2)
        assert (await _assign(admin, two["id"], ALL_USERS)).status_code == 204
        policies = await muster.container.enrollment_restrictions.policies_for(DEFAULT_ORG_ID, RestrictionPlatform.IOS)
        assert [p.display_name for p in policies.platform] == ["Block iOS for Sales"]
        assert [p.limit for p in policies.limits] == [2] and policies.default_limit.limit == 5

        def attempt(groups: frozenset[str], counted: int = 0) -> EnrollmentAttempt:
            method = EnrollmentMethod.APPLE_DEVICE_ENROLLMENT
            return EnrollmentAttempt(RestrictionPlatform.IOS, method, "u1", groups, "17.0", counted_devices=counted)

        assert decide(attempt(frozenset({sales})), policies, lambda _: True).reason == "platformBlocked"
        assert decide(attempt(frozenset()), policies, lambda _: True).allowed
        assert decide(attempt(frozenset(), counted=2), policies, lambda _: True).reason == "deviceLimitReached"
