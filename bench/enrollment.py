"""Full Apple enrollment of many virtual devices: profile -> SCEP -> Authenticate -> TokenUpdate -> inventory.

Each device verifies its own signed enrollment profile (exported, one fresh SCEP challenge each, before timing),
asks the CA certificate, sends a PKCSReq with its pre-generated RSA-2048 key, then the signed Authenticate and
TokenUpdate, then answers the five inventory commands Muster queues at enrollment (Idle + 5 results). Every
request is real HTTP/1.1 over TLS to 127.0.0.1 with a real `Mdm-Signature`.

The figure is set against the RSA floor measured in the same run: the issue counts 9 RSA-2048 private-key
operations per enrollment (3 on the server, about 6 on the device), so this machine can do no more than
1 / (9 x t_rsa) enrollments/s, t_rsa being one signature's time with all cores signing at once.

    python -m bench.enrollment [--devices 2000] [--concurrency 16] [--server-processes 1] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from tests.harness import DM, FakeApple, RunningMuster

from bench.common import (
    CpuMeter,
    device_connections,
    device_keys,
    emit,
    environment,
    muster_with_apns,
    parser,
    profile_server_processes,
    profiled,
    rounded,
    rsa_floor,
    run,
    run_in_lanes,
)
from muster.simulators.apple_device import VirtualAppleDevice
from muster.simulators.apple_profile import read_enrollment_profile
from muster.store.tables import command_deliveries, devices

TARGET_PER_SECOND = 300.0
ISSUE_RSA_OPERATIONS = 9  # per enrollment, as the issue counts them
INVENTORY_COMMANDS = 5
SERVER_RSA_OPERATIONS = 3  # PKCSReq decryption, certificate signature, CertRep signature
DEVICE_RSA_OPERATIONS = 6  # CSR, SCEP signer certificate, PKCSReq signature, CertRep decryption, 2 check-ins


async def export_profiles(muster: RunningMuster, count: int, concurrency: int = 8) -> list[bytes]:
    """One signed profile (so one one-time SCEP challenge) per device, through the admin API."""
    profiles: list[bytes] = []
    async with muster.admin() as admin:

        async def export() -> None:
            response = await admin.post(f"{DM}/exportAppleEnrollmentProfile", json={"userPrincipalName": None})
            response.raise_for_status()
            profiles.append(response.content)

        failures = await run_in_lanes([export] * count, concurrency)
    if failures:
        raise failures[0]
    return profiles


def make_fleet(
    keys: Sequence[rsa.RSAPrivateKey], profiles: Sequence[bytes], connections: Sequence[httpx.AsyncClient]
) -> list[VirtualAppleDevice]:
    """Device i uses connection i % len(connections), the lane `run_in_lanes` runs it in."""
    fleet = []
    for index, (key, profile) in enumerate(zip(keys, profiles, strict=True)):
        device = VirtualAppleDevice(http=connections[index % len(connections)], key=key)
        device.install_profile(profile)  # the user installs it before the device enrolls
        fleet.append(device)
    return fleet


async def enroll(device: VirtualAppleDevice, *, inventory: bool) -> None:
    await device.enroll()
    if inventory and (handled := await device.poll()) != INVENTORY_COMMANDS:
        raise RuntimeError(f"device answered {handled} inventory commands, not {INVENTORY_COMMANDS}")


async def verify(muster: RunningMuster, apple: FakeApple, count: int) -> dict[str, int]:
    """What the database and the fake APNs hold afterwards (pushes are sent in the background: wait for them)."""
    for _ in range(600):
        if len(apple.apns.pushes) >= count:
            break
        await asyncio.sleep(0.1)
    async with muster.container.engine.connect() as conn:
        managed = await conn.scalar(
            select(func.count()).select_from(devices).where(devices.c.management_state == "managed")
        )
        acknowledged = await conn.scalar(
            select(func.count()).select_from(command_deliveries).where(command_deliveries.c.status == "acknowledged")
        )
    return {
        "managed_devices": managed or 0,
        "acknowledged_commands": acknowledged or 0,
        "pushes": len(apple.apns.pushes),
    }


async def main(options: argparse.Namespace) -> None:
    count = options.devices
    profile_server_processes(options.profile, "enrollment")
    started = time.perf_counter()
    keys, generated = device_keys(count)
    keys_seconds = time.perf_counter() - started
    floor = rsa_floor(keys[0], count * ISSUE_RSA_OPERATIONS)
    async with muster_with_apns(options) as (muster, apple):
        started = time.perf_counter()
        profiles = await export_profiles(muster, count)
        export_seconds = time.perf_counter() - started
        trust = read_enrollment_profile(profiles[0]).ssl_context()
        async with device_connections(options.concurrency, trust) as connections:
            fleet = make_fleet(keys, profiles, connections)
            meter = CpuMeter(muster.settings.effective_database_url)
            with profiled(options.profile, "enrollment"):
                meter.start()
                started = time.perf_counter()
                jobs = [partial(enroll, device, inventory=not options.no_inventory) for device in fleet]
                failures = await run_in_lanes(jobs, options.concurrency)
                seconds = time.perf_counter() - started
                cpu = meter.stop()
        verified = await verify(muster, apple, count)
        env = await environment(options, muster.container)
    emit(figures(options, seconds, failures, floor, verified, cpu, export_seconds, keys_seconds, generated, env))


def figures(
    options: argparse.Namespace,
    seconds: float,
    failures: list[BaseException],
    floor: dict[str, float],
    verified: dict[str, int],
    cpu: dict[str, float],
    export_seconds: float,
    keys_seconds: float,
    generated: int,
    env: dict[str, Any],
) -> dict[str, Any]:
    count = options.devices
    rate = count / seconds
    inventory_requests = 0 if options.no_inventory else INVENTORY_COMMANDS + 1
    floor_rate = 1000 / (ISSUE_RSA_OPERATIONS * floor["ms_per_op_all_cores"])
    floor_rate_one_core = 1000 / (ISSUE_RSA_OPERATIONS * floor["ms_per_op_one_core"])
    expected = {
        "managed_devices": count,
        "acknowledged_commands": 0 if options.no_inventory else count * INVENTORY_COMMANDS,
        "pushes": count,
    }
    return {
        "name": "enrollment",
        "devices": count,
        "concurrency": options.concurrency,
        "flow": "GetCACert, PKIOperation, Authenticate, TokenUpdate"
        + ("" if options.no_inventory else ", Idle + 5 inventory results"),
        "http_requests_per_enrollment": 4 + inventory_requests,
        "seconds": rounded(seconds),
        "rate": rounded(rate, 1),
        "unit": "enrollments/s",
        "target": TARGET_PER_SECOND,
        "met": rate >= TARGET_PER_SECOND and not failures and verified == expected,
        "failures": len(failures),
        "first_failure": repr(failures[0])[:300] if failures else None,
        "verified": verified,
        "cpu_seconds": cpu,
        "cpu_ms_per_enrollment": {part: rounded(1000 * value / count, 2) for part, value in cpu.items()},
        "rsa_ms_per_op_one_core": rounded(floor["ms_per_op_one_core"], 4),
        "rsa_ms_per_op_all_cores": rounded(floor["ms_per_op_all_cores"], 4),
        "rsa_floor_rate": rounded(floor_rate, 1),
        "ratio_to_rsa_floor": rounded(rate / floor_rate),
        "rsa_floor_rate_one_core": rounded(floor_rate_one_core, 1),
        "ratio_to_rsa_floor_one_core": rounded(rate / floor_rate_one_core),
        "rsa_private_ops_per_enrollment_in_this_flow": {
            "server": SERVER_RSA_OPERATIONS,
            "device": DEVICE_RSA_OPERATIONS + inventory_requests,
        },
        "profile_export": {
            "profiles": count,
            "seconds": rounded(export_seconds),
            "rate": rounded(count / export_seconds, 1),
        },
        "device_keys": {"generated_now": generated, "seconds": rounded(keys_seconds)},
        "environment": env,
    }


def cli() -> None:
    options = parser(__doc__ or "", devices=2000, concurrency=16)
    options.add_argument("--no-inventory", action="store_true", help="stop after TokenUpdate")
    run(partial(main, options.parse_args()))


if __name__ == "__main__":
    cli()
