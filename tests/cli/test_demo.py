"""`muster serve --demo`: the fake APNs and virtual devices run next to the server, and devices appear managed."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from pathlib import Path

import httpx
import pytest

from muster.app import prepare_server, tls_paths
from muster.cli.demo import DEMO_DEVICE_COUNT, running_demo
from muster.config import Settings
from muster.pki.secretbox import SecretBox
from muster.store.migrate import upgrade
from tests.harness import DM, free_port


async def demo_settings(data_dir: Path) -> Settings:
    """Settings for a fresh server on a free port, prepared as `muster serve` prepares it."""
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=port,
        public_url=f"https://localhost:{port}",
        master_key=base64.b64encode(SecretBox.generate_key()).decode(),
    )
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    assert await prepare_server(settings) is not None
    return settings


def admin_client(settings: Settings) -> httpx.AsyncClient:
    token = (settings.data_dir / "admin-token").read_text().strip()
    trust = ssl.create_default_context(cafile=tls_paths(settings)[0])
    return httpx.AsyncClient(
        base_url=settings.effective_public_url, verify=trust, headers={"Authorization": f"Bearer {token}"}
    )


async def test_demo_devices_enroll_and_answer_pushes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="muster.demo")
    settings = await demo_settings(tmp_path)
    async with running_demo(settings) as demo, admin_client(settings) as admin:
        await demo.populated
        devices = (await admin.get(f"{DM}/managedDevices")).json()["value"]
        assert len(devices) == DEMO_DEVICE_COUNT
        assert {device["operatingSystem"] for device in devices} == {"iOS", "iPadOS", "macOS"}
        assert {device["managementState"] for device in devices} == {"managed"}
        push = (await admin.get(f"{DM}/applePushNotificationCertificate")).json()
        assert push["topicIdentifier"] == demo.apns.topic

        iphone = next(device for device in devices if device["operatingSystem"] == "iOS")
        virtual = next(device for device in demo.fleet.devices if device.serial_number == iphone["serialNumber"])
        assert not virtual.locked
        response = await admin.post(f"{DM}/managedDevices/{iphone['id']}/remoteLock", json={})
        assert response.status_code == 202, response.text
        await demo.container.pusher.wait_idle()
        await demo.apns.settle()
        assert virtual.locked  # the push woke it, and it fetched and ran the command
        assert demo.apns.count_for(virtual.token_hex) == 2  # after enrollment, then for the lock
    assert any(record.getMessage().startswith("DEMO MODE") for record in caplog.records)
    assert all(getattr(record, "demo", False) for record in caplog.records if record.name == "muster.demo")
    async with admin_client(settings) as admin:
        with pytest.raises(httpx.ConnectError):
            await admin.get(f"{DM}/managedDevices")


async def test_demo_restarted_keeps_its_push_topic(tmp_path: Path) -> None:
    settings = await demo_settings(tmp_path)
    async with running_demo(settings, device_count=1) as first:
        await first.populated
        topic = first.apns.topic
    async with running_demo(settings, device_count=1) as second, admin_client(settings) as admin:
        await second.populated
        assert second.apns.topic == topic
        devices = (await admin.get(f"{DM}/managedDevices")).json()["value"]
        assert len(devices) == 2
