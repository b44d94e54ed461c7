"""Shared iPad after ADE: the profile's Shared iPad options reach the iPad as a SharedDeviceConfiguration setting,
its users are listed, and the shared-device actions log out and delete users, or are refused with the reason on a
device that is not a Shared iPad."""

from __future__ import annotations

from pathlib import Path

import httpx

from muster.simulators.apple_answers import IPAD
from muster.simulators.apple_device import VirtualAppleDevice
from tests.e2e.test_ade import TOKENS, ade_world, link_token
from tests.harness import DM

SHARED_IPAD_PROFILE = {
    "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile",
    "displayName": "Classroom iPads",
    "supervisedModeEnabled": True,
    "awaitDeviceConfiguredConfirmation": True,
    "enableSharedIPad": True,
    "sharedIPadMaximumUserCount": 8,
    "userSessionTimeoutInSeconds": 3600,
    "forceTemporarySession": True,
    "temporarySessionTimeoutInSeconds": 600,
}


async def test_shared_ipad_configuration_users_and_actions(tmp_path: Path, database_url: str) -> None:
    async with ade_world(tmp_path, database_url) as (muster, abm), muster.admin() as admin:
        token_id, server = await link_token(muster, abm, admin)
        [serial] = abm.seed_devices(server, 1, families=("iPad",))
        uploaded = await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken",
            json={"appleId": "it@example.com", "depToken": server.download_token().decode()},
        )
        assert uploaded.status_code == 200, uploaded.text
        await muster.container.ade_sync.wait_idle()
        created = await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles", json=SHARED_IPAD_PROFILE)
        assert created.status_code == 201, created.text
        profile = created.json()
        assert server.profiles[profile["abmProfileUuid"]].is_multi_user is True
        assigned = await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile['id']}/setDefaultProfile")
        assert assigned.status_code == 204

        trust = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(await muster.enrollment_profile())
        async with httpx.AsyncClient(verify=trust.ssl_context()) as http:
            ipad = VirtualAppleDevice(http=http, model=IPAD, serial_number=serial, supervised=True, shared_ipad=True)
            await ipad.ade_enroll(muster.container.endpoints.ade_enrollment_url, await_configuration=True)
            await ipad.poll()
            assert not ipad.awaiting_configuration
            handled = [(request_type, status) for _, request_type, status in ipad.handled]
            assert [request_type for request_type, _ in handled[-3:]] == ["Settings", "UserList", "DeviceConfigured"]
            assert {status for _, status in handled} == {"Acknowledged"}
            assert ipad.shared_configuration == {
                "Item": "SharedDeviceConfiguration",
                "ResidentUsers": 8,
                "TemporarySessionOnly": True,
                "TemporarySessionTimeout": 600,
                "UserSessionTimeout": 3600,
            }

            personal = VirtualAppleDevice(http=http, model=IPAD, supervised=True)
            await personal.enroll(await muster.enrollment_profile())
            await personal.poll()

            ids = {d["serialNumber"]: d["id"] for d in (await admin.get(f"{DM}/managedDevices")).json()["value"]}
            device_url = f"{DM}/managedDevices/{ids[serial]}"
            device = (await admin.get(device_url)).json()
            assert device["hardwareInformation"]["isSharedDevice"] is True
            assert [u["userPrincipalName"] for u in device["sharedDeviceCachedUsers"]] == [
                "ana@example.com",
                "bo@example.com",
            ]
            assert device["sharedDeviceCachedUsers"][1] == {
                "userPrincipalName": "bo@example.com",
                "dataToSync": True,
                "dataQuota": 8 * 10**9,
                "dataUsed": 310_000_000,
            }

            # Ana is signed in: the iPad refuses to delete her until she is logged out.
            refused = await admin.post(
                f"{device_url}/deleteUserFromSharedAppleDevice", json={"userPrincipalName": "ana@example.com"}
            )
            assert refused.status_code == 202
            await ipad.poll()
            history = {h["commandUuid"]: h for h in (await admin.get(f"{device_url}/commands")).json()["value"]}
            failed = history[refused.json()["commandUuid"]]
            assert failed["requestType"] == "DeleteUser" and failed["status"] == "error"
            assert failed["errorChain"][0]["us_english_description"] == "The user is logged in."

            logout = await admin.post(f"{device_url}/logoutSharedAppleDeviceActiveUser", json={})
            assert logout.status_code == 202, logout.text
            await ipad.poll()
            assert not any(user["IsLoggedIn"] for user in ipad.facts.users)
            deleted = await admin.post(
                f"{device_url}/deleteUserFromSharedAppleDevice", json={"userPrincipalName": "ana@example.com"}
            )
            assert deleted.status_code == 202
            await ipad.poll()
            assert ipad.handled[-2][1:] == ("DeleteUser", "Acknowledged") and ipad.handled[-1][1] == "UserList"
            forced = await admin.post(
                f"{device_url}/deleteUserFromSharedAppleDevice",
                json={"userPrincipalName": "bo@example.com", "forceDeletion": True},
            )
            assert forced.status_code == 202
            await ipad.poll()
            assert ipad.facts.users == []
            history = {h["commandUuid"]: h for h in (await admin.get(f"{device_url}/commands")).json()["value"]}
            for action in (logout, deleted, forced):
                assert history[action.json()["commandUuid"]]["status"] == "acknowledged"
            assert (await admin.get(device_url)).json()["sharedDeviceCachedUsers"] == []

            missing = await admin.post(f"{device_url}/deleteUserFromSharedAppleDevice", json={})
            assert missing.status_code == 400 and "userPrincipalName" in missing.json()["error"]["message"]
            for garbage in ({"userPrincipalName": "a" * 321}, {"userPrincipalName": 7}, {"forceDeletion": "yes"}):
                refused = await admin.post(f"{device_url}/deleteUserFromSharedAppleDevice", json=garbage)
                assert refused.status_code == 400, garbage
            for action in ("logoutSharedAppleDeviceActiveUser", "deleteUserFromSharedAppleDevice"):
                not_shared = await admin.post(
                    f"{DM}/managedDevices/{ids[personal.serial_number]}/{action}",
                    json={"userPrincipalName": "ana@example.com"},
                )
                assert not_shared.status_code == 409
                assert "Shared iPad only" in not_shared.json()["error"]["message"]
            bulk = await admin.post(
                f"{DM}/managedDevices/executeAction",
                json={"actionName": "logoutSharedAppleDeviceActiveUser", "deviceIds": list(ids.values())},
            )
            assert bulk.json()["successfulDeviceIds"] == [ids[serial]]
            assert [f["deviceId"] for f in bulk.json()["failures"]] == [ids[personal.serial_number]]
