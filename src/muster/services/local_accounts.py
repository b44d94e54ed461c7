"""Local sign-in for directory users: an argon2id password and, optionally, a TOTP second factor (RFC 6238).

Unknown users and wrong passwords get the same answer, after the same work. Repeated failures lock the account
for a while. A TOTP code is accepted at most once (its time step must be newer than the last one used), so a
code seen over a shoulder cannot be replayed. The TOTP secret is stored encrypted with the master key.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotAllowed, NotFound
from muster.domain.sign_in import (
    MULTIPLE_FACTORS,
    ONE_TIME_PASSCODE,
    PASSWORD,
    SignedInUser,
    TotpEnrollmentRequired,
    TotpRequired,
)
from muster.pki.secretbox import SecretBox
from muster.services.audit import AuditSink

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
TOTP_STEP_SECONDS = 30
_BAD_CREDENTIALS = "the user name or password is not right"
_TOTP_PURPOSE = "userTotpSecret"
_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 defaults
_DUMMY_HASH = _hasher.hash("a password no account has")


@dataclass(frozen=True)
class Credentials:
    password_hash: str
    totp_required: bool
    totp_secret_encrypted: bytes | None
    totp_confirmed: bool
    locked_until: datetime | None


@dataclass(frozen=True)
class Account:
    user_id: str
    user_principal_name: str
    display_name: str | None
    enabled: bool
    credentials: Credentials | None


class LocalAccountStore(Protocol):
    async def by_upn(self, org_id: str, user_principal_name: str) -> Account | None: ...

    async def by_id(self, org_id: str, user_id: str) -> Account | None: ...

    async def set_password(
        self, user_id: str, *, password_hash: str, totp_required: bool, reset_totp: bool, now: datetime
    ) -> None:
        """Create or replace the password; clears failures and lockout."""

    async def failed(self, user_id: str, *, limit: int, locked_until: datetime) -> int:
        """Count a failure atomically (parallel guesses all count); at `limit` failures, lock the account until
        `locked_until` and restart the count. Returns the failures counted, `limit` included."""

    async def succeeded(self, user_id: str) -> None: ...

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record the step as used; False when it is not newer than the last step used (a replay)."""

    async def start_totp(self, user_id: str, secret_encrypted: bytes) -> None: ...

    async def confirm_totp(self, user_id: str, now: datetime) -> None: ...


class LocalAccounts:
    def __init__(
        self, *, store: LocalAccountStore, secrets: SecretBox, audit: AuditSink, clock: Clock, issuer: str
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._audit = audit
        self._clock = clock
        self._issuer = issuer

    async def set_password(
        self, *, org_id: str, user_id: str, password: str, require_totp: bool, reset_totp: bool, actor: str
    ) -> None:
        """An admin sets a user's password (and whether a second factor is required); unlocks the account."""
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise InvalidInput(f"the password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
        if await self._store.by_id(org_id, user_id) is None:
            raise NotFound(f"no user {user_id}")
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        await self._store.set_password(
            user_id,
            password_hash=password_hash,
            totp_required=require_totp,
            reset_totp=reset_totp,
            now=self._clock.now(),
        )
        await self._audit.admin_event(
            actor=actor,
            activity="setPassword",
            target=user_id,
            detail={"requireTotp": require_totp, "resetTotp": reset_totp},
        )

    async def sign_in(self, *, org_id: str, user_principal_name: str, password: str, otp: str | None) -> SignedInUser:
        account = await self._store.by_upn(org_id, user_principal_name.strip()[:320])
        credentials = account.credentials if account else None
        if account is None or credentials is None:
            await asyncio.to_thread(_matches, _DUMMY_HASH, password)  # same work as for a real account
            raise NotAllowed(_BAD_CREDENTIALS)
        now = self._clock.now()
        if credentials.locked_until is not None and credentials.locked_until > now:
            raise NotAllowed("too many failed sign-ins: the account is locked for a few minutes")
        if not await asyncio.to_thread(_matches, credentials.password_hash, password):
            await self._failed(account, now)
            raise NotAllowed(_BAD_CREDENTIALS)
        if not account.enabled:
            raise NotAllowed("account disabled")
        amr: tuple[str, ...] = (PASSWORD,)
        if credentials.totp_confirmed or credentials.totp_required:
            await self._second_factor(account, credentials, otp, now)
            amr = (PASSWORD, ONE_TIME_PASSCODE, MULTIPLE_FACTORS)
        await self._store.succeeded(account.user_id)
        return SignedInUser(
            user_id=account.user_id,
            user_principal_name=account.user_principal_name,
            display_name=account.display_name or account.user_principal_name,
            amr=amr,
        )

    async def _second_factor(self, account: Account, credentials: Credentials, otp: str | None, now: datetime) -> None:
        secret_encrypted = credentials.totp_secret_encrypted
        if secret_encrypted is None or (not credentials.totp_confirmed and not otp):
            secret = pyotp.random_base32()
            await self._store.start_totp(account.user_id, self._secrets.encrypt(secret.encode(), purpose=_TOTP_PURPOSE))
            uri = pyotp.TOTP(secret).provisioning_uri(name=account.user_principal_name, issuer_name=self._issuer)
            raise TotpEnrollmentRequired(
                "set up an authenticator app with this code, then sign in again with a code from it",
                otpauth_uri=uri,
            )
        if not otp:
            raise TotpRequired("enter the code from your authenticator app")
        secret = self._secrets.decrypt(secret_encrypted, purpose=_TOTP_PURPOSE).decode()
        step = _matching_step(secret, otp.strip(), now)
        if step is None:
            await self._failed(account, now)
            raise NotAllowed("the code from the authenticator app is not right")
        if not await self._store.use_totp_step(account.user_id, step):
            raise NotAllowed("this code was already used: wait for the next one")
        if not credentials.totp_confirmed:
            await self._store.confirm_totp(account.user_id, now)

    async def _failed(self, account: Account, now: datetime) -> None:
        attempts = await self._store.failed(account.user_id, limit=MAX_FAILED_ATTEMPTS, locked_until=now + LOCKOUT)
        if attempts >= MAX_FAILED_ATTEMPTS:
            await self._audit.admin_event(
                actor=account.user_principal_name,
                activity="lockedOut",
                target=account.user_id,
                detail={"failedAttempts": attempts},
                result="failure",
            )


def _matches(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:  # no stored password is longer; spare argon2 the huge input
        password_hash, password = _DUMMY_HASH, ""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _matching_step(secret: str, otp: str, now: datetime) -> int | None:
    """The time step (RFC 6238 §4) whose code is `otp`, allowing one step of clock drift either way."""
    if len(otp) != 6 or not otp.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), otp):
            return step
    return None
