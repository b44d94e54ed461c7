import asyncio
import functools
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.pki.certs import certificate_pem, generate_rsa_key, self_signed_certificate
from muster.protocols.apple import dep, dep_token
from muster.protocols.apple.dep import AssignmentStatus
from muster.protocols.apple.dep_token import DepCredentials
from muster.simulators.abm import FakeAbm
from muster.simulators.abm_fleet import ServerHandle

BASE_URL = "https://abm.test"
PROFILE = {"profile_name": "Corporate", "url": "https://mdm.example.com/ade/enroll", "is_supervised": True}


@functools.cache
def server_identity() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = generate_rsa_key()
    return self_signed_certificate(key, "fake abm tests", days=365), key


class AppleApi:
    """Raw DEP requests against a FakeAbm, signed and shaped as a client would send them."""

    def __init__(self, abm: FakeAbm, http: httpx.AsyncClient, credentials: DepCredentials, version: int = 7) -> None:
        self.abm = abm
        self.http = http
        self.credentials = credentials
        self.version = version
        self.session: str | None = None
        self.nonces = 0

    def session_headers(self, nonce: str | None = None) -> dict[str, str]:
        self.nonces += 1
        authorization = dep_token.oauth_authorization_header(
            self.credentials,
            method="GET",
            url=f"{BASE_URL}/session",
            nonce=nonce or f"nonce-{self.nonces}",
            timestamp=int(self.abm.now().timestamp()),
        )
        return {"Authorization": authorization, "X-Server-Protocol-Version": str(self.version)}

    async def open_session(self) -> str:
        response = await self.http.get("/session", headers=self.session_headers())
        assert response.status_code == 200, response.text
        self.session = dep_token.decode_session(response.content)
        return self.session

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        if self.session is None:
            await self.open_session()
        headers = {"X-ADM-Auth-Session": self.session or "", "X-Server-Protocol-Version": str(self.version)}
        content = None if body is None else (body if isinstance(body, bytes) else dep.encode_json(body))
        return await self.http.request(method, path, content=content, params=params, headers=headers)

    async def ok(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        response = await self.call(method, path, body, params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == dep.MEDIA_TYPE
        return json.loads(response.content)

    async def refused(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, str]:
        response = await self.call(method, path, body, params)
        return response.status_code, response.text

    async def page(self, path: str, cursor: str | None, limit: int) -> dep.FetchPage:
        request = {"limit": limit} if cursor is None else {"cursor": cursor, "limit": limit}
        return dep.decode_fetch_page(dep.encode_json(await self.ok("POST", path, request)))

    async def fetch_all(self, limit: int = 1000) -> tuple[list[str], str]:
        serials: list[str] = []
        cursor = None
        while True:
            page = await self.page("/server/devices", cursor, limit)
            serials += [device.serial_number for device in page.devices]
            cursor = page.cursor
            if not page.more_to_follow:
                return serials, cursor

    async def sync_all(self, cursor: str, limit: int = 1000) -> tuple[list[dep.DepDevice], str]:
        devices: list[dep.DepDevice] = []
        while True:
            page = await self.page("/devices/sync", cursor, limit)
            devices += page.devices
            cursor = page.cursor
            if not page.more_to_follow:
                return devices, cursor


@pytest.fixture
def abm() -> FakeAbm:
    return FakeAbm()


@pytest.fixture
def server(abm: FakeAbm) -> ServerHandle:
    server = abm.add_server("Muster", certificate_pem(server_identity()[0]))
    server.download_token()
    return server


@pytest.fixture
async def apple(abm: FakeAbm, server: ServerHandle) -> AsyncIterator[AppleApi]:
    transport = httpx.ASGITransport(app=abm)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers={"User-Agent": "tests"}) as http:
        assert server.credentials is not None
        yield AppleApi(abm, http, server.credentials)


# --- the administrator's side ---------------------------------------------------------------------------


def test_downloaded_token_decrypts_with_the_uploaded_certificate(abm: FakeAbm) -> None:
    certificate, key = server_identity()
    server = abm.add_server("Muster")
    with pytest.raises(ValueError, match="certificate"):
        server.download_token()
    server.upload_certificate(certificate)

    for cipher in ("aes128", "des3"):
        token = server.download_token(cipher=cipher)
        assert dep_token.parse_server_token(token, certificate=certificate, key=key) == server.credentials
    assert server.credentials is not None
    assert server.credentials.access_token_expiry == (abm.now() + timedelta(days=365)).replace(microsecond=0)


def test_seeding_is_deterministic_and_handles_large_fleets() -> None:
    first, second = FakeAbm(), FakeAbm()

    serials = first.seed_devices(first.add_server("a"), 200_000, seed=7)
    again = second.seed_devices(second.add_server("b"), 200_000, seed=7)

    assert serials == again and len(set(serials)) == 200_000
    assert first.servers[0].device_count == 200_000
    assert {first.device(serial)["device_family"] for serial in serials[:3]} == {"iPhone", "iPad", "Mac"}  # type: ignore[index]


def test_reassigning_moves_a_device_between_servers(abm: FakeAbm) -> None:
    one, two = abm.add_server("one"), abm.add_server("two")
    [serial] = abm.seed_devices(one, 1, families=["AppleTV"])

    abm.assign(two, [serial])

    assert abm.server_of(serial) is two and not one.has(serial)
    assert abm.device(serial)["device_family"] == "AppleTV"  # type: ignore[index]
    abm.release([serial])
    assert abm.server_of(serial) is None and abm.device(serial) is None


# --- sessions and the HTTP envelope -----------------------------------------------------------------------


async def test_session_needs_a_valid_oauth_signature(apple: AppleApi, server: ServerHandle) -> None:
    good = apple.session_headers(nonce="once")
    forged = {**good, "Authorization": good["Authorization"].replace('oauth_nonce="once"', 'oauth_nonce="twice"')}

    assert (await apple.http.get("/session", headers=good)).status_code == 200
    assert (await apple.http.get("/session", headers=good)).status_code == 401  # the nonce is spent
    assert (await apple.http.get("/session", headers=forged)).status_code == 401
    assert (await apple.http.get("/session")).status_code == 400
    assert (await apple.http.post("/session", headers=apple.session_headers())).status_code == 405


async def test_requests_without_a_valid_session_are_unauthorized(abm: FakeAbm, apple: AppleApi) -> None:
    apple.session = "not-a-session"
    assert await apple.refused("GET", "/account") == (401, "UNAUTHORIZED")

    abm.stale_session_status = 403
    assert await apple.refused("GET", "/account") == (403, "FORBIDDEN")


async def test_missing_user_agent_is_refused(apple: AppleApi) -> None:
    request = apple.http.build_request("GET", "/account")
    del request.headers["User-Agent"]

    response = await apple.http.send(request)

    assert (response.status_code, response.text) == (400, "USER_AGENT_MISSING")
    assert response.headers["content-type"] == "text/plain;charset=UTF8"


async def test_unknown_paths_and_methods(apple: AppleApi) -> None:
    assert (await apple.refused("GET", "/nothing"))[0] == 404
    assert (await apple.refused("DELETE", "/account"))[0] == 405


async def test_oversized_body_is_refused(apple: AppleApi) -> None:
    assert (await apple.refused("POST", "/devices", b"x" * (dep.MAX_JSON_BYTES + 1)))[0] == 413


async def test_standing_of_the_account_is_checked_on_every_call(apple: AppleApi, server: ServerHandle) -> None:
    await apple.open_session()
    server.terms_signed = False
    assert await apple.refused("GET", "/account") == (403, "T_C_NOT_SIGNED")
    assert (await apple.http.get("/session", headers=apple.session_headers())).text == "T_C_NOT_SIGNED"

    server.terms_signed, server.access_denied = True, True
    assert await apple.refused("GET", "/account") == (403, "ACCESS_DENIED")


async def test_new_token_ends_old_sessions(apple: AppleApi, server: ServerHandle) -> None:
    await apple.open_session()

    server.download_token()

    assert (await apple.refused("GET", "/account"))[0] == 401
    assert (await apple.http.get("/session", headers=apple.session_headers())).status_code == 401


async def test_request_faults_and_delay(abm: FakeAbm, apple: AppleApi) -> None:
    await apple.open_session()
    abm.fail_next(1, 429, retry_after=5)
    abm.set_delay(0.001)

    throttled = await apple.call("GET", "/account")
    answered = await apple.call("GET", "/account")

    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "5")
    assert answered.status_code == 200


