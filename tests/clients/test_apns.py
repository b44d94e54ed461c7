import asyncio
import ssl
from collections.abc import MutableMapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from muster.clients.apns import ApnsClient, client_ssl_context
from muster.pki.push_certificate import generate_push_csr
from muster.protocols.apple.apns import PushOutcome, PushTarget, build_push
from muster.simulators.apns import (
    FakeApns,
    issue_push_certificate,
    issue_server_certificate,
    serve_fake_apns,
    simulator_ca_pem,
)

TOPIC = "com.apple.mgmt.External.0b6f0e8e-2d1c-4b61-9a59-5b0d1d3c8e11"


@pytest.fixture(scope="module")
def push_credentials() -> tuple[bytes, bytes]:
    csr_pem, key_pem = generate_push_csr(common_name="Muster test push")
    return issue_push_certificate(csr_pem, topic=TOPIC), key_pem


def target(n: int, magic: str = "magic", topic: str = TOPIC) -> PushTarget:
    return PushTarget(token=n.to_bytes(32, "big"), push_magic=f"{magic}-{n}", topic=topic)


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def asgi_client(
    fake: FakeApns,
    credentials: tuple[bytes, bytes],
    sleep: RecordingSleep,
    *,
    max_attempts: int = 4,
    backoff_base: float = 0.2,
) -> ApnsClient:
    return ApnsClient(
        certificate_pem=credentials[0],
        key_pem=credentials[1],
        transport=httpx.ASGITransport(app=fake),
        sleep=sleep,
        max_attempts=max_attempts,
        backoff_base=backoff_base,
    )


async def test_pushes_every_target_once(push_credentials: tuple[bytes, bytes]) -> None:
    fake = FakeApns(topic=TOPIC)
    async with asgi_client(fake, push_credentials, RecordingSleep()) as client:
        results = await client.push_many([target(n) for n in range(50)])

    assert [r.outcome for r in results] == [PushOutcome.DELIVERED] * 50
    assert [r.target for r in results] == [target(n) for n in range(50)]
    assert all(r.status == 200 and r.apns_id for r in results)
    assert sorted(p.push_magic for p in fake.pushes) == sorted(f"magic-{n}" for n in range(50))


async def test_duplicate_tokens_are_coalesced_latest_wins(push_credentials: tuple[bytes, bytes]) -> None:
    fake = FakeApns(topic=TOPIC)
    targets = [target(1, "old"), target(2), target(1, "new"), target(1, "newest")]
    async with asgi_client(fake, push_credentials, RecordingSleep()) as client:
        results = await client.push_many(targets)

    assert [r.target for r in results] == [target(1, "newest"), target(2)]
    assert fake.count_for(target(1).token_hex) == 1
    assert [p.push_magic for p in fake.pushes if p.token_hex == target(1).token_hex] == ["newest-1"]


class InFlightCounter:
    """Wraps an ASGI app and records the most requests it ever had in progress at once."""

    def __init__(self, app: FakeApns) -> None:
        self.app, self.in_flight, self.peak = app, 0, 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        for _ in range(3):
            await asyncio.sleep(0)  # let the other workers start their requests
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def test_pushes_run_concurrently_up_to_the_limit(push_credentials: tuple[bytes, bytes]) -> None:
    fake = FakeApns(topic=TOPIC)
    counter = InFlightCounter(fake)
    client = ApnsClient(
        certificate_pem=push_credentials[0],
        key_pem=push_credentials[1],
        transport=httpx.ASGITransport(app=counter),
        max_concurrency=3,
    )
    async with client:
        results = await client.push_many([target(n) for n in range(20)])

    assert counter.peak == 3
    assert len(fake.pushes) == len(results) == 20


@pytest.mark.parametrize("status", [429, 503])
async def test_transient_failures_retried_with_backoff(push_credentials: tuple[bytes, bytes], status: int) -> None:
    fake, sleep = FakeApns(topic=TOPIC), RecordingSleep()
    if status == 429:
        fake.throttle(target(7).token_hex, times=2)
    else:
        fake.fail_next(2, status=503)
    async with asgi_client(fake, push_credentials, sleep, backoff_base=1.0) as client:
        [result] = await client.push_many([target(7)])

    assert result.outcome is PushOutcome.DELIVERED
    assert fake.count_for(target(7).token_hex) == 1
    assert len(sleep.delays) == 2
    assert 0.5 <= sleep.delays[0] <= 1.5
    assert 1.0 <= sleep.delays[1] <= 3.0


