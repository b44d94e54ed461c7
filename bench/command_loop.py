"""Steady command loop: enrolled devices fetch queued commands and send their results, against a bare endpoint.

Devices are enrolled and their inventory answered first (not timed); then K DeviceInformation commands are
queued for every device, and the devices poll concurrently: Idle, then one signed result PUT per command, each
answered with the next command or, at the end, an empty 200. Every PUT is one round trip. The same devices then
send the same number of signed PUTs to a bare route mounted on the same uvicorn/FastAPI app (same middleware),
before and after the Muster run; the ratio of the two rates is the figure that survives a busy machine.

    python -m bench.command_loop [--devices 300] [--commands 20] [--concurrency 16] [--server-processes 1]
"""

from __future__ import annotations

import argparse
import base64
import time
from functools import partial
from typing import Any

from sqlalchemy import func, select
from tests.harness import RunningMuster

from bench.common import (
    BARE_PATH,
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
    run,
    run_in_lanes,
)
from bench.enrollment import INVENTORY_COMMANDS, enroll, export_profiles, make_fleet
from muster.protocols.apple import checkin
from muster.protocols.apple import commands as apple
from muster.protocols.apple.checkin import EnrollmentIdentity, EnrollmentKind
from muster.protocols.apple.results import CommandStatus, encode_report
from muster.protocols.cms import sign_detached
from muster.simulators.apple_device import CONNECT_TYPE, VirtualAppleDevice
from muster.simulators.apple_profile import read_enrollment_profile
from muster.store.tables import DEFAULT_ORG_ID, command_deliveries

TARGET_PER_SECOND = 1500.0
TARGET_RATIO = 0.25


async def bare_session(device: VirtualAppleDevice, url: str, requests: int) -> None:
    """What `poll()` does per round trip on the device side (report, sign, PUT), against the bare route."""
    assert device.identity_certificate is not None and device.key is not None
    keys = checkin.identity_keys(EnrollmentIdentity(device.udid, None, EnrollmentKind.DEVICE))
    for _ in range(requests):
        body = encode_report(CommandStatus.IDLE, keys)
        signature = base64.b64encode(sign_detached(body, device.identity_certificate, device.key)).decode()
        response = await device.http.put(
            url, content=body, headers={"Content-Type": CONNECT_TYPE, "Mdm-Signature": signature}
        )
        if response.status_code != 200:
            raise RuntimeError(f"bare endpoint answered {response.status_code}")


async def muster_session(device: VirtualAppleDevice, commands: int) -> None:
    if (handled := await device.poll()) != commands:
        raise RuntimeError(f"device handled {handled} commands, not {commands}")


async def timed(
    jobs: list[Any], concurrency: int, meter: CpuMeter
) -> tuple[float, list[BaseException], dict[str, float]]:
    meter.start()
    started = time.perf_counter()
    failures = await run_in_lanes(jobs, concurrency)
    return time.perf_counter() - started, failures, meter.stop()


async def acknowledged(muster: RunningMuster) -> int:
    async with muster.container.engine.connect() as conn:
        query = (
            select(func.count()).select_from(command_deliveries).where(command_deliveries.c.status == "acknowledged")
        )
        return int(await conn.scalar(query) or 0)


async def main(options: argparse.Namespace) -> None:
    count, commands = options.devices, options.commands
    profile_server_processes(options.profile, "command_loop")
    keys, _ = device_keys(count)
    async with muster_with_apns(options) as (muster, _):
        profiles = await export_profiles(muster, count)
        trust = read_enrollment_profile(profiles[0]).ssl_context()
        async with device_connections(options.concurrency, trust) as connections:
            fleet = make_fleet(keys, profiles, connections)
            failures = await run_in_lanes([partial(enroll, d, inventory=True) for d in fleet], options.concurrency)
            if failures:
                raise failures[0]
            for _ in range(commands):
                await muster.container.queue.enqueue(
                    apple.device_information(),
                    org_id=DEFAULT_ORG_ID,
                    enrollment_ids=[d.udid for d in fleet],
                    created_by="bench",
                    push=False,  # the devices poll on their own here: the loop is what is measured
                )
            bare_url = f"{muster.base_url}{BARE_PATH}"
            meter = CpuMeter(muster.settings.effective_database_url)
            bare_jobs = [partial(bare_session, d, bare_url, commands + 1) for d in fleet]
            bare_before = await timed(bare_jobs, options.concurrency, meter)
            with profiled(options.profile, "command_loop"):
                muster_jobs = [partial(muster_session, d, commands) for d in fleet]
                loop = await timed(muster_jobs, options.concurrency, meter)
            bare_after = await timed(bare_jobs, options.concurrency, meter)
        verified = await acknowledged(muster)
        env = await environment(options, muster.container)
    emit(figures(options, loop, bare_before, bare_after, verified, env))


def figures(
    options: argparse.Namespace,
    loop: tuple[float, list[BaseException], dict[str, float]],
    bare_before: tuple[float, list[BaseException], dict[str, float]],
    bare_after: tuple[float, list[BaseException], dict[str, float]],
    verified: int,
    env: dict[str, Any],
) -> dict[str, Any]:
    count, commands = options.devices, options.commands
    round_trips = count * (commands + 1)
    seconds, failures, cpu = loop
    rate = round_trips / seconds
    bare_rate = 2 * round_trips / (bare_before[0] + bare_after[0])
    ratio = rate / bare_rate
    expected = count * (INVENTORY_COMMANDS + commands)
    return {
        "name": "command_loop",
        "devices": count,
        "commands_per_device": commands,
        "concurrency": options.concurrency,
        "round_trips": round_trips,
        "seconds": rounded(seconds),
        "rate": rounded(rate, 1),
        "unit": "round trips/s (signed PUT answered with the next command)",
        "commands_per_second": rounded(count * commands / seconds, 1),
        "target": TARGET_PER_SECOND,
        "bare_endpoint_rate": rounded(bare_rate, 1),
        "bare_endpoint_rates_before_after": [
            rounded(round_trips / bare_before[0], 1),
            rounded(round_trips / bare_after[0], 1),
        ],
        "ratio_to_bare_endpoint": rounded(ratio),
        "ratio_target": TARGET_RATIO,
        "met": rate >= TARGET_PER_SECOND
        and ratio >= TARGET_RATIO
        and not (failures or bare_before[1] or bare_after[1])
        and verified == expected,
        "failures": len(failures) + len(bare_before[1]) + len(bare_after[1]),
        "first_failure": _first(failures + bare_before[1] + bare_after[1]),
        "verified_acknowledged": verified,
        "expected_acknowledged": expected,
        "cpu_seconds_muster_run": cpu,
        "cpu_ms_per_round_trip": {part: rounded(1000 * value / round_trips, 3) for part, value in cpu.items()},
        "cpu_seconds_bare_run": bare_before[2],
        "environment": env,
    }


def _first(failures: list[BaseException]) -> str | None:
    return repr(failures[0])[:300] if failures else None


def cli() -> None:
    options = parser(__doc__ or "", devices=300, concurrency=16)
    options.add_argument("--commands", type=int, default=20, help="DeviceInformation commands queued per device")
    run(partial(main, options.parse_args()))


if __name__ == "__main__":
    cli()
