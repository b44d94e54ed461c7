"""Hostile input against the running server's device endpoints, over real HTTP (GUIDE §2, §5).

Random and mutated plists, random and corrupted `Mdm-Signature` headers, garbage SCEP PKIOperation messages
(GET and POST) and oversized bodies must each get a clean answer: a 4xx other than 401 (a 401 unenrolls an
Apple device), or a 200 where the input is still a well-formed, authenticated request. Never a 5xx.

One server per database backend serves the whole module; one device is enrolled on it so that signed bodies
reach the message handlers behind authentication.
"""

from __future__ import annotations

import asyncio
import base64
import os
import plistlib
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.pki.certs import generate_rsa_key, self_signed_certificate
from muster.protocols import scep
from muster.protocols.apple import checkin
from muster.protocols.apple.checkin import SHARED_IPAD_USER_ID
from muster.protocols.apple.results import CommandStatus, encode_report
from muster.protocols.cms import PrivateKey, sign_detached
from muster.protocols.scep import MAX_PKI_MESSAGE_SIZE
from muster.simulators.apple_device import CHECKIN_TYPE, CONNECT_TYPE, VirtualAppleDevice
from tests.harness import (
    RunningMuster,
    device_put,
    fake_apple,
    fresh_postgres_database,
    postgres_available,
    running_muster,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Signer = tuple[x509.Certificate, PrivateKey]


@dataclass(repr=False)
class Target:
    muster: RunningMuster
    http: httpx.AsyncClient
    topic: str
    udid: str
    signer: Signer
    scep_request: bytes  # a well-formed PKCSReq whose challenge was never issued

    def __repr__(self) -> str:
        return f"Target({self.muster.settings.effective_database_url.split(':')[0]}, {self.udid})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints it with each failing example
        printer.text(repr(self))

    def url(self, endpoint: str) -> str:
        return f"{self.muster.base_url}/mdm/{endpoint}"

    @property
    def scep_url(self) -> str:
        return f"{self.muster.base_url}/scep"


@asynccontextmanager
async def backend(kind: str, directory: Any) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'muster.db'}"
        return
    if not await postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable, and CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL is not reachable on MUSTER_TEST_PG_URL / 127.0.0.1:5432")
    async with fresh_postgres_database() as url:
        yield url


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    directory = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    async with (
        backend(request.param, directory) as database_url,
        fake_apple(directory / "apple") as apple,
        running_muster(directory / "muster", database_url=database_url, apple=apple) as muster,
        # A fresh connection per request, so that one connection the server drops cannot fail later examples.
        httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=muster.tls_ca_file),
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=30,
        ) as http,
    ):
        topic = await muster.install_push_certificate(apple)
        device = VirtualAppleDevice(http=http)
        await device.enroll(await muster.enrollment_profile())
        assert device.identity_certificate is not None and device.key is not None
        ca = muster.container.identity.authority.certificate
        yield Target(
            muster, http, topic, device.udid, (device.identity_certificate, device.key), pkcs_req(ca, "never-issued")[0]
        )


def assert_clean(response: httpx.Response, *, may_succeed: bool = False) -> None:
    """A 4xx that is not 401 — or a 200 when the input may still be a valid request. Never a 5xx."""
    status = response.status_code
    assert status != 401, response.text
    assert status < 500, response.text
    assert (may_succeed and status == 200) or 400 <= status < 500, (status, response.text)


# -- strategies ---------------------------------------------------------------------------------------------

MESSAGE_TYPES = [
    "Authenticate",
    "TokenUpdate",
    "CheckOut",
    "UserAuthenticate",
    "SetBootstrapToken",
    "GetBootstrapToken",
    "DeclarativeManagement",
    "GetToken",
    "ReturnToService",
]
FIELDS = [
    "Topic",
    "Token",
    "PushMagic",
    "UnlockToken",
    "AwaitingConfiguration",
    "UserShortName",
    "UserLongName",
    "DigestResponse",
    "BootstrapToken",
    "Endpoint",
    "Data",
    "TokenServiceType",
    "TokenParameters",
    "SerialNumber",
    "OSVersion",
    "ProductName",
    "DeviceName",
    "Status",
    "CommandUUID",
    "ErrorChain",
    "QueryResponses",
]
long_text = st.text(min_size=250, max_size=700)
any_text = st.one_of(st.text(max_size=80), long_text)
scalars = st.one_of(
    any_text,
    st.binary(max_size=80),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False),
    st.datetimes(),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=10,
)


