"""`muster sim`: virtual Apple devices and a fake APNs, to try Muster (or load it) without Apple accounts.

The devices are `muster.simulators` virtual devices speaking Apple's real protocols to a running server; they
reach it through the admin API like any operator script. `VirtualFleet` and the push-certificate helpers are
shared with `muster serve --demo` (muster.cli.demo).
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from muster.pki.certs import generate_rsa_key
from muster.simulators.apns import (
    FakeApns,
    issue_push_certificate,
    issue_server_certificate,
    serve_fake_apns,
    simulator_ca_pem,
)
from muster.simulators.apple_answers import IPAD, IPHONE, MAC
from muster.simulators.apple_device import DeviceProtocolError, VirtualAppleDevice
from muster.simulators.apple_profile import read_enrollment_profile

DM = "/graph/beta/deviceManagement"
PUSH_CERTIFICATE = f"{DM}/applePushNotificationCertificate"
PUSH_CONSENT = f"{DM}/dataSharingConsents/appleMDMPushCertificate/consentToDataSharing"
SIMULATED_APPLE_ID = "simulator@example.com"
MODELS = (IPHONE, IPAD, MAC)

console = Console()
sim = typer.Typer(help="Simulated Apple devices and services: try Muster without Apple accounts.", no_args_is_help=True)

URL_OPTION = typer.Option("https://localhost:8443", "--url", envvar="MUSTER_URL", help="Muster's base URL.")
TOKEN_FILE_OPTION = typer.Option(
    Path("data/admin-token"), "--token-file", envvar="MUSTER_TOKEN_FILE", help="File holding an admin API token."
)
TOKEN_OPTION = typer.Option(None, "--token", envvar="MUSTER_TOKEN", help="Admin API token (instead of --token-file).")
CA_FILE_OPTION = typer.Option(
    None,
    "--ca-file",
    envvar="MUSTER_CA_FILE",
    help="CA bundle that verifies Muster's TLS certificate (default for localhost: data/tls/server.crt).",
)


class SimulationError(Exception):
    """Muster refused something the simulation needs; the message says what."""


def register(app: typer.Typer) -> None:
    app.add_typer(sim, name="sim")


# --- the admin API ----------------------------------------------------------------------------------------


def admin_client(url: str, token: str, verify: ssl.SSLContext | bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=60)


async def _call(admin: httpx.AsyncClient, method: str, path: str, json: Any = None) -> httpx.Response:
    response = await admin.request(method, path, json=json)
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise SimulationError(f"{method} {path}: HTTP {response.status_code}: {message}")
    return response


async def push_certificate_state(admin: httpx.AsyncClient) -> tuple[str | None, bool]:
    """(topic, valid): the topic of Muster's push certificate, None when none was uploaded, and whether that
    certificate is still valid. A renewal must keep the topic (Muster refuses another one)."""
    status = (await _call(admin, "GET", PUSH_CERTIFICATE)).json()
    if status.get("certificateUploadStatus") != "uploaded":
        return None, False
    expires = datetime.fromisoformat(str(status["expirationDateTime"]).replace("Z", "+00:00"))
    return str(status["topicIdentifier"]), expires > datetime.now(UTC)


async def install_push_certificate(admin: httpx.AsyncClient, topic: str) -> None:
    """Play Apple's Push Certificates Portal: sign Muster's push CSR for `topic` and upload the certificate.

    It grants the data-sharing consent Muster asks for first: the simulated Apple receives nothing.
    """
    await _call(admin, "POST", PUSH_CONSENT)
    csr = await _call(admin, "GET", f"{PUSH_CERTIFICATE}/downloadApplePushNotificationCertificateSigningRequest")
    certificate = issue_push_certificate(csr.json()["value"].encode(), topic=topic)
    body = {"certificate": certificate.decode(), "appleIdentifier": SIMULATED_APPLE_ID}
    await _call(admin, "PATCH", PUSH_CERTIFICATE, json=body)


def new_topic() -> str:
    """A push topic shaped like the ones Apple issues to MDM vendors' customers."""
    return f"com.apple.mgmt.External.{uuid.uuid4()}"


# --- virtual devices ----------------------------------------------------------------------------------------

DeviceCallback = Callable[[VirtualAppleDevice], None]
T = TypeVar("T")


