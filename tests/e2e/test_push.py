"""Waking devices through the fake APNs: coalescing, retries, and tokens APNs no longer accepts."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from muster.simulators.apple_device import VirtualAppleDevice
from muster.store.tables import enrollments
from tests.harness import DM, fake_apple, running_muster


async def test_unregistered_tokens_retries_and_coalescing(tmp_path: Path, database_url: str) -> None:
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "m", database_url=database_url, apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        profile = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(await muster.enrollment_profile())
        async with httpx.AsyncClient(verify=profile.ssl_context()) as http, muster.admin() as admin:
            gone, alive = VirtualAppleDevice(http=http), VirtualAppleDevice(http=http)
            for device in (gone, alive):
                await device.enroll(await muster.enrollment_profile())
                await device.poll()
            await muster.container.pusher.wait_idle()
            ids = {d["serialNumber"]: d["id"] for d in (await admin.get(f"{DM}/managedDevices")).json()["value"]}
            before = apple.apns.count_for(alive.token_hex)

            apple.apns.fail_token(gone.token_hex, status=410, reason="Unregistered")
            apple.apns.throttle(alive.token_hex, times=2)  # 429 twice, then delivered after back-off
            for name in ("one", "two", "three"):  # three actions queued back to back: pushes coalesce
                response = await admin.post(
                    f"{DM}/managedDevices/executeAction",
                    json={"actionName": "setDeviceName", "deviceIds": list(ids.values()), "deviceName": name},
                )
                assert response.status_code == 200
            await muster.container.pusher.wait_idle()
            # The first push is retried after two 429s; the two wake-ups requested meanwhile become one push.
            assert apple.apns.count_for(alive.token_hex) - before == 2

            async with muster.container.engine.connect() as conn:
                flags = dict((await conn.execute(select(enrollments.c.id, enrollments.c.push_unregistered))).all())
            assert flags == {gone.udid: True, alive.udid: False}
            delivered_to_gone = apple.apns.count_for(gone.token_hex)
            await admin.post(f"{DM}/managedDevices/{ids[gone.serial_number]}/syncDevice", json={})
            await muster.container.pusher.wait_idle()
            assert apple.apns.count_for(gone.token_hex) == delivered_to_gone  # not pushed again

            # A new TokenUpdate makes the device pushable again, and the queued commands were kept for it.
            await gone.checkin(
                "TokenUpdate", Topic=gone.profile.topic, Token=gone.push_token, PushMagic=gone.push_magic
            )
            async with muster.container.engine.connect() as conn:
                flag = (
                    await conn.execute(select(enrollments.c.push_unregistered).where(enrollments.c.id == gone.udid))
                ).scalar()
            assert flag is False
            assert await gone.poll() >= 3
            assert gone.facts.device_name == "three"