@st.composite
def identities(draw: st.DrawFn, udid: str) -> dict[str, Any]:
    """The enrolled device's channels, strangers, and keys of every type and length."""
    own = st.just(udid)
    return draw(
        st.one_of(
            st.fixed_dictionaries({"UDID": own}),
            st.fixed_dictionaries({"UDID": own, "UserID": any_text}),
            st.fixed_dictionaries({"UDID": own, "UserID": st.just(SHARED_IPAD_USER_ID), "UserShortName": any_text}),
            st.fixed_dictionaries({"EnrollmentID": st.one_of(own, any_text)}),
            st.fixed_dictionaries({"UDID": any_text}),
            st.dictionaries(st.sampled_from(["UDID", "UserID", "EnrollmentID", "EnrollmentUserID"]), values),
        )
    )


@st.composite
def messages(draw: st.DrawFn, target: Target, key: str, kinds: list[str]) -> dict[str, Any]:
    message = dict(draw(identities(target.udid)))
    message[key] = draw(st.one_of(st.sampled_from(kinds), any_text, values))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        real = {"Topic": target.topic, "Status": "Acknowledged", "CommandUUID": str(uuid.uuid4()).upper()}
        message[name] = draw(st.one_of(st.just(real[name]), values) if name in real else values)
    message.update(draw(st.dictionaries(st.text(max_size=30), values, max_size=3)))
    return message


def encode(message: dict[str, Any], binary: bool) -> bytes:
    """XML like a device, or binary (which can carry characters XML cannot)."""
    if not binary:
        try:
            return plistlib.dumps(message, fmt=plistlib.FMT_XML)
        except (ValueError, TypeError, OverflowError):
            pass
    return plistlib.dumps(message, fmt=plistlib.FMT_BINARY)


# -- MDM bodies ---------------------------------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=4096), endpoint=st.sampled_from(["checkin", "connect"]), signed=st.booleans())
async def test_random_bodies_are_refused(target: Target, body: bytes, endpoint: str, signed: bool) -> None:
    response = await device_put(target.http, target.url(endpoint), body, signer=target.signer if signed else None)
    assert_clean(response)


@FUZZ
@given(data=st.data(), binary=st.booleans(), signed=st.booleans())
async def test_random_check_in_messages_are_answered_cleanly(
    target: Target, data: st.DataObject, binary: bool, signed: bool
) -> None:
    message = data.draw(messages(target, "MessageType", MESSAGE_TYPES))
    response = await device_put(
        target.http, target.url("checkin"), encode(message, binary), signer=target.signer if signed else None
    )
    assert_clean(response, may_succeed=signed)


@FUZZ
@given(data=st.data(), binary=st.booleans(), signed=st.booleans())
async def test_random_command_reports_are_answered_cleanly(
    target: Target, data: st.DataObject, binary: bool, signed: bool
) -> None:
    statuses = [status.value for status in CommandStatus]
    message = data.draw(messages(target, "Status", statuses))
    response = await device_put(
        target.http,
        target.url("connect"),
        encode(message, binary),
        signer=target.signer if signed else None,
        content_type=CONNECT_TYPE,
    )
    assert_clean(response, may_succeed=signed)


