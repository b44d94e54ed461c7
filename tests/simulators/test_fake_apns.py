import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from muster.clients.h2_connection import open_h2_connection
from muster.pki.push_certificate import generate_push_csr
from muster.protocols.apple.apns import PushTarget, build_push
from muster.simulators.apns import (
    FakeApns,
    issue_push_certificate,
    issue_server_certificate,
    serve_fake_apns,
    simulator_ca_pem,
)
from muster.simulators.h2_server import H2Reply, H2Request, serve_h2

TOPIC = "com.apple.mgmt.External.5f2d1a8c-3b1e-4b1a-9d36-0c6f3f1e2a77"
TOKEN_HEX = "ab" * 32
APNS_ID = "4f1e3c2a-9b8d-4e6f-a1b2-c3d4e5f60718"


def push_request(**changes: object) -> tuple[str, dict[str, str], bytes]:
    path, headers, body = build_push(PushTarget(bytes.fromhex(TOKEN_HEX), "the-magic", TOPIC))
    return changes.get("path", path), changes.get("headers", headers), changes.get("body", body)  # type: ignore[return-value]


@pytest.fixture
def fake() -> FakeApns:
    return FakeApns(topic=TOPIC)


@pytest.fixture
async def http(fake: FakeApns) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="https://apns") as client:
        yield client


async def post(http: httpx.AsyncClient, **changes: object) -> httpx.Response:
    path, headers, body = push_request(**changes)
    return await http.post(path, headers=headers, content=body)


def reason_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, json.loads(response.content)["reason"]


async def test_valid_push_is_delivered_and_recorded(fake: FakeApns, http: httpx.AsyncClient) -> None:
    response = await post(http)

    assert response.status_code == 200
    assert response.content == b""
    assert len(response.headers["apns-id"]) == 36
    assert fake.count_for(TOKEN_HEX) == 1
    assert fake.count_for(TOKEN_HEX.upper()) == 1
    [push] = fake.pushes
    assert (push.token_hex, push.topic, push.push_magic, push.priority) == (TOKEN_HEX, TOPIC, "the-magic", 10)
    assert push.apns_id == response.headers["apns-id"]


async def test_apns_id_from_request_is_echoed(http: httpx.AsyncClient) -> None:
    path, headers, body = build_push(
        PushTarget(bytes.fromhex(TOKEN_HEX), "m", TOPIC), apns_id=APNS_ID, priority=5, expiration=0
    )

    response = await http.post(path, headers=headers, content=body)

    assert (response.status_code, response.headers["apns-id"]) == (200, APNS_ID)


async def test_topic_header_may_be_omitted(fake: FakeApns, http: httpx.AsyncClient) -> None:
    _, headers, _ = push_request()
    del headers["apns-topic"]

    assert (await post(http, headers=headers)).status_code == 200
    assert fake.pushes[0].topic == TOPIC


BASE_HEADERS = push_request()[1]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"headers": {**BASE_HEADERS, "apns-push-type": "alert"}}, (400, "InvalidPushType")),
        (
            {"headers": {k: v for k, v in BASE_HEADERS.items() if k != "apns-push-type"}},
            (400, "InvalidPushType"),
        ),
        (
            {"headers": {**BASE_HEADERS, "apns-topic": "com.apple.mgmt.External.other"}},
            (400, "DeviceTokenNotForTopic"),
        ),
        ({"headers": {**BASE_HEADERS, "apns-topic": "com.example.app"}}, (400, "BadTopic")),
        ({"headers": {**BASE_HEADERS, "apns-priority": "7"}}, (400, "BadPriority")),
        ({"headers": {**BASE_HEADERS, "apns-expiration": "soon"}}, (400, "BadExpirationDate")),
        ({"headers": {**BASE_HEADERS, "apns-id": "nope"}}, (400, "BadMessageId")),
        ({"body": b""}, (400, "PayloadEmpty")),
        ({"body": b"{}"}, (400, "PayloadEmpty")),
        ({"body": b'{"mdm":"m","aps":{"alert":"hi"}}'}, (400, "PayloadEmpty")),
        ({"body": b"not json"}, (400, "PayloadEmpty")),
        ({"body": b'{"mdm":"' + b"x" * 5000 + b'"}'}, (413, "PayloadTooLarge")),
        ({"path": "/3/device/xyz"}, (400, "BadDeviceToken")),
        ({"path": "/3/device/"}, (400, "MissingDeviceToken")),
        ({"path": "/4/other"}, (404, "BadPath")),
    ],
)
async def test_invalid_requests_refused_like_apns(
    fake: FakeApns, http: httpx.AsyncClient, changes: dict[str, object], expected: tuple[int, str]
) -> None:
    assert reason_of(await post(http, **changes)) == expected
    assert fake.pushes == []


