"""Graph `appleUserInitiatedEnrollmentProfiles` over HTTP: Apple enrollment type profiles (seed-catalog-C §1.10,
R-211, F-7; seed-catalog-A E10), their priorities, assignments, scope tags, the `resolve` what-if and `offer_for`.
Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from muster.domain.enrollment_type_profiles import EnrollmentType
from muster.domain.rbac import BuiltInRole
from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import DM, running_muster
from tests.web.test_admin_access import add_device, create_tag

PROFILES = f"{DM}/appleUserInitiatedEnrollmentProfiles"
GRAPH = "/graph/beta"
ALL_USERS = {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}
CHOICE = [
    {"ownerType": "personal", "enrollmentType": "user"},
    {"ownerType": "company", "enrollmentType": "device"},
]


def _group_target(group_id: str, *, excluded: bool = False) -> dict[str, Any]:
    kind = "exclusionGroupAssignmentTarget" if excluded else "groupAssignmentTarget"
    return {"@odata.type": f"#microsoft.graph.{kind}", "groupId": group_id}


async def _profile(admin: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    answer = await admin.post(PROFILES, json={"displayName": name, **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _assign(admin: httpx.AsyncClient, profile_id: str, *targets: dict[str, Any]) -> httpx.Response:
    body = {"appleEnrollmentProfileAssignments": [{"target": target} for target in targets]}
    return await admin.post(f"{PROFILES}/{profile_id}/assign", json=body)


async def _group(admin: httpx.AsyncClient, name: str, *member_ids: str, **extra: Any) -> str:
    answer = await admin.post(f"{GRAPH}/groups", json={"displayName": name, **extra})
    assert answer.status_code == 201, answer.text
    group_id = str(answer.json()["id"])
    for member_id in member_ids:
        ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{member_id}"}
        assert (await admin.post(f"{GRAPH}/groups/{group_id}/members/$ref", json=ref)).status_code == 204
    return group_id


async def _user(admin: httpx.AsyncClient, upn: str) -> str:
    answer = await admin.post(f"{GRAPH}/users", json={"userPrincipalName": upn, "displayName": upn})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _resolve(client: httpx.AsyncClient, upn: str) -> httpx.Response:
    return await client.get(f"{PROFILES}/resolve(userPrincipalName='{upn}')")


async def _order(admin: httpx.AsyncClient) -> list[tuple[str, int]]:
    return [(p["displayName"], p["priority"]) for p in (await admin.get(PROFILES)).json()["value"]]


async def test_003_5440_5470_create_read_update_delete_in_graph_shape(tmp_path: Path, database_url: str) -> None:
    """003:5440-5470: Basics (name required, description) and Settings (Device enrollment preselected, User
    enrollment, Determine based on user choice), as Graph's appleUserInitiatedEnrollmentProfile."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        created = await _profile(admin, "Everyone", description="for all staff")
        assert created["@odata.type"] == "#microsoft.graph.appleUserInitiatedEnrollmentProfile"
        assert (created["platform"], created["defaultEnrollmentType"], created["priority"]) == ("iOS", "device", 1)
        assert created["availableEnrollmentTypeOptions"] == [] and created["roleScopeTagIds"] == ["0"]
        assert (await admin.post(PROFILES, json={"description": "no name"})).status_code == 400
        patched = await admin.patch(
            f"{PROFILES}/{created['id']}", json={"availableEnrollmentTypeOptions": CHOICE, "displayName": "Choice"}
        )
        assert patched.status_code == 200, patched.text
        options = [(o["ownerType"], o["enrollmentType"]) for o in patched.json()["availableEnrollmentTypeOptions"]]
        assert options == [("personal", "user"), ("company", "device")]
        assert (await admin.get(f"{PROFILES}/{created['id']}")).json() == patched.json()
        whole = await admin.patch(f"{PROFILES}/{created['id']}", json=patched.json())  # a whole object sent back
        assert whole.status_code == 200, whole.text
        wrong = await admin.patch(f"{PROFILES}/{created['id']}", json={"defaultEnrollmentType": "webDeviceEnrollment"})
        assert wrong.status_code == 400 and "enrollmentType must be one of" in wrong.json()["error"]["message"]
        listed = await admin.get(PROFILES, params={"$filter": "defaultEnrollmentType eq 'device'", "$select": "id"})
        assert [p["id"] for p in listed.json()["value"]] == [created["id"]]
        assert (await admin.delete(f"{PROFILES}/{created['id']}")).status_code == 204
        assert (await admin.get(f"{PROFILES}/{created['id']}")).status_code == 404


