"""ADE at scale: the full sync of a 200,000-device token from the ABM simulator, then one iOS profile assigned
to every device.

The fake ABM is seeded with N iPhones and iPads (so every device is one the iOS profile serves) and served over
HTTP on 127.0.0.1, in this process's event loop or, with --abm-process, in a process of its own so that its JSON
encoding does not share Muster's core. Muster runs in this event loop (the sync is a task of its container:
`wait_idle()` has to see it). Through the admin API, as tests/e2e/test_ade.py does, the benchmark links a token,
then times:
1. sync: `uploadDepToken` (which starts the automatic full sync) until `container.ade_sync.wait_idle()`; the
   database must then hold N distinct assigned devices;
2. assign: creating one iOS profile and `setDefaultProfile`, which assigns every device without a profile through
   ABM in requests of 1,000 serials; the database and the fake ABM must then show all N assigned.
Issue targets: sync >= 1,000,000 devices/min (<= 12 s for 200,000), assign >= 200,000/min, peak RSS <= 512 MB.
With --profile, each phase is profiled (cProfile, CPU time) and the JSON splits its CPU by part of the stack.

    python -m bench.ade_sync [--devices 200000] [--sqlite | --database-url URL] [--abm-process] [--profile PREFIX]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import pstats
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.harness import DM, PG_URL, RunningMuster, running_muster

from bench.common import CpuMeter, database, emit, environment, profiled, rounded, run
from muster.simulators.abm import FakeAbm, serve_fake_abm
from muster.store.tables import ade_devices

TOKENS = f"{DM}/depOnboardingSettings"
FAMILIES = ("iPhone", "iPad")  # all served by the iOS profile: every device is to be assigned
SYNC_TARGET_SECONDS = 12.0
SYNC_TARGET_DEVICES = 200_000
ASSIGN_TARGET_PER_MINUTE = 200_000.0
MEMORY_TARGET_MB = 512.0
ADMIN_TIMEOUT = 3600.0  # setDefaultProfile answers only once every device is assigned
# Where CPU time goes, by the file (or built-in) a profiled function belongs to; the first match wins.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("abm_simulator", ("/muster/simulators/",)),
    ("json_encode", ("/json/encoder.py",)),
    ("json_decode", ("/json/decoder.py",)),
    ("dep_codec", ("/muster/protocols/apple/dep",)),
    ("muster_services_and_client", ("/muster/services/", "/muster/domain/", "/muster/clients/", "/muster/web/")),
    ("muster_store", ("/muster/store/",)),
    ("database_driver", ("/sqlalchemy/", "/asyncpg/", "/aiosqlite/", "sqlite3", "asyncpg")),
    ("http", ("/httpx/", "/httpcore/", "/h11/", "/uvicorn/", "/starlette/", "/fastapi/", "/anyio/", "ssl")),
    ("event_loop", ("/asyncio/", "uvloop")),
)
# Synchronous functions whose cumulative time is exact (a coroutine's is not: it leaves the frame at each await).
KEY_FUNCTIONS = (
    "fetch_page",
    "encode_json",
    "decode_fetch_page",
    "latest_per_serial",
    "_row",
    "_assign_serials",
    "encode_assignment",
    "decode_assignment",
)


# -- the fake ABM, here or in a process of its own -------------------------------------------------------------


class AbmControl:
    """The ABM administrator's side of the benchmark, wherever the fake ABM runs."""

    def __init__(self, abm: FakeAbm, profile_path: Path | None = None) -> None:
        self._abm = abm
        self._serials: list[str] = []
        self._profile_path = profile_path
        self._profiler: cProfile.Profile | None = None

    def link(self, public_key: bytes, devices: int) -> tuple[bytes, float]:
        """Add Muster's MDM server with `devices` iPhones and iPads; its server token and the seconds seeding took."""
        server = self._abm.add_server("Muster MDM", public_key)
        started = time.perf_counter()
        self._serials = self._abm.seed_devices(server, devices, families=FAMILIES)
        seeded = time.perf_counter() - started
        if self._profile_path is not None:  # from here on: what the sync and the assignment cost ABM
            self._profiler = cProfile.Profile(time.process_time)
            self._profiler.enable()
        return server.download_token(), seeded

    def assigned(self, profile_uuid: str) -> int:
        """How many of the seeded devices ABM shows with this profile."""
        return sum(
            1 for serial in self._serials if (self._abm.device(serial) or {}).get("profile_uuid") == profile_uuid
        )

    def finish(self) -> float:
        """Stop profiling (the profile is written) and give this process's peak RSS in MB."""
        if self._profiler is not None and self._profile_path is not None:
            self._profiler.disable()
            self._profiler.dump_stats(self._profile_path)
        return peak_rss_mb()