async def test_retries_stop_after_max_attempts(push_credentials: tuple[bytes, bytes]) -> None:
    fake, sleep = FakeApns(topic=TOPIC), RecordingSleep()
    fake.fail_next(10, status=500)
    async with asgi_client(fake, push_credentials, sleep, max_attempts=3) as client:
        [result] = await client.push_many([target(1)])

    assert (result.outcome, result.status, result.reason) == (PushOutcome.RETRY, 500, "InternalServerError")
    assert len(sleep.delays) == 2
    assert fake.count_for(target(1).token_hex) == 0


async def test_unregistered_token_is_not_retried(push_credentials: tuple[bytes, bytes]) -> None:
    fake, sleep = FakeApns(topic=TOPIC), RecordingSleep()
    fake.fail_token(target(3).token_hex)
    async with asgi_client(fake, push_credentials, sleep) as client:
        results = await client.push_many([target(3), target(4)])

    assert [(r.outcome, r.status, r.reason) for r in results] == [
        (PushOutcome.UNREGISTERED, 410, "Unregistered"),
        (PushOutcome.DELIVERED, 200, None),
    ]
    assert sleep.delays == []


async def test_bad_topic_is_rejected_without_retry(push_credentials: tuple[bytes, bytes]) -> None:
    fake, sleep = FakeApns(topic=TOPIC), RecordingSleep()
    async with asgi_client(fake, push_credentials, sleep) as client:
        [foreign, app_topic] = await client.push_many(
            [target(1, topic="com.apple.mgmt.External.other"), target(2, topic="com.example.app")]
        )

    assert (foreign.outcome, foreign.reason) == (PushOutcome.REJECTED, "DeviceTokenNotForTopic")
    assert (app_topic.outcome, app_topic.reason) == (PushOutcome.REJECTED, "BadTopic")
    assert sleep.delays == []
    assert fake.pushes == []


