"""Check-in messages and command-loop edge cases over real HTTP (apple-protocols.md §1, §2.2, §2.3, §5).

Each test enrolls virtual devices in a running Muster, then sends what the `VirtualAppleDevice` would not send
on its own (built with the wire codecs and signed with the device's identity) and reads the database directly
to check what was kept.
"""

from __future__ import annotations

import base64
import os
import plistlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from sqlalchemy import select, update

from muster.pki.certs import generate_rsa_key, self_signed_certificate
from muster.protocols import scep
from muster.protocols.apple import checkin, commands
from muster.protocols.apple.checkin import SHARED_IPAD_USER_ID, EnrollmentIdentity, EnrollmentKind
from muster.protocols.apple.results import CommandStatus, encode_report
from muster.services.enrollment_requests import challenge_hash
from muster.simulators.apple_answers import IPAD, MAC
from muster.simulators.apple_device import CONNECT_TYPE, VirtualAppleDevice
from muster.simulators.apple_profile import read_enrollment_profile
from muster.store.tables import (
    checkin_messages,
    command_deliveries,
    device_certificates,
    enrollment_failures,
    enrollment_requests,
    enrollments,
)
from tests.harness import DM, RunningMuster, database_rows, device_put, fake_apple, running_muster, table_rows


@dataclass
class Server:
    muster: RunningMuster
    http: httpx.AsyncClient
    topic: str

    async def enrolled(self, **device: Any) -> VirtualAppleDevice:
        enrolled = VirtualAppleDevice(http=self.http, **device)
        await enrolled.enroll(await self.muster.enrollment_profile())
        return enrolled

    async def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        async with self.muster.container.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(select(table).where(*where))]

    async def device_id(self, device: VirtualAppleDevice) -> str:
        [row] = await self.rows(enrollments, enrollments.c.id == device.udid)
        return str(row["device_id"])

    async def action(self, device: VirtualAppleDevice, action: str) -> httpx.Response:
        async with self.muster.admin() as admin:
            return await admin.post(f"{DM}/managedDevices/{await self.device_id(device)}/{action}", json={})


@asynccontextmanager
async def server(tmp_path: Path, database_url: str, **overrides: Any) -> AsyncIterator[Server]:
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple, **overrides) as muster,
        muster.device_client() as http,
    ):
        yield Server(muster, http, await muster.install_push_certificate(apple))


def keys(device: VirtualAppleDevice, user_id: str | None = None, short_name: str | None = None) -> dict[str, str]:
    """The identity keys of the device channel, a macOS user channel (`user_id`) or a Shared iPad user."""
    if short_name is not None:
        return checkin.identity_keys(EnrollmentIdentity(device.udid, short_name, EnrollmentKind.SHARED_IPAD_USER))
    if user_id is not None:
        return checkin.identity_keys(EnrollmentIdentity(device.udid, user_id, EnrollmentKind.USER_CHANNEL))
    return checkin.identity_keys(EnrollmentIdentity(device.udid, None, EnrollmentKind.DEVICE))


async def send_checkin(device: VirtualAppleDevice, body: bytes) -> httpx.Response:
    assert device.profile is not None and device.identity_certificate is not None and device.key is not None
    return await device_put(
        device.http, device.profile.checkin_url, body, signer=(device.identity_certificate, device.key)
    )


async def send_report(device: VirtualAppleDevice, body: bytes) -> httpx.Response:
    assert device.profile is not None and device.identity_certificate is not None and device.key is not None
    return await device_put(
        device.http,
        device.profile.server_url,
        body,
        signer=(device.identity_certificate, device.key),
        content_type=CONNECT_TYPE,
    )