@st.composite
def mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with a few bytes flipped, removed or inserted; always different from it."""
    body = bytearray(original)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(body) - 1))
        match draw(st.sampled_from(["flip", "delete", "insert"])):
            case "flip":
                body[position] ^= draw(st.integers(min_value=1, max_value=255))
            case "delete":
                del body[position : position + draw(st.integers(min_value=1, max_value=16))]
            case "insert":
                body[position:position] = draw(st.binary(min_size=1, max_size=16))
        if not body:
            body = bytearray(b"\x00")
    if bytes(body) == original:
        body.append(0)
    return bytes(body)


def sample_bodies(target: Target) -> dict[str, tuple[str, bytes]]:
    keys = {"UDID": target.udid}
    return {
        "idle": ("connect", encode_report(CommandStatus.IDLE, keys)),
        "result": ("connect", encode_report(CommandStatus.ACKNOWLEDGED, keys, str(uuid.uuid4()).upper())),
        "token update": (
            "checkin",
            checkin.encode_checkin("TokenUpdate", keys, Topic=target.topic, Token=os.urandom(32), PushMagic="m"),
        ),
        "authenticate": ("checkin", checkin.encode_checkin("Authenticate", keys, Topic=target.topic)),
    }


@FUZZ
@given(data=st.data(), which=st.sampled_from(["idle", "result", "token update", "authenticate"]))
async def test_mutated_signed_bodies_are_answered_cleanly(target: Target, data: st.DataObject, which: str) -> None:
    endpoint, original = sample_bodies(target)[which]
    mutated = data.draw(mutations(original))
    kind = CONNECT_TYPE if endpoint == "connect" else CHECKIN_TYPE
    # Signed after mutation: the handlers see it. Signed before: the signature no longer matches the body.
    resigned = await device_put(target.http, target.url(endpoint), mutated, signer=target.signer, content_type=kind)
    assert_clean(resigned, may_succeed=True)
    stale = base64.b64encode(sign_detached(original, *target.signer)).decode()
    response = await device_put(
        target.http, target.url(endpoint), mutated, content_type=kind, headers={"Mdm-Signature": stale}
    )
    assert_clean(response)


# -- Mdm-Signature ------------------------------------------------------------------------------------------

# What HTTP lets a header value hold: printable ASCII, no surrounding blanks.
header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=3000)


@FUZZ
@given(
    header=st.one_of(
        header_text,
        st.binary(min_size=1, max_size=3000).map(lambda raw: base64.b64encode(raw).decode()),
    ),
    endpoint=st.sampled_from(["checkin", "connect"]),
)
async def test_random_signature_headers_are_refused(target: Target, header: str, endpoint: str) -> None:
    body = sample_bodies(target)["idle" if endpoint == "connect" else "token update"][1]
    response = await device_put(target.http, target.url(endpoint), body, headers={"Mdm-Signature": header})
    assert_clean(response)


@FUZZ
@given(data=st.data(), endpoint=st.sampled_from(["checkin", "connect"]), cut=st.booleans())
async def test_corrupted_signatures_are_answered_cleanly(
    target: Target, data: st.DataObject, endpoint: str, cut: bool
) -> None:
    body = sample_bodies(target)["idle" if endpoint == "connect" else "token update"][1]
    valid = sign_detached(body, *target.signer)
    if cut:  # truncated: never a complete SignedData
        corrupted = valid[: data.draw(st.integers(min_value=0, max_value=len(valid) - 1))]
    else:  # a byte outside what the signature covers may change without harm, hence may_succeed below
        corrupted = data.draw(mutations(valid))
    header = base64.b64encode(corrupted).decode() or "="
    response = await device_put(target.http, target.url(endpoint), body, headers={"Mdm-Signature": header})
    assert_clean(response, may_succeed=not cut)


# -- SCEP ---------------------------------------------------------------------------------------------------


_KEY = generate_rsa_key()  # one requester key for every SCEP example: key generation is the slow part


def pkcs_req(ca: x509.Certificate, challenge: str) -> tuple[bytes, x509.Certificate]:
    """A well-formed PKCSReq carrying `challenge`, and the requester's self-signed certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")])
    csr = (
        x509.CertificateSigningRequestBuilder(name)
        .add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
        .sign(_KEY, hashes.SHA256())
    )
    signer = self_signed_certificate(_KEY, "fuzz")
    der, _ = scep.build_pkcs_req(
        csr, signer_certificate=signer, signer_key=_KEY, recipient_certificate=ca, transaction_id=uuid.uuid4().hex
    )
    return der, signer


@FUZZ
@given(body=st.binary(max_size=4096), as_get=st.booleans())
async def test_garbage_scep_messages_are_refused(target: Target, body: bytes, as_get: bool) -> None:
    if as_get:
        response = await target.http.get(
            target.scep_url, params={"operation": "PKIOperation", "message": base64.b64encode(body).decode()}
        )
    else:
        response = await target.http.post(target.scep_url, params={"operation": "PKIOperation"}, content=body)
    assert_clean(response)


@FUZZ
@given(message=header_text)
async def test_garbage_scep_get_messages_are_refused(target: Target, message: str) -> None:
    response = await target.http.get(target.scep_url, params={"operation": "PKIOperation", "message": message})
    assert_clean(response)


@FUZZ
@given(data=st.data(), as_get=st.booleans())
async def test_mutated_scep_requests_are_answered_cleanly(target: Target, data: st.DataObject, as_get: bool) -> None:
    mutated = data.draw(mutations(target.scep_request))
    if as_get:
        params = {"operation": "PKIOperation", "message": base64.b64encode(mutated).decode()}
        response = await target.http.get(target.scep_url, params=params)
    else:
        response = await target.http.post(target.scep_url, params={"operation": "PKIOperation"}, content=mutated)
    # Unsigned parts (the self-signed certificate's own signature, say) may change: then the request is read
    # and refused by a SCEP failure reply, since its challenge was never issued.
    assert_clean(response, may_succeed=True)
    if response.status_code == 200:
        assert response.headers["content-type"] == "application/x-pki-message"


