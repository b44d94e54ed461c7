"""Two `muster serve` processes on one PostgreSQL database hand out each queued command exactly once.

Each virtual device polls both servers at the same time (as if a load balancer split its connections); every
command must reach the device once, whichever server hands it out.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from muster.pki.secretbox import SecretBox
from muster.protocols.apple import checkin, commands
from muster.protocols.apple.results import CommandStatus, encode_report
from muster.protocols.cms import sign_detached
from muster.simulators.apns import issue_push_certificate
from muster.simulators.apple_device import CONNECT_TYPE, VirtualAppleDevice
from tests.harness import DM, free_port, fresh_postgres_database, postgres_available

pytestmark = pytest.mark.postgres
COMMANDS_PER_DEVICE = 12
DEVICES = 6


@contextmanager
def muster_process(data_dir: Path, env: dict[str, str], port: int) -> Iterator[str]:
    environment = {**os.environ, **env, "MUSTER_PORT": str(port), "MUSTER_PUBLIC_URL": f"https://localhost:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "muster", "serve"],
        env=environment,
        cwd=data_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"https://localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


async def wait_ready(url: str, ca: Path, process_hint: str) -> None:
    context = ssl.create_default_context(cafile=ca) if ca.exists() else False
    for _ in range(300):
        try:
            async with httpx.AsyncClient(verify=context or False) as http:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
        context = ssl.create_default_context(cafile=ca) if ca.exists() else False
    raise AssertionError(f"{process_hint} did not become ready")


@asynccontextmanager
async def two_servers(tmp_path: Path) -> AsyncIterator[tuple[str, str, Path, str]]:
    async with fresh_postgres_database() as database_url:
        data_dir = tmp_path / "data"
        env = {
            "MUSTER_DATA_DIR": str(data_dir),
            "MUSTER_DATABASE_URL": database_url,
            "MUSTER_HOST": "127.0.0.1",
            "MUSTER_MASTER_KEY": base64.b64encode(SecretBox.generate_key()).decode(),
            "MUSTER_LOG_LEVEL": "warning",
        }
        ca = data_dir / "tls" / "server.crt"
        with muster_process(data_dir, env, free_port()) as first:
            await wait_ready(first, ca, "first server")
            with muster_process(data_dir, env, free_port()) as second:
                await wait_ready(second, ca, "second server")
                yield first, second, ca, (data_dir / "admin-token").read_text().strip()


async def drain(device: VirtualAppleDevice, http: httpx.AsyncClient, url: str, seen: Counter[str]) -> None:
    """One MDM session against one server: Idle, then acknowledge each command until none is left."""
    assert device.identity_certificate is not None and device.key is not None
    keys = checkin.identity_keys(device._identity)
    report = encode_report(CommandStatus.IDLE, keys)
    while True:
        signature = base64.b64encode(sign_detached(report, device.identity_certificate, device.key)).decode()
        response = await http.put(
            f"{url}/mdm/connect", content=report, headers={"Content-Type": CONNECT_TYPE, "Mdm-Signature": signature}
        )
        assert response.status_code == 200, response.text
        if not response.content:
            return
        command_uuid, _ = commands.decode_command(response.content)
        seen[command_uuid] += 1
        report = encode_report(CommandStatus.ACKNOWLEDGED, keys, command_uuid)


async def test_each_command_is_delivered_exactly_once_across_two_servers(tmp_path: Path) -> None:
    if not await postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable, and CI must run this test")
        pytest.skip("PostgreSQL is not reachable")
    async with two_servers(tmp_path) as (first, second, ca, token):
        admin = httpx.AsyncClient(
            base_url=first, verify=ssl.create_default_context(cafile=ca), headers={"Authorization": f"Bearer {token}"}
        )
        await admin.post(f"{DM}/dataSharingConsents/appleMDMPushCertificate/consentToDataSharing")
        csr = (
            await admin.get(
                f"{DM}/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest"
            )
        ).json()["value"]
        response = await admin.patch(
            f"{DM}/applePushNotificationCertificate",
            json={"certificate": issue_push_certificate(csr.encode()).decode(), "appleIdentifier": "it@example.com"},
        )
        assert response.status_code == 200, response.text
        http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca), timeout=30)
        devices = []
        for _ in range(DEVICES):
            device = VirtualAppleDevice(http=http)
            await device.enroll((await admin.post(f"{DM}/exportAppleEnrollmentProfile", json={})).content)
            await device.poll()  # the inventory commands queued at enrollment
            devices.append(device)
        listing = (await admin.get(f"{DM}/managedDevices")).json()["value"]
        ids = [d["id"] for d in listing]
        assert len(ids) == DEVICES
        queued = set()
        for n in range(COMMANDS_PER_DEVICE):
            response = await admin.post(
                f"{DM}/managedDevices/executeAction",
                json={"actionName": "setDeviceName", "deviceIds": ids, "deviceName": f"n{n}"},
            )
            assert response.status_code == 200 and not response.json()["failedDeviceIds"]
        history = [(await admin.get(f"{DM}/managedDevices/{i}/commands")).json()["value"] for i in ids]
        queued = {h["commandUuid"] for per_device in history for h in per_device if h["status"] == "queued"}
        assert len(queued) == COMMANDS_PER_DEVICE

        seen: list[Counter[str]] = [Counter() for _ in devices]
        await asyncio.gather(
            *(
                drain(device, http, url, seen[i])
                for i, device in enumerate(devices)
                for url in (first, second)
                for _ in range(2)
            )
        )
        for counter in seen:
            assert set(counter) == queued
            assert all(count == 1 for count in counter.values()), counter
        await http.aclose()
        await admin.aclose()
