"""End to end over real HTTP: virtual Apple devices enroll under enrollment restrictions (seed-catalog-C F-15).

Each refusal answers the Authenticate check-in with 403 (the device keeps no MDM profile), names the rule in its
message, and leaves one Enrollment failures report row (R-213, R-214); no device record is created. Seed lines are
cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from muster.simulators.apple_answers import MAC
from muster.simulators.apple_device import DeviceProtocolError, VirtualAppleDevice
from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import DM, RunningMuster, fake_apple, running_muster

GRAPH = "/graph/beta"
CONFIGS = f"{DM}/deviceEnrollmentConfigurations"
PLATFORM_TYPE = "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration"
LIMIT_TYPE = "#microsoft.graph.deviceEnrollmentLimitConfiguration"
USER = "ada@example.com"


async def _user_in_group(admin: httpx.AsyncClient, upn: str, group: str) -> str:
    user = await admin.post(f"{GRAPH}/users", json={"userPrincipalName": upn, "displayName": upn})
    assert user.status_code == 201, user.text
    created = await admin.post(f"{GRAPH}/groups", json={"displayName": group})
    assert created.status_code == 201, created.text
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user.json()['id']}"}
    added = await admin.post(f"{GRAPH}/groups/{created.json()['id']}/members/$ref", json=ref)
    assert added.status_code == 204, added.text
    return str(created.json()["id"])


async def _restriction(admin: httpx.AsyncClient, group_id: str, body: dict[str, Any]) -> dict[str, Any]:
    created = await admin.post(CONFIGS, json=body)
    assert created.status_code == 201, created.text
    target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id}
    assigned = await admin.post(
        f"{CONFIGS}/{created.json()['id']}/assign", json={"enrollmentConfigurationAssignments": [{"target": target}]}
    )
    assert assigned.status_code in (200, 204), assigned.text
    return dict(created.json())


def _ios(name: str, **restriction: Any) -> dict[str, Any]:
    return {
        "@odata.type": PLATFORM_TYPE,
        "displayName": name,
        "platformType": "ios",
        "platformRestriction": restriction,
    }


async def _refused(muster: RunningMuster, device: VirtualAppleDevice, user: str | None = USER) -> str:
    """Enroll `device` for `user`, expect the Authenticate refusal; the refusal's message."""
    with pytest.raises(DeviceProtocolError) as refused:
        await device.enroll(await muster.enrollment_profile(user=user))
    assert "Authenticate: HTTP 403" in str(refused.value)
    return str(refused.value)


async def _failures(admin: httpx.AsyncClient, user: str = USER) -> list[dict[str, Any]]:
    listed = await admin.get(f"{DM}/enrollmentFailures", params={"$filter": f"userPrincipalName eq '{user}'"})
    assert listed.status_code == 200, listed.text
    return list(listed.json()["value"])


async def _devices(admin: httpx.AsyncClient, serial: str) -> list[dict[str, Any]]:
    found = await admin.get(f"{DM}/managedDevices", params={"$filter": f"serialNumber eq '{serial}'"})
    return list(found.json()["value"])