@pytest.mark.parametrize(("version", "has_org_id"), [(2, False), (3, True)])
async def test_account_fields_follow_the_protocol_version(
    apple: AppleApi, server: ServerHandle, version: int, has_org_id: bool
) -> None:
    apple.version = version

    account = await apple.ok("GET", "/account")

    assert account["server_uuid"] == server.server_uuid
    assert ("org_id" in account) == has_org_id


# --- fetch and sync -----------------------------------------------------------------------------------------


async def test_fetch_limits_and_record_shape(abm: FakeAbm, server: ServerHandle, apple: AppleApi) -> None:
    fleet = abm.seed_devices(server, 1_500, families=["iPad"])

    default = await apple.ok("POST", "/server/devices")
    largest = await apple.ok("POST", "/server/devices", {"limit": 5_000})
    device = default["devices"][0]

    assert len(default["devices"]) == 100 and len(largest["devices"]) == 1_000
    assert default["more_to_follow"] is True and len(default["cursor"]) <= 1000
    assert device["serial_number"] == fleet[0]
    assert (device["os"], device["device_family"], device["profile_status"]) == ("iPadOS", "iPad", "empty")
    assert device["device_assigned_by"] == abm.admin_id
    assert dep.decode_device(device).device_assigned_date == abm.now().replace(microsecond=0)


