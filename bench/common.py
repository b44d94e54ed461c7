"""What the benchmarks share: options, the database and server under test, device keys, the RSA floor, output.

Every benchmark drives a real Muster over TLS on 127.0.0.1 (tests.harness) and prints one JSON line. The
simulated devices, the server, the fake APNs and PostgreSQL all share this machine's cores; the JSON says so.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import platform
import signal
import ssl
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import cryptography
import httpx
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from tests.harness import PG_URL, FakeApple, RunningMuster, fake_apple, fresh_postgres_database, running_muster

from muster.app import Container
from muster.config import Settings
from muster.pki.certs import generate_rsa_key
from muster.web.main import create_app

BENCH_APP = "bench.common:bench_app"
BARE_PATH = "/bench/bare"
SERVER_PROFILE_VARIABLE = "BENCH_SERVER_PROFILE"
KEY_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "muster-bench" / "rsa2048-keys.bin"

Job = Callable[[], Awaitable[object]]


# -- the server under test ---------------------------------------------------------------------------------------


def bench_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """Muster's app plus a bare route, so both are measured on the same uvicorn/FastAPI stack and middleware."""
    app = create_app(settings, container=container)
    app.add_api_route(BARE_PATH, _bare, methods=["PUT"], include_in_schema=False)
    profile_path = os.environ.get(SERVER_PROFILE_VARIABLE)
    if profile_path and container is None:  # a server process of its own: profile it until it stops
        _profile_until_shutdown(app, Path(f"{profile_path}.{os.getpid()}"))
    return app


def _profile_until_shutdown(app: FastAPI, path: Path) -> None:
    # The lifespan's end, not atexit: uvicorn re-raises SIGTERM after shutting down, so atexit never runs.
    serve = app.router.lifespan_context
    profiler = cProfile.Profile(time.process_time)  # CPU time: the machine is shared

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        profiler.enable()
        async with serve(app) as state:
            yield state
        profiler.disable()
        profiler.dump_stats(path)

    app.router.lifespan_context = lifespan


async def _bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=200)


# -- options and environment -------------------------------------------------------------------------------------


def parser(description: str, *, devices: int, concurrency: int | None = None) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--devices", type=int, default=devices, help=f"virtual devices (default {devices})")
    if concurrency is not None:
        options.add_argument(
            "--concurrency", type=int, default=concurrency, help=f"device connections in use (default {concurrency})"
        )
    where = options.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=PG_URL, help="PostgreSQL server; a fresh database is made on it")
    where.add_argument("--sqlite", action="store_true", help="use a SQLite file instead of PostgreSQL")
    options.add_argument(
        "--server-processes",
        type=int,
        default=1,
        help="uvicorn worker processes serving Muster; 0 serves it in the benchmark's own event loop",
    )
    options.add_argument("--profile", type=Path, help="write cProfile files with this path prefix")
    return options


@asynccontextmanager
async def database(options: argparse.Namespace) -> AsyncIterator[str]:
    """A fresh empty database: a new PostgreSQL database (dropped afterwards) or a SQLite file."""
    if options.sqlite:
        with tempfile.TemporaryDirectory(prefix="muster-bench-db-") as directory:
            yield f"sqlite+aiosqlite:///{directory}/muster.db"
        return
    async with fresh_postgres_database(options.database_url) as url:
        yield url


@asynccontextmanager
async def muster_with_apns(options: argparse.Namespace) -> AsyncIterator[tuple[RunningMuster, FakeApple]]:
    """Muster serving the benchmark app over the chosen database, the fake APNs, and a push certificate."""
    with tempfile.TemporaryDirectory(prefix="muster-bench-") as tmp:
        async with (
            database(options) as url,
            fake_apple(Path(tmp) / "apple") as apple,
            running_muster(
                Path(tmp) / "muster",
                database_url=url,
                apple=apple,
                app_factory=BENCH_APP,
                server_processes=options.server_processes,
            ) as muster,
        ):
            await muster.install_push_certificate(apple)
            yield muster, apple


async def environment(options: argparse.Namespace, container: Container) -> dict[str, Any]:
    async with container.engine.connect() as conn:
        if container.engine.dialect.name == "sqlite":
            version = "SQLite " + str((await conn.execute(text("select sqlite_version()"))).scalar())
        else:
            version = str((await conn.execute(text("show server_version"))).scalar()).split()[0]
            version = f"PostgreSQL {version} on 127.0.0.1"
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "uvicorn": uvicorn.__version__,
        "event_loop": _loop_name(),
        "database": version,
        "server": "in the benchmark's event loop"
        if options.server_processes == 0
        else f"{options.server_processes} uvicorn process(es)",
        "load_average_1min_at_end": rounded(os.getloadavg()[0], 2),
        "client_and_server_share_cores": True,
        "database_shares_cores": True,
    }


