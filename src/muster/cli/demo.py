"""`muster serve --demo`: Muster with a fake APNs and virtual devices in the same process, so a newcomer can
watch devices enroll and be managed without any Apple account.

Product code never imports the simulators; the CLI may. So this module runs them next to the server: the
fake APNs on a free 127.0.0.1 port with a TLS certificate from a throwaway CA, Muster's APNs client pointed at
it, a simulated push certificate installed through the admin API when none is active, and a few virtual devices
that enroll and open an MDM session whenever a push wakes them, as real devices do.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import tempfile
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from muster.app import Container, build_container, tls_paths
from muster.cli.sim import (
    VirtualFleet,
    admin_client,
    install_push_certificate,
    new_topic,
    push_certificate_state,
    write_apns_tls,
)
from muster.config import Settings
from muster.domain.rbac import BuiltInRole
from muster.pki.certs import certificate_pem
from muster.simulators.apns import FakeApns, serve_fake_apns
from muster.store.tables import DEFAULT_ORG_ID
from muster.web.main import create_app

log = logging.getLogger("muster.demo")
DEMO_DEVICE_COUNT = 5
_LABEL = {"demo": True}  # every demo log record carries it, for filtering


@dataclass
class Demo:
    """A running demo. `populated` finishes once the virtual devices have enrolled and reported."""

    settings: Settings
    container: Container
    apns: FakeApns
    fleet: VirtualFleet
    server: asyncio.Task[None]
    populated: asyncio.Task[None]


async def serve_demo(settings: Settings, *, device_count: int = DEMO_DEVICE_COUNT) -> None:
    """Serve in demo mode until SIGTERM or Ctrl-C (which asyncio turns into cancelling this coroutine)."""
    terminated = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)
    async with running_demo(settings, device_count=device_count) as demo:
        terminating = asyncio.create_task(terminated.wait())
        try:
            await asyncio.wait([demo.server, terminating], return_when=FIRST_COMPLETED)
        finally:
            terminating.cancel()


@asynccontextmanager
async def running_demo(settings: Settings, *, device_count: int = DEMO_DEVICE_COUNT) -> AsyncIterator[Demo]:
    """Muster in demo mode, over a database `prepare_server` has readied; stops everything on exit."""
    fleet = VirtualFleet()
    apns = FakeApns(topic=new_topic(), on_push=fleet.wake)
    # Unwound last in, first out: the devices stop and disconnect before the server stops, as the server
    # would otherwise wait for their idle TLS connections to close.
    async with AsyncExitStack() as stack:
        tls_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="muster-demo-")))
        certfile, keyfile, ca_file = write_apns_tls(tls_dir)
        apns_url = await stack.enter_async_context(serve_fake_apns(apns, certfile=str(certfile), keyfile=str(keyfile)))
        log.warning(
            "DEMO MODE: APNs is simulated at %s and %d virtual devices will enroll; not for production",
            apns_url,
            device_count,
            extra=_LABEL,
        )
        demo_settings = settings.model_copy(update={"apns_url": apns_url, "apns_ca_file": ca_file, "workers": 1})
        container = await build_container(demo_settings)
        stack.push_async_callback(container.aclose)
        server = await stack.enter_async_context(_serving(demo_settings, container))
        stack.push_async_callback(fleet.aclose)
        admin = await stack.enter_async_context(await _admin(demo_settings, container))
        populated = asyncio.create_task(_populate(admin, apns, fleet, device_count))
        stack.push_async_callback(_stop_devices, populated, fleet, apns)
        yield Demo(demo_settings, container, apns, fleet, server, populated)


async def _populate(admin: httpx.AsyncClient, apns: FakeApns, fleet: VirtualFleet, count: int) -> None:
    try:
        topic, valid = await push_certificate_state(admin)
        apns.topic = topic or apns.topic  # the fake APNs accepts what Muster's certificate pushes
        if not valid:
            await install_push_certificate(admin, apns.topic)
            log.info("DEMO MODE: installed a simulated push certificate for %s", apns.topic, extra=_LABEL)
        devices = await fleet.enroll(admin, count)
        # A push may have arrived before a device had finished enrolling: one session each settles that.
        await fleet.poll_all()
    except Exception:  # logged now: nobody awaits this task until the demo stops
        log.exception("DEMO MODE: the virtual devices could not enroll", extra=_LABEL)
        raise
    for device in devices:
        log.info(
            "DEMO MODE: virtual %s %s enrolled",
            device.facts.model.model_name,
            device.serial_number,
            extra={**_LABEL, "serialNumber": device.serial_number},
        )


async def _stop_devices(populated: asyncio.Task[None], fleet: VirtualFleet, apns: FakeApns) -> None:
    populated.cancel()
    await asyncio.gather(populated, return_exceptions=True)
    fleet.stop_waking()
    await apns.settle()  # sessions already started end before the server stops


@asynccontextmanager
async def _serving(settings: Settings, container: Container) -> AsyncIterator[asyncio.Task[None]]:
    """uvicorn in this event loop (the fake APNs and the devices share it); yields once it accepts."""
    cert, key = tls_paths(settings) if settings.tls else (None, None)
    server = _SharedLoopServer(
        uvicorn.Config(
            create_app(container=container),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            ssl_certfile=str(cert) if cert else None,
            ssl_keyfile=str(key) if key else None,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # the start-up error
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.05)
    try:
        yield task
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


class _SharedLoopServer(uvicorn.Server):
    """uvicorn leaves Ctrl-C to the demo, which stops the devices before it stops the server."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _admin(settings: Settings, container: Container) -> httpx.AsyncClient:
    """An admin API client: the token `prepare_server` wrote, or one of the demo's own if it was removed."""
    token_file = settings.data_dir / "admin-token"
    if token_file.exists():
        token = token_file.read_text().strip()
    else:
        log.warning("DEMO MODE: %s is missing; the demo uses a token of its own", token_file, extra=_LABEL)
        token = await container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="muster demo", role=BuiltInRole.INTUNE_ADMINISTRATOR
        )
    trust = ssl.create_default_context()
    trust.load_verify_locations(cadata=certificate_pem(container.identity.authority.certificate).decode())
    return admin_client(settings.effective_public_url, token, trust)