@pytest.mark.parametrize(("version", "os"), [(1, None), (6, "iOS"), (7, "iPadOS")])
async def test_ipad_os_follows_the_protocol_version(
    abm: FakeAbm, server: ServerHandle, apple: AppleApi, version: int, os: str | None
) -> None:
    abm.seed_devices(server, 1, families=["iPad"])
    apple.version = version

    [device] = (await apple.ok("POST", "/server/devices"))["devices"]

    assert device.get("os") == os


async def test_cursor_errors(abm: FakeAbm, server: ServerHandle, apple: AppleApi) -> None:
    abm.seed_devices(server, 3)
    _, cursor = await apple.fetch_all()

    assert await apple.refused("POST", "/devices/sync", {}) == (400, "CURSOR_REQUIRED")
    assert await apple.refused("POST", "/devices/sync", {"cursor": "zz"}) == (400, "INVALID_CURSOR")
    forged = cursor[:-1] + ("1" if cursor[-1] == "0" else "0")
    assert await apple.refused("POST", "/devices/sync", {"cursor": forged}) == (400, "INVALID_CURSOR")
    assert await apple.refused("POST", "/server/devices", {"cursor": cursor}) == (400, "EXHAUSTED_CURSOR")
    assert await apple.refused("POST", "/server/devices", b"[") == (400, "BAD_REQUEST")
    abm.advance(timedelta(days=7, minutes=1))
    await apple.open_session()
    assert await apple.refused("POST", "/devices/sync", {"cursor": cursor}) == (400, "EXPIRED_CURSOR")


async def test_sync_reports_each_change_with_its_op_date(abm: FakeAbm, server: ServerHandle, apple: AppleApi) -> None:
    fleet = abm.seed_devices(server, 4)
    _, cursor = await apple.fetch_all()
    profile = await apple.ok("POST", "/profile", {**PROFILE, "devices": fleet[:1]})
    abm.advance(timedelta(minutes=5))
    abm.mark_pushed(fleet[:1])
    abm.release(fleet[1:2])

    changes, _ = await apple.sync_all(cursor)

    assert [(device.serial_number, device.op_type) for device in changes] == [
        (fleet[0], "modified"),
        (fleet[0], "modified"),
        (fleet[1], "deleted"),
    ]
    assigned, pushed, released = changes
    assert (assigned.profile_status, assigned.profile_uuid) == ("pushed", profile["profile_uuid"])
    assert pushed.profile_push_time == pushed.op_date == abm.now().replace(microsecond=0)
    assert assigned.op_date is not None and pushed.op_date is not None
    assert pushed.op_date > assigned.op_date
    assert released.model != ""


