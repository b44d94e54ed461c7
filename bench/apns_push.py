"""Push fan-out through the fake APNs: how many MDM wake-up pushes per second one ApnsClient sends.

    python -m bench.apns_push --count 100000

The fake APNs (`muster.simulators.apns.serve_fake_apns`, mutual TLS, HTTP/2) runs in a separate process
on 127.0.0.1; this process pushes `--count` distinct device tokens through `ApnsClient.push_many`. Both
processes share this machine's cores. Prints one JSON line, including CPU time per push on each side
(`time.process_time`), which is steadier than wall-clock throughput on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from muster.clients.apns import ApnsClient
from muster.pki.push_certificate import generate_push_csr
from muster.protocols.apple.apns import PushOutcome, PushTarget
from muster.simulators.apns import (
    FakeApns,
    issue_push_certificate,
    issue_server_certificate,
    serve_fake_apns,
    simulator_ca_pem,
)

TARGET_PUSHES_PER_SECOND = 5000
TOPIC = "com.apple.mgmt.External.3c0e7a9e-0d7b-4c4e-9a53-6f1d2b8e4a10"
WARM_UP_PUSHES = 500
# Tokens of the measured run start here, so none of them was pushed during the warm-up.
FIRST_TOKEN = 1_000_000


def main() -> None:
    options = _options()
    with tempfile.TemporaryDirectory(prefix="muster-bench-apns-") as directory:
        _write_credentials(Path(directory))
        figures = _run(options.loop, _fan_out(options, Path(directory)))
    sys.stdout.write(json.dumps(figures, separators=(",", ":")) + "\n")


def _options() -> argparse.Namespace:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--count", type=int, default=100_000, help="distinct device tokens to push to")
    options.add_argument("--concurrency", type=int, default=128, help="ApnsClient max_concurrency")
    options.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="event loop of both processes")
    return options.parse_args()


def _write_credentials(directory: Path) -> None:
    server_certificate, server_key = issue_server_certificate("127.0.0.1")
    csr_pem, push_key = generate_push_csr(common_name="Muster push benchmark")
    files = {
        "server.crt": server_certificate,
        "server.key": server_key,
        "ca.crt": simulator_ca_pem(),
        "push.crt": issue_push_certificate(csr_pem, topic=TOPIC),
        "push.key": push_key,
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)


async def _fan_out(options: argparse.Namespace, directory: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]  # other work on the machine skews wall-clock figures: say how much there was
    # spawn, not fork: the server must not inherit this process's event loop or threads.
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_serve, args=(str(directory), options.loop, theirs), daemon=True)
    server.start()
    try:
        base_url = await _receive(ours)
        return await _measure(options, directory, base_url, ours) | {"load_average_before": round(load, 2)}
    finally:
        ours.send("stop")
        server.join(timeout=10)


async def _measure(options: argparse.Namespace, directory: Path, base_url: str, server: Connection) -> dict[str, Any]:
    client = ApnsClient(
        base_url=base_url,
        certificate_pem=(directory / "push.crt").read_bytes(),
        key_pem=(directory / "push.key").read_bytes(),
        verify=str(directory / "ca.crt"),
        max_concurrency=options.concurrency,
    )
    warm_up = [_target(n) for n in range(WARM_UP_PUSHES)]
    targets = [_target(FIRST_TOKEN + n) for n in range(options.count)]
    async with client:
        await client.push_many(warm_up)
        server.send("mark")
        server_cpu_before, delivered_before = await _receive(server)
        cpu_before, started = time.process_time(), time.perf_counter()
        results = await client.push_many(targets)
        seconds, client_cpu = time.perf_counter() - started, time.process_time() - cpu_before
        server.send("mark")
        server_cpu_after, delivered_after = await _receive(server)
    outcomes = Counter(result.outcome.value for result in results)
    rate = options.count / seconds
    return {
        "name": "apns_push_fanout",
        "pushes": options.count,
        "seconds": round(seconds, 3),
        "pushes_per_second": round(rate),
        "target": TARGET_PUSHES_PER_SECOND,
        "met": rate >= TARGET_PUSHES_PER_SECOND and outcomes[PushOutcome.DELIVERED.value] == options.count,
        "client_cpu_us_per_push": round(client_cpu / options.count * 1e6, 1),
        "server_cpu_us_per_push": round((server_cpu_after - server_cpu_before) / options.count * 1e6, 1),
        "outcomes": dict(outcomes),
        "server_received": delivered_after - delivered_before,
        "concurrency": options.concurrency,
        "server_process": True,
        "cpus": len(os.sched_getaffinity(0)),
        "event_loop": options.loop,
        "python": platform.python_version(),
    }


def _target(n: int) -> PushTarget:
    return PushTarget(token=n.to_bytes(32, "big"), push_magic=f"magic-{n}", topic=TOPIC)


async def _receive(pipe: Connection) -> Any:
    # A blocking read on a worker thread, so the event loop keeps serving while we wait.
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


# -- the fake APNs process ----------------------------------------------------------------------------------------


def _serve(directory: str, loop: str, pipe: Connection) -> None:
    _run(loop, _serve_until_stopped(Path(directory), pipe))


async def _serve_until_stopped(directory: Path, pipe: Connection) -> None:
    fake = FakeApns(topic=TOPIC)
    serving = serve_fake_apns(
        fake,
        certfile=str(directory / "server.crt"),
        keyfile=str(directory / "server.key"),
        client_ca_file=str(directory / "ca.crt"),
    )
    async with serving as base_url:
        pipe.send(base_url)
        while await _receive(pipe) == "mark":
            pipe.send((time.process_time(), len(fake.pushes)))


def _run(loop: str, coroutine: Coroutine[Any, Any, Any]) -> Any:
    if loop == "asyncio":
        return asyncio.run(coroutine)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


if __name__ == "__main__":
    main()
