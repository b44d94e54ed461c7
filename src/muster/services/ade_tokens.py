"""Enrollment program tokens (Graph `depOnboardingSettings`): the link to one ABM/ASM "MDM server".

Flow (seed F-02): consent, then Muster makes a key pair and hands out its public certificate; the admin uploads it
to Apple Business Manager, downloads the server token (`.p7m`, encrypted to that certificate) and uploads it here
with the Apple ID that created it. Muster decrypts it, asks Apple who the token speaks for, stores it encrypted and
syncs at once (ADE-05). Renewal keeps the key pair and must come from the same MDM server and Apple ID.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from muster.domain import ade_tokens as rules
from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotAllowed, NotFound, PreconditionMissing
from muster.domain.rbac import Scope
from muster.pki.certs import (
    certificate_pem,
    generate_rsa_key,
    load_pem_certificate,
    load_pem_private_key,
    private_key_pem,
    self_signed_certificate,
)
from muster.pki.secretbox import SecretBox
from muster.protocols.apple.dep_errors import DepApiError
from muster.protocols.apple.dep_token import parse_server_token
from muster.protocols.errors import ParseError
from muster.services.ade_ports import DepApiFactory
from muster.services.ade_sync import AdeSync, seal_credentials
from muster.services.audit import AuditSink
from muster.services.consents import APPLE_ENROLLMENT_PROGRAM, Consents

KEY_PURPOSE = "depTokenKey"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenRow:
    id: str
    org_id: str
    name: str
    program: str
    certificate_pem: str
    key_encrypted: bytes
    credentials_encrypted: bytes | None
    apple_id: str | None
    server_uuid: str | None
    server_name: str | None
    abm_org_name: str | None
    abm_org_id: str | None
    token_expires_at: datetime | None
    last_sync_started_at: datetime | None
    last_successful_sync_at: datetime | None
    last_sync_outcome: str | None
    last_sync_error: str | None
    sync_started_at: datetime | None
    sync_lease_expires_at: datetime | None
    default_ios_profile_id: str | None
    default_macos_profile_id: str | None
    created_at: datetime
    updated_at: datetime
    device_count: int
    profile_count: int


@dataclass(frozen=True)
class UploadedToken:
    credentials_encrypted: bytes
    apple_id: str
    server_uuid: str
    server_name: str
    abm_org_name: str
    abm_org_id: str
    program: str
    expires_at: datetime


class TokenStore(Protocol):
    async def add(
        self,
        *,
        token_id: str,
        org_id: str,
        name: str,
        certificate_pem: str,
        key_encrypted: bytes,
        tag_ids: Sequence[str],
        now: datetime,
    ) -> None:
        """Store a new token with its scope tags."""

    async def get(self, org_id: str, token_id: str) -> TokenRow | None: ...

    async def get_by_id(self, token_id: str) -> TokenRow | None: ...

    async def list_for_org(self, org_id: str, scope: Scope) -> list[TokenRow]:
        """The organisation's tokens that carry a tag within `scope`."""

    async def count(self, org_id: str) -> int: ...

    async def set_uploaded(self, token_id: str, uploaded: UploadedToken, now: datetime) -> None: ...

    async def deletion_counts(self, token_id: str) -> tuple[int, int, int]:
        """(devices still assigned, devices on a default profile, profiles)."""

    async def delete(self, token_id: str) -> None: ...

    async def delete_device(self, token_id: str, device_id: str) -> bool:
        """Remove one ADE device record; False when the token has no such device."""

    async def expiring(self) -> list[tuple[str, datetime, list[int]]]:
        """(token id, expiry, warning thresholds already sent) of every uploaded token."""

    async def mark_warned(self, token_id: str, sent: list[int]) -> None: ...


