"""One-time SCEP challenges: each enrollment-profile download mints one, valid for 15 minutes, usable once.

Implements the `ChallengeVerifier` and `IssuedCertificateSink` that `muster.services.scep.ScepService` needs.
A challenge that is unknown, expired or already used gets a SCEP failure reply, and an enrollment-failure
record names the reason.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509

from muster.domain.clock import Clock
from muster.pki.certs import fingerprint_sha256


def challenge_hash(challenge: str) -> str:
    return hashlib.sha256(challenge.encode()).hexdigest()


@dataclass(frozen=True)
class EnrollmentIntent:
    """What the enrollment that uses a challenge will be: for whom, of which kind, named how."""

    user_principal_name: str | None = None
    enrollment_type: str = "profileEnrollment"  # Graph deviceEnrollmentType
    ade_device_id: str | None = None
    device_name: str | None = None  # applied with Settings after enrollment (ADE name template)


@dataclass(frozen=True)
class EnrollmentRequest:
    id: str
    org_id: str
    expires_at: datetime
    consumed_at: datetime | None


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate issued over SCEP; its organisation is the enrollment request's (or the default one)."""

    fingerprint: str
    default_org_id: str
    enrollment_request_id: str | None
    serial_number: str
    subject: str
    not_after: datetime
    issued_at: datetime


class EnrollmentRequestStore(Protocol):
    async def create_request(
        self,
        *,
        org_id: str,
        challenge_sha256: str,
        intent: EnrollmentIntent,
        created_by: str,
        now: datetime,
        expires_at: datetime,
    ) -> str: ...

    async def find_by_challenge(self, challenge_sha256: str) -> EnrollmentRequest | None: ...

    async def consume(self, request_id: str, now: datetime) -> bool:
        """Mark the challenge used; False if another request consumed it first."""

    async def record_failure(
        self, *, org_id: str, request_id: str | None, stage: str, reason: str, detail: str, now: datetime
    ) -> None: ...

    async def record_certificate(self, certificate: IssuedCertificate) -> None: ...


class EnrollmentChallenges:
    def __init__(self, *, store: EnrollmentRequestStore, clock: Clock, ttl: timedelta, default_org_id: str) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._default_org = default_org_id

    async def mint(self, *, org_id: str, intent: EnrollmentIntent, created_by: str) -> tuple[str, str]:
        """A fresh challenge for one profile download; returns (request id, challenge)."""
        challenge = secrets.token_urlsafe(24)
        now = self._clock.now()
        request_id = await self._store.create_request(
            org_id=org_id,
            challenge_sha256=challenge_hash(challenge),
            intent=intent,
            created_by=created_by,
            now=now,
            expires_at=now + self._ttl,
        )
        return request_id, challenge

    # -- ChallengeVerifier ----------------------------------------------------------------------------------

    async def consume(self, challenge: str | None, csr: x509.CertificateSigningRequest) -> str | None:
        now = self._clock.now()
        request = await self._store.find_by_challenge(challenge_hash(challenge)) if challenge else None
        if request is None:
            await self._fail(None, "challengeUnknown", "SCEP request without a challenge this server issued", now)
            return None
        if request.consumed_at is not None:
            await self._fail(request, "challengeReused", "SCEP challenge was already used", now)
            return None
        if request.expires_at <= now:
            await self._fail(request, "challengeExpired", "SCEP challenge expired before the device used it", now)
            return None
        if not await self._store.consume(request.id, now):
            await self._fail(request, "challengeReused", "SCEP challenge was already used", now)
            return None
        return request.id

    # -- IssuedCertificateSink ------------------------------------------------------------------------------

    async def record(self, enrollment_ref: str | None, certificate: x509.Certificate) -> None:
        """A renewal (no challenge, so no enrollment request) is bound at the Authenticate that follows."""
        await self._store.record_certificate(
            IssuedCertificate(
                fingerprint=fingerprint_sha256(certificate),
                default_org_id=self._default_org,
                enrollment_request_id=enrollment_ref,
                serial_number=format(certificate.serial_number, "x"),
                subject=certificate.subject.rfc4514_string()[:500],
                not_after=certificate.not_valid_after_utc,
                issued_at=self._clock.now(),
            )
        )

    async def record_failure(self, reason: str, transaction_id: str) -> None:
        await self._store.record_failure(
            org_id=self._default_org,
            request_id=None,
            stage="scep",
            reason="scepRequestRejected",
            detail=f"{reason} (transaction {transaction_id})",
            now=self._clock.now(),
        )

    async def _fail(self, request: EnrollmentRequest | None, reason: str, detail: str, now: datetime) -> None:
        await self._store.record_failure(
            org_id=request.org_id if request else self._default_org,
            request_id=request.id if request else None,
            stage="scep",
            reason=reason,
            detail=detail,
            now=now,
        )