@dataclass
class AbmHandle:
    url: str
    location: str
    call: Callable[..., Awaitable[Any]]  # (AbmControl method name, *its arguments) -> its result


@asynccontextmanager
async def abm_here() -> AsyncIterator[AbmHandle]:
    abm = FakeAbm(org_name="Bench Corp")
    control = AbmControl(abm)

    async def call(name: str, *arguments: Any) -> Any:
        return getattr(control, name)(*arguments)

    async with serve_fake_abm(abm) as url:
        yield AbmHandle(url, "in the benchmark's event loop", call)


@asynccontextmanager
async def abm_process(profile_path: Path | None) -> AsyncIterator[AbmHandle]:
    context = multiprocessing.get_context("spawn")  # spawn: this process already runs an event loop
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve_abm, args=(theirs, profile_path), daemon=True)
    process.start()
    lock = asyncio.Lock()  # one request on the pipe at a time

    async def call(name: str, *arguments: Any) -> Any:
        async with lock:
            ours.send((name, arguments))
            failed, value = await asyncio.to_thread(_receive, ours, process)
        if failed:
            raise RuntimeError(f"the ABM process failed in {name}: {value}")
        return value

    try:
        url = await asyncio.to_thread(_receive, ours, process)
        yield AbmHandle(url, "a process of its own", call)
    finally:
        if process.is_alive():
            ours.send(None)
            await asyncio.to_thread(process.join, 60)
        if process.is_alive():
            process.terminate()


def _receive(pipe: Connection, process: BaseProcess) -> Any:
    """The ABM process's next message, or an error when it died instead of answering (not an endless wait)."""
    while not pipe.poll(0.2):
        if not process.is_alive():
            raise RuntimeError(f"the ABM process exited with status {process.exitcode}")
    return pipe.recv()


def _serve_abm(pipe: Connection, profile_path: Path | None) -> None:
    async def serve() -> None:
        abm = FakeAbm(org_name="Bench Corp")
        control = AbmControl(abm, profile_path)
        async with serve_fake_abm(abm) as url:
            pipe.send(url)
            while (request := await asyncio.to_thread(pipe.recv)) is not None:
                name, arguments = request
                try:
                    pipe.send((False, getattr(control, name)(*arguments)))
                except Exception as error:  # reported to the benchmark, which raises it
                    pipe.send((True, repr(error)))

    run(serve)


# -- the two timed phases ---------------------------------------------------------------------------------------


async def new_token(admin: httpx.AsyncClient) -> tuple[str, bytes]:
    """Consent, a token, and the public key to upload to ABM (test_ade.py's `link_token`)."""
    (await admin.post(f"{DM}/dataSharingConsents/appleEnrollmentProgram/consentToDataSharing")).raise_for_status()
    created = await admin.post(TOKENS, json={"tokenName": "Bench"})
    created.raise_for_status()
    token_id = created.json()["id"]
    key = await admin.get(f"{TOKENS}/{token_id}/generateEncryptionPublicKey()")
    key.raise_for_status()
    return token_id, key.json()["value"].encode()


async def sync(muster: RunningMuster, admin: httpx.AsyncClient, token_id: str, server_token: bytes) -> float:
    started = time.perf_counter()
    uploaded = await admin.post(
        f"{TOKENS}/{token_id}/uploadDepToken", json={"appleId": "it@example.com", "depToken": server_token.decode()}
    )
    uploaded.raise_for_status()
    await muster.container.ade_sync.wait_idle()
    return time.perf_counter() - started


