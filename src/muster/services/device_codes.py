"""The OAuth 2.0 device authorization grant (RFC 8628) that `muster login` uses.

The CLI asks for a device code and shows the user a short user code; the user signs in on the `/device` page
and approves; meanwhile the CLI polls the token endpoint. Device codes are stored only as their SHA-256 and are
redeemed once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.errors import NotAllowed
from muster.domain.rbac import TokenSubject
from muster.domain.sign_in import OAuthError, SignedInUser

CLI_CLIENT_ID = "muster-cli"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 §6.1: consonants only, no look-alikes, no words
USER_CODE_LENGTH = 8
LIFETIME = timedelta(seconds=900)
INTERVAL_SECONDS = 5
SLOW_DOWN_STEP_SECONDS = 5  # RFC 8628 §3.5


@dataclass(frozen=True)
class DeviceCodeRow:
    device_code_sha256: str
    org_id: str
    user_code: str
    client_id: str
    status: str  # pending | approved | denied | redeemed
    expires_at: datetime
    interval_seconds: int
    user_id: str | None = None
    display_name: str | None = None
    amr: str | None = None
    last_polled_at: datetime | None = None


class DeviceCodeStore(Protocol):
    async def add(self, row: DeviceCodeRow, *, now: datetime) -> bool: ...

    async def by_user_code(self, user_code: str) -> DeviceCodeRow | None: ...

    async def by_device_code(self, device_code_sha256: str) -> DeviceCodeRow | None: ...

    async def decide(
        self, *, user_code: str, status: str, user_id: str | None, display_name: str | None, amr: str | None
    ) -> bool: ...

    async def polled(self, *, device_code_sha256: str, at: datetime, interval_seconds: int) -> None: ...

    async def redeem(self, device_code_sha256: str) -> bool: ...


@dataclass(frozen=True)
class DeviceAuthorization:
    """The device authorization response (RFC 8628 §3.2), less the URIs the web layer adds."""

    device_code: str
    user_code: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class ApprovedLogin:
    subject: TokenSubject
    amr: tuple[str, ...]


def display_user_code(user_code: str) -> str:
    return f"{user_code[:4]}-{user_code[4:]}"


def normalize_user_code(text: str) -> str | None:
    """The user code as typed (any case, with or without the dash or spaces), or None when it cannot be one."""
    code = "".join(ch for ch in text[:32].upper() if ch not in "- ")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


def _digest(device_code: str) -> str:
    return hashlib.sha256(device_code.encode()).hexdigest()


class DeviceCodes:
    def __init__(self, *, store: DeviceCodeStore, clock: Clock, org_id: str) -> None:
        self._store = store
        self._clock = clock
        self._org_id = org_id

    @property
    def org_id(self) -> str:
        """The organisation whose users approve device codes (one organisation for now)."""
        return self._org_id

    async def start(self, client_id: str) -> DeviceAuthorization:
        if client_id != CLI_CLIENT_ID:
            raise OAuthError(
                "invalid_client", f"the client {client_id!r} may not use the device code grant", status=401
            )
        now = self._clock.now()
        for _ in range(5):  # a collision with a live user code is rare; draw again
            device_code = secrets.token_urlsafe(32)
            user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            row = DeviceCodeRow(
                device_code_sha256=_digest(device_code),
                org_id=self._org_id,
                user_code=user_code,
                client_id=client_id,
                status="pending",
                expires_at=now + LIFETIME,
                interval_seconds=INTERVAL_SECONDS,
            )
            if await self._store.add(row, now=now):
                return DeviceAuthorization(device_code, user_code, int(LIFETIME.total_seconds()), INTERVAL_SECONDS)
        raise RuntimeError("could not draw a free user code")

    async def pending(self, user_code_text: str) -> str:
        """The normalized user code of a live pending request; NotAllowed with the reason otherwise."""
        user_code = normalize_user_code(user_code_text)
        row = await self._store.by_user_code(user_code) if user_code else None
        if row is None or row.status != "pending" or row.expires_at <= self._clock.now():
            raise NotAllowed("this code is not valid or has expired: run `muster login` again for a new one")
        return row.user_code

    async def approve(self, user_code_text: str, user: SignedInUser) -> None:
        user_code = await self.pending(user_code_text)
        amr = " ".join(user.amr)
        if not await self._store.decide(
            user_code=user_code, status="approved", user_id=user.user_id, display_name=user.display_name, amr=amr
        ):
            raise NotAllowed("this code was already used")

    async def deny(self, user_code_text: str) -> None:
        user_code = await self.pending(user_code_text)
        await self._store.decide(user_code=user_code, status="denied", user_id=None, display_name=None, amr=None)

    async def poll(self, *, device_code: str, client_id: str) -> ApprovedLogin:
        """The approved login, once; otherwise the OAuthError the client must see (RFC 8628 §3.5)."""
        row = await self._store.by_device_code(_digest(device_code[:256]))
        if row is None or row.client_id != client_id or row.status == "redeemed":
            raise OAuthError("invalid_grant", "the device code is not valid")
        now = self._clock.now()
        if row.expires_at <= now:
            raise OAuthError("expired_token", "the device code has expired: start again")
        if row.status == "denied":
            raise OAuthError("access_denied", "the user denied the request")
        if row.status == "pending":
            too_soon = row.last_polled_at is not None and now < row.last_polled_at + timedelta(
                seconds=row.interval_seconds
            )
            interval = row.interval_seconds + SLOW_DOWN_STEP_SECONDS if too_soon else row.interval_seconds
            await self._store.polled(device_code_sha256=row.device_code_sha256, at=now, interval_seconds=interval)
            if too_soon:
                raise OAuthError("slow_down", f"poll at most every {interval} seconds")
            raise OAuthError("authorization_pending", "the user has not approved the request yet")
        if not await self._store.redeem(row.device_code_sha256) or row.user_id is None:
            raise OAuthError("invalid_grant", "the device code was already used")
        subject = TokenSubject(
            org_id=row.org_id, kind="user", subject_id=row.user_id, display_name=row.display_name or ""
        )
        return ApprovedLogin(subject, tuple((row.amr or "").split()))
