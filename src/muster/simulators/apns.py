"""Apple's side of MDM pushes, simulated: the Push Certificates Portal and the APNs HTTP/2 endpoint.

For tests, demos and load runs. `FakeApns` answers like api.push.apple.com (spec/apple-protocols.md
§6.1, §6.2), records what it delivered, can inject Apple's failures, and can wake virtual devices.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import logging
import ssl
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from muster.protocols.apple.apns import (
    DEVICE_PATH_PREFIX,
    MAX_PAYLOAD_BYTES,
    PRIORITIES,
    encode_error_body,
    is_canonical_uuid,
    parse_device_path,
    parse_push_body,
)
from muster.protocols.errors import ParseError
from muster.simulators.h2_server import H2Reply, H2Request, serve_h2

logger = logging.getLogger(__name__)

WakeHook = Callable[[str, str], Awaitable[None] | None]
AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]

REASON_FOR_STATUS = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
CLOCK_SKEW = timedelta(minutes=5)


# --- Push Certificates Portal -------------------------------------------------------------------


@functools.cache
def _simulator_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A process-local stand-in for Apple's certification authority, made on first use."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Muster Simulated Apple Push CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def simulator_ca_pem() -> bytes:
    """The simulated CA certificate: trust it to verify push and server certificates issued here."""
    return _simulator_ca()[0].public_bytes(serialization.Encoding.PEM)


def issue_push_certificate(csr_pem: bytes, *, topic: str | None = None, days: int = 365) -> bytes:
    """Play the Push Certificates Portal: a PEM MDM push certificate for the CSR's key (§6.3, §6.4).

    The subject UID carries the topic, `com.apple.mgmt.External.<uuid4>` unless one is given.
    """
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise ValueError("CSR signature is invalid")
    if days < 1:
        raise ValueError("days must be at least 1")
    topic = topic or f"com.apple.mgmt.External.{uuid.uuid4()}"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, f"APSP:{uuid.uuid4()}"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    builder = _leaf_builder(subject, csr.public_key(), days).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    return _sign_with_ca(builder)


def issue_server_certificate(host: str = "127.0.0.1", *, days: int = 30) -> tuple[bytes, bytes]:
    """A TLS server certificate and key (PEM) for `host`, signed by the simulated CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    builder = (
        _leaf_builder(subject, key.public_key(), days)
        .add_extension(x509.SubjectAlternativeName([_general_name(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _sign_with_ca(builder), key_pem


def _leaf_builder(subject: x509.Name, public_key: Any, days: int) -> x509.CertificateBuilder:
    ca_certificate, _ = _simulator_ca()
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )


def _sign_with_ca(builder: x509.CertificateBuilder) -> bytes:
    _, ca_key = _simulator_ca()
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


# --- APNs endpoint ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveredPush:
    """One push FakeApns accepted. `http_version` is "2" from `serve_fake_apns`, else the ASGI scope's."""

    token_hex: str
    topic: str
    push_magic: str
    priority: int
    apns_id: str
    http_version: str


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class FakeApns:
    """Answers `POST /3/device/{token}` the way APNs does for MDM pushes (§6.1, §6.2).

    Malformed payloads are answered `PayloadEmpty` (no usable `mdm` key), a bad `apns-id` header
    `BadMessageId`, a foreign MDM topic `DeviceTokenNotForTopic` and a non-MDM topic `BadTopic`.
    """

    def __init__(self, *, topic: str, on_push: WakeHook | None = None) -> None:
        self.topic = topic
        self.pushes: list[DeliveredPush] = []
        self._on_push = on_push
        self._counts: Counter[str] = Counter()
        self._failing_tokens: dict[str, tuple[int, str]] = {}
        self._throttled: Counter[str] = Counter()
        self._next_failures: list[tuple[int, str]] = []
        self._hook_tasks: set[asyncio.Task[None]] = set()

    def count_for(self, token_hex: str) -> int:
        return self._counts[token_hex.lower()]

    def fail_token(self, token_hex: str, status: int = 410, reason: str = "Unregistered") -> None:
        """Answer every later push to this token with `status`/`reason`."""
        self._failing_tokens[token_hex.lower()] = (status, reason)

    def throttle(self, token_hex: str, times: int) -> None:
        """Answer the next `times` valid pushes to this token with 429 TooManyRequests."""
        self._throttled[token_hex.lower()] += times

    def fail_next(self, n: int, status: int = 503, reason: str | None = None) -> None:
        """Answer the next `n` requests, whatever they are, with `status` (APNs trouble)."""
        reason = reason or REASON_FOR_STATUS.get(status, "InternalServerError")
        self._next_failures.extend([(status, reason)] * n)

    async def settle(self) -> None:
        """Wait until every wake hook started so far has finished."""
        while self._hook_tasks:
            await asyncio.gather(*self._hook_tasks)

    def answer(self, request: H2Request, http_version: str = "2") -> H2Reply:
        """Answer one request, whatever carried it: `serve_fake_apns`'s HTTP/2 server or ASGI."""
        try:
            push = self._accept(request, http_version)
        except _Refusal as refusal:
            return _refusal_reply(refusal)
        self._wake(push)
        return H2Reply(200, [(b"apns-id", push.apns_id.encode())])

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """The same endpoint as an ASGI app, for `httpx.ASGITransport` in tests."""
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        request = H2Request(scope["method"], scope["path"], list(scope["headers"]), body)
        reply = self.answer(request, scope.get("http_version", ""))
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        await send({"type": "http.response.body", "body": reply.body})

    def _accept(self, request: H2Request, http_version: str) -> DeliveredPush:
        if self._next_failures:
            raise _Refusal(*self._next_failures.pop(0))
        if request.method != "POST":
            raise _Refusal(405, "MethodNotAllowed")
        token_hex = _token_from_path(request.path)
        headers = _single_headers(request.headers)
        topic = self._check_topic(headers)
        priority = _check_priority(headers)
        _check_expiration(headers)
        apns_id = _check_apns_id(headers)
        push_magic = _check_payload(request.body)
        self._check_faults(token_hex)
        push = DeliveredPush(token_hex, topic, push_magic, priority, apns_id, http_version)
        self.pushes.append(push)
        self._counts[token_hex] += 1
        return push

    def _check_topic(self, headers: dict[str, str]) -> str:
        if headers.get("apns-push-type") != "mdm":
            raise _Refusal(400, "InvalidPushType")
        # A certificate with a single topic makes the header optional (§6.1).
        topic = headers.get("apns-topic", self.topic)
        if topic == self.topic:
            return topic
        if topic.startswith("com.apple.mgmt."):
            raise _Refusal(400, "DeviceTokenNotForTopic")
        raise _Refusal(400, "BadTopic")

    def _check_faults(self, token_hex: str) -> None:
        if token_hex in self._failing_tokens:
            raise _Refusal(*self._failing_tokens[token_hex])
        if self._throttled[token_hex] > 0:
            self._throttled[token_hex] -= 1
            raise _Refusal(429, "TooManyRequests")

    def _wake(self, push: DeliveredPush) -> None:
        if self._on_push is None:
            return
        # A task, so a slow virtual device never delays APNs' answer.
        task = asyncio.create_task(_run_hook(self._on_push, push.token_hex, push.push_magic))
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)


def _refusal_reply(refusal: _Refusal) -> H2Reply:
    # Apple adds a timestamp only when the token stopped being valid (410).
    timestamp = int(time.time() * 1000) if refusal.status == 410 else None
    body = encode_error_body(refusal.reason, timestamp_ms=timestamp)
    headers = [(b"apns-id", str(uuid.uuid4()).encode()), (b"content-type", b"application/json")]
    return H2Reply(refusal.status, headers, body)


async def _run_hook(hook: WakeHook, token_hex: str, push_magic: str) -> None:
    try:
        outcome = hook(token_hex, push_magic)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        logger.exception("wake hook failed for token %s…", token_hex[:8])


def _token_from_path(path: str) -> str:
    if not path.startswith(DEVICE_PATH_PREFIX):
        raise _Refusal(404, "BadPath")
    if path == DEVICE_PATH_PREFIX:
        raise _Refusal(400, "MissingDeviceToken")
    try:
        return parse_device_path(path).hex()
    except ParseError as error:
        raise _Refusal(400, "BadDeviceToken") from error


def _single_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key.startswith("apns-") and key in headers:
            raise _Refusal(400, "DuplicateHeaders")
        headers[key] = value.decode("latin-1")
    return headers


def _check_priority(headers: dict[str, str]) -> int:
    value = headers.get("apns-priority", "10")
    if not value.isdigit() or int(value) not in PRIORITIES:
        raise _Refusal(400, "BadPriority")
    return int(value)


def _check_expiration(headers: dict[str, str]) -> None:
    value = headers.get("apns-expiration")
    if value is not None and not value.isdigit():
        raise _Refusal(400, "BadExpirationDate")


def _check_apns_id(headers: dict[str, str]) -> str:
    value = headers.get("apns-id")
    if value is None:
        return str(uuid.uuid4())
    if not is_canonical_uuid(value):
        raise _Refusal(400, "BadMessageId")
    return value


def _check_payload(body: bytes) -> str:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise _Refusal(413, "PayloadTooLarge")
    try:
        return parse_push_body(body)
    except ParseError as error:
        raise _Refusal(400, "PayloadEmpty") from error


async def _read_body(receive: Receive) -> bytes:
    # Keep at most one chunk past the limit: enough to answer 413 without buffering a flood.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if size <= MAX_PAYLOAD_BYTES:
            chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


@asynccontextmanager
async def serve_fake_apns(
    app: FakeApns,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: str,
    keyfile: str,
    client_ca_file: str | None = None,
) -> AsyncIterator[str]:
    """Serve `app` over TLS with HTTP/2 only (ALPN h2); yields the base URL.

    With `client_ca_file`, a client certificate issued by that CA is required, as APNs requires the
    push certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["h2"])
    if client_ca_file is not None:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    # FakeApns answers 413 itself; the server keeps one byte past the limit so it can tell.
    async with serve_h2(app.answer, context, host=host, port=port, max_body_bytes=MAX_PAYLOAD_BYTES) as bound:
        yield f"https://[{host}]:{bound}" if ":" in host else f"https://{host}:{bound}"