async def test_003_5513_new_profiles_go_last_set_priority_and_delete_keep_a_permutation(
    tmp_path: Path, database_url: str
) -> None:
    """003:5513-5519: drag and drop reorders; a new profile goes last; a deletion closes the gap; concurrent
    moves keep priorities 1..N."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        ids = [(await _profile(admin, f"P{n}"))["id"] for n in range(1, 5)]
        assert await _order(admin) == [("P1", 1), ("P2", 2), ("P3", 3), ("P4", 4)]
        assert (await admin.post(f"{PROFILES}/{ids[3]}/setPriority", json={"priority": 1})).status_code == 204
        assert await _order(admin) == [("P4", 1), ("P1", 2), ("P2", 3), ("P3", 4)]
        assert (await admin.post(f"{PROFILES}/{ids[0]}/setPriority", json={"priority": 0})).status_code == 400
        assert (await admin.delete(f"{PROFILES}/{ids[1]}")).status_code == 204
        assert await _order(admin) == [("P4", 1), ("P1", 2), ("P3", 3)]
        moves = [admin.post(f"{PROFILES}/{ids[n]}/setPriority", json={"priority": p}) for n, p in ((0, 3), (2, 1))]
        assert {answer.status_code for answer in await asyncio.gather(*moves)} == {204}
        assert sorted(priority for _, priority in await _order(admin)) == [1, 2, 3]


async def test_at_most_25_profiles(tmp_path: Path) -> None:
    """The seeds set no limit; Muster keeps 25, as for enrollment restrictions (R-195), and says so."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        for index in range(25):
            await _profile(admin, f"P{index}")
        answer = await admin.post(PROFILES, json={"displayName": "26th"})
        assert answer.status_code == 409 and "25" in answer.json()["error"]["message"]


async def test_003_5474_assignments_take_user_groups_or_all_users_never_devices(
    tmp_path: Path, database_url: str
) -> None:
    """003:5474-5489: user groups to include or exclude, or all users; "Device groups aren't supported ...
    based on user identities, rather than devices" - a group holding a device (also through a nested group), a
    dynamic device group and all devices are refused with that reason."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        profile = (await _profile(admin, "BYOD"))["id"]
        users = await _group(admin, "Users", await _user(admin, "ada@example.com"))
        device = await add_device(muster.container.engine, "0")
        devices = await _group(admin, "Devices", device)
        nesting = await _group(admin, "Nesting", devices)
        rule = {"groupTypes": ["DynamicMembership"], "membershipRule": 'device.model -startsWith "iPad"'}
        dynamic_devices = await _group(admin, "iPads", **rule)
        for target in (
            _group_target(devices),
            _group_target(nesting),
            _group_target(dynamic_devices, excluded=True),
            {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"},
        ):
            refused = await _assign(admin, profile, target)
            assert refused.status_code == 400, refused.text
            assert "rather than devices" in refused.json()["error"]["message"]
        assert (await _assign(admin, profile, _group_target("no-such-group"))).status_code == 400
        accepted = await _assign(admin, profile, _group_target(users), ALL_USERS)
        assert accepted.status_code == 204, accepted.text
        shown = (await admin.get(f"{PROFILES}/{profile}/assignments")).json()["value"]
        assert shown[0]["@odata.type"] == "#microsoft.graph.appleEnrollmentProfileAssignment"
        assert [a["target"]["@odata.type"] for a in shown] == [
            "#microsoft.graph.groupAssignmentTarget",
            "#microsoft.graph.allLicensedUsersAssignmentTarget",
        ]


async def test_r211_resolve_and_offer_for_pick_the_higher_priority_profile(tmp_path: Path, database_url: str) -> None:
    """R-211 (003:5521), F-7 step 3: the highest-priority profile assigned to the user applies, nested groups
    and exclusions included; none gives device enrollment. The choice offers user enrollment to personal devices
    and device enrollment to corporate ones (003:5455)."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        ada, bob = await _user(admin, "ada@example.com"), await _user(admin, "bob@example.com")
        sales = await _group(admin, "Sales", ada)
        staff = await _group(admin, "Staff", sales, bob)  # Ada through the nested Sales group
        contractors = await _group(admin, "Contractors", bob)
        choice = await _profile(admin, "Sales choose", availableEnrollmentTypeOptions=CHOICE)
        user_only = await _profile(admin, "Staff user enrollment", defaultEnrollmentType="user")
        assert (await _assign(admin, choice["id"], _group_target(sales))).status_code == 204
        staff_targets = (_group_target(staff), _group_target(contractors, excluded=True))
        assert (await _assign(admin, user_only["id"], *staff_targets)).status_code == 204

        offer = (await _resolve(admin, "ada@example.com")).json()
        assert offer["profile"] == {"id": choice["id"], "displayName": "Sales choose", "priority": 1}
        assert offer["userChooses"] is True and offer["offeredEnrollmentTypes"] == ["device", "user"]
        assert (await admin.post(f"{PROFILES}/{user_only['id']}/setPriority", json={"priority": 1})).status_code == 204
        offer = (await _resolve(admin, "ADA@example.com")).json()
        assert offer["profile"]["id"] == user_only["id"] and offer["offeredEnrollmentTypes"] == ["user"]

        bob_offer = (await _resolve(admin, "bob@example.com")).json()  # in Staff but excluded as a contractor
        assert bob_offer["profile"] is None and bob_offer["defaultEnrollmentType"] == "device"
        assert bob_offer["offeredEnrollmentTypes"] == ["device"] and bob_offer["userChooses"] is False
        assert (await _resolve(admin, "nobody@example.com")).status_code == 404

        service = muster.container.enrollment_type_profiles
        offer_for = await service.offer_for(DEFAULT_ORG_ID, ada, frozenset({sales}))
        assert offer_for.profile is not None and offer_for.profile.id == choice["id"]
        assert offer_for.setting.default is EnrollmentType.DEVICE and offer_for.setting.user_chooses
        assert (await service.offer_for(DEFAULT_ORG_ID, None, frozenset({sales}))).profile is None  # userless