async def test_echoed_cursor(abm: FakeAbm, server: ServerHandle, apple: AppleApi) -> None:
    _, cursor = await apple.fetch_all()
    abm.echo_cursor(server)

    echoed = await apple.ok("POST", "/devices/sync", {"cursor": cursor})

    assert (echoed["cursor"], echoed["more_to_follow"], echoed["devices"]) == (cursor, True, [])


async def drive(operations: Any) -> Any:
    abm = FakeAbm()
    server = abm.add_server("Muster", server_identity()[0])
    server.download_token()
    assert server.credentials is not None
    transport = httpx.ASGITransport(app=abm)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers={"User-Agent": "tests"}) as http:
        return await operations(abm, server, AppleApi(abm, http, server.credentials))


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 700), st.integers(1, 120), st.lists(st.integers(0, 699), max_size=40))
def test_paging_returns_every_serial_exactly_once(size: int, limit: int, departed: list[int]) -> None:
    async def run(abm: FakeAbm, server: ServerHandle, apple: AppleApi) -> None:
        fleet = abm.seed_devices(server, size)
        gone = {fleet[index] for index in departed if index < size}
        abm.unassign(gone)
        abm.assign(server, sorted(gone)[:3])  # back again, at the end of the list

        serials, _ = await apple.fetch_all(limit)

        assert sorted(serials) == sorted({*fleet} - gone | set(sorted(gone)[:3]))
        assert len(serials) == len(set(serials))

    asyncio.run(drive(run))


CHANGES = st.lists(st.tuples(st.sampled_from(["add", "unassign", "assign_profile"]), st.integers(0, 49)), max_size=30)


@settings(deadline=None, max_examples=25)
@given(CHANGES, st.integers(1, 10))
def test_sync_after_fetch_returns_only_the_changes(changes: list[tuple[str, int]], limit: int) -> None:
    async def run(abm: FakeAbm, server: ServerHandle, apple: AppleApi) -> None:
        fleet = abm.seed_devices(server, 50)
        _, cursor = await apple.fetch_all()
        profile_uuid = (await apple.ok("POST", "/profile", PROFILE))["profile_uuid"]
        expected: list[tuple[str, str]] = []
        for change, index in changes:
            serial = fleet[index]
            if change == "add" and not server.has(serial):
                abm.assign(server, [serial])
                expected.append((serial, "added"))
            elif change == "unassign" and server.has(serial):
                abm.unassign([serial])
                expected.append((serial, "deleted"))
            elif change == "assign_profile" and server.has(serial):
                await apple.ok("POST", "/profile/devices", {"profile_uuid": profile_uuid, "devices": [serial]})
                expected.append((serial, "modified"))

        devices, _ = await apple.sync_all(cursor, limit)

        assert [(device.serial_number, device.op_type) for device in devices] == expected

    asyncio.run(drive(run))


# --- profiles and assignment -------------------------------------------------------------------------------


async def test_define_and_get_profile(apple: AppleApi, server: ServerHandle) -> None:
    defined = await apple.ok("POST", "/profile", PROFILE)

    fetched = await apple.ok("GET", "/profile", params={"profile_uuid": defined["profile_uuid"]})

    assert defined == {"profile_uuid": defined["profile_uuid"], "devices": {}}
    assert fetched == {**PROFILE, "profile_uuid": defined["profile_uuid"]}
    assert server.profiles[defined["profile_uuid"]].profile_name == "Corporate"
    assert await apple.refused("GET", "/profile") == (400, "PROFILE_UUID_REQUIRED")
    assert await apple.refused("GET", "/profile", params={"profile_uuid": "0" * 32}) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**PROFILE, "is_supervised": False, "is_mdm_removable": False}, "FLAGS_INVALID"),
        ({"url": PROFILE["url"]}, "CONFIG_NAME_REQUIRED"),
        ({"profile_name": "x"}, "CONFIG_URL_REQUIRED"),
        ({**PROFILE, "profile_name": "x" * 126}, "CONFIG_NAME_INVALID"),
        ({**PROFILE, "region": "United States"}, "LOCALE_INVALID"),
        (b"not json", "BAD_REQUEST"),
    ],
)
async def test_define_profile_refusals(apple: AppleApi, body: Any, code: str) -> None:
    assert await apple.refused("POST", "/profile", body) == (400, code)


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_assign_profile(abm: FakeAbm, server: ServerHandle, apple: AppleApi, method: str) -> None:
    fleet = abm.seed_devices(server, 3)
    profile_uuid = (await apple.ok("POST", "/profile", PROFILE))["profile_uuid"]
    abm.fail_assignment(fleet[2:])

    result = await apple.ok(method, "/profile/devices", {"profile_uuid": profile_uuid, "devices": [*fleet, "OTHER"]})

    assert result == {
        "profile_uuid": profile_uuid,
        "devices": {fleet[0]: "SUCCESS", fleet[1]: "SUCCESS", fleet[2]: "FAILED", "OTHER": "NOT_ACCESSIBLE"},
    }
    assert abm.device(fleet[0])["profile_status"] == "assigned"  # type: ignore[index]
    assert abm.device(fleet[2])["profile_status"] == "empty"  # type: ignore[index]


