"""`muster sim`: the CLI enrolls virtual devices in a running server and installs simulated push certificates.

The CLI runs `asyncio.run` itself, so it is driven from a worker thread while the server serves in the test's
event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner, Result

from muster.cli.main import app
from tests.harness import DM, RunningMuster, fake_apple, running_muster


async def muster_cli(muster: RunningMuster, tmp_path: Path, *args: str) -> Result:
    """`muster <args>` against `muster`, with its admin token in a file and its TLS chain trusted."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(muster.admin_token + "\n")
    connection = ["--url", muster.base_url, "--token-file", str(token_file), "--ca-file", str(muster.tls_ca_file)]
    return await asyncio.to_thread(CliRunner().invoke, app, [*args, *connection])


async def test_sim_devices_enrolls_a_mixed_fleet_that_reports_its_inventory(tmp_path: Path) -> None:
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", apple=apple) as muster,
    ):
        await muster.install_push_certificate(apple)
        result = await muster_cli(muster, tmp_path, "sim", "devices", "--count", "3")
        assert result.exit_code == 0, result.output
        assert "3 virtual devices enrolled" in result.output

        async with muster.admin() as admin:
            devices = (await admin.get(f"{DM}/managedDevices")).json()["value"]
            assert len(devices) == 3
            assert {device["operatingSystem"] for device in devices} == {"iOS", "iPadOS", "macOS"}
            assert {device["managementState"] for device in devices} == {"managed"}
            for device in devices:  # DeviceInformation answered: the name is the device's own
                assert device["deviceName"].endswith(device["serialNumber"][-4:])
            apps = (await admin.get(f"{DM}/managedDevices/{devices[0]['id']}/detectedApps")).json()["value"]
            # Enrolled without a corporate identifier, they are personal: only the organisation's apps (OWN-08).
            assert {app["id"] for app in apps} == {"com.microsoft.Office.Outlook"}


async def test_sim_devices_explains_a_missing_push_certificate(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "muster") as muster:
        result = await muster_cli(muster, tmp_path, "sim", "devices", "--count", "1")
        assert result.exit_code == 1
        assert "push certificate" in result.output
        async with muster.admin() as admin:
            assert (await admin.get(f"{DM}/managedDevices")).json()["value"] == []


async def test_sim_push_certificate_installs_then_only_renews_keeping_the_topic(tmp_path: Path) -> None:
    async with running_muster(tmp_path / "muster") as muster:
        first = await muster_cli(muster, tmp_path, "sim", "push-certificate", "--topic", "com.apple.mgmt.External.a")
        assert first.exit_code == 0, first.output
        async with muster.admin() as admin:
            installed = (await admin.get(f"{DM}/applePushNotificationCertificate")).json()
        assert installed["topicIdentifier"] == "com.apple.mgmt.External.a"

        again = await muster_cli(muster, tmp_path, "sim", "push-certificate")
        assert again.exit_code == 1
        assert "pass --renew" in again.output
        other_topic = await muster_cli(
            muster, tmp_path, "sim", "push-certificate", "--renew", "--topic", "com.apple.mgmt.External.b"
        )
        assert other_topic.exit_code == 1
        assert "keeps the topic" in other_topic.output

        renewed = await muster_cli(muster, tmp_path, "sim", "push-certificate", "--renew")
        assert renewed.exit_code == 0, renewed.output
        async with muster.admin() as admin:
            status = (await admin.get(f"{DM}/applePushNotificationCertificate")).json()
        assert status["topicIdentifier"] == "com.apple.mgmt.External.a"
        assert status["certificateSerialNumber"] != installed["certificateSerialNumber"]
