"""Device authentication over real HTTP (apple-protocols.md §3; GUIDE §2).

A request signed by another enrollment's certificate, a forged or garbage `Mdm-Signature`, an unknown, foreign
or expired certificate, or no certificate at all is refused with 400/403 (never 401, which would unenroll the
device), leaves an audit event, and changes nothing: every table but the audit log is compared row by row before
and after each attempt.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from muster.pki.certs import certificate_pem, generate_rsa_key, self_signed_certificate
from muster.protocols.apple import checkin
from muster.protocols.apple.checkin import EnrollmentIdentity, EnrollmentKind
from muster.protocols.apple.results import CommandStatus, encode_report
from muster.protocols.cms import PrivateKey, sign_detached
from muster.simulators.apple_device import CHECKIN_TYPE, CONNECT_TYPE, VirtualAppleDevice
from muster.store.tables import command_deliveries
from muster.store.tables_audit import audit_log
from tests.harness import DM, RunningMuster, database_rows, device_put, fake_apple, running_muster

Signer = tuple[x509.Certificate, PrivateKey]


@dataclass
class Scene:
    """A running server with two enrolled iPhones; Alice has a DeviceLock queued that she has not fetched."""

    muster: RunningMuster
    http: httpx.AsyncClient
    topic: str
    alice: VirtualAppleDevice
    bob: VirtualAppleDevice
    lock_uuid: str

    def signer(self, device: VirtualAppleDevice) -> Signer:
        assert device.identity_certificate is not None and device.key is not None
        return device.identity_certificate, device.key

    def checkin_url(self) -> str:
        return f"{self.muster.base_url}/mdm/checkin"

    def connect_url(self) -> str:
        return f"{self.muster.base_url}/mdm/connect"


@asynccontextmanager
async def scene(tmp_path: Path, database_url: str, **overrides: Any) -> AsyncIterator[Scene]:
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple, **overrides) as muster,
        muster.device_client() as http,
    ):
        topic = await muster.install_push_certificate(apple)
        alice, bob = VirtualAppleDevice(http=http), VirtualAppleDevice(http=http)
        await alice.enroll(await muster.enrollment_profile())
        await bob.enroll(await muster.enrollment_profile())
        await alice.poll()  # drain the inventory commands so only the DeviceLock below is pending
        await bob.poll()
        async with muster.admin() as admin:
            devices = (await admin.get(f"{DM}/managedDevices")).json()["value"]
            alice_id = next(d["id"] for d in devices if d["serialNumber"] == alice.serial_number)
            lock = await admin.post(f"{DM}/managedDevices/{alice_id}/remoteLock", json={})
            assert lock.status_code == 202, lock.text
        yield Scene(muster, http, topic, alice, bob, lock.json()["commandUuid"])


def device_keys(udid: str) -> dict[str, str]:
    return checkin.identity_keys(EnrollmentIdentity(udid, None, EnrollmentKind.DEVICE))


async def audit_trail(scene: Scene) -> list[dict[str, Any]]:
    async with scene.muster.container.engine.connect() as conn:
        rows = await conn.execute(select(audit_log).where(audit_log.c.category == "device"))
        return [
            {**row._mapping, "actor": row.actor_type.lower(), "target": row.resources[0]["resourceId"]} for row in rows
        ]


async def assert_refused(
    scene: Scene,
    send: Awaitable[httpx.Response],
    *,
    activity: str,
    target: str,
    reason: str | None = None,
    case: str = "",
) -> None:
    """`send` (not yet awaited) is answered 400/403, writes one matching audit event, and changes no other row."""
    engine = scene.muster.container.engine
    rows_before, audit_before = await database_rows(engine), await audit_trail(scene)
    response = await send
    assert response.status_code in (400, 403), (case, response.status_code, response.text)
    assert b"<plist" not in response.content, case  # no command or token leaked in the refusal
    known = {event["id"] for event in audit_before}
    new = [event for event in await audit_trail(scene) if event["id"] not in known]
    assert len(new) == 1, (case, new)
    event = new[0]
    assert (event["actor"], event["result"], event["activity"], event["target"]) == (
        "device",
        "failure",
        activity,
        target,
    ), (case, event)
    if reason is not None:
        assert event["detail"]["reason"] == reason, (case, event)
    assert await database_rows(engine) == rows_before, case


async def assert_still_served(scene: Scene) -> None:
    """The victims keep working: Alice fetches her DeviceLock and acknowledges it, Bob polls normally."""
    assert await scene.alice.poll() == 1
    assert scene.alice.locked
    assert await scene.bob.poll() == 0


async def test_another_enrollments_certificate_is_refused(tmp_path: Path, database_url: str) -> None:
    async with scene(tmp_path, database_url) as s:
        alice = s.alice.udid
        bobs = s.signer(s.bob)
        token_update = checkin.encode_checkin(
            "TokenUpdate", device_keys(alice), Topic=s.topic, Token=os.urandom(32), PushMagic=str(uuid.uuid4())
        )
        user_channel = checkin.encode_checkin(
            "TokenUpdate",
            {"UDID": alice, "UserID": str(uuid.uuid4()).upper()},
            Topic=s.topic,
            Token=os.urandom(32),
            PushMagic=str(uuid.uuid4()),
        )
        attempts: list[tuple[str, bytes, str]] = [
            (s.checkin_url(), token_update, alice),
            (s.checkin_url(), checkin.encode_checkin("CheckOut", device_keys(alice), Topic=s.topic), alice),
            (
                s.checkin_url(),
                checkin.encode_checkin("SetBootstrapToken", device_keys(alice), BootstrapToken=b"x"),
                alice,
            ),
            (s.checkin_url(), checkin.encode_checkin("GetBootstrapToken", device_keys(alice)), alice),
            (s.checkin_url(), user_channel, alice),
            (s.connect_url(), encode_report(CommandStatus.IDLE, device_keys(alice)), alice),
            (s.connect_url(), encode_report(CommandStatus.ACKNOWLEDGED, device_keys(alice), s.lock_uuid), alice),
        ]
        for url, body, target in attempts:
            content_type = CONNECT_TYPE if url.endswith("/connect") else CHECKIN_TYPE
            await assert_refused(
                s,
                device_put(s.http, url, body, signer=bobs, content_type=content_type),
                activity="deviceAuthenticationFailed",
                target=target,
                reason="certificateMismatch",
                case=body.decode(),
            )
        # Authenticate with a certificate already bound elsewhere: hijacking Alice, or a brand-new enrollment.
        for udid in (alice, str(uuid.uuid4()).upper()):
            body = checkin.encode_checkin("Authenticate", device_keys(udid), Topic=s.topic, SerialNumber="C02X")
            await assert_refused(
                s,
                device_put(s.http, s.checkin_url(), body, signer=bobs),
                activity="deviceAuthenticationFailed",
                target=udid,
                reason="certificateReuse",
            )
        await assert_still_served(s)


def forged_signatures(body: bytes, genuine: Signer) -> dict[str, str]:
    """`Mdm-Signature` values that must not pass, by what is wrong with them."""
    certificate, key = genuine
    valid = sign_detached(body, certificate, key)
    attacker = generate_rsa_key()
    flipped = bytearray(valid)
    flipped[-10] ^= 0x01  # inside the signature value
    return {
        "signature over another body": base64.b64encode(sign_detached(body + b" ", certificate, key)).decode(),
        "attacker's key with the genuine certificate": base64.b64encode(
            sign_detached(body, certificate, attacker)
        ).decode(),
        "flipped signature bit": base64.b64encode(bytes(flipped)).decode(),
        "truncated": base64.b64encode(valid[: len(valid) // 2]).decode(),
        "not base64": "%%% not base64 %%%",
        "random bytes": base64.b64encode(os.urandom(300)).decode(),
        "the body itself": base64.b64encode(body).decode(),
    }


async def test_forged_signatures_are_refused(tmp_path: Path, database_url: str) -> None:
    async with scene(tmp_path, database_url) as s:
        alice = s.alice.udid
        bodies = {
            s.checkin_url(): checkin.encode_checkin(
                "TokenUpdate", device_keys(alice), Topic=s.topic, Token=os.urandom(32), PushMagic="forged"
            ),
            s.connect_url(): encode_report(CommandStatus.IDLE, device_keys(alice)),
        }
        for url, body in bodies.items():
            endpoint = url.rsplit("/", 1)[1]
            content_type = CONNECT_TYPE if endpoint == "connect" else CHECKIN_TYPE
            for what, header in forged_signatures(body, s.signer(s.alice)).items():
                await assert_refused(
                    s,
                    device_put(s.http, url, body, content_type=content_type, headers={"Mdm-Signature": header}),
                    activity="malformedDeviceRequest",
                    target=endpoint,
                    case=f"{endpoint}: {what}",
                )
            # No signature at all, and a client certificate in a header nobody configured Muster to trust.
            own = certificate_pem(s.signer(s.alice)[0]).decode()
            for headers in ({}, {"X-Client-Cert": quote(own)}, {"X-SSL-Client-Cert": quote(own)}):
                await assert_refused(
                    s,
                    device_put(s.http, url, body, content_type=content_type, headers=headers),
                    activity="deviceAuthenticationFailed",
                    target=alice,
                    reason="noIdentity",
                    case=f"{endpoint}: {headers}",
                )
        await assert_still_served(s)


def certificate_request(key: PrivateKey, common_name: str) -> x509.CertificateSigningRequest:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return x509.CertificateSigningRequestBuilder(subject).sign(key, hashes.SHA256())


async def test_unknown_foreign_and_expired_certificates_are_refused(tmp_path: Path, database_url: str) -> None:
    async with scene(tmp_path, database_url) as s:
        alice = s.alice.udid
        authority = s.muster.container.identity.authority
        key = generate_rsa_key()
        foreign = self_signed_certificate(key, alice)
        # Signed by Muster's CA but never issued over SCEP (so no enrollment request, no record).
        unrecorded = authority.issue_device_certificate(certificate_request(key, alice))
        expired = authority.issue_device_certificate(
            certificate_request(key, alice), validity_days=1, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        )
        # Issued over SCEP with a valid challenge, but never bound by an Authenticate.
        stranger = VirtualAppleDevice(http=s.http)
        stranger.install_profile(await s.muster.enrollment_profile())
        unbound = await stranger.request_certificate(stranger._require_profile().scep_challenge)
        assert stranger.key is not None
        cases: list[tuple[Signer, str]] = [
            ((foreign, key), "untrustedCertificate"),
            ((expired, key), "untrustedCertificate"),
            ((unrecorded, key), "unknownCertificate"),
            ((unbound, stranger.key), "certificateMismatch"),
        ]
        bodies = {
            s.checkin_url(): checkin.encode_checkin("CheckOut", device_keys(alice), Topic=s.topic),
            s.connect_url(): encode_report(CommandStatus.IDLE, device_keys(alice)),
        }
        for signer, reason in cases:
            for url, body in bodies.items():
                content_type = CONNECT_TYPE if url.endswith("/connect") else CHECKIN_TYPE
                await assert_refused(
                    s,
                    device_put(s.http, url, body, signer=signer, content_type=content_type),
                    activity="deviceAuthenticationFailed",
                    target=alice,
                    reason=reason,
                    case=f"{url}: {reason}",
                )
        # Foreign and unrecorded certificates cannot start an enrollment either.
        for signer, reason in cases[:3]:
            udid = str(uuid.uuid4()).upper()
            body = checkin.encode_checkin("Authenticate", device_keys(udid), Topic=s.topic)
            await assert_refused(
                s,
                device_put(s.http, s.checkin_url(), body, signer=signer),
                activity="deviceAuthenticationFailed",
                target=udid,
                reason=reason,
            )
        await assert_still_served(s)


def rfc9440(certificate: x509.Certificate) -> str:
    return ":" + base64.b64encode(certificate.public_bytes(Encoding.DER)).decode() + ":"


async def test_forwarded_client_certificates_are_checked(tmp_path: Path, database_url: str) -> None:
    """Behind a TLS-terminating proxy the certificate arrives in the configured header; the same rules apply."""
    async with scene(tmp_path, database_url, client_cert_header="X-Client-Cert") as s:
        alice = s.alice.udid
        idle = encode_report(CommandStatus.IDLE, device_keys(alice))
        bobs_certificate = s.signer(s.bob)[0]
        for header in (rfc9440(bobs_certificate), quote(certificate_pem(bobs_certificate).decode())):
            await assert_refused(
                s,
                device_put(s.http, s.connect_url(), idle, content_type=CONNECT_TYPE, headers={"X-Client-Cert": header}),
                activity="deviceAuthenticationFailed",
                target=alice,
                reason="certificateMismatch",
            )
        for garbage in (":bm90IGEgY2VydGlmaWNhdGU=:", "-----BEGIN%20CERTIFICATE-----", ":%%%:"):
            await assert_refused(
                s,
                device_put(
                    s.http, s.connect_url(), idle, content_type=CONNECT_TYPE, headers={"X-Client-Cert": garbage}
                ),
                activity="malformedDeviceRequest",
                target="connect",
            )
        # Alice's own certificate, forwarded by the proxy, is accepted and reaches her queued DeviceLock.
        own = await device_put(
            s.http,
            s.connect_url(),
            idle,
            content_type=CONNECT_TYPE,
            headers={"X-Client-Cert": rfc9440(s.signer(s.alice)[0])},
        )
        assert own.status_code == 200 and s.lock_uuid.encode() in own.content, own.text
        async with s.muster.container.engine.connect() as conn:
            status = (
                await conn.execute(
                    select(command_deliveries.c.status).where(command_deliveries.c.command_uuid == s.lock_uuid)
                )
            ).scalar()
        assert status == "sent"