async def assign(admin: httpx.AsyncClient, token_id: str) -> tuple[str, str, float, float]:
    """(profile id, ABM profile UUID, seconds to create it, seconds for setDefaultProfile)."""
    started = time.perf_counter()
    created = await admin.post(
        f"{TOKENS}/{token_id}/enrollmentProfiles",
        json={
            "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile",
            "displayName": "Corporate iOS",
            "supervisedModeEnabled": True,
            "deviceNameTemplate": "{{DEVICETYPE}}-{{SERIAL}}",
        },
    )
    created.raise_for_status()
    profile = created.json()
    defined = time.perf_counter()
    default = await admin.post(f"{TOKENS}/{token_id}/enrollmentProfiles/{profile['id']}/setDefaultProfile")
    default.raise_for_status()
    return profile["id"], profile["abmProfileUuid"], defined - started, time.perf_counter() - defined


async def synced_devices(engine: AsyncEngine, token_id: str) -> int:
    d = ade_devices.c
    query = select(func.count(distinct(d.serial_number))).where(d.token_id == token_id, d.abm_status == "assigned")
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def assigned_devices(engine: AsyncEngine, profile_id: str) -> int:
    d = ade_devices.c
    query = select(func.count()).where(d.profile_id == profile_id, d.assignment_status == "succeeded")
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


# -- measurement ------------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


@contextmanager
def phase(options: argparse.Namespace, meter: CpuMeter, name: str, cpu: dict[str, Any]) -> Iterator[None]:
    """Profile the phase when asked and put its CPU seconds by process into `cpu[name]`."""
    with profiled(options.profile, f"ade_sync-{name}"):
        meter.start()
        yield
        used = meter.stop()
    used.pop("server")  # Muster is served in this event loop: its CPU is the benchmark's
    # CpuMeter names every other child process fake_apns; here the only child is the ABM process
    abm = used.pop("fake_apns")
    cpu[name] = {**used, "abm_process": abm} if options.abm_process else used


def profile_file(prefix: Path, name: str) -> Path:
    return prefix.parent / f"{prefix.name}{name}-client.prof"  # where bench.common.profiled writes it


def cpu_split(path: Path) -> dict[str, Any]:
    """A profile's CPU seconds by part of the stack (own time), its top functions, and the key functions'
    cumulative time."""
    stats = pstats.Stats(str(path))
    entries: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    parts = dict.fromkeys([name for name, _ in PARTS] + ["other"], 0.0)
    cumulative = dict.fromkeys(KEY_FUNCTIONS, 0.0)
    for (filename, _, function), (_, _, own, total, _) in entries.items():
        where = f"{filename}:{function}"
        parts[next((name for name, marks in PARTS if any(mark in where for mark in marks)), "other")] += own
        if function in cumulative and "/muster/" in filename:
            cumulative[function] += total
    top = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:12]
    return {
        "profiled_cpu_seconds": rounded(sum(parts.values()), 2),
        "own_cpu_seconds_by_part": {name: rounded(value, 2) for name, value in parts.items()},
        "cumulative_seconds": {name: rounded(value, 2) for name, value in cumulative.items() if value},
        "top_own_time": [
            f"{rounded(own, 2)} s {_short(filename)}:{line}({function})"
            for (filename, line, function), (_, _, own, _, _) in top
        ],
    }


def _short(filename: str) -> str:
    for root in ("/site-packages/", "/src/", "/lib/python3.11/"):
        if root in filename:
            return filename.split(root, 1)[1]
    return filename


def profiles(options: argparse.Namespace, abm_profile: Path | None) -> dict[str, Any] | None:
    if options.profile is None:
        return None
    found = {name: cpu_split(profile_file(options.profile, f"ade_sync-{name}")) for name in ("sync", "assign")}
    if abm_profile is not None and abm_profile.exists():
        found["abm_process_sync_and_assign"] = cpu_split(abm_profile)
    return found


# -- the run ----------------------------------------------------------------------------------------------------


