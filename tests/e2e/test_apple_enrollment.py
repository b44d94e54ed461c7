"""End to end over real HTTP: a virtual Apple device enrolls in a running Muster and is managed.

Profile download -> SCEP -> Authenticate -> TokenUpdate -> push -> inventory commands -> results in the
admin API; then wipe and retire reach devices and end as Apple specifies.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from muster.simulators.apple_answers import MAC
from muster.simulators.apple_device import VirtualAppleDevice
from tests.harness import DM, fake_apple, running_muster


async def _device_record(muster, serial: str) -> dict:  # type: ignore[no-untyped-def]
    async with muster.admin() as admin:
        page = (await admin.get(f"{DM}/managedDevices", params={"$filter": f"serialNumber eq '{serial}'"})).json()
    assert len(page["value"]) == 1, page
    return page["value"][0]


async def test_enroll_inventory_wipe_and_retire(tmp_path: Path, database_url: str) -> None:
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        profile = await muster.enrollment_profile(user="ada@example.com")

        iphone_profile = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(profile)
        async with httpx.AsyncClient(verify=iphone_profile.ssl_context()) as http:
            iphone = VirtualAppleDevice(http=http)
            await iphone.enroll(profile)
            await muster.container.pusher.wait_idle()
            assert apple.apns.count_for(iphone.token_hex) == 1  # woken right after enrollment
            assert await iphone.poll() == 5
            assert {t for _, t, s in iphone.handled if s == "Acknowledged"} == {
                "DeviceInformation",
                "SecurityInfo",
                "InstalledApplicationList",
                "ProfileList",
                "CertificateList",
            }

            record = await _device_record(muster, iphone.serial_number)
            assert record["deviceName"] == iphone.facts.device_name
            assert record["osVersion"] == "17.5" and record["operatingSystem"] == "iOS"
            assert record["managementState"] == "managed"
            assert record["userPrincipalName"] == "ada@example.com"
            async with muster.admin() as admin:
                detail = (await admin.get(f"{DM}/managedDevices/{record['id']}")).json()
                assert detail["hardwareInformation"]["imei"] == iphone.facts.imei
                assert detail["isEncrypted"] is True
                apps = (await admin.get(f"{DM}/managedDevices/{record['id']}/detectedApps")).json()["value"]
                # A personal device reports only the apps the organisation installed (OWN-08).
                assert {a["id"] for a in apps} == set(iphone.facts.managed_app_ids)

                wipe = await admin.post(f"{DM}/managedDevices/{record['id']}/wipe", json={})
                assert wipe.status_code == 202, wipe.text
            await muster.container.pusher.wait_idle()
            assert apple.apns.count_for(iphone.token_hex) == 2
            assert (await _device_record(muster, iphone.serial_number))["managementState"] == "wipePending"
            await iphone.poll()
            assert iphone.erased
            assert (await _device_record(muster, iphone.serial_number))["managementState"] == "wiped"
            async with muster.admin() as admin:
                again = await admin.post(f"{DM}/managedDevices/{record['id']}/remoteLock", json={})
                assert again.status_code == 409  # a wiped device has no channel any more

            mac = VirtualAppleDevice(http=http, model=MAC)
            await mac.enroll(await muster.enrollment_profile())
            await mac.poll()
            mac_record = await _device_record(muster, mac.serial_number)
            assert mac_record["operatingSystem"] == "macOS" and mac_record["userPrincipalName"] is None
            async with muster.admin() as admin:
                retire = await admin.post(f"{DM}/managedDevices/{mac_record['id']}/retire", json={})
                assert retire.status_code == 202
            await mac.poll()
            assert not mac.enrolled  # the device removed its MDM profile and checked out
            assert (await _device_record(muster, mac.serial_number))["managementState"] == "retired"
            async with muster.admin() as admin:
                history = (await admin.get(f"{DM}/managedDevices/{mac_record['id']}/commands")).json()["value"]
            assert history[0]["requestType"] == "RemoveProfile" and history[0]["status"] == "acknowledged"
