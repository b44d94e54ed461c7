"""Importing corporate device identifiers on PostgreSQL, over real HTTPS against Muster in a uvicorn process of its
own (as `muster serve` runs it):

- csv_5000: one `importCsv` upload of 5,000 serial numbers (the seeds' largest file, CID-05). Issue target: <= 1 s.
- bulk: 1,000,000 serial numbers through `importDeviceIdentityList`, in calls of 50,000 (as `muster
  corporate-identifiers import` sends them), two calls in flight. Issue target: <= 60 s.
- bulk_again: the same 1,000,000 once more, every identifier already there (the duplicate review path, CID-07).

Every call must answer 200 with every item's status true; the stored count is checked at the end.

    python -m bench.corporate_identifiers [--identifiers 1000000] [--batch 50000] [--in-flight 2]
        [--server-processes 1] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from tests.harness import DM, PG_URL, RunningMuster, fresh_postgres_database, running_muster

from bench.common import CpuMeter, emit, environment, rounded, run
from muster.store.tables_corporate_identifiers import imported_device_identities

IDS = f"{DM}/importedDeviceIdentities"
CSV_TARGET_SECONDS = 1.0
BULK_TARGET_SECONDS = 60.0
CSV_ROWS = 5000


def _serial(prefix: str, n: int) -> str:
    return f"{prefix}{n:09d}"


async def csv_import(http: httpx.AsyncClient) -> dict[str, Any]:
    body = "".join(f"{_serial('CSV', n)},bench row {n}\n" for n in range(CSV_ROWS)).encode()
    started = time.perf_counter()
    response = await http.post(
        f"{IDS}/importCsv",
        params={"importedDeviceIdentityType": "serialNumber"},
        content=body,
        headers={"Content-Type": "text/csv"},
    )
    seconds = time.perf_counter() - started
    response.raise_for_status()
    _all_succeeded(response.json()["value"], CSV_ROWS)
    return {
        "rows": CSV_ROWS,
        "bytes": len(body),
        "seconds": rounded(seconds),
        "target_met": seconds <= CSV_TARGET_SECONDS,
    }


async def bulk_import(http: httpx.AsyncClient, options: argparse.Namespace, target: float | None) -> dict[str, Any]:
    starts = list(range(0, options.identifiers, options.batch))
    pending = asyncio.Queue[int]()
    for start in starts:
        pending.put_nowait(start)
    call_seconds: list[float] = []

    async def worker() -> None:
        while not pending.empty():
            start = pending.get_nowait()
            count = min(options.batch, options.identifiers - start)
            items = [
                {
                    "importedDeviceIdentifier": _serial("BLK", n),
                    "importedDeviceIdentityType": "serialNumber",
                    "description": f"bench {n}",
                }
                for n in range(start, start + count)
            ]
            began = time.perf_counter()
            response = await http.post(f"{IDS}/importDeviceIdentityList", json={"importedDeviceIdentities": items})
            call_seconds.append(time.perf_counter() - began)
            response.raise_for_status()
            _all_succeeded(response.json()["value"], count)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(options.in_flight)))
    seconds = time.perf_counter() - started
    return {
        "identifiers": options.identifiers,
        "calls": len(starts),
        "seconds": rounded(seconds, 2),
        "identifiers_per_second": round(options.identifiers / seconds),
        "slowest_call_seconds": rounded(max(call_seconds), 2),
    } | ({"target_met": seconds <= target} if target is not None else {})


def _all_succeeded(results: list[dict[str, Any]], expected: int) -> None:
    failed = [r for r in results if not r["status"]]
    if len(results) != expected or failed:
        raise RuntimeError(f"{len(results)} results for {expected} items; failures: {failed[:3]}")


def cpu(meter: CpuMeter) -> dict[str, float]:
    used = meter.stop()
    # CpuMeter names the processes it does not recognise as uvicorn "fake_apns": here (no APNs) they are the
    # server's spawned worker processes.
    used["server"] = rounded(used["server"] + used.pop("fake_apns"), 2)
    return used


async def stored(muster: RunningMuster) -> int:
    async with muster.container.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(imported_device_identities))).scalar_one())


async def main_async(options: argparse.Namespace) -> None:
    if options.sqlite:
        emit({"name": "corporate_identifiers", "skipped": "the acceptance figures are for PostgreSQL"})
        return
    with tempfile.TemporaryDirectory(prefix="muster-bench-") as tmp:
        async with (
            fresh_postgres_database(options.database_url) as url,
            running_muster(Path(tmp) / "muster", database_url=url, server_processes=options.server_processes) as muster,
            httpx.AsyncClient(
                base_url=muster.base_url,
                verify=ssl.create_default_context(cafile=muster.tls_ca_file),
                headers={"Authorization": f"Bearer {muster.admin_token}"},
                timeout=300,
            ) as http,
        ):
            figures: dict[str, Any] = {"name": "corporate_identifiers", "csv_5000": await csv_import(http)}
            meter = CpuMeter(url)
            meter.start()
            figures["bulk"] = await bulk_import(http, options, BULK_TARGET_SECONDS) | {"cpu_seconds": cpu(meter)}
            figures["bulk_again"] = await bulk_import(http, options, None)
            figures["stored"] = await stored(muster)
            if figures["stored"] != options.identifiers + CSV_ROWS:
                raise RuntimeError(f"{figures['stored']} identities stored, {options.identifiers + CSV_ROWS} expected")
            figures["targets_seconds"] = {"csv_5000": CSV_TARGET_SECONDS, "bulk": BULK_TARGET_SECONDS}
            figures["environment"] = await environment(options, muster.container)
    emit(figures)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--identifiers", type=int, default=1_000_000, help="bulk identifiers (default 1,000,000)")
    options.add_argument("--batch", type=int, default=50_000, help="identifiers per call (default 50,000, the most)")
    options.add_argument("--in-flight", type=int, default=2, help="calls in flight at once (default 2)")
    where = options.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=PG_URL, help="PostgreSQL server; a fresh database is made on it")
    where.add_argument("--sqlite", action="store_true", help="not supported: prints a skipped line")
    options.add_argument(
        "--server-processes", type=int, default=1, help="uvicorn worker processes serving Muster (default 1)"
    )
    parsed = options.parse_args()
    run(lambda: main_async(parsed))


if __name__ == "__main__":
    main()
