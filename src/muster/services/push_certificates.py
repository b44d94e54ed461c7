"""The Apple MDM push certificate (Graph `applePushNotificationCertificate`), apple-protocols.md §6.3–6.4.

Flow: the admin downloads a CSR (Muster keeps the key, encrypted), has it signed and uploads it to Apple's
Push Certificates Portal, then uploads the certificate Apple issued. A renewal must keep the topic: a new
topic would force every enrolled device to re-enroll, so it is refused with that explanation.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotFound, PreconditionMissing
from muster.pki.push_certificate import (
    RENEWAL_GRACE_PERIOD,
    PushCertificateError,
    check_renewal,
    expiry_warning,
    generate_push_csr,
    parse_push_certificate,
)
from muster.pki.secretbox import SecretBox
from muster.services.audit import AuditSink
from muster.services.consents import APPLE_MDM_PUSH, Consents

KEY_PURPOSE = "pushCertificateKey"
# Each server process re-reads the active certificate this often, so an upload reaches every process.
REFRESH_SECONDS = 30.0


@dataclass(frozen=True)
class PushCertificateRow:
    id: str
    status: str
    csr_pem: str
    key_encrypted: bytes
    certificate_pem: str | None
    topic: str | None
    apple_id: str | None
    serial_number: str | None
    not_after: datetime | None
    uploaded_at: datetime | None


@dataclass(frozen=True)
class PushCertificateStatus:
    """What the admin page shows (APNS-05): the certificate, Active or Expired, days left, a warning if due."""

    row: PushCertificateRow
    expired: bool
    days_until_expiration: int
    warning: str | None

    @property
    def subject_id(self) -> str | None:
        """The GUID part of the topic, which devices show in their management profile (APNS-10)."""
        return self.row.topic.rsplit(".", 1)[-1] if self.row.topic else None


@dataclass(frozen=True)
class ActivePush:
    topic: str
    certificate_pem: bytes
    key_pem: bytes
    certificate_id: str


class PushCertificateStore(Protocol):
    async def latest(self, org_id: str, status: str) -> PushCertificateRow | None: ...

    async def add_request(
        self, *, org_id: str, row_id: str, csr_pem: str, key_encrypted: bytes, now: datetime
    ) -> None: ...

    async def activate(
        self,
        *,
        org_id: str,
        row_id: str,
        certificate_pem: str,
        topic: str,
        apple_id: str | None,
        serial_number: str,
        not_after: datetime,
        now: datetime,
    ) -> None:
        """Make `row_id` the active certificate and mark the previous one replaced, atomically."""

    async def retire(self, org_id: str, row_id: str) -> None:
        """Mark a certificate deleted by the admin."""


class PushCertificates:
    def __init__(
        self,
        *,
        store: PushCertificateStore,
        secrets: SecretBox,
        audit: AuditSink,
        clock: Clock,
        org_id: str,
        organization_name: str,
        consents: Consents,
    ) -> None:
        self._consents = consents
        self._store = store
        self._secrets = secrets
        self._audit = audit
        self._clock = clock
        self._org = org_id
        self._organization = organization_name
        self._active: ActivePush | None = None
        self._loaded_at = float("-inf")

    async def signing_request(self, *, actor: str) -> str:
        """A new CSR to upload to Apple (a fresh key each time, as Intune does for renewals too).

        Only after the admin consented to share user and device information with Apple (APNS-02)."""
        if not await self._consents.is_granted(self._org, APPLE_MDM_PUSH):
            raise PreconditionMissing(
                "Consent to sharing user and device information with Apple first: POST "
                f"/graph/beta/deviceManagement/dataSharingConsents/{APPLE_MDM_PUSH}/consentToDataSharing"
            )
        csr_pem, key_pem = generate_push_csr(common_name=f"{self._organization} MDM Push")
        await self._store.add_request(
            org_id=self._org,
            row_id=str(uuid.uuid4()),
            csr_pem=csr_pem.decode(),
            key_encrypted=self._secrets.encrypt(key_pem, purpose=KEY_PURPOSE),
            now=self._clock.now(),
        )
        await self._audit.admin_event(
            actor=actor, activity="downloadPushCertificateSigningRequest", target=None, detail={}
        )
        return csr_pem.decode()

    async def upload(self, *, certificate_pem: str, apple_id: str, actor: str) -> PushCertificateRow:
        pending = await self._store.latest(self._org, "awaitingCertificate")
        if pending is None:
            raise PreconditionMissing(
                "Download a certificate signing request first, then upload the certificate Apple issued for it."
            )
        key_pem = self._secrets.decrypt(pending.key_encrypted, purpose=KEY_PURPOSE)
        try:
            info = parse_push_certificate(certificate_pem.encode(), key_pem, now=self._clock.now())
            active = await self._store.latest(self._org, "active")
            if active is not None and active.topic and not self._past_grace(active):
                check_renewal(active.topic, info)
        except PushCertificateError as error:
            await self._audit.admin_event(
                actor=actor,
                activity="uploadPushCertificate",
                target=None,
                detail={"error": str(error)},
                result="failure",
            )
            raise InvalidInput(str(error)) from None
        await self._store.activate(
            org_id=self._org,
            row_id=pending.id,
            certificate_pem=certificate_pem,
            topic=info.topic,
            apple_id=apple_id,
            serial_number=info.serial_number,
            not_after=info.not_after,
            now=self._clock.now(),
        )
        self._loaded_at = float("-inf")
        await self._audit.admin_event(
            actor=actor,
            activity="uploadPushCertificate",
            target=info.topic,
            detail={"serialNumber": info.serial_number, "appleId": apple_id},
        )
        row = await self._store.latest(self._org, "active")
        assert row is not None
        return row

    def _past_grace(self, row: PushCertificateRow) -> bool:
        """Past the 30-day grace period Apple no longer renews: a new topic is then the only way on."""
        return row.not_after is not None and self._clock.now() > row.not_after + RENEWAL_GRACE_PERIOD

    async def describe(self) -> PushCertificateStatus | None:
        """The active certificate as the admin page shows it, or None when none was uploaded."""
        row = await self._store.latest(self._org, "active")
        if row is None or row.not_after is None or row.topic is None:
            return None
        now = self._clock.now()
        return PushCertificateStatus(
            row=row,
            expired=row.not_after <= now,
            days_until_expiration=max(0, (row.not_after - now).days),
            warning=expiry_warning(row.topic, row.not_after, now),
        )

    async def delete(self, *, actor: str) -> None:
        """Remove the active certificate: devices can no longer be woken until a new one is uploaded."""
        row = await self._store.latest(self._org, "active")
        if row is None:
            raise NotFound("no push certificate is active")
        await self._store.retire(self._org, row.id)
        self._loaded_at = float("-inf")
        await self._audit.admin_event(actor=actor, activity="deletePushCertificate", target=row.topic, detail={})

    async def active(self) -> ActivePush | None:
        """The certificate devices are pushed with, re-read from the database every few seconds."""
        if time.monotonic() - self._loaded_at < REFRESH_SECONDS:
            return self._active
        row = await self._store.latest(self._org, "active")
        self._loaded_at = time.monotonic()
        if row is None or row.certificate_pem is None or row.topic is None:
            self._active = None
        elif self._active is None or self._active.certificate_pem != row.certificate_pem.encode():
            key_pem = self._secrets.decrypt(row.key_encrypted, purpose=KEY_PURPOSE)
            self._active = ActivePush(row.topic, row.certificate_pem.encode(), key_pem, row.id)
        return self._active

    async def topic(self) -> str | None:
        active = await self.active()
        return active.topic if active else None
