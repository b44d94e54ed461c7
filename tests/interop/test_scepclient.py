"""micromdm's `scepclient` (Debian package `scep`) enrolls against ScepService over real HTTP."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from muster.pki.ca import CertificateAuthority
from muster.pki.certs import load_pem_certificate
from muster.protocols.errors import ParseError
from muster.services.scep import PKI_MESSAGE_CONTENT_TYPE, ScepService

pytestmark = pytest.mark.interop

CHALLENGE = "interop-challenge-123"


@pytest.fixture
def scepclient() -> str:
    path = shutil.which("scepclient")
    if path is None:
        message = "scepclient not found: install Debian's `scep` package (apt-get install -y scep)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class MemoryChallenges:
    def __init__(self, *challenges: str) -> None:
        self._unused = set(challenges)
        self.refused: list[str | None] = []  # the verifier records the challenges it refuses

    async def consume(self, challenge: str | None, csr: x509.CertificateSigningRequest) -> str | None:
        if challenge not in self._unused:
            self.refused.append(challenge)
            return None
        self._unused.discard(challenge)
        return f"enrollment-for-{challenge}"


class MemorySink:
    def __init__(self) -> None:
        self.issued: list[tuple[str | None, x509.Certificate]] = []
        self.failures: list[tuple[str, str]] = []

    async def record(self, enrollment_ref: str | None, certificate: x509.Certificate) -> None:
        self.issued.append((enrollment_ref, certificate))

    async def record_failure(self, reason: str, transaction_id: str) -> None:
        self.failures.append((reason, transaction_id))


def scep_app(service: ScepService) -> Starlette:
    """The smallest HTTP binding of §5.1: one URL, the operation in the query string."""

    async def scep_endpoint(request: Request) -> Response:
        operation = request.query_params.get("operation")
        if operation == "GetCACaps":
            return Response(service.ca_caps(), media_type="text/plain")
        if operation == "GetCACert":
            body, content_type = service.ca_cert()
            return Response(body, media_type=content_type)
        if operation != "PKIOperation":
            return PlainTextResponse("unknown operation", status_code=400)
        if request.method == "POST":
            message = await request.body()
        else:
            message = base64.b64decode(request.query_params.get("message", ""))
        try:
            reply = await service.pki_operation(message)
        except ParseError as exc:
            return PlainTextResponse(exc.reason, status_code=400)
        return Response(reply, media_type=PKI_MESSAGE_CONTENT_TYPE)

    return Starlette(routes=[Route("/scep", scep_endpoint, methods=["GET", "POST"])])


class Deployment:
    def __init__(self) -> None:
        self.ca = CertificateAuthority.generate("Interop SCEP CA", organization="Muster")
        self.sink = MemorySink()
        self.challenges = MemoryChallenges(CHALLENGE)
        self.service = ScepService(self.ca, self.challenges, self.sink)
        self.url = ""


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    deployment = Deployment()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(scep_app(deployment.service), log_level="warning", lifespan="off", http="h11", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    deployment.url = f"http://127.0.0.1:{port}/scep"
    try:
        yield deployment
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def run_scepclient(
    binary: str, url: str, directory: Path, *, common_name: str, challenge: str | None
) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "-server-url", url,
        "-private-key", str(directory / "device.key"),
        "-certificate", str(directory / "device.pem"),
        "-cn", common_name,
    ]  # fmt: skip
    if challenge is not None:
        command += ["-challenge", challenge]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def common_name(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_scepclient_obtains_a_certificate_then_renews_it(
    scepclient: str, deployment: Deployment, tmp_path: Path
) -> None:
    done = run_scepclient(scepclient, deployment.url, tmp_path, common_name="interop-device", challenge=CHALLENGE)
    assert done.returncode == 0, done.stdout + done.stderr

    issued = load_pem_certificate((tmp_path / "device.pem").read_bytes())
    assert common_name(issued) == "interop-device"
    assert issued.issuer == deployment.ca.certificate.subject
    assert deployment.ca.issued(issued)
    assert deployment.sink.issued == [(f"enrollment-for-{CHALLENGE}", issued)]

    # With a certificate on disk scepclient sends a RenewalReq signed by it, without a challenge.
    done = run_scepclient(scepclient, deployment.url, tmp_path, common_name="interop-device", challenge=None)
    assert done.returncode == 0, done.stdout + done.stderr
    renewed = load_pem_certificate((tmp_path / "device.pem").read_bytes())
    assert renewed.serial_number != issued.serial_number
    assert deployment.ca.issued(renewed) and common_name(renewed) == "interop-device"
    assert deployment.sink.issued[-1] == (None, renewed)  # None: the renewal path, not a challenge


def test_scepclient_with_a_wrong_challenge_is_refused(scepclient: str, deployment: Deployment, tmp_path: Path) -> None:
    done = run_scepclient(scepclient, deployment.url, tmp_path, common_name="intruder", challenge="not-the-challenge")
    assert done.returncode != 0
    assert "failInfo" in done.stdout + done.stderr
    assert not (tmp_path / "device.pem").exists()
    assert deployment.sink.issued == []
    assert deployment.challenges.refused == ["not-the-challenge"]