async def test_connection_errors_are_results_not_exceptions(push_credentials: tuple[bytes, bytes]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sleep = RecordingSleep()
    client = ApnsClient(
        certificate_pem=push_credentials[0],
        key_pem=push_credentials[1],
        transport=httpx.MockTransport(refuse),
        sleep=sleep,
        max_attempts=2,
    )
    async with client:
        [result] = await client.push_many([target(1)])

    assert (result.outcome, result.status, result.reason) == (PushOutcome.RETRY, None, "ConnectError")
    assert len(sleep.delays) == 1


async def test_oversized_push_magic_is_a_result_not_an_exception(push_credentials: tuple[bytes, bytes]) -> None:
    fake = FakeApns(topic=TOPIC)
    oversized = PushTarget(token=b"\x01" * 32, push_magic="x" * 5000, topic=TOPIC)
    async with asgi_client(fake, push_credentials, RecordingSleep()) as client:
        [result, fine] = await client.push_many([oversized, target(2)])

    assert (result.outcome, result.reason) == (PushOutcome.REJECTED, "PayloadTooLarge")
    assert fine.outcome is PushOutcome.DELIVERED


def test_mismatched_certificate_and_key_refused(push_credentials: tuple[bytes, bytes]) -> None:
    _, other_key = generate_push_csr(common_name="other")

    with pytest.raises(ValueError, match="do not match"):
        ApnsClient(certificate_pem=push_credentials[0], key_pem=other_key)


# --- over a real TLS socket: the HTTP/2 connection of muster.clients.h2_connection ---------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> Path:
    server_cert, server_key = issue_server_certificate("127.0.0.1")
    files = {"server.crt": server_cert, "server.key": server_key, "ca.crt": simulator_ca_pem()}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


def serve(fake: FakeApns, tls_files: Path, port: int = 0) -> AbstractAsyncContextManager[str]:
    return serve_fake_apns(
        fake,
        port=port,
        certfile=str(tls_files / "server.crt"),
        keyfile=str(tls_files / "server.key"),
        client_ca_file=str(tls_files / "ca.crt"),
    )


def socket_client(
    base_url: str,
    credentials: tuple[bytes, bytes],
    tls_files: Path,
    sleep: RecordingSleep,
    *,
    max_concurrency: int = 64,
    max_attempts: int = 4,
) -> ApnsClient:
    return ApnsClient(
        base_url=base_url,
        certificate_pem=credentials[0],
        key_pem=credentials[1],
        verify=str(tls_files / "ca.crt"),
        sleep=sleep,
        max_concurrency=max_concurrency,
        max_attempts=max_attempts,
    )


async def test_retries_and_outcomes_over_a_real_connection(
    push_credentials: tuple[bytes, bytes], tls_files: Path
) -> None:
    fake, sleep = FakeApns(topic=TOPIC), RecordingSleep()
    fake.fail_next(2, status=503)
    fake.fail_token(target(3).token_hex)
    async with (
        serve(fake, tls_files) as base_url,
        socket_client(base_url, push_credentials, tls_files, sleep, max_concurrency=2) as client,
    ):
        results = await client.push_many([target(n) for n in range(1, 6)])

    assert [r.outcome for r in results] == [PushOutcome.DELIVERED] * 2 + [PushOutcome.UNREGISTERED] + [
        PushOutcome.DELIVERED
    ] * 2
    assert results[2].reason == "Unregistered"
    assert len(sleep.delays) == 2
    assert sorted(p.token_hex for p in fake.pushes) == sorted(target(n).token_hex for n in (1, 2, 4, 5))


async def test_reconnects_after_apns_goes_away(push_credentials: tuple[bytes, bytes], tls_files: Path) -> None:
    first, second, sleep = FakeApns(topic=TOPIC), FakeApns(topic=TOPIC), RecordingSleep()
    async with serve(first, tls_files) as base_url:
        client = socket_client(base_url, push_credentials, tls_files, sleep)
        before = await client.push_many([target(1)])
    port = int(base_url.rsplit(":", 1)[1])
    async with serve(second, tls_files, port=port), client:  # GOAWAY and close came in between
        after = await client.push_many([target(2)])

    assert [r.outcome for r in before + after] == [PushOutcome.DELIVERED] * 2
    assert [p.token_hex for p in second.pushes] == [target(2).token_hex]


async def test_unreachable_apns_is_a_retry_result(
    push_credentials: tuple[bytes, bytes], tls_files: Path, unused_tcp_port: int
) -> None:
    sleep = RecordingSleep()
    base_url = f"https://127.0.0.1:{unused_tcp_port}"
    async with socket_client(base_url, push_credentials, tls_files, sleep, max_attempts=3) as client:
        [result] = await client.push_many([target(1)])

    assert (result.outcome, result.status, result.reason) == (PushOutcome.RETRY, None, "ConnectError")
    assert len(sleep.delays) == 2


async def test_topic_http2_cannot_carry_is_rejected(push_credentials: tuple[bytes, bytes], tls_files: Path) -> None:
    fake, sleep = FakeApns(topic=TOPIC), RecordingSleep()
    async with (
        serve(fake, tls_files) as base_url,
        socket_client(base_url, push_credentials, tls_files, sleep) as client,
    ):
        [bad, good] = await client.push_many([target(1, topic=TOPIC + "\r\nx-evil: 1"), target(2)])

    assert (bad.outcome, bad.reason) == (PushOutcome.REJECTED, "BadTopic")
    assert good.outcome is PushOutcome.DELIVERED
    assert sleep.delays == []


def test_base_url_must_be_https(push_credentials: tuple[bytes, bytes]) -> None:
    with pytest.raises(ValueError, match="https"):
        ApnsClient(base_url="http://127.0.0.1:1", certificate_pem=push_credentials[0], key_pem=push_credentials[1])


async def test_mutual_tls_over_real_http2(push_credentials: tuple[bytes, bytes], tls_files: Path) -> None:
    ca_file = str(tls_files / "ca.crt")
    fake = FakeApns(topic=TOPIC)
    certificate_pem, key_pem = push_credentials
    async with serve(fake, tls_files) as base_url:
        async with socket_client(base_url, push_credentials, tls_files, RecordingSleep()) as client:
            results = await client.push_many([target(n) for n in range(20)])
        path, headers, body = build_push(target(99))
        with_certificate = client_ssl_context(certificate_pem, key_pem, ca_file)
        async with httpx.AsyncClient(base_url=base_url, verify=with_certificate, http2=True) as direct:
            response = await direct.post(path, headers=headers, content=body)
        anonymous = ssl.create_default_context(cafile=ca_file)
        async with httpx.AsyncClient(base_url=base_url, verify=anonymous, http2=True) as direct:
            with pytest.raises(httpx.TransportError):
                await direct.post(path, headers=headers, content=body)

    assert (response.http_version, response.status_code) == ("HTTP/2", 200)
    assert [r.outcome for r in results] == [PushOutcome.DELIVERED] * 20
    assert {p.http_version for p in fake.pushes} == {"2"}
    assert len(fake.pushes) == 21
