"""Every Intune device action reaches the device as the Apple command it stands for, or is refused with a reason."""

from __future__ import annotations

from pathlib import Path

import httpx

from muster.simulators.apple_answers import MAC
from muster.simulators.apple_device import VirtualAppleDevice
from tests.harness import DM, fake_apple, running_muster

EXPECTED_COMMAND = {
    "remoteLock": "DeviceLock",
    "rebootNow": "RestartDevice",
    "shutDown": "ShutDownDevice",
    "setDeviceName": "Settings",
    "resetPasscode": "ClearPasscode",
    "enableLostMode": "EnableLostMode",
    "disableLostMode": "DisableLostMode",
}
PARAMETERS = {
    "setDeviceName": {"deviceName": "Front desk"},
    "enableLostMode": {"message": "Call IT", "phoneNumber": "+1 555 0100"},
}


async def test_actions_reach_devices_or_are_refused_with_a_reason(tmp_path: Path) -> None:
    async with fake_apple(tmp_path / "apple") as apple, running_muster(tmp_path / "m", apple=apple) as muster:
        await muster.install_push_certificate(apple)
        trust = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(await muster.enrollment_profile())
        async with httpx.AsyncClient(verify=trust.ssl_context()) as http, muster.admin() as admin:
            supervised = VirtualAppleDevice(http=http, supervised=True)
            personal = VirtualAppleDevice(http=http)
            mac = VirtualAppleDevice(http=http, model=MAC)
            for device in (supervised, personal, mac):
                await device.enroll(await muster.enrollment_profile())
                await device.poll()
            ids = {d["serialNumber"]: d["id"] for d in (await admin.get(f"{DM}/managedDevices")).json()["value"]}

            for action, request_type in EXPECTED_COMMAND.items():
                response = await admin.post(
                    f"{DM}/managedDevices/{ids[supervised.serial_number]}/{action}", json=PARAMETERS.get(action, {})
                )
                assert response.status_code == 202, (action, response.text)
                await supervised.poll()
                assert supervised.handled[-1][1:] == (request_type, "Acknowledged"), action
            assert supervised.facts.device_name == "Front desk" and supervised.passcode_cleared and supervised.locked

            refused = await admin.post(
                f"{DM}/managedDevices/{ids[personal.serial_number]}/enableLostMode", json={"message": "x"}
            )
            assert refused.status_code == 409 and "supervised" in refused.json()["error"]["message"]
            refused = await admin.post(
                f"{DM}/managedDevices/{ids[mac.serial_number]}/enableLostMode", json={"message": "x"}
            )
            assert refused.status_code == 409 and "iPhone and iPad" in refused.json()["error"]["message"]
            missing = await admin.post(f"{DM}/managedDevices/{ids[mac.serial_number]}/setDeviceName", json={})
            assert missing.status_code == 400 and "deviceName" in missing.json()["error"]["message"]
            unknown = await admin.post(f"{DM}/managedDevices/{ids[mac.serial_number]}/selfDestruct", json={})
            assert unknown.status_code == 400

            bulk = await admin.post(
                f"{DM}/managedDevices/executeAction",
                json={"actionName": "rebootNow", "deviceIds": [*ids.values(), "no-such-device"]},
            )
            assert bulk.status_code == 200
            body = bulk.json()
            assert set(body["successfulDeviceIds"]) == {ids[supervised.serial_number], ids[mac.serial_number]}
            assert {f["deviceId"]: f["reason"] for f in body["failures"]} == {
                ids[personal.serial_number]: "rebootNow needs a supervised device",
                "no-such-device": "device not found",
            }
            histories = [
                (await admin.get(f"{DM}/managedDevices/{ids[d.serial_number]}/commands")).json()["value"][0]
                for d in (supervised, mac)
            ]
            assert histories[0]["commandUuid"] == histories[1]["commandUuid"]  # one command for both devices
            for device in (supervised, mac):
                await device.poll()
                assert device.handled[-1][1:] == ("RestartDevice", "Acknowledged")
