"""Automated Device Enrollment end to end, over real HTTP against the ABM and APNs simulators.

Token (public key -> ABM -> server token upload) -> sync -> profile defined in ABM and assigned -> a virtual
device in Setup Assistant POSTs its MachineInfo -> enrolls -> named by the template -> DeviceConfigured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from muster.pki.certs import certificate_pem, generate_rsa_key, self_signed_certificate
from muster.protocols.apple.machine_info import MachineInfo, encode_machine_info
from muster.simulators.abm import FakeAbm, serve_fake_abm
from muster.simulators.apple_device import DeviceProtocolError, VirtualAppleDevice
from muster.simulators.apple_identity import factory_identity, simulated_device_ca
from tests.harness import DM, RunningMuster, fake_apple, running_muster

TOKENS = f"{DM}/depOnboardingSettings"


@asynccontextmanager
async def ade_world(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[RunningMuster, FakeAbm]]:
    abm = FakeAbm(org_name="Example Corp")
    device_ca = tmp_path / "apple-device-ca.pem"  # the simulator plays Apple's device CA
    device_ca.write_bytes(certificate_pem(simulated_device_ca().certificate))
    async with (
        fake_apple(tmp_path / "apple") as apple,
        serve_fake_abm(abm) as abm_url,
        running_muster(
            tmp_path / "m", database_url=database_url, apple=apple, dep_url=abm_url, apple_device_ca_file=device_ca
        ) as muster,
    ):
        await muster.install_push_certificate(apple)
        yield muster, abm


async def link_token(muster: RunningMuster, abm: FakeAbm, admin: httpx.AsyncClient) -> tuple[str, object]:
    refused = await admin.post(TOKENS, json={"tokenName": "Main"})
    assert refused.status_code == 412  # ADE-01: consent first
    await admin.post(f"{DM}/dataSharingConsents/appleEnrollmentProgram/consentToDataSharing")
    token = (await admin.post(TOKENS, json={"tokenName": "Main"})).json()
    assert token["tokenType"] == "none"
    public_key = (await admin.get(f"{TOKENS}/{token['id']}/generateEncryptionPublicKey()")).json()["value"]
    server = abm.add_server("Muster MDM", public_key.encode())
    return token["id"], server


async def test_token_sync_profile_and_setup_assistant_enrollment(tmp_path: Path, database_url: str) -> None:
    async with ade_world(tmp_path, database_url) as (muster, abm), muster.admin() as admin:
        token_id, server = await link_token(muster, abm, admin)
        serials = abm.seed_devices(server, 30, families=("iPhone", "iPad", "Mac"))
        wrong_key = await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken", json={"appleId": "it@example.com", "depToken": "garbage"}
        )
        assert wrong_key.status_code == 400
        uploaded = await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken",
            json={"appleId": "it@example.com", "depToken": server.download_token().decode()},
        )
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["tokenType"] == "dep" and uploaded.json()["serverName"] == "Muster MDM"
        await muster.container.ade_sync.wait_idle()  # ADE-05: the upload starts a sync

        devices = (await admin.get(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities")).json()["value"]
        assert sorted(d["serialNumber"] for d in devices) == sorted(serials)
        token = (await admin.get(f"{TOKENS}/{token_id}")).json()
        assert token["syncedDeviceCount"] == 30 and token["lastSuccessfulSyncDateTime"]

        refused = await admin.post(
            f"{TOKENS}/{token_id}/enrollmentProfiles",
            json={
                "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile",
                "displayName": "Kiosk",
                "deviceNameTemplate": "x" * 70,
            },
        )
        assert refused.status_code == 400 and "deviceNameTemplate" in refused.json()["error"]["message"]
        created = await admin.post(
            f"{TOKENS}/{token_id}/enrollmentProfiles",
            json={
                "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile",
                "displayName": "Corporate iOS",
                "supervisedModeEnabled": True,
                "profileRemovalDisabled": True,
                "awaitDeviceConfiguredConfirmation": True,
                "deviceNameTemplate": "{{DEVICETYPE}}-{{SERIAL}}",
                "supportDepartment": "IT",
                "supportPhoneNumber": "+1 555 0100",
                "enabledSkipKeys": ["Siri", "Privacy"],
            },
        )
        assert created.status_code == 201, created.text
        profile = created.json()
        abm_profile = server.profiles[profile["abmProfileUuid"]]
        assert abm_profile.is_mdm_removable is False and abm_profile.await_device_configured is True
        assert abm_profile.url == muster.container.endpoints.ade_enrollment_url

        iphones = [d["serialNumber"] for d in devices if d["deviceFamily"] in ("iPhone", "iPad")]
        abm.fail_assignment(iphones[:1], "NOT_ACCESSIBLE")  # a per-serial failure inside an HTTP 200
        assigned = await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile['id']}/setDefaultProfile")
        assert assigned.status_code == 204
        listing = {
            d["serialNumber"]: d
            for d in (await admin.get(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities")).json()["value"]
        }
        assert listing[iphones[0]]["profileAssignmentStatus"] == "failed"
        assert listing[iphones[0]]["profileAssignmentError"] == "NOT_ACCESSIBLE"
        assert all(listing[s]["profileAssignmentStatus"] == "succeeded" for s in iphones[1:])
        assert all(listing[s]["profileAssignmentStatus"] == "none" for s in serials if s not in iphones)  # Macs
        assert abm.device(iphones[1])["profile_uuid"] == profile["abmProfileUuid"]

        trust = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(await muster.enrollment_profile())
        async with httpx.AsyncClient(verify=trust.ssl_context()) as http:
            stranger = VirtualAppleDevice(http=http)
            with pytest.raises(DeviceProtocolError, match="403"):
                await stranger.ade_enroll(muster.container.endpoints.ade_enrollment_url)
            key = generate_rsa_key()
            forged = encode_machine_info(
                MachineInfo(udid="FORGED", serial=iphones[1], product="iPhone15,2", version="21F79"),
                certificate=self_signed_certificate(key, "not an Apple device"),
                key=key,
            )
            refused = await http.post(muster.container.endpoints.ade_enrollment_url, content=forged)
            assert refused.status_code == 403 and "Apple device identity" in refused.text
            patched = await admin.patch(
                f"{TOKENS}/{token_id}/enrollmentProfiles/{profile['id']}", json={"minimumOsVersion": "18.0"}
            )
            assert patched.status_code == 200, patched.text
            certificate, key = factory_identity("OLD-UDID")
            outdated = encode_machine_info(
                MachineInfo(
                    udid="OLD-UDID",
                    serial=iphones[2],
                    product="iPhone15,2",
                    version="21F79",
                    os_version="17.5",
                    mdm_can_request_software_update=True,
                ),
                certificate=certificate,
                key=key,
            )
            update = await http.post(muster.container.endpoints.ade_enrollment_url, content=outdated)
            assert update.status_code == 403 and update.headers["content-type"] == "application/json"
            assert update.json()["code"] == "com.apple.softwareupdate.required"
            assert update.json()["details"]["OSVersion"] == "18.0"
            unassigned = VirtualAppleDevice(http=http, serial_number=iphones[0])
            with pytest.raises(DeviceProtocolError, match="No enrollment profile"):
                await unassigned.ade_enroll(muster.container.endpoints.ade_enrollment_url)

            family = listing[iphones[1]]["deviceFamily"]
            device = VirtualAppleDevice(http=http, serial_number=iphones[1])
            await device.ade_enroll(muster.container.endpoints.ade_enrollment_url, await_configuration=True)
            assert device.awaiting_configuration
            await device.poll()
            assert not device.awaiting_configuration  # released from Setup Assistant ...
            handled = [request_type for _, request_type, _ in device.handled]
            assert handled[-1] == "DeviceConfigured"  # ... after its initial commands
            assert device.facts.device_name == f"{family}-{iphones[1]}"  # ADEP-10

        managed = (
            await admin.get(f"{DM}/managedDevices", params={"$filter": f"serialNumber eq '{iphones[1]}'"})
        ).json()["value"][0]
        assert managed["deviceEnrollmentType"] == "appleBulkWithoutUser"
        assert managed["managedDeviceOwnerType"] == "company"  # ADE-29
        assert managed["deviceName"] == f"{family}-{iphones[1]}"
        listing = {
            d["serialNumber"]: d
            for d in (await admin.get(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities")).json()["value"]
        }
        assert listing[iphones[1]]["enrollmentState"] == "enrolled"
        assert listing[iphones[1]]["managedDeviceId"] == managed["id"]

        refused = await admin.delete(f"{TOKENS}/{token_id}")  # ADE-22: devices and profiles remain
        assert refused.status_code == 409 and "devices" in refused.json()["error"]["message"]


async def test_delta_sync_manual_limits_and_releases(tmp_path: Path, database_url: str) -> None:
    async with ade_world(tmp_path, database_url) as (muster, abm), muster.admin() as admin:
        token_id, server = await link_token(muster, abm, admin)
        first = abm.seed_devices(server, 10, families=("iPhone",))
        await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken",
            json={"appleId": "it@example.com", "depToken": server.download_token().decode()},
        )
        await muster.container.ade_sync.wait_idle()

        abm.assign(server, ["NEW0000001", "NEW0000002"], family="iPad")
        abm.release(first[:3])
        sync = await admin.post(f"{TOKENS}/{token_id}/syncWithAppleDeviceEnrollmentProgram")
        assert sync.status_code == 204
        again = await admin.post(f"{TOKENS}/{token_id}/syncWithAppleDeviceEnrollmentProgram")
        assert again.status_code == 409  # ADE-14/16: once every 15 minutes, never two at once
        await muster.container.ade_sync.wait_idle()
        listing = {
            d["serialNumber"]: d
            for d in (await admin.get(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities")).json()["value"]
        }
        assert {"NEW0000001", "NEW0000002"} <= set(listing)
        assert all(listing[s]["abmStatus"] == "released" and listing[s]["isDeleted"] for s in first[:3])
        assert all(listing[s]["abmStatus"] == "assigned" for s in first[3:])
        token = (await admin.get(f"{TOKENS}/{token_id}")).json()
        assert token["syncedDeviceCount"] == 9

        renewal_other_server = abm.add_server(
            "Another server",
            (await admin.get(f"{TOKENS}/{token_id}/generateEncryptionPublicKey")).json()["value"].encode(),
        )
        refused = await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken",
            json={"appleId": "it@example.com", "depToken": renewal_other_server.download_token().decode()},
        )
        assert refused.status_code == 400 and "Another server" in refused.json()["error"]["message"]
        wrong_id = await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken",
            json={"appleId": "someone@example.com", "depToken": server.download_token().decode()},
        )
        assert wrong_id.status_code == 400 and "it@example.com" in wrong_id.json()["error"]["message"]


async def test_token_deletion_procedure(tmp_path: Path, database_url: str) -> None:
    """ADE-22/23 (002:50-62): devices, then profiles (the default one included), then the token."""
    async with ade_world(tmp_path, database_url) as (muster, abm), muster.admin() as admin:
        token_id, server = await link_token(muster, abm, admin)
        abm.seed_devices(server, 4, families=("iPhone",))
        await admin.post(
            f"{TOKENS}/{token_id}/uploadDepToken",
            json={"appleId": "it@example.com", "depToken": server.download_token().decode()},
        )
        await muster.container.ade_sync.wait_idle()
        profile = (
            await admin.post(
                f"{TOKENS}/{token_id}/enrollmentProfiles",
                json={
                    "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile",
                    "displayName": "Default",
                    "isDefault": True,
                },
            )
        ).json()
        await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile['id']}/setDefaultProfile")

        refused = await admin.delete(f"{TOKENS}/{token_id}")
        assert refused.status_code == 409
        message = refused.json()["error"]["message"]
        assert "4 devices are still assigned" in message and "default profile" in message
        refused = await admin.delete(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile['id']}")
        assert refused.status_code == 409  # devices still use it

        devices = (await admin.get(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities")).json()["value"]
        for device in devices:
            deleted = await admin.delete(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities/{device['id']}")
            assert deleted.status_code == 204
        missing = await admin.delete(f"{TOKENS}/{token_id}/importedAppleDeviceIdentities/{devices[0]['id']}")
        assert missing.status_code == 404
        assert (await admin.delete(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile['id']}")).status_code == 204
        assert (await admin.delete(f"{TOKENS}/{token_id}")).status_code == 204
        assert (await admin.get(f"{TOKENS}/{token_id}")).status_code == 404
