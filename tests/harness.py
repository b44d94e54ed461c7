"""Running Muster for tests and benchmarks: a real server on 127.0.0.1 (TLS, uvicorn) over SQLite or a fresh
PostgreSQL database, with the fake APNs on its own HTTP/2 port. Shared by tests/ and bench/."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from cryptography import x509
from sqlalchemy import Connection, inspect, literal_column, select, table
from sqlalchemy.ext.asyncio import AsyncEngine
from uvicorn.importer import import_from_string

from muster.app import Container, build_container, prepare_server, tls_paths
from muster.config import Settings
from muster.domain.clock import Clock
from muster.pki.ca import CertificateAuthority
from muster.pki.certs import certificate_pem, private_key_pem
from muster.pki.secretbox import SecretBox
from muster.protocols.cms import PrivateKey, sign_detached
from muster.simulators.apns import FakeApns, issue_push_certificate, serve_fake_apns
from muster.simulators.apple_device import CHECKIN_TYPE
from muster.store.migrate import upgrade

PG_URL = os.environ.get("MUSTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DM = "/graph/beta/deviceManagement"
DEFAULT_APP_FACTORY = "muster.web.main:create_app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def postgres_available() -> bool:
    try:
        connection = await asyncpg.connect(PG_URL, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@asynccontextmanager
async def fresh_postgres_database(server_url: str = PG_URL) -> AsyncIterator[str]:
    """A new empty database on the test server (or the one `server_url` names), dropped afterwards."""
    name = f"muster_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class FakeApple:
    apns: FakeApns
    url: str
    ca_file: Path


@asynccontextmanager
async def fake_apple(tmp: Path) -> AsyncIterator[FakeApple]:
    """The fake APNs over TLS + HTTP/2, with a topic chosen up front for the push certificate it will issue."""
    tmp.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.generate("Fake Apple TLS CA")
    certificate, key = ca.issue_tls_server_certificate(["127.0.0.1", "localhost"])
    (tmp / "apns.crt").write_bytes(certificate_pem(certificate))
    (tmp / "apns.key").write_bytes(private_key_pem(key))
    (tmp / "apns-ca.crt").write_bytes(certificate_pem(ca.certificate))
    apns = FakeApns(topic=f"com.apple.mgmt.External.{uuid.uuid4()}")
    async with serve_fake_apns(apns, certfile=str(tmp / "apns.crt"), keyfile=str(tmp / "apns.key")) as url:
        yield FakeApple(apns, url, tmp / "apns-ca.crt")


@dataclass
class RunningMuster:
    settings: Settings
    container: Container
    base_url: str
    admin_token: str
    tls_ca_file: Path

    def admin(self, token: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            verify=ssl.create_default_context(cafile=self.tls_ca_file),
            timeout=30,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
        )

    def device_client(self) -> httpx.AsyncClient:
        """An HTTP client that trusts the server's TLS certificate, as an enrolled device does."""
        return httpx.AsyncClient(verify=ssl.create_default_context(cafile=self.tls_ca_file), timeout=30)

    async def install_push_certificate(self, apple: FakeApple) -> str:
        async with self.admin() as admin:
            await admin.post(f"{DM}/dataSharingConsents/appleMDMPushCertificate/consentToDataSharing")
            csr = (
                await admin.get(
                    f"{DM}/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest"
                )
            ).json()["value"]
            certificate = issue_push_certificate(csr.encode(), topic=apple.apns.topic)
            response = await admin.patch(
                f"{DM}/applePushNotificationCertificate",
                json={"certificate": certificate.decode(), "appleIdentifier": "it@example.com"},
            )
            response.raise_for_status()
        return apple.apns.topic

    async def enrollment_profile(self, user: str | None = None) -> bytes:
        async with self.admin() as admin:
            response = await admin.post(f"{DM}/exportAppleEnrollmentProfile", json={"userPrincipalName": user})
            response.raise_for_status()
            return response.content