async def test_wrong_method_and_duplicate_headers(http: httpx.AsyncClient) -> None:
    path, headers, body = push_request()

    assert reason_of(await http.get(path)) == (405, "MethodNotAllowed")
    duplicated = [*headers.items(), ("apns-priority", "5")]
    assert reason_of(await http.post(path, headers=duplicated, content=body)) == (400, "DuplicateHeaders")


async def test_fail_token_answers_with_timestamp_for_410(fake: FakeApns, http: httpx.AsyncClient) -> None:
    fake.fail_token(TOKEN_HEX.upper())

    response = await post(http)

    assert reason_of(response) == (410, "Unregistered")
    assert isinstance(json.loads(response.content)["timestamp"], int)
    assert fake.count_for(TOKEN_HEX) == 0


async def test_fail_token_custom_status(fake: FakeApns, http: httpx.AsyncClient) -> None:
    fake.fail_token(TOKEN_HEX, status=400, reason="BadDeviceToken")

    response = await post(http)

    assert reason_of(response) == (400, "BadDeviceToken")
    assert "timestamp" not in json.loads(response.content)


async def test_throttle_then_deliver(fake: FakeApns, http: httpx.AsyncClient) -> None:
    fake.throttle(TOKEN_HEX, times=2)

    statuses = [(await post(http)).status_code for _ in range(3)]

    assert statuses == [429, 429, 200]
    assert fake.count_for(TOKEN_HEX) == 1


async def test_fail_next_hits_any_request_then_recovers(fake: FakeApns, http: httpx.AsyncClient) -> None:
    fake.fail_next(2, status=503)

    first = await post(http, path="/anything")
    second = await post(http)
    third = await post(http)

    assert reason_of(first) == (503, "ServiceUnavailable")
    assert reason_of(second) == (503, "ServiceUnavailable")
    assert third.status_code == 200


async def test_async_wake_hook_does_not_delay_the_answer() -> None:
    woken: list[tuple[str, str]] = []
    release = asyncio.Event()

    async def wake(token_hex: str, push_magic: str) -> None:
        await release.wait()
        woken.append((token_hex, push_magic))

    fake = FakeApns(topic=TOPIC, on_push=wake)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="https://apns") as http:
        response = await post(http)
        assert response.status_code == 200
        assert woken == []
        release.set()
        await fake.settle()

    assert woken == [(TOKEN_HEX, "the-magic")]


async def test_sync_wake_hook_and_failing_hook(caplog: pytest.LogCaptureFixture) -> None:
    woken: list[str] = []

    def wake(token_hex: str, push_magic: str) -> None:
        woken.append(push_magic)
        raise RuntimeError("device simulator crashed")

    fake = FakeApns(topic=TOPIC, on_push=wake)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="https://apns") as http:
        assert (await post(http)).status_code == 200
        await fake.settle()

    assert woken == ["the-magic"]
    assert "wake hook failed" in caplog.text


async def test_refused_push_does_not_wake() -> None:
    woken: list[str] = []
    fake = FakeApns(topic=TOPIC, on_push=lambda token_hex, magic: woken.append(token_hex))
    fake.fail_token(TOKEN_HEX)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="https://apns") as http:
        await post(http)
        await fake.settle()

    assert woken == []


def test_issued_push_certificate_is_signed_by_simulator_ca() -> None:
    csr_pem, _ = generate_push_csr(common_name="sim")

    certificate = x509.load_pem_x509_certificate(issue_push_certificate(csr_pem, topic=TOPIC, days=30))

    certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(simulator_ca_pem()))
    assert certificate.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == TOPIC
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.public_key() == x509.load_pem_x509_csr(csr_pem).public_key()


def test_issue_push_certificate_refuses_nonpositive_days() -> None:
    csr_pem, _ = generate_push_csr(common_name="sim")

    with pytest.raises(ValueError):
        issue_push_certificate(csr_pem, days=0)


# --- serve_fake_apns and its HTTP/2 server, over real TLS sockets ---------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> Path:
    certificate, key = issue_server_certificate("127.0.0.1")
    for name, content in {"server.crt": certificate, "server.key": key, "ca.crt": simulator_ca_pem()}.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


