"""Devices enrolled through an enrollment program token inherit the token's scope tags (as in Intune)."""

from __future__ import annotations

from pathlib import Path

import httpx

from muster.domain.rbac import BuiltInRole
from muster.simulators.apple_device import VirtualAppleDevice
from muster.store.tables import DEFAULT_ORG_ID
from tests.e2e.test_ade import TOKENS, ade_world, link_token
from tests.harness import DM
from tests.web.test_admin_access import create_tag


async def test_ade_devices_inherit_the_token_tags(tmp_path: Path) -> None:
    async with (
        ade_world(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'm.db'}") as (muster, abm),
        muster.admin() as admin,
    ):
        tag = await create_tag(admin, "Stores")
        token_id, server = await link_token(muster, abm, admin)
        tagged = await admin.patch(f"{TOKENS}/{token_id}", json={"roleScopeTagIds": [tag]})
        assert tagged.status_code == 200 and tagged.json()["roleScopeTagIds"] == [tag]
        [serial] = abm.seed_devices(server, 1, families=("iPhone",))
        uploaded = await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken",
            json={"appleId": "it@example.com", "depToken": server.download_token().decode()},
        )
        assert uploaded.status_code == 200, uploaded.text
        await muster.container.ade_sync.wait_idle()
        created = await admin.post(
            f"{TOKENS}/{token_id}/enrollmentProfiles",
            json={
                "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile",
                "displayName": "Stores iOS",
                "roleScopeTagIds": [tag],
            },
        )
        assert created.status_code == 201 and created.json()["roleScopeTagIds"] == [tag], created.text
        profile_id = created.json()["id"]
        assert (await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile_id}/setDefaultProfile")).is_success

        trust = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(await muster.enrollment_profile())
        async with httpx.AsyncClient(verify=trust.ssl_context()) as http:
            device = VirtualAppleDevice(http=http, serial_number=serial)
            await device.ade_enroll(muster.container.endpoints.ade_enrollment_url)
            await device.poll()

        store_staff = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="stores help desk", role=BuiltInRole.HELP_DESK_OPERATOR, scope_tag_ids=[tag]
        )
        others = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="office help desk", role=BuiltInRole.HELP_DESK_OPERATOR, scope_tag_ids=["0"]
        )
        async with muster.admin(store_staff) as stores, muster.admin(others) as office:
            [managed] = (await stores.get(f"{DM}/managedDevices")).json()["value"]
            assert managed["serialNumber"] == serial and managed["roleScopeTagIds"] == [tag]
            assert (await office.get(f"{DM}/managedDevices")).json()["value"] == []
            assert (await office.get(f"{DM}/managedDevices/{managed['id']}")).status_code == 403
            assert (await stores.post(f"{DM}/managedDevices/{managed['id']}/syncDevice")).status_code == 202