@asynccontextmanager
async def running_muster(
    data_dir: Path,
    *,
    database_url: str | None = None,
    apple: FakeApple | None = None,
    app_factory: str = DEFAULT_APP_FACTORY,
    server_processes: int = 0,
    clock: Clock | None = None,
    **overrides: object,
) -> AsyncIterator[RunningMuster]:
    """Muster on 127.0.0.1 over TLS. `app_factory` names a callable shaped like `create_app` (a benchmark adds
    routes with it). With `server_processes` > 0 the app is served by that many uvicorn worker processes, as
    `muster serve` does, instead of in this event loop; `container` is then this process's own container on the
    same database, for direct work (its pusher is not the server's). `clock` is the in-loop server's clock."""
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        host="127.0.0.1",
        port=port,
        public_url=f"https://localhost:{port}",
        master_key=base64.b64encode(SecretBox.generate_key()).decode(),
        apns_url=apple.url if apple else "https://127.0.0.1:9",
        apns_ca_file=apple.ca_file if apple else None,
        **overrides,  # type: ignore[arg-type]
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    token_file = await prepare_server(settings)
    assert token_file is not None
    container = await build_container(settings, clock=clock)
    ca_file = data_dir / "device-ca.pem"
    ca_file.write_bytes(certificate_pem(container.identity.authority.certificate))
    if server_processes:
        serve = _serve_in_processes(settings, app_factory, server_processes, ca_file)
    else:
        serve = _serve_in_loop(settings, import_from_string(app_factory)(container=container))
    try:
        async with serve:
            yield RunningMuster(
                settings, container, f"https://localhost:{port}", token_file.read_text().strip(), ca_file
            )
    finally:
        await container.aclose()


@asynccontextmanager
async def _serve_in_loop(settings: Settings, app: object) -> AsyncIterator[None]:
    cert, key = tls_paths(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=settings.port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


def settings_environment(settings: Settings) -> dict[str, str]:
    """The `MUSTER_*` variables that give another process these settings."""
    return {f"MUSTER_{name.upper()}": str(value) for name, value in settings.model_dump().items() if value is not None}


@asynccontextmanager
async def _serve_in_processes(
    settings: Settings, app_factory: str, processes: int, ca_file: Path
) -> AsyncIterator[None]:
    cert, key = tls_paths(settings)
    root = str(Path(__file__).resolve().parents[1])  # so that `tests.*` and `bench.*` factories import
    environment = {
        **os.environ,
        **settings_environment(settings),
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    # The CLI spelling of `muster serve`'s uvicorn.run(): a supervisor plus `processes` workers (none for 1).
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", app_factory, "--factory", "--workers", str(processes)),
        *("--host", "127.0.0.1", "--port", str(settings.port), "--ssl-certfile", str(cert)),
        *("--ssl-keyfile", str(key), "--log-level", "warning", "--no-access-log"),
        env=environment,
    )
    try:
        await _wait_until_serving(f"https://localhost:{settings.port}/healthz", ca_file, process)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_until_serving(url: str, ca_file: Path, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_file), timeout=2) as client:
        for _ in range(600):
            if process.returncode is not None:
                raise RuntimeError(f"the server process exited with status {process.returncode}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the server did not answer {url} within 30 s")


async def table_rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table the database holds (reflected: the schema as migrated, not as declared)."""

    def table_names(sync: Connection) -> list[str]:
        return inspect(sync).get_table_names()  # names only: reflecting indexes warns on expression indexes

    rows: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for name in await conn.run_sync(table_names):
            query = select(literal_column("*")).select_from(table(name))
            rows[name] = [dict(row._mapping) for row in await conn.execute(query)]
    return rows


async def database_rows(engine: AsyncEngine, *, skip: tuple[str, ...] = ("audit_log",)) -> dict[str, list[str]]:
    """Every row of every table but `skip` (as sorted reprs), to prove that a rejected request changed nothing."""
    return {
        name: sorted(repr(sorted(row.items())) for row in rows)
        for name, rows in (await table_rows(engine)).items()
        if name not in skip
    }


async def device_put(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    signer: tuple[x509.Certificate, PrivateKey] | None = None,
    content_type: str = CHECKIN_TYPE,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A device request built by hand: `body` as given, signed with `signer` in `Mdm-Signature` if given."""
    sent = {"Content-Type": content_type, **(headers or {})}
    if signer is not None:
        sent["Mdm-Signature"] = base64.b64encode(sign_detached(body, *signer)).decode()
    return await http.put(url, content=body, headers=sent)
