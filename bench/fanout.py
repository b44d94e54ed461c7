"""One command queued for 100,000 enrolled devices, and the push fan-out that wakes them through the fake APNs.

The enrolled devices are written straight into the database (SQLAlchemy Core bulk inserts; not timed), then:
1. the command queue service queues one DeviceLock for all of them (`container.queue.enqueue`, no push);
2. the admin API does the same with Graph's bulk action (`POST .../managedDevices/executeAction`, remoteLock)
   over HTTPS, before any push certificate is installed so that no push follows;
3. the push dispatcher wakes every enrollment (`pusher.request(ids)` then `wait_idle()`, the production path,
   in batches) through the fake APNs over TLS + HTTP/2 with the push certificate (mutual TLS); the fake APNs
   counts what it accepted.

    python -m bench.fanout [--devices 100000] [--server-processes 1] [--sqlite] [--only enqueue|push]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.harness import DM, FakeApple, RunningMuster, fake_apple, running_muster

from bench.common import (
    BENCH_APP,
    CpuMeter,
    database,
    emit,
    environment,
    parser,
    profile_server_processes,
    profiled,
    rounded,
    run,
)
from muster.protocols.apple import commands as apple
from muster.simulators.apns import FakeApns
from muster.store.tables import DEFAULT_ORG_ID, devices, enrollments

ENQUEUE_TARGET_SECONDS = 5.0
PUSH_TARGET_PER_SECOND = 5000.0
CHUNK = 5000


@dataclass
class RemoteFakeApple:
    """The fake APNs served by another process, as Apple's servers are not on this machine. `apple` carries its
    URL, CA and topic for `running_muster`; its `apns` object is a local stand-in holding only the topic."""

    apple: FakeApple
    _pipe: Connection

    async def accepted(self) -> int:
        """How many pushes the fake APNs has accepted so far."""
        self._pipe.send("count")
        return int(await asyncio.to_thread(self._pipe.recv))


@asynccontextmanager
async def fake_apple_process(tmp: Path) -> AsyncIterator[RemoteFakeApple]:
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve_fake_apple, args=(tmp, theirs), daemon=True)
    process.start()
    try:
        url, ca_file, topic = await asyncio.to_thread(ours.recv)
        yield RemoteFakeApple(FakeApple(FakeApns(topic=topic), url, Path(ca_file)), ours)
    finally:
        ours.send("stop")
        await asyncio.to_thread(process.join, 30)


def _serve_fake_apple(tmp: Path, pipe: Connection) -> None:
    async def serve() -> None:
        async with fake_apple(tmp) as apple:
            pipe.send((apple.url, str(apple.ca_file), apple.apns.topic))
            while (request := await asyncio.to_thread(pipe.recv)) != "stop":
                assert request == "count"
                pipe.send(len(apple.apns.pushes))

    run(serve)


async def seed(engine: AsyncEngine, count: int, topic: str) -> tuple[list[str], list[str]]:
    """`count` managed iPhones, each with an enabled device channel and a push token; (device ids, enrollment ids)."""
    device_ids = [str(uuid.uuid4()) for _ in range(count)]
    enrollment_ids = [str(uuid.uuid4()).upper() for _ in range(count)]
    stamp = datetime.now(UTC)
    async with engine.begin() as conn:
        for start in range(0, count, CHUNK):
            chunk = range(start, min(start + CHUNK, count))
            await conn.execute(insert(devices), [_device_row(device_ids[i], enrollment_ids[i], stamp) for i in chunk])
            await conn.execute(
                insert(enrollments), [_enrollment_row(enrollment_ids[i], device_ids[i], topic, stamp) for i in chunk]
            )
    return device_ids, enrollment_ids


def _device_row(device_id: str, udid: str, now: datetime) -> dict[str, Any]:
    return {
        "id": device_id,
        "org_id": DEFAULT_ORG_ID,
        "udid": udid,
        "serial_number": "F" + udid[:11].replace("-", ""),
        "device_name": "iPhone",
        "operating_system": "iOS",
        "os_version": "17.5",
        "owner_type": "company",
        "enrollment_type": "profileEnrollment",
        "management_state": "managed",
        "is_supervised": True,
        "enrolled_at": now,
        "inventory": {},
    }


def _enrollment_row(enrollment_id: str, device_id: str, topic: str, now: datetime) -> dict[str, Any]:
    return {
        "id": enrollment_id,
        "org_id": DEFAULT_ORG_ID,
        "device_id": device_id,
        "kind": "DEVICE",
        "enabled": True,
        "topic": topic,
        "push_token": os.urandom(32),
        "push_magic": str(uuid.uuid4()).upper(),
        "push_unregistered": False,
        "awaiting_configuration": False,
        "authenticated_at": now,
        "token_updated_at": now,
    }


async def enqueue_by_service(muster: RunningMuster, enrollment_ids: list[str]) -> float:
    started = time.perf_counter()
    await muster.container.queue.enqueue(
        apple.device_lock(), org_id=DEFAULT_ORG_ID, enrollment_ids=enrollment_ids, created_by="bench", push=False
    )
    return time.perf_counter() - started


async def enqueue_by_admin_api(muster: RunningMuster, device_ids: list[str]) -> tuple[float, int]:
    async with muster.admin() as admin:
        admin.timeout = 600
        started = time.perf_counter()
        response = await admin.post(
            f"{DM}/managedDevices/executeAction", json={"actionName": "remoteLock", "deviceIds": device_ids}
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds, len(response.json()["successfulDeviceIds"])


async def push_fanout(muster: RunningMuster, enrollment_ids: list[str]) -> float:
    started = time.perf_counter()
    muster.container.pusher.request(enrollment_ids)
    await muster.container.pusher.wait_idle()
    return time.perf_counter() - started


async def main(options: argparse.Namespace) -> None:
    profile_server_processes(options.profile, "fanout")
    with tempfile.TemporaryDirectory(prefix="muster-bench-") as tmp:
        if options.apns_in_process:
            async with fake_apple(Path(tmp) / "apple") as apple:
                await measure(options, Path(tmp), apple, partial(_count_pushes, apple))
        else:
            async with fake_apple_process(Path(tmp) / "apple") as remote:
                await measure(options, Path(tmp), remote.apple, remote.accepted)


async def _count_pushes(apple: FakeApple) -> int:
    return len(apple.apns.pushes)


async def measure(
    options: argparse.Namespace, tmp: Path, apple: FakeApple, accepted: Callable[[], Awaitable[int]]
) -> None:
    count = options.devices
    results: dict[str, Any] = {}
    async with (
        database(options) as url,
        running_muster(
            tmp / "muster",
            database_url=url,
            apple=apple,
            app_factory=BENCH_APP,
            server_processes=options.server_processes,
        ) as muster,
    ):
        started = time.perf_counter()
        device_ids, enrollment_ids = await seed(muster.container.engine, count, apple.apns.topic)
        results["seed_seconds"] = rounded(time.perf_counter() - started)
        meter = CpuMeter(url)
        if options.only in (None, "enqueue"):
            with profiled(options.profile, "fanout-enqueue"):
                meter.start()
                service_seconds = await enqueue_by_service(muster, enrollment_ids)
                results["enqueue_service_cpu_seconds"] = meter.stop()
            meter.start()
            api_seconds, queued = await enqueue_by_admin_api(muster, device_ids)
            results["enqueue_admin_api_cpu_seconds"] = meter.stop()
            results["enqueue"] = enqueue_figures(count, service_seconds, api_seconds, queued)
        if options.only in (None, "push"):
            await muster.install_push_certificate(apple)
            with profiled(options.profile, "fanout-push"):
                meter.start()
                push_seconds = await push_fanout(muster, enrollment_ids)
                results["push_cpu_seconds"] = meter.stop()
            results["push"] = push_figures(count, push_seconds, await accepted(), options.apns_in_process)
        env = await environment(options, muster.container)
    parts = [results[part] for part in ("enqueue", "push") if part in results]  # the admin API is reported apart
    emit({"name": "fanout", "devices": count, "met": all(part["met"] for part in parts), **results, "environment": env})


def enqueue_figures(count: int, service_seconds: float, api_seconds: float, queued: int) -> dict[str, Any]:
    return {
        "seconds": rounded(service_seconds),
        "rate": rounded(count / service_seconds, 1),
        "unit": "deliveries queued/s (one command for every device, command queue service)",
        "target_seconds": ENQUEUE_TARGET_SECONDS,
        "met": service_seconds <= ENQUEUE_TARGET_SECONDS,
        "admin_api_seconds": rounded(api_seconds),
        "admin_api_queued": queued,
        "admin_api_met": api_seconds <= ENQUEUE_TARGET_SECONDS and queued == count,
    }


def push_figures(count: int, seconds: float, accepted: int, apns_in_process: bool) -> dict[str, Any]:
    rate = count / seconds
    return {
        "seconds": rounded(seconds),
        "rate": rounded(rate, 1),
        "unit": "pushes/s accepted by the fake APNs (TLS + HTTP/2, push certificate)",
        "target": PUSH_TARGET_PER_SECOND,
        "met": rate >= PUSH_TARGET_PER_SECOND and accepted == count,
        "accepted_by_fake_apns": accepted,
        "fake_apns": "in the benchmark's process" if apns_in_process else "in a process of its own",
    }


def cli() -> None:
    options = parser(__doc__ or "", devices=100_000)
    options.add_argument("--only", choices=["enqueue", "push"], help="run one of the two measurements")
    options.add_argument(
        "--apns-in-process", action="store_true", help="serve the fake APNs in this process (it shares its core)"
    )
    run(partial(main, options.parse_args()))


if __name__ == "__main__":
    cli()