async def test_scope_tags_limit_what_an_admin_sees_and_resolve_hides_other_profiles(
    tmp_path: Path, database_url: str
) -> None:
    """Scope tags (roleScopeTagIds): a scoped admin sees and changes only its profiles, others are 404; the
    what-if still shows what the user gets but does not name a profile outside the admin's scope. A Read Only
    Operator reads and resolves but cannot change."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        a1 = await _profile(admin, "A1", roleScopeTagIds=[tag_a])
        b1 = await _profile(admin, "B1", roleScopeTagIds=[tag_b], defaultEnrollmentType="user")
        ada = await _user(admin, "ada@example.com")
        assert (await _assign(admin, b1["id"], ALL_USERS)).status_code == 204
        assert (await admin.post(f"{PROFILES}/{b1['id']}/setPriority", json={"priority": 1})).status_code == 204
        manager = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="scoped", role=BuiltInRole.POLICY_AND_PROFILE_MANAGER, scope_tag_ids=[tag_a]
        )
        reader = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="reader", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        async with muster.admin(manager) as scoped, muster.admin(reader) as read_only:
            assert [(p["displayName"], p["priority"]) for p in (await scoped.get(PROFILES)).json()["value"]] == [
                ("A1", 2)
            ]
            for answer in (
                await scoped.get(f"{PROFILES}/{b1['id']}"),
                await scoped.get(f"{PROFILES}/{b1['id']}/assignments"),
                await scoped.patch(f"{PROFILES}/{b1['id']}", json={"description": "x"}),
                await scoped.delete(f"{PROFILES}/{b1['id']}"),
                await scoped.post(f"{PROFILES}/{b1['id']}/setPriority", json={"priority": 2}),
                await _assign(scoped, b1["id"], ALL_USERS),
            ):
                assert answer.status_code == 404, answer.text
            hidden = (await _resolve(scoped, "ada@example.com")).json()
            assert hidden["userId"] == ada and hidden["profile"] is None and hidden["profileOutsideYourScope"]
            assert hidden["offeredEnrollmentTypes"] == ["user"]
            refused = await scoped.post(PROFILES, json={"displayName": "B2", "roleScopeTagIds": [tag_b]})
            assert refused.status_code == 403
            assert (await scoped.patch(f"{PROFILES}/{a1['id']}", json={"roleScopeTagIds": [tag_b]})).status_code == 403
            seen = (await _resolve(read_only, "ada@example.com")).json()
            assert seen["profile"]["id"] == b1["id"] and not seen["profileOutsideYourScope"]
            assert (await read_only.post(PROFILES, json={"displayName": "x"})).status_code == 403
        assert await _order(admin) == [("B1", 1), ("A1", 2)]


async def test_changes_are_audited(tmp_path: Path) -> None:
    """Every change is in the audit log with what changed (the service's detail joins the request's event)."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        created = await _profile(admin, "Audited")
        await admin.patch(f"{PROFILES}/{created['id']}", json={"defaultEnrollmentType": "user"})
        await _assign(admin, created["id"], ALL_USERS)
        await admin.delete(f"{PROFILES}/{created['id']}")
        events = (await admin.get(f"{DM}/auditEvents")).json()["value"]
        mine = {e["activity"]: e for e in events if e["resources"] and e["resources"][0]["resourceId"] == created["id"]}
        assert set(mine) == {"createProfile", "updateProfile", "assign", "deleteProfile"}
        changed = {p["displayName"]: p for p in mine["updateProfile"]["resources"][0]["modifiedProperties"]}
        assert (changed["defaultEnrollmentType"]["oldValue"], changed["defaultEnrollmentType"]["newValue"]) == (
            "device",
            "user",
        )