async def main(options: argparse.Namespace) -> None:
    count = options.devices
    abm_profile = None
    if options.profile is not None and options.abm_process:
        abm_profile = (options.profile.parent / f"{options.profile.name}ade_sync-abm.prof").resolve()
    cpu: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="muster-bench-") as tmp:
        async with (
            database(options) as url,
            abm_process(abm_profile) if options.abm_process else abm_here() as abm,
            running_muster(Path(tmp) / "muster", database_url=url, dep_url=abm.url) as muster,
            muster.admin() as admin,
        ):
            admin.timeout = httpx.Timeout(ADMIN_TIMEOUT)
            engine = muster.container.engine
            token_id, public_key = await new_token(admin)
            server_token, seed_seconds = await abm.call("link", public_key, count)
            rss = {"before_sync": peak_rss_mb()}
            meter = CpuMeter(url)
            with phase(options, meter, "sync", cpu):
                sync_seconds = await sync(muster, admin, token_id, server_token)
            rss["after_sync"] = peak_rss_mb()
            synced = await synced_devices(engine, token_id)
            with phase(options, meter, "assign", cpu):
                profile_id, abm_uuid, create_seconds, default_seconds = await assign(admin, token_id)
            assigned = {
                "database": await assigned_devices(engine, profile_id),
                "abm": await abm.call("assigned", abm_uuid),
            }
            abm_rss = await abm.call("finish")
            env = await environment(options, muster.container)
    timings = {"seed": seed_seconds, "sync": sync_seconds, "create": create_seconds, "default": default_seconds}
    emit(figures(options, abm.location, timings, synced, assigned, rss, abm_rss, cpu, env, abm_profile))


def figures(
    options: argparse.Namespace,
    abm_location: str,
    timings: dict[str, float],
    synced: int,
    assigned: dict[str, int],
    rss: dict[str, float],
    abm_rss: float,
    cpu: dict[str, Any],
    env: dict[str, Any],
    abm_profile: Path | None,
) -> dict[str, Any]:
    count = options.devices
    assign_seconds = timings["create"] + timings["default"]
    per_minute = 60 * count / timings["sync"]
    assigned_per_minute = 60 * min(assigned.values()) / assign_seconds
    peak = peak_rss_mb()
    return {
        "name": "ade_sync",
        "devices": count,
        "families": list(FAMILIES),
        "synced_devices": synced,
        "sync_seconds": rounded(timings["sync"]),
        "devices_per_minute": round(per_minute),
        "sync_target_seconds": SYNC_TARGET_SECONDS,
        # the rate (200,000 in 12 s), so that smaller runs are judged by the same measure
        "sync_met": synced == count and per_minute >= 60 * SYNC_TARGET_DEVICES / SYNC_TARGET_SECONDS,
        "assigned_devices": assigned,
        "assign_seconds": rounded(assign_seconds),
        "assign_split_seconds": {
            "create_profile": rounded(timings["create"]),
            "set_default_profile": rounded(timings["default"]),
        },
        "assigned_per_minute": round(assigned_per_minute),
        "assign_target_per_minute": ASSIGN_TARGET_PER_MINUTE,
        "assign_met": all(value == count for value in assigned.values())
        and assigned_per_minute >= ASSIGN_TARGET_PER_MINUTE,
        "peak_rss_mb": rounded(peak, 1),
        "peak_rss_mb_by_phase_end": {"seeded": rounded(rss["before_sync"], 1), "synced": rounded(rss["after_sync"], 1)},
        "peak_rss_includes_abm": not options.abm_process,
        "abm_peak_rss_mb": rounded(abm_rss, 1) if options.abm_process else None,
        "memory_target_mb": MEMORY_TARGET_MB,
        "memory_met": peak <= MEMORY_TARGET_MB,
        "database": env["database"],
        "cpus": os.cpu_count(),
        "abm_process": options.abm_process,
        "abm_served": abm_location,
        "muster_served": "in the benchmark's event loop",
        "seed_seconds": rounded(timings["seed"]),
        "cpu_seconds": cpu,
        "rest_of_machine": {name: used["rest_of_machine"] for name, used in cpu.items()},
        "profile": profiles(options, abm_profile),
        "environment": env,
    }


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--devices", type=int, default=200_000, help="devices in the token (default 200000)")
    where = options.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=PG_URL, help="PostgreSQL server; a fresh database is made on it")
    where.add_argument("--sqlite", action="store_true", help="use a SQLite file instead of PostgreSQL")
    options.add_argument("--abm-process", action="store_true", help="serve the fake ABM from a process of its own")
    options.add_argument("--profile", type=Path, help="write cProfile files with this path prefix")
    options.set_defaults(server_processes=0)  # for bench.common.environment: Muster is in this event loop
    return options


def cli() -> None:
    run(partial(main, parser().parse_args()))


if __name__ == "__main__":
    cli()
