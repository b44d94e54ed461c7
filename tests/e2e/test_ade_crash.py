"""Crash safety of the ADE sync: a server process killed mid-sync (SIGKILL, no clean-up) loses nothing; the
next sync resumes from the last saved page, and no device is lost or duplicated."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select

from muster.simulators.abm import FakeAbm, serve_fake_abm
from muster.store.tables import ade_devices, dep_tokens
from tests.harness import DM, free_port, running_muster, settings_environment

TOKENS = f"{DM}/depOnboardingSettings"
DEVICES = 3000  # three fetch pages of 1,000


async def test_killed_sync_resumes_without_losing_or_duplicating_devices(tmp_path: Path, database_url: str) -> None:
    abm = FakeAbm(org_name="Example Corp")
    async with (
        serve_fake_abm(abm) as abm_url,
        running_muster(tmp_path / "m", database_url=database_url, dep_url=abm_url, ade_sync_lease_seconds=2) as muster,
        muster.admin() as admin,
    ):
        await admin.post(f"{DM}/dataSharingConsents/appleEnrollmentProgram/consentToDataSharing")
        token_id = (await admin.post(TOKENS, json={"tokenName": "Main"})).json()["id"]
        public_key = (await admin.get(f"{TOKENS}/{token_id}/generateEncryptionPublicKey")).json()["value"]
        server = abm.add_server("Muster MDM", public_key.encode())
        serials = abm.seed_devices(server, DEVICES)
        abm.set_delay(0.4)  # slow Apple down, so the kill lands mid-sync

        port = free_port()
        environment = {
            **os.environ,
            **settings_environment(muster.settings),
            "MUSTER_PORT": str(port),
            "MUSTER_JOBS_INTERVAL_SECONDS": "3600",
        }
        doomed = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "muster",
            "serve",
            env=environment,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(
                base_url=f"https://localhost:{port}",
                timeout=30,
                verify=ssl.create_default_context(cafile=muster.tls_ca_file),
                headers={"Authorization": f"Bearer {muster.admin_token}"},
            ) as other:
                for _ in range(300):
                    try:
                        if (await other.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                uploaded = await other.post(
                    f"{TOKENS}/{token_id}/uploadDepToken",
                    json={"appleId": "it@example.com", "depToken": server.download_token().decode()},
                )
                assert uploaded.status_code == 200, uploaded.text
                saved = await wait_for_saved_pages(muster.container.engine, token_id)
        finally:
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
        assert 0 < saved < DEVICES  # killed mid-sync, with some pages saved

        async with muster.container.engine.connect() as conn:
            cursor_kind = (
                await conn.execute(select(dep_tokens.c.cursor_kind).where(dep_tokens.c.id == token_id))
            ).scalar()
        assert cursor_kind == "fetch"  # the interrupted fetch's cursor is kept
        abm.set_delay(0)
        await asyncio.sleep(2.1)  # the dead process's lease lapses
        calls_before = len(abm.calls)
        resumed = await admin.post(f"{TOKENS}/{token_id}/syncWithAppleDeviceEnrollmentProgram")
        assert resumed.status_code == 204, resumed.text
        await muster.container.ade_sync.wait_idle()

        fetches = [c for c in list(abm.calls)[calls_before:] if c.path == "/server/devices"]
        assert len(fetches) == (DEVICES - saved) // 1000  # resumed after the saved pages, not from scratch
        async with muster.container.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(ade_devices.c.serial_number, func.count())
                    .where(ade_devices.c.token_id == token_id)
                    .group_by(ade_devices.c.serial_number)
                )
            ).all()
        assert sorted(serial for serial, _ in rows) == sorted(serials)  # nothing lost
        assert all(count == 1 for _, count in rows)  # nothing duplicated
        token = (await admin.get(f"{TOKENS}/{token_id}")).json()
        assert token["syncedDeviceCount"] == DEVICES and token["syncState"] == "idle"


async def wait_for_saved_pages(engine: object, token_id: str) -> int:
    """Wait until the other process has saved at least one page (but not all of them)."""
    for _ in range(400):
        async with engine.connect() as conn:  # type: ignore[attr-defined]
            saved = (
                await conn.execute(
                    select(func.count()).select_from(ade_devices).where(ade_devices.c.token_id == token_id)
                )
            ).scalar_one()
        if saved:
            return int(saved)
        await asyncio.sleep(0.05)
    raise AssertionError("the sync never saved a page")