async def test_blocked_platform_personal_device_and_os_range_are_refused_with_reports(
    tmp_path: Path, database_url: str
) -> None:
    """003:7381 (platform blocked), PLR-04 (personal blocked; corporate identifiers pass, CID-14), R-183/R-184
    (OS version range), R-207 (the highest-priority assigned restriction wins), R-216 (the Enrollment page)."""
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        async with muster.admin() as admin:
            group = await _user_in_group(admin, USER, "Sales")
            blocked = await _restriction(admin, group, _ios("Block iOS", platformBlocked=True))
        async with muster.device_client() as http:
            message = await _refused(muster, VirtualAppleDevice(http=http))
            assert "can't be enrolled while the platform is Blocked" in message
            mac = VirtualAppleDevice(http=http, model=MAC)  # the restriction is for iOS/iPadOS only
            await mac.enroll(await muster.enrollment_profile(user=USER))
            async with muster.admin() as admin:
                [failure] = await _failures(admin)
                assert failure["failureReason"] == "Device platform blocked"
                assert failure["operatingSystem"] == "iOS" and failure["osVersion"] == "17.5"
                assert failure["enrollmentMethod"] == "userEnrollment" and failure["recommendedSteps"]
                assert [e["profileName"] for e in failure["policyEvaluations"] if e["state"] == "failed"] == [
                    "Block iOS"
                ]
                detail = await admin.get(f"{DM}/enrollmentFailures/{failure['id']}")
                assert detail.json()["failureDetails"].startswith("This device can't be enrolled")

                # A higher-priority restriction now blocks only personal devices (and OS versions outside 18.x).
                personal = await _restriction(
                    admin, group, _ios("Corporate only", personalDeviceEnrollmentBlocked=True, osMinimumVersion="17.0")
                )
                moved = await admin.post(f"{CONFIGS}/{personal['id']}/setPriority", json={"priority": 1})
                assert moved.status_code in (200, 204), moved.text
                assert blocked["id"] != personal["id"]
            message = await _refused(muster, VirtualAppleDevice(http=http))
            assert "Personally owned devices" in message

            corporate = VirtualAppleDevice(http=http)
            async with muster.admin() as admin:
                identity = {
                    "importedDeviceIdentifier": corporate.serial_number,
                    "importedDeviceIdentityType": "serialNumber",
                }
                imported = await admin.post(
                    f"{DM}/importedDeviceIdentities/importDeviceIdentityList",
                    json={"importedDeviceIdentities": [identity], "overwriteImportedDeviceIdentities": False},
                )
                assert imported.status_code == 200, imported.text
            await corporate.enroll(await muster.enrollment_profile(user=USER))
            async with muster.admin() as admin:
                [record] = await _devices(admin, corporate.serial_number)
                assert record["managedDeviceOwnerType"] == "company"
                identities = (await admin.get(f"{DM}/importedDeviceIdentities")).json()["value"]
                assert [i["enrollmentState"] for i in identities] == ["enrolled"]  # CID-11
                page = await admin.get(f"{DM}/managedDevices/{record['id']}/enrollmentPolicyEvaluations")
                rows = {row["profileName"]: row for row in page.json()["value"]}
                assert rows["Corporate only"]["state"] == "succeeded" and rows["Corporate only"]["priority"] == 1
                assert rows["Corporate only"]["target"] == "user"
                assert rows["Block iOS"]["state"] == "notApplicable"
                assert any(row["priority"] == 0 and row["target"] == "device" for row in rows.values())

                too_high = _ios("Only 18", osMinimumVersion="18.0")
                newer = await _restriction(admin, group, too_high)
                await admin.post(f"{CONFIGS}/{newer['id']}/setPriority", json={"priority": 1})
            old = VirtualAppleDevice(http=http)
            message = await _refused(muster, old)
            assert "OS version 17.5" in message
            async with muster.admin() as admin:
                assert [f["failureReason"] for f in await _failures(admin)] == [
                    "OS version not allowed",
                    "Personally owned device blocked",
                    "Device platform blocked",
                ]
                assert await _devices(admin, old.serial_number) == []  # a refused device leaves no record


async def test_device_limit_refuses_the_next_device_and_a_dem_enrolls_past_15(
    tmp_path: Path, database_url: str
) -> None:
    """R-206/E-09: a user at the limit is refused with a message telling them to remove a device; DEM-05: a
    device enrollment manager is not held to the restriction's limit (up to 1,000), and its devices are
    corporate with the DEM enrollment type (DEM-15)."""
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        async with muster.admin() as admin:
            group = await _user_in_group(admin, USER, "Two devices each")
            await _restriction(admin, group, {"@odata.type": LIMIT_TYPE, "displayName": "Two", "limit": 2})
        async with muster.device_client() as http:
            for _ in range(2):
                await VirtualAppleDevice(http=http).enroll(await muster.enrollment_profile(user=USER))
            message = await _refused(muster, VirtualAppleDevice(http=http))
            assert "maximum number of devices (2)" in message and "Remove a device" in message
            async with muster.admin() as admin:
                [failure] = await _failures(admin)
                assert failure["failureReason"] == "Device limit reached"

                dem = "kiosk@example.com"
                created = await admin.post(f"{GRAPH}/users", json={"userPrincipalName": dem, "displayName": "Kiosk"})
                assert created.status_code == 201, created.text
                added = await admin.post(f"{DM}/deviceEnrollmentManagers", json={"userPrincipalName": dem})
                assert added.status_code == 201, added.text
            serials = []
            for _ in range(16):  # past the 15 a standard user could ever reach (DLR-02)
                device = VirtualAppleDevice(http=http)
                await device.enroll(await muster.enrollment_profile(user=dem))
                serials.append(device.serial_number)
            async with muster.admin() as admin:
                [record] = await _devices(admin, serials[-1])
                assert record["managedDeviceOwnerType"] == "company"
                assert record["deviceEnrollmentType"] == "deviceEnrollmentManager"
                assert await _failures(admin, dem) == []


