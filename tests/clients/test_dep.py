import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from muster import __version__
from muster.clients.dep import DepClient
from muster.pki.certs import generate_rsa_key, self_signed_certificate
from muster.protocols.apple.dep import AssignmentStatus, DepProfile, ProfileRejected
from muster.protocols.apple.dep_errors import (
    DepAuthError,
    DepBadResponse,
    DepCursorExhausted,
    DepCursorExpired,
    DepRequestError,
    DepTermsNotSigned,
    DepUnavailable,
)
from muster.protocols.apple.dep_token import DepCredentials, parse_server_token
from muster.simulators.abm import FakeAbm, serve_fake_abm
from muster.simulators.abm_fleet import ServerHandle

BASE_URL = "https://mdmenrollment.apple.com"
PROFILE = DepProfile(profile_name="Corporate", url="https://mdm.example.com/ade/enroll", is_supervised=True)


@functools.cache
def server_identity() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = generate_rsa_key()
    return self_signed_certificate(key, "muster dep client", days=365), key


class Sleeps:
    """Stands in for asyncio.sleep: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def abm() -> FakeAbm:
    return FakeAbm()


@pytest.fixture
def server(abm: FakeAbm) -> ServerHandle:
    return abm.add_server("Muster", server_identity()[0])


def credentials_of(server: ServerHandle) -> DepCredentials:
    certificate, key = server_identity()
    return parse_server_token(server.download_token(), certificate=certificate, key=key)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(abm: FakeAbm, credentials: DepCredentials, sleeps: Sleeps, **options: object) -> DepClient:
    return DepClient(
        base_url=BASE_URL,
        credentials=credentials,
        transport=httpx.ASGITransport(app=abm),
        sleep=sleeps,
        clock=abm.now,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(abm: FakeAbm, server: ServerHandle, sleeps: Sleeps) -> AsyncIterator[DepClient]:
    async with make_client(abm, credentials_of(server), sleeps) as client:
        yield client


def calls_to(abm: FakeAbm, path: str) -> list[str]:
    return [call.method for call in abm.calls if call.path == path]


async def fetch_all(client: DepClient) -> tuple[list[str], str]:
    serials: list[str] = []
    cursor = None
    while True:
        page = await client.fetch_devices(cursor)
        serials += [device.serial_number for device in page.devices]
        cursor = page.cursor
        if not page.more_to_follow:
            return serials, cursor


# --- sessions and headers ---------------------------------------------------------------------------------


async def test_one_session_serves_many_calls_with_apples_headers(abm: FakeAbm, client: DepClient) -> None:
    account = await client.account()
    await client.account()

    assert account.server_name == "Muster" and account.org_id == abm.org_id
    assert [call.path for call in abm.calls] == ["/session", "/account", "/account"]
    for call in abm.calls:
        assert call.headers["user-agent"] == f"muster/{__version__}"
        assert call.headers["x-server-protocol-version"] == "7"
    session, first, second = abm.calls
    assert session.headers["authorization"].startswith('OAuth realm="ADM", oauth_consumer_key="CK_')
    assert first.headers["x-adm-auth-session"] == second.headers["x-adm-auth-session"]


async def test_expired_session_is_renewed_once_transparently(abm: FakeAbm, client: DepClient) -> None:
    await client.account()
    abm.advance(abm.session_lifetime + timedelta(seconds=1))

    await client.account()

    assert [(call.path, call.status) for call in abm.calls] == [
        ("/session", 200),
        ("/account", 200),
        ("/account", 401),
        ("/session", 200),
        ("/account", 200),
    ]


async def test_depsim_forbidden_also_renews_the_session(abm: FakeAbm, client: DepClient) -> None:
    await client.account()
    abm.stale_session_status = 403
    abm.expire_sessions()

    await client.account()

    assert calls_to(abm, "/session") == ["GET", "GET"]


async def test_session_handed_out_in_a_response_is_used_next(abm: FakeAbm, client: DepClient) -> None:
    await client.account()
    abm.advance(abm.session_lifetime / 2)
    await client.account()
    await client.account()

    sent = [call.headers["x-adm-auth-session"] for call in abm.calls if call.path == "/account"]
    assert sent[0] == sent[1] != sent[2]
    assert calls_to(abm, "/session") == ["GET"]


async def test_terms_not_signed_is_reported_with_apples_code(server: ServerHandle, client: DepClient) -> None:
    server.terms_signed = False

    with pytest.raises(DepTermsNotSigned) as raised:
        await client.account()
    assert (raised.value.status, raised.value.code) == (403, "T_C_NOT_SIGNED")


async def test_expired_token_is_an_auth_error(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    abm.expire_token(server)

    with pytest.raises(DepAuthError) as raised:
        await client.account()
    assert raised.value.status == 401


async def test_downloading_a_new_token_cuts_off_the_old_one(
    abm: FakeAbm, server: ServerHandle, client: DepClient, sleeps: Sleeps
) -> None:
    await client.account()
    renewed = credentials_of(server)

    with pytest.raises(DepAuthError):
        await client.account()
    async with make_client(abm, renewed, sleeps) as fresh:
        assert (await fresh.account()).server_uuid == server.server_uuid


async def test_access_denied_is_an_auth_error(server: ServerHandle, client: DepClient) -> None:
    server.access_denied = True

    with pytest.raises(DepAuthError) as raised:
        await client.account()
    assert raised.value.code == "ACCESS_DENIED"


# --- retries ------------------------------------------------------------------------------------------------


async def test_throttling_is_retried_after_retry_after(abm: FakeAbm, client: DepClient, sleeps: Sleeps) -> None:
    await client.account()
    abm.fail_next(2, 429, retry_after=3)

    await client.account()

    assert len(sleeps.delays) == 2 and all(delay >= 3 for delay in sleeps.delays)
    assert [call.status for call in abm.calls if call.path == "/account"] == [200, 429, 429, 200]


async def test_unavailable_gives_up_after_max_attempts(abm: FakeAbm, server: ServerHandle, sleeps: Sleeps) -> None:
    abm.fail_next(10, 503)

    async with make_client(abm, credentials_of(server), sleeps, max_attempts=3) as client:
        with pytest.raises(DepUnavailable) as raised:
            await client.account()

    assert raised.value.status == 503
    assert len(abm.calls) == 3 and len(sleeps.delays) == 2
    assert sleeps.delays[1] > sleeps.delays[0] * 0.5  # exponential back-off, jittered


async def test_long_retry_after_is_left_to_the_caller(abm: FakeAbm, client: DepClient, sleeps: Sleeps) -> None:
    abm.fail_next(1, 503, retry_after=3600)

    with pytest.raises(DepUnavailable) as raised:
        await client.account()

    assert raised.value.retry_after == 3600
    assert sleeps.delays == []


async def test_unreachable_apple_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    credentials = DepCredentials("CK", "CS", "AT", "AS", FakeAbm().now() + timedelta(days=1))
    async with DepClient(credentials=credentials, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(DepUnavailable, match="ConnectError"):
            await client.account()


async def test_garbled_answer_is_a_bad_response() -> None:
    def garble(request: httpx.Request) -> httpx.Response:
        body = b'{"auth_session_token":"s1"}' if request.url.path == "/session" else b'{"devices": 3}'
        return httpx.Response(200, content=body)

    credentials = DepCredentials("CK", "CS", "AT", "AS", FakeAbm().now() + timedelta(days=1))
    async with DepClient(credentials=credentials, transport=httpx.MockTransport(garble)) as client:
        with pytest.raises(DepBadResponse, match="devices must be a list"):
            await client.fetch_devices()


# --- devices ------------------------------------------------------------------------------------------------


async def test_fetch_pages_through_the_fleet_then_sync_reports_changes(
    abm: FakeAbm, server: ServerHandle, client: DepClient
) -> None:
    fleet = abm.seed_devices(server, 2_500)

    serials, cursor = await fetch_all(client)
    abm.unassign(fleet[:2])
    abm.assign(server, ["NEWSERIAL001"], family="Mac")
    changes = await client.sync_devices(cursor)

    assert serials == fleet
    assert len(calls_to(abm, "/server/devices")) == 3
    assert [(device.serial_number, device.op_type) for device in changes.devices] == [
        (fleet[0], "deleted"),
        (fleet[1], "deleted"),
        ("NEWSERIAL001", "added"),
    ]
    assert changes.devices[2].device_family == "Mac" and not changes.more_to_follow
    assert (await client.sync_devices(changes.cursor)).devices == ()


async def test_finished_fetch_cursor_is_exhausted(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    abm.seed_devices(server, 10)
    _, cursor = await fetch_all(client)

    with pytest.raises(DepCursorExhausted) as raised:
        await client.fetch_devices(cursor)
    assert raised.value.code == "EXHAUSTED_CURSOR"


async def test_week_old_cursor_expires(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    abm.seed_devices(server, 10)
    _, cursor = await fetch_all(client)
    abm.advance(timedelta(days=7, seconds=1))

    with pytest.raises(DepCursorExpired) as raised:
        await client.sync_devices(cursor)
    assert raised.value.code == "EXPIRED_CURSOR"


async def test_invalid_cursor_means_fetch_again(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    _, cursor = await fetch_all(client)
    abm.invalidate_cursors(server)

    with pytest.raises(DepCursorExpired) as raised:
        await client.sync_devices(cursor)
    assert raised.value.code == "INVALID_CURSOR"


async def test_device_details(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    [serial] = abm.seed_devices(server, 1, families=["iPad"])

    details = await client.device_details([serial, "NOTMINE00001"])

    assert (details[serial].device_family, details[serial].response_status) == ("iPad", "SUCCESS")
    assert details["NOTMINE00001"].response_status == "NOT_ACCESSIBLE"


# --- profiles -----------------------------------------------------------------------------------------------


async def test_define_get_and_assign_in_chunks(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    fleet = abm.seed_devices(server, 2_500)
    abm.fail_assignment([fleet[7]])

    profile_uuid, defined = await client.define_profile(PROFILE)
    result = await client.assign_profile(profile_uuid, [*fleet, "NOTMINE00001"])

    assert defined == {}
    assert (await client.get_profile(profile_uuid)) == replace(PROFILE, profile_uuid=profile_uuid)
    assert calls_to(abm, "/profile/devices") == ["POST", "POST", "POST"]
    assert len(result.devices) == 2_501
    assert result.serials_with(AssignmentStatus.FAILED) == [fleet[7]]
    assert result.serials_with(AssignmentStatus.NOT_ACCESSIBLE) == ["NOTMINE00001"]
    assert abm.device(fleet[0])["profile_uuid"] == profile_uuid  # type: ignore[index]


async def test_define_with_more_than_a_thousand_devices(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    fleet = abm.seed_devices(server, 1_200)

    profile_uuid, devices = await client.define_profile(replace(PROFILE, devices=tuple(fleet)))

    assert set(devices) == set(fleet) and set(devices.values()) == {"SUCCESS"}
    assert calls_to(abm, "/profile") == ["POST"] and calls_to(abm, "/profile/devices") == ["POST"]
    assert abm.device(fleet[-1])["profile_uuid"] == profile_uuid  # type: ignore[index]


async def test_invalid_profile_is_refused_before_calling_apple(abm: FakeAbm, client: DepClient) -> None:
    with pytest.raises(ProfileRejected) as rejected:
        await client.define_profile(DepProfile(profile_name="x", url="https://e.com", is_mdm_removable=False))

    assert rejected.value.codes == ("FLAGS_INVALID",)
    assert list(abm.calls) == []


async def test_unknown_profile_is_a_request_error(client: DepClient) -> None:
    with pytest.raises(DepRequestError) as raised:
        await client.get_profile("0" * 32)
    assert raised.value.status == 404


async def test_throttled_serials_are_retried_after_apples_delay(
    abm: FakeAbm, server: ServerHandle, sleeps: Sleeps
) -> None:
    fleet = abm.seed_devices(server, 3)
    abm.fail_assignment(fleet[:1], AssignmentStatus.THROTTLED, times=1, retry_after=7)

    async with make_client(abm, credentials_of(server), sleeps, protocol_version=10) as client:
        profile_uuid, _ = await client.define_profile(PROFILE)
        result = await client.assign_profile(profile_uuid, fleet)

    assert result.all_succeeded and result.retry_after_seconds is None
    assert len(sleeps.delays) == 1 and sleeps.delays[0] >= 7
    assert calls_to(abm, "/profile/devices") == ["POST", "POST"]


async def test_still_throttled_serials_are_returned_with_the_delay(
    abm: FakeAbm, server: ServerHandle, sleeps: Sleeps
) -> None:
    fleet = abm.seed_devices(server, 2)
    abm.fail_assignment(fleet[:1], AssignmentStatus.THROTTLED, retry_after=600)

    async with make_client(abm, credentials_of(server), sleeps, protocol_version=10) as client:
        profile_uuid, _ = await client.define_profile(PROFILE)
        result = await client.assign_profile(profile_uuid, fleet)

    assert result.serials_with(AssignmentStatus.THROTTLED) == fleet[:1]
    assert result.retry_after_seconds == 600 and sleeps.delays == []


async def test_remove_profile_and_disown(abm: FakeAbm, server: ServerHandle, client: DepClient) -> None:
    fleet = abm.seed_devices(server, 3)
    profile_uuid, _ = await client.define_profile(replace(PROFILE, devices=tuple(fleet)))

    removed = await client.remove_profile([fleet[0], "NOTMINE00001"])
    disowned = await client.disown([fleet[1]])

    assert removed == {fleet[0]: "SUCCESS", "NOTMINE00001": "NOT_ACCESSIBLE"}
    assert abm.device(fleet[0])["profile_status"] == "removed"  # type: ignore[index]
    assert disowned == {fleet[1]: "SUCCESS"} and abm.device(fleet[1]) is None
    assert abm.device(fleet[2])["profile_uuid"] == profile_uuid  # type: ignore[index]


async def test_secrets_never_reach_the_logs(
    abm: FakeAbm, server: ServerHandle, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = credentials_of(server)
    abm.seed_devices(server, 5)
    abm.fail_next(1, 503)
    caplog.set_level(logging.DEBUG)

    async with make_client(abm, credentials, sleeps) as client:
        await fetch_all(client)

    assert caplog.records
    for secret in (credentials.consumer_secret, credentials.access_secret, credentials.access_token):
        assert secret not in caplog.text


async def test_over_a_real_socket(abm: FakeAbm, server: ServerHandle) -> None:
    fleet = abm.seed_devices(server, 1_100)
    credentials = credentials_of(server)

    async with serve_fake_abm(abm) as base_url, DepClient(base_url=base_url, credentials=credentials) as client:
        serials, _ = await fetch_all(client)
        account = await client.account()

    assert base_url.startswith("http://127.0.0.1:")
    assert serials == fleet and account.server_uuid == server.server_uuid
