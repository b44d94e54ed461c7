"""Secrets are encrypted at rest: no private key, unlock token or push magic readable in the database file."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from muster.simulators.apple_device import VirtualAppleDevice
from tests.harness import fake_apple, running_muster


async def test_database_holds_no_plaintext_secret(tmp_path: Path) -> None:
    async with fake_apple(tmp_path / "apple") as apple, running_muster(tmp_path / "m", apple=apple) as muster:
        await muster.install_push_certificate(apple)
        profile = await muster.enrollment_profile()
        installed = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(profile)
        async with httpx.AsyncClient(verify=installed.ssl_context()) as http:
            device = VirtualAppleDevice(http=http)
            await device.enroll(profile)
            await device.poll()
        await muster.container.engine.dispose()  # flush the WAL into the file
        stored = b"".join(p.read_bytes() for p in (tmp_path / "m").glob("muster.db*"))
    assert b"PRIVATE KEY" not in stored
    assert device.unlock_token not in stored
    assert base64.b64encode(device.unlock_token)[:40] not in stored  # nor in the raw TokenUpdate kept on record
    assert installed.scep_challenge.encode() not in stored  # only its hash is kept
    assert b"BEGIN CERTIFICATE" in stored  # the check itself can see PEM text in the file