async def test_unaccepted_terms_refuse_even_a_profile_handed_out_by_an_admin(tmp_path: Path, database_url: str) -> None:
    """TC-01 (003_729e51c15a5a5608.txt:1207): assigned terms are accepted before enrollment completes, whatever
    way the profile reached the device; TC-05: a new version asks again."""
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        async with muster.admin() as admin:
            await _user_in_group(admin, USER, "Staff")
            terms = await admin.post(
                f"{DM}/termsAndConditions",
                json={"displayName": "Use policy", "title": "Acceptable use", "bodyText": "Be nice."},
            )
            assert terms.status_code == 201, terms.text
            everyone = {"target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}}
            assigned = await admin.post(
                f"{DM}/termsAndConditions/{terms.json()['id']}/assign",
                json={"termsAndConditionsAssignments": [everyone]},
            )
            assert assigned.status_code in (200, 204), assigned.text
            user = (await admin.get(f"{GRAPH}/users/{USER}")).json()
        async with muster.device_client() as http:
            message = await _refused(muster, VirtualAppleDevice(http=http))
            assert "Acceptable use" in message
            await muster.container.terms.accept(
                DEFAULT_ORG_ID,
                user["id"],
                USER,
                terms.json()["id"],
                1,
                muster.container.clock.now(),
            )
            await VirtualAppleDevice(http=http).enroll(await muster.enrollment_profile(user=USER))
            async with muster.admin() as admin:
                [failure] = await _failures(admin)
                assert failure["failureReason"] == "Terms and conditions not accepted"


async def test_ownership_changes_follow_the_seed(tmp_path: Path, database_url: str) -> None:
    """OWN-05 (003_729e51c15a5a5608.txt:1099-1105): the admin sets a device's ownership; OWN-08 (:1005): a
    corporate device reports its full app inventory, a personal one only the organisation's apps; OWN-06 (:1109):
    back to personal, the apps and the phone number collected are deleted."""
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        async with muster.device_client() as http:
            iphone = VirtualAppleDevice(http=http)
            await iphone.enroll(await muster.enrollment_profile(user=USER))
            await iphone.poll()
            async with muster.admin() as admin:
                [record] = await _devices(admin, iphone.serial_number)
                device = f"{DM}/managedDevices/{record['id']}"
                assert record["managedDeviceOwnerType"] == "personal"
                apps = (await admin.get(f"{device}/detectedApps")).json()["value"]
                assert {a["id"] for a in apps} == set(iphone.facts.managed_app_ids)
                bad = await admin.patch(device, json={"managedDeviceOwnerType": "borrowed"})
                assert bad.status_code == 400
                corporate = await admin.patch(device, json={"managedDeviceOwnerType": "company"})
                assert corporate.status_code == 200 and corporate.json()["managedDeviceOwnerType"] == "company"
                assert (await admin.post(f"{device}/syncDevice", json={})).status_code in (202, 204)
            await iphone.poll()
            async with muster.admin() as admin:
                apps = (await admin.get(f"{device}/detectedApps")).json()["value"]
                assert {a["id"] for a in apps} == {a["Identifier"] for a in iphone.facts.apps}
                personal = await admin.patch(device, json={"managedDeviceOwnerType": "personal"})
                assert personal.json()["managedDeviceOwnerType"] == "personal"
                assert personal.json()["phoneNumber"] is None
                assert (await admin.get(f"{device}/detectedApps")).json()["value"] == []