class VirtualFleet:
    """Virtual iPhones, iPads and Macs enrolled in one Muster server, sharing one HTTP client.

    `wake` is a `FakeApns` hook: a push opens an MDM session on the device it was for, as on a real device.
    """

    def __init__(self) -> None:
        self.devices: list[VirtualAppleDevice] = []
        self._by_token: dict[str, VirtualAppleDevice] = {}
        self._http: httpx.AsyncClient | None = None
        self._awake = True

    async def enroll(
        self,
        admin: httpx.AsyncClient,
        count: int,
        *,
        user: str | None = None,
        concurrency: int = 4,
        on_enrolled: DeviceCallback | None = None,
    ) -> list[VirtualAppleDevice]:
        """Enroll `count` new devices, each with its own exported profile (its SCEP challenge is one-time)."""
        limit = asyncio.Semaphore(concurrency)
        first = len(self.devices)

        async def enroll_one(index: int) -> VirtualAppleDevice:
            async with limit:
                profile = await _call(
                    admin, "POST", f"{DM}/exportAppleEnrollmentProfile", json={"userPrincipalName": user}
                )
                key = await asyncio.to_thread(generate_rsa_key)  # keeps a shared event loop responsive
                device = VirtualAppleDevice(
                    http=self._client(profile.content), model=MODELS[index % len(MODELS)], key=key
                )
                self._by_token[device.token_hex] = device
                await device.enroll(profile.content)
                self.devices.append(device)
                if on_enrolled is not None:
                    on_enrolled(device)
                return device

        return await _all_or_none([enroll_one(first + offset) for offset in range(count)])

    async def poll_all(self, *, concurrency: int = 4, on_polled: DeviceCallback | None = None) -> int:
        """One MDM session on every device, answering whatever the server queued; the commands answered."""
        limit = asyncio.Semaphore(concurrency)

        async def poll_one(device: VirtualAppleDevice) -> int:
            async with limit:
                handled = await device.poll()
            if on_polled is not None:
                on_polled(device)
            return handled

        return sum(await _all_or_none([poll_one(device) for device in self.devices]))

    async def wake(self, token_hex: str, push_magic: str) -> None:
        """A push arrived: the device it names polls, if it is ours and the PushMagic is the one it registered."""
        device = self._by_token.get(token_hex)
        if self._awake and device is not None and push_magic == device.push_magic:
            await device.poll()

    def stop_waking(self) -> None:
        self._awake = False

    async def aclose(self) -> None:
        self.stop_waking()
        if self._http is not None:
            await self._http.aclose()

    def _client(self, signed_profile: bytes) -> httpx.AsyncClient:
        # Devices trust the roots of the profile they installed (and the system's), nothing else.
        if self._http is None:
            trust = read_enrollment_profile(signed_profile).ssl_context()
            self._http = httpx.AsyncClient(verify=trust, timeout=60)
        return self._http