def emit(figures: dict[str, Any]) -> None:
    """The benchmark's one line of output."""
    sys.stdout.write(json.dumps(figures, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def rounded(value: float, digits: int = 3) -> float:
    return round(value, digits)


# -- where the CPU went ------------------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds spent between `start()` and `stop()` by this process (the simulated devices, and the server when
    it runs in this event loop), by the uvicorn server processes and the fake APNs process started from here, by
    the PostgreSQL backends serving the database (those alive at `stop()`), and by the rest of the machine."""

    def __init__(self, database_url: str) -> None:
        self._database = database_url.rsplit("/", 1)[-1] if database_url.startswith("postgresql") else None
        self._start: dict[str, float] = {}
        self._backends: dict[int, float] = {}

    def start(self) -> None:
        self._backends = {pid: _process_cpu(pid) for pid in self._postgres_backends()}
        self._start = self._snapshot()

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        used = {part: rounded(end[part] - self._start.get(part, 0.0), 2) for part in end}
        used["postgres"] = rounded(
            sum(_process_cpu(pid) - self._backends.get(pid, 0.0) for pid in self._postgres_backends()), 2
        )
        machine = used.pop("machine")
        used["rest_of_machine"] = rounded(machine - sum(used.values()), 2)
        return used

    def _snapshot(self) -> dict[str, float]:
        times = os.times()
        children = dict.fromkeys(("server", "fake_apns"), 0.0)
        for pid in _descendants(os.getpid()):
            children["server" if b"uvicorn" in _command_line(pid) else "fake_apns"] += _process_cpu(pid)
        return {"benchmark": times.user + times.system, **children, "machine": _machine_busy()}

    def _postgres_backends(self) -> list[int]:
        if self._database is None:
            return []
        marker = f" {self._database} ".encode()
        return [pid for pid, line in _command_lines() if line.startswith(b"postgres: ") and marker in line]


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0  # the process has gone
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _machine_busy() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / _TICKS


def _command_lines() -> Iterator[tuple[int, bytes]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name), _command_line(int(entry.name))


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


# -- running ------------------------------------------------------------------------------------------------------


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run on uvloop when it is installed (it is with uvicorn[standard], as `muster serve` runs)."""
    # SIGTERM unwinds like Ctrl-C, so the server process and the fresh database are cleaned up.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


@asynccontextmanager
async def device_connections(count: int, trust: ssl.SSLContext) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client holding one keep-alive TLS connection per lane, as each real device has its own connection.

    A single shared httpx pool would make the load generator the bottleneck: its cost per request grows with the
    number of connections it holds (2.3 ms of client CPU per request at 32 connections against 0.5 ms here)."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(verify=trust, limits=limits, timeout=120) for _ in range(count)]
    try:
        yield clients
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


async def run_in_lanes(jobs: Sequence[Job], lanes: int) -> list[BaseException]:
    """Job i runs in lane i % lanes, after the lane's earlier jobs (so the devices of a lane share its connection).

    Returns the failures (a benchmark reports them)."""
    failures: list[BaseException] = []

    async def lane(first: int) -> None:
        for job in jobs[first::lanes]:
            try:
                await job()
            except Exception as error:  # counted and reported, never hidden
                failures.append(error)

    await asyncio.gather(*(lane(first) for first in range(lanes)))
    return failures


@contextmanager
def profiled(prefix: Path | None, name: str) -> Iterator[None]:
    """cProfile this process while inside, when a prefix is given (see also `profile_server_processes`)."""
    if prefix is None:
        yield
        return
    profiler = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        prefix.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(prefix.parent / f"{prefix.name}{name}-client.prof")


def profile_server_processes(prefix: Path | None, name: str) -> None:
    """Server processes started from now on profile themselves from start to exit, one file per process."""
    if prefix is not None:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        os.environ[SERVER_PROFILE_VARIABLE] = str(prefix.parent.resolve() / f"{prefix.name}{name}-server.prof")


# -- device keys and the RSA floor --------------------------------------------------------------------------------


def device_keys(count: int, cache: Path = KEY_CACHE) -> tuple[list[rsa.RSAPrivateKey], int]:
    """`count` distinct RSA-2048 keys, made once on every core and kept in a cache file for later runs.

    Returns the keys and how many had to be generated now."""
    keys = _read_keys(cache, count)
    missing = count - len(keys)
    if missing > 0:
        with _pool(os.cpu_count() or 1) as pool:
            fresh = list(pool.map(_new_key_der, range(missing), chunksize=16))
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("ab") as file:
            for der in fresh:
                file.write(struct.pack(">I", len(der)) + der)
        keys += [_load_key(der) for der in fresh]
    return keys, max(missing, 0)


def _read_keys(cache: Path, count: int) -> list[rsa.RSAPrivateKey]:
    if not cache.exists():
        return []
    data, offset = cache.read_bytes(), 0
    keys: list[rsa.RSAPrivateKey] = []
    while offset + 4 <= len(data) and len(keys) < count:
        (size,) = struct.unpack_from(">I", data, offset)
        keys.append(_load_key(data[offset + 4 : offset + 4 + size]))
        offset += 4 + size
    return keys


def _new_key_der(_: int) -> bytes:
    return generate_rsa_key(2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(der: bytes) -> rsa.RSAPrivateKey:
    # Our own cache of keys OpenSSL just made: skip the (slow) RSA consistency check.
    key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def rsa_floor(key: rsa.RSAPrivateKey, operations: int) -> dict[str, float]:
    """Milliseconds per RSA-2048 PKCS#1 v1.5 SHA-256 signature: on one core, and on all cores at once."""
    single = _sign_many(key, operations)
    cores = os.cpu_count() or 1
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with _pool(cores) as pool:
        list(pool.map(_sign_many_der, [der] * cores, [1] * cores))  # start the workers before timing
        started = time.perf_counter()
        list(pool.map(_sign_many_der, [der] * cores, [operations // cores] * cores))
        machine = (time.perf_counter() - started) / (operations // cores * cores)
    return {"ms_per_op_one_core": single * 1000, "ms_per_op_all_cores": machine * 1000}


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: this process may already run an event loop and its threads
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _sign_many(key: rsa.RSAPrivateKey, operations: int) -> float:
    message = os.urandom(100)  # about the size of CMS signed attributes
    started = time.perf_counter()
    for _ in range(operations):
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return (time.perf_counter() - started) / operations


def _sign_many_der(der: bytes, operations: int) -> float:
    return _sign_many(_load_key(der), operations)
