"""Data-sharing consents (Graph `dataSharingConsents`): Intune asks the admin to agree before it sends user and
device information to Apple, and only then offers the push-certificate request (APNS-02)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.errors import NotFound
from muster.services.audit import AuditSink

APPLE_MDM_PUSH = "appleMDMPushCertificate"
APPLE_ENROLLMENT_PROGRAM = "appleEnrollmentProgram"

# Consent id -> (service, what the admin agrees to).
KNOWN_CONSENTS = {
    APPLE_MDM_PUSH: (
        "Apple MDM Push certificate",
        "I grant Muster permission to send both user and device information to Apple.",
    ),
    # ADE-01 (seed 003:895-905): the same statement guards the enrollment program token's public key.
    APPLE_ENROLLMENT_PROGRAM: (
        "Apple Business Manager / Apple School Manager enrollment program",
        "I grant Muster permission to send both user and device information to Apple.",
    ),
}


@dataclass(frozen=True)
class Consent:
    id: str
    service: str
    terms: str
    granted_by: str | None
    granted_at: datetime | None

    @property
    def granted(self) -> bool:
        return self.granted_at is not None


class ConsentStore(Protocol):
    async def granted(self, org_id: str, consent_id: str) -> tuple[str, datetime] | None:
        """(granted by, when) or None."""

    async def grant(self, org_id: str, consent_id: str, granted_by: str, now: datetime) -> None: ...


class Consents:
    def __init__(self, *, store: ConsentStore, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def get(self, org_id: str, consent_id: str) -> Consent:
        if consent_id not in KNOWN_CONSENTS:
            raise NotFound(f"no data-sharing consent named {consent_id!r}")
        service, terms = KNOWN_CONSENTS[consent_id]
        found = await self._store.granted(org_id, consent_id)
        return Consent(consent_id, service, terms, *(found or (None, None)))

    async def grant(self, org_id: str, consent_id: str, *, actor: str) -> Consent:
        consent = await self.get(org_id, consent_id)
        if not consent.granted:
            await self._store.grant(org_id, consent_id, actor, self._clock.now())
            await self._audit.admin_event(actor=actor, activity="consentToDataSharing", target=consent_id, detail={})
        return await self.get(org_id, consent_id)

    async def is_granted(self, org_id: str, consent_id: str) -> bool:
        return (await self._store.granted(org_id, consent_id)) is not None