async def _all_or_none(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest and raise that failure itself (no group)."""
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def simulate_devices(
    url: str, token: str, count: int, *, verify: ssl.SSLContext | bool, user: str | None = None, concurrency: int = 4
) -> list[VirtualAppleDevice]:
    """`muster sim devices`: enroll `count` virtual devices with progress, then poll them for their inventory."""
    fleet = VirtualFleet()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        async with admin_client(url, token, verify) as admin:
            with Progress(*columns, console=console) as progress:
                enrolling = progress.add_task("Enrolling", total=count)
                await fleet.enroll(
                    admin, count, user=user, concurrency=concurrency, on_enrolled=lambda _: progress.advance(enrolling)
                )
                inventory = progress.add_task("Reporting inventory", total=count)
                await fleet.poll_all(concurrency=concurrency, on_polled=lambda _: progress.advance(inventory))
    finally:
        await fleet.aclose()
    return fleet.devices


@sim.command("devices")
def devices(
    url: str = URL_OPTION,
    count: int = typer.Option(5, "--count", "-n", min=1, max=10_000, help="How many devices to enroll."),
    token_file: Path = TOKEN_FILE_OPTION,
    token: str | None = TOKEN_OPTION,
    ca_file: Path | None = CA_FILE_OPTION,
    user: str | None = typer.Option(None, "--user", help="User principal name for every device; default userless."),
    concurrency: int = typer.Option(4, min=1, max=64, help="Devices enrolling at the same time."),
) -> None:
    """Enroll virtual iPhones, iPads and Macs over Apple's MDM protocol and let them report their inventory."""
    secret = _token(token, token_file)
    try:
        enrolled = asyncio.run(
            simulate_devices(url, secret, count, verify=_verify(url, ca_file), user=user, concurrency=concurrency)
        )
    except (SimulationError, DeviceProtocolError, httpx.HTTPError) as error:
        _fail(error)
    table = Table("Serial number", "Model", "OS", "Device name", "Commands answered")
    for device in enrolled:
        facts = device.facts
        table.add_row(
            facts.serial_number,
            facts.model.product_name,
            facts.model.os_version,
            facts.device_name,
            str(len(device.handled)),
        )
    console.print(table)
    typer.echo(f"{len(enrolled)} virtual devices enrolled in {url}; see them with `muster devices list`.")


@sim.command("push-certificate")
def push_certificate(
    url: str = URL_OPTION,
    token_file: Path = TOKEN_FILE_OPTION,
    token: str | None = TOKEN_OPTION,
    ca_file: Path | None = CA_FILE_OPTION,
    topic: str | None = typer.Option(None, help="The topic to certify; default a new com.apple.mgmt.External.<uuid>."),
    renew: bool = typer.Option(False, "--renew", help="Renew a valid push certificate (a real one too)."),
) -> None:
    """Play Apple's Push Certificates Portal: certify Muster's push CSR for the fake APNs (`muster sim apns`)."""
    secret = _token(token, token_file)

    async def install() -> str:
        async with admin_client(url, secret, _verify(url, ca_file)) as admin:
            current, valid = await push_certificate_state(admin)
            if valid and not renew:
                raise SimulationError(f"the push certificate for {current} is valid; pass --renew to renew it")
            if current is not None and topic not in (None, current):
                raise SimulationError(f"a renewal keeps the topic of Muster's push certificate ({current})")
            chosen = current or topic or new_topic()
            await install_push_certificate(admin, chosen)
            return chosen

    try:
        installed = asyncio.run(install())
    except (SimulationError, httpx.HTTPError) as error:
        _fail(error)
    typer.echo(f"Installed a simulated push certificate for topic {installed}")
    typer.echo(f"Run the fake APNs for it: muster sim apns --topic {installed}")


@sim.command("apns")
def apns(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(2197, min=0, max=65535, help="Port (2197 is APNs' alternative port; 0 picks one)."),
    topic: str | None = typer.Option(None, help="The push topic it accepts; default a new one."),
    cert: Path | None = typer.Option(None, "--cert", help="TLS certificate (PEM); default: made here."),
    key: Path | None = typer.Option(None, "--key", help="Key of --cert (PEM)."),
    directory: Path = typer.Option(
        Path("data/fake-apns"), "--dir", help="Where the TLS certificate made here and its CA are written."
    ),
) -> None:
    """Run the fake APNs (HTTP/2 over TLS, answering like api.push.apple.com) until Ctrl-C."""
    if (cert is None) != (key is None):
        _fail(SimulationError("give both --cert and --key, or neither"))
    chosen = topic or new_topic()
    if cert is None or key is None:
        cert, key, ca = write_apns_tls(directory, host)
        ca_note = f"MUSTER_APNS_CA_FILE={ca}"
    else:
        ca_note = "MUSTER_APNS_CA_FILE=<the CA that issued --cert>"

    def show_push(token_hex: str, push_magic: str) -> None:
        typer.echo(f"push for device token {token_hex[:16]}… (PushMagic {push_magic})")

    async def run() -> None:
        fake = FakeApns(topic=chosen, on_push=show_push)
        async with serve_fake_apns(fake, host=host, port=port, certfile=str(cert), keyfile=str(key)) as base_url:
            typer.echo(f"Fake APNs at {base_url} for topic {chosen} (Ctrl-C to stop)")
            typer.echo(f"Point Muster at it: MUSTER_APNS_URL={base_url} {ca_note}")
            typer.echo(f"Give Muster a push certificate for it: muster sim push-certificate --topic {chosen}")
            await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        typer.echo("fake APNs stopped")


def write_apns_tls(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A TLS certificate and key for the fake APNs at `host`, and the simulated CA that issued it (for Muster to
    trust); that CA is made anew in each process, so the files are rewritten on every start."""
    directory.mkdir(parents=True, exist_ok=True)
    certificate_pem, key_pem = issue_server_certificate(host)
    cert, key, ca = directory / "apns.pem", directory / "apns-key.pem", directory / "apns-ca.pem"
    cert.write_bytes(certificate_pem)
    key.touch(mode=0o600)
    key.write_bytes(key_pem)
    ca.write_bytes(simulator_ca_pem())
    return cert, key, ca


def _token(token: str | None, token_file: Path) -> str:
    if token:
        return token
    if not token_file.exists():
        _fail(SimulationError(f"no API token: {token_file} does not exist; pass --token-file or set MUSTER_TOKEN"))
    return token_file.read_text().strip()


def _verify(url: str, ca_file: Path | None) -> ssl.SSLContext | bool:
    default = Path("data/tls/server.crt")
    if ca_file is None and url.startswith("https://localhost") and default.exists():
        ca_file = default  # the embedded default's own certificate chain
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


def _fail(error: Exception) -> NoReturn:
    typer.secho(str(error), err=True, fg="red")
    raise typer.Exit(1)