def plist_reply(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.content, "expected a plist body, got a zero-byte reply"
    assert response.headers.get("content-type", "").startswith(("application/xml", "application/x-plist"))
    reply = plistlib.loads(response.content)
    assert isinstance(reply, dict)
    return reply


# -- check-in messages ----------------------------------------------------------------------------------------


async def test_user_authenticate_is_answered_as_the_spec_says(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        mac = await s.enrolled(model=MAC)
        user = str(uuid.uuid4()).upper()
        first = checkin.encode_checkin("UserAuthenticate", keys(mac, user), UserShortName="ada", UserLongName="Ada")
        assert plist_reply(await send_checkin(mac, first)) == {"DigestChallenge": ""}  # no AuthToken needed
        # A second request (a Mac that got a challenge elsewhere) cannot be validated: an empty AuthToken.
        second = checkin.encode_checkin("UserAuthenticate", keys(mac, user), DigestResponse="not-a-digest")
        assert plist_reply(await send_checkin(mac, second)) == {"AuthToken": ""}
        kept = await s.rows(checkin_messages, checkin_messages.c.enrollment_id == f"{mac.udid}:{user}")
        assert [(m["message_type"], m["raw"]) for m in kept] == [
            ("UserAuthenticate", first),
            ("UserAuthenticate", second),
        ]
        assert await s.rows(enrollments, enrollments.c.parent_id == mac.udid) == []  # TokenUpdate creates it


async def test_bootstrap_token_is_escrowed_encrypted_and_returned(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        mac = await s.enrolled(model=MAC)
        token = os.urandom(32)
        escrow = checkin.encode_checkin("SetBootstrapToken", keys(mac), BootstrapToken=token)
        response = await send_checkin(mac, escrow)
        assert response.status_code == 200 and response.content == b""
        [row] = await s.rows(enrollments, enrollments.c.id == mac.udid)
        stored = row["bootstrap_token_encrypted"]
        assert stored and token not in stored and base64.b64encode(token) not in stored
        ask = checkin.encode_checkin("GetBootstrapToken", keys(mac))
        assert plist_reply(await send_checkin(mac, ask)) == {"BootstrapToken": token}
        # A SetBootstrapToken without a token deletes the escrowed one; then there is nothing to return.
        forget = await send_checkin(mac, checkin.encode_checkin("SetBootstrapToken", keys(mac)))
        assert forget.status_code == 200
        empty = await send_checkin(mac, ask)
        assert empty.status_code == 200 and empty.content == b""
        [row] = await s.rows(enrollments, enrollments.c.id == mac.udid)
        assert row["bootstrap_token_encrypted"] is None


async def stored_values(s: Server) -> list[tuple[str, str, bytes]]:
    """Every value in every table, as bytes, with where it was found."""
    return [
        (table, column, value if isinstance(value, bytes) else str(value).encode())
        for table, rows in (await table_rows(s.muster.container.engine)).items()
        for row in rows
        for column, value in row.items()
    ]


async def test_no_device_secret_is_stored_in_plaintext(tmp_path: Path, database_url: str) -> None:
    """GUIDE §3: bootstrap and unlock tokens are encrypted at rest — in every table, raw check-ins included."""
    async with server(tmp_path, database_url) as s:
        mac = await s.enrolled(model=MAC)  # its TokenUpdate carried mac.unlock_token
        bootstrap = os.urandom(32)
        escrow = checkin.encode_checkin("SetBootstrapToken", keys(mac), BootstrapToken=bootstrap)
        response = await send_checkin(mac, escrow)
        assert response.status_code == 200
        secrets = {"bootstrap token": bootstrap, "unlock token": mac.unlock_token}
        leaks = [
            (name, table, column)
            for name, secret in secrets.items()
            for table, column, value in await stored_values(s)
            if secret in value or base64.b64encode(secret) in value or secret.hex().encode() in value.lower()
        ]
        assert leaks == []


async def test_declarative_management_and_unknown_keys_are_kept_raw(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        phone = await s.enrolled()
        sent = [
            checkin.encode_checkin("DeclarativeManagement", keys(phone), Endpoint="tokens"),
            checkin.encode_checkin(
                "DeclarativeManagement",
                keys(phone),
                Endpoint="status",
                Data=b'{"StatusItems":{"device":{"identifier":{"udid":"x"}}},"Errors":[]}',
            ),
            checkin.encode_checkin(
                "TokenUpdate",
                keys(phone),
                Topic=s.topic,
                Token=phone.push_token,
                PushMagic=phone.push_magic,
                FutureKey={"Nested": [1, "two", b"\x03"]},
                AnotherNewFlag=True,
            ),
        ]
        for body in sent:
            response = await send_checkin(phone, body)
            assert response.status_code == 200, response.text
        # A message type from a future OS release is not understood, but it is kept and never answered 401/5xx.
        future = checkin.encode_checkin("FutureCheckin", keys(phone), Topic=s.topic, Anything="goes")
        response = await send_checkin(phone, future)
        assert 200 <= response.status_code < 500 and response.status_code != 401, response.text
        kept = await s.rows(checkin_messages, checkin_messages.c.enrollment_id == phone.udid)
        raw = {(m["message_type"], m["raw"]) for m in kept}
        assert {("DeclarativeManagement", sent[0]), ("DeclarativeManagement", sent[1])} <= raw
        assert ("TokenUpdate", sent[2]) in raw
        assert ("FutureCheckin", future) in raw


async def test_check_out_ends_the_enrollment(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        phone = await s.enrolled()
        await phone.poll()
        lock = await s.action(phone, "remoteLock")
        assert lock.status_code == 202
        response = await send_checkin(phone, checkin.encode_checkin("CheckOut", keys(phone), Topic=s.topic))
        assert response.status_code == 200 and response.content == b""
        [channel] = await s.rows(enrollments, enrollments.c.id == phone.udid)
        assert channel["enabled"] is False and channel["checked_out_at"] is not None
        [delivery] = await s.rows(command_deliveries, command_deliveries.c.command_uuid == lock.json()["commandUuid"])
        assert delivery["status"] == "cancelled"
        async with s.muster.admin() as admin:
            record = (await admin.get(f"{DM}/managedDevices/{await s.device_id(phone)}")).json()
        assert record["managementState"] == "unenrolled"
        assert (await s.action(phone, "remoteLock")).status_code == 409
        assert await phone.poll() == 0  # nothing is handed to a checked-out enrollment


# -- the command loop -----------------------------------------------------------------------------------------


async def test_not_now_is_retried_later_without_blocking_the_queue(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        phone = await s.enrolled(not_now_once={"SecurityInfo"})
        assert await phone.poll() == 5
        first_session = [(request_type, status) for _, request_type, status in phone.handled]
        assert first_session[1] == ("SecurityInfo", "NotNow")
        assert [t for t, status in first_session if status == "Acknowledged"] == [
            "DeviceInformation",
            "InstalledApplicationList",
            "ProfileList",
            "CertificateList",
        ]
        deferred = phone.handled[1][0]
        [delivery] = await s.rows(command_deliveries, command_deliveries.c.command_uuid == deferred)
        assert delivery["status"] == "notNow"
        # The next session (it starts with Idle) gets the deferred command again.
        assert await phone.poll() == 1
        assert phone.handled[-1] == (deferred, "SecurityInfo", "Acknowledged")
        deliveries = await s.rows(command_deliveries, command_deliveries.c.enrollment_id == phone.udid)
        assert {d["status"] for d in deliveries} == {"acknowledged"}


async def test_nothing_queued_is_a_zero_byte_200(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        phone = await s.enrolled()
        await phone.poll()
        response = await send_report(phone, encode_report(CommandStatus.IDLE, keys(phone)))
        assert response.status_code == 200
        assert response.content == b"" and response.headers.get("content-length") == "0"


async def test_a_repeated_result_is_idempotent(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        phone = await s.enrolled()
        await phone.poll()
        assert (await s.action(phone, "remoteLock")).status_code == 202
        handed = await send_report(phone, encode_report(CommandStatus.IDLE, keys(phone)))
        command_uuid, command = commands.decode_command(handed.content)
        assert command["RequestType"] == "DeviceLock"
        result = encode_report(CommandStatus.ACKNOWLEDGED, keys(phone), command_uuid)
        first = await send_report(phone, result)
        assert first.status_code == 200 and first.content == b""
        engine = s.muster.container.engine
        after_first = await database_rows(engine)
        late_error = encode_report(
            CommandStatus.ERROR,
            keys(phone),
            command_uuid,
            ErrorChain=[{"ErrorCode": 1, "ErrorDomain": "X", "LocalizedDescription": "late"}],
        )
        unknown = encode_report(CommandStatus.ACKNOWLEDGED, keys(phone), str(uuid.uuid4()).upper())
        for again in (result, result, late_error, unknown):
            response = await send_report(phone, again)
            assert response.status_code == 200 and response.content == b"", response.text
            assert await database_rows(engine) == after_first
        [delivery] = await s.rows(command_deliveries, command_deliveries.c.command_uuid == command_uuid)
        assert delivery["status"] == "acknowledged" and delivery["result"] == result


async def test_authenticate_clears_queued_commands(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        mac = await s.enrolled(model=MAC)
        await mac.poll()
        user = str(uuid.uuid4()).upper()
        user_token = checkin.encode_checkin(
            "TokenUpdate", keys(mac, user), Topic=s.topic, Token=os.urandom(32), PushMagic="user-magic"
        )
        assert (await send_checkin(mac, user_token)).status_code == 200
        lock = (await s.action(mac, "remoteLock")).json()["commandUuid"]
        user_command = await s.muster.container.queue.enqueue(
            {"RequestType": "ProfileList"},
            org_id=(await s.rows(enrollments, enrollments.c.id == mac.udid))[0]["org_id"],
            enrollment_ids=[f"{mac.udid}:{user}"],
            created_by="test",
            push=False,
        )
        again = checkin.encode_checkin("Authenticate", keys(mac), Topic=s.topic, SerialNumber=mac.serial_number)
        assert (await send_checkin(mac, again)).status_code == 200
        for command_uuid in (lock, user_command):
            [delivery] = await s.rows(command_deliveries, command_deliveries.c.command_uuid == command_uuid)
            assert delivery["status"] == "cancelled", delivery
        # The re-enrollment completes with a TokenUpdate; the DeviceLock is never handed out.
        mac.handled.clear()
        token = checkin.encode_checkin("TokenUpdate", keys(mac), Topic=s.topic, Token=mac.push_token, PushMagic="m")
        assert (await send_checkin(mac, token)).status_code == 200
        await mac.poll()
        assert "DeviceLock" not in {request_type for _, request_type, _ in mac.handled}


async def test_token_update_on_a_user_channel_creates_it_under_the_device(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        mac, ipad = await s.enrolled(model=MAC), await s.enrolled(model=IPAD)
        await mac.poll()
        await ipad.poll()
        mac_user = str(uuid.uuid4()).upper()
        channels = [
            (mac, keys(mac, mac_user), f"{mac.udid}:{mac_user}", "user_channel", "ada", "Ada Lovelace"),
            (
                ipad,
                keys(ipad, short_name="pupil@school.example"),
                f"{ipad.udid}:pupil@school.example",
                "shared_ipad_user",
                "pupil@school.example",
                None,
            ),
        ]
        for device, identity, channel_id, kind, short_name, long_name in channels:
            body = checkin.encode_checkin(
                "TokenUpdate",
                identity,
                Topic=s.topic,
                Token=os.urandom(32),
                PushMagic=str(uuid.uuid4()),
                UserShortName=short_name,
                UserLongName=long_name,
            )
            response = await send_checkin(device, body)
            assert response.status_code == 200 and response.content == b"", response.text
            [row] = await s.rows(enrollments, enrollments.c.id == channel_id)
            assert (row["parent_id"], row["device_id"], row["kind"], row["enabled"]) == (
                device.udid,
                await s.device_id(device),
                kind,
                True,
            )
            assert (row["user_short_name"], row["user_long_name"]) == (short_name, long_name)
            # The user channel polls on its own; nothing is queued for it, and the device gets no new inventory.
            idle = await send_report(device, encode_report(CommandStatus.IDLE, identity))
            assert idle.status_code == 200 and idle.content == b""
            assert await device.poll() == 0
        # Shared iPad users are told apart by their short name: the all-F UserID never becomes a channel id.
        assert await s.rows(enrollments, enrollments.c.id.like(f"%{SHARED_IPAD_USER_ID}")) == []


# -- one-time SCEP challenges ---------------------------------------------------------------------------------


async def scep_enroll(http: httpx.AsyncClient, scep_url: str, challenge: str) -> scep.CertRep:
    """A SCEP PKCSReq with `challenge`, as a device sends it; the server's CertRep, verified and decrypted."""
    ca = x509.load_der_x509_certificate((await http.get(scep_url, params={"operation": "GetCACert"})).content)
    key = generate_rsa_key()
    name = str(uuid.uuid4()).upper()
    csr = (
        x509.CertificateSigningRequestBuilder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
        .sign(key, hashes.SHA256())
    )
    signer = self_signed_certificate(key, name)
    body, _ = scep.build_pkcs_req(
        csr, signer_certificate=signer, signer_key=key, recipient_certificate=ca, transaction_id=uuid.uuid4().hex
    )
    response = await http.post(scep_url, params={"operation": "PKIOperation"}, content=body)
    assert response.status_code == 200, response.text
    return scep.parse_cert_rep(response.content, requester_certificate=signer, requester_key=key, ca_certificate=ca)


def refused(reply: scep.CertRep) -> bool:
    return reply.status is scep.PkiStatus.FAILURE and reply.fail_info is scep.FailInfo.BAD_REQUEST


async def test_scep_challenge_is_one_time_and_bound_to_its_enrollment(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url) as s:
        profile = read_enrollment_profile(await s.muster.enrollment_profile(user="ada@example.com"))
        [request] = await s.rows(
            enrollment_requests, enrollment_requests.c.challenge_sha256 == challenge_hash(profile.scep_challenge)
        )
        assert request["expires_at"] - request["created_at"] == timedelta(minutes=15)
        issued = await scep_enroll(s.http, profile.scep_url, profile.scep_challenge)
        assert issued.status is scep.PkiStatus.SUCCESS and issued.certificate is not None
        [certificate] = await s.rows(device_certificates)
        assert certificate["enrollment_request_id"] == request["id"]
        assert refused(await scep_enroll(s.http, profile.scep_url, profile.scep_challenge))
        assert refused(await scep_enroll(s.http, profile.scep_url, "never-issued"))
        failures = [(f["reason"], f["enrollment_request_id"], f["stage"]) for f in await s.rows(enrollment_failures)]
        assert ("challengeReused", request["id"], "scep") in failures
        assert ("challengeUnknown", None, "scep") in failures
        assert len(failures) == 2, failures  # one record per refused request
        assert len(await s.rows(device_certificates)) == 1


async def test_an_expired_challenge_is_refused(tmp_path: Path, database_url: str) -> None:
    async with server(tmp_path, database_url, scep_challenge_ttl_seconds=60) as s:
        profile = read_enrollment_profile(await s.muster.enrollment_profile())
        [request] = await s.rows(enrollment_requests)
        assert request["expires_at"] - request["created_at"] == timedelta(seconds=60)
        async with s.muster.container.engine.begin() as conn:  # test setup: the 60 s have passed
            await conn.execute(
                update(enrollment_requests)
                .where(enrollment_requests.c.id == request["id"])
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert refused(await scep_enroll(s.http, profile.scep_url, profile.scep_challenge))
        failures = [(f["reason"], f["enrollment_request_id"]) for f in await s.rows(enrollment_failures)]
        assert ("challengeExpired", request["id"]) in failures
        assert len(failures) == 1, failures  # one record per refused request
        [request] = await s.rows(enrollment_requests)
        assert request["consumed_at"] is None
        assert await s.rows(device_certificates) == []