@FUZZ
@given(challenge=st.text(st.characters(exclude_categories=["Cs"]), max_size=300))
async def test_any_unknown_challenge_gets_a_scep_failure(target: Target, challenge: str) -> None:
    """Well-formed requests with a challenge the server never issued (any text): never a certificate."""
    ca = target.muster.container.identity.authority.certificate
    body, requester = pkcs_req(ca, challenge)
    response = await target.http.post(target.scep_url, params={"operation": "PKIOperation"}, content=body)
    assert_clean(response, may_succeed=True)
    if response.status_code == 200:
        reply = scep.parse_cert_rep(
            response.content, requester_certificate=requester, requester_key=_KEY, ca_certificate=ca
        )
        assert reply.status is scep.PkiStatus.FAILURE and reply.certificate is None


# -- sizes and classic plist attacks ------------------------------------------------------------------------


async def test_oversized_bodies_are_refused_with_413(target: Target) -> None:
    limit = target.muster.settings.max_device_body_bytes
    for endpoint in ("checkin", "connect"):
        response = await device_put(target.http, target.url(endpoint), b"A" * (limit + 1))
        assert response.status_code == 413, response.text

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the server must count as it reads
            for _ in range(limit // 65536 + 2):
                yield b"B" * 65536

        response = await target.http.put(target.url(endpoint), content=chunks())
        assert response.status_code == 413, response.text
    # Exactly at the limit the body is read, and refused as the garbage it is.
    assert_clean(await device_put(target.http, target.url("checkin"), b"<" * limit))
    response = await target.http.post(
        target.scep_url, params={"operation": "PKIOperation"}, content=b"\x30" * (MAX_PKI_MESSAGE_SIZE + 1)
    )
    assert response.status_code == 413, response.text


async def test_oversized_headers_and_query_strings_are_refused(target: Target) -> None:
    body = sample_bodies(target)["idle"][1]
    for size in (15 * 1024, 17 * 1024, 64 * 1024):
        header = base64.b64encode(os.urandom(size))[:size].decode()
        response = await device_put(target.http, target.url("connect"), body, headers={"Mdm-Signature": header})
        assert_clean(response)
    message = base64.b64encode(os.urandom(16 * 1024)).decode()
    response = await target.http.get(target.scep_url, params={"operation": "PKIOperation", "message": message})
    assert_clean(response)
    # Longer than httpx lets a URL be: sent by hand. A message this size could not be a request worth reading.
    message = quote(base64.b64encode(os.urandom(300 * 1024)).decode())
    assert 400 <= await raw_get_status(target, f"/scep?operation=PKIOperation&message={message}") < 500


async def raw_get_status(target: Target, path: str) -> int:
    """The status of a GET sent over a bare TLS connection (for request lines no HTTP client will build)."""
    url = httpx.URL(target.muster.base_url)
    context = ssl.create_default_context(cafile=target.muster.tls_ca_file)
    reader, writer = await asyncio.open_connection(url.host, url.port, ssl=context, server_hostname=url.host)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {url.host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    return int(status_line.split()[1])


def binary_plist(objects: list[bytes]) -> bytes:
    """A hand-built binary plist: one-byte offsets and object references, object 0 at the top."""
    body, offsets = b"bplist00", []
    for encoded in objects:
        offsets.append(len(body))
        body += encoded
    trailer = bytes(6) + bytes([1, 1]) + len(objects).to_bytes(8, "big") + bytes(8) + len(body).to_bytes(8, "big")
    return body + bytes(offsets) + trailer


CLASSIC_ATTACKS = {
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(8))
    + b']><plist version="1.0"><dict><key>MessageType</key><string>&i;</string></dict></plist>',
    "external entity": b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<plist version="1.0"><dict><key>UDID</key><string>&x;</string></dict></plist>',
    "deep nesting": b'<plist version="1.0">' + b"<array>" * 5000 + b"</array>" * 5000 + b"</plist>",
    # A dictionary {"A": itself}: key reference 1, value reference 0.
    "binary cycle": binary_plist([b"\xd1\x01\x00", b"\x51A"]),
    # An array claiming 2**62 elements (the count follows as an 8-byte integer).
    "binary huge count": binary_plist([b"\xaf\x13" + (2**62).to_bytes(8, "big")]),
    "array at top": plistlib.dumps([1, 2, 3]),
    "unknown encoding": b'<?xml version="1.0" encoding="UTF-l"?><plist version="1.0"><dict/></plist>',
    "not utf-8": b'<?xml version="1.0" encoding="UTF-8"?><plist><dict><key>\xff\xfe</key><true/></dict></plist>',
}


@pytest.mark.parametrize("attack", sorted(CLASSIC_ATTACKS))
async def test_classic_plist_attacks_are_refused(target: Target, attack: str) -> None:
    body = CLASSIC_ATTACKS[attack]
    for endpoint in ("checkin", "connect"):
        for signer in (None, target.signer):
            assert_clean(await device_put(target.http, target.url(endpoint), body, signer=signer))


def hostile_fields(udid: str, topic: str) -> dict[str, tuple[str, dict[str, Any], bool]]:
    """Values the columns they land in cannot hold (too long, or a NUL that PostgreSQL text refuses), by case:
    (endpoint, message, signed by the enrolled device). Binary plists carry the NULs XML cannot."""
    token = {"Topic": topic, "Token": b"t", "PushMagic": "m"}
    return {
        "unsigned, UDID of 400 characters": ("connect", {"Status": "Idle", "UDID": "A" * 400}, False),
        "unsigned, NUL in UDID": ("connect", {"Status": "Idle", "UDID": "A\x00B"}, False),
        "unsigned, user channel id of 400 characters": (
            "checkin",
            {"MessageType": "TokenUpdate", "UDID": udid, "UserID": "u" * 400, **token},
            False,
        ),
        "Topic of 300 characters": (
            "checkin",
            {"MessageType": "TokenUpdate", "UDID": udid, **token, "Topic": "t" * 300},
            True,
        ),
        "PushMagic of 100 characters": (
            "checkin",
            {"MessageType": "TokenUpdate", "UDID": udid, **token, "PushMagic": "m" * 100},
            True,
        ),
        "NUL in PushMagic": (
            "checkin",
            {"MessageType": "TokenUpdate", "UDID": udid, **token, "PushMagic": "m\x00"},
            True,
        ),
        "user channel id of 300 characters": (
            "checkin",
            {"MessageType": "TokenUpdate", "UDID": udid, "UserID": "u" * 300, **token},
            True,
        ),
        "UserShortName of 400 characters": (
            "checkin",
            {"MessageType": "TokenUpdate", "UDID": udid, "UserID": "u1", "UserShortName": "s" * 400, **token},
            True,
        ),
        "SerialNumber of 100 characters": (
            "checkin",
            {"MessageType": "Authenticate", "UDID": udid, "Topic": topic, "SerialNumber": "S" * 100},
            True,
        ),
        "NUL in DeviceName": (
            "checkin",
            {"MessageType": "Authenticate", "UDID": udid, "Topic": topic, "DeviceName": "a\x00"},
            True,
        ),
        "MessageType of 61 characters": ("checkin", {"MessageType": "M" * 61, "UDID": udid}, True),
        "UserAuthenticate with a UserID of 300 characters": (
            "checkin",
            {"MessageType": "UserAuthenticate", "UDID": udid, "UserID": "u" * 300},
            True,
        ),
        "NUL in CommandUUID": ("connect", {"Status": "Acknowledged", "UDID": udid, "CommandUUID": "c\x00"}, True),
        "CommandUUID of 100 characters": (
            "connect",
            {"Status": "Acknowledged", "UDID": udid, "CommandUUID": "c" * 100},
            True,
        ),
    }


@pytest.mark.parametrize("case", sorted(hostile_fields("UDID", "topic")))
async def test_values_the_database_cannot_hold_are_answered_cleanly(target: Target, case: str) -> None:
    endpoint, message, signed = hostile_fields(target.udid, target.topic)[case]
    response = await device_put(
        target.http,
        target.url(endpoint),
        plistlib.dumps(message, fmt=plistlib.FMT_BINARY),
        signer=target.signer if signed else None,
        content_type=CONNECT_TYPE if endpoint == "connect" else CHECKIN_TYPE,
    )
    assert_clean(response, may_succeed=signed)


async def test_the_device_is_still_served_after_the_fuzzing(target: Target) -> None:
    """Nothing above took the server down: the enrolled device's signed Idle still gets a clean answer."""
    idle = encode_report(CommandStatus.IDLE, {"UDID": target.udid})
    response = await device_put(
        target.http, target.url("connect"), idle, signer=target.signer, content_type=CONNECT_TYPE
    )
    assert response.status_code == 200