class AdeTokens:
    def __init__(
        self,
        *,
        store: TokenStore,
        secrets: SecretBox,
        api: DepApiFactory,
        sync: AdeSync,
        consents: Consents,
        audit: AuditSink,
        clock: Clock,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._api = api
        self._sync = sync
        self._consents = consents
        self._audit = audit
        self._clock = clock

    async def create(self, *, org_id: str, name: str, actor: str, tag_ids: Sequence[str] = ()) -> TokenRow:
        """A new token awaiting its server token; its public key is ready to download (ADE-01, ADE-02)."""
        if not await self._consents.is_granted(org_id, APPLE_ENROLLMENT_PROGRAM):
            raise PreconditionMissing(
                "Consent to sharing user and device information with Apple first: POST /graph/beta/deviceManagement/"
                f"dataSharingConsents/{APPLE_ENROLLMENT_PROGRAM}/consentToDataSharing"
            )
        decision = rules.token_limit_decision(await self._store.count(org_id))
        if not decision.allowed:
            raise NotAllowed(decision.reason)
        token_id = str(uuid.uuid4())
        certificate, key_pem = _token_key_pair(token_id)
        await self._store.add(
            token_id=token_id,
            org_id=org_id,
            name=name,
            certificate_pem=certificate,
            key_encrypted=self._secrets.encrypt(key_pem, purpose=KEY_PURPOSE),
            tag_ids=tag_ids,
            now=self._clock.now(),
        )
        await self._audit.admin_event(
            actor=actor, activity="createDepOnboardingSetting", target=token_id, detail={"name": name}
        )
        return await self.get(org_id, token_id)

    async def get(self, org_id: str, token_id: str) -> TokenRow:
        row = await self._store.get(org_id, token_id)
        if row is None:
            raise NotFound(f"enrollment program token {token_id} not found")
        return row

    async def list_for_org(self, org_id: str, scope: Scope) -> list[TokenRow]:
        return await self._store.list_for_org(org_id, scope)

    async def upload(self, *, org_id: str, token_id: str, apple_id: str, token: bytes, actor: str) -> TokenRow:
        """Install (or renew, ADE-09) the server token downloaded from ABM/ASM, then sync."""
        row = await self.get(org_id, token_id)
        now = self._clock.now()
        key = load_pem_private_key(self._secrets.decrypt(row.key_encrypted, purpose=KEY_PURPOSE))
        assert isinstance(key, rsa.RSAPrivateKey)  # the key Muster generated for this token
        try:
            credentials = parse_server_token(
                token, certificate=load_pem_certificate(row.certificate_pem.encode()), key=key, now=now
            )
        except ParseError as error:
            raise InvalidInput(f"The server token cannot be used: {error.reason}") from None
        api = self._api(credentials)
        try:
            account = await api.account()
        except DepApiError as error:
            raise InvalidInput(f"Apple refused the server token: {error}") from None
        finally:
            await api.aclose()
        uploaded = rules.MdmServerIdentity(
            account.server_uuid, account.server_name, account.org_id or "", account.org_name or ""
        )
        program = rules.program_for_org_type(account.org_type or "")
        expires_at = rules.token_expiry(now, credentials.access_token_expiry)
        if row.server_uuid is not None:
            current = rules.MdmServerIdentity(
                row.server_uuid, row.server_name or "", row.abm_org_id or "", row.abm_org_name or ""
            )
            decision = rules.renewal_decision(
                apple_id=row.apple_id or apple_id,
                entered_apple_id=apple_id,
                current=current,
                uploaded=uploaded,
                uploaded_expires_at=expires_at,
                program=program,
                now=now,
            )
            if not decision.allowed:
                raise InvalidInput(decision.reason)
        await self._store.set_uploaded(
            token_id,
            UploadedToken(
                credentials_encrypted=seal_credentials(self._secrets, credentials),
                apple_id=apple_id,
                server_uuid=uploaded.server_uuid,
                server_name=uploaded.server_name,
                abm_org_name=uploaded.org_name,
                abm_org_id=uploaded.org_id,
                program=program.value,
                expires_at=expires_at,
            ),
            now,
        )
        await self._audit.admin_event(
            actor=actor,
            activity="renewDepToken" if row.server_uuid else "uploadDepToken",
            target=token_id,
            detail={"appleId": apple_id, "server": uploaded.server_name},
        )
        self._sync.start_automatic(token_id)
        return await self.get(org_id, token_id)

    async def sync(self, *, org_id: str, token_id: str, actor: str) -> None:
        await self.get(org_id, token_id)
        await self._sync.start_manual(token_id)
        await self._audit.admin_event(
            actor=actor, activity="syncWithAppleDeviceEnrollmentProgram", target=token_id, detail={}
        )

    async def delete_device(self, *, org_id: str, token_id: str, device_id: str, actor: str) -> None:
        """Remove a device from the token here (ADE-20, ADE-23). It stays assigned in ABM, so the next full sync
        brings it back unless it is unassigned there first (ADE-19)."""
        await self.get(org_id, token_id)
        if not await self._store.delete_device(token_id, device_id):
            raise NotFound(f"imported Apple device {device_id} not found in this token")
        await self._audit.admin_event(
            actor=actor, activity="deleteImportedAppleDeviceIdentity", target=device_id, detail={"token": token_id}
        )

    async def delete(self, *, org_id: str, token_id: str, actor: str) -> None:
        await self.get(org_id, token_id)
        devices, default_devices, profiles = await self._store.deletion_counts(token_id)
        decision = rules.deletion_decision(
            assigned_devices=devices, default_profile_devices=default_devices, profiles=profiles
        )
        if not decision.allowed:
            raise NotAllowed(decision.reason)
        await self._store.delete(token_id)
        await self._audit.admin_event(actor=actor, activity="deleteDepOnboardingSetting", target=token_id, detail={})


async def warn_expiring_tokens(store: TokenStore, audit: AuditSink, clock: Clock) -> int:
    """The background job: warn 30, 14, 7 and 1 days before a token expires (ADE-07), once per threshold."""
    now, warned = clock.now(), 0
    for token_id, expires_at, sent in await store.expiring():
        due = rules.expiry_warnings_due(expires_at, now, sent)
        if not due:
            continue
        days = rules.days_until_expiration(expires_at, now)
        log.warning("enrollment program token expires soon", extra={"token": token_id, "daysLeft": days})
        await audit.admin_event(
            actor="Muster",
            activity="depTokenExpiryWarning",
            target=token_id,
            detail={"daysLeft": days, "expires": expires_at.isoformat()},
            result="warning",
        )
        await store.mark_warned(token_id, sorted({*sent, *due}))
        warned += 1
    return warned


def _token_key_pair(token_id: str) -> tuple[str, bytes]:
    """The key ABM encrypts server tokens to, and the certificate that carries its public half (apple-protocols
    §7.1: a certificate, so the CMS recipient can be matched by issuer and serial; NanoDEP's is self-signed too)."""
    key = generate_rsa_key(2048)
    certificate = self_signed_certificate(key, f"Muster DEP token {token_id}", days=3650)
    return certificate_pem(certificate).decode(), private_key_pem(key)