def server_context(tls_files: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "server.crt", tls_files / "server.key")
    context.set_alpn_protocols(["h2"])
    return context


async def test_served_over_http2_with_the_same_answers(fake: FakeApns, tls_files: Path) -> None:
    serving = serve_fake_apns(fake, certfile=str(tls_files / "server.crt"), keyfile=str(tls_files / "server.key"))
    verify = ssl.create_default_context(cafile=str(tls_files / "ca.crt"))
    async with serving as base_url, httpx.AsyncClient(base_url=base_url, verify=verify, http1=False, http2=True) as h:
        delivered = await post(h)
        # Larger than the initial flow-control window: the server must keep acknowledging data.
        too_large = await post(h, body=b'{"mdm":"' + b"x" * 100_000 + b'"}')
        wrong_method = await h.get(push_request()[0])

    assert (delivered.http_version, delivered.status_code) == ("HTTP/2", 200)
    assert reason_of(too_large) == (413, "PayloadTooLarge")
    assert reason_of(wrong_method) == (405, "MethodNotAllowed")
    assert [push.http_version for push in fake.pushes] == ["2"]


async def test_clients_without_http2_are_refused(fake: FakeApns, tls_files: Path) -> None:
    serving = serve_fake_apns(fake, certfile=str(tls_files / "server.crt"), keyfile=str(tls_files / "server.key"))
    verify = ssl.create_default_context(cafile=str(tls_files / "ca.crt"))
    async with serving as base_url, httpx.AsyncClient(base_url=base_url, verify=verify) as http1_only:
        with pytest.raises(httpx.TransportError):
            await post(http1_only)

    assert fake.pushes == []


async def test_h2_server_answers_500_when_its_handler_fails(tls_files: Path, caplog: pytest.LogCaptureFixture) -> None:
    def broken(request: H2Request) -> H2Reply:
        raise RuntimeError("bug")

    verify = ssl.create_default_context(cafile=str(tls_files / "ca.crt"))
    async with (
        serve_h2(broken, server_context(tls_files)) as port,
        httpx.AsyncClient(verify=verify, http1=False, http2=True) as http,
    ):
        response = await http.post(f"https://127.0.0.1:{port}/x", content=b"body")

    assert response.status_code == 500
    assert "handler failed for POST /x" in caplog.text


async def test_h2_server_sends_large_replies_within_flow_control(tls_files: Path) -> None:
    seen: list[H2Request] = []

    def large(request: H2Request) -> H2Reply:
        seen.append(request)
        return H2Reply(200, [(b"content-type", b"application/octet-stream")], bytes(range(256)) * 1000)

    verify = ssl.create_default_context(cafile=str(tls_files / "ca.crt"))
    async with (
        serve_h2(large, server_context(tls_files), max_body_bytes=10) as port,
        httpx.AsyncClient(verify=verify, http1=False, http2=True) as http,
    ):
        response = await http.put(f"https://127.0.0.1:{port}/big?q=1", headers={"x-a": "1"}, content=b"0123456789abc")

    assert response.content == bytes(range(256)) * 1000
    [request] = seen
    assert (request.method, request.path, request.body) == ("PUT", "/big?q=1", b"0123456789a")  # limit + 1 byte
    assert (b"x-a", b"1") in request.headers
    assert all(not name.startswith(b":") for name, _ in request.headers)


async def test_h2_server_survives_a_request_reset_as_soon_as_sent(fake: FakeApns, tls_files: Path) -> None:
    serving = serve_fake_apns(fake, certfile=str(tls_files / "server.crt"), keyfile=str(tls_files / "server.key"))
    verify = ssl.create_default_context(cafile=str(tls_files / "ca.crt"))
    verify.set_alpn_protocols(["h2"])
    path, headers, body = push_request()
    async with serving as base_url:
        connection = await open_h2_connection("127.0.0.1", int(base_url.rsplit(":", 1)[1]), verify)
        abandoned = asyncio.ensure_future(connection.request("POST", path, list(headers.items()), body))
        await asyncio.sleep(0)  # the request is queued; its RST_STREAM joins it in the same write
        abandoned.cancel()
        follow_up = await connection.request("POST", path, list(headers.items()), body)
        await connection.aclose()

    assert abandoned.cancelled()
    assert follow_up.status == 200