async def test_assign_profile_refusals(apple: AppleApi) -> None:
    profile_uuid = (await apple.ok("POST", "/profile", PROFILE))["profile_uuid"]

    assert await apple.refused("POST", "/profile/devices", {"profile_uuid": profile_uuid}) == (
        400,
        "DEVICE_ID_REQUIRED",
    )
    assert await apple.refused("POST", "/profile/devices", {"devices": ["A"]}) == (400, "PROFILE_UUID_REQUIRED")
    assert await apple.refused("POST", "/profile/devices", {"profile_uuid": "nope", "devices": ["A"]}) == (
        404,
        "NOT_FOUND",
    )


@pytest.mark.parametrize(
    ("version", "status", "retry_after"), [(7, "FAILED", None), (9, "THROTTLED", None), (10, "THROTTLED", 30)]
)
async def test_throttling_follows_the_protocol_version(
    abm: FakeAbm, server: ServerHandle, apple: AppleApi, version: int, status: str, retry_after: int | None
) -> None:
    [serial] = abm.seed_devices(server, 1)
    abm.fail_assignment([serial], AssignmentStatus.THROTTLED, times=1, retry_after=30)
    apple.version = version
    profile_uuid = (await apple.ok("POST", "/profile", PROFILE))["profile_uuid"]
    request = {"profile_uuid": profile_uuid, "devices": [serial]}

    throttled = await apple.ok("POST", "/profile/devices", request)
    retried = await apple.ok("POST", "/profile/devices", request)

    assert throttled["devices"] == {serial: status}
    assert throttled.get("retry_after_seconds") == retry_after
    assert retried["devices"] == {serial: "SUCCESS"} and "retry_after_seconds" not in retried


async def test_details_remove_and_disown(abm: FakeAbm, server: ServerHandle, apple: AppleApi) -> None:
    fleet = abm.seed_devices(server, 2, families=["Mac"])
    await apple.ok("POST", "/profile", {**PROFILE, "devices": fleet})

    details = await apple.ok("POST", "/devices", {"devices": [fleet[0], "OTHER"]})
    removed = await apple.ok("DELETE", "/profile/devices", {"devices": [fleet[0]]})
    disowned = await apple.ok("POST", "/devices/disown", {"devices": [fleet[1], "OTHER"]})

    assert details["devices"][fleet[0]]["response_status"] == "SUCCESS"
    assert details["devices"][fleet[0]]["os"] == "OSX"
    assert details["devices"]["OTHER"] == {"response_status": "NOT_ACCESSIBLE"}
    assert removed == {"devices": {fleet[0]: "SUCCESS"}}
    assert abm.device(fleet[0])["profile_status"] == "removed"  # type: ignore[index]
    assert disowned == {"devices": {fleet[1]: "SUCCESS", "OTHER": "NOT_ACCESSIBLE"}}
    assert abm.server_of(fleet[1]) is None
    for path in ("/devices", "/devices/disown"):
        assert await apple.refused("POST", path, {"devices": []}) == (400, "DEVICE_ID_REQUIRED")
    assert await apple.refused("DELETE", "/profile/devices", {}) == (400, "DEVICE_ID_REQUIRED")
